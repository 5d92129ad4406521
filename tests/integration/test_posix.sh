#!/usr/bin/env bash
# test_posix.sh - a writable mount behaves as a local filesystem: the same call
# sequences (posix_compare.py: symlinks, hard links, FIFOs, sockets, devices, files
# open after their unlink, directory link counts, NAME_MAX and PATH_MAX) give the same
# results, errnos and stat fields on the mount as on a plain directory of this test;
# the store holds them natively; hard-linked files stay one inode through compaction
# and through opening the object for writing; all of it survives a daemon restart; a
# read-only mount serves them and refuses new ones with EROFS.
. "$(dirname "$0")/lib.sh"

store=$T/store
mnt=$T/mnt
plain=$T/plain
mkdir "$mnt" "$plain"
"$FAISSFS" init "$store" >/dev/null || fail "faissfs init"
cmpare() { "$PYTHON" "$IT_DIR/posix_compare.py" "$@"; }
is_object() { "$FAISSFS" inspect "$1" 2>/dev/null | grep -q ': faissfs object$'; }
ino() { stat -c %i "$1"; }
# wait_object NAME: the store file NAME becomes an object (compaction) within 30 s.
wait_object() {
	for _ in $(seq 300); do
		is_object "$store/$1" && return
		sleep 0.1
	done
	fail "$1 was not compacted within 30 s"
}

say "the same call sequences on the mount and on a plain directory"
mount_fg "$store" "$mnt" "$T/d1.log" -o rw
cmpare "$mnt" "$plain" || fail "the mount and the plain directory differ (above)"
cmpare --tree "$mnt" "$plain" || fail "the trees left behind differ"

say "the store holds them as they are"
[ "$(readlink "$store/symlinks/current")" = v2 ] || fail "the store's current is not a symlink to v2"
[ -p "$store/special/fifo" ] || fail "the store has no FIFO special/fifo"
[ -b "$store/special/blk" ] || fail "the store has no block device special/blk"
[ "$(stat -c %h "$store/hardlinks/sub/d")" = 1 ] || fail "hardlinks/sub/d: wrong link count in the store"
rocompat=$(od -An -tu4 -j16 -N4 "$store/.faissfs/superblock" | tr -d ' ')
[ "$rocompat" = 1 ] || fail "the superblock's feature_ro_compat is $rocompat, not LINKS (1)"
ok "symlink, FIFO, device and link counts are the store's own; the superblock says LINKS"

say "a file with three names is one object after compaction, and one file after a write"
make_mixed_file "$mnt/big" 3000000 7
mkdir "$mnt/other"
ln "$mnt/big" "$mnt/big2"
ln "$mnt/big" "$mnt/other/big3"
cp "$mnt/big" "$T/big.want"
wait_object big
for n in big2 other/big3; do
	is_object "$store/$n" || fail "$n is not the object big is"
	[ "$(ino "$store/$n")" = "$(ino "$store/big")" ] || fail "$n is another inode than big in the store"
done
[ "$(stat -c %h "$store/big")" = 3 ] || fail "the object has $(stat -c %h "$store/big") names, not 3"
for n in big big2 other/big3; do
	cmp "$T/big.want" "$mnt/$n" || fail "$n reads other bytes after compaction"
	[ "$(ino "$mnt/$n")" = "$(ino "$mnt/big")" ] || fail "$n is another inode than big on the mount"
done
ok "one object of 3 names in the store; one inode and the same bytes on the mount"
printf 'appended' >>"$mnt/other/big3"
printf 'appended' >>"$T/big.want"
for n in big big2 other/big3; do
	cmp "$T/big.want" "$mnt/$n" || fail "$n does not show the write through other/big3"
	[ "$(ino "$store/$n")" = "$(ino "$store/big")" ] || fail "$n was split from big by the write"
done
is_object "$store/big" && fail "big is still the object after a write to it"
[ "$(stat -c %h "$store/big")" = 3 ] || fail "the written file has $(stat -c %h "$store/big") names, not 3"
ok "a write through one name: all three names hold the new bytes, one inode"

say "a read-only open of an object sees what another open writes, as on a local disk"
wait_object big
"$PYTHON" - "$mnt/big" <<'PY' || fail "a write through another open"
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
before = os.pread(fd, 1 << 23, 0)
w = os.open(sys.argv[1], os.O_WRONLY)
os.pwrite(w, b"NEW BYTES", 1000)
os.pwrite(w, b"MORE", 2_500_000)
os.close(w)
after = os.pread(fd, 1 << 23, 0)
want = bytearray(before)
want[1000:1009] = b"NEW BYTES"
want[2_500_000:2_500_004] = b"MORE"
assert after == bytes(want), "the read-only open still reads the old object"
os.close(fd)
PY
is_object "$store/big" && fail "big is still an object after the write"
ok "the reader's next reads show the writer's bytes (the object was unpacked under it)"

say "an object opened, then removed: fstat and reads go on"
wait_object big
"$PYTHON" - "$mnt" <<'PY' || fail "an object opened, then unlinked"
import os, sys
m = sys.argv[1]
os.unlink(m + "/big2")
os.unlink(m + "/other/big3")
fd = os.open(m + "/big", os.O_RDONLY)
want = os.pread(fd, 1 << 23, 0)
os.unlink(m + "/big")
st = os.fstat(fd)
assert st.st_nlink == 0, f"nlink {st.st_nlink} after the last unlink"
assert st.st_size == len(want), f"size {st.st_size}, the file has {len(want)} bytes"
assert os.pread(fd, 1 << 23, 0) == want, "reads changed after the unlink"
os.close(fd)
PY
ok "nlink 0, the logical size, the same bytes"

say "a restart keeps every name, type, link and byte"
cmpare --save "$mnt" "$T/before.json"
unmount "$mnt" "$FG_PID"
"$FAISSFS" verify "$store" >"$T/verify.txt" 2>&1 || {
	cat "$T/verify.txt" >&2
	fail "faissfs verify of the store fails"
}
mount_fg "$store" "$mnt" "$T/d2.log" -o rw
cmpare --against "$mnt" "$T/before.json" || fail "the tree changed across the restart"
unmount "$mnt" "$FG_PID"

say "a read-only mount serves them and refuses new ones"
mount_fg "$store" "$mnt" "$T/d3.log" -o ro
[ "$(readlink "$mnt/symlinks/current")" = v2 ] || fail "readlink on a read-only mount"
[ "$(cat "$mnt/symlinks/current/index.faiss")" = two ] || fail "a path through a symlink"
[ "$(find "$mnt/special" -type p | wc -l)" = 2 ] || fail "find -type p does not see the two names of the FIFO"
for cmd in "ln -s x $mnt/newlink" "ln $mnt/symlinks/v2/index.faiss $mnt/hl" "mkfifo $mnt/ff"; do
	out=$($cmd 2>&1) && fail "'$cmd' succeeded on a read-only mount"
	case $out in *"Read-only file system"*) ;; *) fail "'$cmd': $out (want EROFS)" ;; esac
done
grep -i "not served\|warn" "$T/d3.log" && fail "the read-only mount warned about the store's entries"
unmount "$mnt" "$FG_PID"
ok "symlinks, FIFOs served; symlink, link and mkfifo answer EROFS"

#!/usr/bin/env bash
# test_write_crash.sh - what survives on a -o rw mount: data fsync'd before a kill -9
# of the daemon is there after a remount (and a kill -9 during compaction never
# leaves a torn or missing file); a full store gives ENOSPC to the writer, leaves the
# previous version intact and keeps working once space is freed; a data dir never
# imported (faissfs init on it) mounted -o rw upgrades itself in the background while
# it is read, every read returning the right bytes; faissfs compact does it offline.
. "$(dirname "$0")/lib.sh"

store=$T/store
mnt=$T/mnt
src=$T/src
small=$T/small
mkdir "$mnt" "$src" "$small"
make_mixed_file "$src/big" 6000000 7
"$FAISSFS" init "$store" >/dev/null || fail "faissfs init"

# A tmpfs under a FUSE mount: unmount both before lib.sh's cleanup removes $T.
_small_cleanup() {
	local rc=$?
	set +e
	is_mounted "$mnt" && fusermount3 -uz "$mnt"
	mountpoint -q "$small" && umount -l "$small"
	(exit "$rc")
	_cleanup
}
trap _small_cleanup EXIT

# kill_daemon: kill -9 the foreground daemon and detach its dead mount.
kill_daemon() {
	kill -KILL "$FG_PID"
	wait "$FG_PID" 2>/dev/null || true
	fusermount3 -uz "$mnt" 2>/dev/null || true
	! is_mounted "$mnt" || fail "$mnt still mounted after kill -9 and fusermount3 -uz"
}

say "fsync, then kill -9 of the daemon, then remount"
mount_fg "$store" "$mnt" "$T/d1.log" -o rw
"$PYTHON" - "$src/big" "$mnt" <<'PY' || fail "write + fsync"
import os, sys
data = open(sys.argv[1], "rb").read()
os.makedirs(os.path.join(sys.argv[2], "t", "i"))
fd = os.open(os.path.join(sys.argv[2], "t", "i", "index.faiss"), os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, data)
os.fsync(fd)
os.close(fd)
for d in ("t/i", "t", "."):
    dfd = os.open(os.path.join(sys.argv[2], d), os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(dfd)
    os.close(dfd)
PY
kill_daemon
mount_fg "$store" "$mnt" "$T/d2.log" -o rw,compact=off
cmp "$src/big" "$mnt/t/i/index.faiss" || fail "fsync'd data lost after kill -9"
ok "fsync'd file intact after kill -9 and remount"

rounds=${FAISSFS_CRASH_ITERATIONS:-8}
say "kill -9 at random points of the compaction of a 6 MB file ($rounds rounds)"
unmount "$mnt" "$FG_PID"
for round in $(seq "$rounds"); do
	mount_fg "$store" "$mnt" "$T/d3.log" -o rw
	if [ "$round" = 1 ]; then
		# A fresh plain copy to compact (the first one may be an object already).
		cp "$src/big" "$mnt/t/i/copy"
	fi
	sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.2f", 2 + r % 250 / 100 }')"
	kill_daemon
	for f in "$store/t/i/index.faiss" "$store/t/i/copy"; do
		mount_fg "$store" "$mnt" "$T/d4.log" -o compact=off
		cmp "$src/big" "$mnt/t/i/$(basename "$f")" || fail "round $round: $f torn"
		unmount "$mnt" "$FG_PID"
	done
done
state=$(for f in index.faiss copy; do
	"$FAISSFS" inspect "$store/t/i/$f" 2>/dev/null | grep -q 'plain file' && echo plain || echo object
done | tr '\n' ' ')
ok "never torn or missing (now: $state)"

say "ENOSPC on a full store (tmpfs of 8 MiB)"
mount -t tmpfs -o size=8m tmpfs "$small" || fail "mount tmpfs"
"$FAISSFS" init "$small/s" >/dev/null
mount_fg "$small/s" "$mnt" "$T/d5.log" -o rw,compact=off
head -c 1000000 "$src/big" >"$T/old"
cp "$T/old" "$mnt/index.faiss"
sync
"$PYTHON" - "$mnt" <<'PY' || fail "ENOSPC"
import errno, os, sys
d = sys.argv[1]
tmp = os.path.join(d, "index.faiss.tmp")
try:
    with open(tmp, "wb") as f:
        for _ in range(20):
            f.write(os.urandom(1 << 20))
        f.flush()
        os.fsync(f.fileno())
except OSError as e:
    assert e.errno == errno.ENOSPC, f"got {errno.errorcode[e.errno]}"
    print("   writing 20 MiB: ENOSPC")
else:
    sys.exit("20 MiB written to an 8 MiB filesystem")
os.unlink(tmp)
with open(os.path.join(d, "after"), "wb") as f:
    f.write(b"space again\n" * 1000)
    os.fsync(f.fileno())
PY
cmp "$T/old" "$mnt/index.faiss" || fail "the old file changed after ENOSPC"
ok "ENOSPC at write; the old file intact; writes work again once space is freed"
unmount "$mnt" "$FG_PID"
umount "$small"

say "a legacy data dir (faissfs init on it) mounted -o rw upgrades itself while read"
legacy=$T/legacy
mkdir -p "$legacy/acme/idx" "$legacy/globex/idx"
for i in 0 1 2; do
	make_mixed_file "$legacy/acme/idx/part$i" $((2000000 + i * 12345)) $((10 + i))
	make_mixed_file "$legacy/globex/idx/part$i" $((1500000 + i * 999)) $((20 + i))
done
echo '{"name": "idx"}' >"$legacy/acme/idx/metadata.json"
cp -a "$legacy" "$T/legacy.orig"
"$FAISSFS" init "$legacy" >/dev/null || fail "faissfs init on a data dir"
mount_fg "$legacy" "$mnt" "$T/d6.log" -o rw
"$PYTHON" - "$T/legacy.orig" "$mnt" "$FAISSFS" "$legacy" <<'PY' || fail "reads during the upgrade"
import os, subprocess, sys, time
orig, mnt, faissfs, store = sys.argv[1:]
files = [os.path.relpath(os.path.join(r, f), orig) for r, _, fs in os.walk(orig) for f in fs]
want = {f: open(os.path.join(orig, f), "rb").read() for f in files}
def plain_left():
    n = 0
    for f in files:
        if len(want[f]) <= 4096:
            continue
        out = subprocess.run([faissfs, "inspect", os.path.join(store, f)],
                             capture_output=True, text=True).stdout
        n += "plain file" in out
    return n
reads, deadline = 0, time.time() + 90
while True:
    for f in files:
        with open(os.path.join(mnt, f), "rb") as fh:
            assert fh.read() == want[f], f"{f}: wrong bytes during the upgrade"
        reads += 1
    if plain_left() == 0:
        break
    assert time.time() < deadline, "not upgraded after 90 s"
print(f"   {reads} whole-file reads, all right, while the data dir was compacted")
PY
same_tree "$T/legacy.orig" "$mnt"
unmount "$mnt" "$FG_PID"
"$FAISSFS" verify "$legacy" >/dev/null || fail "faissfs verify after the upgrade"
ok "upgraded in place; faissfs verify"

say "faissfs compact does the same offline"
legacy2=$T/legacy2
cp -a "$T/legacy.orig" "$legacy2"
"$FAISSFS" init "$legacy2" >/dev/null
"$FAISSFS" compact "$legacy2" || fail "faissfs compact"
left=$(find "$legacy2" -path "$legacy2/.faissfs" -prune -o -type f -size +4k -print |
	while read -r f; do "$FAISSFS" inspect "$f" | grep -c 'plain file' || true; done |
	awk '{ s += $1 } END { print s + 0 }')
[ "$left" = 0 ] || fail "$left files still plain after faissfs compact"
mount_daemon "$legacy2" "$mnt"
same_tree "$T/legacy.orig" "$mnt"
unmount "$mnt"

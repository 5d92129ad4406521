#!/usr/bin/env bash
# test_write_ops.sh - the POSIX side of a -o rw mount: concurrent writers on different
# files with a reader following one of them; a reader that opened a file before it was
# replaced or removed keeps the old bytes; truncate up and down (of plain files and of
# objects); writing into the middle of an object; chmod and utimes; the errno of what
# is not supported (xattr writes, RENAME_EXCHANGE) and RENAME_NOREPLACE (symlinks, hard
# links and special files: test_posix.sh).  Everything is compared byte for byte after
# a remount.
. "$(dirname "$0")/lib.sh"

store=$T/store
mnt=$T/mnt
src=$T/src
mkdir "$mnt" "$src"
"$FAISSFS" init "$store" >/dev/null || fail "faissfs init"
for i in 0 1 2 3; do
	make_mixed_file "$src/f$i" $((3000000 + i * 77777)) "$i"
done

# wait_objects DIR: until every file over 4 KiB under DIR (in the store) is an object.
wait_objects() {
	local deadline=$((SECONDS + 60)) plain f
	while :; do
		plain=0
		while IFS= read -r -d '' f; do
			"$FAISSFS" inspect "$f" 2>/dev/null | grep -q 'plain file' && plain=$((plain + 1))
		done < <(find "$1" -type f -size +4k -print0)
		[ "$plain" = 0 ] && return 0
		[ "$SECONDS" -lt "$deadline" ] || fail "$plain files under $1 still plain after 60 s"
		sleep 0.5
	done
}

mount_fg "$store" "$mnt" "$T/daemon.log" -o rw

say "4 concurrent writers on different files, a reader following writer 0"
mkdir "$mnt/c"
"$PYTHON" - "$src" "$mnt/c" <<'PY' || fail "concurrent writers"
import os, sys, threading
src, dst = sys.argv[1], sys.argv[2]
progress = [0]
errors = []

def writer(i):
    data = open(os.path.join(src, f"f{i}"), "rb").read()
    with open(os.path.join(dst, f"f{i}"), "wb", buffering=0) as f:
        for off in range(0, len(data), 65536):
            f.write(data[off:off + 65536])
            if i == 0:
                progress[0] = off + len(data[off:off + 65536])

def reader():
    data = open(os.path.join(src, "f0"), "rb").read()
    checks = 0
    while progress[0] < len(data):
        n = progress[0]
        if n == 0 or not os.path.exists(os.path.join(dst, "f0")):
            continue
        with open(os.path.join(dst, "f0"), "rb") as f:
            got = f.read(n)
        if got != data[:len(got)] or len(got) < n:
            errors.append(f"reader saw {len(got)} bytes, {n} written, or wrong bytes")
            return
        checks += 1
    print(f"   reader checked {checks} prefixes during the write")

ts = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
r = threading.Thread(target=reader)
for t in ts:
    t.start()
r.start()
for t in ts + [r]:
    t.join()
if errors:
    sys.exit(errors[0])
PY
for i in 0 1 2 3; do cmp "$src/f$i" "$mnt/c/f$i" || fail "c/f$i differs"; done
ok "4 files written at once, each byte-identical; the reader saw every byte written"

say "compaction of the written files, then replace and unlink while open"
wait_objects "$store/c"
ok "the 4 files are objects"
"$PYTHON" - "$mnt/c" "$src" <<'PY' || fail "replace/unlink while open"
import os, sys
d, src = sys.argv[1], sys.argv[2]
old = open(os.path.join(src, "f1"), "rb").read()
f = open(os.path.join(d, "f1"), "rb")
assert f.read(1000) == old[:1000]
with open(os.path.join(d, "new"), "wb") as w:
    w.write(b"new version\n" * 1000)
os.replace(os.path.join(d, "new"), os.path.join(d, "f1"))
assert f.read() == old[1000:], "the reader of the replaced file lost its bytes"
f.close()
with open(os.path.join(d, "f1"), "rb") as g:
    assert g.read() == b"new version\n" * 1000
old2 = open(os.path.join(src, "f2"), "rb").read()
f = open(os.path.join(d, "f2"), "rb")
os.unlink(os.path.join(d, "f2"))
assert not os.path.exists(os.path.join(d, "f2"))
assert f.read() == old2, "the reader of the removed file lost its bytes"
f.close()
# A writer whose file is removed, or replaced by a rename, keeps writing to it, and
# fstat() of its fd describes that file.
w = open(os.path.join(d, "gone"), "wb", buffering=0)
w.write(b"x" * 100000)
os.unlink(os.path.join(d, "gone"))
w.write(b"y" * 5)
st = os.fstat(w.fileno())
assert (st.st_size, st.st_nlink) == (100005, 0), f"fstat after unlink: {st}"
w.close()
w = open(os.path.join(d, "b"), "wb", buffering=0)
w.write(b"1" * 10)
with open(os.path.join(d, "c"), "wb") as c:
    c.write(b"2" * 20)
os.replace(os.path.join(d, "c"), os.path.join(d, "b"))
w.write(b"3")
assert os.fstat(w.fileno()).st_size == 11 and os.stat(os.path.join(d, "b")).st_size == 20
w.close()
os.unlink(os.path.join(d, "b"))
print("   replace-while-open and unlink-while-open keep the old bytes (and fstat)")
PY
cp "$src/f2" "$mnt/c/f2"
ok "old readers unaffected"

say "truncate down and up (an object and a plain file), write into an object"
head -c 300000 "$src/f3" >"$T/exp3"
truncate -s 300000 "$mnt/c/f3"
cmp "$T/exp3" "$mnt/c/f3" || fail "truncate down of an object"
truncate -s 1000000 "$mnt/c/f3"
truncate -s 1000000 "$T/exp3"
cmp "$T/exp3" "$mnt/c/f3" || fail "truncate up"
"$PYTHON" - "$mnt/c/f3" "$T/exp3" <<'PY' || fail "ftruncate"
import os, sys
for p in sys.argv[1:]:
    fd = os.open(p, os.O_RDWR)
    os.ftruncate(fd, 123457)
    os.pwrite(fd, b"tail", 123457)
    os.close(fd)
PY
cmp "$T/exp3" "$mnt/c/f3" || fail "ftruncate + write at the end"
cp "$src/f0" "$T/exp0"
printf 'PATCHED' | dd of="$mnt/c/f0" bs=1 seek=1500000 conv=notrunc status=none
printf 'PATCHED' | dd of="$T/exp0" bs=1 seek=1500000 conv=notrunc status=none
cmp "$T/exp0" "$mnt/c/f0" || fail "write into the middle of an object"
ok "truncate -s down/up, ftruncate, a write into the middle of an object"

say "chmod, utimes, mkdir/rmdir, rename flags and unsupported operations"
chmod 640 "$mnt/c/f0"
touch -d '2021-02-03 04:05:06' "$mnt/c/f0"
[ "$(stat -c '%a %Y' "$mnt/c/f0")" = "640 $(date -d '2021-02-03 04:05:06' +%s)" ] ||
	fail "chmod/touch: $(stat -c '%a %Y' "$mnt/c/f0")"
mkdir -p "$mnt/d1/d2"
rmdir "$mnt/d1/d2" "$mnt/d1"
[ ! -e "$mnt/d1" ] || fail "rmdir"
"$PYTHON" - "$mnt/c" <<'PY' || fail "errno checks"
import ctypes, errno, os, sys
d = sys.argv[1]
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
def renameat2(a, b, flags):
    r = libc.renameat2(AT_FDCWD, a.encode(), AT_FDCWD, b.encode(), flags)
    return 0 if r == 0 else ctypes.get_errno()
def expect(what, want, fn):
    try:
        fn()
    except OSError as e:
        assert e.errno == want, f"{what}: {errno.errorcode[e.errno]}, want {errno.errorcode[want]}"
        print(f"   {what}: {errno.errorcode[want]}")
        return
    raise AssertionError(f"{what} succeeded")
f0, f1 = os.path.join(d, "f0"), os.path.join(d, "f1")
expect("setxattr", errno.ENOTSUP, lambda: os.setxattr(f0, "user.x", b"1"))
assert renameat2(f0, f1, 1) == errno.EEXIST, "RENAME_NOREPLACE onto a file"
assert renameat2(f0, f1, 2) == errno.EINVAL, "RENAME_EXCHANGE"
assert renameat2(f1, os.path.join(d, "f1b"), 1) == 0, "RENAME_NOREPLACE to a new name"
os.rename(os.path.join(d, "f1b"), f1)
print("   RENAME_NOREPLACE: EEXIST or done; RENAME_EXCHANGE: EINVAL")
PY
ok "mode, times, directories, errnos"

say "remount read-only: every file as written"
cp -a "$mnt/c" "$T/snap"
unmount "$mnt" "$FG_PID"
mount_daemon "$store" "$mnt"
same_tree "$T/snap" "$mnt/c"
cmp "$T/exp0" "$mnt/c/f0" && cmp "$T/exp3" "$mnt/c/f3" || fail "after remount"
unmount "$mnt"
"$FAISSFS" verify "$store" >/dev/null || fail "faissfs verify"
ok "faissfs verify"

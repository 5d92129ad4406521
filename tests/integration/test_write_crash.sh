#!/usr/bin/env bash
# test_write_crash.sh - what survives on a -o rw mount: data fsync'd before a kill -9
# of the daemon is there after a remount (and a kill -9 during compaction never
# leaves a torn or missing file); a full store gives ENOSPC to the writer, leaves the
# previous version intact and keeps working once space is freed; a data dir never
# imported (faissfs init on it) mounted -o rw upgrades itself in the background while
# it is read, every read returning the right bytes; faissfs compact does it offline.
#
# The kill -9 loop runs FAISSFS_CRASH_ITERATIONS rounds (default 8, about 0.2 s
# each).  Stress mode, as issue #3 asks: FAISSFS_CRASH_ITERATIONS=50 (or more), e.g.
#   FAISSFS_CRASH_ITERATIONS=50 ctest --test-dir build -R test_write_crash
# Each round compacts a new version at once (an old mtime: no idle wait) and kills
# the daemon at a random point of a window measured at the start: from the daemon's
# start to both files published.
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

# Two versions of the file, 1 % apart: a re-save copies the previous object's chunks.
"$PYTHON" - "$src/big" "$src/big.v1" <<'PY'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
data[1000000:1060000] = bytes(reversed(data[1000000:1060000]))
open(sys.argv[2], "wb").write(data)
PY
want=("$src/big" "$src/big.v1")

# A round: a new version, then a rw mount whose scan compacts it at once (its mtime
# is an hour old, so no idle wait), killed -9 after a random delay in 0..window ms;
# then a compact=off mount reads both files.  Even rounds put the version into the
# store as a plain file (a data dir's upgrade); odd rounds save it through the
# mount, to a temp name renamed over the object (the old object is kept as
# tmp/prev.* and its chunks copied).
new_version() { # new_version ROUND
	local v=$(($1 / 2 % 2))
	if [ $(($1 % 2)) = 0 ]; then
		cp "${want[$v]}" "$store/t/i/copy"
		touch -d '-1 hour' "$store/t/i/copy"
		copy_want=${want[$v]}
	else
		mount_fg "$store" "$mnt" "$T/d3.log" -o rw
		"$PYTHON" - "${want[$v]}" "$mnt/t/i" <<'PY' || fail "round $1: re-save"
import os, sys, time
src, d = sys.argv[1:]
tmp = os.path.join(d, "index.faiss.tmp")
with open(tmp, "wb") as f:
    f.write(open(src, "rb").read())
    f.flush()
    os.fsync(f.fileno())
old = time.time() - 3600
os.utime(tmp, (old, old))
os.replace(tmp, os.path.join(d, "index.faiss"))
PY
		unmount "$mnt" "$FG_PID"
		index_want=${want[$v]}
	fi
}

unmount "$mnt" "$FG_PID"
index_want=$src/big copy_want=$src/big
cp "$src/big" "$store/t/i/copy"
touch -d '-1 hour' "$store/t/i/copy" "$store/t/i/index.faiss"

# start_rw: a rw daemon in the background, not waiting for it to be ready (the
# compaction starts with the mount's scan, before the mount is ready).
start_rw() {
	_mounts+=("$mnt")
	"$FAISSFS" mount -f "$store" "$mnt" -o rw 2>>"$T/d3.log" &
	FG_PID=$!
	_fg_pids+=("$FG_PID")
}
# The window: from the daemon's start until both files are published (their inode
# changes), plus a quarter; measured from Python to poll every half millisecond.
_mounts+=("$mnt")
window=$("$PYTHON" - "$FAISSFS" "$store" "$mnt" "$T/d3.log" <<'PY'
import os, subprocess, sys, time
faissfs, store, mnt, log = sys.argv[1:]
files = [os.path.join(store, "t/i", f) for f in ("index.faiss", "copy")]
before = [os.stat(f).st_ino for f in files]
t0 = time.monotonic()
p = subprocess.Popen([faissfs, "mount", "-f", store, mnt, "-o", "rw"], stderr=open(log, "a"))
while any(os.stat(f).st_ino == b for f, b in zip(files, before)):
    assert time.monotonic() - t0 < 60, "not compacted after 60 s"
    time.sleep(0.0005)
print(int((time.monotonic() - t0) * 1250) + 1)
while not os.path.ismount(mnt):
    time.sleep(0.01)
subprocess.run(["fusermount3", "-u", mnt], check=True)
sys.exit(p.wait())
PY
) || fail "measuring the compaction time"

rounds=${FAISSFS_CRASH_ITERATIONS:-8}
say "kill -9 at random points of the compaction of a 6 MB file ($rounds rounds, 0..$window ms)"
start=$SECONDS
for round in $(seq "$rounds"); do
	new_version "$round"
	start_rw
	delay=$(awk -v r="$RANDOM" -v w="$window" 'BEGIN { printf "%.3f", r % (w + 1) / 1000 }')
	sleep "$delay"
	kill_daemon
	mount_fg "$store" "$mnt" "$T/d4.log" -o compact=off
	cmp "$index_want" "$mnt/t/i/index.faiss" || fail "round $round: index.faiss torn"
	cmp "$copy_want" "$mnt/t/i/copy" || fail "round $round: copy torn"
	unmount "$mnt" "$FG_PID"
	for f in index.faiss copy; do
		"$FAISSFS" inspect "$store/t/i/$f" 2>/dev/null | grep -q 'plain file' &&
			echo "$round $f plain $delay" || echo "$round $f object $delay"
	done >>"$T/states"
done
plain=$(grep -c plain "$T/states" || true)
# A kill in the middle of a compaction leaves its temp object (verify --repair's).
mid=$(ls "$store/.faissfs/tmp" | grep -c '^obj\.' || true)
ok "never torn or missing in $rounds rounds ($((SECONDS - start)) s; files left plain: $plain of $((2 * rounds)); kills in the middle of writing an object: $mid)"
mount_fg "$store" "$mnt" "$T/d3.log" -o rw
until "$FAISSFS" inspect "$store/t/i/copy" 2>/dev/null | grep -q ': faissfs object$' &&
	"$FAISSFS" inspect "$store/t/i/index.faiss" 2>/dev/null | grep -q ': faissfs object$'; do
	sleep 0.05
done
unmount "$mnt" "$FG_PID"
n=$(ls "$store/.faissfs/tmp" | grep -c '^prev\.' || true)
[ "$n" -le 1 ] || fail "$n previous versions left in tmp/ (one path re-saved: at most 1)"
ls "$store/.faissfs/tmp" | grep -q '^unpack\.' && fail "unpack files left in tmp/"
"$FAISSFS" verify "$store" >/dev/null || fail "faissfs verify after the kills"
ok "compacted after a clean mount; $n previous version kept; faissfs verify"

say "ENOSPC on a full store (tmpfs of 8 MiB)"
mount -t tmpfs -o size=8m tmpfs "$small" || fail "mount tmpfs"
"$FAISSFS" init "$small/s" >/dev/null
mount_fg "$small/s" "$mnt" "$T/d5.log" -o rw,compact=off
head -c 1000000 "$src/big" >"$T/old"
cp "$T/old" "$mnt/index.faiss"
sync
"$PYTHON" - "$mnt" <<'PY' || fail "ENOSPC"
import errno, os, sys, time
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
# The kernel sends the release of the closed file asynchronously: its space comes
# back once the daemon has closed its staging fd, a moment after close() returned.
deadline = time.monotonic() + 10
while True:
    try:
        with open(os.path.join(d, "after"), "wb") as f:
            f.write(b"space again\n" * 1000)
            os.fsync(f.fileno())
        break
    except OSError as e:
        if e.errno != errno.ENOSPC or time.monotonic() > deadline:
            raise
        time.sleep(0.05)
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

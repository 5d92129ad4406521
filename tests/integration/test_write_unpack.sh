#!/usr/bin/env bash
# test_write_unpack.sh - opening an object for writing without O_TRUNC (unpack) on a
# -o rw mount, and the previous versions kept for chunk reuse:
# - two processes opening the same object for writing at once end on one plain file:
#   the bytes each writes through its own fd are both there (10 rounds);
# - the publish gate is not held while an object is copied: renames of another file
#   go through while a large object is being unpacked;
# - a previous version (tmp/prev.<hash of the path>) survives a kill -9 of the daemon,
#   the restarted daemon copies its chunks, then removes it; an unlink through the
#   mount removes it too; no unpack.* file is left behind.
. "$(dirname "$0")/lib.sh"

store=$T/store
mnt=$T/mnt
mkdir "$mnt"
make_mixed_file "$T/a" 3000000 5
make_mixed_file "$T/big" 64000000 6
"$FAISSFS" init "$store" >/dev/null || fail "faissfs init"
cp "$T/a" "$store/a"
cp "$T/big" "$store/big"
echo small >"$store/c"
"$FAISSFS" compact "$store" >/dev/null || fail "faissfs compact"

# is_object FILE: the store file FILE is an object.
is_object() { "$FAISSFS" inspect "$1" 2>/dev/null | grep -q ': faissfs object$'; }

say "two opens for writing of one object at once end on one plain file"
for round in $(seq 10); do
	is_object "$store/a" || fail "round $round: a is not an object to start with"
	mount_fg "$store" "$mnt" "$T/d1.log" -o rw,compact=off
	"$PYTHON" - "$mnt/a" "$round" <<'PY' || fail "round $round: concurrent opens"
import os, sys, threading
path, r = sys.argv[1], int(sys.argv[2])
start = threading.Barrier(2)
def write(off, tag):
    start.wait()
    fd = os.open(path, os.O_RDWR)
    os.pwrite(fd, tag, off)
    os.close(fd)
t = [threading.Thread(target=write, args=(off, tag))
     for off, tag in ((1000, b"first %d" % r), (2000000, b"second %d" % r))]
for x in t: x.start()
for x in t: x.join()
data = open(path, "rb").read()
assert data[1000:1000 + len(b"first %d" % r)] == b"first %d" % r, "first write lost"
assert data[2000000:2000000 + len(b"second %d" % r)] == b"second %d" % r, "second write lost"
PY
	unmount "$mnt" "$FG_PID"
	cp "$store/a" "$T/a.want"
	"$FAISSFS" compact "$store" >/dev/null || fail "faissfs compact"
	mount_fg "$store" "$mnt" "$T/d1.log"
	cmp "$T/a.want" "$mnt/a" || fail "round $round: a changed by its compaction"
	unmount "$mnt" "$FG_PID" # waits for the daemon: the next mount needs its lock
done
ls "$store/.faissfs/tmp" | grep -q '^unpack\.' && fail "unpack files left in tmp/"
ok "10 rounds: both writers' bytes in the one file; no unpack file left"

say "the gate is free while a 64 MB object is unpacked"
is_object "$store/big" || fail "big is not an object"
mount_fg "$store" "$mnt" "$T/d2.log" -o rw,compact=off
"$PYTHON" - "$mnt" <<'PY' || fail "renames during an unpack"
import os, sys, threading, time
mnt = sys.argv[1]
opened = []
def unpack():
    fd = os.open(os.path.join(mnt, "big"), os.O_RDWR)
    opened.append(time.monotonic())
    os.close(fd)
t0 = time.monotonic()
t = threading.Thread(target=unpack)
t.start()
time.sleep(0.02)
during, worst = 0, 0.0
while not opened:
    r0 = time.monotonic()
    os.rename(os.path.join(mnt, "c"), os.path.join(mnt, "c2"))
    os.rename(os.path.join(mnt, "c2"), os.path.join(mnt, "c"))
    if not opened:
        during += 1
        worst = max(worst, time.monotonic() - r0)
t.join()
took = opened[0] - t0
print(f"   {during} rename pairs during the {took:.2f} s open (slowest {worst * 1000:.0f} ms)")
if took >= 0.1:
    # Under the gate, the first rename would wait for the whole copy: one pair.
    assert during >= 5, "renames waited for the unpack"
else:
    print("   (too fast to tell)")
PY
cmp "$T/big" "$mnt/big" || fail "big changed by its unpack"
unmount "$mnt" "$FG_PID"
ok "renames are not held up by an unpack"

say "a previous version survives kill -9 and serves the restarted daemon"
mount_fg "$store" "$mnt" "$T/d3.log" -o rw
# A new version of a (an object): 1 % changed, written aside and renamed over it.
"$PYTHON" - "$mnt" "$T/a" <<'PY' || fail "re-save by rename"
import os, sys
mnt, src = sys.argv[1:]
data = bytearray(open(src, "rb").read())
data[100000:130000] = os.urandom(30000)
with open(os.path.join(mnt, "a.tmp"), "wb") as f:
    f.write(data)
    f.flush()
    os.fsync(f.fileno())
os.replace(os.path.join(mnt, "a.tmp"), os.path.join(mnt, "a"))
open(sys.argv[2] + ".v2", "wb").write(data)
PY
kill -KILL "$FG_PID"
wait "$FG_PID" 2>/dev/null || true
fusermount3 -uz "$mnt" 2>/dev/null || true
n=$(ls "$store/.faissfs/tmp" | grep -c '^prev\.' || true)
[ "$n" = 1 ] || fail "expected one prev.* in tmp/ after the kill, found $n"
mount_fg "$store" "$mnt" "$T/d4.log" -o rw
deadline=$((SECONDS + 60))
until grep -q 'compacted a: .* copied from the previous version' "$T/d4.log"; do
	[ "$SECONDS" -lt "$deadline" ] || { tail -n 5 "$T/d4.log" >&2; fail "no chunk reuse after the restart"; }
	sleep 0.2
done
line=$(grep -o 'compacted a: .*' "$T/d4.log")
copied=$(sed -E 's/.*: ([0-9]+) chunks copied.*/\1/' <<<"$line")
[ "$copied" -ge 8 ] || fail "only $copied chunks copied: $line"
deadline=$((SECONDS + 10))
while ls "$store/.faissfs/tmp" | grep -q '^prev\.'; do
	[ "$SECONDS" -lt "$deadline" ] || fail "prev.* still in tmp/ after the compaction"
	sleep 0.1
done
cmp "$T/a.v2" "$mnt/a" || fail "a wrong after its compaction"
ok "restarted daemon: $line; prev removed"

say "an unlink through the mount removes the kept previous version"
cp "$T/a" "$mnt/a.tmp"
mv "$mnt/a.tmp" "$mnt/a"
ls "$store/.faissfs/tmp" | grep -q '^prev\.' || fail "no prev.* kept by the rename"
rm "$mnt/a"
ls "$store/.faissfs/tmp" | grep -q '^prev\.' && fail "prev.* left after the unlink"
unmount "$mnt" "$FG_PID"
"$FAISSFS" verify "$store" >/dev/null || fail "faissfs verify"
ok "unlinked: prev removed; faissfs verify"

#!/usr/bin/env bash
# test_stress_read.sh - many concurrent readers and writers on one mount for a
# bounded time.
#
# Over several FAISS indices and large mixed files, in a store with small chunks
# and a mount with a small cache (so chunks are evicted and read again):
#   sequential readers   cmp every file of the mount against its source
#   random readers       random_reads: pread and mmap at random offsets, pages dropped
#   FAISS searchers      /usr/bin/python3 check_faiss.py: read_index (plain and mmap)
#                        and search, ids and distances equal to the originals
#   writers              on the same (-o rw) mount, files of their own: saved in
#                        place or to a temp name renamed over the old one, patched in
#                        place (an object is unpacked), deleted; each read back whole
#                        after it is written, and older ones again (the compactor
#                        turns them into objects meanwhile)
# Every byte read is compared with the source (readers) or with what was written
# (writers; and once more after a remount).  The daemon's resident memory
# (VmRSS) must stay within its cache budget plus a constant, and a watchdog fails
# the test if no reader makes progress for a while (a deadlock or a hang).
#
#   FAISSFS_STRESS_SECONDS=N   how long the readers run (default 30)
. "$(dirname "$0")/lib.sh"
: "${RANDOM_READS:?set RANDOM_READS to the random_reads program}"

secs=${FAISSFS_STRESS_SECONDS:-30}
cache_mb=8
slack_mb=96 # threads, their buffers, libfuse: what the daemon needs beside the cache
watchdog=30 # seconds without any progress that fail the test
store=$T/store
mnt=$T/mnt
ref=$T/gen/ref
mkdir -p "$mnt" "$T/progress"

say "data: FAISS indices of every type and three large mixed files"
"$PYTHON" "$IT_DIR/gen_indices.py" "$T/gen" >"$T/gen.log" 2>&1 ||
	fail "gen_indices.py failed: $(tail -n 3 "$T/gen.log")"
src=$T/gen/data
mkdir -p "$src/bulk/big"
for i in 1 2 3; do
	make_mixed_file "$src/bulk/big/part$i.bin" $((6000000 + i * 777777)) "$i"
done
"$FAISSFS" import "$src" "$store" --chunk-size 16K --no-progress >/dev/null ||
	fail "faissfs import failed"
nfiles=$(find "$src" -type f | wc -l)
total_mb=$(($(du -sb "$src" | cut -f1) >> 20))
ok "$nfiles files, $total_mb MiB, chunk size 16K"

mount_fg "$store" "$mnt" "$T/daemon.log" -o rw,cache_size=${cache_mb}M,log_level=debug
dpid=$FG_PID
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$dpid/status"; }
base_kb=$(rss_kb)
limit_kb=$((base_kb + (cache_mb + slack_mb) * 1024))
check_rss=1
if ldd "$FAISSFS" 2>/dev/null | grep -q 'libasan\|libtsan'; then
	check_rss=0 # a sanitizer's shadow memory and quarantine are not the daemon's
	skip "sanitizer build: VmRSS is reported, not held to the budget"
fi
ok "daemon $dpid: VmRSS $((base_kb / 1024)) MiB at start;" \
	"limit $((limit_kb / 1024)) MiB (start + ${cache_mb}M cache + ${slack_mb}M)"

stop=$T/stop
tick() { echo >>"$T/progress/$1"; }
failed() {
	echo "$1" >>"$T/failed"
	exit 1
}

seq_reader() { # NAME: cmp every file, in a shuffled order, again and again
	while [ ! -e "$stop" ]; do
		while IFS= read -r f; do
			[ -e "$stop" ] && break
			cmp -s "$src/$f" "$mnt/$f" || failed "$1: $f differs from its source"
			tick "$1"
		done < <(cd "$src" && find . -type f -printf '%P\n' | shuf)
	done
}

rand_reader() { # NAME SEED: random preads and mmap reads of the big files
	local s=$2
	while [ ! -e "$stop" ]; do
		for f in bulk/big/part1.bin bulk/big/part2.bin bulk/big/part3.bin; do
			s=$((s + 1))
			"$RANDOM_READS" -n 64 -s "$s" -c 16384 "$src/$f" "$mnt/$f" >"$T/$1.out" 2>&1 ||
				failed "$1: random_reads -s $s on $f: $(tail -n 2 "$T/$1.out")"
			tick "$1"
		done
	done
}

faiss_searcher() { # NAME: load every index (plain and mmap) and compare searches
	while [ ! -e "$stop" ]; do
		"$PYTHON" "$IT_DIR/check_faiss.py" "$ref" "$mnt" >"$T/$1.out" 2>&1 ||
			failed "$1: check_faiss.py: $(tail -n 3 "$T/$1.out")"
		tick "$1"
	done
}

writer() { # NAME SEED: write, replace, patch and delete files below w/NAME, check them
	"$PYTHON" - "$mnt/w/$1" "$stop" "$T/progress/$1" "$2" "$T/$1.state" >"$T/$1.out" 2>&1 <<'PY' ||
import hashlib, json, os, random, sys
d, stop, prog, seed, state = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
r = random.Random(seed)
os.makedirs(d, exist_ok=True)
want = {}  # name -> bytes
def content():
    out, size = bytearray(), r.randint(5000, 3000000)
    while len(out) < size:  # random runs and zero runs: compressible in part
        n = r.randint(1000, 200000)
        out += r.randbytes(n) if r.random() < 0.6 else bytes(n)
    return bytes(out[:size])
def check(name):
    with open(os.path.join(d, name), "rb") as f:
        got = f.read()
    if got != want[name]:
        sys.exit(f"{name}: {len(got)} bytes read back differ from the {len(want[name])} written")
while not os.path.exists(stop):
    name = f"f{r.randrange(24)}"  # each left alone for seconds: compacted
    p = os.path.join(d, name)
    op = r.choices(["inplace", "rename", "patch", "delete"], [4, 4, 2, 1])[0]
    if op == "patch" and name in want and len(want[name]) > 8192:
        off = r.randrange(0, len(want[name]) - 4096)
        new = r.randbytes(4096)
        fd = os.open(p, os.O_RDWR)
        os.pwrite(fd, new, off)
        os.close(fd)
        want[name] = want[name][:off] + new + want[name][off + 4096:]
    elif op == "delete" and name in want:
        os.unlink(p)
        del want[name]
    elif op in ("inplace", "rename"):
        data = content()
        target = p + ".tmp" if op == "rename" else p
        with open(target, "wb") as f:
            for i in range(0, len(data), 1 << 20):
                f.write(data[i:i + (1 << 20)])
        if op == "rename":
            os.rename(target, p)
        want[name] = data
    if name in want:
        check(name)
    if want:
        check(r.choice(sorted(want)))  # an older one, perhaps compacted since
    with open(prog, "a") as f:
        f.write("\n")
with open(state, "w") as f:
    json.dump({k: hashlib.sha256(v).hexdigest() for k, v in want.items()}, f)
PY
		failed "$1: $(tail -n 3 "$T/$1.out")"
}

say "$secs s of readers: 4 sequential, 3 random (pread + mmap), 2 FAISS searchers;" \
	"2 writers"
pids=()
for i in 1 2; do
	writer "write$i" "$i" &
	pids+=($!)
done
for i in 1 2 3 4; do
	seq_reader "seq$i" &
	pids+=($!)
done
for i in 1 2 3; do
	rand_reader "rand$i" $((i * 1000)) &
	pids+=($!)
done
for i in 1 2; do
	faiss_searcher "faiss$i" &
	pids+=($!)
done

progress() { cat "$T"/progress/* 2>/dev/null | wc -l; }
stop_fail() { # MESSAGE: stop the readers, then fail
	touch "$stop"
	kill "${pids[@]}" 2>/dev/null
	wait 2>/dev/null
	fail "$1"
}
peak_kb=$base_kb
last=0
last_t=$SECONDS
end=$((SECONDS + secs))
while [ $SECONDS -lt $end ]; do
	sleep 1
	[ ! -e "$T/failed" ] || break
	kill -0 "$dpid" 2>/dev/null || stop_fail "the daemon died under load"
	kb=$(rss_kb)
	[ "$kb" -gt "$peak_kb" ] && peak_kb=$kb
	if [ "$check_rss" = 1 ] && [ "$kb" -gt "$limit_kb" ]; then
		stop_fail "daemon VmRSS $((kb / 1024)) MiB exceeds its budget of $((limit_kb / 1024)) MiB"
	fi
	now=$(progress)
	if [ "$now" -gt "$last" ]; then
		last=$now
		last_t=$SECONDS
	elif [ $((SECONDS - last_t)) -ge $watchdog ]; then
		for t in /proc/"$dpid"/task/*; do
			echo "   thread $(basename "$t"): $(cat "$t/comm") $(cat "$t/wchan" 2>/dev/null)"
		done >&2
		stop_fail "watchdog: no reader made progress for $watchdog s (deadlock or hang?)"
	fi
done
touch "$stop"
# Readers finish the unit they are in; the watchdog bounds that too.
deadline=$((SECONDS + watchdog + 30))
for p in "${pids[@]}"; do
	while kill -0 "$p" 2>/dev/null; do
		[ $SECONDS -lt $deadline ] || stop_fail "a reader did not stop within $((watchdog + 30)) s"
		sleep 0.2
	done
	wait "$p" 2>/dev/null || true
done
if [ -e "$T/failed" ]; then
	sed 's/^/   /' "$T/failed" >&2
	fail "a reader saw wrong bytes or an error"
fi
for f in "$T"/progress/*; do
	printf '   %-7s %6d units\n' "$(basename "$f")" "$(wc -l <"$f")"
done
ok "$(progress) units of work, every byte equal to the source or to what was written" \
	"($(grep -c 'compacted ' "$T/daemon.log" || true) files compacted meanwhile);" \
	"peak VmRSS $((peak_kb / 1024)) MiB (limit $((limit_kb / 1024)) MiB)"
! grep -E ' error ' "$T/daemon.log" || fail "the daemon logged errors"
unmount "$mnt" "$dpid"
ok "the daemon exited cleanly after the load"

say "the writers' files after a remount"
mount_fg "$store" "$mnt" "$T/daemon2.log" -o ro
"$PYTHON" - "$mnt/w" "$T"/write*.state <<'PY' || fail "a writer's file changed after the remount"
import hashlib, json, os, sys
n = 0
for state in sys.argv[2:]:
    name = os.path.basename(state).split(".")[0]
    for f, h in json.load(open(state)).items():
        with open(os.path.join(sys.argv[1], name, f), "rb") as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == h, f"{name}/{f}"
        n += 1
print(f"   {n} files as last written")
PY
unmount "$mnt" "$FG_PID"
ok "every writer's file intact"

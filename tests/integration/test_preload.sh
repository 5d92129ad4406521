#!/usr/bin/env bash
# test_preload.sh - access counts and -o preload on real mounts:
# - a writable mount counts the opens of each index file and saves them in
#   STORE/.faissfs/access at unmount; a read-only mount keeps its counts in memory;
# - a mount with -o preload=2 reports ready first, then warms the 2 most opened indices
#   into the cache: their first reads are cache hits (no miss), the others are not;
# - a preload larger than the cache stops at half the budget, evicting nothing;
# - a damaged access file is ignored with a log line and replaced at the next save.
. "$(dirname "$0")/lib.sh"

store=$T/store
mnt=$T/mnt
src=$T/src
mkdir -p "$mnt" "$src"

say "data: four IndexFlatL2 of 0.5 to 1.5 MiB (random vectors), 64K chunks"
"$PYTHON" - "$src" <<'PY' || fail "cannot make the indices"
import os, sys
import faiss
import numpy as np
rng = np.random.default_rng(9)
for name, n in (("a", 4096), ("b", 6144), ("c", 4096), ("d", 2048)):
    os.makedirs(f"{sys.argv[1]}/acme/{name}")
    ix = faiss.IndexFlatL2(64)
    ix.add(rng.random((n, 64), dtype=np.float32))
    faiss.write_index(ix, f"{sys.argv[1]}/acme/{name}/index.faiss")
    with open(f"{sys.argv[1]}/acme/{name}/metadata.json", "w") as f:
        f.write('{"name": "%s"}\n' % name)
PY
"$FAISSFS" import "$src" "$store" --chunk-size 64K --no-progress >/dev/null ||
	fail "faissfs import failed"
size() { stat -c %s "$src/acme/$1/index.faiss"; }

# metric NAME: the value of an unlabelled metric of the mount at $mnt.
metric() {
	awk -v n="$1" '$1 == n { print $2; found = 1 } END { exit !found }' \
		"$mnt/.faissfs/metrics" || fail "no metric $1"
}

# wait_preloaded: until the preload thread has finished (deadline 60 s).
wait_preloaded() {
	local i
	for ((i = 0; i < 600; i++)); do
		[ "$(metric faissfs_preload_running)" = 0 ] && grep -q 'preload: ' "$1" && return
		sleep 0.1
	done
	fail "preloading did not finish within 60 s ($(grep preload "$1"))"
}

# opens INDEX N: opens INDEX N times, reading its first bytes.
opens() {
	local i
	for ((i = 0; i < $2; i++)); do
		head -c 64 "$mnt/acme/$1/index.faiss" >/dev/null || fail "cannot read $1"
	done
}

say "writable mount: opens counted, saved at unmount"
mount_fg "$store" "$mnt" "$T/count.log" -o rw,readahead=0
opens b 5
opens c 3
opens a 1
cat "$mnt/acme/d/metadata.json" >/dev/null # not an index: not counted
[ "$(metric faissfs_access_tracked_indices)" = 3 ] || fail "want 3 indices tracked"
unmount "$mnt" "$FG_PID"
acc=$store/.faissfs/access
[ -f "$acc" ] || fail "no $acc after unmount"
want=$(printf 'faissfs-access 1\n1\tacme/a/index.faiss\n5\tacme/b/index.faiss\n3\tacme/c/index.faiss\nend')
[ "$(head -n 1 "$acc"; sed '1d;$d' "$acc" | sort -k2; tail -n 1 "$acc")" = "$want" ] ||
	fail "access file: $(cat "$acc")"
ok "access file: b 5, c 3, a 1 opens, d and metadata.json not counted"

say "read-only mount, -o preload=2 with a 16M cache: b and c warmed after ready"
before=$(sha256sum <"$acc")
t0=$(date +%s%N)
mount_fg "$store" "$mnt" "$T/pre.log" -o ro,preload=2,cache_size=16M,readahead=0
t_ready=$((($(date +%s%N) - t0) / 1000000))
wait_preloaded "$T/pre.log"
t_done=$((($(date +%s%N) - t0) / 1000000))
grep -n 'mounted \|preload: ' "$T/pre.log" | sed 's/^/   log: /'
l_mount=$(grep -n 'mounted ' "$T/pre.log" | head -n 1 | cut -d: -f1)
l_pre=$(grep -n 'preload: ' "$T/pre.log" | head -n 1 | cut -d: -f1)
[ "$l_mount" -lt "$l_pre" ] || fail "preloading logged before the mount was ready"
[ "$(metric faissfs_preload_indices_total)" = 2 ] || fail "want 2 indices preloaded"
pb=$(metric faissfs_preload_bytes_total)
[ "$pb" = $(($(size b) + $(size c))) ] || fail "preloaded $pb bytes, want b + c"
[ "$(metric faissfs_cache_evictions_total)" = 0 ] || fail "preloading evicted chunks"
[ "$(metric faissfs_cache_bytes)" -le "$(metric faissfs_cache_budget_bytes)" ] ||
	fail "cache over budget"
ok "ready in $t_ready ms, b + c ($pb bytes) preloaded by $t_done ms, no eviction"
m0=$(metric faissfs_cache_misses_total)
h0=$(metric faissfs_cache_hits_total)
cmp "$src/acme/b/index.faiss" "$mnt/acme/b/index.faiss" || fail "b differs"
cmp "$src/acme/c/index.faiss" "$mnt/acme/c/index.faiss" || fail "c differs"
m1=$(metric faissfs_cache_misses_total)
h1=$(metric faissfs_cache_hits_total)
[ "$m1" = "$m0" ] || fail "reading the preloaded b and c missed the cache $((m1 - m0)) times"
[ "$h1" -gt "$h0" ] || fail "reading b and c made no cache hit"
cmp "$src/acme/a/index.faiss" "$mnt/acme/a/index.faiss" || fail "a differs"
[ "$(metric faissfs_cache_misses_total)" -gt "$m1" ] || fail "a (not preloaded) made no miss"
ok "first reads of b and c: $((h1 - h0)) hits, 0 misses; a (not preloaded) misses"
opens d 4
unmount "$mnt" "$FG_PID"
[ "$(sha256sum <"$acc")" = "$before" ] || fail "a read-only mount changed $acc"
grep -q 'access counts are kept in memory' "$T/pre.log" || fail "the read-only mount did not say so"
ok "the read-only mount left the access file as it was, and said so"

say "preload larger than the cache: -o preload=4,cache_size=1M stops at half of it"
mount_fg "$store" "$mnt" "$T/full.log" -o ro,preload=4,cache_size=1M,readahead=0
wait_preloaded "$T/full.log"
pb=$(metric faissfs_preload_bytes_total)
budget=$(metric faissfs_cache_budget_bytes)
[ "$pb" -gt 0 ] && [ "$pb" -le $((budget / 2)) ] ||
	fail "preloaded $pb bytes with a $budget byte budget (want 0 < it <= half)"
[ "$(metric faissfs_cache_evictions_total)" = 0 ] || fail "preloading evicted chunks"
[ "$(metric faissfs_cache_bytes)" -le "$budget" ] || fail "cache over budget"
grep -q 'preload: stopped in acme/b/index.faiss' "$T/full.log" ||
	fail "no 'preload: stopped' line ($(grep preload "$T/full.log"))"
ok "$pb of $budget budget bytes preloaded, then stopped; no eviction"
unmount "$mnt" "$FG_PID"

say "damaged access file: ignored with a log line, replaced at the next save"
printf 'faissfs-access 1\n5\tacme/b/index.faiss\n' >"$acc" # no end line
mount_fg "$store" "$mnt" "$T/bad.log" -o rw,preload=2,readahead=0
wait_preloaded "$T/bad.log"
grep -q 'access counts are ignored' "$T/bad.log" || fail "no log line about the damaged file"
[ "$(metric faissfs_preload_indices_total)" = 0 ] || fail "preloaded from a damaged file"
opens d 2
unmount "$mnt" "$FG_PID"
[ "$(cat "$acc")" = "$(printf 'faissfs-access 1\n2\tacme/d/index.faiss\nend')" ] ||
	fail "access file after the save: $(cat "$acc")"
ok "ignored, then replaced by the new counts"

say "preloading waits while files are read"
# A 192 MiB index to preload (1 MiB chunks) and a 32 MiB file that a reader reads over
# and over from the moment the mount is up.  While it reads, preloading may only take
# a chunk after each 20 ms without a read, so it cannot finish 192 chunks in the second
# the reader runs; once the reader stops, it finishes.
big=$T/big
mkdir -p "$big/src"
"$PYTHON" - "$big/src" <<'PY' || fail "cannot make the big index"
import sys
import faiss
import numpy as np
rng = np.random.default_rng(4)
ix = faiss.IndexFlatL2(64)
for _ in range(12):  # 12 x 65536 x 64 floats = 192 MiB, small integers: compressible
    ix.add(rng.integers(0, 8, (65536, 64)).astype(np.float32))
faiss.write_index(ix, sys.argv[1] + "/big.faiss")
with open(sys.argv[1] + "/r.bin", "wb") as f:
    f.write(rng.integers(0, 4, 32 << 20, dtype=np.uint8).tobytes())
PY
"$FAISSFS" import "$big/src" "$big/store" --no-progress >/dev/null || fail "import failed"
printf 'faissfs-access 1\n9\tbig.faiss\nend\n' >"$big/store/.faissfs/access"
bigsize=$(stat -c %s "$big/src/big.faiss")
"$PYTHON" - "$mnt/r.bin" <<'PY' >"$T/reader.out" 2>&1 &
import os, sys, time
path = sys.argv[1]
while not os.path.exists(path):  # from the moment the mount is up
    time.sleep(0.001)
end, n = time.monotonic() + 1.0, 0
fd = os.open(path, os.O_RDONLY)
while time.monotonic() < end:
    if not os.read(fd, 1 << 20):  # at EOF: drop the pages, read it again
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.lseek(fd, 0, os.SEEK_SET)
    n += 1
print("reader: %d reads of 1 MiB" % n)
PY
reader=$!
mount_fg "$big/store" "$mnt" "$T/yield.log" -o ro,preload=1,cache_size=1G,readahead=0
wait "$reader" || fail "the reader failed: $(cat "$T/reader.out")"
during=$(metric faissfs_preload_bytes_total)
pauses=$(metric faissfs_preload_pauses_total)
wait_preloaded "$T/yield.log"
after=$(metric faissfs_preload_bytes_total)
sed 's/^/   /' "$T/reader.out"
[ "$pauses" -gt 0 ] || fail "preloading never paused for the reader"
[ "$during" -lt "$bigsize" ] ||
	fail "preloading finished while the reader ran ($during of $bigsize bytes)"
[ "$after" = "$bigsize" ] || fail "preloaded $after of $bigsize bytes after the reader"
ok "while the reader ran: $((during >> 20)) of $((bigsize >> 20)) MiB preloaded, $pauses pauses; all of it after"
unmount "$mnt" "$FG_PID"

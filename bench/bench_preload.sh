#!/usr/bin/env bash
# bench_preload.sh - -o preload=N: mount to ready, time to warm the N most opened
# indices, and the daemon's RSS before and after, for several N.
#
#     sudo bench/bench_preload.sh [BUILD_DIR [COUNT [MIB]]]
#
# Makes COUNT (default 20) IndexFlatL2 files of MIB (default 16) MiB of float noise
# in a FAISSx data dir, imports it, opens index i (COUNT - i) times on a writable
# mount so the access counts rank them, unmounts (the counts are saved), then for
# each N mounts with -o ro,preload=N,cache_size=1G: the time from `faissfs mount`
# to ready, the time until faissfs_preload_running drops to 0, the bytes preloaded
# and the daemon's VmRSS at ready and after.  Needs root, /dev/fuse and
# /usr/bin/python3 with faiss and numpy.  Work dir: a private mktemp -d, removed.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
count=${2:-20}
mib=${3:-16}
FAISSFS=$build/faissfs
PY=/usr/bin/python3
[ -x "$FAISSFS" ] || { echo "bench_preload: no $FAISSFS (build first)" >&2; exit 1; }

W=$(mktemp -d /tmp/faissfs-bench-preload.XXXXXX)
mnt=$W/mnt
FFS_PID=
cleanup() {
	set +e
	mountpoint -q "$mnt" && fusermount3 -uz "$mnt"
	[ -n "$FFS_PID" ] && wait "$FFS_PID" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
mkdir "$mnt"

# mount_ready OPTS: starts the daemon in the foreground, returns once it wrote
# "ready" on fd 3.  Sets FFS_PID and READY (the seconds it took).
mount_ready() {
	local fifo=$W/ready t0 t1
	rm -f "$fifo"
	mkfifo "$fifo"
	t0=$(date +%s.%N)
	"$FAISSFS" mount -f "$W/store" "$mnt" -o "ready_fd=3,$1" 3>"$fifo" >>"$W/daemon.log" 2>&1 &
	FFS_PID=$!
	read -r _ <"$fifo"
	t1=$(date +%s.%N)
	READY=$(echo "$t1 - $t0" | bc -l)
}
unmount() {
	fusermount3 -u "$mnt"
	wait "$FFS_PID" || true
	FFS_PID=
}
metric() { awk -v k="$1" '$1 == k { print $2 }' "$mnt/.faissfs/metrics"; }
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$FFS_PID/status"; }

echo "== $count IndexFlatL2 of $mib MiB (float noise), imported" >&2
"$PY" - "$W/data" "$count" "$mib" <<'PY'
import os, sys
import faiss, numpy as np
root, count, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
d = 128
n = mib * 1024 * 1024 // (4 * d)
rng = np.random.default_rng(1)
for i in range(count):
    p = os.path.join(root, "acme", f"idx{i:03d}")
    os.makedirs(p)
    ix = faiss.IndexFlatL2(d)
    ix.add(rng.standard_normal((n, d), dtype=np.float32))
    faiss.write_index(ix, os.path.join(p, "index.faiss"))
PY
"$FAISSFS" import "$W/data" "$W/store" >/dev/null

echo "== opening index i (COUNT - i) times to rank them" >&2
mount_ready rw
"$PY" - "$mnt" "$count" <<'PY'
import os, sys
mnt, count = sys.argv[1], int(sys.argv[2])
for i in range(count):
    for _ in range(count - i):
        with open(os.path.join(mnt, "acme", f"idx{i:03d}", "index.faiss"), "rb") as f:
            f.read(64)
PY
unmount

printf '\n## -o preload=N (%d indices of %d MiB, cache_size=1G, %s)\n\n' "$count" "$mib" "$(date -u +%F)"
echo "| preload | mount to ready (ms) | preloaded (MiB) | time to preload (s) | MiB/s | RSS at ready (MiB) | RSS after (MiB) |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
for n in 0 5 10 "$count"; do
	sync
	echo 3 >/proc/sys/vm/drop_caches
	t0=$(date +%s.%N)
	mount_ready "ro,cache_size=1G,preload=$n"
	ready=$READY
	rss0=$(rss_kib)
	while [ "$(metric faissfs_preload_running)" = 1 ] || [ -z "$(metric faissfs_preload_running)" ]; do
		[ "$n" = 0 ] && break
		sleep 0.01
	done
	t1=$(date +%s.%N)
	bytes=$(metric faissfs_preload_bytes_total)
	bytes=${bytes:-0}
	rss1=$(rss_kib)
	took=$(echo "$t1 - $t0 - $ready" | bc -l)
	[ "$n" = 0 ] && took=0
	mbs=$( [ "$n" = 0 ] && echo - || echo "scale=0; $bytes / 1048576 / $took" | bc -l)
	printf '| %s | %.1f | %.0f | %.2f | %s | %.1f | %.1f |\n' "$n" "$(echo "$ready * 1000" | bc -l)" \
		"$(echo "$bytes / 1048576" | bc -l)" "$took" "$mbs" "$(echo "$rss0 / 1024" | bc -l)" \
		"$(echo "$rss1 / 1024" | bc -l)"
	unmount
done

#!/usr/bin/env bash
# Mount option sweep: how the read defaults were chosen (one option varied at a time
# around the defaults).  For each setting: cold sequential read of the ~1 GiB IndexFlat,
# cold fio 4 KiB random reads (psync, 4 jobs), and cold IVF mmap queries (nprobe 16),
# plus the daemon's RSS after the sequential read.
#
#     sudo bench/sweep_read.sh [BUILD_DIR]
#
# Uses the store made by bench/bench_read.sh (run it once first).  Env: BENCH_DIR, DATA
# as there; RUNTIME (fio seconds, default 5); QUERIES (default 300);
# SETTINGS (default: the list below, one "-o ..." per line).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
FFS=$build/faissfs
B=${BENCH_DIR:-/var/tmp/faissfs-bench-read}
RUNTIME=${RUNTIME:-5}
QUERIES=${QUERIES:-300}
PY=/usr/bin/python3
[ "$(id -u)" = 0 ] || { echo "sweep_read: run as root" >&2; exit 1; }
[ -f "$B/store.done" ] || { echo "sweep_read: run bench/bench_read.sh once first" >&2; exit 1; }
SETTINGS=${SETTINGS:-"readahead=8
readahead=0
readahead=4
readahead=16
readahead=32
workers=1
threads=4
threads=16
kernel_readahead=0
kernel_readahead=512K
cache_size=64M
cache_size=1G"}
m=$B/mnt/sweep
mkdir -p "$m"
pid=
trap 'mountpoint -q "$m" && fusermount3 -u "$m" || true' EXIT
now() { date +%s.%N; }
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
up() {
	drop
	"$FFS" mount -f "$B/store" "$m" -o log_level=warn,"$1" &
	pid=$!
	for _ in $(seq 400); do mountpoint -q "$m" && return; sleep 0.05; done
	echo "sweep_read: mount with -o $1 failed" >&2
	exit 1
}
down() { fusermount3 -u "$m"; wait "$pid" || true; }

printf '| -o | seq cold MiB/s | RSS MiB | fio 4K rand 4 jobs MiB/s | IVF mmap cold q/s |\n|---|---|---|---|---|\n'
while IFS= read -r s; do
	[ -n "$s" ] || continue
	up "$s"
	size=$(stat -c %s "$m/big/flat.faiss")
	t0=$(now); dd if="$m/big/flat.faiss" of=/dev/null bs=1M status=none; t1=$(now)
	seq=$(echo "scale=0; $size / 1048576 / ($t1 - $t0)" | bc -l)
	rss=$(awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/$pid/status")
	down
	up "$s"
	rnd=$(fio --name=r --filename="$m/big/flat.faiss" --rw=randread --bs=4k --ioengine=psync \
		--numjobs=4 --time_based --runtime="$RUNTIME" --group_reporting --output-format=terse \
		--terse-version=3 --readonly 2>/dev/null | awk -F';' '{printf "%.1f", $7/1024}')
	down
	up "$s"
	qps=$($PY - "$m/types/IVFFlat.faiss" "$QUERIES" <<'PY'
import sys, time
import faiss, numpy as np
ix = faiss.read_index(sys.argv[1], faiss.IO_FLAG_MMAP)
faiss.extract_index_ivf(ix).nprobe = 16
q = np.random.default_rng(3).standard_normal((int(sys.argv[2]), ix.d)).astype("float32")
t = time.perf_counter()
for i in range(len(q)):
    ix.search(q[i:i + 1], 10)
print("%.0f" % (len(q) / (time.perf_counter() - t)))
PY
)
	down
	printf '| %s | %s | %s | %s | %s |\n' "$s" "$seq" "$rss" "$rnd" "$qps"
done <<<"$SETTINGS"

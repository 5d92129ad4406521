#!/usr/bin/env bash
# bench_huge.sh - a billion-vector file: an IndexFlatL2 of N vectors of d 128
# (default 1,000,000,000: 512 GB) written as an object by bench_huge_object,
# mounted, opened, its header read and READS random ranges compared with the
# expected bytes; the daemon's memory before and after.  Also times
# `faissfs import` of a sparse IndexFlatL2 file of IMPORT_GIB GiB (default 100:
# a header, then holes, as `truncate` makes it) and checks it on a mount.
#
#   bench_huge.sh [WORKDIR [N [READS [IMPORT_GIB]]]]
#
# Environment: FAISSFS, HUGE_OBJECT (default: build/ paths).  Needs root, /dev/fuse.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
W=${1:-/tmp/faissfs-huge}
n=${2:-1000000000}
reads=${3:-2000}
igib=${4:-100}
FAISSFS=${FAISSFS:-$here/../build/faissfs}
HUGE_OBJECT=${HUGE_OBJECT:-$here/../build/bench/bench_huge_object}
export LC_ALL=C

rm -rf -- "$W"
mkdir -p "$W/mnt" "$W/src/acme/sparse"
pid=
cleanup() {
	if awk -v p="$W/mnt" '$5 == p { f = 1 } END { exit !f }' /proc/self/mountinfo; then
		fusermount3 -u "$W/mnt" 2>/dev/null || fusermount3 -uz "$W/mnt"
	fi
	[ -z "$pid" ] || wait "$pid" 2>/dev/null || true
	rm -rf -- "$W"
}
trap cleanup EXIT
status() { awk '/^(VmRSS|RssAnon|RssFile)/ { printf "%s %s KiB  ", $1, $2 }' "/proc/$pid/status"; }

"$FAISSFS" init "$W/store" >/dev/null
"$HUGE_OBJECT" write "$W/store" acme/billion index.faiss "$n" 128
obj=$W/store/acme/billion/index.faiss
nchunks=$(( (45 + n * 512 + 262143) / 262144 ))
echo "object: $(stat -c %s "$obj") bytes on disk; chunk table $((nchunks * 24)) bytes" \
	"($nchunks chunks x 24 B = $(awk -v c="$nchunks" -v s=$((45 + n * 512)) \
		'BEGIN { printf "%.1f MiB per TiB", c * 24 / (s / 2^40) / 2^20 }'))"

fifo=$W/ready
mkfifo "$fifo"
"$FAISSFS" mount -f "$W/store" "$W/mnt" -o ready_fd=3 3>"$fifo" >/dev/null 2>"$W/daemon.log" &
pid=$!
read -r -t 60 line <"$fifo" || true
[ "$line" = ready ] || { cat "$W/daemon.log" >&2; exit 1; }
echo "daemon after mount:      $(status)"
"$HUGE_OBJECT" check "$W/mnt/acme/billion/index.faiss" "$n" 128 1024 "$reads" 1
echo "daemon after the reads:  $(status)"
"$FAISSFS" stat "$W/mnt"
fusermount3 -u "$W/mnt"
wait "$pid" || true
pid=

"${PYTHON:-/usr/bin/python3}" -c '
import struct, sys
d, n = 128, (int(sys.argv[1]) * 2**30 - 45) // 512
sys.stdout.buffer.write(struct.pack("<4siqqq?iQ", b"IxF2", d, n, 1 << 20, 1 << 20, True, 1, d * 4 * n))' \
	"$igib" >"$W/src/acme/sparse/index.faiss"
isize=$((45 + ((igib << 30) - 45) / 512 * 512))
truncate -s "$isize" "$W/src/acme/sparse/index.faiss"
t0=$(date +%s%N)
"$FAISSFS" import "$W/src" "$W/store2" --no-progress >/dev/null 2>&1
t1=$(date +%s%N)
awk -v a="$t0" -v b="$t1" -v sz="$isize" -v n="$n" 'BEGIN { s = (b - a) / 1e9; r = sz / s;
	printf "faissfs import of a %.0f GB sparse file: %.1f s (%.1f GB/s; %.0f s for %d vectors)\n",
		sz / 1e9, s, r / 1e9, (45 + n * 512) / r, n }'
echo "store2: $(du -sh "$W/store2" | cut -f1) on disk"

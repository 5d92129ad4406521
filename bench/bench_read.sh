#!/usr/bin/env bash
# Read benchmark: plain disk, a minimal passthrough FUSE daemon, squashfuse_ll and faissfs,
# measured side by side in one run and printed as ratios with the targets of the read
# performance work (met or missed, by how much).
#
#     sudo bench/bench_read.sh [BUILD_DIR]      (default build/; root: drop_caches, mounts)
#
# Needs: faissfs and bench/ffs_passthrough in BUILD_DIR, squashfuse_ll, mksquashfs, fio,
# /usr/bin/python3 with faiss.  Data: bench/gen_bench_data.py --flat-mib 512 (a 512 MiB
# IndexFlat, 1M x 128, and one index per type), made once in DATA.
# Env: BENCH_DIR (default /var/tmp/faissfs-bench-read; stores, image, mount points),
#      DATA (default /var/tmp/faissfs-bench/data, shared with bench.sh; made if missing),
#      RUNTIME (fio seconds per run, default 10), QUERIES (default 1000),
#      FFS_OPTS (extra faissfs mount options, e.g. "-o readahead=0").
# Cold = `echo 3 > /proc/sys/vm/drop_caches` and a fresh mount (empty chunk cache).
# Backing-hot = the files under the mount (the data dir, the squashfs image, the store) in
# the page cache, the FUSE side empty (a fresh mount): what the FUSE layer itself costs.
# Every cold run is preceded by one unmeasured read of the same source from disk, so that
# the virtual disk's host-side cache is in the same state for every path.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
FFS=$build/faissfs
PT=$build/bench/ffs_passthrough
B=${BENCH_DIR:-/var/tmp/faissfs-bench-read}
DATA=${DATA:-/var/tmp/faissfs-bench/data}
RUNTIME=${RUNTIME:-10}
QUERIES=${QUERIES:-1000}
FFS_OPTS=${FFS_OPTS:-}
PY=/usr/bin/python3
PATHS="disk pt sq ffs"

die() { echo "bench_read: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (drop_caches, mounts)"
[ -x "$FFS" ] || die "$FFS not found: build first (cmake --build $build)"
[ -x "$PT" ] || die "$PT not found: build the ffs_passthrough target"
for t in squashfuse_ll mksquashfs fio bc; do
	command -v $t >/dev/null || die "$t not found (scripts/install-deps.sh installs it)"
done

mkdir -p "$B/mnt/pt" "$B/mnt/sq" "$B/mnt/ffs"
declare -A PID
cleanup() {
	for p in pt sq ffs; do
		mountpoint -q "$B/mnt/$p" && fusermount3 -u "$B/mnt/$p" || true
	done
}
trap cleanup EXIT
cleanup

if [ ! -f "$DATA/big/flat.faiss" ] || [ ! -f "$DATA/types/IVFFlat.faiss" ]; then
	echo "== generating data in $DATA (once)"
	$PY "$top/bench/gen_bench_data.py" "$DATA" --flat-mib 512
fi
flat=big/flat.faiss
size=$(stat -c %s "$DATA/$flat")
total=$(du -sb --exclude='.done-*' "$DATA" | cut -f1)

if [ ! -f "$B/store.done" ] || [ "$B/store.done" -ot "$FFS" ]; then
	echo "== faissfs import (default chunk size and level)"
	rm -rf "$B/store" "$B/store.done"
	"$FFS" import --no-progress "$DATA" "$B/store" >/dev/null
	touch "$B/store.done"
fi
if [ ! -f "$B/data.sqfs" ] || [ "$B/data.sqfs" -ot "$DATA/$flat" ]; then
	echo "== mksquashfs -comp zstd (baseline image)"
	rm -f "$B/data.sqfs"
	mksquashfs "$DATA" "$B/data.sqfs" -comp zstd -quiet -no-progress >/dev/null
fi

now() { date +%s.%N; }
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
mbps() { echo "scale=1; $1 / 1048576 / $2" | bc -l; }

# up PATH [faissfs options...]: mounts PATH's filesystem (nothing for disk), sets F to
# the directory to read from.  down: unmounts and waits for the daemon to exit.
up() {
	local p=$1 m=$B/mnt/$1
	shift
	case $p in
	disk) F=$DATA; return ;;
	pt) "$PT" "$DATA" "$m" & ;;
	sq) squashfuse_ll -f "$B/data.sqfs" "$m" & ;;
	ffs) "$FFS" mount -f "$B/store" "$m" -o log_level=warn $FFS_OPTS "$@" & ;;
	esac
	PID[$p]=$!
	for _ in $(seq 400); do
		mountpoint -q "$m" && break
		sleep 0.05
	done
	mountpoint -q "$m" || die "$p did not mount at $m"
	F=$m
}
# backing PATH: the files PATH's filesystem reads from.
backing() {
	case $1 in
	disk | pt) echo "$DATA" ;;
	sq) echo "$B/data.sqfs" ;;
	ffs) echo "$B/store" ;;
	esac
}
# warm_backing PATH: reads them into the page cache.
warm_backing() { find "$(backing "$1")" -type f -exec cat {} + >/dev/null; }
down() {
	local p=$1
	[ "$p" = disk ] && return
	fusermount3 -u "$B/mnt/$p"
	wait "${PID[$p]}" || true
}
rss_mib() { awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

best() { printf '%s\n' "$@" | sort -g | tail -n 1; }
seq_read() { # FILE -> MiB/s
	local t0 t1
	t0=$(now)
	dd if="$1" of=/dev/null bs=1M status=none
	t1=$(now)
	mbps "$size" "$(echo "$t1 - $t0" | bc -l)"
}
fio_run() { # FILE ENGINE JOBS -> MiB/s
	fio --name=r --filename="$1" --rw=randread --bs=4k --ioengine="$2" --numjobs="$3" \
		--time_based --runtime="$RUNTIME" --group_reporting --output-format=terse \
		--terse-version=3 --readonly 2>/dev/null | awk -F';' '{printf "%.1f", $7/1024}'
}
read_index() { # FILE -> seconds
	$PY -c 'import faiss,sys,time; t=time.time(); faiss.read_index(sys.argv[1]); print("%.3f" % (time.time()-t))' "$1"
}
# ivf FILE -> "queries/s p99_ms": read_index(IO_FLAG_MMAP), then QUERIES single queries.
ivf() {
	$PY - "$1" "$QUERIES" <<'PY'
import sys, time
import faiss, numpy as np
ix = faiss.read_index(sys.argv[1], faiss.IO_FLAG_MMAP)
faiss.extract_index_ivf(ix).nprobe = 16
rng = np.random.default_rng(3)
q = rng.standard_normal((int(sys.argv[2]), ix.d)).astype("float32")
q /= np.linalg.norm(q, axis=1, keepdims=True)
lat = []
t0 = time.perf_counter()
for i in range(len(q)):
    t = time.perf_counter()
    ix.search(q[i:i + 1], 10)
    lat.append(time.perf_counter() - t)
total = time.perf_counter() - t0
print("%.0f %.2f" % (len(q) / total, np.percentile(lat, 99) * 1000))
PY
}

declare -A R
for p in $PATHS; do
	echo "== $p"
	# Sequential read of the big IndexFlat: cold, then page cache warm.
	warm_backing $p
	drop; up $p
	R[$p,seq_cold]=$(seq_read "$F/$flat")
	[ "$p" = ffs ] && R[ffs,rss_seq]=$(rss_mib "${PID[ffs]}")
	[ "$p" = sq ] && R[sq,rss_seq]=$(rss_mib "${PID[sq]}")
	[ "$p" = pt ] && R[pt,rss_seq]=$(rss_mib "${PID[pt]}")
	# Fast and short: the best of 3 (the machine is shared).
	R[$p,seq_pc]=$(best "$(seq_read "$F/$flat")" "$(seq_read "$F/$flat")" "$(seq_read "$F/$flat")")
	down $p
	# Daemon-warm: the FUSE file's page cache dropped, the daemon's own cache (or the
	# source file's page cache, for the passthrough) kept.  faissfs with a cache that
	# holds the whole file, and drop_behind=off so that a sequential read leaves it there.
	if [ "$p" != disk ]; then
		drop
		if [ "$p" = ffs ]; then up ffs -o cache_size=1536M,drop_behind=off; else up $p; fi
		seq_read "$F/$flat" >/dev/null
		[ "$p" = ffs ] && R[ffs,rss_big]=$(rss_mib "${PID[ffs]}")
		dw=()
		for _ in 1 2 3; do
			dd if="$F/$flat" iflag=nocache count=0 status=none
			dw+=("$(seq_read "$F/$flat")")
		done
		R[$p,seq_dw]=$(best "${dw[@]}")
		down $p
	fi
	# Backing files in the page cache, the FUSE side fresh.
	if [ "$p" != disk ]; then
		bh=()
		for _ in 1 2 3; do
			drop; warm_backing $p; up $p
			bh+=("$(seq_read "$F/$flat")")
			down $p
		done
		R[$p,seq_bh]=$(best "${bh[@]}")
	fi
	# fio 4 KiB random reads, each from a cold start.
	drop; up $p; R[$p,rand1]=$(fio_run "$F/$flat" psync 1); down $p
	drop; up $p; R[$p,rand4]=$(fio_run "$F/$flat" psync 4); down $p
	drop; up $p; R[$p,mmap1]=$(fio_run "$F/$flat" mmap 1); down $p
	# faiss.read_index, cold: the big Flat (the best of 2, after an unmeasured read from
	# disk for the host's cache), then the small ones.
	ri=()
	for _ in 1 2; do
		drop; up $p; ri+=("$(read_index "$F/$flat")"); down $p
	done
	R[$p,ri_big]=$(printf '%s\n' "${ri[@]}" | sort -g | head -n 1)
	drop; up $p; R[$p,ri_flat]=$(read_index "$F/types/Flat.faiss"); down $p
	drop; up $p; R[$p,ri_hnsw]=$(read_index "$F/types/HNSWFlat.faiss"); down $p
	# IVF through mmap: cold (fresh mount, caches dropped), then warm (again).
	drop; up $p
	read -r R[$p,ivf_cold_qps] R[$p,ivf_cold_p99] <<<"$(ivf "$F/types/IVFFlat.faiss")"
	# Warm, the best of 3: the file is in the page cache on every path, so the queries
	# are CPU-bound and alike, and one run is at the mercy of the machine's noise.
	wq=() wp=()
	for _ in 1 2 3; do
		read -r qps p99 <<<"$(ivf "$F/types/IVFFlat.faiss")"
		wq+=("$qps") wp+=("$p99")
	done
	R[$p,ivf_warm_qps]=$(best "${wq[@]}")
	R[$p,ivf_warm_p99]=$(printf '%s\n' "${wp[@]}" | sort -g | head -n 1)
	down $p
done

# The 2-core decompression limit: faissfs verify decodes and checks every chunk of the
# store on 2 threads, store files in the page cache (second run).
"$FFS" verify --threads 2 "$B/store" >/dev/null 2>&1 || true
t0=$(now)
"$FFS" verify --threads 2 "$B/store" >/dev/null 2>&1 || true
t1=$(now)
dec2=$(mbps "$total" "$(echo "$t1 - $t0" | bc -l)")

# --- the table ------------------------------------------------------------------------
r() { # A B -> A/B with 2 decimals, or "-"
	if [ -z "$1" ] || [ -z "$2" ] || [ "$(echo "$2 == 0" | bc)" = 1 ]; then echo "-"; else
		echo "scale=2; $1 / $2" | bc -l | sed 's/^\./0./'; fi
}
# verdict RATIO WANT [lower]: "met" or "missed by N%" (ratio of ffs to baseline).
verdict() {
	local ratio=$1 want=$2
	[ "$ratio" = - ] && { echo "-"; return; }
	if [ "$(echo "$ratio >= $want" | bc -l)" = 1 ]; then echo "met ($ratio >= $want)"; else
		printf 'MISSED by %.0f%% (%s < %s)\n' "$(echo "(1 - $ratio / $want) * 100" | bc -l)" "$ratio" "$want"
	fi
}
hdr() {
	printf '\n| workload | disk | passthrough | squashfuse_ll | faissfs | ffs/disk | ffs/pt | ffs/sq | target |\n'
	printf '|---|---|---|---|---|---|---|---|---|\n'
}
# row NAME KEY TARGET_TEXT [lower]: higher is better unless "lower" (then ratios invert, so
# that above 1 always means faissfs is better than... the other path).
row() {
	local k=$2 tgt=$3 lower=${4:-} a b c
	if [ -n "$lower" ]; then
		a=$(r "${R[disk,$k]:-}" "${R[ffs,$k]}"); b=$(r "${R[pt,$k]:-}" "${R[ffs,$k]}")
		c=$(r "${R[sq,$k]}" "${R[ffs,$k]}")
	else
		a=$(r "${R[ffs,$k]}" "${R[disk,$k]:-}"); b=$(r "${R[ffs,$k]}" "${R[pt,$k]:-}")
		c=$(r "${R[ffs,$k]}" "${R[sq,$k]}")
	fi
	printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$1" "${R[disk,$k]:--}" \
		"${R[pt,$k]:--}" "${R[sq,$k]}" "${R[ffs,$k]}" "$a" "$b" "$c" "$tgt"
	RA[$k,disk]=$a RA[$k,pt]=$b RA[$k,sq]=$c
}
declare -A RA
printf '\n## Read benchmark (%s MiB IndexFlat, %s cores, %s)\n' $((size >> 20)) "$(nproc)" "$(date -u +%F)"
printf 'faissfs: %s %s; ratios > 1 mean faissfs is faster.\n' "$("$FFS" --version 2>/dev/null | head -1)" "$FFS_OPTS"
hdr
row "sequential read, cold (MiB/s)" seq_cold ">= 0.70x disk; >= 2x pt"
row "sequential read, backing files in page cache, FUSE side cold, best of 3 (MiB/s)" seq_bh ">= 1.0x pt"
row "sequential read, daemon cache warm, best of 3 (MiB/s)" seq_dw ">= 2x sq; >= 0.80 of passthrough"
row "sequential read, page cache warm, best of 3 (MiB/s)" seq_pc ">= 2x sq; = disk (>= 0.90)"
row "fio 4K random read psync 1 job, cold (MiB/s)" rand1 ">= 2.5x sq; >= 1.0x pt"
row "fio 4K random read psync 4 jobs, cold (MiB/s)" rand4 ">= 2.5x sq; >= 1.0x pt"
row "fio 4K random read mmap 1 job, cold (MiB/s)" mmap1 ">= 2.5x sq; >= 1.0x pt"
row "faiss.read_index Flat $((size >> 20)) MiB, cold, best of 2 (s)" ri_big "<= 1.1x disk's time" lower
row "faiss.read_index Flat 51 MB, cold (s)" ri_flat ">= 2x sq" lower
row "faiss.read_index HNSW 78 MB, cold (s)" ri_hnsw ">= 2x sq" lower
row "IVF mmap 1000 queries nprobe 16, cold (q/s)" ivf_cold_qps ">= 2x sq"
row "IVF mmap p99 latency, cold (ms)" ivf_cold_p99 ">= 2x sq" lower
row "IVF mmap 1000 queries nprobe 16, warm, best of 3 (q/s)" ivf_warm_qps ">= 2x sq; >= 0.95 of disk"
row "IVF mmap p99 latency, warm, best of 3 (ms)" ivf_warm_p99 ">= 2x sq" lower
printf '\n2-core decompression limit (faissfs verify --threads 2, warm): %s MiB/s; cold sequential read = %s of it\n' \
	"$dec2" "$(r "${R[ffs,seq_cold]}" "$dec2")"
printf 'daemon RSS after reading the %s MiB file: faissfs %s MiB (cache budget 256 MiB), %s MiB with a 1536 MiB budget and drop_behind=off; squashfuse_ll %s MiB; passthrough %s MiB\n' \
	$((size >> 20)) "${R[ffs,rss_seq]}" "${R[ffs,rss_big]}" "${R[sq,rss_seq]}" "${R[pt,rss_seq]}"

printf '\n### Targets of the read speed work (faissfs against disk and the passthrough)\n\n'
printf -- '- seq_cold: 0.70x plain disk: %s\n' "$(verdict "${RA[seq_cold,disk]}" 0.70)"
printf -- '- seq_cold: 2x passthrough: %s\n' "$(verdict "${RA[seq_cold,pt]}" 2)"
printf -- '- ri_big: at most 1.1x the time of plain disk: %s\n' \
	"$(verdict "${RA[ri_big,disk]}" "$(echo "scale=2; 1 / 1.1" | bc -l | sed 's/^\./0./')")"
printf -- '- seq_bh: 1.0x passthrough: %s\n' "$(verdict "${RA[seq_bh,pt]}" 1)"
for k in rand1 rand4 mmap1; do
	printf -- '- %s: 2.5x squashfuse_ll: %s; 1.0x passthrough: %s\n' "$k" \
		"$(verdict "${RA[$k,sq]}" 2.5)" "$(verdict "${RA[$k,pt]}" 1)"
done
if [ "${R[ffs,rss_seq]}" -le $((256 + 16)) ]; then rss_v="met (${R[ffs,rss_seq]} MiB)"; else
	rss_v="MISSED (${R[ffs,rss_seq]} MiB)"; fi
printf -- '- daemon RSS within the 256 MiB budget + 16 MiB: %s\n' "$rss_v"
printf -- '- ivf_warm_qps: 95%% of plain disk (no regression): %s\n' \
	"$(verdict "${RA[ivf_warm_qps,disk]}" 0.95)"

printf '\n### Earlier targets\n\n'
for k in seq_cold seq_dw seq_pc rand1 rand4 mmap1 ri_flat ri_hnsw ivf_cold_qps ivf_cold_p99 \
	ivf_warm_qps ivf_warm_p99; do
	printf -- '- %s: 2x squashfuse_ll: %s\n' "$k" "$(verdict "${RA[$k,sq]}" 2)"
done
printf -- '- seq_dw: 80%% of passthrough: %s\n' "$(verdict "${RA[seq_dw,pt]}" 0.80)"
printf -- '- seq_pc: equal to plain disk: %s\n' "$(verdict "${RA[seq_pc,disk]}" 0.90)"
printf -- '- seq_cold: 70%% of the 2-core decompression limit: %s\n' \
	"$(verdict "$(r "${R[ffs,seq_cold]}" "$dec2")" 0.70)"

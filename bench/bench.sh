#!/usr/bin/env bash
# First read benchmark: one run, all paths measured side by side, printed as a table.
#
#     sudo bench/bench.sh [BUILD_DIR]        (default build/; needs root for drop_caches)
#
# Env: BENCH_DIR (default /var/tmp/faissfs-bench: data is kept between runs),
#      FLAT_MIB (size of the big IndexFlat, default 1024), TYPES_N (vectors per
#      index-type file, default 100000), RUNTIME (fio seconds per job, default 10).
# Paths: plain disk, faissfs, squashfuse_ll over `mksquashfs -comp zstd` of the same
# files.  Cold = caches dropped and a fresh mount (empty chunk cache).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
ffs=$build/faissfs
B=${BENCH_DIR:-/var/tmp/faissfs-bench}
FLAT_MIB=${FLAT_MIB:-1024}
TYPES_N=${TYPES_N:-100000}
RUNTIME=${RUNTIME:-10}
PY=/usr/bin/python3

[ -x "$ffs" ] || { echo "bench: $ffs not found: build first (cmake --build build)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "bench: run as root (drop_caches, mounts)" >&2; exit 1; }

mkdir -p "$B"
mnt=$B/mnt sqmnt=$B/sqmnt
cleanup() {
	mountpoint -q "$mnt" && fusermount3 -u "$mnt" || true
	mountpoint -q "$sqmnt" && fusermount3 -u "$sqmnt" || true
}
trap cleanup EXIT
mkdir -p "$mnt" "$sqmnt"
cleanup

if [ ! -f "$B/data/.done-$FLAT_MIB-$TYPES_N" ]; then
	echo "== generating data in $B/data (once)"
	rm -rf "$B/data"
	$PY "$top/bench/gen_bench_data.py" "$B/data" --flat-mib "$FLAT_MIB" --n "$TYPES_N"
	touch "$B/data/.done-$FLAT_MIB-$TYPES_N"
fi

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l; }
mbps() { echo "scale=1; $1 / 1048576 / $2" | bc -l; }
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }

echo "== import"
rm -rf "$B/store"
t0=$(now)
"$ffs" import --no-progress "$B/data" "$B/store" >/dev/null
t1=$(now)
total=$(du -sb --exclude=.done-* "$B/data" | cut -f1)
import_s=$(secs "$t0" "$t1")

echo "== squashfs image (baseline)"
rm -f "$B/data.sqfs"
mksquashfs "$B/data" "$B/data.sqfs" -comp zstd -quiet -no-progress >/dev/null

mount_ffs() { "$ffs" mount "$B/store" "$mnt"; }
mount_sq() { squashfuse_ll "$B/data.sqfs" "$sqmnt"; }
umount_all() { cleanup; }

flat=big/flat.faiss
size=$(stat -c %s "$B/data/$flat")
seq_read() { # path -> seconds
	local t0 t1
	t0=$(now); dd if="$1" of=/dev/null bs=1M status=none; t1=$(now); secs "$t0" "$t1"
}
fio_rand() { # file jobs -> MiB/s
	fio --name=r --filename="$1" --rw=randread --bs=4k --ioengine=psync --numjobs="$2" \
		--time_based --runtime="$RUNTIME" --group_reporting --output-format=terse \
		--terse-version=3 --readonly 2>/dev/null | awk -F';' '{printf "%.1f", $7/1024}'
}
read_index() { # file -> seconds
	$PY -c "import faiss,time,sys; t=time.time(); faiss.read_index(sys.argv[1]); print('%.3f'%(time.time()-t))" "$1"
}

declare -A R
for p in disk ffs sq; do
	case $p in
	disk) f=$B/data/$flat ;;
	ffs) f=$mnt/$flat ;;
	sq) f=$sqmnt/$flat ;;
	esac
	umount_all; drop
	[ $p = ffs ] && mount_ffs
	[ $p = sq ] && mount_sq
	s=$(seq_read "$f"); R[$p,seq_cold]=$(mbps "$size" "$s")
	s=$(seq_read "$f"); R[$p,seq_warm]=$(mbps "$size" "$s")
	umount_all; drop
	[ $p = ffs ] && mount_ffs
	[ $p = sq ] && mount_sq
	R[$p,rand1]=$(fio_rand "$f" 1)
	umount_all; drop
	[ $p = ffs ] && mount_ffs
	[ $p = sq ] && mount_sq
	R[$p,rand4]=$(fio_rand "$f" 4)
	umount_all; drop
	[ $p = ffs ] && mount_ffs
	[ $p = sq ] && mount_sq
	R[$p,ri]=$(read_index "$f")
done
umount_all

ratio() { echo "scale=2; $1 / $2" | bc -l; }
printf '\n## Read benchmark: %s MiB IndexFlatL2 (%s), 2 cores\n\n' $((size >> 20)) "$flat"
printf '| workload | plain disk | faissfs | squashfuse_ll | faissfs / disk | faissfs / squashfuse |\n'
printf '|---|---|---|---|---|---|\n'
row() { printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "${R[disk,$2]}" "${R[ffs,$2]}" "${R[sq,$2]}" \
	"$(ratio "${R[ffs,$2]}" "${R[disk,$2]}")" "$(ratio "${R[ffs,$2]}" "${R[sq,$2]}")"; }
row "sequential read, cold (MiB/s)" seq_cold
row "sequential read, page cache warm (MiB/s)" seq_warm
row "fio 4 KiB random read, 1 job, cold start (MiB/s)" rand1
row "fio 4 KiB random read, 4 jobs, cold start (MiB/s)" rand4
printf '| faiss.read_index, cold (s, lower is better) | %s | %s | %s | %s | %s |\n' \
	"${R[disk,ri]}" "${R[ffs,ri]}" "${R[sq,ri]}" "$(ratio "${R[ffs,ri]}" "${R[disk,ri]}")" \
	"$(ratio "${R[ffs,ri]}" "${R[sq,ri]}")"

printf '\nimport: %s MiB in %.1f s = %s MiB/s (%s threads, verify included)\n' \
	$((total >> 20)) "$import_s" "$(mbps "$total" "$import_s")" "$(nproc)"

printf '\n## Compression per index type (d=128, n=%s, unit-normalised embeddings)\n\n' "$TYPES_N"
printf '| index type | logical MiB | faissfs stored | faissfs ratio | zstd -3 whole file | squashfs zstd (all) |\n'
printf '|---|---|---|---|---|---|\n'
for f in "$B"/data/types/*.faiss; do
	n=$(basename "$f" .faiss)
	l=$(stat -c %s "$f")
	s=$(stat -c %s "$B/store/types/$n.faiss")
	z=$(zstd -3 -c "$f" | wc -c)
	printf '| %s | %.1f | %.1f MiB | %sx | %sx | |\n' "$n" "$(echo "$l/1048576" | bc -l)" \
		"$(echo "$s/1048576" | bc -l)" "$(ratio "$l" "$s")" "$(ratio "$l" "$z")"
done
sq=$(stat -c %s "$B/data.sqfs")
st=$(du -sb --exclude=.faissfs "$B/store" | cut -f1)
printf '| whole data dir | %.1f | %.1f MiB | %sx | | %sx |\n' "$(echo "$total/1048576" | bc -l)" \
	"$(echo "$st/1048576" | bc -l)" "$(ratio "$total" "$st")" "$(ratio "$total" "$sq")"

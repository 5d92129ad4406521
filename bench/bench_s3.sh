#!/usr/bin/env bash
# Remote-store benchmark: a ~512 MB IndexFlatL2 served from a bucket of a real
# single-node Ceph (radosgw on loopback, memstore OSD) against the same index served
# from a local store, in one run.  Prints every figure and the ratios.
#
#     bench/bench_s3.sh [BUILD_DIR]         (default build/; root: drop_caches, mounts)
#
# Measures, each cold (drop_caches and a fresh mount):
#   - sequential read (cat) and faiss.read_index of the index: local store, bucket with
#     an empty disk cache (a first node start), bucket with a warm disk cache (the
#     second start of a node);
#   - sequential read from the bucket with no disk cache for 1, 4 and 16 requests in
#     flight (-o s3_inflight=N, the read-ahead workers follow it).
# Env: BENCH_DIR (default /var/tmp/faissfs-bench-s3), N (vectors, default 1000000).
# Starts its own Ceph cluster (scripts/ceph-single-node.sh) in BENCH_DIR/ceph.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
FFS=$build/faissfs
B=${BENCH_DIR:-/var/tmp/faissfs-bench-s3}
N=${N:-1000000}
PY=/usr/bin/python3
CEPH="bash $top/scripts/ceph-single-node.sh"
export FAISSFS_CEPH_DIR=$B/ceph FAISSFS_CEPH_RGW_PORT=${FAISSFS_CEPH_RGW_PORT:-27480}

die() { echo "bench_s3: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (drop_caches, mounts, Ceph)"
[ -x "$FFS" ] || die "$FFS not found: build first"
mkdir -p "$B/mnt"
cleanup() {
	mountpoint -q "$B/mnt" && fusermount3 -u "$B/mnt"
	$CEPH stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

if [ ! -f "$B/data/idx/index.faiss" ]; then
	echo "== generating a $N x 128 IndexFlatL2 (once)"
	mkdir -p "$B/data/idx"
	$PY - "$B/data/idx/index.faiss" "$N" <<'PY'
import sys, faiss, numpy as np
rng = np.random.default_rng(1)
x = rng.standard_normal((int(sys.argv[2]), 128), dtype=np.float32)
x /= np.linalg.norm(x, axis=1, keepdims=True)
ix = faiss.IndexFlatL2(128)
ix.add(x)
faiss.write_index(ix, sys.argv[1])
PY
	rm -rf "$B/store"
fi
[ -d "$B/store" ] || "$FFS" import --no-progress "$B/data" "$B/store" >/dev/null
size=$(stat -c %s "$B/data/idx/index.faiss")
t0=$(date +%s.%N)
$CEPH start >/dev/null
t1=$(date +%s.%N)
eval "$($CEPH env)"
url=s3://bench/s
push_out=$("$FFS" push "$B/store" "$url" --endpoint "$FAISSFS_S3_ENDPOINT" \
	--cred-file "$FAISSFS_S3_CRED" --create-bucket --no-progress)
t2=$(date +%s.%N)
echo "Ceph ready in $(echo "$t1 - $t0" | bc) s; $push_out"
so="endpoint=$FAISSFS_S3_ENDPOINT,cred_file=$FAISSFS_S3_CRED,poll_interval=0"

cold() { sync; echo 3 >/proc/sys/vm/drop_caches; }
mnt() { "$FFS" mount "$1" "$B/mnt" ${2:+-o "$2"}; }
umnt() { fusermount3 -u "$B/mnt"; sleep 0.3; }
secs() { local a b; a=$(date +%s.%N); "$@" >/dev/null; b=$(date +%s.%N); echo "$b - $a" | bc; }
seqread() { secs cat "$B/mnt/idx/index.faiss"; }
readindex() { secs $PY -c 'import sys, faiss; faiss.read_index(sys.argv[1])' "$B/mnt/idx/index.faiss"; }
mbs() { echo "scale=0; $size / $1 / 1000000" | bc; }

declare -A R
run() { # NAME STORE OPTS [KEEP_CACHE]
	local name=$1 store=$2 opts=$3
	cold; mnt "$store" "$opts"; R[$name.seq]=$(seqread); umnt
	[ -n "${4:-}" ] && [ "$4" = wipe ] && rm -rf "$B/cache"
	cold; mnt "$store" "$opts"; R[$name.ri]=$(readindex); umnt
}
echo "== local store"
run local "$B/store" ""
echo "== bucket, empty disk cache (first start), then warm disk cache (second start)"
rm -rf "$B/cache"
cold; mnt "$url" "$so,cache_dir=$B/cache"; R[s3cold.seq]=$(seqread)
req=$(sed -n 's/^remote requests: *//p' "$B/mnt/.faissfs/stats"); umnt
cold; mnt "$url" "$so,cache_dir=$B/cache"; R[s3warm.seq]=$(seqread)
hits=$(sed -n 's/^remote disk cache hits: *//p' "$B/mnt/.faissfs/stats"); umnt
rm -rf "$B/cache"
cold; mnt "$url" "$so,cache_dir=$B/cache"; R[s3cold.ri]=$(readindex); umnt
cold; mnt "$url" "$so,cache_dir=$B/cache"; R[s3warm.ri]=$(readindex); umnt
echo "   first start: $req requests; second start: $hits frames from the disk cache"
for n in 1 4 16; do
	rm -rf "$B/cache"
	cold; mnt "$url" "$so,cache_dir=$B/cache,disk_cache_size=0,s3_inflight=$n"
	R[inf$n]=$(seqread); umnt
done

printf '\n%-44s %10s %10s %8s\n' "workload ($((size / 1000000)) MB IndexFlatL2, cold)" "s" "MB/s" "/ local"
for k in seq ri; do
	l=${R[local.$k]}
	[ $k = seq ] && what="sequential read (cat)" || what="faiss.read_index"
	printf '%-44s %10.3f %10s %8s\n' "$what, local store" "$l" "$(mbs "$l")" "1.00"
	printf '%-44s %10.3f %10s %8.2f\n' "$what, bucket, empty disk cache" "${R[s3cold.$k]}" \
		"$(mbs "${R[s3cold.$k]}")" "$(echo "${R[s3cold.$k]} / $l" | bc -l)"
	printf '%-44s %10.3f %10s %8.2f\n' "$what, bucket, warm disk cache" "${R[s3warm.$k]}" \
		"$(mbs "${R[s3warm.$k]}")" "$(echo "${R[s3warm.$k]} / $l" | bc -l)"
done
for n in 1 4 16; do
	printf '%-44s %10.3f %10s %8.2f\n' "sequential, no disk cache, s3_inflight=$n" "${R[inf$n]}" \
		"$(mbs "${R[inf$n]}")" "$(echo "${R[inf$n]} / ${R[local.seq]}" | bc -l)"
done
echo "(load average: $(cut -d' ' -f1-3 /proc/loadavg))"

#!/usr/bin/env bash
# bench_memory.sh - memory of a process serving N IVF indices the FAISSx way
# (faiss.read_index into RAM) against the same process reading them with
# IO_FLAG_MMAP through a faissfs mount, at equal query results.
#
#   bench_memory.sh [WORKDIR [N [NVEC [QUERIES [NPROBE]]]]]
#
# Builds N IndexIVFFlat (IVF4096,Flat, d 128, NVEC vectors each: default 4 x
# 480,000 = about 250 MB each; one training, then different vectors per index),
# imports them, mounts the store (-o cache_size=64M), then for each way runs a
# fresh process that loads all N, searches QUERIES (default 200) queries at
# NPROBE (default 8) on each, and reports its VmRSS (anonymous + file pages).
# The mmap way adds the daemon's VmRSS.  The labels found must be equal.
# Needs root, /dev/fuse and /usr/bin/python3 with faiss.
# Environment: FAISSFS (default build/faissfs); MOUNT_OPTS (default
# cache_size=64M,kernel_readahead=64K: IVF probes are random reads, and each
# page the kernel reads ahead and maps in is counted in the process's VmRSS).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
W=${1:-/tmp/faissfs-memory}
n=${2:-4}
nvec=${3:-480000}
queries=${4:-200}
nprobe=${5:-8}
FAISSFS=${FAISSFS:-$here/../build/faissfs}
PY=/usr/bin/python3
export LC_ALL=C

shape="$n $nvec"
if [ ! -d "$W/store" ] || [ "$(cat "$W/shape" 2>/dev/null)" != "$shape" ]; then
	rm -rf -- "$W/src" "$W/store"
	mkdir -p "$W/src"
	"$PY" - "$W/src" "$n" "$nvec" <<'PY'
import os, sys, time
import faiss, numpy as np
root, n, nvec = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
d, nlist = 128, 4096
rng = np.random.default_rng(5)
centres = rng.standard_normal((1024, d)).astype("float32")
def emb(m):
    x = centres[rng.integers(0, len(centres), m)] + 0.4 * rng.standard_normal((m, d)).astype("float32")
    return x / np.linalg.norm(x, axis=1, keepdims=True)
t0 = time.time()
q = faiss.IndexFlatL2(d)
base = faiss.IndexIVFFlat(q, d, nlist)
base.cp.niter = 8
base.train(emb(nlist * 16))
for k in range(n):
    ix = faiss.clone_index(base)
    for s in range(0, nvec, 100000):
        ix.add(emb(min(100000, nvec - s)))
    p = os.path.join(root, "acme", f"ivf{k}")
    os.makedirs(p)
    faiss.write_index(ix, os.path.join(p, "index.faiss"))
np.save(os.path.join(root, "..", "queries.npy"), emb(1000))
print(f"built {n} IVF4096,Flat of {nvec} vectors in {time.time() - t0:.1f} s")
PY
	"$FAISSFS" import "$W/src" "$W/store" --no-progress >/dev/null 2>&1
	echo "$shape" >"$W/shape"
fi
mnt=$W/mnt
mkdir -p "$mnt"
pid=
cleanup() {
	if awk -v p="$mnt" '$5 == p { f = 1 } END { exit !f }' /proc/self/mountinfo; then
		fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt"
	fi
	[ -z "$pid" ] || wait "$pid" 2>/dev/null || true
}
trap cleanup EXIT

# serve ROOT ram|mmap OUT: loads ROOT/acme/ivf*/index.faiss, searches, saves the labels
# to OUT.npy; prints "rss_kib anon_kib file_kib load_s search_s".
serve() {
	"$PY" - "$1" "$2" "$3" "$W/queries.npy" "$n" "$queries" "$nprobe" <<'PY'
import sys, time
import faiss, numpy as np
root, out, qpath = sys.argv[1], sys.argv[3], sys.argv[4]
flags = faiss.IO_FLAG_MMAP if sys.argv[2] == "mmap" else 0
n, nq, nprobe = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
faiss.omp_set_num_threads(1)
xq = np.load(qpath)[:nq]
t0 = time.time()
ixs = [faiss.read_index(f"{root}/acme/ivf{k}/index.faiss", flags) for k in range(n)]
t1 = time.time()
labels = []
for ix in ixs:
    ix.nprobe = nprobe
    labels.append(ix.search(xq, 10)[1])
t2 = time.time()
np.save(out, np.stack(labels))
st = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
kib = lambda k: int(st[k].split()[0])
print(kib("VmRSS"), kib("RssAnon"), kib("RssFile"), f"{t1 - t0:.2f}", f"{t2 - t1:.2f}")
PY
}

sync
echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
serve "$W/src" ram "$W/ram" >"$W/ram.txt"
read -r ram_rss ram_anon ram_file ram_load ram_search <"$W/ram.txt"

fifo=$W/ready
rm -f "$fifo"
mkfifo "$fifo"
mopts=${MOUNT_OPTS:-cache_size=64M,kernel_readahead=64K}
"$FAISSFS" mount -f "$W/store" "$mnt" -o "ready_fd=3,$mopts" 3>"$fifo" >/dev/null \
	2>"$W/daemon.log" &
pid=$!
read -r -t 60 line <"$fifo" || true
rm -f "$fifo"
[ "$line" = ready ] || { cat "$W/daemon.log" >&2; exit 1; }
serve "$mnt" mmap "$W/mmap" >"$W/mmap.txt" # exits (and unmaps) before the unmount
read -r mm_rss mm_anon mm_file mm_load mm_search <"$W/mmap.txt"
d_rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
fusermount3 -u "$mnt"
wait "$pid" || true
pid=

"$PY" -c "import numpy as np, sys; a, b = np.load('$W/ram.npy'), np.load('$W/mmap.npy'); \
sys.exit(0 if (a == b).all() else 1)" && same=yes || same=NO
size=$(du -sb "$W/src" | cut -f1)
stored=$(du -sb "$W/store" | cut -f1)
tot_mm=$((mm_rss + d_rss))
echo
echo "memory: $n x IVF4096,Flat (d 128, $nvec vectors each; $((size / 1048576)) MiB of index files," \
	"$((stored / 1048576)) MiB stored), $queries queries x nprobe $nprobe on each"
printf '%-44s %10s %10s %10s %8s %8s\n' "" "VmRSS KiB" "anon" "file" "load s" "search s"
printf '%-44s %10s %10s %10s %8s %8s\n' "FAISSx way: read_index into RAM" "$ram_rss" "$ram_anon" \
	"$ram_file" "$ram_load" "$ram_search"
printf '%-44s %10s %10s %10s %8s %8s\n' "IO_FLAG_MMAP through faissfs: process" "$mm_rss" "$mm_anon" \
	"$mm_file" "$mm_load" "$mm_search"
printf '%-44s %10s\n' "  + faissfs daemon (-o $mopts)" "$d_rss"
printf '%-44s %10s\n' "  = total" "$tot_mm"
echo "equal query results: $same"
awk -v a="$ram_rss" -v b="$tot_mm" 'BEGIN { r = 100 * (1 - b / a);
	printf "reduction: %.1f %% (target >= 40 %%): %s\n", r, (r >= 40) ? "met" : "NOT met" }'
[ "$same" = yes ]

#!/usr/bin/env bash
# The main job: install what faissfs needs, build it, make the default store with
# sample indices, and mount it.  Run from anywhere, as root (or with sudo):
#     sudo scripts/run.sh
# Re-running remounts the same store.  Unmount with: fusermount3 -u demo/mnt
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DFAISSFS_TESTS=OFF -DFAISSFS_WITH_FAISS=OFF >/dev/null
cmake --build build -j"$(nproc)"

demo=${FAISSFS_DEMO_DIR:-$top/demo}
mkdir -p "$demo"
if [ ! -f "$demo/store/.faissfs/superblock" ]; then
	echo "== generating sample FAISSx data dir in $demo/data"
	rm -rf "$demo/data"
	/usr/bin/python3 scripts/make-demo-data.py "$demo/data"
	echo "== importing it into the store $demo/store"
	build/faissfs import "$demo/data" "$demo/store"
fi

mkdir -p "$demo/mnt"
if mountpoint -q "$demo/mnt"; then
	fusermount3 -u "$demo/mnt"
fi
build/faissfs mount "$demo/store" "$demo/mnt"

cat <<MSG

faissfs is mounted: $demo/store -> $demo/mnt

Look around:
  ls -lR $demo/mnt                  logical sizes, as a FAISSx server sees them
  du -sh $demo/mnt; du -sh --apparent-size $demo/mnt
                                    disk really used vs logical bytes
  getfattr -d $demo/mnt/tenant-a/products/index.faiss
                                    FAISS type, d, ntotal, stored bytes, chunks
  /usr/bin/python3 -c 'import faiss; ix = faiss.read_index("$demo/mnt/tenant-a/products/index.faiss", faiss.IO_FLAG_MMAP); print(ix, ix.ntotal)'
  $top/build/faissfs inspect $demo/store/tenant-a/products/index.faiss
                                    the object's header and chunk table

Unmount with:  fusermount3 -u $demo/mnt
MSG

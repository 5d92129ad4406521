#!/usr/bin/env bash
# The main job: install what faissfs needs, build it, make the default store with
# sample indices, and mount it writable (the mount is a FAISSx data dir: save into
# it; -o ro would make it read-only).  Run from anywhere, as root (or with sudo):
#     sudo scripts/run.sh
# Re-running remounts the same store.  Unmount with: fusermount3 -u demo/mnt
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

bash scripts/install-deps.sh run
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
build/faissfs mount "$demo/store" "$demo/mnt" -o rw

cat <<MSG

faissfs is mounted, writable: $demo/store -> $demo/mnt
(a FAISSx server can use $demo/mnt as its data dir; what it writes is
compressed in the background.  For a read-only mount: faissfs mount ... -o ro)

Look around:
  ls -lR $demo/mnt                  logical sizes, as a FAISSx server sees them
  du -sh $demo/mnt; du -sh --apparent-size $demo/mnt
                                    disk really used vs logical bytes
  getfattr -d $demo/mnt/tenant-a/products/index.faiss
                                    FAISS type, d, ntotal, stored bytes, chunks
  /usr/bin/python3 -c 'import faiss; ix = faiss.read_index("$demo/mnt/tenant-a/products/index.faiss", faiss.IO_FLAG_MMAP); print(ix, ix.ntotal)'
  $top/build/faissfs inspect $demo/store/tenant-a/products/index.faiss
                                    the object's header and chunk table
  /usr/bin/python3 -c 'import faiss; ix = faiss.read_index("$demo/mnt/tenant-a/products/index.faiss"); faiss.write_index(ix, "$demo/mnt/tenant-a/products/copy.faiss")'
                                    save through the mount; "faissfs inspect" on
                                    the store's copy.faiss once it is compacted

Unmount with:  fusermount3 -u $demo/mnt
MSG

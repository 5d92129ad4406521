#!/usr/bin/env bash
# test_write_ondisk.sh - FAISS's own on-disk IVF on a -o rw mount: merge_ondisk
# creates the .ivfdata file, truncates it to full size and fills it only through a
# writable MAP_SHARED mapping (page writebacks in any order).  The merged index
# searches like a flat index of the same vectors, on the rw mount and, after the
# compactor made objects of everything and a read-only remount, with
# IO_FLAG_READ_ONLY.  Also a plain MAP_SHARED fill in random order, compared by cmp.
. "$(dirname "$0")/lib.sh"

store=$T/store
mnt=$T/mnt
mkdir "$mnt"
"$FAISSFS" init "$store" >/dev/null || fail "faissfs init"
mount_fg "$store" "$mnt" "$T/daemon.log" -o rw

say "a 10 MiB file filled through MAP_SHARED in random 64 KiB pieces"
"$PYTHON" - "$mnt/t/fill.bin" "$T/fill.bin" <<'PY' || fail "MAP_SHARED fill"
import mmap, os, random, sys
os.makedirs(os.path.dirname(sys.argv[1]))
size = 10 << 20
data = random.Random(5).randbytes(size)
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
os.ftruncate(fd, size)
m = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
order = list(range(0, size, 65536))
random.Random(6).shuffle(order)
for o in order:
    m[o:o + 65536] = data[o:o + 65536]
m.flush()
m.close()
os.close(fd)
open(sys.argv[2], "wb").write(data)
PY
cmp "$T/fill.bin" "$mnt/t/fill.bin" || fail "MAP_SHARED fill differs"
ok "byte-identical"

say "faiss.contrib.ondisk.merge_ondisk onto the mount"
cat >"$T/ondisk.py" <<'PY'
import os, sys
import faiss
import numpy as np
mode, top, ref = sys.argv[1], sys.argv[2], sys.argv[3]
d = 32
rng = np.random.RandomState(1)
xt = rng.rand(2000, d).astype("float32")
xb = rng.rand(6000, d).astype("float32")
xq = rng.rand(10, d).astype("float32")
flat = faiss.IndexFlatL2(d)
flat.add(xb)
_, want = flat.search(xq, 5)
top = os.path.join(top, "acme", "ondisk")
if mode == "write":
    from faiss.contrib.ondisk import merge_ondisk
    os.makedirs(top)
    idx = faiss.index_factory(d, "IVF16,Flat")
    idx.train(xt)
    faiss.write_index(idx, os.path.join(top, "trained.index"))
    for i in range(3):
        s = faiss.read_index(os.path.join(top, "trained.index"))
        s.add_with_ids(xb[i * 2000:(i + 1) * 2000], np.arange(i * 2000, (i + 1) * 2000))
        faiss.write_index(s, os.path.join(top, f"block_{i}.index"))
    idx = faiss.read_index(os.path.join(top, "trained.index"))
    merge_ondisk(idx, [os.path.join(top, f"block_{i}.index") for i in range(3)],
                 os.path.join(top, "merged.ivfdata"))
    idx.ntotal = 6000
    faiss.write_index(idx, os.path.join(top, "populated.index"))
else:
    idx = faiss.read_index(os.path.join(top, "populated.index"), faiss.IO_FLAG_READ_ONLY)
idx.nprobe = 16
_, got = idx.search(xq, 5)
assert (got == want).all(), f"on-disk IVF search differs from flat search ({mode})"
print(f"   {mode}: on-disk IVF of 6000 vectors searches like IndexFlatL2")
PY
(cd "$T" && "$PYTHON" "$T/ondisk.py" write "$mnt" "$T") || fail "merge_ondisk on the mount"

say "compaction, read-only remount, IO_FLAG_READ_ONLY"
deadline=$((SECONDS + 60))
while find "$store/acme" "$store/t" -type f -size +4k -print0 |
	xargs -0 -r -n1 "$FAISSFS" inspect 2>/dev/null | grep -q 'plain file'; do
	[ "$SECONDS" -lt "$deadline" ] || fail "files still plain after 60 s"
	sleep 0.5
done
ok "every file over 4 KiB is an object"
unmount "$mnt" "$FG_PID"
mount_daemon "$store" "$mnt"
(cd "$T" && "$PYTHON" "$T/ondisk.py" read "$mnt" "$T") || fail "reading the on-disk IVF back"
cmp "$T/fill.bin" "$mnt/t/fill.bin" || fail "MAP_SHARED fill differs after remount"
unmount "$mnt"

#!/usr/bin/python3
"""check_faiss.py REF DIR - loads every index listed in REF/indices.txt from DIR (a
faissfs mount) with faiss.read_index(path) and faiss.read_index(path,
faiss.IO_FLAG_MMAP) (read_index_binary for binary ones), searches REF's queries and
requires exactly the ids and distances gen_indices.py got from the original files.
Exit status 0 if all match, 1 otherwise.  Needs /usr/bin/python3 (Debian's faiss).
"""
import os
import sys

import faiss
import numpy as np


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: check_faiss.py REF DIR")
    ref, top = sys.argv[1], sys.argv[2]
    xq = np.load(os.path.join(ref, "queries.npy"))
    bxq = np.load(os.path.join(ref, "bqueries.npy"))
    with open(os.path.join(ref, "k.txt")) as f:
        k = int(f.read())
    failures = 0
    checked = 0
    with open(os.path.join(ref, "indices.txt")) as f:
        listing = [line.split() for line in f if line.strip()]
    for kind, rel in listing:
        binary = kind == "b"
        exp = np.load(os.path.join(ref, "expected", rel.replace("/", "__") + ".npz"))
        path = os.path.join(top, rel)
        read = faiss.read_index_binary if binary else faiss.read_index
        for flags, flag_name in ((0, "0"), (faiss.IO_FLAG_MMAP, "IO_FLAG_MMAP")):
            try:
                index = read(path, flags) if flags else read(path)
                dist, ids = index.search(bxq if binary else xq, k)
            except Exception as e:  # noqa: BLE001 - report and go on
                print(f"check_faiss: FAIL {rel} flags={flag_name}: {e}", file=sys.stderr)
                failures += 1
                continue
            if np.array_equal(ids, exp["I"]) and np.array_equal(dist, exp["D"]):
                print(f"check_faiss: ok {rel} flags={flag_name} ntotal={index.ntotal} "
                      f"type={type(index).__name__}")
                checked += 1
            else:
                print(f"check_faiss: FAIL {rel} flags={flag_name}: results differ from the "
                      "original", file=sys.stderr)
                failures += 1
            del index
    print(f"check_faiss: {checked} loads matched, {failures} failed")
    return 1 if failures or not checked else 0


if __name__ == "__main__":
    sys.exit(main())

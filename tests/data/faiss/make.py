#!/usr/bin/python3
"""Builds the small FAISS index files the header parser is tested against.

Run with Debian's /usr/bin/python3 (python3-faiss 1.7.3):
    /usr/bin/python3 tests/data/faiss/make.py
Writes one <name>.faiss per index type here and expected.json, one JSON object per
line, with the header values taken from FAISS's own objects.  Deterministic (fixed
seed); keep the files small: they are committed.
"""
import json
import os

import faiss
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(1234)


def fvecs(n, d):
    return rng.standard_normal((n, d)).astype("float32")


def bvecs(n, d):
    return rng.integers(0, 256, size=(n, d // 8), dtype="uint8")


def build_float(factory, d, n, metric=faiss.METRIC_L2):
    idx = faiss.index_factory(d, factory, metric)
    x = fvecs(n, d)
    idx.train(x)
    if factory.startswith("IDMap"):
        idx.add_with_ids(x, np.arange(1000, 1000 + n, dtype="int64"))
    else:
        idx.add(x)
    return idx


def fourcc_of(path):
    with open(path, "rb") as f:
        return f.read(4).decode("ascii")


def main():
    cases = []

    def add(name, idx, binary=False):
        path = os.path.join(HERE, name + ".faiss")
        if binary:
            faiss.write_index_binary(idx, path)
        else:
            faiss.write_index(idx, path)
        cases.append({
            "file": name + ".faiss",
            "fourcc": fourcc_of(path),
            "d": int(idx.d),
            "ntotal": int(idx.ntotal),
            "metric": int(idx.metric_type),
            "binary": binary,
            "is_trained": bool(idx.is_trained),
            "code_size": int(idx.code_size) if binary else 0,
        })

    add("flat_l2", build_float("Flat", 8, 200))
    add("flat_ip", build_float("Flat", 8, 200, faiss.METRIC_INNER_PRODUCT))
    add("ivf_flat", build_float("IVF4,Flat", 8, 300))
    add("ivf_pq", build_float("IVF4,PQ4x4np", 16, 300))
    add("ivf_sq8", build_float("IVF4,SQ8", 8, 300))
    add("hnsw_flat", build_float("HNSW8,Flat", 8, 200))
    add("pq", build_float("PQ4x4np", 16, 300))
    add("sq8", build_float("SQ8", 8, 200))
    add("idmap", build_float("IDMap,Flat", 8, 100))
    add("idmap2", build_float("IDMap2,Flat", 8, 100))
    add("pca_flat", build_float("PCA8,Flat", 16, 200))
    add("lsh", build_float("LSH", 8, 100))
    add("flat_l1", build_float("Flat", 8, 50, faiss.METRIC_L1))
    untrained = faiss.index_factory(8, "IVF4,Flat")
    add("ivf_untrained", untrained)

    lat = faiss.IndexLattice(8, 2, 4, 2)
    x = fvecs(200, 8)
    lat.train(x)
    add("lattice", lat)

    bflat = faiss.IndexBinaryFlat(64)
    bflat.add(bvecs(200, 64))
    add("binary_flat", bflat, binary=True)

    q = faiss.IndexBinaryFlat(64)
    bivf = faiss.IndexBinaryIVF(q, 64, 4)
    xb = bvecs(300, 64)
    bivf.train(xb)
    bivf.add(xb)
    add("binary_ivf", bivf, binary=True)

    bh = faiss.IndexBinaryHNSW(32, 8)
    bh.add(bvecs(100, 32))
    add("binary_hnsw", bh, binary=True)

    with open(os.path.join(HERE, "expected.json"), "w") as f:
        f.write("[\n")
        f.write(",\n".join(json.dumps(c) for c in cases))
        f.write("\n]\n")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""gen_indices.py OUT - a small FAISSx data dir with every index type we serve.

Writes, with fixed seeds and small sizes (seconds on 2 cores):
  OUT/data/<tenant>/<name>/{index.faiss,metadata.json,vectors.json}   tenant layout
  OUT/data/legacy_<name>.faiss + OUT/data/legacy_<name>.json          old flat layout
  OUT/ref/indices.txt        one line per index file: "f|b <path under data>"
  OUT/ref/queries.npy, queries.fvecs      float queries (fvecs: int32 d, d floats)
  OUT/ref/bqueries.npy, bqueries.bin      binary queries (bin: raw nq * d/8 bytes)
  OUT/ref/expected/<path with / as __>.npz   D, I of a k=K search of the ORIGINAL
                                             file as read back from plain disk
Needs Debian's python3-faiss, so run it with /usr/bin/python3.
"""
import json
import os
import sys

import faiss
import numpy as np

D = 32  # float dimension
DBIN = 256  # binary dimension, bits
NB = 3000
NQ = 10  # below faiss's BLAS threshold (20): exact, repeatable searches
K = 5
SEED = 20261123

# name, factory or builder, metric, nprobe (None: not IVF), ids (None: sequential)
FLOAT_SPECS = [
    ("flat_l2", "Flat", faiss.METRIC_L2, None),
    ("flat_ip", "Flat", faiss.METRIC_INNER_PRODUCT, None),
    ("ivf_flat", "IVF16,Flat", faiss.METRIC_L2, 4),
    ("ivf_pq", "IVF16,PQ8np", faiss.METRIC_L2, 4),
    ("ivf_sq8", "IVF16,SQ8", faiss.METRIC_L2, 4),
    ("hnsw32_flat", "HNSW32,Flat", faiss.METRIC_L2, None),
    ("pq", "PQ8np", faiss.METRIC_L2, None),
    ("sq8", "SQ8", faiss.METRIC_L2, None),
    ("idmap_flat", "IDMap,Flat", faiss.METRIC_L2, None),
    ("idmap2_flat", "IDMap2,Flat", faiss.METRIC_INNER_PRODUCT, None),
    ("pca16_flat", "PCA16,Flat", faiss.METRIC_L2, None),
]
BINARY_SPECS = [
    ("binary_flat", "BFlat", None),
    ("binary_ivf", "BIVF16", 4),
]
TENANTS = ["acme", "globex"]


def unit_rows(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def write_fvecs(path, x):
    n, d = x.shape
    out = np.empty((n, d + 1), dtype=np.float32)
    out[:, 0] = np.array([d], dtype=np.int32).view(np.float32)[0]
    out[:, 1:] = x
    out.tofile(path)


def build_float(factory, metric, nprobe, custom_ids, xb):
    index = faiss.index_factory(D, factory, metric)
    if not index.is_trained:
        index.train(xb)
    if custom_ids:
        ids = (1000 + 7 * np.arange(NB)).astype(np.int64)
        index.add_with_ids(xb, ids)
    else:
        index.add(xb)
    if nprobe is not None:
        faiss.extract_index_ivf(index).nprobe = nprobe
    return index


def build_binary(factory, nprobe, bxb):
    index = faiss.index_binary_factory(DBIN, factory)
    if not index.is_trained:
        index.train(bxb)
    index.add(bxb)
    if nprobe is not None:
        index.nprobe = nprobe
    return index


def json_dump(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.write("\n")


def metadata(name, tenant, factory, metric, ntotal, binary):
    return {
        "name": name,
        "tenant": tenant,
        "index_type": factory,
        "dimension": DBIN if binary else D,
        "metric": "hamming" if binary else ("IP" if metric == faiss.METRIC_INNER_PRODUCT else "L2"),
        "ntotal": int(ntotal),
        "created_at": "2026-11-23T00:00:00Z",
    }


def vectors_doc(name, n):
    # What FAISSx keeps beside an index: one record per vector (very compressible).
    return {"index": name, "vectors": [
        {"id": i, "external_id": f"{name}-doc-{i:06d}", "metadata": {"source": "gen_indices",
                                                                    "chunk": i % 17}}
        for i in range(n)]}


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gen_indices.py OUT")
    out = sys.argv[1]
    data = os.path.join(out, "data")
    ref = os.path.join(out, "ref")
    os.makedirs(os.path.join(ref, "expected"), exist_ok=True)
    os.makedirs(data, exist_ok=True)
    faiss.omp_set_num_threads(1)  # identical files run after run

    rng = np.random.default_rng(SEED)
    xb = unit_rows(rng.standard_normal((NB, D))).astype(np.float32)
    xq = unit_rows(rng.standard_normal((NQ, D))).astype(np.float32)
    bxb = rng.integers(0, 256, (NB, DBIN // 8), dtype=np.uint8)
    bxq = rng.integers(0, 256, (NQ, DBIN // 8), dtype=np.uint8)
    np.save(os.path.join(ref, "queries.npy"), xq)
    write_fvecs(os.path.join(ref, "queries.fvecs"), xq)
    np.save(os.path.join(ref, "bqueries.npy"), bxq)
    bxq.tofile(os.path.join(ref, "bqueries.bin"))

    listing = []

    def emit(name, index, binary, factory, metric, n):
        tenant = TENANTS[len(listing) // 2 % len(TENANTS)]
        tdir = os.path.join(data, tenant, name)
        os.makedirs(tdir, exist_ok=True)
        paths = [os.path.join(tenant, name, "index.faiss"), f"legacy_{name}.faiss"]
        write = faiss.write_index_binary if binary else faiss.write_index
        read = faiss.read_index_binary if binary else faiss.read_index
        meta = metadata(name, tenant, factory, metric, n, binary)
        json_dump(os.path.join(tdir, "metadata.json"), meta)
        json_dump(os.path.join(tdir, "vectors.json"), vectors_doc(name, n))
        json_dump(os.path.join(data, f"legacy_{name}.json"), meta)
        for rel in paths:
            full = os.path.join(data, rel)
            write(index, full)
            back = read(full)  # expected results come from the file itself
            dist, ids = back.search(bxq if binary else xq, K)
            np.savez(os.path.join(ref, "expected", rel.replace("/", "__") + ".npz"),
                     D=dist, I=ids)
            listing.append(("b" if binary else "f", rel))
        print(f"gen_indices: {name:12s} {factory:14s} ntotal={n} -> {paths[0]}, {paths[1]}")

    for name, factory, metric, nprobe in FLOAT_SPECS:
        index = build_float(factory, metric, nprobe, factory.startswith("IDMap"), xb)
        emit(name, index, False, factory, metric, index.ntotal)
    for name, factory, nprobe in BINARY_SPECS:
        index = build_binary(factory, nprobe, bxb)
        emit(name, index, True, factory, None, index.ntotal)

    with open(os.path.join(ref, "indices.txt"), "w") as f:
        for kind, rel in listing:
            f.write(f"{kind} {rel}\n")
    with open(os.path.join(ref, "k.txt"), "w") as f:
        f.write(f"{K}\n")
    print(f"gen_indices: {len(listing)} index files in {data}")


if __name__ == "__main__":
    main()

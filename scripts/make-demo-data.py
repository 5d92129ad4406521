#!/usr/bin/python3
"""Writes a small FAISSx-style data dir with sample indices (run with /usr/bin/python3).

    make-demo-data.py DATA_DIR

Layout (both FAISSx layouts):
    DATA/<tenant>/<index>/{index.faiss, metadata.json, vectors.json}
    DATA/<index>.faiss + DATA/<index>.json          (the older flat layout)
Vectors are unit-normalised and clustered, like sentence embeddings.  Fixed seed.
"""
import json
import os
import sys

import faiss
import numpy as np


def embeddings(rng, n, d, clusters=64):
    centres = rng.standard_normal((clusters, d)).astype("float32")
    x = centres[rng.integers(0, clusters, n)] + 0.35 * rng.standard_normal((n, d)).astype("float32")
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype("float32")


def save(path, index, meta, n):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    faiss.write_index(index, path)
    return meta


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make-demo-data.py DATA_DIR")
    data = sys.argv[1]
    rng = np.random.default_rng(20261123)
    specs = [
        # tenant, index, factory, d, n, metric
        ("tenant-a", "products", "IVF64,Flat", 128, 40000, faiss.METRIC_INNER_PRODUCT),
        ("tenant-a", "faq", "HNSW32,Flat", 64, 10000, faiss.METRIC_L2),
        ("tenant-b", "images", "Flat", 256, 20000, faiss.METRIC_L2),
        ("tenant-b", "docs", "IVF32,PQ16np", 128, 30000, faiss.METRIC_L2),
    ]
    for tenant, name, factory, d, n, metric in specs:
        x = embeddings(rng, n, d)
        index = faiss.index_factory(d, factory, metric)
        index.train(x)
        index.add(x)
        folder = os.path.join(data, tenant, name)
        os.makedirs(folder, exist_ok=True)
        faiss.write_index(index, os.path.join(folder, "index.faiss"))
        meta = {"name": name, "tenant": tenant, "dimension": d, "index_type": factory,
                "metric": "IP" if metric == faiss.METRIC_INNER_PRODUCT else "L2",
                "vector_count": n}
        with open(os.path.join(folder, "metadata.json"), "w") as f:
            json.dump(meta, f, indent=2)
        with open(os.path.join(folder, "vectors.json"), "w") as f:
            json.dump({str(i): {"source": f"{name}-{i}"} for i in range(0, n, 10)}, f)
        print(f"  {tenant}/{name}: {factory}, d={d}, n={n}")
    # The older flat layout.
    x = embeddings(rng, 5000, 96)
    index = faiss.IndexFlatL2(96)
    index.add(x)
    faiss.write_index(index, os.path.join(data, "legacy.faiss"))
    with open(os.path.join(data, "legacy.json"), "w") as f:
        json.dump({"dimension": 96, "index_type": "Flat", "vector_count": 5000}, f)
    print("  legacy.faiss + legacy.json: Flat, d=96, n=5000")


if __name__ == "__main__":
    main()

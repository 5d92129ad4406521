#!/usr/bin/python3
"""Benchmark data (run with /usr/bin/python3): a large IndexFlat and one index of each type.

    gen_bench_data.py OUT_DIR [--flat-mib N] [--n N]

OUT/big/flat.faiss  an IndexFlatL2 of about N MiB (default 1024) of unit-normalised vectors
OUT/types/<type>.faiss  one index per common type, d=128, n vectors (default 100000)
Vectors are clustered unit-normalised embeddings; fixed seed.
"""
import argparse
import os

import faiss
import numpy as np

D = 128


def embeddings(rng, n, d=D, clusters=256):
    centres = rng.standard_normal((clusters, d)).astype("float32")
    out = np.empty((n, d), dtype="float32")
    step = 1 << 18
    for s in range(0, n, step):
        m = min(step, n - s)
        x = centres[rng.integers(0, clusters, m)] + 0.35 * rng.standard_normal((m, d)).astype("float32")
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[s:s + m] = x
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--flat-mib", type=int, default=1024)
    ap.add_argument("--n", type=int, default=100000)
    a = ap.parse_args()
    rng = np.random.default_rng(7)
    os.makedirs(os.path.join(a.out, "big"), exist_ok=True)
    os.makedirs(os.path.join(a.out, "types"), exist_ok=True)

    n_big = a.flat_mib * (1 << 20) // (4 * D)
    ix = faiss.IndexFlatL2(D)
    ix.add(embeddings(rng, n_big))
    faiss.write_index(ix, os.path.join(a.out, "big", "flat.faiss"))
    del ix

    x = embeddings(rng, a.n)
    xb = np.packbits((x > 0).astype("uint8"), axis=1)
    float_types = {
        "Flat": "Flat", "IVFFlat": "IVF256,Flat", "IVFPQ": "IVF256,PQ16np",
        "IVF-SQ8": "IVF256,SQ8", "HNSWFlat": "HNSW32,Flat", "PQ": "PQ16np", "SQ8": "SQ8",
    }
    for name, factory in float_types.items():
        ix = faiss.index_factory(D, factory)
        ix.train(x[:20000])
        ix.add(x)
        faiss.write_index(ix, os.path.join(a.out, "types", name + ".faiss"))
    for name, factory in {"BinaryFlat": "BFlat", "BinaryIVF": "BIVF64"}.items():
        ix = faiss.index_binary_factory(D, factory)
        ix.train(xb[:20000])
        ix.add(xb)
        faiss.write_index_binary(ix, os.path.join(a.out, "types", name + ".faiss"))


if __name__ == "__main__":
    main()

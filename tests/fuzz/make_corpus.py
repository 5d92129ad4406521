#!/usr/bin/env python3
"""Writes the fuzz seed corpus (corpus/<target>/) and the known-bad inputs
(bad/<target>/) next to this script.  Seeds come from a small real store made
by `faissfs import` (give its path); the known-bad inputs are built here, each
one a way the on-disk data can be wrong that a parser must refuse.

    tests/fuzz/make_corpus.py STORE     (a store imported with --chunk-size 4K)

Every file in bad/ is also a cmocka regression test (test_fuzz_regress.c):
superblock, meta and faiss_header inputs must be refused, object inputs must
not crash.  Re-running rewrites the generated files; crash inputs found by the
fuzzers are added to bad/<target>/ by hand as crash-<what>.
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def put(target, kind, name, data):
    d = os.path.join(HERE, kind, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- minimal MessagePack encoder (what the trailer uses) ---------------------
def mp(v):
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if v >= 0:
            return b"\xcf" + struct.pack(">Q", v)
        if v >= -32:
            return struct.pack("b", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, str):
        b = v.encode()
        return (bytes([0xA0 | len(b)]) if len(b) < 32 else b"\xd9" + bytes([len(b)])) + b
    if isinstance(v, bytes):
        return b"\xc6" + struct.pack(">I", len(v)) + v
    if isinstance(v, list):
        return b"\xdd" + struct.pack(">I", len(v)) + b"".join(mp(x) for x in v)
    if isinstance(v, dict):
        out = b"\xdf" + struct.pack(">I", len(v))
        for k, x in v.items():
            out += mp(k) + mp(x)
        return out
    raise TypeError(v)


def rec(offset, stored, kind=2, filt=0, h=0):
    return struct.pack("<QIBBHQ", offset, stored, kind, filt, 0, h)


def meta_input(size, shift, toff, body):
    """fuzz_meta input: u64 size, u8 chunk-size shift, u32 trailer offset - 64, map."""
    return struct.pack("<QBI", size, shift, toff - 64) + body


def seeds(store):
    files = []
    for root, dirs, names in os.walk(store):
        dirs[:] = [d for d in dirs if d != ".faissfs"]
        files += [os.path.join(root, n) for n in names]
    for path in sorted(files):
        data = open(path, "rb").read()
        name = os.path.basename(path)
        put("fuzz_object", "corpus", name, data)
        if data[8:15] == b"FFSOBJ1":
            size, toff, tsize = struct.unpack_from("<QQI", data, 32)
            shift = (struct.unpack_from("<I", data, 24)[0] // 4096).bit_length() - 1
            body = data[toff + 8:toff + tsize - 8]
            put("fuzz_meta", "corpus", name, meta_input(size, shift, toff, body))
    sb = open(os.path.join(store, ".faissfs", "superblock"), "rb").read()
    put("fuzz_superblock", "corpus", "superblock", sb + b"\x01")
    put("fuzz_superblock", "corpus", "superblock-raw", sb)
    data_dir = os.path.join(HERE, "..", "data", "faiss")
    for n in sorted(os.listdir(data_dir)):
        if n.endswith(".faiss"):
            put("fuzz_faiss_header", "corpus", n, open(os.path.join(data_dir, n), "rb").read()[:96])


def bad_superblock():
    def sb(magic=b"FFSSTORE", major=1, minor=0, incompat=0, ro=0, compat=0, cs=262144, lvl=3):
        b = magic + struct.pack("<HHIIIIi", major, minor, incompat, ro, compat, cs, lvl)
        b += b"\x11" * 16 + struct.pack("<Q", 1700000000)
        return b + b"\0" * 8 + b"\x01"  # > 64 bytes: the target fixes the checksum

    put("fuzz_superblock", "bad", "empty", b"")
    put("fuzz_superblock", "bad", "truncated", sb()[:40])
    put("fuzz_superblock", "bad", "checksum", sb()[:64])  # exactly 64: checksum kept (zero)
    put("fuzz_superblock", "bad", "magic", sb(magic=b"FFSSTORx"))
    put("fuzz_superblock", "bad", "newer_major", sb(major=2))
    put("fuzz_superblock", "bad", "major_zero", sb(major=0))
    put("fuzz_superblock", "bad", "unknown_incompat", sb(incompat=1))
    put("fuzz_superblock", "bad", "chunk_size_odd", sb(cs=262145))
    put("fuzz_superblock", "bad", "chunk_size_huge", sb(cs=1 << 31))
    put("fuzz_superblock", "bad", "chunk_size_zero", sb(cs=0))
    put("fuzz_superblock", "bad", "level_zero", sb(lvl=0))
    put("fuzz_superblock", "bad", "level_negative", sb(lvl=-5))
    put("fuzz_superblock", "bad", "level_huge", sb(lvl=1 << 30))


def bad_meta():
    cs4k = 0
    good = {"size": 5000, "chunk_size": 4096, "level": 3, "stored": 200,
            "faiss": None, "chunks": rec(64, 100) + rec(164, 100)}

    def m(name, d, size=5000, toff=264):
        put("fuzz_meta", "bad", name, meta_input(size, cs4k, toff, mp(d)))

    def with_(**kw):
        d = dict(good)
        d.update(kw)
        return d

    put("fuzz_meta", "bad", "short", b"\x01\x02")
    put("fuzz_meta", "bad", "empty_map", meta_input(5000, 0, 264, b""))
    put("fuzz_meta", "bad", "not_a_map", meta_input(5000, 0, 264, mp([1, 2, 3])))
    put("fuzz_meta", "bad", "two_maps", meta_input(5000, 0, 264, mp(good) + mp(good)))
    put("fuzz_meta", "bad", "map_truncated", meta_input(5000, 0, 264, mp(good)[:-7]))
    put("fuzz_meta", "bad", "map_huge_count",
        meta_input(5000, 0, 264, b"\xdf\xff\xff\xff\xff" + mp("size") + mp(1)))
    put("fuzz_meta", "bad", "bin_huge_len",
        meta_input(5000, 0, 264, b"\x81" + mp("chunks") + b"\xc6\xff\xff\xff\xf0"))
    put("fuzz_meta", "bad", "str_huge_len",
        meta_input(5000, 0, 264, b"\x81\xdb\xff\xff\xff\xf0abc"))
    put("fuzz_meta", "bad", "deep_nesting",
        meta_input(5000, 0, 264, b"\x81" + mp("faiss") + b"\x91" * 5000 + b"\xc0"))
    m("missing_size", {k: v for k, v in good.items() if k != "size"})
    m("missing_chunks", {k: v for k, v in good.items() if k != "chunks"})
    m("size_string", with_(size="5000"))
    m("size_negative", with_(size=-1))
    m("size_mismatch", with_(size=4000))
    m("chunk_size_mismatch", with_(chunk_size=8192))
    m("chunk_size_64bit", with_(chunk_size=1 << 40))
    m("chunks_not_bin", with_(chunks="x" * 48))
    m("chunks_short", with_(chunks=rec(64, 100)))
    m("chunks_long", with_(chunks=rec(64, 100) * 3))
    m("chunks_ragged", with_(chunks=rec(64, 100) + rec(164, 100)[:20]))
    m("rec_past_trailer", with_(chunks=rec(64, 100) + rec(164, 1000)))
    m("rec_in_header", with_(chunks=rec(10, 100) + rec(164, 100)))
    m("rec_offset_wraps", with_(chunks=rec(64, 100) + rec((1 << 64) - 50, 100)))
    m("rec_zero_len", with_(chunks=rec(64, 0) + rec(164, 100)))
    m("rec_unknown_kind", with_(chunks=rec(64, 100, kind=9) + rec(164, 100)))
    m("rec_unknown_filter", with_(chunks=rec(64, 100, filt=3) + rec(164, 100)))
    m("rec_hole_bad_hash", with_(chunks=rec(64, 100, kind=0, h=12345) + rec(164, 100)))
    m("stored_mismatch", with_(stored=999))
    m("level_string", with_(level="3"))
    m("level_huge", with_(level=1 << 40))
    m("faiss_not_map", with_(faiss=[1, 2]))
    m("faiss_fourcc_long", with_(faiss={"fourcc": "IxF2IxF2", "binary": False, "d": 8,
                                         "ntotal": 1, "metric": 1, "is_trained": True}))
    m("faiss_d_string", with_(faiss={"fourcc": "IxF2", "binary": False, "d": "8",
                                      "ntotal": 1, "metric": 1, "is_trained": True}))
    m("size_huge", with_(size=(1 << 64) - 1), size=(1 << 64) - 1)


def bad_faiss_header():
    def flt(fourcc=b"IxF2", d=8, ntotal=10, trained=1, metric=1, prefix=b""):
        return fourcc + prefix + struct.pack("<iqqqBi", d, ntotal, 0, 0, trained, metric)

    def binh(fourcc=b"IBxF", d=64, cs=8, ntotal=10, trained=1, metric=1):
        return fourcc + struct.pack("<iiqBi", d, cs, ntotal, trained, metric)

    put("fuzz_faiss_header", "bad", "empty", b"")
    put("fuzz_faiss_header", "bad", "three_bytes", b"IxF")
    put("fuzz_faiss_header", "bad", "fourcc_only", b"IxF2")
    put("fuzz_faiss_header", "bad", "float_truncated", flt()[:30])
    put("fuzz_faiss_header", "bad", "unknown_fourcc", flt(fourcc=b"ZZZZ"))
    put("fuzz_faiss_header", "bad", "d_zero", flt(d=0))
    put("fuzz_faiss_header", "bad", "d_negative", flt(d=-8))
    put("fuzz_faiss_header", "bad", "trained_two", flt(trained=2))
    put("fuzz_faiss_header", "bad", "lattice_truncated", flt(fourcc=b"IxLa")[:36])
    put("fuzz_faiss_header", "bad", "binary_truncated", binh()[:20])
    put("fuzz_faiss_header", "bad", "binary_d_not_8", binh(d=12, cs=1))
    put("fuzz_faiss_header", "bad", "binary_code_size", binh(d=64, cs=9))
    put("fuzz_faiss_header", "bad", "binary_trained_two", binh(trained=2))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    seeds(sys.argv[1])
    bad_superblock()
    bad_meta()
    bad_faiss_header()


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# gen_scale_store.sh - a store of many tenants and indices, for bench_scale.sh and
# test_scale_small.sh.
#
#   gen_scale_store.sh OUT [TENANTS [INDICES [LARGE [LARGE_N]]]]
#
# OUT/src    the FAISSx data dir: OUT/src/tNNN/iNNN/{index.faiss,metadata.json,
#            vectors.json}; TENANTS x INDICES index dirs (default 100 x 50).  Small
#            index.faiss files are IndexFlatL2 of 20..400 random vectors of d 64.
# OUT/store  the store: OUT/src imported with `faissfs import`, then LARGE (default
#            50) of the indices, spread over the tenants, replaced by IndexFlatL2
#            objects of LARGE_N (default 10M) vectors of d 128 (5.1 GB each: zero
#            vectors but for a patterned chunk every 1024) written by
#            bench_huge_object, which takes seconds where importing them would
#            read every byte.
# OUT/expect one line per file of the store: PATH SIZE (for the checks).
# Environment: FAISSFS, HUGE_OBJECT (defaults: build/ paths), PYTHON.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: gen_scale_store.sh OUT [TENANTS [INDICES [LARGE [LARGE_N]]]]}
tenants=${2:-100}
indices=${3:-50}
large=${4:-50}
large_n=${5:-10000000}
FAISSFS=${FAISSFS:-$here/../build/faissfs}
HUGE_OBJECT=${HUGE_OBJECT:-$here/../build/bench/bench_huge_object}
PYTHON=${PYTHON:-/usr/bin/python3}

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

mkdir -p "$out"
rm -rf -- "$out/src" "$out/store"
start=$(now)
"$PYTHON" - "$out/src" "$tenants" "$indices" <<'PY'
import json, os, random, struct, sys
root, tenants, indices = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = random.Random(9)
d = 64
for t in range(tenants):
    for i in range(indices):
        p = os.path.join(root, f"t{t:03d}", f"i{i:03d}")
        os.makedirs(p)
        n = r.randint(20, 400)
        hdr = struct.pack("<4siqqq?iQ", b"IxF2", d, n, 1 << 20, 1 << 20, True, 1, n * d * 4)
        with open(os.path.join(p, "index.faiss"), "wb") as f:
            f.write(hdr + r.randbytes(n * d * 4))
        with open(os.path.join(p, "metadata.json"), "w") as f:
            json.dump({"name": f"i{i:03d}", "tenant": f"t{t:03d}", "dimension": d,
                       "index_type": "IndexFlatL2", "ntotal": n}, f)
        with open(os.path.join(p, "vectors.json"), "w") as f:
            json.dump({str(k): {"id": f"doc-{t}-{i}-{k}", "source": "scale"} for k in range(8)}, f)
PY
gen=$(since "$start")
start=$(now)
"$FAISSFS" import "$out/src" "$out/store" --no-progress >"$out/import.log" 2>&1 ||
	{ cat "$out/import.log" >&2; exit 1; }
imp=$(since "$start")

# The large ones: evenly spread, replacing the imported small index.faiss.
start=$(now)
total=$((tenants * indices))
: >"$out/large.list"
for ((k = 0; k < large && k < total; k++)); do
	j=$((k * total / large))
	dir=$(printf 't%03d/i%03d' $((j / indices)) $((j % indices)))
	rm -f -- "$out/src/$dir/index.faiss"
	truncate -s $((45 + large_n * 128 * 4)) "$out/src/$dir/index.faiss" # size only
	"$HUGE_OBJECT" write "$out/store" "$dir" index.faiss "$large_n" 128 >/dev/null
	echo "$dir" >>"$out/large.list"
done
big=$(since "$start")
(cd "$out/src" && find . -type f -printf '%P %s\n' | sort) >"$out/expect"
printf 'generated %d x %d index dirs (%d files) in %s s; import %s s; %d large of %d vectors in %s s; store %s\n' \
	"$tenants" "$indices" "$(wc -l <"$out/expect")" "$gen" "$imp" "$large" "$large_n" "$big" \
	"$(du -sh "$out/store" | cut -f1)"

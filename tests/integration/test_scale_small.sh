#!/usr/bin/env bash
# test_scale_small.sh - bench_scale.sh's store at CI size (10 tenants x 20 indices,
# 5 of them IndexFlatL2 of 1M vectors): every file present with its size and
# bytes, `faissfs stat` and du agreeing with the files, and the daemon's memory
# bounded after every index was touched.
. "$(dirname "$0")/lib.sh"
: "${HUGE_OBJECT:?set HUGE_OBJECT to the bench_huge_object program}"

W=$T/w
mnt=$T/mnt
mkdir -p "$mnt"
say "generate 10 x 20 index dirs, 5 large"
FAISSFS=$FAISSFS HUGE_OBJECT=$HUGE_OBJECT PYTHON=$PYTHON \
	bash "$IT_DIR/../../bench/gen_scale_store.sh" "$W" 10 20 5 1000000 ||
	fail "gen_scale_store.sh failed"
[ "$(wc -l <"$W/expect")" = 600 ] || fail "expected 600 files, the generator listed $(wc -l <"$W/expect")"

say "mount (cache 4M): every file with its size; small files byte-identical"
mount_fg "$W/store" "$mnt" "$T/daemon.log" -o cache_size=4M
rss0=$(awk '/^VmRSS/ { print $2 }' "/proc/$FG_PID/status")
diff <(cd "$mnt" && find . -type f -printf '%P %s\n' | sort) "$W/expect" >"$T/sizes.diff" ||
	fail "files or sizes on the mount differ: $(head -5 "$T/sizes.diff")"
ok "600 files, sizes as expected"
n=0
while read -r path _; do
	if grep -qx "${path%/index.faiss}" "$W/large.list" 2>/dev/null && [[ $path == */index.faiss ]]; then
		continue
	fi
	cmp -- "$W/src/$path" "$mnt/$path" || fail "$path differs from its source"
	n=$((n + 1))
done <"$W/expect"
[ "$n" = 595 ] || fail "compared $n files, expected 595"
ok "$n files byte-identical"
while read -r dir; do
	"$HUGE_OBJECT" check "$mnt/$dir/index.faiss" 1000000 128 1024 40 "${#dir}" >/dev/null ||
		fail "random reads of the large $dir/index.faiss"
done <"$W/large.list"
ok "5 large files: header and 40 random reads each"

say "faissfs stat and du agree with the files"
"$FAISSFS" stat "$mnt" --json >"$T/stat.json" || fail "faissfs stat --json"
"$PYTHON" - "$T/stat.json" "$W/expect" <<'PY' || fail "faissfs stat disagrees with the files"
import collections, json, sys
st = json.load(open(sys.argv[1]))
want = collections.Counter()
for line in open(sys.argv[2]):
    path, size = line.split()
    t, i, _ = path.split("/")
    want[(t, i)] += int(size)
got = {(x["tenant"], x["index"]): x["logical_bytes"] for x in st["indices"]}
bad = [k for k in want if got.get(k) != want[k]]
if len(got) != 200 or bad:
    sys.exit(f"{len(got)} indices; logical bytes differ for {bad[:5]}")
if st["total"]["logical_bytes"] != sum(want.values()):
    sys.exit(f"total {st['total']['logical_bytes']} != {sum(want.values())}")
PY
ok "200 indices, logical bytes per index and in total"
du_m=$(du -s -B1 --exclude=.faissfs "$mnt" | cut -f1)
du_s=$(du -s -B1 --exclude=.faissfs "$W/store" | cut -f1)
[ "$du_m" = "$du_s" ] || fail "du -s of the mount ($du_m) differs from the store's ($du_s)"
ok "du -s of the mount = the store's stored blocks ($du_m bytes)"

say "daemon memory after touching every index"
rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$FG_PID/status")
if ldd "$FAISSFS" 2>/dev/null | grep -q 'libasan\|libtsan'; then
	skip "sanitizer build: VmRSS $rss KiB (idle $rss0 KiB) is reported, not bounded"
else
	# 4 MiB of cache plus a few MiB of code, buffers and per-index state.
	[ "$rss" -lt $((32 * 1024)) ] || fail "daemon VmRSS $rss KiB (idle $rss0), expected < 32 MiB"
	ok "daemon VmRSS $rss KiB (idle $rss0 KiB)"
fi
unmount "$mnt" "$FG_PID"

say "-o cache_size=auto: a budget from MemAvailable, shown in the metrics"
mount_fg "$W/store" "$mnt" "$T/daemon2.log" -o cache_size=auto
budget=$(awk '$1 == "faissfs_cache_budget_bytes" { print $2 }' "$mnt/.faissfs/metrics")
total=$(($(awk '/^MemTotal:/ { print $2 }' /proc/meminfo) * 1024))
[ -n "$budget" ] && [ "$budget" -ge $((16 << 20)) ] && [ "$budget" -le "$total" ] ||
	fail "cache budget '$budget' with cache_size=auto is not within 16 MiB .. MemTotal"
cmp "$W/src/t000/i001/index.faiss" "$mnt/t000/i001/index.faiss" || fail "a read with the auto cache"
ok "budget $((budget >> 20)) MiB of $((total >> 20)) MiB"
unmount "$mnt" "$FG_PID"

#!/usr/bin/env bash
# test_metrics.sh - observability and admin of a real mount:
# - MOUNT/.faissfs is hidden from readdir of the root but reachable; its files list;
# - metrics move exactly as expected after known reads (logical and physical bytes,
#   cache misses then hits, chunk decompressions, index first-read and load counts);
# - the text passes `promtool check metrics` (or, without promtool, the
#   prometheus_client parser); the HTTP endpoint serves the same on 127.0.0.1 and a
#   non-loopback address is refused unless -o metrics_allow_remote;
# - user.faiss.d / user.faiss.ntotal equal FAISS's own d / ntotal for every index type;
# - settings change at run time (cache_size shrinks the cache) and bad values are
#   refused with a log line; a corrupt chunk counts as a checksum error;
# - `faissfs stat STORE|MOUNT --json` matches the data dir, the store and FAISS.
. "$(dirname "$0")/lib.sh"

gen=$T/gen
data=$gen/data
ref=$gen/ref
store=$T/store
mnt=$T/mnt
log=$T/daemon.log
mkdir "$mnt"

say "data: every index type (gen_indices.py) and a 1 MiB + 1000 bytes random file"
"$PYTHON" "$IT_DIR/gen_indices.py" "$gen" 2> >(grep -v 'WARNING clustering' >&2) | tail -n 1
mkdir -p "$data/rand/blob"
head -c $((1048576 + 1000)) /dev/urandom >"$data/rand/blob/data.bin"
mkdir -p "$data/rand/blob2"
head -c 200000 /dev/urandom >"$data/rand/blob2/data.bin"
"$FAISSFS" import "$data" "$store" --chunk-size 64K --no-progress >/dev/null ||
	fail "faissfs import failed"
ok "imported $(wc -l <"$ref/indices.txt") index files"

port=$((20000 + RANDOM % 20000))
say "mount -f with -o metrics=127.0.0.1:$port,readahead=0 (exact counts need no read-ahead)"
mount_fg "$store" "$mnt" "$log" -o "metrics=127.0.0.1:$port,readahead=0"
pid=$FG_PID

say "the control directory"
ls -a "$mnt" | grep -qx .faissfs && fail "readdir of the root lists .faissfs"
[ -d "$mnt/.faissfs" ] || fail "$mnt/.faissfs is not reachable"
got=$(ls "$mnt/.faissfs" | tr '\n' ' ')
for f in metrics stats stats.json store cache_size log_level compression_level compaction readahead; do
	case " $got " in *" $f "*) ;; *) fail "$f missing from .faissfs ($got)" ;; esac
done
[ "$(cat "$mnt/.faissfs/store")" = "$(realpath "$store")" ] || fail ".faissfs/store"
ok "hidden from ls, reachable; files: $got"

# m FILE SERIES: the value of SERIES (name{labels} as written) in FILE, 0 if absent.
m() { awk -v s="$2" '$1 == s { print $2; f = 1 } END { if (!f) print 0 }' "$1"; }
snap() { cat "$mnt/.faissfs/metrics" >"$T/$1"; }
delta() { echo $(($(m "$T/$2" "$1") - $(m "$T/$3" "$1"))); }
expect() { # DESC GOT WANT
	[ "$2" = "$3" ] || fail "$1: got $2, want $3"
	ok "$1: $2"
}

say "exact counts after reading a 1 MiB + 1000 byte file (17 chunks of 64 KiB)"
f=$mnt/rand/blob/data.bin
size=$(stat -c %s "$f")
chunks=$(getfattr --only-values -n user.faissfs.chunks "$f")
stored=$(getfattr --only-values -n user.faissfs.stored_bytes "$f")
[ "$chunks" = 17 ] || fail "user.faissfs.chunks of $f: $chunks, want 17"
snap m0
cat "$f" >/dev/null
snap m1
expect "logical bytes read" "$(delta faissfs_read_logical_bytes_total m1 m0)" "$size"
expect "physical bytes read (= user.faissfs.stored_bytes)" \
	"$(delta faissfs_read_physical_bytes_total m1 m0)" "$stored"
expect "cache misses" "$(delta faissfs_cache_misses_total m1 m0)" "$chunks"
expect "cache hits" "$(delta faissfs_cache_hits_total m1 m0)" 0
expect "chunk decompressions" "$(delta faissfs_chunk_decompress_seconds_count m1 m0)" "$chunks"
[ "$(delta 'faissfs_fuse_request_duration_seconds_count{op="read"}' m1 m0)" -ge 1 ] ||
	fail "no read request timed"
"$PYTHON" -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' "$f"
cat "$f" >/dev/null
snap m2
expect "re-read after dropping the page cache: cache hits" \
	"$(delta faissfs_cache_hits_total m2 m1)" "$chunks"
expect "re-read: cache misses" "$(delta faissfs_cache_misses_total m2 m1)" 0
expect "re-read: physical bytes" "$(delta faissfs_read_physical_bytes_total m2 m1)" 0

say "index first-read and whole-file load histograms, by tenant and FAISS type"
idx=$mnt/acme/flat_l2/index.faiss
type=$(getfattr --only-values -n user.faiss.type "$idx")
lab="{tenant=\"acme\",type=\"$type\"}"
cat "$idx" >/dev/null
snap m3
expect "faissfs_index_first_read_seconds_count$lab" \
	"$(delta "faissfs_index_first_read_seconds_count$lab" m3 m2)" 1
expect "faissfs_index_load_seconds_count$lab" \
	"$(delta "faissfs_index_load_seconds_count$lab" m3 m2)" 1
head -c 100 "$mnt/acme/ivf_flat/index.faiss" >/dev/null
snap m4
t2=$(getfattr --only-values -n user.faiss.type "$mnt/acme/ivf_flat/index.faiss")
lab2="{tenant=\"acme\",type=\"$t2\"}"
expect "partial read: first read counted" \
	"$(delta "faissfs_index_first_read_seconds_count$lab2" m4 m3)" 1
expect "partial read: no whole-file load" \
	"$(delta "faissfs_index_load_seconds_count$lab2" m4 m3)" 0

say "size gauges equal the store"
want=$(($(stat -c %s "$store/acme/flat_l2/index.faiss") + $(stat -c %s "$store/acme/flat_l2/metadata.json") + $(stat -c %s "$store/acme/flat_l2/vectors.json")))
expect 'faissfs_index_stored_bytes{tenant="acme",index="flat_l2"}' \
	"$(m "$T/m4" 'faissfs_index_stored_bytes{tenant="acme",index="flat_l2"}')" "$want"
want=$(($(stat -c %s "$data/acme/flat_l2/index.faiss") + $(stat -c %s "$data/acme/flat_l2/metadata.json") + $(stat -c %s "$data/acme/flat_l2/vectors.json")))
expect 'faissfs_index_logical_bytes{tenant="acme",index="flat_l2"}' \
	"$(m "$T/m4" 'faissfs_index_logical_bytes{tenant="acme",index="flat_l2"}')" "$want"

say "the exposition format"
if command -v promtool >/dev/null; then
	promtool check metrics <"$T/m4" || fail "promtool check metrics"
	ok "promtool check metrics passes"
else
	skip "promtool not installed (Debian package prometheus); using prometheus_client"
fi
"$PYTHON" - "$T/m4" <<'PY' || fail "prometheus_client cannot parse the metrics"
import sys
try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    print("   SKIP: python3-prometheus-client not installed")
    sys.exit(0)
fams = list(text_string_to_metric_families(open(sys.argv[1]).read()))
names = {f.name for f in fams}
for want in ("faissfs_fuse_request_duration_seconds", "faissfs_cache_hits",
             "faissfs_index_load_seconds", "faissfs_chunk_decompress_seconds",
             "faissfs_checksum_errors", "faissfs_index_stored_bytes"):
    assert want in names, want
print(f"   ok: prometheus_client parses {len(fams)} metric families")
PY

say "HTTP endpoint"
"$PYTHON" - "$port" "$T/http.txt" <<'PY' || fail "GET http://127.0.0.1:$port/metrics"
import sys, urllib.request, urllib.error
port, out = sys.argv[1], sys.argv[2]
r = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10)
assert r.status == 200, r.status
assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers["Content-Type"]
open(out, "wb").write(r.read())
try:
    urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=10)
    sys.exit("GET /other answered 200")
except urllib.error.HTTPError as e:
    assert e.code == 404, e.code
PY
grep -q '^faissfs_cache_misses_total ' "$T/http.txt" || fail "the HTTP answer lacks the metrics"
ok "GET /metrics on 127.0.0.1:$port: 200, text format 0.0.4; /other: 404"
refused "-o metrics=0.0.0.0:PORT without metrics_allow_remote" 2 \
	"$FAISSFS" mount -f "$store" "$T/mnt2" -o "metrics=0.0.0.0:$((port + 1))"
grep -q metrics_allow_remote "$T/err.txt" || fail "the refusal does not name metrics_allow_remote"
refused "-o metrics=bad" 2 "$FAISSFS" mount -f "$store" "$T/mnt2" -o metrics=nonsense
"$FAISSFS" init "$T/store2" >/dev/null || fail "faissfs init $T/store2"
mkdir -p "$T/mnt2"
mount_fg "$T/store2" "$T/mnt2" "$T/d2.log" -o "metrics=0.0.0.0:$((port + 2)),metrics_allow_remote"
"$PYTHON" -c 'import sys, urllib.request
r = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=10)
assert r.status == 200 and b"faissfs_cache_budget_bytes" in r.read()' "$((port + 2))" ||
	fail "GET /metrics from a 0.0.0.0 bind"
unmount "$T/mnt2" "$FG_PID"
ok "-o metrics=0.0.0.0:PORT,metrics_allow_remote: served (an empty store)"

say "xattrs equal FAISS's own d and ntotal, for every index type"
"$PYTHON" - "$ref/indices.txt" "$data" "$mnt" <<'PY' || fail "xattrs differ from FAISS"
import os, sys
import faiss
lst, data, mnt = sys.argv[1:4]
n = 0
for line in open(lst):
    kind, rel = line.split()
    src = os.path.join(data, rel)
    ix = faiss.read_index_binary(src) if kind == "b" else faiss.read_index(src)
    x = lambda k: os.getxattr(os.path.join(mnt, rel), k).decode()
    assert int(x("user.faiss.d")) == ix.d, (rel, x("user.faiss.d"), ix.d)
    assert int(x("user.faiss.ntotal")) == ix.ntotal, (rel, x("user.faiss.ntotal"), ix.ntotal)
    assert x("user.faiss.type") not in ("", "unknown"), rel
    assert x("user.faiss.metric"), rel
    names = set(os.listxattr(os.path.join(mnt, rel)))
    for k in ("user.faiss.type", "user.faiss.d", "user.faiss.ntotal", "user.faiss.metric",
              "user.faissfs.stored_bytes", "user.faissfs.chunks", "user.faissfs.chunk_size",
              "user.faissfs.codec"):
        assert k in names, (rel, k)
    n += 1
print(f"   ok: {n} index files: d, ntotal, type, metric and the 4 user.faissfs.* listed")
PY
getfattr -d "$mnt/acme/flat_l2/index.faiss" | sed 's/^/   /'

say "runtime settings"
"$FAISSFS" set "$mnt" | sed 's/^/   /'
before=$(m "$T/m4" faissfs_cache_bytes)
[ "$before" -gt 1048576 ] || fail "cache holds only $before bytes; the test needs more than 1 MiB"
"$FAISSFS" set "$mnt" cache_size 1M || fail "faissfs set cache_size 1M"
snap m5
expect "faissfs_cache_budget_bytes after set cache_size 1M" \
	"$(m "$T/m5" faissfs_cache_budget_bytes)" 1048576
after=$(m "$T/m5" faissfs_cache_bytes)
[ "$after" -le 1048576 ] || fail "cache holds $after bytes after shrinking to 1M"
ok "faissfs_cache_bytes shrank from $before to $after"
[ "$(cat "$mnt/.faissfs/cache_size")" = 1048576 ] || fail ".faissfs/cache_size"
refused "set cache_size bogus" 1 "$FAISSFS" set "$mnt" cache_size bogus
grep -q "bad value 'bogus' for cache_size" "$log" || fail "no log line for the bad value"
ok "the daemon logged: $(grep -m1 -o "bad value 'bogus' for cache_size.*" "$log")"
refused "set cache_size 1K (below 1M)" 1 "$FAISSFS" set "$mnt" cache_size 1K
refused "set compression_level 25" 1 "$FAISSFS" set "$mnt" compression_level 25
refused "set log_level loud" 1 "$FAISSFS" set "$mnt" log_level loud
refused "set metrics x (not a setting)" 2 "$FAISSFS" set "$mnt" metrics x
refused "set nosuch 1" 2 "$FAISSFS" set "$mnt" nosuch 1
refused "set by another user" 1 setpriv --reuid 65534 --regid 65534 --clear-groups \
	"$FAISSFS" set "$mnt" cache_size 2M
"$FAISSFS" set "$mnt" log_level debug || fail "set log_level debug"
[ "$(cat "$mnt/.faissfs/log_level")" = debug ] || fail "log_level did not change"
"$FAISSFS" set "$mnt" compaction on || fail "set compaction on"
[ "$(cat "$mnt/.faissfs/compaction")" = on ] || fail "compaction did not change"
"$FAISSFS" set "$mnt" log_level info || fail "set log_level info"
refused "set readahead 5000" 1 "$FAISSFS" set "$mnt" readahead 5000
"$FAISSFS" set "$mnt" readahead 4 || fail "set readahead 4"
[ "$(cat "$mnt/.faissfs/readahead")" = 4 ] || fail "readahead did not change"
"$FAISSFS" set "$mnt" readahead 0 || fail "set readahead 0"
ok "log_level, compaction, readahead changed; bad values, read-only files and other users refused"
# The mount is writable (the default), so the kernel lets `echo VALUE > setting` through.
echo 1M >"$mnt/.faissfs/cache_size" || fail "echo 1M > .faissfs/cache_size on a writable mount"
[ "$(cat "$mnt/.faissfs/cache_size")" = 1048576 ] || fail ".faissfs/cache_size after echo 1M"
(echo 1K >"$mnt/.faissfs/cache_size") 2>/dev/null && fail "echo 1K > cache_size (below 1M) worked"
ok "echo VALUE > setting works on a writable mount; a bad value is refused"

say "stats and stats.json"
sed 's/^/   /' "$mnt/.faissfs/stats"
"$PYTHON" -c 'import json, sys
s = json.load(open(sys.argv[1]))
assert s["cache"]["budget_bytes"] == 1048576, s["cache"]
assert s["settings"]["compaction"] is True
t = {x["tenant"]: x for x in s["tenants"]}
assert "acme" in t and "rand" in t, t.keys()
print("   ok: stats.json parses; tenants", sorted(t))' "$mnt/.faissfs/stats.json" ||
	fail "stats.json"

say "faissfs stat STORE --json and MOUNT --json match the store, the data dir and FAISS"
"$FAISSFS" stat "$store" --json >"$T/stat.json" || fail "faissfs stat $store"
"$FAISSFS" stat "$mnt" --json >"$T/stat2.json" || fail "faissfs stat $mnt"
cmp -s "$T/stat.json" "$T/stat2.json" || fail "stat of the store and of the mount differ"
"$FAISSFS" stat "$store" >"$T/stat.txt" || fail "faissfs stat $store (table)"
head -n 5 "$T/stat.txt" | sed 's/^/   /'
"$PYTHON" - "$T/stat.json" "$data" "$store" "$mnt" <<'PY' || fail "faissfs stat does not match"
import json, os, sys, time
import faiss
st, data, store, mnt = sys.argv[1:5]
rows = {(r["tenant"], r["index"]): r for r in json.load(open(st))["indices"]}
exp = {}
for root, dirs, files in os.walk(data):
    for f in files:
        rel = os.path.relpath(os.path.join(root, f), data)
        parts = rel.split(os.sep)
        if len(parts) >= 3:
            key = (parts[0], parts[1])
        else:
            stem = os.path.splitext(parts[-1])[0] if parts[-1].rfind(".") > 0 else parts[-1]
            key = (parts[0] if len(parts) == 2 else "-", stem)
        e = exp.setdefault(key, {"logical": 0, "stored": 0, "chunks": 0, "files": 0,
                                 "mtime": 0, "faiss": None})
        e["logical"] += os.path.getsize(os.path.join(data, rel))
        e["stored"] += os.path.getsize(os.path.join(store, rel))
        e["chunks"] += int(os.getxattr(os.path.join(mnt, rel), "user.faissfs.chunks"))
        e["files"] += 1
        e["mtime"] = max(e["mtime"], int(os.stat(os.path.join(store, rel)).st_mtime))
        if f.endswith(".faiss") and (e["faiss"] is None or f == "index.faiss"):
            e["faiss"] = rel
assert set(rows) == set(exp), (sorted(set(rows) ^ set(exp)))
for key, e in exp.items():
    r = rows[key]
    for k in ("logical", "stored"):
        assert r[k + "_bytes"] == e[k], (key, k, r[k + "_bytes"], e[k])
    assert r["chunks"] == e["chunks"] and r["files"] == e["files"], (key, r, e)
    assert r["last_write"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(e["mtime"])), key
    if e["faiss"]:
        src = os.path.join(data, e["faiss"])
        try:
            ix = faiss.read_index(src)
        except RuntimeError:
            ix = faiss.read_index_binary(src)
        assert (r["d"], r["ntotal"]) == (ix.d, ix.ntotal), (key, r, ix.d, ix.ntotal)
    else:
        assert r["type"] is None, (key, r)
print(f"   ok: {len(rows)} indices: sizes, chunks, files, last write, d and ntotal")
PY

say "a corrupt chunk (of a file never read so far) counts as a checksum error"
snap m6
f=$mnt/rand/blob2/data.bin
obj=$store/rand/blob2/data.bin
"$PYTHON" - "$obj" <<'PY'
import sys
p = sys.argv[1]
with open(p, "r+b") as f:
    f.seek(64 + 65536 + 1000)  # inside chunk 1, a raw (incompressible) frame
    b = f.read(1)
    f.seek(-1, 1)
    f.write(bytes([b[0] ^ 0x10]))
PY
cat "$f" >/dev/null 2>&1 && fail "reading a file with a corrupt chunk succeeded"
snap m7
n=$(delta faissfs_checksum_errors_total m7 m6)
[ "$n" -ge 1 ] || fail "faissfs_checksum_errors_total did not move"
expect "faissfs_io_errors_total" "$(delta faissfs_io_errors_total m7 m6)" 0
ok "faissfs_checksum_errors_total +$n"

unmount "$mnt" "$pid"

#!/usr/bin/env bash
# test_operator.sh - what an operator meets when installing and running faissfs:
# a mount point inside its own store is refused (it used to deadlock the daemon);
# .faissfs/stats says writable on a writable mount; a mount point with a space still
# gets the kernel read-ahead window; -o log_file writes the log (a bad path fails
# the mount); a non-empty mount point is warned about; import of a missing data dir
# leaves no store behind; verify and compact say what a bad path is; verify --deep
# without its checker is refused up front; faissfs set prints one setting and says
# what a setting accepts; a tenant whose name is not UTF-8 leaves the Prometheus
# text, stats.json and stat --json valid; the series of a removed tenant go away;
# -o metrics_max_series caps the label sets; process_* metrics are there;
# faissfs inspect on a file of a mount shows its object in the store.
. "$(dirname "$0")/lib.sh"

store=$T/store
mkdir -p "$T/data/acme/idx" "$T/mnt"
head -c 300000 /dev/urandom >"$T/data/acme/idx/index.faiss"
echo '{}' >"$T/data/acme/idx/metadata.json"
"$FAISSFS" import --no-progress "$T/data" "$store" >/dev/null || fail "import failed"

say "a mount point inside the store is refused (no hang)"
rc=0
timeout 20 "$FAISSFS" mount "$store" "$store/acme" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" != 124 ] || fail "faissfs mount STORE STORE/acme hung"
if is_mounted "$store/acme"; then
	fusermount3 -u "$store/acme"
	fail "faissfs mount STORE STORE/acme mounted"
fi
[ "$rc" = 1 ] && grep -q "inside the store" "$T/err" || fail "no clear refusal (exit $rc): $(cat "$T/err")"
ok "refused: $(head -n 1 "$T/err")"

say "stats of a writable mount, read-ahead with a space in the mount point, log_file"
sp="$T/mnt with space"
mkdir -p "$sp"
mount_daemon "$store" "$sp" -o "log_file=$T/daemon.log"
head -n 1 "$sp/.faissfs/stats" | grep -q "(writable)" || fail "stats: $(head -n 1 "$sp/.faissfs/stats")"
ok "stats: $(head -n 1 "$sp/.faissfs/stats")"
dev=$(awk -v p="$(realpath "$sp" | sed 's/ /\\\\040/g')" '$5 == p { print $3 }' /proc/self/mountinfo | tail -n 1)
[ -n "$dev" ] || fail "cannot find $sp in mountinfo"
ra=$(cat "/sys/class/bdi/$dev/read_ahead_kb")
[ "$ra" = 1024 ] || fail "read_ahead_kb of $sp ($dev) is $ra, want 1024"
ok "read_ahead_kb 1024 on a mount point with a space"
cat "$sp/acme/idx/index.faiss" >/dev/null
grep -q "serving $store" "$T/daemon.log" || fail "the log file lacks the start line: $(cat "$T/daemon.log")"
ok "-o log_file: $(wc -l <"$T/daemon.log") lines"

say "faissfs set: one setting, a bad value says what it accepts, an unknown name exits 2"
[ "$("$FAISSFS" set "$sp" readahead)" = 16 ] || fail "faissfs set MNT readahead: $("$FAISSFS" set "$sp" readahead)"
"$FAISSFS" set "$sp" | grep -q '^readahead=16$' || fail "faissfs set MNT does not list readahead"
refused "a bad value" 1 "$FAISSFS" set "$sp" log_level loud
grep -q "error, warn, info or debug" "$T/err.txt" || fail "the refusal does not say what log_level accepts"
refused "an unknown setting" 2 "$FAISSFS" set "$sp" colour blue
grep -q "compaction" "$T/err.txt" && grep -q "readahead" "$T/err.txt" || fail "not every setting listed"
unmount "$sp"
refused "a log file that cannot be opened" 1 "$FAISSFS" mount "$store" "$T/mnt" -o log_file=/nonexistent/dir/log
! is_mounted "$T/mnt" || fail "mounted despite a bad log_file"

say "a non-empty mount point is mounted with a warning"
touch "$T/mnt/leftover"
"$FAISSFS" mount "$store" "$T/mnt" 2>"$T/err" || fail "mount on a non-empty dir failed"
_mounts+=("$T/mnt")
grep -q "not empty" "$T/err" || fail "no warning for a non-empty mount point"
unmount "$T/mnt"

say "bad paths: import leaves nothing, verify and compact say what is wrong"
refused "import of a missing data dir" 1 "$FAISSFS" import /nonexistent/data "$T/newstore"
[ ! -e "$T/newstore" ] || fail "a failed import left $T/newstore"
refused "verify of a missing path" 1 "$FAISSFS" verify "$T/nope"
grep -q "does not exist" "$T/err.txt" || fail "verify: $(cat "$T/err.txt")"
! grep -q PROBLEM "$T/out.txt" || fail "verify reports a missing path as a damaged store"
mkdir "$T/plain"
refused "compact of a non-store" 1 "$FAISSFS" compact "$T/plain"
grep -q "not a faissfs store" "$T/err.txt" || fail "compact: $(cat "$T/err.txt")"
! grep -q "Wrong medium" "$T/err.txt" || fail "compact still says Wrong medium type"

say "verify --deep where faissfs-verify-deep is not installed: refused before checking"
mkdir "$T/bin"
cp "$FAISSFS" "$T/bin/faissfs"
refused "--deep without its checker" 2 env -u FAISSFS_VERIFY_DEEP "$T/bin/faissfs" verify --deep "$store"
grep -q "not available" "$T/err.txt" || fail "--deep: $(cat "$T/err.txt")"
[ ! -s "$T/out.txt" ] || fail "--deep without its checker still checked the store"
"$T/bin/faissfs" verify --help | grep -q "not installed here" || fail "--help does not say --deep is unavailable"

say "metrics: a tenant named in Latin-1, removal of a tenant, the series cap"
bad=$'caf\xe9'
mkdir -p "$T/m/$bad/idx" "$T/m/gone/idx" "$T/m/acme/one" "$T/m/acme/two" "$T/mnt2"
"$PYTHON" - "$T/m" <<'PY' || fail "cannot write the FAISS indices"
import os, sys, faiss, numpy as np
x = np.random.default_rng(1).random((200, 8), dtype="float32")
ix = faiss.IndexFlatL2(8)
ix.add(x)
root = os.fsencode(sys.argv[1])
for d in (b"caf\xe9/idx", b"gone/idx", b"acme/one", b"acme/two"):
    tmp = os.path.join(sys.argv[1], "tmp.faiss")  # FAISS takes only UTF-8 paths
    faiss.write_index(ix, tmp)
    os.rename(tmp, os.path.join(root, d, b"index.faiss"))
PY
"$FAISSFS" import --no-progress "$T/m" "$T/mstore" >/dev/null || fail "import of $T/m failed"
mount_daemon "$T/mstore" "$T/mnt2"
for t in "$bad" gone acme; do
	for f in "$T/mnt2/$t"/*/index.faiss; do cat "$f" >/dev/null; done
done
cat "$T/mnt2/.faissfs/metrics" >"$T/metrics1"
promtool check metrics <"$T/metrics1" || fail "promtool rejects the metrics of a Latin-1 tenant"
grep -qF "tenant=\"caf"$'\xef\xbf\xbd'"\",index=\"idx\"" "$T/metrics1" ||
	fail "the Latin-1 tenant is not written with U+FFFD"
ok "promtool check metrics passes; the tenant is written caf\\ufffd"
/usr/bin/python3 -c 'import json, sys; json.loads(open(sys.argv[1], encoding="utf-8").read())' \
	"$T/mnt2/.faissfs/stats.json" || fail "stats.json is not valid UTF-8 JSON"
"$FAISSFS" stat "$T/mstore" --json >"$T/stat.json" || fail "faissfs stat --json failed"
/usr/bin/python3 -c 'import json, sys; d = json.loads(open(sys.argv[1], encoding="utf-8").read()); assert any(r["tenant"] == "caf\ufffd" for r in d["indices"]), d' \
	"$T/stat.json" || fail "stat --json is not valid UTF-8 JSON with the tenant caf\ufffd"
ok "stats.json and stat --json are valid UTF-8 JSON"
for w in process_resident_memory_bytes process_cpu_seconds_total process_open_fds process_max_fds process_start_time_seconds; do
	grep -q "^$w " "$T/metrics1" || fail "$w missing"
done
ok "process_* metrics present"
grep -q 'faissfs_index_load_seconds_count{tenant="gone"' "$T/metrics1" || fail "no load series for tenant gone"
rm -r "$T/mnt2/gone"
# The kernel sends the release of the last open after close() returns: a series
# still held waits for it.
for _ in $(seq 50); do
	cat "$T/mnt2/.faissfs/metrics" >"$T/metrics2"
	grep -q 'tenant="gone"' "$T/metrics2" || break
	sleep 0.1
done
! grep -q 'tenant="gone"' "$T/metrics2" || fail "series of the removed tenant remain: $(grep 'tenant="gone"' "$T/metrics2" | head -n 3)"
grep -q 'faissfs_index_load_seconds_count{tenant="acme"' "$T/metrics2" || fail "the series of acme went too"
ok "the removed tenant's series are gone, the others stay"

say "faissfs inspect on a path inside the mount"
"$FAISSFS" inspect "$T/mnt2/acme/one/index.faiss" >"$T/insp" || fail "inspect through the mount failed"
head -n 1 "$T/insp" | grep -q ": faissfs object$" || fail "inspect on the mount: $(head -n 2 "$T/insp")"
grep -q "stored at .*$T/mstore/acme/one/index.faiss" "$T/insp" || fail "inspect does not name the stored object"
grep -q "IndexFlatL2" "$T/insp" || fail "inspect through the mount lacks the FAISS header"
"$FAISSFS" inspect --json "$T/mnt2/acme/one/index.faiss" |
	/usr/bin/python3 -c 'import json, sys; d = json.load(sys.stdin); assert d["object"] and d["stored_at"].endswith("/acme/one/index.faiss"), d' ||
	fail "inspect --json through the mount"
echo '{"a": 1}' >"$T/mnt2/acme/one/new.json"
"$FAISSFS" inspect "$T/mnt2/acme/one/new.json" | grep -q "plain file.*not compacted yet" ||
	fail "inspect of a just-written file: $("$FAISSFS" inspect "$T/mnt2/acme/one/new.json")"
ok "an object on the mount is inspected in the store; a just-written file is a plain file"
unmount "$T/mnt2"
mount_daemon "$T/mstore" "$T/mnt2" -o metrics_max_series=2
for f in "$T/mnt2"/*/*/index.faiss; do cat "$f" >/dev/null; done
cat "$T/mnt2/.faissfs/metrics" >"$T/metrics3"
promtool check metrics <"$T/metrics3" || fail "promtool rejects the capped metrics"
n=$(grep -c '^faissfs_index_stored_bytes{' "$T/metrics3")
[ "$n" = 2 ] || fail "$n faissfs_index_stored_bytes series with metrics_max_series=2, want 2"
grep -q '^faissfs_index_stored_bytes{overflow="true"} ' "$T/metrics3" || fail "no overflow series"
grep -q '^faissfs_metrics_indices_folded 2$' "$T/metrics3" || fail "folded: $(grep folded "$T/metrics3")"
n=$(grep -c '^faissfs_index_load_seconds_count{' "$T/metrics3")
[ "$n" -le 2 ] || fail "$n load series with metrics_max_series=2"
ok "metrics_max_series=2: two series per metric, the rest under overflow=\"true\""
unmount "$T/mnt2"
refused "a bad metrics_max_series" 2 "$FAISSFS" mount "$T/mstore" "$T/mnt2" -o metrics_max_series=lots

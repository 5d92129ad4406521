#!/usr/bin/env bash
# test_operator.sh - what an operator meets when installing and running faissfs:
# a mount point inside its own store is refused (it used to deadlock the daemon);
# .faissfs/stats says writable on a writable mount; a mount point with a space still
# gets the kernel read-ahead window; -o log_file writes the log (a bad path fails
# the mount); a non-empty mount point is warned about; import of a missing data dir
# leaves no store behind; verify and compact say what a bad path is; verify --deep
# without its checker is refused up front; faissfs set prints one setting and says
# what a setting accepts.
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

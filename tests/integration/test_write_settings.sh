#!/usr/bin/env bash
# Runtime settings of the compactor on a -o rw mount: `faissfs set MNT compaction off`
# keeps a closed file uncompressed; `compression_level N` and `compaction on` then
# compact it at that level, which the object records; the compaction and commit
# metrics count it.
. "$(dirname "$0")/lib.sh"

store=$T/store
mnt=$T/mnt
mkdir "$mnt"
"$FAISSFS" init "$store" >/dev/null || fail "faissfs init"
mount_fg "$store" "$mnt" "$T/d.log" -o rw

say "compaction off: a closed file stays a plain file"
[ "$(cat "$mnt/.faissfs/compaction")" = on ] || fail "compaction is not on at mount"
"$FAISSFS" set "$mnt" compaction off || fail "set compaction off"
make_mixed_file "$T/f" 3000000 5
cp "$T/f" "$mnt/index.faiss"
sleep 5 # longer than the compactor's 2 s idle time: it would have run by now
"$FAISSFS" inspect "$store/index.faiss" | grep -q "plain file" ||
	fail "compacted while compaction was off"
ok "still a plain file after 5 s with compaction off"

say "compression_level 7, compaction on: compacted at level 7"
"$FAISSFS" set "$mnt" compression_level 7 || fail "set compression_level 7"
"$FAISSFS" set "$mnt" compaction on || fail "set compaction on"
for _ in $(seq 1 90); do
	"$FAISSFS" inspect --json "$store/index.faiss" 2>/dev/null | grep -q '"level":7' && break
	sleep 1
done
"$FAISSFS" inspect --json "$store/index.faiss" | grep -q '"level":7' ||
	fail "not compacted at level 7 within 90 s: $("$FAISSFS" inspect "$store/index.faiss")"
cmp "$T/f" "$mnt/index.faiss" || fail "bytes changed by compaction"
ok "compacted at level 7, bytes unchanged"

say "the compaction and commit metrics moved"
m=$T/metrics
cat "$mnt/.faissfs/metrics" >"$m"
metric() { awk -v n="$1" '$1 == n { print $2 }' "$m"; }
[ "$(metric faissfs_compaction_files_total)" -ge 1 ] || fail "faissfs_compaction_files_total"
[ "$(metric faissfs_commit_seconds_count)" -ge 1 ] || fail "faissfs_commit_seconds_count"
[ "$(metric faissfs_compaction_backlog_bytes)" = 0 ] || fail "backlog not 0 when idle"
[ "$(metric faissfs_compaction_logical_bytes_total)" -ge 3000000 ] ||
	fail "faissfs_compaction_logical_bytes_total"
if command -v promtool >/dev/null; then
	promtool check metrics <"$m" || fail "promtool check metrics"
	ok "promtool check metrics passes"
fi
ok "files $(metric faissfs_compaction_files_total), commits $(metric faissfs_commit_seconds_count), backlog 0"
unmount "$mnt" "$FG_PID"

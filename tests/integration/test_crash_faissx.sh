#!/usr/bin/env bash
# test_crash_faissx.sh - kill -9 of a -o rw daemon under a FAISSx-like write load.
#
# Each round mounts the store -o rw, starts two workloads (crash_faissx.py work:
# faiss.write_index in place or to a temp name renamed over the old one, JSON files
# replaced by rename, in-place patches, fsync of files and directories, deletes of
# whole indices; every version's SHA-256 in a journal outside the mount), lets them
# run, then kill -9s the daemon: in odd rounds in the middle of a compaction (0 to
# 50 ms after a temp object appears in .faissfs/tmp: compressing, checking or
# publishing), in even ones 0 to 4 s after the workloads' first operation.  Then:
#  - faissfs verify STORE must find no problem.  Leftovers in .faissfs/tmp (the
#    temp object of a compaction, an unpack or a kept previous version cut short)
#    are expected after a kill: verify does not count them, they are counted here,
#    and at the end `faissfs verify --repair` must remove them all;
#  - a read-only remount, where every file must be its last completed version or,
#    for the one operation in flight, the version being written (for an interrupted
#    in-place faiss.write_index, a prefix of it), and every index.faiss loads in
#    FAISS (crash_faissx.py check).
# Rounds: FAISSFS_CRASH_ITERATIONS (default 10, about a minute; the stress run is 100).
. "$(dirname "$0")/lib.sh"

rounds=${FAISSFS_CRASH_ITERATIONS:-10}
store=$T/store
mnt=$T/mnt
mkdir "$mnt"
"$FAISSFS" init "$store" >/dev/null || fail "faissfs init"
"$PYTHON" -c 'import faiss' 2>/dev/null || {
	echo "SKIP [$TEST_NAME]: needs python3-faiss for $PYTHON"
	exit 77
}
helper=$IT_DIR/crash_faissx.py

pids=()
# The workloads go with the test, whatever happens.
_crash_cleanup() {
	local rc=$?
	for p in "${pids[@]}"; do
		kill -KILL "$p" 2>/dev/null
	done
	(exit "$rc")
	_cleanup
}
trap _crash_cleanup EXIT

# detach: unmount the dead mount (only once no workload can write below it).
detach() {
	fusermount3 -uz "$mnt" 2>/dev/null || true
	! is_mounted "$mnt" || fail "$mnt still mounted after kill -9 and fusermount3 -uz"
}

say "$rounds rounds: FAISSx-like writes, kill -9 of the daemon at a random moment, check"
start=$SECONDS
leftovers=0 compacted=0 incmp=0 summary=
for round in $(seq "$rounds"); do
	touch "$T/round"
	mount_fg "$store" "$mnt" "$T/rw.log" -o rw,log_level=debug
	pids=()
	for w in 0 1; do
		rm -f "$T/started.$w"
		"$PYTHON" "$helper" work "$mnt" "$T/journal.$w" $((round * 10 + w)) "$w" \
			"$T/started.$w" "$T/state.json" 2>"$T/work.$w.log" &
		pids+=($!)
	done
	# The first operation of each done (or a workload gone).
	for _ in $(seq 300); do
		[ -e "$T/started.0" ] && [ -e "$T/started.1" ] && break
		kill -0 "${pids[0]}" 2>/dev/null || kill -0 "${pids[1]}" 2>/dev/null || break
		sleep 0.1
	done
	if [ $((round % 2)) = 1 ]; then
		# In a compaction: once its temp object appears (up to 4 s), 0 to 50 ms later.
		for _ in $(seq 400); do
			if compgen -G "$store/.faissfs/tmp/obj.*" >/dev/null; then
				incmp=$((incmp + 1))
				break
			fi
			sleep 0.01
		done
		sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.3f", r % 50 / 1000 }')"
	else
		sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.2f", r % 400 / 100 }')"
	fi
	kill -KILL "$FG_PID"
	wait "$FG_PID" 2>/dev/null || true
	for p in "${pids[@]}"; do
		# The workloads stop at their next failed operation (ENOTCONN).
		timeout 30 tail --pid="$p" -f /dev/null || fail "round $round: a workload hangs"
		wait "$p" || {
			cat "$T/work.0.log" "$T/work.1.log" >&2
			fail "round $round: a workload failed for another reason than the kill"
		}
	done
	pids=()
	detach
	compacted=$((compacted + $(grep -c 'compacted ' "$T/rw.log" || true)))
	"$FAISSFS" verify "$store" >"$T/verify.out" 2>&1 || {
		cat "$T/verify.out" >&2
		fail "round $round: faissfs verify found problems after the kill"
	}
	# New files in tmp/ at this kill, by kind (obj: a compaction's temp object, unpack:
	# a file opened for writing, prev: a replaced object kept for its chunks, which
	# the next daemon uses).
	n=$(find "$store/.faissfs/tmp" -type f -cnewer "$T/round" | wc -l)
	kinds=$(find "$store/.faissfs/tmp" -type f -cnewer "$T/round" -printf '%f\n' |
		cut -d. -f1 | sort | uniq -c | awk '{ printf "%s %s ", $2, $1 }')
	leftovers=$((leftovers + n))
	mount_fg "$store" "$mnt" "$T/ro.log"
	summary=$("$PYTHON" "$helper" check "$mnt" "$T/state.json" "$T/journal.0" \
		"$T/journal.1" 2>"$T/check.err") || {
		cat "$T/check.err" >&2
		cat "$T/work.0.log" "$T/work.1.log" >&2
		fail "round $round: torn or lost files after kill -9 (store kept in $T)"
	}
	unmount "$mnt" "$FG_PID"
	echo "   round $round: $summary; new in tmp/: $n ${kinds:+($kinds)}"
done
ok "$rounds kills survived in $((SECONDS - start)) s: no torn or lost file, verify clean" \
	"($incmp kills during a compaction, $compacted files compacted meanwhile, $leftovers" \
	"files in tmp/ at the kills)"

say "verify --repair removes the leftovers of the kills"
# They count as leftovers once nobody wrote to them for a minute.
find "$store/.faissfs/tmp" -type f -exec touch -d '-2 min' {} +
"$FAISSFS" verify --repair "$store" >"$T/repair.out" 2>&1 || {
	cat "$T/repair.out" >&2
	fail "faissfs verify --repair failed"
}
left=$(find "$store/.faissfs/tmp" -type f | wc -l)
[ "$left" = 0 ] || fail "$left files left in .faissfs/tmp after verify --repair"
mount_fg "$store" "$mnt" "$T/ro.log"
"$PYTHON" "$helper" check "$mnt" "$T/state.json" >/dev/null || fail "files changed by --repair"
unmount "$mnt" "$FG_PID"
ok "tmp/ empty after --repair; every file still as checked"

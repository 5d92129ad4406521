#!/usr/bin/env bash
# test_random_ops.sh - random operations (random_ops.py: create, pwrite, truncate,
# ftruncate, mmap writes, rename, link, unlink, fsync, mkdir, rmdir, fds kept open)
# on a writable mount and on a plain directory in lockstep, every result, name, link
# count and byte checked after every step against the plain directory and an
# in-memory model.  Between segments the files go idle, so compaction turns them into
# objects that the next segment writes into again; halfway, the daemon is restarted
# and the whole tree checked.  The seed is printed (FAISSFS_RANDOM_SEED replays one).
. "$(dirname "$0")/lib.sh"

store=$T/store
mnt=$T/mnt
plain=$T/plain
mkdir "$mnt" "$plain"
"$FAISSFS" init "$store" >/dev/null || fail "faissfs init"
seed=${FAISSFS_RANDOM_SEED:-$((RANDOM * 32768 + RANDOM))}
segments=${FAISSFS_RANDOM_SEGMENTS:-6}
say "seed $seed ($segments segments of 300 steps; replay with FAISSFS_RANDOM_SEED=$seed)"

run_segment() { "$PYTHON" "$IT_DIR/random_ops.py" "$mnt" "$plain" "$1" 300 "$T/model"; }
objects() { find "$store" -path "$store/.faissfs" -prune -o -type f -print |
	while read -r f; do "$FAISSFS" inspect "$f" 2>/dev/null; done | grep -c ': faissfs object$' || true; }

mount_fg "$store" "$mnt" "$T/d1.log" -o rw
compacted=0
for i in $(seq 1 "$segments"); do
	if [ "$i" = $((segments / 2 + 1)) ]; then
		unmount "$mnt" "$FG_PID"
		"$FAISSFS" verify "$store" >"$T/verify.txt" 2>&1 || {
			cat "$T/verify.txt" >&2
			fail "faissfs verify after segment $((i - 1))"
		}
		mount_fg "$store" "$mnt" "$T/d2.log" -o rw
		ok "daemon restarted after segment $((i - 1)); the next segment checks the tree first"
	fi
	run_segment $((seed + i)) || fail "segment $i (seed $((seed + i))) of seed $seed"
	sleep 2.5 # idle: compaction makes objects of the files written
	n=$(objects)
	compacted=$((compacted + n))
done
[ "$compacted" -gt 0 ] || fail "no file was ever compacted between segments"
unmount "$mnt" "$FG_PID"
ok "objects in the store after the segments, summed: $compacted"

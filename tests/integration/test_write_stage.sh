#!/usr/bin/env bash
# test_write_stage.sh - staging back-pressure on a -o rw mount: with -o stage_max=4M,
# a writer that keeps closing 3 MB files is first slowed, then made to wait until
# the compactor catches up (the daemon says so in its log); no write fails, every
# file is right, and at the end every file is an object.  With -o compact=off there
# is no limit.
. "$(dirname "$0")/lib.sh"

store=$T/store
mnt=$T/mnt
mkdir "$mnt" "$T/src"
"$FAISSFS" init "$store" >/dev/null || fail "faissfs init"
for i in 0 1 2 3 4 5; do
	make_mixed_file "$T/src/f$i" 3000000 $((40 + i))
done

say "-o rw,stage_max=4M: six 3 MB files written one after the other"
mount_fg "$store" "$mnt" "$T/daemon.log" -o rw,stage_max=4M
start=$SECONDS
for i in 0 1 2 3 4 5; do
	cp "$T/src/f$i" "$mnt/f$i" || fail "writing f$i"
done
took=$((SECONDS - start))
grep -q 'staging: .* writers wait' "$T/daemon.log" ||
	fail "the writer was never made to wait (log: $(tail -n 3 "$T/daemon.log"))"
ok "the writer waited for the compactor ($took s for 18 MB): $(grep -m1 'staging:' "$T/daemon.log" | sed 's/.*staging: //')"
for i in 0 1 2 3 4 5; do cmp "$T/src/f$i" "$mnt/f$i" || fail "f$i differs"; done
ok "all six files byte-identical"
deadline=$((SECONDS + 60))
while find "$store" -maxdepth 1 -type f -name 'f*' -print0 |
	xargs -0 -r -n1 "$FAISSFS" inspect 2>/dev/null | grep -q 'plain file'; do
	[ "$SECONDS" -lt "$deadline" ] || fail "files still plain after 60 s"
	sleep 0.5
done
ok "all six are objects"
unmount "$mnt" "$FG_PID"

say "-o rw,compact=off,stage_max=4M: no compactor, so no limit"
mount_fg "$store" "$mnt" "$T/daemon2.log" -o rw,compact=off,stage_max=4M
for i in 0 1 2 3 4 5; do
	cp "$T/src/f$i" "$mnt/g$i" || fail "writing g$i"
done
! grep -q 'staging:' "$T/daemon2.log" || fail "writers waited with compact=off"
for i in 0 1 2 3 4 5; do cmp "$T/src/f$i" "$mnt/g$i" || fail "g$i differs"; done
"$FAISSFS" inspect "$store/g0" | grep -q 'plain file' || fail "g0 compacted with compact=off"
ok "written without waiting, left plain"
unmount "$mnt" "$FG_PID"

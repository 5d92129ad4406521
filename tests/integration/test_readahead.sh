#!/usr/bin/env bash
# test_readahead.sh - read-ahead on a real mount: it starts on sequential reads and not
# on random ones (the daemon's read-ahead counters, logged at unmount), the kernel's
# read-ahead window is raised to 1 MiB, chunks read through by a sequential reader are
# dropped from the cache (-o drop_behind) or kept, and sequential, random (pread) and
# mmap readers running at once over a tiny cache with deep read-ahead get exactly the
# source bytes.
. "$(dirname "$0")/lib.sh"
: "${RANDOM_READS:?set RANDOM_READS to the random_reads program}"

store=$T/store
mnt=$T/mnt
src=$T/src
mkdir -p "$mnt" "$src"

say "data: two 24 MiB mixed files, 64K chunks"
make_mixed_file "$src/a.bin" $((24 << 20)) 11
make_mixed_file "$src/b.bin" $((24 << 20)) 12
"$FAISSFS" import "$src" "$store" --chunk-size 64K --no-progress >/dev/null ||
	fail "faissfs import failed"

# ra_stat LOG FIELD: a number from the daemon's "read-ahead: ..." line at unmount.
ra_stat() {
	sed -n "s/.*read-ahead: .* \([0-9][0-9]*\) $2.*/\1/p" "$1" | tail -n 1
}

say "sequential read: read-ahead starts, every byte right"
mount_fg "$store" "$mnt" "$T/seq.log" -o readahead=8,log_level=debug
dev=$(mountpoint -d "$mnt")
kb=$(cat "/sys/class/bdi/$dev/read_ahead_kb" 2>/dev/null || echo "?")
if [ "$(id -u)" = 0 ]; then
	[ "$kb" = 1024 ] || fail "the kernel's read-ahead window is $kb KiB, want 1024"
	ok "kernel read-ahead window 1024 KiB (/sys/class/bdi/$dev)"
fi
cmp "$src/a.bin" "$mnt/a.bin" || fail "a.bin read sequentially differs"
unmount "$mnt" "$FG_PID"
trig=$(ra_stat "$T/seq.log" triggers)
ahead=$(ra_stat "$T/seq.log" "decompressed ahead")
[ -n "$trig" ] && [ "$trig" -gt 0 ] || fail "no read-ahead on a sequential read ($(grep read-ahead: "$T/seq.log"))"
[ -n "$ahead" ] && [ "$ahead" -gt 100 ] ||
	fail "only '$ahead' of 384 chunks decompressed ahead ($(grep read-ahead: "$T/seq.log"))"
ok "$trig triggers, $ahead chunks decompressed ahead"

# decodes LOG: chunks decompressed in all (misses of readers + chunks read ahead).
decodes() {
	local m d
	m=$(sed -n 's/.*cache: [0-9]* hits, \([0-9]*\) misses.*/\1/p' "$1" | tail -n 1)
	d=$(ra_stat "$1" "decompressed ahead")
	echo $((m + d))
}
dropped=$(sed -n 's/.* \([0-9][0-9]*\) dropped behind.*/\1/p' "$T/seq.log")
[ -n "$dropped" ] && [ "$dropped" -ge 300 ] ||
	fail "only '$dropped' of 384 chunks dropped behind the sequential reader ($(grep 'cache:' "$T/seq.log"))"
ok "drop_behind (default on): $dropped of 384 chunks dropped once read"

say "drop_behind: on decodes a re-read again, off serves it from the cache"
for db in on off; do
	mount_fg "$store" "$mnt" "$T/db-$db.log" -o readahead=8,drop_behind=$db
	cmp "$src/a.bin" "$mnt/a.bin" || fail "a.bin differs (drop_behind=$db)"
	# The mount's page cache of the file goes; the daemon's cache stays.
	dd if="$mnt/a.bin" iflag=nocache count=0 status=none
	cmp "$src/a.bin" "$mnt/a.bin" || fail "a.bin differs on the re-read (drop_behind=$db)"
	unmount "$mnt" "$FG_PID"
	n=$(decodes "$T/db-$db.log")
	echo "  drop_behind=$db: $n chunk decodes for two reads of 384 chunks"
	if [ $db = on ]; then
		[ "$n" -ge 700 ] || fail "drop_behind=on: $n decodes, want the re-read to decode again"
	else
		[ "$n" -le 400 ] || fail "drop_behind=off: $n decodes, want the re-read from the cache"
		grep -q ' 0 dropped behind' "$T/db-$db.log" || fail "drop_behind=off dropped chunks"
	fi
done
ok "drop_behind=on re-decodes, off keeps the chunks"

say "random reads (pread and mmap): no read-ahead"
mount_fg "$store" "$mnt" "$T/rand.log" -o readahead=8
"$PYTHON" - "$mnt/b.bin" "$src/b.bin" <<'PY' || fail "random 4 KiB reads differ"
import mmap, os, random, sys
r = random.Random(5)
a, b = os.open(sys.argv[1], os.O_RDONLY), os.open(sys.argv[2], os.O_RDONLY)
size = os.fstat(b).st_size
m = mmap.mmap(a, 0, mmap.MAP_SHARED, mmap.PROT_READ)
for i in range(600):
    off = r.randrange(0, size - 4096) & ~4095
    want = os.pread(b, 4096, off)
    got = os.pread(a, 4096, off) if i % 2 else m[off:off + 4096]
    if got != want:
        sys.exit("offset %d differs" % off)
PY
unmount "$mnt" "$FG_PID"
trig=$(ra_stat "$T/rand.log" triggers)
reads=$(sed -n 's/.*read-ahead: \([0-9][0-9]*\) reads.*/\1/p' "$T/rand.log")
# The kernel's own async read-ahead can chain 1 MiB read-around windows of faults that
# land on its marker pages (contiguous requests): rare, and bounded here.
[ -n "$trig" ] && [ $((trig * 50)) -le "$reads" ] ||
	fail "random reads triggered read-ahead $trig times in $reads requests"
ok "random reads: $trig read-ahead triggers in $reads requests"

say "sequential + random + mmap readers at once, 1 MiB cache, read-ahead 32"
mount_fg "$store" "$mnt" "$T/mix.log" -o readahead=32,workers=2,cache_size=1M
pids=()
(for i in 1 2 3; do cmp "$src/a.bin" "$mnt/a.bin" || exit 1; done) & pids+=($!)
(for i in 1 2 3; do cat "$mnt/b.bin" | cmp - "$src/b.bin" || exit 1; done) & pids+=($!)
"$RANDOM_READS" -n 400 -s 3 -c 65536 "$src/a.bin" "$mnt/a.bin" >"$T/rr1.out" 2>&1 & pids+=($!)
"$RANDOM_READS" -n 400 -s 4 -c 65536 "$src/b.bin" "$mnt/b.bin" >"$T/rr2.out" 2>&1 & pids+=($!)
for p in "${pids[@]}"; do
	wait "$p" || fail "a reader failed ($(cat "$T"/rr*.out | tail -n 3))"
done
unmount "$mnt" "$FG_PID"
grep -q "read-ahead: " "$T/mix.log" || fail "no read-ahead counters at unmount"
ok "every byte right: $(sed -n 's/.*read-ahead: //p' "$T/mix.log")"

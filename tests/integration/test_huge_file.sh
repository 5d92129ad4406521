#!/usr/bin/env bash
# test_huge_file.sh - a 100 GB IndexFlatL2 (200M vectors of d 128, zero except a
# patterned chunk every 1024) written as an object in seconds, mounted and read:
# size, FAISS header, `faissfs stat`, random reads over the whole range compared
# with the expected bytes, and the daemon's memory, which must not hold the chunk
# table (9 MiB) on its heap beyond the cache.
. "$(dirname "$0")/lib.sh"
: "${HUGE_OBJECT:?set HUGE_OBJECT to the bench_huge_object program}"

N=200000000
D=128
mnt=$T/mnt
mkdir -p "$mnt"

say "write a $((N * D * 4 / 1000000000)) GB object (holes and patterned chunks)"
"$FAISSFS" init "$T/store" >/dev/null || fail "faissfs init"
"$HUGE_OBJECT" write "$T/store" acme/huge index.faiss "$N" "$D" || fail "writing the object"
stored=$(stat -c %s "$T/store/acme/huge/index.faiss")
ok "stored in $stored bytes"

say "mount with a 16 MiB cache; stat; random reads over the whole file"
mount_fg "$T/store" "$mnt" "$T/daemon.log" -o cache_size=16M
size=$(stat -c %s "$mnt/acme/huge/index.faiss")
[ "$size" = $((45 + N * D * 4)) ] || fail "size on the mount is $size"
"$FAISSFS" stat "$mnt" --bytes | grep -Eq "huge +IndexFlatL2 +$D +$N +$size " ||
	fail "faissfs stat does not show the index: $("$FAISSFS" stat "$mnt" --bytes)"
ok "size $size, faissfs stat agrees"
"$HUGE_OBJECT" check "$mnt/acme/huge/index.faiss" "$N" "$D" 1024 400 3 ||
	fail "random reads of the huge file"
rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$FG_PID/status")
if ldd "$FAISSFS" 2>/dev/null | grep -q 'libasan\|libtsan'; then
	skip "sanitizer build: daemon VmRSS $rss KiB is reported, not bounded"
else
	# 16 MiB of cache, a few MiB of code and buffers; the table alone would be
	# 9 MiB more if it were decoded onto the heap, and 18 MiB while it was read.
	[ "$rss" -lt $((48 * 1024)) ] || fail "daemon VmRSS is $rss KiB (expected < 48 MiB)"
	ok "daemon VmRSS $rss KiB"
fi
unmount "$mnt" "$FG_PID"

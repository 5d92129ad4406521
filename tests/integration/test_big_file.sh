#!/usr/bin/env bash
# test_big_file.sh - a file larger than 1 GiB (offsets past 2^30 and 2^31 bits of
# arithmetic): import, mount, cmp, and reads past 1 GiB with dd and random_reads.
. "$(dirname "$0")/lib.sh"
: "${RANDOM_READS:?set RANDOM_READS to the random_reads program}"

MiB=$((1024 * 1024))
GiB=$((1024 * MiB))
src=$T/src
mnt=$T/mnt
mkdir -p "$src/acme/big" "$mnt"
file=acme/big/index.faiss
f=$src/$file

say "generate a FAISS-like file over 1 GiB (random, zero and text regions)"
# An IndexFlatL2 header (fourcc, d, ntotal, 2 dummies, is_trained, metric, code bytes)
# so the store sees a plausible FAISS file; the body is not real vectors.
"$PYTHON" -c '
import struct, sys
d, ntotal = 256, 1100000
sys.stdout.buffer.write(struct.pack("<4siqqq?iQ", b"IxF2", d, ntotal, 1 << 20, 1 << 20,
                                    True, 1, d * 4 * ntotal))' >"$f"
seq 1 3000000 >"$T/text" # ~22 MB of text to take unique slices from
for i in $(seq 0 29); do
	head -c $((12 * MiB + i * 4099)) /dev/urandom
	head -c $((12 * MiB + 17)) /dev/zero
	dd if="$T/text" bs=1M skip=$((i * 4099 + 1)) count=$((13 * MiB)) \
		iflag=skip_bytes,count_bytes status=none
done >>"$f"
size=$(stat -c %s "$f")
[ "$size" -gt "$GiB" ] || fail "generated only $size bytes"
ok "$size bytes"

say "import (default chunk size)"
start=$SECONDS
"$FAISSFS" import "$src" "$T/store" --no-progress || fail "faissfs import failed"
ok "imported in $((SECONDS - start)) s; store uses $(du -sh "$T/store" | cut -f1)"

say "mount, stat, cmp the whole file"
mount_daemon "$T/store" "$mnt"
[ "$(stat -c %s "$mnt/$file")" = "$size" ] || fail "size on the mount: $(stat -c %s "$mnt/$file")"
start=$SECONDS
cmp "$f" "$mnt/$file" || fail "cmp of the big file"
ok "cmp of $size bytes in $((SECONDS - start)) s"

say "dd reads around and past 1 GiB"
for off in $((GiB - 100)) $GiB $((GiB + 12345)) $((GiB + 64 * MiB - 1)) $((size - 5000)); do
	cmp <(dd if="$f" bs=64K skip="$off" count=$((256 * 1024 + 7)) \
		iflag=skip_bytes,count_bytes status=none) \
		<(dd if="$mnt/$file" bs=64K skip="$off" count=$((256 * 1024 + 7)) \
			iflag=skip_bytes,count_bytes status=none) ||
		fail "dd at offset $off differs"
done
ok "5 ranges around 1 GiB and the end"

say "random preads and mmap reads over the whole file"
"$RANDOM_READS" -n 400 -s 11 -c $((256 * 1024)) "$f" "$mnt/$file" ||
	fail "random reads of the big file"
unmount "$mnt"

#!/usr/bin/env bash
# test_random_reads.sh - random pread() and mmap() reads of a multi-chunk file through
# a mount, for every chunk size the format allows (4K..16M), against the source.
. "$(dirname "$0")/lib.sh"
: "${RANDOM_READS:?set RANDOM_READS to the random_reads program}"

src=$T/src
mnt=$T/mnt
mkdir -p "$src/acme/mixed" "$mnt"
size=$((3 * 1024 * 1024 + 12345)) # a few MB, not a multiple of any chunk size
file=acme/mixed/index.faiss

say "make a $size-byte file of random bytes, zero runs and text"
make_mixed_file "$src/$file" "$size" 7
ok "$(stat -c %s "$src/$file") bytes"

for cs in 4K 8K 16K 32K 64K 128K 256K 512K 1M 2M 4M 8M 16M; do
	bytes=$(numfmt --from=iec "$cs")
	store=$T/store-$cs
	say "chunk size $cs: import, mount, cmp, 2000 random preads and mmap reads"
	"$FAISSFS" import "$src" "$store" --chunk-size "$cs" --no-progress >/dev/null ||
		fail "faissfs import --chunk-size $cs failed"
	mount_daemon "$store" "$mnt"
	cmp "$src/$file" "$mnt/$file" || fail "cmp with chunk size $cs"
	"$RANDOM_READS" -n 2000 -s "$bytes" -c "$bytes" "$src/$file" "$mnt/$file" ||
		fail "random reads with chunk size $cs"
	if [ "$cs" = 256K ]; then
		say "chunk size $cs: 4 readers at once (different seeds)"
		pids=()
		for seed in 1 2 3 4; do
			"$RANDOM_READS" -n 1000 -s "$seed" -c "$bytes" "$src/$file" "$mnt/$file" \
				>"$T/par.$seed" &
			pids+=($!)
		done
		for i in 0 1 2 3; do
			wait "${pids[i]}" || fail "concurrent reader $((i + 1)) found a difference"
		done
		ok "4 concurrent readers: $(cat "$T"/par.* | grep -c '^random_reads: ok') of 4 ok"
	fi
	unmount "$mnt"
	rm -rf -- "$store"
done
ok "13 chunk sizes"

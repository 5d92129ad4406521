#!/usr/bin/env bash
# test_faiss_mount.sh - every FAISS index type, imported, mounted and read by FAISS
# itself (C API and Python, plain reads and IO_FLAG_MMAP) through the kernel; sizes
# and du as users see them; -o ro refuses writes; export gives the same bytes back.
# The mount is writable by default: everything is read through such a mount.
. "$(dirname "$0")/lib.sh"
: "${FAISS_CHECK:?set FAISS_CHECK to the faiss_check program}"

gen=$T/gen
data=$gen/data
ref=$gen/ref
store=$T/store
mnt=$T/mnt
mkdir "$mnt"

say "generate indices of every type in both FAISSx layouts (gen_indices.py)"
"$PYTHON" "$IT_DIR/gen_indices.py" "$gen" 2> >(grep -v 'WARNING clustering' >&2) |
	tail -n 1
nidx=$(wc -l <"$ref/indices.txt")
k=$(cat "$ref/k.txt")
[ "$nidx" -ge 26 ] || fail "gen_indices.py listed only $nidx index files"
ok "$nidx index files"

say "faissfs import"
"$FAISSFS" import "$data" "$store" --no-progress || fail "faissfs import failed"
ok "imported into $store"

say "mount (daemon mode) and compare every file with cmp"
mount_daemon "$store" "$mnt"
same_tree "$data" "$mnt"

say "FAISS C API: faiss_read_index_fname through the mount, io_flags 0 and IO_FLAG_MMAP"
n=0
while read -r kind rel; do
	if [ "$kind" = b ]; then
		"$FAISS_CHECK" -b "$ref/bqueries.bin" "$k" "$data/$rel" "$mnt/$rel" >"$T/fc.out" ||
			fail "faiss_check (binary) of $rel"
	else
		"$FAISS_CHECK" "$ref/queries.fvecs" "$k" "$data/$rel" "$mnt/$rel" >"$T/fc.out" ||
			fail "faiss_check of $rel"
	fi
	n=$((n + $(grep -c '^faiss_check: ok' "$T/fc.out")))
done <"$ref/indices.txt"
[ "$n" = $((2 * nidx)) ] || fail "faiss_check: $n of $((2 * nidx)) loads matched"
ok "$n C API loads (2 per index) searched exactly like the originals on plain disk"

say "Python faiss.read_index(path) and (path, IO_FLAG_MMAP) through the mount"
"$PYTHON" "$IT_DIR/check_faiss.py" "$ref" "$mnt" >"$T/py.out" || {
	cat "$T/py.out"
	fail "check_faiss.py"
}
tail -n 1 "$T/py.out"
ok "Python loads match the results of the original files"

say "sizes: stat and ls -l show logical sizes; du shows less than the apparent size"
while IFS= read -r -d '' f; do
	[ "$(stat -c %s "$mnt/$f")" = "$(stat -c %s "$data/$f")" ] ||
		fail "stat -c %s of $f: $(stat -c %s "$mnt/$f"), source $(stat -c %s "$data/$f")"
done < <(cd "$data" && find . -type f -printf '%P\0')
ls -l "$mnt/acme/flat_l2" | sed 's/^/   /'
ls_size=$(ls -l "$mnt/acme/flat_l2/index.faiss" | awk '{print $5}')
[ "$ls_size" = "$(stat -c %s "$data/acme/flat_l2/index.faiss")" ] ||
	fail "ls -l shows $ls_size bytes for acme/flat_l2/index.faiss"
ok "stat/ls sizes equal the sources"
nsmaller=0
for f in "$mnt"/*/*/vectors.json; do
	used=$(du -B1 "$f" | cut -f1)
	app=$(du -B1 --apparent-size "$f" | cut -f1)
	[ "$used" -lt "$app" ] || fail "du $f: $used bytes used, apparent $app (expected less)"
	nsmaller=$((nsmaller + 1))
done
used=$(du -s -B1 "$mnt" | cut -f1)
app=$(du -s -B1 --apparent-size "$mnt" | cut -f1)
[ "$used" -lt "$app" ] || fail "du -s of the mount: $used used, apparent $app"
[ "$used" -gt 0 ] || fail "du -s of the mount reports 0 bytes used"
ok "du < du --apparent-size for $nsmaller vectors.json files; whole mount $used < $app bytes"

say "-o ro: a read-only mount, writes fail with EROFS"
dpid=$(tr -d '\n' <"$store/.faissfs/lock")
unmount "$mnt"
# the store lock is free once the daemon has exited
timeout 10 tail --pid="$dpid" -f /dev/null || fail "daemon $dpid did not exit after unmount"
mount_daemon "$store" "$mnt" -o ro
case ",$(findmnt -n -o OPTIONS --mountpoint "$mnt")," in
*,ro,*) ;;
*) fail "-o ro mount options: $(findmnt -n -o OPTIONS --mountpoint "$mnt")" ;;
esac
if : 2>"$T/w.err" >"$mnt/new-file"; then
	fail "creating a file on the mount succeeded"
fi
grep -q 'Read-only file system' "$T/w.err" || fail "create: $(cat "$T/w.err") (expected EROFS)"
if : 2>"$T/w.err" >>"$mnt/acme/flat_l2/metadata.json"; then
	fail "opening a file for writing on the mount succeeded"
fi
grep -q 'Read-only file system' "$T/w.err" || fail "write: $(cat "$T/w.err") (expected EROFS)"
ok "create and open-for-write refused with EROFS"

say "unmount, faissfs export, compare again"
unmount "$mnt"
"$FAISSFS" export "$store" "$T/export" || fail "faissfs export failed"
same_tree "$data" "$T/export"

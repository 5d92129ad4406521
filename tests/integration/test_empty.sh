#!/usr/bin/env bash
# test_empty.sh - empty files and empty directories (and a wholly empty data dir)
# survive import, mount and export.
. "$(dirname "$0")/lib.sh"

src=$T/src
mnt=$T/mnt
mkdir -p "$mnt" "$src/acme/idx_empty" "$src/acme/idx_files" "$src/globex" "$src/a/b/c/d"
: >"$src/acme/idx_files/index.faiss"
: >"$src/acme/idx_files/metadata.json"
echo '{"vectors": []}' >"$src/acme/idx_files/vectors.json"
: >"$src/legacy_empty.faiss"
: >"$src/legacy_empty.json"

say "data dir with empty files and empty dirs: import, mount, compare"
"$FAISSFS" import "$src" "$T/store" --no-progress || fail "faissfs import failed"
mount_daemon "$T/store" "$mnt"
same_tree "$src" "$mnt"
for f in acme/idx_files/index.faiss acme/idx_files/metadata.json legacy_empty.faiss; do
	[ "$(stat -c %s "$mnt/$f")" = 0 ] || fail "$f: size $(stat -c %s "$mnt/$f") on the mount"
	[ "$(cat "$mnt/$f" | wc -c)" = 0 ] || fail "$f: reading it gave bytes"
	"$PYTHON" -c 'import sys; assert open(sys.argv[1], "rb").read(4096) == b""' "$mnt/$f" ||
		fail "$f: read() did not return b''"
done
ok "empty files: size 0, reads return nothing"
for d in acme/idx_empty globex a/b/c/d; do
	[ -d "$mnt/$d" ] || fail "$d is not a directory on the mount"
	[ -z "$(ls -A "$mnt/$d")" ] || fail "$d is not empty on the mount: $(ls -A "$mnt/$d")"
done
ok "empty directories listed and empty"
unmount "$mnt"

say "export gives the same tree back"
"$FAISSFS" export "$T/store" "$T/export" || fail "faissfs export failed"
same_tree "$src" "$T/export"

say "a wholly empty data dir"
mkdir "$T/src0"
"$FAISSFS" import "$T/src0" "$T/store0" --no-progress || fail "import of an empty dir failed"
mount_daemon "$T/store0" "$mnt"
[ -z "$(ls -A "$mnt")" ] || fail "the mount of an empty store lists: $(ls -A "$mnt")"
ok "the mount is empty"
unmount "$mnt"
"$FAISSFS" export "$T/store0" "$T/export0" || fail "export of an empty store failed"
[ -d "$T/export0" ] && [ -z "$(ls -A "$T/export0")" ] || fail "export of an empty store is not empty"
ok "the export is an empty directory"

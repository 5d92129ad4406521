#!/usr/bin/env bash
# test_bad_input.sh - every bad input gets a clear message on stderr, a non-zero exit
# (1 at run time, 2 for usage) and leaves the source and the store untouched:
# missing, plain, too new, unknown-feature, corrupt and truncated stores; a damaged
# object (the rest keeps working); missing and busy mountpoints; unknown options;
# data dirs holding an unreadable file.
. "$(dirname "$0")/lib.sh"
: "${HDR_PATCH:?set HDR_PATCH to the hdr_patch program}"

src=$T/src
store=$T/store
mnt=$T/mnt
mkdir -p "$src/acme/idx" "$mnt"
seq 1 50000 >"$src/acme/idx/index.faiss"
make_mixed_file "$src/acme/idx/vectors.json" 300000 5
echo '{"name": "idx"}' >"$src/acme/idx/metadata.json"
"$FAISSFS" import "$src" "$store" --chunk-size 16K --no-progress >/dev/null ||
	fail "faissfs import of the good data dir failed"
sb=.faissfs/superblock
[ -f "$store/$sb" ] || fail "the store has no $sb"

src_state=$(tree_state "$src")
store_state=$(tree_state "$store")
unchanged() { # DESC: the source and the store are as they were
	[ "$(tree_state "$src")" = "$src_state" ] || fail "$1: the source dir changed"
	[ "$(tree_state "$store")" = "$store_state" ] || fail "$1: the store changed"
}
not_mounted() { ! is_mounted "$1" || fail "$2: $1 got mounted"; }

# variant NAME: a copy of the good store to damage.
variant() {
	cp -a "$store" "$T/$1"
	echo "$T/$1"
}

say "usage errors exit 2"
refused "mount without arguments" 2 "$FAISSFS" mount
refused "mount with an unknown -o option" 2 "$FAISSFS" mount "$store" "$mnt" -o no_such_option=1
not_mounted "$mnt" "unknown option"
refused "mount with a bad -o drop_behind" 2 "$FAISSFS" mount "$store" "$mnt" -o drop_behind=maybe
grep -q "drop_behind (on or off)" "$T/err.txt" ||
	fail "the refusal of -o drop_behind=maybe does not say what it accepts"
not_mounted "$mnt" "bad drop_behind"
refused "mount with an unknown flag" 2 "$FAISSFS" mount --no-such-flag "$store" "$mnt"
not_mounted "$mnt" "unknown flag"
unchanged "usage errors"

say "bad stores are refused"
_mounts+=("$mnt")
refused "STORE missing" 1 "$FAISSFS" mount "$T/no-such-store" "$mnt"
mkdir -p "$T/plain/acme"
echo hello >"$T/plain/acme/file"
refused "STORE a plain directory (not a store)" 1 "$FAISSFS" mount "$T/plain" "$mnt"
refused "STORE a regular file" 1 "$FAISSFS" mount "$src/acme/idx/metadata.json" "$mnt"

v=$(variant newer)
"$HDR_PATCH" "$v/$sb" 8 2 2 >/dev/null # version_major (u16 at 8)
refused "superblock of a newer major version (2), checksum fixed" 1 "$FAISSFS" mount "$v" "$mnt"
refused "export of that store" 1 "$FAISSFS" export "$v" "$T/export-newer"
[ ! -e "$T/export-newer" ] || [ -z "$(ls -A "$T/export-newer")" ] ||
	fail "export of a too-new store wrote files"
refused "import into that store" 1 "$FAISSFS" import "$src" "$v" --no-progress

v=$(variant feature)
"$HDR_PATCH" "$v/$sb" 12 4 0x80000000 >/dev/null # feature_incompat
refused "superblock with an unknown incompatible feature bit" 1 "$FAISSFS" mount "$v" "$mnt"

v=$(variant badsum)
printf '\x07' | dd of="$v/$sb" bs=1 seek=30 conv=notrunc status=none
refused "superblock with a wrong checksum" 1 "$FAISSFS" mount "$v" "$mnt"

v=$(variant short)
truncate -s 40 "$v/$sb"
refused "truncated superblock (40 bytes)" 1 "$FAISSFS" mount "$v" "$mnt"
v=$(variant nosb)
rm "$v/$sb"
refused "store without its superblock" 1 "$FAISSFS" mount "$v" "$mnt"
not_mounted "$mnt" "bad stores"
unchanged "bad stores"

say "bad mountpoints are refused"
refused "MOUNTPOINT missing" 1 "$FAISSFS" mount "$store" "$T/no-such-mnt"
refused "MOUNTPOINT a regular file" 1 "$FAISSFS" mount "$store" "$src/acme/idx/metadata.json"
mount_daemon "$store" "$mnt"
refused "MOUNTPOINT busy (already mounted)" 1 "$FAISSFS" mount "$store" "$mnt"
cmp "$src/acme/idx/index.faiss" "$mnt/acme/idx/index.faiss" ||
	fail "the first mount stopped working after the refused second one"
ok "the first mount still serves"
unmount "$mnt"
not_mounted "$mnt" "busy mountpoint"
unchanged "bad mountpoints"

say "a damaged object gives EIO; the other files keep working"
v=$(variant damaged)
sz=$(stat -c %s "$v/acme/idx/index.faiss")
truncate -s $((sz - 5)) "$v/acme/idx/index.faiss" # cuts into the trailer's checksum
"$HDR_PATCH" "$v/acme/idx/vectors.json" 16 2 9 >/dev/null # object of format 9.x
damaged_state=$(tree_state "$v")
mount_fg "$v" "$mnt" "$T/damaged.log"
for f in acme/idx/index.faiss acme/idx/vectors.json; do
	r=$(errno_read "$mnt/$f" 0 4096)
	case $r in
	OK*) fail "$f: read gave bytes of a damaged object ($r)" ;;
	EIO | EPROTONOSUPPORT | EUCLEAN) ok "$f: read fails with $r" ;;
	*) fail "$f: read fails with $r (expected EIO)" ;;
	esac
done
cmp "$src/acme/idx/metadata.json" "$mnt/acme/idx/metadata.json" ||
	fail "the undamaged file differs"
ok "acme/idx/metadata.json still reads correctly"
grep -q 'acme/idx/index.faiss' "$T/damaged.log" || fail "the log does not name the damaged object"
ok "log: $(grep 'acme/idx/index.faiss' "$T/damaged.log" | head -n 1)"
unmount "$mnt" "$FG_PID"
[ "$(tree_state "$v")" = "$damaged_state" ] || fail "mounting changed the damaged store"
ok "the damaged store was not modified"

say "import refuses a data dir with an unreadable file"
import_refused() { # DESC SRC: import must refuse and create no store
	local desc=$1 bad=$2 before
	before=$(tree_state "$bad")
	refused "$desc" 1 "$FAISSFS" import "$bad" "$T/new-store" --no-progress
	[ ! -e "$T/new-store" ] || fail "$desc: the store was created anyway"
	[ "$(tree_state "$bad")" = "$before" ] || fail "$desc: the source changed"
}
# (Symlinks, FIFOs and the like are imported as themselves: test_links_roundtrip.)

if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	# As root every file is readable, so run the import as nobody: the source is
	# world-readable but for one file, the store goes into a world-writable dir.
	nob=$T/nobody
	mkdir -m 1777 "$nob"
	chmod 755 "$T"
	cp -a "$src" "$nob/src"
	chmod -R a+rX "$nob/src"
	chmod 000 "$nob/src/acme/idx/metadata.json"
	before=$(tree_state "$nob/src")
	if setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$FAISSFS"; then
		refused "SRC with an unreadable file (import run as nobody)" 1 \
			setpriv --reuid=65534 --regid=65534 --clear-groups \
			"$FAISSFS" import "$nob/src" "$nob/store" --no-progress
		[ ! -e "$nob/store" ] || fail "unreadable file: the store was created anyway"
		[ "$(tree_state "$nob/src")" = "$before" ] || fail "unreadable file: the source changed"
	else
		skip "unreadable file: nobody cannot run $FAISSFS (its directories are private)"
	fi
else
	skip "unreadable file: needs root and setpriv to run the import as another user"
fi
unchanged "import refusals"

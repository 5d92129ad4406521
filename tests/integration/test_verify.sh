#!/usr/bin/env bash
# test_verify.sh - `faissfs verify` from the command line: a clean store exits 0
# (text and --json), --deep loads every FAISS index (or says it is unavailable),
# damage is reported with file, chunk and offset and exits 1, --repair moves the
# damaged objects to .faissfs/quarantine/ (never deletes) and the store is then
# clean; it leaves alone the temp files of a daemon that has the store mounted; a
# directory that is not a store exits 1, bad usage exits 2.
. "$(dirname "$0")/lib.sh"

src=$T/src
store=$T/store
mkdir -p "$src/acme/idx" "$src/beta/idx"
cp "$IT_DIR/../data/faiss/flat_l2.faiss" "$src/acme/idx/index.faiss"
cp "$IT_DIR/../data/faiss/binary_flat.faiss" "$src/beta/idx/index.faiss"
make_mixed_file "$src/acme/idx/vectors.json" 900000 21
make_mixed_file "$src/beta/idx/vectors.json" 700000 22
"$FAISSFS" import "$src" "$store" --chunk-size 16K --no-progress >/dev/null ||
	fail "faissfs import failed"

say "a clean store"
"$FAISSFS" verify "$store" >"$T/out" 2>&1 || { cat "$T/out" >&2; fail "verify of a clean store"; }
ok "$(tail -n 1 "$T/out")"
"$FAISSFS" verify --json --threads 2 "$store" >"$T/json" 2>/dev/null || fail "verify --json"
grep -q '"summary":true,"files":4,"objects":4' "$T/json" || fail "summary: $(cat "$T/json")"
ok "json: $(cut -c1-100 "$T/json")"

say "--deep"
deep=$(dirname "$FAISSFS")/faissfs-verify-deep
if [ -x "$deep" ]; then
	"$FAISSFS" verify --deep "$store" >"$T/out" 2>&1 || { cat "$T/out" >&2; fail "verify --deep"; }
	grep -q "deep: 2 FAISS indices loaded with FAISS: 0 problems" "$T/out" ||
		fail "deep summary: $(cat "$T/out")"
	ok "$(grep 'deep:' "$T/out" | tail -n 1)"
else
	refused "--deep without faissfs-verify-deep" 2 env FAISSFS_VERIFY_DEEP= "$FAISSFS" verify \
		--deep "$store"
	grep -q "not available" "$T/err.txt" || fail "--deep does not say it is unavailable"
fi

say "damage: a chunk, bytes after the trailer"
printf '\xff\xff\xff\xff' | dd of="$store/acme/idx/vectors.json" bs=1 seek=20000 conv=notrunc \
	2>/dev/null
echo junk >>"$store/beta/idx/vectors.json"
rc=0
"$FAISSFS" verify "$store" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 1 ] || fail "verify of a damaged store exited $rc, expected 1"
grep -q "^PROBLEM acme/idx/vectors.json: chunk [0-9]* at offset [0-9]*: " "$T/out" ||
	fail "no chunk problem with offset: $(cat "$T/out")"
grep -q "^PROBLEM beta/idx/vectors.json: at offset [0-9]*: object is" "$T/out" ||
	fail "no length problem: $(cat "$T/out")"
ok "$(grep -c ^PROBLEM "$T/out") problems, exit 1: $(grep -m1 ^PROBLEM "$T/out")"

say "--repair quarantines, never deletes"
rc=0
"$FAISSFS" verify --repair "$store" >"$T/out" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "verify --repair exited $rc (it found problems: expected 1)"
q=$(find "$store/.faissfs/quarantine" -type f | sort)
[ "$(wc -l <<<"$q")" = 2 ] || fail "quarantine holds: $q"
grep -q "acme/idx/vectors.json$" <<<"$q" || fail "acme/idx/vectors.json not quarantined"
[ ! -e "$store/acme/idx/vectors.json" ] || fail "the damaged object is still in place"
"$FAISSFS" verify "$store" >/dev/null 2>&1 || fail "the store is not clean after repair"
ok "quarantined: $(tr '\n' ' ' <<<"$q")"

say "--repair under a live daemon: its temp files and the objects it serves stay"
mkdir -p "$T/mnt"
mount_fg "$store" "$T/mnt" "$T/rw.log" -o rw,compact=off
tmp=$store/.faissfs/tmp
# A previous version and an unpacked copy the daemon keeps (old, but its own), and
# a dead writer's object.
echo kept >"$tmp/prev.0123456789abcdef"
echo kept >"$tmp/unpack.$FG_PID.7"
echo dead >"$tmp/obj.4000000.1.0"
touch -d '-10 min' "$tmp/prev.0123456789abcdef" "$tmp/unpack.$FG_PID.7" "$tmp/obj.4000000.1.0"
# And a damaged object: reported, but not moved while the daemon may rewrite it.
echo junk >>"$store/acme/idx/index.faiss"
rc=0
"$FAISSFS" verify --repair "$store" >"$T/out" 2>&1 || rc=$?
[ "$rc" = 1 ] || { cat "$T/out" >&2; fail "verify --repair of a damaged mounted store: exit $rc"; }
[ -e "$store/acme/idx/index.faiss" ] || fail "--repair moved an object aside under a live daemon"
grep -q "acme/idx/index.faiss: not moved aside: the store is in use by a faissfs daemon (PID $FG_PID" \
	"$T/out" || fail "no message about the object left in place: $(cat "$T/out")"
[ -e "$tmp/prev.0123456789abcdef" ] && [ -e "$tmp/unpack.$FG_PID.7" ] ||
	fail "--repair removed a temp file of the live daemon"
[ ! -e "$tmp/obj.4000000.1.0" ] || fail "--repair left a dead writer's temp file"
grep -q "belong to the faissfs daemon (PID $FG_PID)" "$T/out" ||
	fail "no message naming the daemon: $(cat "$T/out")"
ok "$(grep 'belong to' "$T/out" | sed 's/.*warn: //')"
unmount "$T/mnt" "$FG_PID"
rc=0
"$FAISSFS" verify --repair "$store" >"$T/out" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "verify --repair after the unmount: exit $rc (expected 1: one problem)"
[ -z "$(ls -A "$tmp")" ] || fail "left in tmp/ once unmounted: $(ls -A "$tmp")"
[ ! -e "$store/acme/idx/index.faiss" ] || fail "the damaged object not moved aside once unmounted"
"$FAISSFS" verify "$store" >/dev/null 2>&1 || fail "the store is not clean after repair"
ok "removed and moved aside once the daemon is gone"

say "not a store, bad usage"
mkdir -p "$T/empty"
refused "verify of a plain directory" 1 "$FAISSFS" verify "$T/empty"
refused "verify without a store" 2 "$FAISSFS" verify
refused "verify --threads 0" 2 "$FAISSFS" verify --threads 0 "$store"

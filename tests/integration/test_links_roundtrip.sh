#!/usr/bin/env bash
# test_links_roundtrip.sh - symlinks, hard links, FIFOs, sockets and devices go
# through `faissfs import` into the store as themselves and come back out of
# `faissfs export` identical: a data dir with regular files, relative, absolute,
# dangling and directory symlinks, a hard-linked pair and a triple across
# directories, a FIFO, a unix socket and a character device is imported; the
# store holds them natively (link counts, targets, the superblock's ro_compat
# LINKS bit); `faissfs verify` passes and counts them; the export matches the
# source in type, mode, uid, gid, size, mtime (ns), target, rdev, bytes and
# hard-link groups.  A second import changes nothing.  No mount needed.
. "$(dirname "$0")/lib.sh"

src=$T/src
store=$T/store
out=$T/export
mkdir -p "$src/acme/idx" "$src/beta/idx" "$src/gamma"
cp "$IT_DIR/../data/faiss/flat_l2.faiss" "$src/acme/idx/index.faiss"
make_mixed_file "$src/acme/idx/vectors.json" 700000 31
make_mixed_file "$src/beta/idx/index.faiss" 300000 32
printf 'small\n' >"$src/beta/idx/meta.json"
: >"$src/gamma/empty"
ln -s vectors.json "$src/acme/idx/rel-link"
ln -s /etc/hostname "$src/acme/abs-link"
ln -s ../no/such/file "$src/beta/dangling"
ln -s ../acme/idx "$src/beta/dir-link"
ln "$src/acme/idx/index.faiss" "$src/acme/idx/index-twin.faiss"         # pair
ln "$src/beta/idx/index.faiss" "$src/acme/beta-copy.faiss"                # triple ...
ln "$src/beta/idx/index.faiss" "$src/gamma/beta-again.faiss"              # ... across dirs
mkfifo -m 0640 "$src/gamma/pipe"
"$PYTHON" -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' \
	"$src/gamma/sock"
mknod -m 0620 "$src/gamma/null" c 1 3
chown 65534:65534 "$src/gamma/null"
chown -h 65534:65534 "$src/acme/abs-link"
touch -h -d '2001-02-03 04:05:06.123456789' "$src/beta/dangling"
touch -d '2002-03-04 05:06:07.5' "$src/gamma/pipe"
chmod 0751 "$src/gamma"

# One line per entry: path, type, mode, uid, gid, size (regular files), mtime in
# ns, symlink target, rdev, nlink and a hard-link group id (the first path of the
# inode), and the bytes' sha256 for regular files.
describe() {
	"$PYTHON" - "$1" <<'PY'
import hashlib, os, stat, sys
top = sys.argv[1]
first = {}
for d, dirs, files in sorted(os.walk(top)):
    dirs.sort()
    for name in sorted(dirs + files):
        p = os.path.join(d, name)
        rel = os.path.relpath(p, top)
        st = os.lstat(p)
        t = stat.S_IFMT(st.st_mode)
        group = first.setdefault((st.st_dev, st.st_ino), rel) if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode) else "-"
        fields = [rel, "%o" % t, "%o" % stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                  st.st_size if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode) else 0,
                  st.st_mtime_ns,
                  os.readlink(p) if stat.S_ISLNK(st.st_mode) else "-",
                  "%d,%d" % (os.major(st.st_rdev), os.minor(st.st_rdev)) if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "-",
                  st.st_nlink if not stat.S_ISDIR(st.st_mode) else "-", group]
        if stat.S_ISREG(st.st_mode):
            with open(p, "rb") as f:
                fields.append(hashlib.sha256(f.read()).hexdigest()[:16])
        print(" ".join(str(x) for x in fields))
PY
}

say "import"
"$FAISSFS" import "$src" "$store" --chunk-size 16K --no-progress >"$T/import.out" 2>&1 ||
	{ cat "$T/import.out" >&2; fail "faissfs import of a data dir with links and special files"; }
grep -q "5 files (0 already stored)" "$T/import.out" || fail "import summary: $(cat "$T/import.out")"
grep -q "4 symlinks, 3 special files, 3 extra hard links" "$T/import.out" ||
	fail "import summary: $(cat "$T/import.out")"
ok "$(tail -n 1 "$T/import.out" | cut -c1-160)"

say "the store holds them natively"
[ "$(stat -c %h "$store/acme/idx/index.faiss")" = 2 ] || fail "pair: link count $(stat -c %h "$store/acme/idx/index.faiss")"
[ "$(stat -c %i "$store/acme/idx/index.faiss")" = "$(stat -c %i "$store/acme/idx/index-twin.faiss")" ] ||
	fail "the pair is two inodes in the store"
[ "$(stat -c %h "$store/gamma/beta-again.faiss")" = 3 ] || fail "triple: link count $(stat -c %h "$store/gamma/beta-again.faiss")"
[ "$(stat -c %i "$store/beta/idx/index.faiss")" = "$(stat -c %i "$store/gamma/beta-again.faiss")" ] &&
	[ "$(stat -c %i "$store/beta/idx/index.faiss")" = "$(stat -c %i "$store/acme/beta-copy.faiss")" ] ||
	fail "the triple is not one inode in the store"
ok "hard links: one object with 2 and 3 names"
[ "$(head -c 4 "$store/acme/idx/index.faiss" | od -An -tx1 | tr -d ' ')" = 5a2a4d18 ] ||
	fail "the hard-linked file is not stored as an object"
[ "$(readlink "$store/acme/idx/rel-link")" = vectors.json ] || fail "relative symlink target"
[ "$(readlink "$store/acme/abs-link")" = /etc/hostname ] || fail "absolute symlink target"
[ "$(readlink "$store/beta/dangling")" = ../no/such/file ] || fail "dangling symlink target"
[ -L "$store/beta/dir-link" ] || fail "the directory symlink is not a symlink"
[ -p "$store/gamma/pipe" ] && [ -S "$store/gamma/sock" ] && [ -c "$store/gamma/null" ] ||
	fail "FIFO, socket or device not stored as such"
[ "$(stat -c %t,%T "$store/gamma/null")" = 1,3 ] || fail "device number $(stat -c %t,%T "$store/gamma/null")"
ok "symlinks keep their targets; FIFO, socket, device are nodes"
ro=$(od -An -tu4 -j16 -N4 "$store/.faissfs/superblock" | tr -d ' ')
minor=$(od -An -tu2 -j10 -N2 "$store/.faissfs/superblock" | tr -d ' ')
[ "$ro" = 1 ] && [ "$minor" = 2 ] || fail "superblock: ro_compat $ro, minor $minor (want 1, 2)"
ok "superblock: ro_compat LINKS set, format 1.2"

say "verify"
"$FAISSFS" verify "$store" >"$T/verify.out" 2>&1 || { cat "$T/verify.out" >&2; fail "verify"; }
grep -qi "warn" "$T/verify.out" && fail "verify warns: $(cat "$T/verify.out")"
grep -q "4 symlinks, 3 special files, 3 extra hard links" "$T/verify.out" ||
	fail "verify summary: $(cat "$T/verify.out")"
"$FAISSFS" verify --json "$store" >"$T/verify.json" 2>/dev/null || fail "verify --json"
grep -q '"files":5,"objects":' "$T/verify.json" || fail "json: $(tail -n 1 "$T/verify.json")"
grep -q '"symlinks":4,"special":3,"links":3' "$T/verify.json" || fail "json: $(tail -n 1 "$T/verify.json")"
ok "$(tail -n 1 "$T/verify.out")"

say "export is the source again"
"$FAISSFS" export "$store" "$out" --no-progress >"$T/export.out" 2>&1 ||
	{ cat "$T/export.out" >&2; fail "faissfs export"; }
describe "$src" >"$T/src.txt"
describe "$out" >"$T/out.txt"
[ "$(wc -l <"$T/src.txt")" -ge 17 ] || fail "describe saw only $(wc -l <"$T/src.txt") entries"
diff -u "$T/src.txt" "$T/out.txt" >&2 || fail "the export differs from the source (above)"
ok "$(wc -l <"$T/src.txt") entries identical: type, mode, owner, size, mtime, target, rdev, bytes, link groups"

say "a second import changes nothing"
before=$(tree_state "$store")
ino=$(stat -c %i "$store/acme/beta-copy.faiss")
"$FAISSFS" import "$src" "$store" --no-progress >"$T/import2.out" 2>&1 ||
	{ cat "$T/import2.out" >&2; fail "second import"; }
grep -q "5 files (5 already stored)" "$T/import2.out" || fail "second import: $(cat "$T/import2.out")"
[ "$(stat -c %i "$store/acme/beta-copy.faiss")" = "$ino" ] || fail "the second import re-made a hard link"
[ "$(tree_state "$store")" = "$before" ] || fail "the second import changed the store"
ok "skipped, links and inodes kept"

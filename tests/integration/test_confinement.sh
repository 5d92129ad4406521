#!/usr/bin/env bash
# test_confinement.sh - the mount never leads out of the store and lets the kernel
# enforce permissions, on a real mount:
#  - symlinks in the store (to a file and to a directory outside it), a FIFO, a
#    character device and a socket are served as what they are; the daemon never
#    follows a symlink (the kernel resolves one for the caller, leaving the mount);
#  - a directory swapped for a symlink to the outside after it was looked up
#    still serves only what is in the store;
#  - ".." and over-long names stay inside; .faissfs/ is hidden;
#  - default_permissions is on and allow_other is off unless asked: user 65534
#    cannot enter a mount without allow_other, and with it is denied a 0600 file
#    but reads a 0644 one;
#  - a store whose .faissfs/ is a symlink is refused.
. "$(dirname "$0")/lib.sh"

chmod 755 "$T" # other users must reach $T/mnt for the permission checks
src=$T/src
store=$T/store
mnt=$T/mnt
out=$T/outside
mkdir -p "$src/acme/idx" "$mnt" "$out"
make_mixed_file "$src/acme/idx/index.faiss" 300000 3
echo public >"$src/acme/idx/public.json"
echo private >"$src/acme/idx/private.json"
chmod 644 "$src/acme/idx/public.json"
chmod 600 "$src/acme/idx/private.json"
echo "outside secret" >"$out/secret"
"$FAISSFS" import "$src" "$store" --chunk-size 16K --no-progress >/dev/null ||
	fail "faissfs import failed"

# Symlinks to the outside and special files, put straight into the store.
ln -s "$out/secret" "$store/acme/idx/link_to_file"
ln -s "$out" "$store/acme/link_to_dir"
ln -s ../../../outside/secret "$store/acme/idx/relative_link"
mkfifo "$store/acme/idx/a_fifo"
mknod "$store/acme/idx/a_chardev" c 1 3 || fail "mknod failed (not root?)"
"$PYTHON" -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])" \
	"$store/acme/idx/a_socket"

mount_fg "$store" "$mnt" "$T/daemon.log"
pid=$FG_PID

say "mount options: default_permissions on, allow_other off"
opts=$(awk -v p="$(realpath "$mnt")" '$5 == p { print $6 " " $NF }' /proc/self/mountinfo)
grep -q default_permissions <<<"$opts" || fail "no default_permissions in: $opts"
! grep -q allow_other <<<"$opts" || fail "allow_other is on without being asked: $opts"
ok "mount options: $opts"

say "symlinks and special files are served as what they are, never followed by the daemon"
listed=$(ls -a "$mnt/acme/idx" "$mnt/acme" | tr '\n' ' ')
for n in link_to_file relative_link a_fifo a_chardev a_socket link_to_dir; do
	grep -qw "$n" <<<"$listed" || fail "$n is not listed: $listed"
done
[ "$(readlink "$mnt/acme/idx/link_to_file")" = "$out/secret" ] || fail "readlink link_to_file"
[ "$(readlink "$mnt/acme/idx/relative_link")" = ../../../outside/secret ] ||
	fail "readlink relative_link"
for p in "acme/idx/a_fifo:fifo" "acme/idx/a_chardev:character special file" \
	"acme/idx/a_socket:socket" "acme/link_to_dir:symbolic link"; do
	got=$(stat -c %F "$mnt/${p%%:*}")
	[ "$got" = "${p#*:}" ] || fail "${p%%:*} is a '$got', not a '${p#*:}'"
done
# A symlink is resolved by the kernel for the caller, as on any filesystem: the path
# leaves the mount, the daemon serves nothing of the outside as its own.
[ "$(realpath "$mnt/acme/link_to_dir")" = "$(realpath "$out")" ] ||
	fail "link_to_dir does not lead to the outside directory itself"
[ "$(stat -c %d "$mnt/acme/link_to_dir/secret")" = "$(stat -c %d "$out/secret")" ] ||
	fail "the outside file is served from the mount's device"
! grep -q "in the store is" "$T/daemon.log" || fail "the daemon warned: $(grep -m1 'in the store is' "$T/daemon.log")"
ok "listed and typed as in the store; targets as written; resolution is the kernel's"

say ".., over-long names and .faissfs stay inside"
[ "$(stat -c %i "$mnt/acme/..")" = "$(stat -c %i "$mnt")" ] || fail "acme/.. is not the root"
[ "$(stat -c %i "$mnt/acme/idx/../..")" = "$(stat -c %i "$mnt")" ] || fail "../.. left the root"
long=$(printf 'x%.0s' $(seq 1 300))
got=$(errno_read "$mnt/acme/$long" 0 1)
[ "$got" = ENAMETOOLONG ] || fail "a 300-byte name gave $got"
got=$(errno_read "$mnt/.faissfs/superblock" 0 1)
[ "$got" = ENOENT ] || fail ".faissfs/superblock through the mount gave $got"
! ls -a "$mnt" | grep -q faissfs || fail ".faissfs is listed at the root"
ok "..: the root; 300-byte name: ENAMETOOLONG; .faissfs: hidden"

say "a directory swapped for a symlink to the outside after lookup"
cmp "$src/acme/idx/public.json" "$mnt/acme/idx/public.json" || fail "public.json differs"
mv "$store/acme/idx" "$store/acme/idx.real"
ln -s "$out" "$store/acme/idx"
got=$(errno_read "$mnt/acme/idx/secret" 0 100)
[ "$got" != "OK 15" ] || fail "the outside secret was read through the swapped directory"
ok "acme/idx/secret after the swap: $got (never the outside file)"
got=$(cat "$mnt/acme/idx/secret" 2>/dev/null || true)
[ "$got" != "outside secret" ] || fail "read the outside secret"
rm "$store/acme/idx"
mv "$store/acme/idx.real" "$store/acme/idx"
unmount "$mnt" "$pid"

nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }

say "allow_other off: another user cannot enter the mount"
mount_fg "$store" "$mnt" "$T/daemon2.log"
pid=$FG_PID
if nobody cat "$mnt/acme/idx/public.json" >/dev/null 2>&1; then
	fail "user 65534 read a file of a mount without allow_other"
fi
ok "user 65534: $(nobody cat "$mnt/acme/idx/public.json" 2>&1 | head -1)"
unmount "$mnt" "$pid"

say "allow_other on: the kernel enforces the mode bits (default_permissions)"
mount_fg "$store" "$mnt" "$T/daemon3.log" -o allow_other
pid=$FG_PID
[ "$(nobody cat "$mnt/acme/idx/public.json")" = public ] || fail "user 65534 cannot read 0644"
if nobody cat "$mnt/acme/idx/private.json" >/dev/null 2>&1; then
	fail "user 65534 read a 0600 file owned by root"
fi
ok "0644: read; 0600: $(nobody cat "$mnt/acme/idx/private.json" 2>&1 | head -1)"
[ "$(cat "$mnt/acme/idx/private.json")" = private ] || fail "root cannot read its 0600 file"
got=$(nobody sh -c "echo x > '$mnt/acme/idx/public.json'" 2>&1 || true)
grep -qi "read-only\|denied" <<<"$got" || fail "a write by user 65534 gave: $got"
ok "writes refused: $got"
unmount "$mnt" "$pid"

say "the store's control files are writable by their owner only"
for f in "$store/.faissfs" "$store/.faissfs/superblock" "$store/.faissfs/lock" \
	"$store/.faissfs/tmp"; do
	[ -e "$f" ] || continue
	m=$(stat -c %a "$f")
	[ $((8#$m & 8#022)) = 0 ] || fail "$f has mode $m: writable by group or others"
done
ok ".faissfs, superblock, lock, tmp: not writable by group or others"

say "a store whose .faissfs is a symlink is refused"
mkdir -p "$T/evil"
ln -s "$store/.faissfs" "$T/evil/.faissfs"
refused "mount of a store whose .faissfs is a symlink" 1 "$FAISSFS" mount -f "$T/evil" "$mnt"
! is_mounted "$mnt" || fail "a store with a symlinked .faissfs got mounted"

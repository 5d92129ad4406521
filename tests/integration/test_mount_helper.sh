#!/usr/bin/env bash
# test_mount_helper.sh - the mount(8) helper packaging/mount.faissfs for real:
# `mount -t faissfs`, fstab lines through `mount --fstab FILE` (the real /etc/fstab
# is never read or written), option filtering, `umount`, and a user mount.
#
# mount(8) looks helpers up in /sbin only.  So the test runs in a private mount
# namespace (unshare -m) where /sbin is a tmpfs holding just the helper from the
# source tree and /run/mount (libmount's utab) is a tmpfs too: nothing on the
# machine changes, even if the test is killed.  Needs root and unshare.
if [ "${FFS_IN_NS:-}" != 1 ]; then
	if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null ||
		! unshare --mount --propagation private true 2>/dev/null; then
		echo "SKIP [test_mount_helper]: needs root and unshare -m (a private mount namespace)"
		exit 77
	fi
	exec unshare --mount --propagation private env FFS_IN_NS=1 bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"

helper_src=$IT_DIR/../../packaging/mount.faissfs
[ -x "$helper_src" ] || fail "$helper_src is missing or not executable"
mount -t tmpfs -o mode=0755 faissfs-test-sbin /sbin || fail "cannot put a tmpfs on /sbin"
mkdir -p /run/mount
mount -t tmpfs -o mode=0755 faissfs-test-utab /run/mount || fail "cannot put a tmpfs on /run/mount"
cp "$helper_src" /sbin/mount.faissfs
export FAISSFS_BIN=$FAISSFS
chmod 755 "$T"

src=$T/src
store=$T/store
mnt=$T/mnt
mkdir -p "$src/acme/idx" "$mnt"
head -c 300000 /dev/urandom >"$src/acme/idx/index.faiss"
echo '{"name": "idx"}' >"$src/acme/idx/metadata.json"
"$FAISSFS" import "$src" "$store" --no-progress >/dev/null || fail "faissfs import failed"
# one daemon per store: a second store for the second fstab line
"$FAISSFS" import "$src" "$T/store2" --no-progress >/dev/null || fail "faissfs import failed"

# fs_field MNT FIELD: SOURCE, FSTYPE or OPTIONS (VFS and fs options) of the mount.
fs_field() { findmnt -n -o "$2" --mountpoint "$1"; }
mount_count() { awk -v p="$1" '$5 == p { n++ } END { print n + 0 }' /proc/self/mountinfo; }

# daemon_gone MNT: no faissfs daemon serves MNT any more (waits up to 10 s).
daemon_gone() {
	local i
	for ((i = 0; i < 100; i++)); do
		pgrep -f "faissfs mount .* $1( |\$)" >/dev/null || return 0
		sleep 0.1
	done
	fail "the daemon of $1 is still running after umount"
}

say "the helper drops what only mount(8), systemd or the VFS mean, passes the rest"
cat >"$T/fake-faissfs" <<'EOF'
#!/bin/sh
printf '%s\n' "$*"
EOF
chmod +x "$T/fake-faissfs"
got=$(FAISSFS_BIN=$T/fake-faissfs /sbin/mount.faissfs /s /m -o \
	rw,defaults,noauto,user,users,nofail,_netdev,x-systemd.automount,x-systemd.before=a.service,comment=x,nosuid,nodev,noexec,relatime,cache_size=2G,allow_other -o threads=4 -n -s)
want="mount /s /m -o rw,noexec,cache_size=2G,allow_other,threads=4,fsname=/s"
[ "$got" = "$want" ] || fail "helper ran '$got', expected '$want'"
ok "faissfs $got"
got=$(FAISSFS_BIN=$T/fake-faissfs /sbin/mount.faissfs /s /m -o ro,fsname=mine,suid 2>"$T/err")
[ "$got" = "mount /s /m -o ro,fsname=mine" ] || fail "helper ran '$got'"
grep -q "ignoring 'suid'" "$T/err" || fail "no note about the dropped suid"
ok "ro and fsname= kept, suid dropped with a note"
got=$(FAISSFS_BIN=$T/fake-faissfs /sbin/mount.faissfs /s /m -fv 2>&1)
case $got in *"mount /s /m -o fsname=/s"*) ;; *) fail "-f -v printed '$got'" ;; esac
[ "$(FAISSFS_BIN=$T/fake-faissfs /sbin/mount.faissfs /s /m -f 2>/dev/null)" = "" ] ||
	fail "-f (fake) ran faissfs"
ok "-f (fake) does not run faissfs, -v shows the command"
refused "helper without a mount point" 1 /sbin/mount.faissfs /s

say "mount -t faissfs STORE MNT -o cache_size=2G,... and umount MNT"
_mounts+=("$mnt")
mount -t faissfs "$store" "$mnt" -o cache_size=2G,noauto,nofail,_netdev,x-systemd.automount ||
	fail "mount -t faissfs failed"
is_mounted "$mnt" || fail "mount -t faissfs returned 0 but $mnt is not mounted"
[ "$(fs_field "$mnt" FSTYPE)" = fuse.faissfs ] || fail "type $(fs_field "$mnt" FSTYPE)"
[ "$(fs_field "$mnt" SOURCE)" = "$store" ] || fail "source $(fs_field "$mnt" SOURCE)"
opts=$(fs_field "$mnt" OPTIONS)
case ",$opts," in *,rw,*nosuid,*nodev,*) ;; *) fail "options $opts: want rw,nosuid,nodev" ;; esac
cmp "$src/acme/idx/index.faiss" "$mnt/acme/idx/index.faiss" || fail "bytes differ on the mount"
ok "mounted: fuse.faissfs, source $store, $opts; bytes match"
umount "$mnt" || fail "umount $mnt failed"
! is_mounted "$mnt" || fail "$mnt still mounted after umount"
daemon_gone "$mnt"
ok "umount: unmounted, daemon gone"
mount -t faissfs "$store" "$mnt" -o ro || fail "mount -t faissfs -o ro failed"
opts=$(fs_field "$mnt" OPTIONS)
case ",$opts," in *,ro,*nosuid,*nodev,*) ;; *) fail "-o ro: options $opts" ;; esac
umount "$mnt" || fail "umount $mnt (ro) failed"
daemon_gone "$mnt"
ok "mount -t faissfs -o ro: $opts"

say "mount errors come back through mount(8)"
refused "mount -t faissfs with an unknown option" any mount -t faissfs "$store" "$mnt" -o bogus=1
grep -q "bogus" "$T/err.txt" || fail "the refusal does not name the option"
refused "mount -t faissfs of a directory that is no store" any mount -t faissfs "$src" "$mnt"
! is_mounted "$mnt" || fail "$mnt mounted after a refusal"

say "an fstab line (mount --fstab FILE; /etc/fstab untouched)"
fstab=$T/fstab
cat >"$fstab" <<EOF
# faissfs test fstab
$store $mnt faissfs cache_size=512M,threads=4,allow_other,nofail,_netdev,x-systemd.before=faissx.service 0 0
$T/store2 $T/mnt2 faissfs noauto,cache_size=64M 0 0
EOF
mkdir -p "$T/mnt2"
_mounts+=("$T/mnt2")
mount --fstab "$fstab" "$mnt" || fail "mount --fstab $fstab $mnt failed"
is_mounted "$mnt" || fail "$mnt not mounted from the fstab line"
case ",$(fs_field "$mnt" OPTIONS)," in *,allow_other,*) ;; *) fail "allow_other not applied" ;; esac
ok "mounted by mount point from the fstab line, allow_other applied"
mount --fstab "$fstab" -a || fail "mount -a failed with the line already mounted"
[ "$(mount_count "$mnt")" = 1 ] || fail "mount -a mounted $mnt a second time"
! is_mounted "$T/mnt2" || fail "mount -a mounted the noauto line"
ok "mount -a: the mounted line is recognised (source matches), noauto line left alone"
mount --fstab "$fstab" "$T/mnt2" || fail "an explicit mount of the noauto line failed"
is_mounted "$T/mnt2" || fail "$T/mnt2 not mounted"
cmp "$src/acme/idx/metadata.json" "$T/mnt2/acme/idx/metadata.json" || fail "bytes differ"
ok "noauto line mounts when named"
umount "$T/mnt2" || fail "umount $T/mnt2 failed"
umount "$mnt" || fail "umount $mnt failed"
daemon_gone "$mnt"
daemon_gone "$T/mnt2"
ok "both unmounted with umount"

say "a user mount: the helper as an ordinary user (what mount(8) runs for fstab 'user')"
if ! id nobody >/dev/null 2>&1 || ! command -v setpriv >/dev/null; then
	skip "no user 'nobody' or no setpriv"
else
	# Debian's /dev/fuse is 0666; where it is not (some containers), use a 0666 node
	# for the same device in this namespace only.
	if [ "$(stat -c %a /dev/fuse)" != 666 ]; then
		mknod -m 0666 "$T/fuse-dev" c 10 229 && mount --bind "$T/fuse-dev" /dev/fuse ||
			fail "cannot give /dev/fuse mode 0666 in the test's namespace"
	fi
	umnt=$T/umnt
	mkdir -p "$umnt"
	chown -R nobody "$store" "$umnt"
	as_nobody() { setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups "$@"; }
	_mounts+=("$umnt")
	as_nobody env FAISSFS_BIN="$FAISSFS" /sbin/mount.faissfs "$store" "$umnt" \
		-o rw,noexec,nosuid,nodev,user,cache_size=8M 2>"$T/err" ||
		fail "user mount failed: $(cat "$T/err")"
	is_mounted "$umnt" || fail "$umnt not mounted by the user"
	case ",$(fs_field "$umnt" OPTIONS)," in
	*,noexec,*user_id=$(id -u nobody),*) ;;
	*) fail "user mount options $(fs_field "$umnt" OPTIONS)" ;;
	esac
	as_nobody cat "$umnt/acme/idx/metadata.json" >/dev/null || fail "the user cannot read"
	ok "mounted through fusermount3 as nobody, noexec from 'user', user_id=$(id -u nobody)"
	# util-linux lets a user umount a FUSE mount whose user_id is theirs
	how="umount"
	if ! as_nobody umount "$umnt" 2>"$T/err"; then
		how="fusermount3 -u (umount said: $(head -n 1 "$T/err"))"
		as_nobody fusermount3 -u "$umnt" || fail "the user cannot unmount $umnt"
	fi
	! is_mounted "$umnt" || fail "$umnt still mounted"
	daemon_gone "$umnt"
	ok "the user unmounted it again with $how"
fi

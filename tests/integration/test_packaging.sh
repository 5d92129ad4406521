#!/usr/bin/env bash
# test_packaging.sh - builds the Debian package with scripts/build-deb.sh
# (dpkg-buildpackage, debhelper, cmake) and checks it: the file list (dpkg-deb
# -c), the dependencies, an unpacked copy in a scratch root (dpkg -x) whose
# binary, helper, unit, man pages and completion work from there, and lintian
# (no error or warning; run only when lintian is installed).
# Takes about 40 s on 2 cores (most of it the compile); ctest label "package".
. "$(dirname "$0")/lib.sh"

top=$(cd "$IT_DIR/../.." && pwd)
for t in dpkg-buildpackage dh dpkg-deb; do
	if ! command -v "$t" >/dev/null; then
		echo "SKIP [$TEST_NAME]: $t missing (scripts/install-deps.sh installs debhelper)"
		exit 77
	fi
done

say "Build-Depends and the build set of scripts/install-deps.sh name the same -dev packages"
want=$(FAISSFS_SKIP_APT=1 bash "$top/scripts/install-deps.sh" build | grep -- '-dev$' | tr '\n' ' ')
got=$(sed -n '/^Build-Depends:/,/^[A-Z][a-zA-Z-]*:/p' "$top/packaging/debian/control" |
	grep -o '[a-z0-9.+-]*-dev\b' | sort -u | tr '\n' ' ')
[ "$want" = "$got" ] || fail "install-deps.sh build: '$want'; Build-Depends: '$got'"
ok "${want% }"
FAISSFS_SKIP_APT=1 bash "$top/scripts/install-deps.sh" run >"$T/run-set.txt"
for p in prometheus clang fio ceph-osd lintian; do
	! grep -qx "$p" "$T/run-set.txt" || fail "scripts/run.sh would install $p (the run set has it)"
done
grep -q 'install-deps.sh run$' "$top/scripts/run.sh" || fail "scripts/run.sh does not install the run set"
ok "the run set of scripts/run.sh has no test tools (prometheus, clang, fio, ceph, lintian)"

say "scripts/build-deb.sh"
out=$T/deb
# FAISSFS_DEB_FLAGS=--head packages the last commit instead of the working tree.
"$top/scripts/build-deb.sh" ${FAISSFS_DEB_FLAGS:-} "$out" >"$T/build.txt" 2>&1 || {
	sed 's/^/   /' "$T/build.txt" >&2
	fail "scripts/build-deb.sh failed"
}
deb=$(ls "$out"/faissfs_*.deb)
[ -f "$deb" ] || fail "no .deb in $out"
ok "built $(basename "$deb")"

say "contents (dpkg-deb -c)"
dpkg-deb -c "$deb" | awk '{ print $NF }' | sed 's|^\./|/|' >"$T/files.txt"
for f in /usr/bin/faissfs /sbin/mount.faissfs /lib/systemd/system/faissfs@.service \
	/usr/share/man/man1/faissfs.1.gz /usr/share/man/man5/faissfs-format.5.gz \
	/usr/share/man/man8/mount.faissfs.8.gz /usr/share/bash-completion/completions/faissfs \
	/usr/share/doc/faissfs/copyright /usr/share/doc/faissfs/FORMAT.md.gz \
	/usr/share/doc/faissfs/examples/faissfs-instance.conf; do
	grep -qxF "$f" "$T/files.txt" || fail "$f is not in the package"
done
ok "binary, mount helper, unit, 3 man pages, completion, docs, example"
dpkg-deb -c "$deb" | awk '$1 ~ /^-..x/ { print $NF }' | sed 's|^\./|/|' | sort >"$T/exec.txt"
[ "$(tr '\n' ' ' <"$T/exec.txt")" = "/sbin/mount.faissfs /usr/bin/faissfs " ] ||
	fail "unexpected executables: $(tr '\n' ' ' <"$T/exec.txt")"
ok "executables: only faissfs and mount.faissfs"
depends=$(dpkg-deb -f "$deb" Depends)
for d in fuse3 libfuse3-3 libzstd1 libmsgpackc2 libxxhash0 libsystemd0; do
	grep -qE "(^|, )$d( |,|$)" <<<"$depends" || fail "Depends lacks $d: $depends"
done
ok "Depends: $depends"

say "unpacked in a scratch root (dpkg -x)"
root=$T/root
dpkg -x "$deb" "$root"
want=$("$FAISSFS" --version)
got=$("$root/usr/bin/faissfs" --version) || fail "the packaged faissfs does not run"
[ "$got" = "$want" ] || fail "packaged faissfs --version says '$got', the build '$want'"
ok "faissfs --version: $got"
got=$(FAISSFS_BIN=$root/usr/bin/faissfs "$root/sbin/mount.faissfs" /s /m -f -o rw,cache_size=1G 2>&1)
case $got in *"faissfs mount /s /m -o rw,cache_size=1G,fsname=/s") ;; *) fail "mount.faissfs -f: $got" ;; esac
ok "mount.faissfs runs: $got"
if command -v groff >/dev/null; then
	for m in man1/faissfs.1 man5/faissfs-format.5 man8/mount.faissfs.8; do
		zcat "$root/usr/share/man/$m.gz" | groff -t -man -ww -z -Tutf8 2>"$T/groff.txt" ||
			fail "groff failed on $m"
		[ ! -s "$T/groff.txt" ] || fail "groff warns on $m: $(head -3 "$T/groff.txt")"
	done
	ok "man pages format cleanly"
fi
bash -c '. "$1" && complete -p faissfs' _ "$root/usr/share/bash-completion/completions/faissfs" \
	>/dev/null || fail "the completion file does not register for faissfs"
ok "bash completion registers"
if command -v systemd-analyze >/dev/null && [ -d /lib/systemd/system ]; then
	mkdir -p "$root/bin"
	cp -an /lib/systemd/system/. "$root/lib/systemd/system/"
	cp "$(command -v fusermount3)" "$root/bin/"
	systemd-analyze verify --man=no --root="$root" faissfs@srv-faissx-data.service \
		>"$T/verify.txt" 2>&1 || fail "systemd-analyze verify: $(cat "$T/verify.txt")"
	[ ! -s "$T/verify.txt" ] || fail "systemd-analyze verify: $(cat "$T/verify.txt")"
	ok "the installed unit verifies against the installed binary"
fi

say "lintian"
if ! command -v lintian >/dev/null; then
	skip "lintian not installed"
else
	changes=$(ls "$out"/faissfs_*.changes)
	rc=0
	lintian --fail-on error,warning --pedantic -I -E "$changes" >"$T/lintian.txt" 2>&1 || rc=$?
	{ grep -v 'running with root privileges' "$T/lintian.txt" || true; } | sed 's/^/   lintian: /'
	[ "$rc" = 0 ] || fail "lintian found errors or warnings (above)"
	! grep -q systemd-service-file-missing-hardening-features "$T/lintian.txt" ||
		fail "lintian: the unit has no hardening"
	ok "lintian: no errors or warnings ($(grep -cE '^[IPX]:' "$T/lintian.txt" || true) info/pedantic tags)"
fi

#!/usr/bin/env bash
# build-deb.sh - builds the Debian package faissfs_<version>_<arch>.deb with
# dpkg-buildpackage (debhelper + cmake), from packaging/debian/.
#
#     scripts/build-deb.sh [--head] [--lintian] [OUTDIR]   (default OUTDIR: build-deb/)
#
# Copies the source tree (the files git tracks, as they are in the working tree;
# with --head, the last commit; everything but build*/ outside a git checkout)
# to OUTDIR/faissfs-<version>/,
# puts packaging/debian/ there as debian/, and runs dpkg-buildpackage -b.  The
# .deb, .buildinfo and .changes end up in OUTDIR.  --lintian runs lintian on the
# result too.  Needs the packages of scripts/install-deps.sh (debhelper, cmake,
# the -dev packages; lintian for --lintian).  Does not need root.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)

lint=0
head=0
out=
for a in "$@"; do
	case $a in
	--lintian) lint=1 ;;
	--head) head=1 ;;
	-h | --help)
		sed -n '2,13s/^# \{0,1\}//p' "$0"
		exit 0
		;;
	-*)
		echo "build-deb.sh: unknown option '$a' (see --help)" >&2
		exit 2
		;;
	*) out=$a ;;
	esac
done
out=${out:-$top/build-deb}

for t in dpkg-buildpackage dh cmake; do
	if ! command -v "$t" >/dev/null; then
		echo "build-deb.sh: $t is missing: run scripts/install-deps.sh (debhelper, cmake)" >&2
		exit 1
	fi
done

version=$(sed -n 's/^project(faissfs VERSION \([0-9.]*\).*/\1/p' "$top/CMakeLists.txt")
deb_version=$(sed -n '1s/^faissfs (\([^)]*\)).*/\1/p' "$top/packaging/debian/changelog")
if [ -z "$version" ] || [ "${deb_version%%-*}" != "$version" ]; then
	echo "build-deb.sh: CMakeLists.txt says version '$version' but" \
		"packaging/debian/changelog says '$deb_version': add a changelog entry" \
		"(dch -v $version) so they agree" >&2
	exit 1
fi

mkdir -p "$out"
out=$(cd "$out" && pwd)
src=$out/faissfs-$version
rm -rf -- "$src"
mkdir -p "$src"
if [ "$head" = 1 ]; then
	git -C "$top" archive HEAD | tar -xf - -C "$src"
elif git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# tracked files only, as they are now (deleted ones skipped)
	(cd "$top" && git ls-files -z | xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' _ |
		tar --null -T - -cf -) | tar -xf - -C "$src"
else
	(cd "$top" && tar --exclude='./build*' --exclude=./.git -cf - .) | tar -xf - -C "$src"
fi
rm -rf -- "$src/debian"
cp -r "$top/packaging/debian" "$src/debian"

echo "== dpkg-buildpackage in $src"
(cd "$src" && dpkg-buildpackage -b -us -uc -j"${FAISSFS_DEB_JOBS:-2}") >"$out/build.log" 2>&1 || {
	tail -n 40 "$out/build.log" >&2
	echo "build-deb.sh: dpkg-buildpackage failed; the whole log is $out/build.log" >&2
	exit 1
}
arch=$(dpkg --print-architecture)
deb=$out/faissfs_${deb_version}_${arch}.deb
[ -f "$deb" ] || {
	echo "build-deb.sh: dpkg-buildpackage succeeded but $deb is missing (see $out/build.log)" >&2
	exit 1
}
echo "built $deb"
if [ "$lint" = 1 ]; then
	echo "== lintian"
	lintian --info --display-info --pedantic "$out/faissfs_${deb_version}_${arch}.changes" ||
		true
fi

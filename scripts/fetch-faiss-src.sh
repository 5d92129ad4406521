#!/usr/bin/env bash
# Puts Debian's own FAISS source (the one libfaiss-dev was built from) in DEST,
# so the build can compile FAISS's C API (c_api/*.cpp), which Debian does not ship
# as a library.  Uses `apt-get source`, which needs a deb-src entry: run
# scripts/install-deps.sh once to add it.
#
# usage: fetch-faiss-src.sh DEST
#   DEST already holding an unpacked source (DEST/c_api/index_io_c.cpp) is reused.
#   FAISSFS_FAISS_SRC=DIR: copy an already unpacked source tree instead (offline).
# Exit status 0 on success; 1 with a message that says what to do.
set -euo pipefail

die() {
	printf 'fetch-faiss-src: %s\n' "$*" >&2
	exit 1
}

[ $# -eq 1 ] || die "usage: fetch-faiss-src.sh DEST"
dest=$1
probe=c_api/index_io_c.cpp

if [ -f "$dest/$probe" ]; then
	echo "fetch-faiss-src: reusing the FAISS source in $dest"
	exit 0
fi
[ ! -e "$dest" ] || rm -rf -- "$dest" # a partial tree from an interrupted run

parent=$(dirname -- "$dest")
mkdir -p -- "$parent"
work=$(mktemp -d "$parent/.faiss-src.XXXXXX")
trap 'rm -rf -- "$work"' EXIT

if [ -n "${FAISSFS_FAISS_SRC:-}" ]; then
	[ -f "$FAISSFS_FAISS_SRC/$probe" ] ||
		die "FAISSFS_FAISS_SRC=$FAISSFS_FAISS_SRC has no $probe (point it at an unpacked faiss source)"
	cp -a -- "$FAISSFS_FAISS_SRC" "$work/faiss-src"
else
	command -v apt-get >/dev/null ||
		die "apt-get not found: this build fetches FAISS's source with 'apt-get source faiss' (Debian 12); set FAISSFS_FAISS_SRC to an unpacked faiss 1.7.3 source, or configure with -DFAISSFS_WITH_FAISS=OFF"
	command -v dpkg-source >/dev/null ||
		die "dpkg-source not found (package dpkg-dev): run scripts/install-deps.sh"
	# Prefer the exact source version of the installed libfaiss-dev, so the C API
	# matches the headers and the static library it is linked with.
	ver=$(dpkg-query -W -f='${source:Version}' libfaiss-dev 2>/dev/null || true)
	[ -n "$ver" ] || die "libfaiss-dev is not installed: run scripts/install-deps.sh"
	echo "fetch-faiss-src: apt-get source faiss=$ver"
	if ! (cd "$work" && apt-get source -qq --only-source "faiss=$ver" >apt.log 2>&1); then
		echo "fetch-faiss-src: faiss=$ver not available, trying the newest faiss source" >&2
		if ! (cd "$work" && apt-get source -qq --only-source faiss >>apt.log 2>&1); then
			sed 's/^/  apt-get: /' "$work/apt.log" >&2
			die "'apt-get source faiss' failed: run scripts/install-deps.sh (it adds the deb-src entry and runs apt-get update), check the network, then configure again"
		fi
	fi
	unpacked=
	for d in "$work"/faiss-*/; do
		[ -f "$d/$probe" ] && unpacked=${d%/}
	done
	[ -n "$unpacked" ] || die "'apt-get source faiss' left no unpacked tree with $probe in $work"
	mv -- "$unpacked" "$work/faiss-src"
fi

mv -T -- "$work/faiss-src" "$dest"
echo "fetch-faiss-src: FAISS source ready in $dest"

#!/usr/bin/env bash
# Installs the Debian 12 packages faissfs needs, by what they are for:
#
#     scripts/install-deps.sh [SET...]      (as root, or with sudo)
#
#   runtime  what the faissfs daemon and tools need to run (fuse3)
#   build    runtime, plus the compiler and the -dev packages of a build without
#            FAISS (the Debian package's Build-Depends)
#   run      build, plus python3-faiss for the sample indices of scripts/run.sh and
#            getfattr (attr) for what it suggests trying
#   test     run, plus everything the tests, benchmarks and fuzzers use: FAISS's
#            C API (built from Debian's faiss source, so a deb-src entry is
#            added), cmocka, Ceph, squashfuse, fio, clang, debhelper, lintian and
#            promtool (package prometheus)
#
# No SET: test (what scripts/test.sh and CI need).  Idempotent: safe to run again.
# FAISSFS_SKIP_APT=1 prints the packages instead of installing them.
set -euo pipefail

runtime=(fuse3)
build=(
	build-essential cmake pkg-config
	libfuse3-dev libzstd-dev libmsgpack-dev libxxhash-dev
	libmicrohttpd-dev  # -o metrics (fuse/http.c)
	libcurl4-openssl-dev # the S3 client of remote stores (remote/)
	libsystemd-dev     # sd_notify of Type=notify
)
run=(python3-faiss python3-numpy libopenblas0 attr) # attr: getfattr, in what run.sh suggests
tst=(
	dpkg-dev libfaiss-dev libcmocka-dev zstd
	ceph-mon ceph-mgr ceph-osd radosgw ceph-common # scripts/ceph-single-node.sh
	squashfuse squashfs-tools fio bc util-linux # baselines, setpriv
	python3-prometheus-client
	prometheus # for promtool only: tests check the metrics text with it
	clang libclang-rt-14-dev # fuzz targets (libFuzzer)
	debhelper lintian	 # test_packaging.sh
)

pkgs=()
sets=("$@")
[ ${#sets[@]} -gt 0 ] || sets=(test)
need_src=0
for s in "${sets[@]}"; do
	case $s in
	runtime) pkgs+=("${runtime[@]}") ;;
	build) pkgs+=("${runtime[@]}" "${build[@]}") ;;
	run) pkgs+=("${runtime[@]}" "${build[@]}" "${run[@]}") ;;
	test)
		pkgs+=("${runtime[@]}" "${build[@]}" "${run[@]}" "${tst[@]}")
		need_src=1
		;;
	-h | --help)
		sed -n '2,16s/^# \{0,1\}//p' "$0"
		exit 0
		;;
	*)
		echo "install-deps.sh: unknown set '$s' (runtime, build, run or test; see --help)" >&2
		exit 2
		;;
	esac
done

if [ "${FAISSFS_SKIP_APT:-0}" = 1 ]; then
	printf '%s\n' "${pkgs[@]}" | sort -u
	exit 0
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi

# deb-src entry for bookworm main, needed by `apt-get source faiss`.
src=/etc/apt/sources.list.d/faissfs-deb-src.sources
if [ "$need_src" = 1 ] && ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ &&
	! grep -qs '^deb-src ' /etc/apt/sources.list; then
	$SUDO tee "$src" >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}"

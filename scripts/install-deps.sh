#!/usr/bin/env bash
# Installs every Debian 12 package faissfs needs to build, run and test, and
# enables deb-src so the build can fetch Debian's own FAISS source for the C API.
# Idempotent: safe to run again. Needs root (or sudo).
set -euo pipefail

SUDO=
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi

# deb-src entry for bookworm main, needed by `apt-get source faiss`.
src=/etc/apt/sources.list.d/faissfs-deb-src.sources
if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ &&
   ! grep -qs '^deb-src ' /etc/apt/sources.list; then
	$SUDO tee "$src" >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

pkgs=(
	build-essential cmake pkg-config dpkg-dev
	libfuse3-dev fuse3
	libmicrohttpd-dev python3-prometheus-client
	libcurl4-openssl-dev # the S3 client of remote stores (remote/)
	ceph-mon ceph-mgr ceph-osd radosgw ceph-common # tests: scripts/ceph-single-node.sh
	libzstd-dev zstd
	libmsgpack-dev
	libcmocka-dev
	libfaiss-dev libopenblas0 python3-faiss python3-numpy
	squashfuse squashfs-tools fio attr bc util-linux libxxhash-dev
	clang libclang-rt-14-dev
	libsystemd-dev debhelper lintian
	prometheus # for promtool only: tests check the metrics text with it
)
if [ "${FAISSFS_SKIP_APT:-0}" != 1 ]; then
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	$SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}"
fi

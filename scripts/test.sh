#!/usr/bin/env bash
# Installs what faissfs needs, builds it (warnings are errors) and runs every test:
# unit tests, integration tests on real mounts with real FAISS, the unit tests again
# under ASan+UBSan, and the concurrent cache tests and the write path under TSan.
#     sudo scripts/test.sh
# Exits non-zero if anything fails.  Build trees: build-test/, build-asan/, build-tsan/.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
jobs=$(nproc)

bash scripts/install-deps.sh

echo "== build (Release + checks, -Werror)"
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFAISSFS_WERROR=ON >/dev/null
cmake --build build-test -j"$jobs"

echo "== a single-node Ceph cluster for the remote-store tests (scripts/ceph-single-node.sh)"
# One cluster for every run below; each test makes its own bucket.  Stopped at exit.
export FAISSFS_CEPH_DIR=${FAISSFS_CEPH_DIR:-/var/tmp/faissfs-ceph-test}
export FAISSFS_CEPH_RGW_PORT=${FAISSFS_CEPH_RGW_PORT:-17480}
trap 'bash scripts/ceph-single-node.sh stop >/dev/null 2>&1 || true' EXIT
bash scripts/ceph-single-node.sh start

echo "== unit and integration tests"
ctest --test-dir build-test --output-on-failure -j"$jobs" -L unit
ctest --test-dir build-test --output-on-failure -L integration

echo "== unit tests under ASan+UBSan"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DFAISSFS_WERROR=ON -DFAISSFS_WITH_FAISS=OFF \
	-DFAISSFS_SANITIZE=address,undefined >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	ctest --test-dir build-asan --output-on-failure -j"$jobs" -L unit
echo "== integration tests against the ASan+UBSan faissfs (about 2.5 min)"
# Leaks too: the daemon frees at exit what the kernel still held open (a leak makes
# it exit non-zero, which the tests check at unmount).
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	FAISSFS_STRESS_SECONDS=20 FAISSFS_CRASH_ITERATIONS=5 FAISSFS_RANDOM_SEGMENTS=4 \
	ctest --test-dir build-asan --output-on-failure -L integration

echo "== concurrent code under TSan"
# The unit tests of everything that runs on several threads: the cache (all of
# cache/), store_verify(), the metrics' lock-free counters, read-ahead and compaction.
# and the disk cache of remote stores.
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DFAISSFS_WERROR=ON -DFAISSFS_WITH_FAISS=OFF \
	-DFAISSFS_SANITIZE=thread >/dev/null
tsan_tests="$(cd build-tsan && ctest -N -L cache | sed -n 's/^ *Test *#[0-9]*: \(unit\/.*\)$/\1/p')
unit/store/test_verify unit/util/test_metrics unit/fuse/test_readahead unit/fuse/test_compact
unit/remote/test_dcache"
tsan_targets=$(echo "$tsan_tests" | tr / _)
tsan_regex=$(echo $tsan_tests | sed 's/ /|/g')
cmake --build build-tsan -j"$jobs" --target $tsan_targets
TSAN_OPTIONS=halt_on_error=1 ctest --test-dir build-tsan --output-on-failure -R "^($tsan_regex)\$"
echo "== the write path under TSan: the write tests against a TSan faissfs (about 1.5 min)"
# The gate, the writer set, the compactor's workers and unpack against readers, on
# real mounts; a race makes the daemon exit non-zero (or die), which fails the test.
cmake --build build-tsan -j"$jobs" --target faissfs it_random_reads it_hdr_patch
TSAN_OPTIONS=halt_on_error=1 FAISSFS_STRESS_SECONDS=10 FAISSFS_CRASH_ITERATIONS=3 \
	ctest --test-dir build-tsan --output-on-failure \
	-R '^integration/(test_write_ops|test_write_unpack|test_write_crash|test_crash_faissx|test_stress_read|test_posix)$'

echo "== fuzz targets, ${FAISSFS_FUZZ_SECONDS:-20} s each (clang, ASan+UBSan)"
bash scripts/fuzz.sh "${FAISSFS_FUZZ_SECONDS:-20}"

echo "== all tests passed"

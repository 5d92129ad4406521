#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan) and runs each for a bounded time
# from a copy of its seed corpus and known-bad inputs.  Any crash fails the run and
# leaves the input in build-fuzz/crashes/<target>/ (add it to tests/fuzz/bad/<target>/
# once fixed).
#     scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 25 s, all targets)
# Prints the executions per target.  Build tree: build-fuzz/.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
secs=${1:-25}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_superblock fuzz_object fuzz_meta fuzz_faiss_header fuzz_unfilter fuzz_manifest)

if ! command -v clang >/dev/null; then
	echo "fuzz.sh: clang is missing: run scripts/install-deps.sh (clang, libclang-rt-14-dev)" >&2
	exit 1
fi
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DFAISSFS_FUZZ=ON -DFAISSFS_TESTS=OFF \
	-DFAISSFS_WITH_FAISS=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]}" >/dev/null

fail=0
for t in "${targets[@]}"; do
	work=build-fuzz/run/$t
	crashes=build-fuzz/crashes/$t
	rm -rf "$work"
	mkdir -p "$work/corpus" "$crashes"
	cp tests/fuzz/corpus/"$t"/* tests/fuzz/bad/"$t"/* "$work/corpus/" 2>/dev/null || true
	if [ "$t" = fuzz_object ]; then
		cp tests/data/corrupt/*.ffs "$work/corpus/"
	fi
	if [ "$t" = fuzz_unfilter ]; then
		cp tests/data/fuzz-unfilter/* "$work/corpus/"
	fi
	log=$work/log
	if ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		build-fuzz/tests/fuzz/"$t" -max_total_time="$secs" -rss_limit_mb=2048 \
		-max_len=65536 -timeout=10 -print_final_stats=1 -artifact_prefix="$crashes/" \
		"$work/corpus" >"$log" 2>&1; then
		status=ok
	else
		status=FAILED
		fail=1
	fi
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	echo "$t: ${execs:-?} executions in ${secs} s, $(ls "$work/corpus" | wc -l) corpus inputs: $status"
	if [ $status != ok ]; then
		grep -E "ERROR|SUMMARY|Test unit written|runtime error" "$log" | head -20 >&2
	fi
done
exit $fail

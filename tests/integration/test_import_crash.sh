#!/usr/bin/env bash
# test_import_crash.sh - `faissfs import` killed with SIGKILL at random moments.
#
# Two versions of a FAISSx data dir (A and B: changed, unchanged and new files)
# are imported in turn into one store; each import is killed with SIGKILL at a
# random moment within its run time.  After every kill the store must verify clean
# (`faissfs verify`: no torn object) and every file it holds must be, byte for
# byte, its A or its B content - never a mix or a truncation.  Every few
# iterations the import is run again to completion and the store must then hold
# exactly that version.  At the end, leftovers in .faissfs/tmp are removed by
# `faissfs verify --repair` once idle.
#
#   FAISSFS_CRASH_ITERATIONS=N   iterations (default 10; the stress run uses 100+)
#   FAISSFS_CRASH_SEED=S         random seed (default: random, printed)
. "$(dirname "$0")/lib.sh"

iters=${FAISSFS_CRASH_ITERATIONS:-10}
seed=${FAISSFS_CRASH_SEED:-$RANDOM}
RANDOM=$seed
store=$T/store
say "$iters iterations, seed $seed (FAISSFS_CRASH_SEED=$seed to replay)"

# Version A and B of a data dir: B changes some files, keeps some, adds some.
for v in A B; do
	mkdir -p "$T/$v/acme/idx1" "$T/$v/acme/idx2" "$T/$v/beta/idx3"
done
make_mixed_file "$T/A/acme/idx1/index.faiss" 3000000 1
make_mixed_file "$T/B/acme/idx1/index.faiss" 3100000 2
make_mixed_file "$T/A/acme/idx2/index.faiss" 2000000 3
cp "$T/A/acme/idx2/index.faiss" "$T/B/acme/idx2/index.faiss"
make_mixed_file "$T/A/beta/idx3/index.faiss" 1500000 4
make_mixed_file "$T/B/beta/idx3/index.faiss" 1400000 5
for v in A B; do
	for d in acme/idx1 acme/idx2 beta/idx3; do
		echo "{\"version\": \"$v\", \"index\": \"$d\"}" >"$T/$v/$d/metadata.json"
		make_mixed_file "$T/$v/$d/vectors.json" 200000 "$(cksum <<<"$v$d" | cut -c1-6)"
	done
done
make_mixed_file "$T/B/beta/idx3/extra.bin" 800000 9 # only in B

# The sums of every version of every file: sums/<relative path> lists them.
declare -A sums
for v in A B; do
	while IFS= read -r -d '' f; do
		sums[$f]+=" $(sha256sum <"$T/$v/$f" | cut -c1-64)"
	done < <(cd "$T/$v" && find . -type f -printf '%P\0')
done

"$FAISSFS" init "$store" --chunk-size 64K >/dev/null || fail "faissfs init"
"$FAISSFS" import "$T/A" "$store" --no-progress 2>/dev/null >/dev/null || fail "first import"
# The kill window: how long switching the store from A to B takes.
t0=$(date +%s%N)
"$FAISSFS" import "$T/B" "$store" --no-progress 2>/dev/null >/dev/null || fail "import of B"
full_ms=$((($(date +%s%N) - t0) / 1000000))
ok "switching versions takes ${full_ms} ms; kills land in 0..${full_ms} ms"

# check_store ITER: verify clean, every file one of its versions, whole.
check_store() {
	local out=$T/export f sum
	"$FAISSFS" verify "$store" >"$T/verify.out" 2>&1 ||
		{ sed 's/^/   verify: /' "$T/verify.out" >&2; fail "iteration $1: verify found a problem"; }
	rm -rf "$out"
	"$FAISSFS" export "$store" "$out" >/dev/null 2>&1 || fail "iteration $1: export failed"
	while IFS= read -r -d '' f; do
		sum=$(sha256sum <"$out/$f" | cut -c1-64)
		[ -n "${sums[$f]:-}" ] || fail "iteration $1: unknown file $f in the store"
		[[ " ${sums[$f]} " == *" $sum "* ]] ||
			fail "iteration $1: $f is neither its A nor its B content (torn)"
	done < <(cd "$out" && find . -type f -printf '%P\0')
}

# same_as V: the store holds exactly version V for every file of V.
same_as() {
	local out=$T/export f
	rm -rf "$out"
	"$FAISSFS" export "$store" "$out" >/dev/null 2>&1 || fail "export failed"
	while IFS= read -r -d '' f; do
		cmp -s "$T/$1/$f" "$out/$f" || fail "after a complete import of $1, $f differs"
	done < <(cd "$T/$1" && find . -type f -printf '%P\0')
}

killed=0 finished=0 completions=0
for ((i = 1; i <= iters; i++)); do
	v=$([ $((i % 2)) = 1 ] && echo A || echo B)
	delay_ms=$((RANDOM % (full_ms + 1)))
	"$FAISSFS" import "$T/$v" "$store" --no-progress >/dev/null 2>&1 &
	ipid=$!
	sleep "$(printf '0.%03d' "$delay_ms")"
	if kill -KILL "$ipid" 2>/dev/null; then
		killed=$((killed + 1))
	else
		finished=$((finished + 1))
	fi
	wait "$ipid" 2>/dev/null || true
	check_store "$i"
	if [ $((i % 5)) = 0 ] || [ "$i" = "$iters" ]; then
		"$FAISSFS" import "$T/$v" "$store" --no-progress >/dev/null 2>&1 ||
			fail "iteration $i: re-running the import of $v failed"
		same_as "$v"
		completions=$((completions + 1))
	fi
done
ok "$iters iterations: $killed killed mid-import, $finished finished first;" \
	"store whole each time; $completions re-runs completed the import"

say "leftovers of killed imports in .faissfs/tmp are removed by verify --repair"
left=$(find "$store/.faissfs/tmp" -type f | wc -l)
find "$store/.faissfs/tmp" -type f -exec touch -d '2 minutes ago' {} +
"$FAISSFS" verify --repair "$store" >/dev/null 2>&1 || fail "verify --repair found problems"
[ "$(find "$store/.faissfs/tmp" -type f | wc -l)" = 0 ] || fail ".faissfs/tmp not empty"
[ ! -d "$store/.faissfs/quarantine" ] || fail "verify --repair quarantined something"
ok "$left temp files left by the kills, all removed; nothing quarantined"

#!/usr/bin/env bash
# bench_scale.sh - faissfs with thousands of indices: startup, listing, metadata
# and the daemon's memory per index.
#
#   bench_scale.sh [WORKDIR [TENANTS [INDICES [LARGE [LARGE_N]]]]]
#
# Builds (or reuses, if WORKDIR/store exists with the same shape) a store with
# gen_scale_store.sh (default 100 tenants x 50 indices, 50 of them IndexFlatL2 of
# 10M vectors of d 128), then measures, on the mount:
#   - mount to ready: from `faissfs mount -f` to the daemon's "ready" (-o ready_fd),
#     against a store of one tiny file (startup must not depend on the data);
#   - `ls -R`, `du -s` (apparent size and blocks) and `faissfs stat` of the mount;
#   - the daemon's VmRSS idle, after stat() of every file, and after reading every
#     metadata.json and the FAISS header of every index.faiss (open objects).
# The daemon runs with -o cache_size=1M so that its VmRSS growth is the state it
# keeps per index, not decompressed chunks.  Each figure is the best of 3 where
# it is cheap.  Needs root and /dev/fuse.
# Environment: FAISSFS, HUGE_OBJECT (default: build/ paths).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
W=${1:-/tmp/faissfs-scale}
tenants=${2:-100}
indices=${3:-50}
large=${4:-50}
large_n=${5:-10000000}
export FAISSFS=${FAISSFS:-$here/../build/faissfs}
export HUGE_OBJECT=${HUGE_OBJECT:-$here/../build/bench/bench_huge_object}
export LC_ALL=C

shape="$tenants $indices $large $large_n"
if [ ! -d "$W/store" ] || [ "$(cat "$W/shape" 2>/dev/null)" != "$shape" ]; then
	"$here/gen_scale_store.sh" "$W" "$tenants" "$indices" "$large" "$large_n"
	echo "$shape" >"$W/shape"
fi
mnt=$W/mnt
mkdir -p "$mnt" "$W/tiny/src/t/i"
[ -d "$W/tiny/store" ] || {
	echo x >"$W/tiny/src/t/i/index.faiss"
	"$FAISSFS" import "$W/tiny/src" "$W/tiny/store" --no-progress >/dev/null 2>&1
}

pid=
cleanup() {
	if awk -v p="$mnt" '$5 == p { f = 1 } END { exit !f }' /proc/self/mountinfo; then
		fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt"
	fi
	[ -z "$pid" ] || wait "$pid" 2>/dev/null || true
}
trap cleanup EXIT

now() { date +%s%N; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1e6 }'; }
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$pid/status"; }

# mount_ready STORE: mounts STORE at $mnt in the foreground; sets pid, and
# ready_ms to the milliseconds from the command to the daemon's "ready".
mount_ready() {
	local fifo=$W/ready line t0 t1
	rm -f "$fifo"
	mkfifo "$fifo"
	t0=$(now)
	"$FAISSFS" mount -f "$1" "$mnt" -o ready_fd=3,cache_size=1M 3>"$fifo" >/dev/null 2>"$W/daemon.log" &
	pid=$!
	read -r -t 60 line <"$fifo" || true
	t1=$(now)
	rm -f "$fifo"
	[ "$line" = ready ] || { cat "$W/daemon.log" >&2; echo "mount of $1 failed" >&2; exit 1; }
	ready_ms=$(ms "$t0" "$t1")
}
umount_wait() {
	fusermount3 -u "$mnt"
	wait "$pid" || true
	pid=
}
# timed CMD...: ms of the best of 3 runs, output discarded.
timed() {
	local best= t0 t1 v
	for _ in 1 2 3; do
		t0=$(now)
		"$@" >/dev/null
		t1=$(now)
		v=$(ms "$t0" "$t1")
		if [ -z "$best" ] || awk -v a="$v" -v b="$best" 'BEGIN { exit !(a < b) }'; then
			best=$v
		fi
	done
	echo "$best"
}

sync
echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
nidx=$((tenants * indices))
nfiles=$(wc -l <"$W/expect")
logical=$(awk '{ s += $2 } END { printf "%.0f", s }' "$W/expect")
stored=$(du -sb "$W/store" | cut -f1)

best_tiny=
best_big=
ready_ms=
lower() { [ -z "$2" ] || awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }
mount_ready "$W/store" # cold page cache: the daemon that the rest measures
cold=$ready_ms
rss_idle=$(rss)
t_ls=$(timed ls -R "$mnt")
t_du=$(timed du -s "$mnt")
t_dua=$(timed du -s --apparent-size -B1 "$mnt")
files_bytes=$(find "$mnt" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f", s }')
files_n=$(find "$mnt" -type f | wc -l)
t_stat=$(timed "$FAISSFS" stat "$mnt")
t_find=$(timed find "$mnt" -type f -printf '%s\n')
rss_stat=$(rss)
t0=$(now)
find "$mnt" -name metadata.json -exec cat {} + >/dev/null
find "$mnt" -name index.faiss -print0 | xargs -0 -n 256 head -q -c 45 >/dev/null
t1=$(now)
t_meta=$(ms "$t0" "$t1")
rss_meta=$(rss)
umount_wait
for _ in 1 2 3; do
	mount_ready "$W/tiny/store"
	umount_wait
	lower "$ready_ms" "$best_tiny" && best_tiny=$ready_ms
	mount_ready "$W/store"
	umount_wait
	lower "$ready_ms" "$best_big" && best_big=$ready_ms
done

per_idx() { awk -v a="$1" -v b="$2" -v n="$nidx" 'BEGIN { printf "%.2f", (b - a) / n }'; }
echo
echo "faissfs at scale: $tenants tenants x $indices indices = $nidx index dirs, $nfiles files,"
echo "$large of them IndexFlatL2 of $large_n vectors (d 128)"
printf '  logical %s bytes (%.1f GB), stored %s bytes (%.1f MB)\n' \
	"$logical" "$(awk -v x="$logical" 'BEGIN { print x / 1e9 }')" "$stored" \
	"$(awk -v x="$stored" 'BEGIN { print x / 1e6 }')"
echo
printf '%-52s %12s\n' "measure" "value"
printf '%-52s %9s ms\n' "mount to ready, this store (best of 3)" "$best_big"
printf '%-52s %9s ms\n' "mount to ready, a store of one tiny file (best of 3)" "$best_tiny"
printf '%-52s %9s ms\n' "mount to ready, this store, cold page cache" "$cold"
printf '%-52s %9s ms\n' "ls -R of the mount" "$t_ls"
printf '%-52s %9s ms\n' "du -s of the mount" "$t_du"
printf '%-52s %9s ms\n' "du -s --apparent-size of the mount" "$t_dua"
printf '%-52s %9s ms\n' "find -type f -printf %s (stat of every file)" "$t_find"
printf '%-52s %9s ms\n' "faissfs stat of the mount" "$t_stat"
printf '%-52s %9s ms\n' "cat every metadata.json + head every index.faiss" "$t_meta"
printf '%-52s %9s KiB\n' "daemon VmRSS idle after mount" "$rss_idle"
printf '%-52s %9s KiB\n' "daemon VmRSS after listing and stat of every file" "$rss_stat"
printf '%-52s %9s KiB\n' "daemon VmRSS after reading every index's metadata" "$rss_meta"
printf '%-52s %9s KiB\n' "  per index (growth over idle / index dirs)" "$(per_idx "$rss_idle" "$rss_meta")"
echo
ok=yes
awk -v a="$best_big" 'BEGIN { exit !(a < 500) }' || ok=no
echo "target: mount to ready < 500 ms independent of data size: $ok ($best_big ms vs $best_tiny ms for one tiny file)"
if [ "$files_bytes" = "$logical" ] && [ "$files_n" = "$nfiles" ]; then
	echo "the mount lists every file with its logical size: yes ($files_n files)"
else
	echo "the mount lists every file with its logical size: NO ($files_n files, $files_bytes bytes)"
fi

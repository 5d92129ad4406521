#!/usr/bin/env bash
# Write benchmark: faiss.write_index of a large IndexFlatL2 to plain disk and through a
# writable faissfs mount, measured side by side in one run, then the background
# compaction (last close -> compressed object published) and the re-save of the same
# index grown by 1 % (unchanged chunks copied, not recompressed), printed as ratios
# with the targets of the write work (met or missed, by how much).
#
#     sudo bench/bench_write.sh [--dir DIR] [BUILD_DIR] [SIZE]
#
# BUILD_DIR: where faissfs is (default build/).  SIZE: the index size (default 1G;
# e.g. 64M for a quick check; the vectors are d=128 float32, SIZE / 512 of them).
# --dir DIR (or BENCH_DIR): the work dir, kept afterwards; default a private
# mktemp -d under /tmp, removed at exit.  The plain-disk copy and the store are in
# it, so both sides write to the same filesystem.  Root: drop_caches, mounts.
# Needs /usr/bin/python3 with faiss and numpy (python3-faiss, python3-numpy).
# Env: FFS_OPTS (extra faissfs mount options), POLL_TIMEOUT (seconds to wait for a
# publish, default 1800).
#
# What is timed, each side from a cold page cache (sync; drop_caches first):
#  - write_index: the call alone; FAISS does not fsync, so this is what a saver waits.
#  - + sync: write_index, then sync(2) of everything, for honesty.  faissfs does not use
#    the kernel's writeback cache, so by close the daemon holds the bytes in its staging
#    file and sync(2) makes them durable on the store's disk.
#  - commit: from write_index's return (the file's last close) until the compacted
#    object is published (faissfs_compaction_files_total moves; the daemon's own
#    faissfs_commit_seconds histogram is printed too).  It includes the idle time a
#    closed file waits before compaction starts (MNT_COMPACT_IDLE_MS, 2 s).
#  - re-save: the index grown by 1 % and written again over the same path on the mount;
#    commit time, chunks copied / compressed and the daemon's CPU seconds (close to
#    published) against the full compression before.
# The index is built once in memory, outside every timing.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
keep_dir=
if [ "${1:-}" = --dir ]; then
	[ $# -ge 2 ] || { echo "bench_write: --dir needs a directory" >&2; exit 1; }
	keep_dir=$2
	shift 2
fi
keep_dir=${keep_dir:-${BENCH_DIR:-}}
build=$(cd "${1:-$top/build}" && pwd)
SIZE=${2:-1G}
FFS=$build/faissfs
PY=/usr/bin/python3
FFS_OPTS=${FFS_OPTS:-}
POLL_TIMEOUT=${POLL_TIMEOUT:-1800}

die() { echo "bench_write: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (drop_caches, mounts)"
[ -x "$FFS" ] || die "$FFS not found: build first (cmake --build $build)"
$PY -c 'import faiss, numpy' 2>/dev/null ||
	die "$PY cannot import faiss and numpy (apt-get install python3-faiss python3-numpy)"
case $SIZE in
*[kK]) bytes=$((${SIZE%?} << 10)) ;;
*[mM]) bytes=$((${SIZE%?} << 20)) ;;
*[gG]) bytes=$((${SIZE%?} << 30)) ;;
*[!0-9]* | '') die "bad SIZE '$SIZE' (a size, e.g. 64M or 1G)" ;;
*) bytes=$SIZE ;;
esac
[ "$bytes" -ge $((1 << 20)) ] || die "SIZE $SIZE is too small (at least 1M)"
idle_ms=$(sed -n 's/^#define MNT_COMPACT_IDLE_MS \([0-9]*\)u.*/\1/p' "$top/fuse/write.h")
idle_ms=${idle_ms:-2000}

if [ -n "$keep_dir" ]; then
	mkdir -p "$keep_dir"
	B=$(cd "$keep_dir" && pwd)/bench-write.$$
	mkdir "$B"
else
	B=$(mktemp -d /tmp/faissfs-bench-write.XXXXXX)
fi
mnt=$B/mnt
store=$B/store
FFS_PID=
cleanup() {
	if mountpoint -q "$mnt" 2>/dev/null; then
		fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -u -z "$mnt" 2>/dev/null || true
	fi
	if [ -n "$FFS_PID" ]; then
		wait "$FFS_PID" 2>/dev/null || true
	fi
	if [ -z "$keep_dir" ]; then
		rm -rf -- "$B"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$mnt" "$B/disk"
"$FFS" init "$store" >/dev/null || die "faissfs init $store failed"

# The daemon in the foreground, its log in B/daemon.log; "ready" on fd 3 once mounted.
echo "== faissfs mount -o rw $FFS_OPTS (work dir $B)"
mkfifo "$B/ready"
# shellcheck disable=SC2086 # FFS_OPTS is words: "-o readahead=0"
"$FFS" mount -f "$store" "$mnt" -o rw,ready_fd=3,log_level=info $FFS_OPTS \
	3>"$B/ready" 2>"$B/daemon.log" &
FFS_PID=$!
line=
read -r -t 60 line <"$B/ready" || true
[ "$line" = ready ] || { cat "$B/daemon.log" >&2; die "faissfs did not mount at $mnt"; }
[ -r "$mnt/.faissfs/metrics" ] || die "no $mnt/.faissfs/metrics"

# The measurements, in one Python process (the index stays in memory between them);
# results as KEY=VALUE lines in B/results.
$PY - "$top/bench" "$bytes" "$B/disk" "$mnt" "$store" "$POLL_TIMEOUT" "$FFS_PID" >"$B/results" <<'PY'
import os, sys, time
sys.path.insert(0, sys.argv[1])
import faiss, numpy as np
from gen_bench_data import embeddings, D

size, disk, mnt, store, poll_timeout = int(sys.argv[2]), sys.argv[3], sys.argv[4], \
    sys.argv[5], float(sys.argv[6])
daemon = int(sys.argv[7])
rel = os.path.join("acme", "idx", "index.faiss")
log = lambda *a: print("==", *a, file=sys.stderr, flush=True)
out = lambda k, v: print(f"{k}={v}", flush=True)


def drop():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def metrics():
    m = {}
    with open(os.path.join(mnt, ".faissfs", "metrics")) as f:
        for line in f:
            if line.startswith("faissfs_compaction_") or line.startswith("faissfs_commit_seconds_"):
                k, _, v = line.rpartition(" ")
                if "{" not in k:
                    m[k] = float(v)
    return m


def cpu():
    """The daemon's CPU seconds so far (user + system)."""
    with open(f"/proc/{daemon}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def save(ix, root):
    """write_index to ROOT/acme/idx/index.faiss, cold: (seconds, seconds with sync)."""
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    drop()
    t0 = time.perf_counter()
    faiss.write_index(ix, path)
    t1 = time.perf_counter()
    global cpu_at_close
    cpu_at_close = cpu() if root == mnt else 0.0
    os.sync()
    t2 = time.perf_counter()
    return t1 - t0, t2 - t0, t1


def published(before, closed):
    """Polls the metrics until one more file was compacted; seconds since CLOSED."""
    want = before.get("faissfs_compaction_files_total", 0) + 1
    while True:
        m = metrics()
        if m.get("faissfs_compaction_files_total", 0) >= want:
            return time.perf_counter() - closed, m
        if m.get("faissfs_compaction_failures_total", 0) > before.get(
                "faissfs_compaction_failures_total", 0):
            sys.exit("bench_write: compaction failed (see the daemon log)")
        if time.perf_counter() - closed > poll_timeout:
            sys.exit(f"bench_write: not published after {poll_timeout:.0f} s")
        time.sleep(0.02)


def delta(a, b, k):
    return b.get(k, 0) - a.get(k, 0)


n = max(1000, size // (4 * D))
log(f"building an IndexFlatL2 of {n} vectors, d={D} (not timed)")
rng = np.random.default_rng(7)
ix = faiss.IndexFlatL2(D)
step = 1 << 18
for s in range(0, n, step):
    ix.add(embeddings(rng, min(step, n - s)))
grow = embeddings(rng, max(1, n // 100))

log("write_index to plain disk")
w, ws, _ = save(ix, disk)
out("disk_write", f"{w:.3f}")
out("disk_sync", f"{ws:.3f}")
out("logical", os.path.getsize(os.path.join(disk, rel)))
os.unlink(os.path.join(disk, rel))  # the disk is the store's: leave it its space

log("write_index through the mount")
m0 = metrics()
w, ws, closed = save(ix, mnt)
out("ffs_write", f"{w:.3f}")
out("ffs_sync", f"{ws:.3f}")
log("waiting for the compacted object")
t, m1 = published(m0, closed)
out("full_commit", f"{t:.3f}")
out("full_cpu", f"{cpu() - cpu_at_close:.2f}")
for k, key in (("full_commit_hist", "faissfs_commit_seconds_sum"),
               ("full_reused", "faissfs_compaction_chunks_reused_total"),
               ("full_encoded", "faissfs_compaction_chunks_encoded_total"),
               ("full_logical", "faissfs_compaction_logical_bytes_total"),
               ("full_stored_c", "faissfs_compaction_stored_bytes_total")):
    out(k, f"{delta(m0, m1, key):.3f}" if k.endswith("hist") else int(delta(m0, m1, key)))
out("full_stored", os.path.getsize(os.path.join(store, rel)))
out("full_size", os.path.getsize(os.path.join(mnt, rel)))

log(f"grow by {grow.shape[0]} vectors (1 %), write_index again through the mount")
ix.add(grow)
w, ws, closed = save(ix, mnt)
out("re_write", f"{w:.3f}")
out("re_sync", f"{ws:.3f}")
t, m2 = published(m1, closed)
out("re_commit", f"{t:.3f}")
out("re_cpu", f"{cpu() - cpu_at_close:.2f}")
for k, key in (("re_commit_hist", "faissfs_commit_seconds_sum"),
               ("re_reused", "faissfs_compaction_chunks_reused_total"),
               ("re_encoded", "faissfs_compaction_chunks_encoded_total"),
               ("re_logical", "faissfs_compaction_logical_bytes_total")):
    out(k, f"{delta(m1, m2, key):.3f}" if k.endswith("hist") else int(delta(m1, m2, key)))
out("re_stored", os.path.getsize(os.path.join(store, rel)))
out("re_size", os.path.getsize(os.path.join(mnt, rel)))
PY
declare -A R
while IFS='=' read -r k v; do R[$k]=$v; done <"$B/results"

fusermount3 -u "$mnt"
wait "$FFS_PID" || true
FFS_PID=

# --- the table ------------------------------------------------------------------------
calc() { echo "scale=6; $1" | bc -l; }
fmt() { printf '%.*f' "$1" "$(calc "$2")"; }
mib() { fmt 1 "$1 / 1048576"; }
ratio() { if [ "$(calc "$2 == 0")" = 1 ]; then echo -; else fmt 2 "$1 / $2"; fi; }
idle=$(fmt 1 "$idle_ms / 1000")
# MiB/s of compaction: over the whole commit time, and over the commit time less the idle
# wait (the compressing itself; the wait is a setting, not work).
cmp_mbps() { fmt 1 "$1 / 1048576 / $2"; }
cmp_work() {
	local s
	s=$(calc "$2 - $idle")
	if [ "$(calc "$s <= 0")" = 1 ]; then echo -; else cmp_mbps "$1" "$s"; fi
}
# verdict RATIO WANT: "met" when RATIO <= WANT (lower is better), else by how much.
verdict() {
	if [ "$1" = - ]; then echo -; elif [ "$(calc "$1 <= $2")" = 1 ]; then
		echo "met ($1 <= $2)"
	else
		printf 'MISSED by %.0f%% (%s > %s)\n' "$(calc "($1 / $2 - 1) * 100")" "$1" "$2"
	fi
}
wr=$(ratio "${R[ffs_write]}" "${R[disk_write]}")
sr=$(ratio "${R[ffs_sync]}" "${R[disk_sync]}")
printf '\n## Write benchmark (%s MiB IndexFlatL2, d=128, %s cores, %s)\n' \
	"$(mib "${R[logical]}")" "$(nproc)" "$(date -u +%F)"
printf 'faissfs: %s%s; work dir on %s (%s).\n' \
	"$("$FFS" --version 2>/dev/null | head -1)" "${FFS_OPTS:+ $FFS_OPTS}" \
	"$(df --output=source "$B" | tail -1)" "$(df --output=fstype "$B" | tail -1)"
printf 'Times in seconds from a cold page cache; ratios are faissfs / disk.\n'
printf '\n| step | plain disk | faissfs -o rw | faissfs / disk | target |\n'
printf '|---|---|---|---|---|\n'
printf '| faiss.write_index (s) | %s | %s | %s | <= 1.3 |\n' "${R[disk_write]}" "${R[ffs_write]}" "$wr"
printf '| faiss.write_index + sync (s) | %s | %s | %s | |\n' "${R[disk_sync]}" "${R[ffs_sync]}" "$sr"
printf '| write_index MiB/s | %s | %s | | |\n' "$(cmp_mbps "${R[logical]}" "${R[disk_write]}")" \
	"$(cmp_mbps "${R[logical]}" "${R[ffs_write]}")"

printf '\n| compaction (last close -> object published) | full (first save) | re-save, +1 %% | re-save / full |\n'
printf '|---|---|---|---|\n'
printf '| logical size (MiB) | %s | %s | |\n' "$(mib "${R[full_size]}")" "$(mib "${R[re_size]}")"
printf '| commit time, polled (s) | %s | %s | %s |\n' "${R[full_commit]}" "${R[re_commit]}" \
	"$(ratio "${R[re_commit]}" "${R[full_commit]}")"
printf '| commit time, faissfs_commit_seconds (s) | %s | %s | %s |\n' "${R[full_commit_hist]}" \
	"${R[re_commit_hist]}" "$(ratio "${R[re_commit_hist]}" "${R[full_commit_hist]}")"
printf '| commit time less the %s s idle wait (s) | %s | %s | %s |\n' "$idle" \
	"$(fmt 3 "${R[full_commit_hist]} - $idle")" "$(fmt 3 "${R[re_commit_hist]} - $idle")" \
	"$(ratio "$(calc "${R[re_commit_hist]} - $idle")" "$(calc "${R[full_commit_hist]} - $idle")")"
printf '| daemon CPU seconds, close to published | %s | %s | %s |\n' "${R[full_cpu]}" "${R[re_cpu]}" \
	"$(ratio "${R[re_cpu]}" "${R[full_cpu]}")"
printf '| MiB/s over the commit time | %s | %s | |\n' "$(cmp_mbps "${R[full_size]}" "${R[full_commit_hist]}")" \
	"$(cmp_mbps "${R[re_size]}" "${R[re_commit_hist]}")"
printf '| MiB/s less the idle wait | %s | %s | |\n' "$(cmp_work "${R[full_size]}" "${R[full_commit_hist]}")" \
	"$(cmp_work "${R[re_size]}" "${R[re_commit_hist]}")"
printf '| chunks compressed | %s | %s | %s |\n' "${R[full_encoded]}" "${R[re_encoded]}" \
	"$(ratio "${R[re_encoded]}" "${R[full_encoded]}")"
printf '| chunks copied from the previous version | %s | %s | |\n' "${R[full_reused]}" "${R[re_reused]}"
printf '| stored bytes / logical bytes | %s | %s | |\n' "$(fmt 3 "${R[full_stored]} / ${R[full_size]}")" \
	"$(fmt 3 "${R[re_stored]} / ${R[re_size]}")"
printf '| write_index through the mount (s) | %s | %s | |\n' "${R[ffs_write]}" "${R[re_write]}"
grep -o 'compacted .*: [0-9]* chunks copied.*' "$B/daemon.log" | sed 's/^/daemon: /' || true

printf '\n### Targets\n\n'
printf -- '- write_index through the mount within 1.3x of plain disk: %s\n' "$(verdict "$wr" 1.3)"
printf -- '- re-save of a 1 %%-changed index: %s of the chunks compressed again (%s of %s), commit %s of the full one\n' \
	"$(ratio "${R[re_encoded]}" "$(calc "${R[re_encoded]} + ${R[re_reused]}")")" "${R[re_encoded]}" \
	"$((R[re_encoded] + R[re_reused]))" "$(ratio "${R[re_commit_hist]}" "${R[full_commit_hist]}")"

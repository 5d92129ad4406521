#!/usr/bin/env bash
# test_autosize.sh - -o cache_size=auto under real memory pressure: the daemon runs in
# a memory cgroup limited to 256 MiB (v2 memory.max, or v1 memory.limit_in_bytes);
# its budget starts from the cgroup's memory, not the machine's; a memory hog in the
# same cgroup takes it nearly all, and the budget (faissfs_cache_budget_bytes) shrinks
# to the floor; the hog goes, and the budget grows back to where it started.
# Polls the metrics with deadlines; skipped (77) without a writable memory cgroup.
. "$(dirname "$0")/lib.sh"

LIMIT=$((256 << 20))
store=$T/store
mnt=$T/mnt
MIN=$((16 << 20)) # CACHE_AUTO_MIN

# --- a memory cgroup of our own -------------------------------------------------------
cg=
flavor=
own_v1=$(sed -n 's/^[0-9]*:\([^:]*,\)\{0,1\}memory\(,[^:]*\)\{0,1\}:\(.*\)$/\3/p' /proc/self/cgroup)
own_v2=$(sed -n 's/^0::\(.*\)$/\1/p' /proc/self/cgroup)
v2root=/sys/fs/cgroup
[ -f $v2root/cgroup.controllers ] || v2root=/sys/fs/cgroup/unified
if [ -n "$own_v2" ] && grep -qw memory "$v2root/cgroup.controllers" 2>/dev/null; then
	parent=$v2root${own_v2%/}
	if grep -qw memory "$parent/cgroup.subtree_control" 2>/dev/null &&
		mkdir "$parent/faissfs-autosize-$$" 2>/dev/null; then
		cg=$parent/faissfs-autosize-$$
		flavor=v2
		echo "$LIMIT" >"$cg/memory.max" || fail "cannot set $cg/memory.max"
	fi
fi
if [ -z "$cg" ] && [ -n "$own_v1" ] && [ -d /sys/fs/cgroup/memory ]; then
	parent=/sys/fs/cgroup/memory${own_v1%/}
	if mkdir "$parent/faissfs-autosize-$$" 2>/dev/null; then
		cg=$parent/faissfs-autosize-$$
		flavor=v1
		echo "$LIMIT" >"$cg/memory.limit_in_bytes" || fail "cannot set the v1 limit"
	fi
fi
if [ -z "$cg" ]; then
	echo "SKIP [$TEST_NAME]: no writable memory cgroup (v2 with memory delegated, or v1)"
	rm -rf -- "$T"
	trap - EXIT
	exit 77
fi

hog_pid=
_cg_cleanup() {
	local rc=$? p
	set +e
	[ -n "$hog_pid" ] && kill -KILL "$hog_pid" 2>/dev/null && wait "$hog_pid" 2>/dev/null
	if is_mounted "$mnt"; then
		fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt"
	fi
	[ -n "$FG_PID" ] && timeout 10 tail --pid="$FG_PID" -f /dev/null 2>/dev/null
	# Anything left in the cgroup goes back to ours; then it can go.
	for p in $(cat "$cg/cgroup.procs" 2>/dev/null); do
		echo "$p" >"$parent/cgroup.procs" 2>/dev/null
	done
	rmdir "$cg" 2>/dev/null || echo "cleanup: cannot remove $cg" >&2
	(exit "$rc")
	_cleanup
}
trap _cg_cleanup EXIT

# in_cg: a wrapper that joins the cgroup, then runs its arguments.
in_cg=$T/in_cg.sh
printf '#!/bin/sh\necho $$ > "%s/cgroup.procs" || exit 1\nexec "$@"\n' "$cg" >"$in_cg"
chmod +x "$in_cg"
printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$in_cg" "$FAISSFS" >"$T/faissfs_cg"
chmod +x "$T/faissfs_cg"

mkdir -p "$mnt" "$T/src"
make_mixed_file "$T/src/a.bin" $((4 << 20)) 3
"$FAISSFS" import "$T/src" "$store" --no-progress >/dev/null || fail "faissfs import failed"

budget() {
	awk '$1 == "faissfs_cache_budget_bytes" { print $2 }' "$mnt/.faissfs/metrics"
}

# wait_budget CMP VALUE SECONDS WHAT: polls the budget until `budget CMP VALUE`.
wait_budget() {
	local i b
	for ((i = 0; i < $3 * 10; i++)); do
		b=$(budget)
		if [ "$b" "-$1" "$2" ]; then
			ok "$4: budget $((b >> 20)) MiB after ~$((i / 10)) s"
			return
		fi
		sleep 0.1
	done
	fail "$4: budget still $b bytes after $3 s (want -$1 $2)"
}

say "daemon in a $flavor memory cgroup of $((LIMIT >> 20)) MiB ($cg)"
FAISSFS=$T/faissfs_cg mount_fg "$store" "$mnt" "$T/d.log" -o ro,cache_size=auto
grep -qx "$FG_PID" "$cg/cgroup.procs" || fail "the daemon is not in $cg"
base=$(budget)
[ "$base" -le $((LIMIT / 4)) ] && [ "$base" -ge $((LIMIT / 8)) ] ||
	fail "start budget $base: want about a quarter of the cgroup's $LIMIT"
ok "start budget $((base >> 20)) MiB: a quarter of the cgroup's memory, not the machine's"
cmp "$T/src/a.bin" "$mnt/a.bin" || fail "a.bin differs"

say "a memory hog in the same cgroup takes all but ~10 MiB"
"$in_cg" "$PYTHON" - "$cg" "$flavor" >"$T/hog.out" 2>&1 <<'PY' &
import os, sys, time
cg, flavor = sys.argv[1], sys.argv[2]
def rd(name):
    with open(os.path.join(cg, name)) as f:
        return f.read().strip()
def stat(key):
    for line in rd("memory.stat").splitlines():
        k, v = line.split()
        if k == key:
            return int(v)
    return 0
def avail():
    if flavor == "v2":
        lim, use, inact = int(rd("memory.max")), int(rd("memory.current")), stat("inactive_file")
    else:
        lim, use = int(rd("memory.limit_in_bytes")), int(rd("memory.usage_in_bytes"))
        inact = stat("total_inactive_file")
    return lim - max(use - inact, 0)
hog = []
while avail() > (12 << 20):
    hog.append(b"\x5a" * (2 << 20))  # written: charged now
print("holding %d MiB, %d MiB left" % (2 * len(hog), avail() >> 20), flush=True)
time.sleep(600)
PY
hog_pid=$!
wait_budget le "$MIN" 30 "under pressure the budget fell to the floor ($((MIN >> 20)) MiB)"
sed 's/^/   hog: /' "$T/hog.out"
cmp "$T/src/a.bin" "$mnt/a.bin" || fail "a.bin differs under pressure"

say "the hog goes: the budget grows back"
kill -KILL "$hog_pid"
wait "$hog_pid" 2>/dev/null || true
hog_pid=
wait_budget ge "$base" 90 "pressure gone, the budget is back to the start"
unmount "$mnt" "$FG_PID"

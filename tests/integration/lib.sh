# lib.sh - shared code of the integration tests; each test sources it first.
#
# Gives the test: strict mode, a private temp dir $T, a trap that ALWAYS unmounts
# whatever the test mounted (fusermount3 -u, then -uz) and removes $T, mount helpers
# that wait for the daemon's own readiness signal (never a sleep), and small check
# helpers that print what is checked and exit non-zero on the first failure.
#
# Environment (ctest sets it): FAISSFS (the binary), PYTHON (/usr/bin/python3),
# RANDOM_READS, HDR_PATCH, FAISS_CHECK (helper programs), IT_DIR (this folder).
set -euo pipefail

: "${FAISSFS:?set FAISSFS to the faissfs binary (ctest -L integration does)}"
PYTHON=${PYTHON:-/usr/bin/python3}
IT_DIR=${IT_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
TEST_NAME=$(basename "$0" .sh)
export LC_ALL=C

if [ ! -x "$FAISSFS" ]; then
	echo "FAIL [$TEST_NAME]: FAISSFS=$FAISSFS is not an executable (build the faissfs target)" >&2
	exit 1
fi
# Without FUSE there is nothing to test here: exit 77, which ctest reports as skipped.
if [ ! -c /dev/fuse ] || ! command -v fusermount3 >/dev/null; then
	echo "SKIP [$TEST_NAME]: needs /dev/fuse and fusermount3 (package fuse3)"
	exit 77
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/faissfs-$TEST_NAME.XXXXXX")
_mounts=()  # every mountpoint this test tried to mount
_fg_pids=() # foreground daemons this test started
FG_PID=

say() { printf '== %s\n' "$*"; }
ok() { printf '   ok: %s\n' "$*"; }
skip() { printf '   SKIP: %s\n' "$*"; }
fail() {
	printf 'FAIL [%s]: %s\n' "$TEST_NAME" "$*" >&2
	exit 1
}

# True if $1 is a mountpoint in our mount namespace (works for dead FUSE mounts too).
is_mounted() {
	local p
	# mountinfo escapes a space as \040 (and awk -v would undo a backslash)
	p=$(realpath -m -- "$1" | sed 's/ /\\\\040/g')
	awk -v p="$p" '$5 == p { found = 1 } END { exit !found }' /proc/self/mountinfo
}

_cleanup() {
	local rc=$? i m p stuck=0
	set +e
	for ((i = ${#_mounts[@]} - 1; i >= 0; i--)); do
		m=${_mounts[i]}
		if is_mounted "$m"; then
			fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null
		fi
		if is_mounted "$m"; then
			echo "cleanup: $m is still mounted; leaving $T in place" >&2
			stuck=1
		fi
	done
	for p in "${_fg_pids[@]}"; do
		if kill -0 "$p" 2>/dev/null; then
			# Unmounted daemons exit by themselves; give them a moment, then stop them.
			timeout 10 tail --pid="$p" -f /dev/null 2>/dev/null
			kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
		fi
	done
	if [ "$stuck" = 0 ]; then
		chmod -R u+rwx "$T" 2>/dev/null
		rm -rf -- "$T"
	fi
	if [ "$rc" = 0 ]; then
		echo "PASS [$TEST_NAME]"
	else
		echo "FAIL [$TEST_NAME] (exit $rc)" >&2
	fi
	exit "$rc"
}
trap _cleanup EXIT
trap 'exit 130' INT TERM

# mount_daemon STORE MNT [args...]: `faissfs mount` in daemon mode, which returns
# only once the filesystem is mounted.
mount_daemon() {
	local store=$1 mnt=$2
	shift 2
	_mounts+=("$mnt")
	"$FAISSFS" mount "$store" "$mnt" "$@" || fail "faissfs mount $store $mnt $* failed"
	is_mounted "$mnt" || fail "faissfs mount returned 0 but $mnt is not mounted"
}

# mount_fg STORE MNT LOG [args...]: `faissfs mount -f` in the background, its stderr
# in LOG; waits for "ready" on the pipe given as -o ready_fd=3.  Sets FG_PID.
mount_fg() {
	local store=$1 mnt=$2 log=$3 fifo line=""
	shift 3
	fifo=$(mktemp -u "$T/ready.XXXXXX")
	mkfifo "$fifo"
	_mounts+=("$mnt")
	"$FAISSFS" mount -f "$store" "$mnt" -o ready_fd=3 "$@" 3>"$fifo" 2>"$log" &
	FG_PID=$!
	_fg_pids+=("$FG_PID")
	# EOF (the daemon died) or the 60 s safety limit ends the wait as well.
	read -r -t 60 line <"$fifo" || true
	rm -f -- "$fifo"
	if [ "$line" != ready ]; then
		sed 's/^/   daemon: /' "$log" >&2
		fail "faissfs mount -f $store $mnt did not report ready (got '$line')"
	fi
	is_mounted "$mnt" || fail "daemon said ready but $mnt is not mounted"
}

# unmount MNT [PID]: fusermount3 -u; with PID (a foreground daemon), also waits
# for it and requires exit status 0.
unmount() {
	local mnt=$1 pid=${2:-} st=0
	fusermount3 -u "$mnt" || fail "fusermount3 -u $mnt failed"
	if [ -n "$pid" ]; then
		wait "$pid" || st=$?
		[ "$st" = 0 ] || fail "the daemon of $mnt exited with status $st after unmount"
	fi
	! is_mounted "$mnt" || fail "$mnt still mounted after fusermount3 -u"
}

# listing DIR: one line per entry below DIR: path, type, size, mode; for regular
# files also the mtime in whole seconds.  Directory mtimes and "." are left out.
listing() {
	(cd "$1" && find . -mindepth 1 \( -type f -printf '%P %y %s %m %TY%Tm%Td%TH%TM%TS\n' \) -o \
		\( -printf '%P %y - %m\n' \)) | sed -E 's/([0-9]{14})\.[0-9]+$/\1/' | sort
}

# same_tree A B: the same entries (listing) and every regular file byte-identical.
same_tree() {
	local a=$1 b=$2 n=0 f
	if ! diff <(listing "$a") <(listing "$b") >"$T/listing.diff"; then
		sed 's/^/   /' "$T/listing.diff" >&2
		fail "$b does not list the same entries, sizes, modes and mtimes as $a"
	fi
	while IFS= read -r -d '' f; do
		cmp -- "$a/$f" "$b/$f" || fail "$b/$f differs from $a/$f"
		n=$((n + 1))
	done < <(cd "$a" && find . -type f -printf '%P\0')
	ok "$b: same entries as $a, $n files byte-identical (cmp)"
}

# tree_state DIR: a hash of names, types, sizes, modes, mtimes and contents of every
# entry below DIR (or "absent").  Used to prove that nothing was modified.
tree_state() {
	if [ ! -e "$1" ]; then
		echo absent
		return
	fi
	(
		cd "$1"
		# A mount's lock (.faissfs/lock, with its PID) is run-time state, not content.
		find . -path ./.faissfs/lock -prune -o -path ./.faissfs -printf '%p %y %m\n' -o \
			-printf '%p %y %s %m %T@ %l\n' | sort
		find . -path ./.faissfs/lock -prune -o -type f -print0 | sort -z |
			xargs -0 -r sha256sum
	) | sha256sum | cut -d' ' -f1
}

# refused DESC WANT_RC CMD...: CMD must fail with exit status WANT_RC ("any": any
# non-zero) and say something on stderr.
refused() {
	local desc=$1 want=$2 rc=0
	shift 2
	"$@" >"$T/out.txt" 2>"$T/err.txt" || rc=$?
	if [ "$rc" = 0 ]; then
		fail "$desc: '$*' succeeded, expected a refusal"
	fi
	if [ "$want" != any ] && [ "$rc" != "$want" ]; then
		sed 's/^/   stderr: /' "$T/err.txt" >&2
		fail "$desc: exit status $rc, expected $want"
	fi
	[ -s "$T/err.txt" ] || fail "$desc: exit status $rc but nothing on stderr"
	ok "$desc: exit $rc: $(head -n 3 "$T/err.txt" | tr '\n' ' ')"
}

# errno_read FILE OFFSET LEN: prints the errno name an open or pread of FILE fails
# with, or "OK <n>" with the number of bytes read.
errno_read() {
	"$PYTHON" - "$@" <<'PY'
import errno, os, sys
try:
    fd = os.open(sys.argv[1], os.O_RDONLY)
    n = len(os.pread(fd, int(sys.argv[3]), int(sys.argv[2])))
    print(f"OK {n}")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
PY
}

# make_mixed_file PATH SIZE SEED: a file of SIZE bytes mixing random bytes, zero runs
# and text, in pieces that do not line up with chunk edges; fixed for a SEED.
make_mixed_file() {
	"$PYTHON" - "$@" <<'PY'
import random, sys
path, size, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = random.Random(seed)
out = bytearray()
n = 0
while len(out) < size:
    kind = n % 3
    piece = r.randint(1000, 300000)
    if kind == 0:
        out += r.randbytes(piece)
    elif kind == 1:
        out += bytes(piece)
    else:
        line = b"vector %d tenant acme score %.6f\n"
        while piece > 0:
            s = line % (r.randint(0, 10**6), r.random())
            out += s
            piece -= len(s)
    n += 1
with open(path, "wb") as f:
    f.write(out[:size])
PY
}

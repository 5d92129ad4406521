#!/usr/bin/env bash
# test_corrupt_chunk.sh - one flipped bit in one stored chunk frame: reads touching
# that chunk fail with EIO (never wrong bytes), every other chunk reads correctly,
# and the daemon's log names the file and the chunk.
#
# Where the frame is: objects are [64-byte header][chunk 0 frame][chunk 1 frame]...
# (store/format.h), frames back to back, so chunk i's frame starts at
# 64 + the sum of the stored lengths of chunks 0..i-1, which `faissfs inspect
# --chunks --json` lists.  The test checks that a zstd frame magic is there before
# flipping a bit in the middle of the frame.
. "$(dirname "$0")/lib.sh"

CS=65536
src=$T/src
store=$T/store
mnt=$T/mnt
log=$T/daemon.log
mkdir -p "$src/acme/text_idx" "$src/acme/rand_idx" "$mnt"
seq 1 200000 >"$src/acme/text_idx/index.faiss"                  # zstd chunks
head -c $((8 * CS + 1234)) /dev/urandom >"$src/acme/rand_idx/index.faiss" # raw chunks
make_mixed_file "$src/acme/text_idx/vectors.json" 700000 3       # untouched

say "import with --chunk-size $CS"
"$FAISSFS" import "$src" "$store" --chunk-size $CS --no-progress >/dev/null ||
	fail "faissfs import failed"

# corrupt FILE INDEX: flips one bit in the middle of chunk INDEX's stored frame.
corrupt() {
	"$FAISSFS" inspect --chunks --json "$store/$1" >"$T/inspect.json" ||
		fail "faissfs inspect --chunks --json $1"
	"$PYTHON" - "$T/inspect.json" "$store/$1" "$2" <<'PY' || fail "could not corrupt $1 chunk $2"
import json, sys
info = json.load(open(sys.argv[1]))
path, idx = sys.argv[2], int(sys.argv[3])
table = info["chunk_table"]
frame = 64 + sum(c["stored"] for c in table[:idx])
stored = table[idx]["stored"]
with open(path, "r+b") as f:
    f.seek(frame)
    magic = f.read(4)
    if magic != b"\x28\xb5\x2f\xfd":
        sys.exit(f"no zstd frame magic at {frame} (found {magic.hex()})")
    at = frame + stored // 2
    f.seek(at)
    b = f.read(1)[0]
    f.seek(at)
    f.write(bytes([b ^ 0x10]))
print(f"   flipped bit 4 of byte {at} of {path}: chunk {idx} ({table[idx]['kind']}), "
      f"frame at {frame}, {stored} bytes stored")
PY
}

# range_check FILE OFF LEN: the bytes at [OFF, OFF+LEN) of the mount's FILE must
# read correctly (equal to the source's).  Prints "OK n" (all n bytes right),
# "SHORT n" (a short read of n right bytes), "WRONG BYTES ..." or the errno name.
range_check() {
	"$PYTHON" - "$mnt/$1" "$src/$1" "$2" "$3" <<'PY'
import errno, os, sys
m, s, off, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
want = os.pread(os.open(s, os.O_RDONLY), n, off)
try:
    got = os.pread(os.open(m, os.O_RDONLY), n, off)
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
    sys.exit(0)
if got == want:
    print(f"OK {len(got)}")
elif want.startswith(got):
    print(f"SHORT {len(got)}")
else:
    print(f"WRONG BYTES ({len(got)} read)")
PY
}

say "flip one bit in a compressed chunk and in a raw chunk"
corrupt acme/text_idx/index.faiss 4
corrupt acme/rand_idx/index.faiss 5

say "mount -f (ready_fd, log to a file)"
mount_fg "$store" "$mnt" "$log"

for spec in acme/text_idx/index.faiss:4 acme/rand_idx/index.faiss:5; do
	file=${spec%:*}
	idx=${spec#*:}
	size=$(stat -c %s "$src/$file")
	say "$file: chunk $idx is corrupt"

	r=$(range_check "$file" $((idx * CS)) $CS)
	[ "$r" = EIO ] || fail "pread of chunk $idx: $r (expected EIO)"
	r=$(range_check "$file" $((idx * CS + 100)) 1)
	[ "$r" = EIO ] || fail "1-byte pread inside chunk $idx: $r (expected EIO)"
	ok "pread of the chunk and of one byte inside it: EIO"

	if dd if="$mnt/$file" of=/dev/null bs=$CS skip="$idx" count=1 status=none 2>"$T/dd.err"; then
		fail "dd of chunk $idx succeeded"
	fi
	grep -q 'Input/output error' "$T/dd.err" || fail "dd: $(cat "$T/dd.err") (expected EIO)"
	ok "dd of the chunk fails: $(head -n 1 "$T/dd.err")"

	r=$(range_check "$file" $((idx * CS - 4096)) 8192)
	case $r in
	EIO) ok "a read spanning chunks $((idx - 1))-$idx: EIO" ;;
	"SHORT "*) [ "${r#SHORT }" -le 4096 ] || fail "spanning read: $r bytes, past chunk $idx"
		ok "a read spanning chunks $((idx - 1))-$idx: $r correct bytes, then the end" ;;
	*) fail "a read spanning chunks $((idx - 1))-$idx: $r (expected EIO or a short read)" ;;
	esac

	for other in 0 $((idx - 1)) $((idx + 1)); do
		r=$(range_check "$file" $((other * CS)) $CS)
		[ "${r%% *}" = OK ] || fail "chunk $other: $r"
	done
	r=$(range_check "$file" $((idx * CS - 10)) 10)
	[ "$r" = "OK 10" ] || fail "the last 10 bytes before chunk $idx: $r"
	ok "chunks 0, $((idx - 1)), $((idx + 1)) and the bytes just before chunk $idx read correctly"

	if cat "$mnt/$file" >"$T/cat.out" 2>"$T/cat.err"; then
		fail "cat of $file succeeded"
	fi
	got=$(stat -c %s "$T/cat.out")
	[ "$got" -le $((idx * CS)) ] || fail "cat returned $got bytes, past the corrupt chunk"
	cmp -n "$got" "$T/cat.out" "$src/$file" || fail "cat returned wrong bytes before failing"
	ok "cat fails after $got correct bytes: $(cat "$T/cat.err")"

	rc=0 # the subshell keeps bash's "Bus error" report out of the output
	(
		"$PYTHON" -c '
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
m = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
m[int(sys.argv[2])]' "$mnt/$file" $((idx * CS + 7))
		exit $?
	) 2>/dev/null || rc=$?
	[ "$rc" = 135 ] || fail "touching chunk $idx through mmap: exit $rc (expected SIGBUS, 135)"
	ok "touching the chunk through mmap raises SIGBUS"

	grep -F "$file" "$log" | grep -Eiq "chunk[^0-9]{0,3}$idx([^0-9]|$)" ||
		fail "the log has no line naming $file and chunk $idx"
	ok "log: $(grep -F "$file" "$log" | grep -Ei "chunk[^0-9]{0,3}$idx([^0-9]|$)" | head -n 1)"
done

say "untouched files still read correctly"
cmp "$src/acme/text_idx/vectors.json" "$mnt/acme/text_idx/vectors.json" ||
	fail "the untouched file differs"
ok "cmp of acme/text_idx/vectors.json"
unmount "$mnt" "$FG_PID"

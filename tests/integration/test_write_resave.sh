#!/usr/bin/env bash
# test_write_resave.sh - a re-save that changes little costs little: an IndexFlatL2
# of 40000 x 64 floats (10 MB) saved onto a -o rw mount and compacted, then grown by
# 1 % and saved again in full, once by write-to-temp + rename and once by
# faiss.write_index over the file itself (O_TRUNC).  The compactor copies the
# previous object's chunks whose bytes did not change (per-chunk XXH3) and compresses
# only the rest; the daemon logs how many, and the results are searched and compared.
. "$(dirname "$0")/lib.sh"

store=$T/store
mnt=$T/mnt
mkdir "$mnt"
"$FAISSFS" init "$store" >/dev/null || fail "faissfs init"
mount_fg "$store" "$mnt" "$T/daemon.log" -o rw

# wait_object FILE: until the store file FILE is an object with no compaction pending.
wait_object() {
	local deadline=$((SECONDS + 60))
	until "$FAISSFS" inspect "$1" 2>/dev/null | grep -q ': faissfs object$'; do
		[ "$SECONDS" -lt "$deadline" ] || fail "$1 still plain after 60 s"
		sleep 0.3
	done
}

cat >"$T/save.py" <<'PY'
import os, sys
import faiss
import numpy as np
mode, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = np.random.RandomState(3)
xb = rng.rand(40400, 64).astype("float32")
idx = faiss.IndexFlatL2(64)
idx.add(xb[:n])
if mode == "rename":
    faiss.write_index(idx, path + ".tmp")
    os.replace(path + ".tmp", path)
elif mode == "check":
    got = faiss.read_index(path)
    assert got.ntotal == n
    D, I = got.search(xb[:5], 1)
    assert (I[:, 0] == np.arange(5)).all()
else:
    faiss.write_index(idx, path)
PY
mkdir "$mnt/acme"
say "first save (40000 vectors) and its compaction"
"$PYTHON" "$T/save.py" plain "$mnt/acme/index.faiss" 40000 || fail "first save"
wait_object "$store/acme/index.faiss"
ok "compacted: $("$FAISSFS" inspect "$store/acme/index.faiss" | grep -m1 -i 'chunks' | sed 's/^ *//')"

# copied_after N: waits for the Nth "copied from the previous version" log line.
copied_after() {
	local deadline=$((SECONDS + 60))
	until [ "$(grep -c 'copied from the previous version' "$T/daemon.log")" -ge "$1" ]; do
		[ "$SECONDS" -lt "$deadline" ] || { tail -n 5 "$T/daemon.log" >&2; ls -la "$store/.faissfs/tmp" >&2; fail "no chunk reuse logged after 60 s"; }
		sleep 0.3
	done
	grep 'copied from the previous version' "$T/daemon.log" | sed -n "${1}p" |
		sed 's/.*compacted //'
}

say "re-save with 1 % more vectors: temp file + rename"
"$PYTHON" "$T/save.py" rename "$mnt/acme/index.faiss" 40400 || fail "re-save by rename"
line=$(copied_after 1)
copied=$(sed -E 's/.*: ([0-9]+) chunks copied.*/\1/' <<<"$line")
enc=$(sed -E 's/.*, ([0-9]+) compressed/\1/' <<<"$line")
[ "$copied" -ge $((4 * enc)) ] || fail "only $copied chunks copied, $enc compressed"
ok "$line"
wait_object "$store/acme/index.faiss"
"$PYTHON" "$T/save.py" check "$mnt/acme/index.faiss" 40400 || fail "search after re-save"

say "re-save in place (write_index over the file: O_TRUNC)"
"$PYTHON" "$T/save.py" plain "$mnt/acme/index.faiss" 40000 || fail "re-save in place"
line=$(copied_after 2)
copied=$(sed -E 's/.*: ([0-9]+) chunks copied.*/\1/' <<<"$line")
enc=$(sed -E 's/.*, ([0-9]+) compressed/\1/' <<<"$line")
[ "$copied" -ge $((4 * enc)) ] || fail "only $copied chunks copied, $enc compressed"
ok "$line"
wait_object "$store/acme/index.faiss"
unmount "$mnt" "$FG_PID"
mount_daemon "$store" "$mnt"
"$PYTHON" "$T/save.py" check "$mnt/acme/index.faiss" 40000 || fail "search after remount"
unmount "$mnt"
"$FAISSFS" verify "$store" >/dev/null || fail "faissfs verify"
ok "searches right after remount; faissfs verify"

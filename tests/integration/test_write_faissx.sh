#!/usr/bin/env bash
# test_write_faissx.sh - a FAISSx server's workflow on a -o rw mount: tenant and index
# directories made with mkdir, every index type saved with faiss.write_index straight
# onto the mount (both layouts, with their JSON files), an atomic replace by rename of
# a temp file, a delete; the compactor turns the written files into objects; after an
# unmount and a read-only remount, FAISS searches give the original results and every
# file is byte-identical to what was written.
. "$(dirname "$0")/lib.sh"

store=$T/store
mnt=$T/mnt
mkdir "$mnt"
"$FAISSFS" init "$store" >/dev/null || fail "faissfs init"

say "mount -o rw; gen_indices.py writes every index type onto the mount"
mount_fg "$store" "$mnt" "$T/daemon.log" -o rw
"$PYTHON" "$IT_DIR/gen_indices.py" "$mnt/gen" 2> >(grep -v 'WARNING clustering' >&2) |
	tail -n 1
nidx=$(wc -l <"$mnt/gen/ref/indices.txt")
[ "$nidx" -ge 26 ] || fail "only $nidx index files listed"
ok "$nidx index files written through the mount"
"$PYTHON" "$IT_DIR/check_faiss.py" "$mnt/gen/ref" "$mnt/gen/data" >"$T/py.out" || {
	cat "$T/py.out"
	fail "check_faiss.py on the rw mount, right after writing"
}
ok "read back at once: same search results"

say "atomic replace (write a temp file, rename over), JSON rewrite, delete"
"$PYTHON" - "$mnt/gen/data" <<'PY' || fail "replace/delete workflow"
import json, os, sys
import faiss
data = sys.argv[1]
import glob
d = glob.glob(os.path.join(data, "*", "flat_l2"))[0]
t0 = os.path.basename(os.path.dirname(d))
idx = faiss.read_index(os.path.join(d, "index.faiss"))
fd_old = open(os.path.join(d, "index.faiss"), "rb")  # open across the replace
old = fd_old.read()
fd_old.seek(0)
faiss.write_index(idx, os.path.join(d, "index.faiss.tmp"))
os.replace(os.path.join(d, "index.faiss.tmp"), os.path.join(d, "index.faiss"))
assert fd_old.read() == old, "an open reader lost the old bytes"
with open(os.path.join(d, "index.faiss"), "rb") as f:
    assert f.read() == old, "re-saved index differs"
meta = os.path.join(d, "metadata.json")
with open(meta + ".tmp", "w") as f:
    json.dump({"name": os.path.basename(d), "replaced": True}, f)
os.replace(meta + ".tmp", meta)
with open(meta) as f:
    assert json.load(f)["replaced"]
# A new index, then its deletion, as FAISSx's delete_index does.
g = os.path.join(data, t0, "gone")
os.makedirs(g)
faiss.write_index(idx, os.path.join(g, "index.faiss"))
for n in os.listdir(g):
    os.unlink(os.path.join(g, n))
os.rmdir(g)
assert not os.path.exists(g)
# Across tenants: rename an index directory to another tenant and back.
os.makedirs(os.path.join(data, "other"), exist_ok=True)
i0 = sorted(os.listdir(os.path.join(data, t0)))[0]
os.rename(os.path.join(data, t0, i0), os.path.join(data, "other", i0))
with open(os.path.join(data, "other", i0, "index.faiss"), "rb") as f:
    f.read(16)
os.rename(os.path.join(data, "other", i0), os.path.join(data, t0, i0))
with open(os.path.join(data, t0, i0, "index.faiss"), "rb") as f:
    f.read(16)
print("   replace, JSON rewrite, delete, cross-tenant rename: ok")
PY

say "snapshot through the mount; wait for the compactor"
cp -a "$mnt/gen" "$T/snap"
deadline=$((SECONDS + 90))
while :; do
	plain=0
	while IFS= read -r -d '' f; do
		if "$FAISSFS" inspect "$f" 2>/dev/null | grep -q 'plain file'; then
			plain=$((plain + 1))
		fi
	done < <(find "$store/gen" -type f -size +4k -print0)
	[ "$plain" = 0 ] && break
	[ "$SECONDS" -lt "$deadline" ] || fail "$plain files larger than 4 KiB still plain after 90 s"
	sleep 1
done
nobj=$(find "$store/gen" -type f -size +4k | wc -l)
ok "all $nobj files larger than 4 KiB are objects now"
same_tree "$T/snap" "$mnt/gen"
unmount "$mnt" "$FG_PID"

say "remount read-only: the same bytes and the same search results"
mount_daemon "$store" "$mnt"
same_tree "$T/snap" "$mnt/gen"
"$PYTHON" "$IT_DIR/check_faiss.py" "$mnt/gen/ref" "$mnt/gen/data" >"$T/py.out" || {
	cat "$T/py.out"
	fail "check_faiss.py after remount"
}
tail -n 1 "$T/py.out"
"$FAISSFS" verify "$store" >/dev/null || fail "faissfs verify after compaction"
ok "faissfs verify: every object sound"
unmount "$mnt"

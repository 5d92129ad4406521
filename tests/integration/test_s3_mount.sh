#!/usr/bin/env bash
# test_s3_mount.sh - a store pushed to a real Ceph cluster (S3 through radosgw) and
# served by two read-only daemons at once: the same bytes and the same FAISS search
# results as the local files (C API and Python, with and without IO_FLAG_MMAP); a
# re-push sends only the changed object and is seen by new opens while an open file
# keeps its version; the disk cache serves a restarted node; radosgw stopped
# mid-read gives EIO or right bytes, never wrong ones, and the mount recovers; wrong
# credentials and a missing bucket are refused clearly; a corrupt frame in the
# bucket is EIO.
. "$(dirname "$0")/lib.sh"
. "$IT_DIR/s3lib.sh"
: "${FAISS_CHECK:?set FAISS_CHECK to the faiss_check program}"

gen=$T/gen
data=$gen/data
ref=$gen/ref
store=$T/store
bucket=it-$$-$RANDOM
url=s3://$bucket/prod
s3o=endpoint=$FAISSFS_S3_ENDPOINT,cred_file=$FAISSFS_S3_CRED
mkdir "$T/m1" "$T/m2" "$T/m3" "$T/m4"

say "generate indices, import them, push to $url"
"$PYTHON" "$IT_DIR/gen_indices.py" "$gen" 2> >(grep -v 'WARNING clustering' >&2) | tail -n 1
nidx=$(wc -l <"$ref/indices.txt")
k=$(cat "$ref/k.txt")
"$FAISSFS" import "$data" "$store" --no-progress >/dev/null || fail "faissfs import failed"
refused "push to a bucket that does not exist" 1 \
	"$FAISSFS" push "$store" "$url" --endpoint "$FAISSFS_S3_ENDPOINT" \
	--cred-file "$FAISSFS_S3_CRED" --no-progress
grep -qi "bucket" "$T/err.txt" || fail "the refusal does not name the bucket"
"$FAISSFS" push "$store" "$url" --endpoint "$FAISSFS_S3_ENDPOINT" --cred-file "$FAISSFS_S3_CRED" \
	--create-bucket --no-progress >"$T/push1.out" || fail "faissfs push failed"
cat "$T/push1.out"
nfiles=$(cd "$data" && find . -type f | wc -l)
grep -q "generation 1, $nfiles files" "$T/push1.out" || fail "push 1 did not send $nfiles files"

say "two daemons serve the bucket at once"
mount_fg "$url" "$T/m1" "$T/m1.log" -o "$s3o,cache_dir=$T/c1,poll_interval=1"
pid1=$FG_PID
mount_fg "$url" "$T/m2" "$T/m2.log" -o "$s3o,cache_dir=$T/c2,poll_interval=0"
pid2=$FG_PID
same_tree "$data" "$T/m1"
same_tree "$data" "$T/m2"
refused "a write to a remote store" any touch "$T/m1/newfile"

say "FAISS through both mounts: C API on m1, Python on m2, plain and IO_FLAG_MMAP"
n=0
while read -r kind rel; do
	if [ "$kind" = b ]; then
		"$FAISS_CHECK" -b "$ref/bqueries.bin" "$k" "$data/$rel" "$T/m1/$rel" >"$T/fc.out" ||
			fail "faiss_check (binary) of $rel through m1"
	else
		"$FAISS_CHECK" "$ref/queries.fvecs" "$k" "$data/$rel" "$T/m1/$rel" >"$T/fc.out" ||
			fail "faiss_check of $rel through m1"
	fi
	n=$((n + $(grep -c '^faiss_check: ok' "$T/fc.out")))
done <"$ref/indices.txt"
[ "$n" = $((2 * nidx)) ] || fail "faiss_check: $n of $((2 * nidx)) loads matched"
ok "$n C API loads through m1 searched exactly like the local files"
"$PYTHON" "$IT_DIR/check_faiss.py" "$ref" "$T/m2" >"$T/py.out" || {
	cat "$T/py.out"
	fail "check_faiss.py through m2"
}
ok "Python loads through m2 match: $(tail -n 1 "$T/py.out")"

say "re-push after one index changed: only it is sent; new opens see it, open files do not"
victim=acme/flat_l2/index.faiss
other=globex/flat_ip/index.faiss
exec 7<"$T/m1/$victim" # held open across the change
cp -a "$data" "$T/data2"
# New content the bucket has never seen (content-named objects dedupe the rest).
"$PYTHON" -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[-1] ^= 0x5A; open(sys.argv[2], "wb").write(b)' \
	"$data/$other" "$T/data2/$victim"
"$FAISSFS" import "$T/data2" "$store" --no-progress >/dev/null || fail "re-import failed"
"$FAISSFS" push "$store" "$url" --endpoint "$FAISSFS_S3_ENDPOINT" --cred-file "$FAISSFS_S3_CRED" \
	--no-progress >"$T/push2.out" || fail "second push failed"
cat "$T/push2.out"
grep -q "generation 2, .* 1 objects uploaded" "$T/push2.out" ||
	fail "the re-push did not send exactly one object"
for _ in $(seq 100); do
	cmp -s "$T/m1/$victim" "$T/data2/$victim" && break
	sleep 0.1
done
cmp "$T/m1/$victim" "$T/data2/$victim" || fail "m1 does not serve the new version after 10 s"
ok "m1 serves generation 2 to a new open"
cmp <(cat <&7) "$data/$victim" || fail "the file held open changed under its reader"
exec 7<&-
ok "the open file kept reading generation 1"
cmp "$T/m2/$victim" "$data/$victim" || fail "m2 (poll_interval=0) changed version"
ok "m2, not polling, still serves generation 1"

say "a restarted node reads from its disk cache"
unmount "$T/m2" "$pid2"
mount_fg "$url" "$T/m2" "$T/m2b.log" -o "$s3o,cache_dir=$T/c2,poll_interval=0"
pid2=$FG_PID
cat "$T/m2/$other" >/dev/null
req=$(sed -n 's/^remote requests: *//p' "$T/m2/.faissfs/stats" | head -n 1)
hits=$(sed -n 's/^remote disk cache hits: *//p' "$T/m2/.faissfs/stats" | head -n 1)
[ -n "$hits" ] && [ "$hits" -gt 0 ] || fail "no disk cache hits after a restart (stats: $hits)"
ok "restarted m2: $hits frames from the disk cache, $req requests"
unmount "$T/m2" "$pid2"

say "radosgw stopped mid-read: EIO or right bytes, never wrong ones; then it recovers"
mount_fg "$url" "$T/m3" "$T/m3.log" \
	-o "$s3o,cache_dir=$T/c3,disk_cache_size=0,cache_size=1M,poll_interval=0"
pid3=$FG_PID
big=$(cd "$data" && find . -name index.faiss -printf '%s %P\n' | sort -n | tail -n 1 | cut -d' ' -f2)
$CEPH stop-rgw >/dev/null || fail "ceph-single-node.sh stop-rgw"
res=$(errno_read "$T/m3/$big" 0 1000000)
case $res in
EIO) ok "a read with radosgw down: EIO" ;;
OK*) cmp <(head -c 1000000 "$T/m3/$big") <(head -c 1000000 "$data/$big") ||
	fail "a read with radosgw down gave wrong bytes" ;;
*) fail "a read with radosgw down gave $res" ;;
esac
$CEPH start-rgw >/dev/null || fail "ceph-single-node.sh start-rgw"
cmp "$T/m3/$big" "$data/$big" || fail "after radosgw came back, $big reads wrong or fails"
ok "radosgw back: $big reads identical"
unmount "$T/m3" "$pid3"

say "wrong credentials, a missing bucket, nothing pushed: refused, saying which"
sed 's/^aws_secret_access_key *=.*/aws_secret_access_key = wrongwrongwrong/' "$FAISSFS_S3_CRED" \
	>"$T/bad.cred"
refused "wrong secret key" 1 "$FAISSFS" mount "$url" "$T/m4" \
	-o "endpoint=$FAISSFS_S3_ENDPOINT,cred_file=$T/bad.cred,cache_dir=$T/c4"
grep -qi "credential\|key" "$T/err.txt" || fail "the refusal does not mention the credentials"
refused "missing bucket" 1 "$FAISSFS" mount "s3://nosuch-$bucket" "$T/m4" -o "$s3o,cache_dir=$T/c4"
refused "nothing pushed there" 1 "$FAISSFS" mount "s3://$bucket/empty" "$T/m4" \
	-o "$s3o,cache_dir=$T/c4"
grep -q "faissfs push" "$T/err.txt" || fail "the refusal does not say to push first"
refused "unreachable endpoint" 1 "$FAISSFS" mount "$url" "$T/m4" \
	-o "endpoint=http://127.0.0.1:9,cred_file=$FAISSFS_S3_CRED,cache_dir=$T/c4"
! is_mounted "$T/m4" || fail "a refused mount left $T/m4 mounted"

say "a corrupt frame in the bucket: EIO, never wrong bytes; the other files read"
id=$(getfattr --only-values -n user.faissfs.id "$T/m1/$other")
[ -n "$id" ] || fail "cannot find the object identity of $other"
s3_get "$bucket" "prod/objects/$id" "$T/obj" || fail "cannot fetch object $id"
"$PYTHON" - "$T/obj" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[64 + 5000] ^= 0xFF  # inside chunk 0's frame (the header is 64 bytes)
open(p, "wb").write(b)
PY
s3_put "$bucket" "prod/objects/$id" "$T/obj" || fail "cannot plant the damaged object"
mount_fg "$url" "$T/m4" "$T/m4.log" -o "$s3o,cache_dir=$T/c5,poll_interval=0"
pid4=$FG_PID
[ "$(errno_read "$T/m4/$other" 0 4096)" = EIO ] || fail "a damaged frame did not give EIO"
grep -q "corrupt" "$T/m4.log" || fail "the daemon did not log the corrupt chunk"
cmp "$T/m4/acme/ivf_flat/index.faiss" "$data/acme/ivf_flat/index.faiss" ||
	fail "an intact file reads wrong next to a damaged one"
ok "EIO for the damaged chunk, logged; other files intact"
unmount "$T/m4" "$pid4"
unmount "$T/m1" "$pid1"

# s3lib.sh - for the tests of remote stores: sourced after lib.sh.  Uses the
# single-node Ceph cluster of scripts/ceph-single-node.sh: the one scripts/test.sh
# started (FAISSFS_CEPH_DIR set), or one of its own, stopped at exit.  No Ceph is
# a failure, never a skip: the tests are meant to run against the real thing.
CEPH=${IT_DIR}/../../scripts/ceph-single-node.sh
[ -x "$CEPH" ] || CEPH="bash $CEPH"
_own_ceph=
if [ -z "${FAISSFS_CEPH_DIR:-}" ] || ! $CEPH status >/dev/null 2>&1; then
	export FAISSFS_CEPH_DIR=$T/ceph
	export FAISSFS_CEPH_RGW_PORT=${FAISSFS_CEPH_RGW_PORT:-$((20000 + RANDOM % 20000))}
	_own_ceph=1
	say "starting a private single-node Ceph cluster in $FAISSFS_CEPH_DIR"
	$CEPH start >"$T/ceph-start.log" 2>&1 || {
		tail -n 30 "$T/ceph-start.log" >&2
		fail "scripts/ceph-single-node.sh start failed"
	}
fi
_s3_cleanup() {
	local rc=$? m p
	set +e
	# The daemons talk to radosgw: unmount them before the cluster goes.
	for m in "${_mounts[@]}"; do
		is_mounted "$m" && { fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m"; }
	done
	for p in "${_fg_pids[@]}"; do
		timeout 10 tail --pid="$p" -f /dev/null 2>/dev/null
	done
	if [ -n "$_own_ceph" ]; then
		$CEPH stop >/dev/null 2>&1
	fi
	(exit "$rc")
	_cleanup
}
trap _s3_cleanup EXIT
eval "$($CEPH env)"
: "${FAISSFS_S3_ENDPOINT:?ceph-single-node.sh env gave no endpoint}"
: "${FAISSFS_S3_CRED:?ceph-single-node.sh env gave no credentials file}"
S3_AK=$(sed -n 's/^aws_access_key_id *= *//p' "$FAISSFS_S3_CRED" | head -n 1)
S3_SK=$(sed -n 's/^aws_secret_access_key *= *//p' "$FAISSFS_S3_CRED" | head -n 1)

# s3_put BUCKET KEY FILE: a raw PUT (for planting damaged objects).
s3_put() {
	curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user "$S3_AK:$S3_SK" \
		-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -T "$3" \
		"$FAISSFS_S3_ENDPOINT/$1/$2" >/dev/null
}

# s3_get BUCKET KEY OUT
s3_get() {
	curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user "$S3_AK:$S3_SK" \
		-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -o "$3" "$FAISSFS_S3_ENDPOINT/$1/$2"
}

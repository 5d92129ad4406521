#!/usr/bin/env bash
# ceph-single-node.sh - a real single-node Ceph cluster (one mon, one mgr, one
# memstore OSD, radosgw with the beast frontend) on 127.0.0.1 only, started without
# systemd, for faissfs's remote-store tests and for users who want to try
# `faissfs push` / `faissfs mount s3://...` on one machine.
#
#     scripts/ceph-single-node.sh start|stop|status|env|mkbucket NAME|stop-rgw|start-rgw
#
#   start       start the cluster (idempotent), wait until radosgw answers, create
#               an S3 user; its keys go to $DIR/s3.cred (AWS credentials-file form)
#   stop        stop every daemon it started (by the PIDs it recorded) and remove $DIR
#   status      exit 0 if radosgw answers
#   env         print FAISSFS_S3_ENDPOINT=... and FAISSFS_S3_CRED=... (eval it)
#   mkbucket N  create the bucket N
#   stop-rgw, start-rgw   stop / start radosgw alone (an S3 endpoint going away)
#
# Environment: FAISSFS_CEPH_DIR (default /var/tmp/faissfs-ceph): all state, logs
# and PID files; FAISSFS_CEPH_RGW_PORT (default 7480), FAISSFS_CEPH_MON_PORT
# (default 6789 + a hash of the dir, so several clusters can run).  Needs root and
# the Debian packages ceph-mon ceph-mgr ceph-osd radosgw (scripts/install-deps.sh).
# The data lives in memory (memstore): a stopped cluster is gone.
set -euo pipefail

DIR=${FAISSFS_CEPH_DIR:-/var/tmp/faissfs-ceph}
RGW_PORT=${FAISSFS_CEPH_RGW_PORT:-7480}
MON_PORT=${FAISSFS_CEPH_MON_PORT:-$((6789 + $(printf '%s' "$DIR" | cksum | cut -d' ' -f1) % 1000))}
CONF=$DIR/ceph.conf
ENDPOINT=http://127.0.0.1:$RGW_PORT

die() {
	echo "ceph-single-node.sh: $*" >&2
	exit 1
}

usage() {
	sed -n '2,21s/^# \{0,1\}//p' "$0"
}

need() {
	for t in ceph-mon ceph-mgr ceph-osd radosgw ceph ceph-authtool radosgw-admin monmaptool curl; do
		command -v "$t" >/dev/null ||
			die "$t is missing: run scripts/install-deps.sh (packages ceph-mon ceph-mgr ceph-osd radosgw)"
	done
}

rgw_up() {
	curl -s -o /dev/null --max-time 2 "$ENDPOINT/" 2>/dev/null
}

# wait_for DESC SECONDS CMD...: polls CMD every 0.2 s.
wait_for() {
	local desc=$1 secs=$2 i
	shift 2
	for ((i = 0; i < secs * 5; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	die "$desc did not come up within $secs s (logs: $DIR/log/)"
}

start_rgw() {
	radosgw -c "$CONF" -n client.rgw.single --keyring "$DIR/rgw.keyring" \
		--pid-file "$DIR/run/rgw.pid" >>"$DIR/log/rgw.out" 2>&1
	wait_for "radosgw on $ENDPOINT" 60 rgw_up
}

stop_pidfile() {
	local f=$1 pid i
	[ -f "$f" ] || return 0
	pid=$(cat "$f")
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$f"
}

cmd_start() {
	need
	if [ -f "$DIR/s3.cred" ] && rgw_up; then
		echo "ceph-single-node.sh: already running at $ENDPOINT ($DIR)"
		return 0
	fi
	[ "$(id -u)" = 0 ] || die "needs root (it starts Ceph's daemons)"
	[ ! -e "$DIR" ] || cmd_stop >/dev/null 2>&1 || true
	mkdir -p "$DIR"/{mon,mgr,osd,log,run}
	local fsid t0=$SECONDS
	fsid=$(cat /proc/sys/kernel/random/uuid)
	cat >"$CONF" <<CONF
[global]
fsid = $fsid
mon host = 127.0.0.1:$MON_PORT
mon initial members = single
public network = 127.0.0.0/8
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon allow pool delete = true
osd crush chooseleaf type = 0
mon warn on pool no redundancy = false
osd objectstore = memstore
memstore device bytes = 2147483648
log file = $DIR/log/\$name.log
admin socket = $DIR/run/\$name.asok
run dir = $DIR/run
keyring = $DIR/\$name.keyring
ms bind ipv4 = true
ms bind ipv6 = false
ms bind msgr1 = false
ms bind msgr2 = true
[mon]
mon data = $DIR/mon/\$cluster-\$id
mon cluster log file = $DIR/log/mon-cluster.log
[mgr]
mgr data = $DIR/mgr/\$cluster-\$id
[osd]
osd data = $DIR/osd/\$cluster-\$id
osd max object name len = 256
osd max object namespace len = 64
[client.rgw.single]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw thread pool size = 64
rgw dns name = 127.0.0.1
log file = $DIR/log/rgw.log
CONF
	# Keys: mon., client.admin, the OSD's (before ceph-osd --mkfs), the gateway's.
	ceph-authtool --create-keyring "$DIR/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
	ceph-authtool --create-keyring "$DIR/client.admin.keyring" --gen-key -n client.admin \
		--cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
	ceph-authtool "$DIR/mon.keyring" --import-keyring "$DIR/client.admin.keyring" >/dev/null
	monmaptool --create --addv single "[v2:127.0.0.1:$MON_PORT]" --fsid "$fsid" "$DIR/monmap" >/dev/null
	ceph-mon -c "$CONF" --mkfs -i single --monmap "$DIR/monmap" --keyring "$DIR/mon.keyring" \
		>>"$DIR/log/setup.out" 2>&1
	ceph-mon -c "$CONF" -i single --pid-file "$DIR/run/mon.pid" >>"$DIR/log/mon.out" 2>&1
	local C="ceph -c $CONF -k $DIR/client.admin.keyring --connect-timeout 10"
	wait_for "ceph-mon" 30 $C mon stat
	mkdir -p "$DIR/mgr/ceph-single"
	$C auth get-or-create mgr.single mon 'allow profile mgr' osd 'allow *' mds 'allow *' \
		>"$DIR/mgr/ceph-single/keyring"
	ceph-mgr -c "$CONF" -i single -k "$DIR/mgr/ceph-single/keyring" \
		--pid-file "$DIR/run/mgr.pid" >>"$DIR/log/mgr.out" 2>&1
	local osd_uuid id
	osd_uuid=$(cat /proc/sys/kernel/random/uuid)
	id=$($C osd new "$osd_uuid")
	mkdir -p "$DIR/osd/ceph-$id"
	ceph-authtool --create-keyring "$DIR/osd/ceph-$id/keyring" --gen-key -n "osd.$id" >/dev/null
	$C auth add "osd.$id" osd 'allow *' mon 'allow profile osd' mgr 'allow profile osd' \
		-i "$DIR/osd/ceph-$id/keyring" >/dev/null 2>&1
	ceph-osd -c "$CONF" -i "$id" --mkfs --osd-uuid "$osd_uuid" -k "$DIR/osd/ceph-$id/keyring" \
		>>"$DIR/log/setup.out" 2>&1
	ceph-osd -c "$CONF" -i "$id" -k "$DIR/osd/ceph-$id/keyring" \
		--pid-file "$DIR/run/osd.pid" >>"$DIR/log/osd.out" 2>&1
	wait_for "ceph-osd.$id" 60 bash -c "$C osd stat | grep -q '1 up'"
	$C auth get-or-create client.rgw.single mon 'allow rw' osd 'allow rwx' \
		>"$DIR/rgw.keyring"
	start_rgw
	local out ak sk
	out=$(radosgw-admin -c "$CONF" -k "$DIR/client.admin.keyring" user create \
		--uid=faissfs --display-name=faissfs 2>>"$DIR/log/setup.out")
	ak=$(printf '%s' "$out" | sed -n 's/.*"access_key": "\([^"]*\)".*/\1/p' | head -n 1)
	sk=$(printf '%s' "$out" | sed -n 's/.*"secret_key": "\([^"]*\)".*/\1/p' | head -n 1)
	[ -n "$ak" ] && [ -n "$sk" ] || die "radosgw-admin user create gave no keys (see $DIR/log/setup.out)"
	umask 077
	printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "$ak" "$sk" \
		>"$DIR/s3.cred"
	echo "ceph-single-node.sh: ready at $ENDPOINT in $((SECONDS - t0)) s (state in $DIR;" \
		"credentials in $DIR/s3.cred)"
}

cmd_stop() {
	stop_pidfile "$DIR/run/rgw.pid"
	stop_pidfile "$DIR/run/osd.pid"
	stop_pidfile "$DIR/run/mgr.pid"
	stop_pidfile "$DIR/run/mon.pid"
	[ -f "$CONF" ] && rm -rf -- "$DIR"
	echo "ceph-single-node.sh: stopped"
}

cmd_env() {
	[ -f "$DIR/s3.cred" ] || die "no cluster in $DIR: run 'ceph-single-node.sh start' first"
	echo "FAISSFS_S3_ENDPOINT=$ENDPOINT"
	echo "FAISSFS_S3_CRED=$DIR/s3.cred"
}

cmd_mkbucket() {
	local name=$1 ak sk code
	[ -f "$DIR/s3.cred" ] || die "no cluster in $DIR: run 'ceph-single-node.sh start' first"
	ak=$(sed -n 's/^aws_access_key_id *= *//p' "$DIR/s3.cred")
	sk=$(sed -n 's/^aws_secret_access_key *= *//p' "$DIR/s3.cred")
	code=$(curl -s -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" \
		--user "$ak:$sk" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -X PUT "$ENDPOINT/$name")
	[ "$code" = 200 ] || [ "$code" = 409 ] || die "creating bucket $name: HTTP $code"
	echo "bucket $name"
}

case ${1:-} in
start) cmd_start ;;
stop) cmd_stop ;;
status) rgw_up && [ -f "$DIR/s3.cred" ] ;;
env) cmd_env ;;
mkbucket)
	[ $# -eq 2 ] || die "usage: ceph-single-node.sh mkbucket NAME"
	cmd_mkbucket "$2"
	;;
stop-rgw) stop_pidfile "$DIR/run/rgw.pid" ;;
start-rgw) start_rgw ;;
-h | --help | help) usage ;;
*)
	usage >&2
	exit 2
	;;
esac

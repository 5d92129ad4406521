#!/usr/bin/env bash
# test_systemd.sh - the template unit packaging/systemd/faissfs@.service.
#
# 1. `systemd-analyze verify` of an instance, offline: systemd is not PID 1 here,
#    so the check runs with --root on a scratch root holding this machine's
#    system units, the unit under test and the faissfs binary at /usr/bin.
#    verify exits 0 even on some parse errors, so its output must be empty too.
#    The fstab example of faissfs(1) goes through systemd-fstab-generator and
#    its .mount unit verifies too.
# 2. The unit's own ExecStart line, run as systemd would run it (instance and
#    environment substituted, NOTIFY_SOCKET set): READY=1 must come once the
#    filesystem is mounted, SIGTERM (systemd's stop) must unmount and exit 0
#    after STOPPING=1, and a failure must exit non-zero (so Restart=on-failure
#    applies) without READY=1.
# 3. The unit's hardening: the daemon runs under setpriv with only the unit's
#    CapabilityBoundingSet and no new privileges, and still mounts, serves a
#    store file only root may read, gives a file a user writes through the mount
#    that user as owner, and unmounts.  (The other options need systemd itself.)
. "$(dirname "$0")/lib.sh"

unit=$IT_DIR/../../packaging/systemd/faissfs@.service
[ -f "$unit" ] || fail "$unit is missing"

say "systemd-analyze verify (offline, scratch root)"
if ! command -v systemd-analyze >/dev/null || [ ! -d /lib/systemd/system ]; then
	skip "systemd-analyze or /lib/systemd/system missing (package systemd)"
else
	root=$T/root
	mkdir -p "$root/lib/systemd" "$root/usr/bin" "$root/bin"
	cp -a /lib/systemd/system "$root/lib/systemd/"
	cp "$unit" "$root/lib/systemd/system/"
	cp "$FAISSFS" "$root/usr/bin/faissfs"
	cp "$(command -v fusermount3)" "$root/bin/fusermount3"
	rc=0
	systemd-analyze verify --man=no --root="$root" faissfs@srv-faissx-data.service \
		>"$T/verify.txt" 2>&1 || rc=$?
	if [ "$rc" != 0 ] || [ -s "$T/verify.txt" ]; then
		sed 's/^/   verify: /' "$T/verify.txt" >&2
		fail "systemd-analyze verify: exit $rc, output above"
	fi
	ok "faissfs@srv-faissx-data.service verifies cleanly"

	say "the fstab line of faissfs(1) through systemd-fstab-generator"
	gen=/lib/systemd/system-generators/systemd-fstab-generator
	# the example line of the man page, as a user would copy it
	line=$(sed -n '/^\/srv\/faissfs\/store .*faissfs /{s/\\-/-/g;p;q}' \
		"$IT_DIR/../../packaging/man/faissfs.1")
	[ -n "$line" ] || fail "no fstab example line in faissfs(1)"
	if [ ! -x "$gen" ]; then
		skip "no $gen"
	else
		echo "$line" >"$T/fstab"
		mkdir -p "$T/gen"
		SYSTEMD_FSTAB=$T/fstab SYSTEMD_PROC_CMDLINE="" "$gen" "$T/gen" "$T/gen" "$T/gen" ||
			fail "systemd-fstab-generator failed on: $line"
		m=$T/gen/srv-faissx-data.mount
		[ -f "$m" ] || fail "the generator made no srv-faissx-data.mount from: $line"
		grep -qx 'Type=faissfs' "$m" || fail "generated unit: no Type=faissfs"
		grep -qx 'Before=faissx.service' "$m" || fail "generated unit: not Before=faissx.service"
		mkdir -p "$root/etc/systemd/system"
		cp "$m" "$root/etc/systemd/system/"
		systemd-analyze verify --man=no --root="$root" srv-faissx-data.mount \
			>"$T/verify.txt" 2>&1 || fail "verify of the mount unit: $(cat "$T/verify.txt")"
		[ ! -s "$T/verify.txt" ] || fail "verify of the mount unit: $(cat "$T/verify.txt")"
		ok "srv-faissx-data.mount: Type=faissfs, Before=faissx.service, verifies cleanly"
	fi
fi

grep -qx 'Type=notify' "$unit" || fail "the unit is not Type=notify"
grep -qx 'Restart=on-failure' "$unit" || fail "the unit does not restart on failure"
ok "Type=notify, Restart=on-failure"

src=$T/src
store=$T/store
mnt=$T/srv/faissx/data
mkdir -p "$src/acme/idx" "$mnt"
echo '{"name": "idx"}' >"$src/acme/idx/metadata.json"
"$FAISSFS" import "$src" "$store" --no-progress >/dev/null || fail "faissfs import failed"

# exec_start STORE MNT OPTIONS: the unit's ExecStart with %f, ${STORE} and
# $OPTIONS substituted, one word per line (the unit uses no quoting).
exec_start() {
	local line
	line=$(sed -n 's/^ExecStart=//p' "$unit")
	line=${line//%f/$2}
	line=${line//'${STORE}'/$1}
	line=${line//'$OPTIONS'/$3}
	line=${line//\/usr\/bin\/faissfs/$FAISSFS}
	printf '%s\n' $line
}

# run_notify MNT CMD...: runs CMD with NOTIFY_SOCKET; prints READY / MOUNTED /
# STOPPING / EXIT <status> lines as they happen; stops CMD with SIGTERM once ready.
run_notify() {
	"$PYTHON" - "$T/notify.sock" "$@" <<'PY'
import os, signal, socket, subprocess, sys
sock_path, mnt, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
if os.path.exists(sock_path):
    os.unlink(sock_path)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sock_path)
s.settimeout(0.2)
waited = 0.0
p = subprocess.Popen(cmd, env=dict(os.environ, NOTIFY_SOCKET=sock_path))
def mounted():
    with open("/proc/self/mountinfo") as f:
        return any(l.split()[4] == mnt for l in f)
ready = False
while True:
    try:
        msg = s.recv(4096).decode()
    except socket.timeout:
        waited += 0.2
        if p.poll() is not None:
            break
        if waited > 30:
            print("TIMEOUT"); p.kill(); break
        continue
    if "READY=1" in msg.split("\n"):
        print("READY"); ready = True
        print("MOUNTED" if mounted() else "NOT-MOUNTED")
        sys.stdout.flush()
        os.listdir(mnt)
        p.send_signal(signal.SIGTERM)
    if "STOPPING=1" in msg.split("\n"):
        print("STOPPING"); break
    if p.poll() is not None:
        break
rc = p.wait(timeout=30)
print("EXIT", rc)
print("STILL-MOUNTED" if mounted() else "UNMOUNTED")
PY
}

say "ExecStart under a notify socket: READY=1 when mounted, SIGTERM stops cleanly"
mapfile -t cmd < <(exec_start "$store" "$mnt" "-o cache_size=64M")
_mounts+=("$mnt")
out=$(run_notify "$mnt" "${cmd[@]}" 2>"$T/daemon.log" | tr '\n' ' ')
want="READY MOUNTED STOPPING EXIT 0 UNMOUNTED "
if [ "$out" != "$want" ]; then
	sed 's/^/   daemon: /' "$T/daemon.log" >&2
	fail "got '$out', expected '$want'"
fi
ok "$out"

say "a failing start exits non-zero without READY=1 (Restart=on-failure applies)"
mapfile -t cmd < <(exec_start "$src" "$mnt" "")
out=$(run_notify "$mnt" "${cmd[@]}" 2>"$T/daemon.log" | tr '\n' ' ')
case $out in
"EXIT 0 "* | *READY*) fail "a mount of a non-store: '$out'" ;;
"EXIT "*) ok "$out" ;;
*) fail "unexpected: '$out'" ;;
esac

say "the daemon with only the unit's CapabilityBoundingSet and NoNewPrivileges (setpriv)"
grep -qx 'NoNewPrivileges=yes' "$unit" || fail "the unit lacks NoNewPrivileges=yes"
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$unit")
[ -n "$caps" ] || fail "the unit has no CapabilityBoundingSet="
if ! command -v setpriv >/dev/null; then
	skip "setpriv missing (package util-linux)"
else
	bset=-all
	for c in $caps; do
		c=${c#CAP_}
		bset+=",+${c,,}"
	done
	cat >"$T/hardened" <<SH
#!/bin/sh
exec setpriv --no-new-privs --bounding-set $bset -- "$FAISSFS" "\$@"
SH
	chmod +x "$T/hardened"
	hs=$T/hstore
	mkdir -p "$T/hsrc/acme/idx" "$T/hmnt"
	head -c 200000 /dev/urandom >"$T/hsrc/acme/idx/index.faiss"
	"$FAISSFS" import "$T/hsrc" "$hs" --no-progress >/dev/null || fail "import failed"
	chmod 0600 "$hs/acme/idx/index.faiss"
	chown nobody:nogroup "$hs/acme/idx/index.faiss"
	chmod 0777 "$hs/acme/idx"
	chmod 0755 "$T" # nobody walks to the mount
	FAISSFS=$T/hardened mount_fg "$hs" "$T/hmnt" "$T/hdaemon.log" -o allow_other
	hpid=$FG_PID
	grep -q "^CapBnd:" "/proc/$hpid/status" || fail "no CapBnd for the daemon"
	cmp -s "$T/hmnt/acme/idx/index.faiss" "$T/hsrc/acme/idx/index.faiss" ||
		fail "the hardened daemon does not serve a file only its owner may read"
	setpriv --reuid=nobody --regid=nogroup --clear-groups sh -c "echo hi >'$T/hmnt/acme/idx/by-nobody.json'" ||
		fail "nobody cannot write through the hardened mount"
	[ "$(stat -c %U "$hs/acme/idx/by-nobody.json")" = nobody ] ||
		fail "a file nobody wrote is owned by $(stat -c %U "$hs/acme/idx/by-nobody.json") in the store"
	setpriv --reuid=nobody --regid=nogroup --clear-groups ln -s by-nobody.json "$T/hmnt/acme/idx/sl" ||
		fail "nobody cannot make a symlink through the hardened mount"
	[ "$(stat -c %U "$hs/acme/idx/sl")" = nobody ] || fail "nobody's symlink is not nobody's"
	mknod "$T/hmnt/acme/idx/null" c 1 3 || fail "root cannot make a device node through it"
	[ -c "$hs/acme/idx/null" ] || fail "the device node is not in the store"
	unmount "$T/hmnt" "$hpid"
	ok "bounding set {$caps}, no new privileges: mounts, reads, chowns, makes nodes, unmounts"
fi

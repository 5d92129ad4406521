#!/usr/bin/env bash
# test_edges.sh - bad situations at the edges, on real mounts:
#  - a store on a read-only filesystem (a read-only bind mount) mounts read-only, with a
#    warning (the mount is writable by default), and serves;
#  - a store used by two daemons: the second refuses, naming the first's PID (lock);
#  - a mountpoint that is already a faissfs mount is refused;
#  - the store directory renamed under a running mount: still served (fds, not paths);
#  - the store directory removed under a running mount: EIO and a log line, no crash.
. "$(dirname "$0")/lib.sh"

src=$T/src
store=$T/store
mkdir -p "$src/acme/idx" "$T/m1" "$T/m2" "$T/m3"
make_mixed_file "$src/acme/idx/index.faiss" 700000 11
echo '{"name": "idx"}' >"$src/acme/idx/metadata.json"
"$FAISSFS" import "$src" "$store" --chunk-size 16K --no-progress >/dev/null ||
	fail "faissfs import failed"

say "two daemons on one store: the second refuses and names the first"
mount_fg "$store" "$T/m1" "$T/d1.log"
pid1=$FG_PID
[ "$(tr -d '\n' <"$store/.faissfs/lock")" = "$pid1" ] ||
	fail ".faissfs/lock holds '$(cat "$store/.faissfs/lock")', not the daemon's PID $pid1"
ok ".faissfs/lock holds the daemon's PID $pid1"
refused "second daemon on the same store" 1 "$FAISSFS" mount -f "$store" "$T/m2"
grep -q "PID $pid1" "$T/err.txt" || fail "the refusal does not name PID $pid1"
! is_mounted "$T/m2" || fail "the second daemon mounted"
ok "the refusal names PID $pid1"

say "a mountpoint that is already a faissfs mount is refused"
cp -a "$src" "$T/src2"
"$FAISSFS" import "$T/src2" "$T/store2" --no-progress >/dev/null || fail "import of store2"
refused "mount over a faissfs mount" 1 "$FAISSFS" mount -f "$T/store2" "$T/m1"
cmp "$src/acme/idx/index.faiss" "$T/m1/acme/idx/index.faiss" || fail "first mount disturbed"
ok "the first mount still serves the right bytes"
unmount "$T/m1" "$pid1"

say "daemon mode: the lock names the daemon (after the fork), not the parent"
mount_daemon "$store" "$T/m1"
dpid=$(tr -d '\n' <"$store/.faissfs/lock")
[ -n "$dpid" ] && kill -0 "$dpid" 2>/dev/null || fail "lock PID '$dpid' is not a live process"
grep -q faissfs "/proc/$dpid/cmdline" || fail "lock PID $dpid is not a faissfs process"
ok "lock PID $dpid is the running daemon"
fusermount3 -u "$T/m1"
timeout 10 tail --pid="$dpid" -f /dev/null || fail "daemon $dpid did not exit after unmount"
mount_fg "$store" "$T/m1" "$T/d1b.log"
unmount "$T/m1" "$FG_PID"
ok "the lock is free again once the daemon exits"

say "a store on a read-only filesystem"
mkdir -p "$T/ro"
mount --bind "$store" "$T/ro" || { skip "cannot bind-mount (not root?)"; exit 0; }
_mounts+=("$T/ro")
mount -o remount,bind,ro "$T/ro" || fail "cannot make the bind mount read-only"
touch "$T/ro/x" 2>/dev/null && fail "the bind mount is writable"
mount_fg "$T/ro" "$T/m3" "$T/d3.log"
pid3=$FG_PID
cmp "$src/acme/idx/index.faiss" "$T/m3/acme/idx/index.faiss" || fail "bytes differ (ro store)"
ok "a read-only store mounts and serves the right bytes"
grep -q "read-only filesystem: mounting read-only" "$T/d3.log" ||
	fail "no warning about the read-only store in the log: $(cat "$T/d3.log")"
case ",$(findmnt -n -o OPTIONS --mountpoint "$T/m3")," in
*,ro,*) ;;
*) fail "the mount of a read-only store is not ro: $(findmnt -n -o OPTIONS --mountpoint "$T/m3")" ;;
esac
if : 2>"$T/w.err" >"$T/m3/acme/new-file"; then fail "created a file on a read-only store"; fi
grep -q 'Read-only file system' "$T/w.err" || fail "create on the ro store: $(cat "$T/w.err")"
ok "served read-only (EROFS); logged: $(grep -m1 -o 'the store is on a read-only.*' "$T/d3.log")"
refused "second daemon on the read-only store" 1 "$FAISSFS" mount -f "$T/ro" "$T/m2"
grep -q "PID $pid3" "$T/err.txt" || fail "the refusal does not name the read-only daemon, PID $pid3"
unmount "$T/m3" "$pid3"
umount "$T/ro" || fail "cannot unmount the bind mount"

say "the store directory renamed under a running mount: still served"
mount_fg "$store" "$T/m1" "$T/d4.log"
pid4=$FG_PID
mv "$store" "$T/store.moved"
cmp "$src/acme/idx/index.faiss" "$T/m1/acme/idx/index.faiss" || fail "bytes differ after rename"
ok "a renamed store keeps serving (the daemon holds directory fds, not paths)"

say "the store directory removed under a running mount: EIO, a log line, no crash"
rm -rf "$T/store.moved"
got=$(errno_read "$T/m1/acme/idx/metadata.json" 0 100)
[ "$got" = EIO ] || fail "reading a file of a removed store gave $got, expected EIO"
got=$(errno_read "$T/m1/acme/new_name" 0 1)
[ "$got" = EIO ] || fail "looking up a name in a removed store gave $got, expected EIO"
kill -0 "$pid4" || fail "the daemon died when its store was removed"
grep -q "store directory was removed" "$T/d4.log" || fail "no log line about the removed store"
ok "EIO, daemon alive, logged: $(grep -m1 'store directory was removed' "$T/d4.log")"
unmount "$T/m1" "$pid4"

#!/bin/bash
# 72-firewall: installer/ipt.c, nft.c and fw.c against the sandbox's own
# legacy x_tables and nftables.  A fake VM (network namespace "vm", veth
# into br0, 192.168.4.24 = inside the VM block .24-.31) and a fake LAN host
# ("lan", 192.168.4.5, outside the block) talk to listeners on the host
# (the sandbox): tcp 8080 (Guardian's web UI), tcp 8091 (the console) and
# dnsmasq on br0:53.  Checked:
#   - ipt: iptables-legacy-save equals tests/data/installer/ipt/applied.save
#     after apply, again after a second apply, empty.save after remove; the
#     VM cannot connect to 8080 but gets DNS answers, the LAN host still
#     connects; a held /run/xtables.lock is waited for, within a bound;
#   - nft, with tests/data/installer/guardian.nft loaded (input policy
#     drop): 8091 unreachable from br0 before, reachable after apply; a
#     second apply leaves one rule; remove gives back the loaded ruleset;
#     without Guardian's table nothing is done;
#   - fw: apply does both, remove undoes both.
# The steps run through the unit runner (GVM_FW_STEP, see
# tests/unit/test_firewall.c).  Run it alone with:
#   sudo tests/sandbox.sh -- tests/e2e/72-firewall.sh
set -u
top=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ -z "${GVM_SANDBOX:-}" ]; then
	exec "$top/tests/sandbox.sh" -- "$0" "$@"
fi
build=${BUILD:-build/$(uname -m)}
case $build in /*) ;; *) build=$top/$build ;; esac
unit=$build/unit-tests
data=${TESTDATA:-$top/tests/data}/installer
[ -x "$unit" ] || { echo "SKIP: $unit not built (make check-unit)"; exit 77; }
for t in nft iptables-legacy-save dnsmasq busybox; do
	command -v $t >/dev/null || { echo "SKIP: $t missing (sudo make deps)"; exit 77; }
done
py=/usr/bin/python3

fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
not() { ! "$@"; }
check() { # check DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}

tmp=$(mktemp -d)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	ip netns del vm 2>/dev/null
	ip netns del lan 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

# step NAME [EXPECT]: one firewall step through the unit runner.
step() {
	local out
	if out=$(GVM_FW_STEP=$1 GVM_FW_EXPECT=${2:-done} CK_RUN_SUITE=firewall \
		TESTDATA=${data%/installer} "$unit" 2>&1) &&
		grep -q '^100%: Checks: 5, Failures: 0, Errors: 0' <<<"$out"; then
		return 0
	fi
	printf '    %s\n' "${out//$'\n'/$'\n'    }"
	return 1
}
ipt_save() { iptables-legacy-save -t filter | grep -v '^#' | sed -E 's/\[[0-9]+:[0-9]+\]/[0:0]/'; }
same_as() { diff -u "$1" <(ipt_save); }
# tcp NS ADDR PORT: does a TCP connection open within 2 s?
tcp() { ip netns exec "$1" $py -c 'import socket,sys
socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()' "$2" "$3" 2>/dev/null; }
dns() { ip netns exec "$1" timeout 5 busybox nslookup guardian.local 192.168.4.1 2>&1 | grep -q 'Address.*192\.168\.4\.1$'; }
# hold_lock SECONDS [EVENTS]: one process holding iptables' lock (killing
# it frees it).  With EVENTS, it also writes "open MS" / "close MS" lines
# (CLOCK_MONOTONIC) as other programs open and close the lock file (inotify):
# how long a contender tried, without its own start-up and exit.
hold_lock() { exec $py -c 'import ctypes,fcntl,os,select,struct,sys,time
f = open("/run/xtables.lock", "w"); fcntl.flock(f, fcntl.LOCK_EX)
end = time.monotonic() + float(sys.argv[1])
if len(sys.argv) < 3:
    time.sleep(float(sys.argv[1])); sys.exit(0)
libc = ctypes.CDLL(None, use_errno=True)
ino = libc.inotify_init()
IN_OPEN, IN_CLOSE_NOWRITE = 0x20, 0x10
if ino < 0 or libc.inotify_add_watch(ino, b"/run/xtables.lock",
                                     IN_OPEN | IN_CLOSE_NOWRITE) < 0:
    sys.exit("inotify: " + os.strerror(ctypes.get_errno()))
out = open(sys.argv[2], "w", buffering=1)
while time.monotonic() < end:
    if not select.select([ino], [], [], end - time.monotonic())[0]:
        break
    buf, now = os.read(ino, 4096), time.monotonic_ns() // 1000000
    while buf:
        _, mask, _, n = struct.unpack("iIII", buf[:16])
        buf = buf[16 + n:]
        if mask & IN_OPEN: out.write("open %d\n" % now)
        if mask & IN_CLOSE_NOWRITE: out.write("close %d\n" % now)' "$@"; }
nft_rules() { nft -a list chain inet guardian input | grep -c 'comment "guardian-vms console"'; }

# --- network: br0 on the host, a VM in the block, a LAN host outside it
ip link add br0 type bridge
ip addr add 192.168.4.1/27 dev br0
ip link set br0 up
n=0
for ns in vm:192.168.4.24 lan:192.168.4.5; do
	name=${ns%%:*} addr=${ns#*:} n=$((n + 1))
	ip netns add "$name"
	ip link add "gvm-$name" type veth peer name lan0 netns "$name"
	ip link set "gvm-$name" master br0 up
	ip -n "$name" addr add "$addr/27" dev lan0
	ip -n "$name" link set lan0 up
	ip -n "$name" link set lo up
done
# Bridge ports need a moment to forward (no STP: immediately, but the
# veth carrier comes up asynchronously).
for _ in $(seq 50); do
	ip netns exec vm ping -c1 -W1 192.168.4.1 >/dev/null 2>&1 && break
	sleep 0.1
done

for port in 8080 8091; do
	$py -c 'import socket,sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(16)
while True: s.accept()[0].close()' "$port" &
	pids+=($!)
done
dnsmasq -k --conf-file=/dev/null --interface=br0 --bind-interfaces --port=53 \
	--no-resolv --no-hosts --address=/guardian.local/192.168.4.1 \
	--pid-file="$tmp/dnsmasq.pid" --user=root 2>"$tmp/dnsmasq.log" &
pids+=($!)
for _ in $(seq 50); do tcp vm 192.168.4.1 8080 && dns vm && break; sleep 0.1; done

# --- legacy chain (ipt.c)
iptables-legacy -t filter -S >/dev/null # loads the table: the "empty" state
check "filter table starts empty" same_as "$data/ipt/empty.save"
check "before apply: VM reaches 8080" tcp vm 192.168.4.1 8080
check "ipt_apply" step ipt_apply
check "after apply: golden applied.save" same_as "$data/ipt/applied.save"
check "ipt_apply again" step ipt_apply
check "second apply: still applied.save" same_as "$data/ipt/applied.save"
check "VM cannot connect to 8080" not tcp vm 192.168.4.1 8080
check "VM gets DNS answers from br0:53" dns vm
check "LAN host (outside the block) still reaches 8080" tcp lan 192.168.4.1 8080

hold_lock 1 &
lockpid=$!
sleep 0.2
t0=$(date +%s%N)
check "apply waits for a lock held 1 s" step ipt_apply
t1=$(date +%s%N)
wait $lockpid
ms=$(((t1 - t0) / 1000000))
check "... and did wait ($ms ms)" [ "$ms" -ge 500 ]
# held until killed: the bound (ipt.c's backoff, 5.1 s of sleeps) is what
# ends the wait; timed from the lock file's open to its close in the step
# (inotify, see hold_lock), so the unit runner's start-up and exit, slow
# under sanitizers and load, do not count
hold_lock 600 "$tmp/lock.events" &
lockpid=$!
for _ in $(seq 50); do [ -e "$tmp/lock.events" ] && break; sleep 0.1; done
refused() { local out; out=$(step ipt_apply) && return 1; grep -q 'xtables.lock: held by another program' <<<"$out"; }
check "apply gives up on a lock held longer than its bound" refused
waited=$(awk '$1 == "open" && !o { o = $2 } $1 == "close" && o { print $2 - o; exit }' "$tmp/lock.events")
in_range() { [ -n "$1" ] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }
check "... after about 5 s (${waited:-?} ms from opening the lock file to closing it)" \
	in_range "$waited" 5000 8000
kill $lockpid 2>/dev/null
wait $lockpid 2>/dev/null
check "... leaving the chain as it was" same_as "$data/ipt/applied.save"

check "ipt_remove" step ipt_remove
check "after remove: empty.save" same_as "$data/ipt/empty.save"
check "ipt_remove again (nothing to do)" step ipt_remove
check "after remove: VM reaches 8080 again" tcp vm 192.168.4.1 8080

# --- console rule (nft.c) with a Guardian-shaped ruleset
check "no Guardian table: nft_apply does nothing" step nft_apply no-guardian
check "... and the ruleset stays empty" [ -z "$(nft list ruleset)" ]
check "no Guardian table: nft_remove does nothing" step nft_remove no-guardian
nft -f "$data/guardian.nft"
nft list ruleset >"$tmp/guardian.before"
check "Guardian ruleset: 8080 open from br0" tcp vm 192.168.4.1 8080
check "before apply: console 8091 dropped from br0" not tcp vm 192.168.4.1 8091
check "nft_apply" step nft_apply
check "after apply: console 8091 reachable from br0" tcp vm 192.168.4.1 8091
check "nft_apply again: unchanged" step nft_apply unchanged
check "exactly one console rule" [ "$(nft_rules)" = 1 ]
check "nft_remove" step nft_remove
check "after remove: ruleset identical to the loaded one" diff -u "$tmp/guardian.before" <(nft list ruleset)
check "nft_remove again: unchanged" step nft_remove unchanged
check "after remove: console 8091 dropped again" not tcp vm 192.168.4.1 8091

# --- both (fw.c), as guardian-vm-setup --apply-firewall does
check "fw_apply" step fw_apply
check "fw: golden applied.save" same_as "$data/ipt/applied.save"
check "fw: one console rule" [ "$(nft_rules)" = 1 ]
check "fw: VM reaches the console 8091" tcp vm 192.168.4.1 8091
check "fw: VM cannot connect to 8080" not tcp vm 192.168.4.1 8080
check "fw: VM gets DNS answers" dns vm
check "fw_apply again" step fw_apply
check "fw: still one console rule" [ "$(nft_rules)" = 1 ]
check "fw_remove" step fw_remove
check "fw: legacy table empty again" same_as "$data/ipt/empty.save"
check "fw: ruleset identical to the loaded one" diff -u "$tmp/guardian.before" <(nft list ruleset)

[ $fails = 0 ] || { echo "72-firewall: $fails failed"; exit 1; }
echo "72-firewall: all passed"

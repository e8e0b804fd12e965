#!/bin/bash
# 96-faults-libvirtd (issue 9.4): libvirtd SIGKILLed and restarted, twice,
# under load.  wrk (50 connections, TCP + bearer token) and a curl loop on
# the Unix socket hammer GET /api/vms the whole time; the sandbox's libvirtd
# is SIGKILLed, left dead for a few seconds, and started again the way
# tests/sandbox.sh starts it (libvirtd -d -p /run/libvirtd.pid).  Checks:
#   - while libvirtd is gone vmmod answers 503 libvirtd_down, fast (every
#     request of the loop answered, none slower than 3 s, no wrk timeout);
#   - it reconnects by itself (no request to it, no restart) within 30 s,
#     the reconnect counter in /metrics says so;
#   - the running VM is still running with the same QEMU process (QEMU
#     survives libvirtd's death) and the defined ones are all listed;
#   - actions work again after the reconnect (force-stop, start);
#   - vmmod never died (same PID from start to end), its fds are back.
# Writes RELIABILITY rows to $REPORT_DIR/reliability.txt (tools/reliability.sh).
# Run it alone with:  sudo tests/sandbox.sh -- tests/e2e/96-faults-libvirtd.sh
set -u
top=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ -z "${GVM_SANDBOX:-}" ]; then
	exec "$top/tests/sandbox.sh" -- "$0" "$@"
fi
build=${BUILD:-build/$(uname -m)}
case $build in /*) ;; *) build=$top/$build ;; esac
vmmod=$build/vmmod
for t in curl jq virsh wrk libvirtd; do
	command -v $t >/dev/null || { echo "SKIP: no $t"; exit 77; }
done
[ -x "$vmmod" ] || { echo "FAIL: no $vmmod (make first)"; exit 1; }
me=96-faults-libvirtd

fails=0 rfails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
check() { # check MESSAGE COMMAND...
	local m=$1
	shift
	if "$@"; then ok "$m"; else bad "$m"; fi
}
# rel KIND FAULT WHAT-HAPPENED: one row of docs/RELIABILITY.md; its result
# is FAIL when a check failed since the previous row
rel() {
	local res=ok
	[ "$fails" != "$rfails" ] && res=FAIL
	rfails=$fails
	[ -n "${REPORT_DIR:-}" ] &&
		printf 'RELIABILITY|%s|%s|%s|%s|%s\n' "$1" "$2" "$3" "$me" "$res" >>"$REPORT_DIR/reliability.txt"
	return 0
}

d=$(mktemp -d /tmp/gvm-e2e-flv.XXXXXX)
vmmod_pid="" loop_pid="" wrk_pid=""
cleanup() {
	[ -n "$wrk_pid" ] && kill "$wrk_pid" 2>/dev/null
	[ -n "$loop_pid" ] && kill "$loop_pid" 2>/dev/null
	[ -n "$vmmod_pid" ] && kill "$vmmod_pid" 2>/dev/null && wait "$vmmod_pid" 2>/dev/null
	for n in $(virsh list --all --name 2>/dev/null); do
		virsh -q destroy "$n" >/dev/null 2>&1
		virsh -q undefine "$n" >/dev/null 2>&1
	done
	if [ "$fails" != 0 ] && [ -f "$d/vmmod.log" ]; then
		echo "--- vmmod log (last 30 lines)"
		tail -30 "$d/vmmod.log"
	fi
	rm -rf "$d"
}
trap cleanup EXIT

# ------------------------------------------------------------ domains
nvms=4
for i in $(seq $nvms); do
	cat >"$d/dom.xml" <<XML
<domain type='qemu'>
  <name>gvm-flv-$i</name>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices><serial type='pty'/><console type='pty'/><memballoon model='none'/></devices>
</domain>
XML
	virsh -q define "$d/dom.xml" >/dev/null || { echo "FAIL: virsh define gvm-flv-$i"; exit 1; }
done
virsh -q start gvm-flv-1 >/dev/null || { echo "FAIL: virsh start gvm-flv-1"; exit 1; }
qemu_pid() { # the QEMU PID of running domain $1 (libvirt's pid file: ID-NAME.pid)
	local f p
	for f in /run/libvirt/qemu/*"-$1.pid" "/run/libvirt/qemu/$1.pid"; do
		p=""
		[ -f "$f" ] || continue
		read -r p 2>/dev/null <"$f"
		[ -n "$p" ] && kill -0 "$p" 2>/dev/null && { echo "$p"; return; }
	done
}
qpid0=$(qemu_pid gvm-flv-1)

# ------------------------------------------------------------ vmmod
port=18096
mkdir -p "$d/resv"
cat >"$d/vmmod.conf" <<EOF
socket_group =
audit_log = $d/audit.log
lease_file = $d/leases
reservations_dir = $d/resv
max_conns = 256
max_conns_per_ip = 128
EOF
"$vmmod" -f "$d/vmmod.conf" --uri qemu:///system --accel tcg \
	--socket "$d/vmmod.sock" --listen "127.0.0.1:$port" \
	--token-file "$d/token" --data-dir "$d" >"$d/vmmod.log" 2>&1 &
vmmod_pid=$!
S=(--unix-socket "$d/vmmod.sock")
status() { curl -sS -f --max-time 5 "${S[@]}" http://vmmod/api/vms/status 2>/dev/null; }
# status_is JQ-EXPR: vmmod answered GET /api/vms/status and EXPR holds for it
status_is() {
	local s
	s=$(status) && [ -n "$s" ] && jq -e "$1" <<<"$s" >/dev/null 2>&1
}
up=0
for _ in $(seq 200); do
	status_is ".libvirtd_running and .vm_count == $nvms" && { up=1; break; }
	sleep 0.1
done
check "vmmod up with $nvms VMs" [ $up = 1 ]
[ $up = 1 ] || { status; exit 1; }
tok=$(cat "$d/token")
nfds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }
fd0=$(nfds "$vmmod_pid")

# ------------------------------------------------------------ load
# The loop: GET /api/vms on the socket; per request "HTTP-status code
# seconds curl-exit" (code: the error body's code, "-" for a 200).
loop() {
	local st t rc c
	while [ ! -e "$d/stop" ]; do
		st=$(curl -sS --max-time 10 "${S[@]}" -o "$d/loop.out" \
			-w '%{http_code} %{time_total}' http://vmmod/api/vms 2>/dev/null)
		rc=$?
		c=-
		[ "${st%% *}" != 200 ] && c=$(jq -r '.code // "-"' "$d/loop.out" 2>/dev/null)
		echo "${st%% *} ${c:--} ${st#* } $rc" >>"$d/loop.txt"
		sleep 0.02
	done
}
: >"$d/loop.txt"
loop &
loop_pid=$!
wrk -t2 -c50 -d60s --timeout 5s -H "Authorization: Bearer $tok" \
	"http://127.0.0.1:$port/api/vms" >"$d/wrk.txt" 2>&1 &
wrk_pid=$!
sleep 3

restart_libvirtd() {
	libvirtd -d -f /etc/libvirt/libvirtd.conf -p /run/libvirtd.pid || return 1
	for _ in $(seq 150); do
		virsh -q list >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	return 1
}
reconnect_s=()
for cycle in 1 2; do
	read -r lpid </run/libvirtd.pid
	n0=$(wc -l <"$d/loop.txt")
	kill -KILL "$lpid"
	for _ in $(seq 50); do kill -0 "$lpid" 2>/dev/null || break; sleep 0.1; done
	check "cycle $cycle: libvirtd ($lpid) SIGKILLed" eval "! kill -0 $lpid 2>/dev/null"
	sleep 4
	# while it is gone: the loop's answers since the kill
	down=$(tail -n +"$((n0 + 1))" "$d/loop.txt" | awk '$1 == 503 && $2 == "libvirtd_down"' | wc -l)
	check "cycle $cycle: while libvirtd is dead GET /api/vms answers 503 libvirtd_down ($down times)" \
		[ "$down" -gt 0 ]
	check "cycle $cycle: /api/vms/status still 200, libvirtd_running false" \
		status_is '.libvirtd_running == false' 
	t0=${EPOCHREALTIME/[.,]/}
	check "cycle $cycle: libvirtd restarted (as tests/sandbox.sh starts it)" restart_libvirtd
	up=0
	for _ in $(seq 300); do
		status_is ".libvirtd_running and .vm_count == $nvms" && { up=1; break; }
		sleep 0.1
	done
	t=$(((${EPOCHREALTIME/[.,]/} - t0) / 1000))
	reconnect_s+=("$t")
	check "cycle $cycle: vmmod reconnected by itself, all $nvms VMs listed (${t} ms after the restart)" [ $up = 1 ]
	sleep 2
done
touch "$d/stop"
wait "$loop_pid"
loop_pid=""
wait "$wrk_pid"
wrk_pid=""

n=$(wc -l <"$d/loop.txt")
n200=$(awk '$1 == 200' "$d/loop.txt" | wc -l)
n503=$(awk '$1 == 503 && $2 == "libvirtd_down"' "$d/loop.txt" | wc -l)
nother=$(awk '!($1 == 200 || ($1 == 503 && $2 == "libvirtd_down")) || $4 != 0' "$d/loop.txt" | wc -l)
maxt=$(awk 'BEGIN { m = 0 } $3 > m { m = $3 } END { printf "%.3f", m }' "$d/loop.txt")
check "curl loop: $n requests, $n200 x 200, $n503 x 503 libvirtd_down, $nother others or failures" \
	test "$nother" = 0 -a "$n503" -gt 0
awk '!($1 == 200 || ($1 == 503 && $2 == "libvirtd_down")) || $4 != 0' "$d/loop.txt" | head -5 | sed 's/^/     /'
check "curl loop: slowest answer ${maxt} s < 3 s (never hangs)" awk "BEGIN { exit !($maxt < 3) }"
wreqs=$(awk '/requests in/ { print $1 }' "$d/wrk.txt")
wnon2xx=$(awk '/Non-2xx/ { print $NF }' "$d/wrk.txt")
wsock=$(grep 'Socket errors' "$d/wrk.txt" | sed 's/^ *//')
echo "     wrk: ${wreqs:-?} requests, ${wnon2xx:-0} non-2xx (the 503s), ${wsock:-no socket errors}"
check "wrk: answers (${wreqs:-0}), no connect/read/write errors or timeouts" \
	eval "[ '${wreqs:-0}' -gt 0 ] && ! grep -q 'Socket errors' '$d/wrk.txt'"
rel fault "libvirtd SIGKILLed twice under load (wrk 50 conns + curl loop on GET /api/vms)" \
	"vmmod answered every request: ${n503} of ${n} loop requests 503 libvirtd_down while libvirtd was dead, the rest 200; slowest ${maxt} s; wrk ${wreqs:-?} requests, no socket error or timeout"

m=$(curl -sS --max-time 5 "${S[@]}" http://vmmod/metrics | awk '/^vmmod_libvirt_reconnects_total/ { print $2 }')
check "metrics: vmmod_libvirt_reconnects_total = 2 (${m:-none})" [ "${m:-0}" = 2 ]
rel fault "libvirtd restarted after SIGKILL" \
	"vmmod reconnected by itself, ${reconnect_s[0]:-?} ms and ${reconnect_s[1]:-?} ms after libvirtd came back; reconnect counter ${m:-?}"

# ------------------------------------------------------------ VMs intact
qpid1=$(qemu_pid gvm-flv-1)
check "running VM still running after two libvirtd deaths" eval "virsh domstate gvm-flv-1 | grep -qx running"
check "…with the same QEMU process (pid ${qpid0:-?} = ${qpid1:-?})" test -n "$qpid0" -a "$qpid0" = "${qpid1:-x}"
curl -sS -f --max-time 5 "${S[@]}" http://vmmod/api/vms >"$d/vms.json"
listed() { [ -s "$d/vms.json" ] && jq -e "$1" "$d/vms.json" >/dev/null; }
check "vmmod lists all $nvms VMs, gvm-flv-1 running" \
	listed "(.vms | length == $nvms) and (.vms[] | select(.name == \"gvm-flv-1\") | .state == \"running\")"
act() { # act VM ACTION -> HTTP status
	curl -sS --max-time 30 "${S[@]}" -o /dev/null -w '%{http_code}' -X POST \
		-H 'Content-Type: application/json' --data-binary '{}' "http://vmmod/api/vms/$1/$2"
}
check "after the reconnect: force-stop gvm-flv-1 -> 200" [ "$(act gvm-flv-1 force-stop)" = 200 ]
check "after the reconnect: start gvm-flv-2 -> 200" [ "$(act gvm-flv-2 start)" = 200 ]
ev=0
for _ in $(seq 100); do
	st=$(curl -sS -f --max-time 5 "${S[@]}" http://vmmod/api/vms/gvm-flv-2 2>/dev/null) &&
		jq -e '.state == "running"' <<<"$st" >/dev/null 2>&1 && { ev=1; break; }
	sleep 0.1
done
check "events flow again: vmmod sees gvm-flv-2 running" [ $ev = 1 ]
check "vmmod never died (pid $vmmod_pid)" kill -0 "$vmmod_pid"
# a connection the load left half-open is closed by vmmod's connection
# timeout (conn_timeout_s, 30 s by default) at the latest: wait that long
fd1=$fd0
for _ in $(seq 350); do
	fd1=$(nfds "$vmmod_pid")
	[ "$fd1" -le "$fd0" ] && break
	sleep 0.1
done
check "open fds back to the baseline ($fd1 <= $fd0)" [ "$fd1" -le "$fd0" ]
[ "$fd1" -le "$fd0" ] || ls -l "/proc/$vmmod_pid/fd" | sed 's/^/     /'
rel fault "VMs across libvirtd death" \
	"the running VM kept its QEMU process, all $nvms VMs listed after the reconnect, start/force-stop and events work again; vmmod never restarted, fds ${fd0} -> ${fd1}"

[ $fails = 0 ] && echo "$me: all checks passed"
[ $fails = 0 ]

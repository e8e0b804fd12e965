#!/bin/bash
# Load (issue 9.3), loopback only and bounded in time, in the sandbox:
#  1. wrk, LOAD_S seconds (default 60) at 200 connections on GET /api/vms
#     over TCP with the bearer token, while a mixed start / force-stop /
#     list loop runs on the Unix socket: zero socket errors, zero non-2xx
#     answers from wrk, every action of the loop answered 200;
#  2. after the run: RSS within 1 MB of the warmed-up baseline (10 s of the
#     same load first, so the event ring and caches are full; both figures
#     taken after vmmod's quiet-tick malloc_trim, so malloc's free pages
#     are not counted and what is left is memory in use), open fds back to
#     what they were before any load;
#  3. the per-IP connection limit holds: with max_conns_per_ip = 8, eight
#     idle connections from 127.0.0.1 make the ninth get closed unanswered,
#     while 127.0.0.2 is still served; freed slots are usable again;
#  4. 100 SSE subscribers all receive every event of a start/stop cycle.
# Run it alone with:  sudo tests/sandbox.sh -- tests/e2e/95-load.sh
# (LOAD_S=10 for a quick run.)
set -u
top=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ -z "${GVM_SANDBOX:-}" ]; then
	exec "$top/tests/sandbox.sh" -- "$0" "$@"
fi
build=${BUILD:-build/$(uname -m)}
case $build in /*) ;; *) build=$top/$build ;; esac
vmmod=$build/vmmod
for t in curl jq virsh wrk python3; do
	command -v $t >/dev/null || { echo "SKIP: no $t"; exit 77; }
done
[ -x "$vmmod" ] || { echo "FAIL: no $vmmod (make first)"; exit 1; }
load_s=${LOAD_S:-60}
# ASan makes vmmod several times slower and bigger: the load still runs
# (errors and fds are checked) but the RSS bound is a plain build's.
san=0
nm -D "$vmmod" 2>/dev/null | grep -q __asan_init && san=1

fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
check() { # check MESSAGE COMMAND...
	local m=$1
	shift
	if "$@"; then ok "$m"; else bad "$m"; fi
}
# rel KIND CASE WHAT-HAPPENED: a docs/RELIABILITY.md row (tools/reliability.sh);
# FAIL when a check failed since the previous row
rfails=0
rel() {
	local res=ok
	[ "$fails" != "$rfails" ] && res=FAIL
	rfails=$fails
	[ -z "${REPORT_DIR:-}" ] ||
		printf 'RELIABILITY|%s|%s|%s|95-load|%s\n' "$1" "$2" "$3" "$res" >>"$REPORT_DIR/reliability.txt"
}
d=$(mktemp -d /tmp/gvm-e2e-load.XXXXXX)
pids=() sse_pids=()
vmmod_pid="" lim_pid="" mix_pid=""
stop_pid() { # PID: TERM, wait up to 10 s, then KILL; only our own children
	local p=$1
	[ -n "$p" ] || return 0
	kill "$p" 2>/dev/null || return 0
	for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$p" 2>/dev/null
	wait "$p" 2>/dev/null
	return 0
}
cleanup() {
	local p
	for p in "${sse_pids[@]}"; do kill "$p" 2>/dev/null; done
	stop_pid "$mix_pid"
	stop_pid "$lim_pid"
	stop_pid "$vmmod_pid"
	if [ "$fails" != 0 ] && [ -f "$d/vmmod.log" ]; then
		echo "--- vmmod log (last 30 lines)"
		tail -30 "$d/vmmod.log"
	fi
	rm -rf "$d"
}
trap cleanup EXIT

# ------------------------------------------------------------ domains
nvms=10
for i in $(seq -f '%02g' 1 $nvms); do
	cat >"$d/dom.xml" <<XML
<domain type='qemu'>
  <name>gvm-load-$i</name>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices><serial type='pty'/><console type='pty'/><memballoon model='none'/></devices>
</domain>
XML
	virsh -q define "$d/dom.xml" >/dev/null || { echo "FAIL: virsh define gvm-load-$i"; exit 1; }
done

# ------------------------------------------------------------ vmmod
start_vmmod() { # NAME PORT PER_IP: starts vmmod, sets $started_pid
	local n=$1 port=$2 per_ip=$3 st
	mkdir -p "$d/$n/resv"
	cat >"$d/$n/vmmod.conf" <<EOF
socket_group =
socket_mode = 0660
audit_log = $d/$n/audit.log
lease_file = $d/$n/leases
reservations_dir = $d/$n/resv
max_conns = 512
max_conns_per_ip = $per_ip
EOF
	"$vmmod" -f "$d/$n/vmmod.conf" --uri qemu:///system --accel tcg \
		--socket "$d/$n/vmmod.sock" --listen "127.0.0.1:$port" \
		--token-file "$d/$n/token" --data-dir "$d/$n" >"$d/$n.log" 2>&1 &
	started_pid=$!
	for _ in $(seq 300); do
		# (jq 1.6 -e passes on empty input: the answer must not be empty)
		st=$(curl -sS --max-time 5 --unix-socket "$d/$n/vmmod.sock" http://vmmod/api/vms/status 2>/dev/null) &&
			[ -n "$st" ] && jq -e ".libvirtd_running and .vm_count == $nvms" <<<"$st" >/dev/null 2>&1 && return 0
		kill -0 "$started_pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
port=18095
start_vmmod main $port 256 || { bad "vmmod did not come up"; exit 1; }
vmmod_pid=$started_pid
ln -sf "$d/main.log" "$d/vmmod.log"
ok "vmmod up with $nvms VMs (max_conns 512, max_conns_per_ip 256)"
tok=$(cat "$d/main/token")
S=(--unix-socket "$d/main/vmmod.sock")

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
nfds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }
wrk_run() { # SECONDS OUT
	wrk -t2 -c200 -d"$1s" --timeout 10s --latency -H "Authorization: Bearer $tok" \
		"http://127.0.0.1:$port/api/vms" >"$2" 2>&1
}

# ------------------------------------------------------------ 1. load

# The mixed loop: start, list, force-stop on three VMs in turn over the
# socket, each answer's status recorded, until the file "stop" appears.
mixed() {
	local i=0 vm st
	while [ ! -e "$d/stop" ]; do
		vm=gvm-load-0$((i % 3 + 1))
		for a in start list force-stop; do
			if [ $a = list ]; then
				st=$(curl -sS --max-time 30 "${S[@]}" -o /dev/null -w '%{http_code}' http://vmmod/api/vms)
			else
				st=$(curl -sS --max-time 30 "${S[@]}" -o "$d/mix.out" -w '%{http_code}' \
					-X POST -H 'Content-Type: application/json' --data-binary '{}' \
					"http://vmmod/api/vms/$vm/$a")
			fi
			echo "$a $vm $st" >>"$d/mixed.txt"
		done
		i=$((i + 1))
	done
}
# fds before any load; RSS after a 10 s warm-up of the same mix, so that
# malloc's arenas and the event ring are grown before the baseline
fd0=$(nfds "$vmmod_pid")
: >"$d/mixed.txt"
mixed &
mix_pid=$!
wrk_run 10 "$d/warm.txt" || bad "wrk warm-up failed: $(tail -3 "$d/warm.txt")"
touch "$d/stop"
wait "$mix_pid"
# vmmod hands freed memory back (malloc_trim) on its first quiet 5 s tick
# after a burst: both RSS figures are taken after one
sleep 11
rss0=$(rss_kb "$vmmod_pid")
echo "     baseline after a warm-up and a quiet tick: RSS ${rss0} kB, ${fd0} fds before any load"
rm -f "$d/stop"
mixed &
mix_pid=$!
wrk_run "$load_s" "$d/wrk.txt"
wrc=$?
touch "$d/stop"
wait "$mix_pid"
mix_pid=""
reqs=$(awk '/requests in/ { print $1 }' "$d/wrk.txt")
rps=$(awk '/^Requests\/sec:/ { print $2 }' "$d/wrk.txt")
p99=$(awk '$1 == "99%" { print $2 }' "$d/wrk.txt")
echo "     wrk ${load_s}s x 200 conns: ${reqs:-?} requests, ${rps:-?}/s, p99 ${p99:-?}"
check "wrk ran (exit $wrc) and got answers" test "$wrc" = 0 -a "${reqs:-0}" -gt 0
nogrep() { ! grep -q "$@"; }
check "no socket errors under load" nogrep 'Socket errors' "$d/wrk.txt"
check "no non-2xx answers under load" nogrep 'Non-2xx' "$d/wrk.txt"
grep -E 'Socket errors|Non-2xx' "$d/wrk.txt" | sed 's/^/     /'
nmix=$(wc -l <"$d/mixed.txt")
nbad=$(awk '$3 != 200' "$d/mixed.txt" | wc -l)
check "mixed start/list/force-stop during the load: $nmix calls, $nbad not 200" \
	test "$nmix" -ge 9 -a "$nbad" = 0
awk '$3 != 200' "$d/mixed.txt" | head -5 | sed 's/^/     /'
rel load "wrk ${load_s} s x 200 connections on GET /api/vms (TCP, token) + a start/list/force-stop loop on the socket" \
	"${reqs:-?} requests (${rps:-?}/s, p99 ${p99:-?}), no socket error, no non-2xx; the loop's $nmix calls all 200"
for i in 1 2 3; do virsh -q destroy "gvm-load-0$i" >/dev/null 2>&1; done

# ------------------------------------------------------------ 2. after
fd1=$fd0
for _ in $(seq 100); do
	fd1=$(nfds "$vmmod_pid")
	[ "$fd1" -le "$fd0" ] && break
	sleep 0.1
done
sleep 11
rss1=$(rss_kb "$vmmod_pid")
echo "     after the run: RSS ${rss1} kB ($((rss1 - rss0)) kB), ${fd1} fds"
check "open fds back to the baseline ($fd1 <= $fd0)" [ "$fd1" -le "$fd0" ]
if [ $san = 1 ]; then
	echo "     (sanitizer build: RSS bound not checked)"
else
	check "RSS growth $((rss1 - rss0)) kB < 1024 kB" [ $((rss1 - rss0)) -lt 1024 ]
fi
check "vmmod still answers" curl -sS --max-time 10 "${S[@]}" -o /dev/null -f http://vmmod/api/vms
rel load "memory and fds after that load" \
	"RSS $((rss1 - rss0)) kB over the warmed-up baseline ($([ $san = 1 ] && echo 'not bounded: sanitizer build' || echo 'bound 1024 kB')), fds $fd1 (before any load: $fd0)"

# ------------------------------------------------------------ 3. per-IP limit
lport=18096
if start_vmmod lim $lport 8; then
	lim_pid=$started_pid
	python3 - "$lport" "$(cat "$d/lim/token")" >"$d/limit.txt" 2>&1 <<'PY'
import socket, sys, time
port, tok = int(sys.argv[1]), sys.argv[2]
req = ("GET /api/vms/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
       "Connection: close\r\n\r\n" % tok).encode()

def ask(src):
    """The status line of one request from src, or '' if closed unanswered."""
    s = socket.socket()
    s.settimeout(10)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    try:
        s.sendall(req)
        data = s.recv(64)
    except OSError:
        data = b""
    s.close()
    return data.split(b"\r\n")[0].decode(errors="replace")

held = []
for _ in range(8):
    s = socket.socket()
    s.connect(("127.0.0.1", port))
    held.append(s)
time.sleep(0.5)
print("ninth-from-127.0.0.1", ask("127.0.0.1") or "closed")
print("from-127.0.0.2", ask("127.0.0.2") or "closed")
for s in held:
    s.close()
time.sleep(0.5)
print("after-release", ask("127.0.0.1") or "closed")
PY
	sed 's/^/     /' "$d/limit.txt"
	check "per-IP limit: the 9th connection from 127.0.0.1 is closed unanswered" \
		grep -qx 'ninth-from-127.0.0.1 closed' "$d/limit.txt"
	check "per-IP limit: 127.0.0.2 is still served meanwhile" \
		grep -qx 'from-127.0.0.2 HTTP/1.1 200 OK' "$d/limit.txt"
	check "per-IP limit: freed slots are usable again" \
		grep -qx 'after-release HTTP/1.1 200 OK' "$d/limit.txt"
	rel load "per-IP connection limit (max_conns_per_ip 8): 8 idle connections from 127.0.0.1" \
		"the 9th from 127.0.0.1: $(sed -n 's/^ninth-from-127.0.0.1 //p' "$d/limit.txt"); 127.0.0.2 meanwhile: $(sed -n 's/^from-127.0.0.2 //p' "$d/limit.txt"); after release: $(sed -n 's/^after-release //p' "$d/limit.txt")"
	stop_pid "$lim_pid"
	lim_pid=""
else
	bad "the second vmmod (max_conns_per_ip 8) did not come up: $(tail -3 "$d/lim.log")"
fi

# ------------------------------------------------------------ 4. 100 SSE
nsse=100
for i in $(seq $nsse); do
	curl -sS -N --max-time 120 "${S[@]}" http://vmmod/api/events >"$d/sse.$i" 2>/dev/null &
	sse_pids+=($!)
done
for _ in $(seq 200); do
	n=$(grep -l '^retry: ' "$d"/sse.* 2>/dev/null | wc -l)
	[ "$n" = $nsse ] && break
	sleep 0.1
done
check "$nsse SSE subscribers connected ($n)" [ "$n" = $nsse ]
vm=gvm-load-10
cycles=3
for c in $(seq $cycles); do
	for a in start force-stop; do
		st=$(curl -sS --max-time 30 "${S[@]}" -o /dev/null -w '%{http_code}' -X POST \
			-H 'Content-Type: application/json' --data-binary '{}' "http://vmmod/api/vms/$vm/$a")
		[ "$st" = 200 ] || bad "cycle $c: $a answered $st"
		want=running
		[ $a = force-stop ] && want=shutoff
		for _ in $(seq 100); do
			[ "$(virsh domstate $vm 2>/dev/null | head -1)" = "${want/shutoff/shut off}" ] && break
			sleep 0.1
		done
	done
done
# the running/shutoff states of $vm a subscriber saw, in order (other
# transitions would be events too; only these are asked for)
states() { grep -A1 '^event: vm$' "$1" | sed -n 's/^data: //p' |
	jq -r --arg vm "$vm" 'select(.name == $vm and (.state == "running" or .state == "shutoff")) | .state' \
		2>/dev/null | tr '\n' ' '; }
want=""
for c in $(seq $cycles); do want+="running shutoff "; done
declare -A sse_ok=()
end=$((SECONDS + 60))
while :; do
	for i in $(seq $nsse); do
		[ -n "${sse_ok[$i]:-}" ] && continue
		[ "$(states "$d/sse.$i")" = "$want" ] && sse_ok[$i]=1
	done
	got_all=${#sse_ok[@]}
	[ "$got_all" = $nsse ] || [ $SECONDS -ge $end ] && break
	sleep 0.5
done
check "all $nsse SSE subscribers got every event of $cycles start/stop cycles ($got_all/$nsse)" \
	[ $got_all = $nsse ]
for i in $(seq $nsse); do
	[ -n "${sse_ok[$i]:-}" ] && continue
	echo "     subscriber $i saw: $(states "$d/sse.$i")(want: $want)"
	break
done
rel load "$nsse SSE subscribers during $cycles start/stop cycles" "$got_all of $nsse received every running/shutoff event in order"
for p in "${sse_pids[@]}"; do kill "$p" 2>/dev/null; done
for p in "${sse_pids[@]}"; do wait "$p" 2>/dev/null; done
sse_pids=()
check "vmmod still running after the load" kill -0 "$vmmod_pid"

for i in $(seq -f '%02g' 1 $nvms); do
	virsh -q destroy "gvm-load-$i" >/dev/null 2>&1
	virsh -q undefine "gvm-load-$i" >/dev/null 2>&1
done
if [ $fails = 0 ]; then echo "95-load: all checks passed"; fi
[ $fails = 0 ]

#!/bin/bash
# 98-faults-console (issue 9.4): a guest flooding its serial console.  The
# x86_64 test appliance (direct kernel boot, TCG) runs `yes` in its console
# shell for FLOOD_S seconds (default 40) while two viewers are connected
# through vmmod's websocket (98-faults-console.py): A reads everything, B
# has a 4 kB receive buffer and never reads.  Meanwhile:
#   - vmmod's RSS is sampled every second: growth stays under 48 MB (one
#     slow viewer may hold its send queue, console_queue_kb = 1024 here,
#     then vmmod closes it with 1008, which the client checks);
#   - wrk (4 connections) measures GET /api/vms during the flood: no
#     errors, p99 under 500 ms (generous: 2 cores, TCG guest at full tilt);
#   - viewer A gets output in every second (B does not block it), and
#     after Ctrl-C its input reaches the guest's shell;
#   - vmmod never dies; after the flood its fds are back.
# Writes RELIABILITY rows to $REPORT_DIR/reliability.txt (tools/reliability.sh).
# Run it alone with:  sudo tests/sandbox.sh -- tests/e2e/98-faults-console.sh
set -u
top=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ -z "${GVM_SANDBOX:-}" ]; then
	exec "$top/tests/sandbox.sh" -- "$0" "$@"
fi
. "$top/tests/e2e/lib/console.sh" # vmmod, boot_appliance, spawn_vmmod, rel, ...
flood_s=${FLOOD_S:-40}
need_tools curl virsh wrk jq
need_websocket
need_appliance
need_vmmod
me=98-faults-console
san=0
nm -D "$vmmod" 2>/dev/null | grep -q __asan_init && san=1

console_dir fcon
port=18098
vm=gvm-flood
rss_pid=""
cleanup() {
	[ -n "$rss_pid" ] && kill "$rss_pid" 2>/dev/null
	console_cleanup
}
trap cleanup EXIT

# serial console only (no VNC)
boot_appliance --no-vnc $vm
console_conf "web_root = $d/no-web" "console_queue_kb = 1024"
spawn_vmmod --data-dir "$d"
check "vmmod answers on 127.0.0.1:$port" vmmod_up
check "vmmod has $vm running" vm_running $vm
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
nfds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }
rss0=$(rss_kb "$vmmod_pid")
fd0=$(nfds "$vmmod_pid")
echo "     vmmod before: RSS $rss0 kB, $fd0 fds"

# RSS every second while the client runs
( while kill -0 "$vmmod_pid" 2>/dev/null; do rss_kb "$vmmod_pid" >>"$d/rss.txt"; sleep 1; done ) &
rss_pid=$!
$py "$top/tests/e2e/98-faults-console.py" "http://127.0.0.1:$port" "$token" $vm "$flood_s" "$d/flood.json" \
	>"$d/client.txt" 2>&1 &
cli_pid=$!
# wrk once the flood runs (the client prints the shell check first)
for _ in $(seq 1500); do grep -q 'viewer B connected' "$d/client.txt" && break; sleep 0.1; done
sleep 3
wrk -t1 -c4 -d"$((flood_s - 8))s" --timeout 5s --latency -H "Authorization: Bearer $token" \
	"http://127.0.0.1:$port/api/vms" >"$d/wrk.txt" 2>&1
wrc=$?
wait "$cli_pid"
crc=$?
kill "$rss_pid" 2>/dev/null
wait "$rss_pid" 2>/dev/null
rss_pid=""
sed 's/^/  /' "$d/client.txt"
[ "$crc" = 0 ] || bad "console client (exit $crc)"
fl=$(cat "$d/flood.json" 2>/dev/null || echo '{}')

reqs=$(awk '/requests in/ { print $1 }' "$d/wrk.txt")
p99=$(awk '$1 == "99%" { print $2 }' "$d/wrk.txt")
ms() { # wrk's "12.34ms" / "1.20s" / "850.00us" -> ms
	awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000; printf "%.1f", n }'
}
p99ms=$(ms "${p99:-99s}")
echo "     wrk during the flood: ${reqs:-?} requests, p99 ${p99:-?}"
check "GET /api/vms during the flood: answers, no socket errors or non-2xx (wrk exit $wrc)" \
	eval "[ '${reqs:-0}' -gt 0 ] && ! grep -qE 'Socket errors|Non-2xx' '$d/wrk.txt'"
check "GET /api/vms p99 during the flood ${p99ms} ms < 500 ms" awk "BEGIN { exit !($p99ms < 500) }"
rssmax=$(sort -n "$d/rss.txt" | tail -1)
grow=$((rssmax - rss0))
echo "     vmmod RSS: ${rss0} kB before, ${rssmax} kB at most during the flood (+${grow} kB)"
if [ $san = 1 ]; then
	echo "     (sanitizer build: RSS bound not checked)"
else
	check "vmmod's RSS growth during the flood ${grow} kB < 49152 kB" [ "$grow" -lt 49152 ]
fi
check "vmmod still running" kill -0 "$vmmod_pid"
fd1=$fd0
for _ in $(seq 100); do
	fd1=$(nfds "$vmmod_pid")
	[ "$fd1" -le "$fd0" ] && break
	sleep 0.1
done
check "vmmod's fds back after the viewers left ($fd1 <= $fd0)" [ "$fd1" -le "$fd0" ]
rate=$(jq -r '.rate_kbs // "?"' <<<"$fl")
bst=$(jq -r '.b_state // "?"' <<<"$fl")
kb=$(jq -r '(.bytes // 0) / 1024 | floor' <<<"$fl")
gap=$(jq -r '.gap_s // "?"' <<<"$fl")
if [ "$bst" = "closed 1008" ]; then
	check "vmmod's log says why it closed viewer B" \
		grep -q 'serial: viewer reads too slowly ([0-9]* kB queued), closing it' "$d/vmmod.log"
fi
rel fault "guest flooding its serial console (yes, ${flood_s} s) with a fast and a never-reading viewer" \
	"the fast viewer got all ${kb} kB (${rate} kB/s, no gap over ${gap} s) and its input still worked; the never-reading viewer did not slow it down (afterwards: ${bst}; vmmod closes a viewer with over console_queue_kb (1 MB here) queued); vmmod RSS +${grow} kB at most; fds ${fd0} -> ${fd1}"
rel load "GET /api/vms (wrk, 4 conns) during the console flood" \
	"${reqs:-?} requests, p99 ${p99:-?}, no errors"
[ $fails = 0 ] && echo "$me: all checks passed"
[ $fails = 0 ]

#!/bin/bash
# 20-api: the HTTP API of a real vmmod against the sandbox's libvirtd, with
# curl (Unix socket and TCP) and jq.  Every route and its error paths; the
# running event of a start reaches an SSE client within 10 s; a domain
# defined with virsh as `ubuntu22.04` (with a <title> full of quotes and
# markup) is listed, started and stopped by name and by UUID; hostile names
# change nothing; auth on TCP (bearer token, session cookie + Origin); the
# audit log holds one JSON line per state change.
# Run it alone with:  sudo tests/sandbox.sh -- tests/e2e/20-api.sh
set -u
top=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ -z "${GVM_SANDBOX:-}" ]; then
	exec "$top/tests/sandbox.sh" -- "$0" "$@"
fi
. "$top/tests/e2e/lib/common.sh"
need_tools curl jq virsh
need_vmmod

d=$(mktemp -d /tmp/gvm-e2e-api.XXXXXX)
port=18090
sse_pid=""
cleanup() {
	[ -n "$sse_pid" ] && kill "$sse_pid" 2>/dev/null
	[ -n "$vmmod_pid" ] && kill "$vmmod_pid" 2>/dev/null && wait "$vmmod_pid"
	if [ "$fails" != 0 ] && [ -f "$d/vmmod.log" ]; then
		echo "--- vmmod log (last 30 lines)"
		tail -30 "$d/vmmod.log"
	fi
	rm -rf "$d"
}
trap cleanup EXIT

# ------------------------------------------------------------ domains
define() { # define NAME [TITLE-XML]: with a serial console
	define_vm "$1" "${2:-}" q35 "<serial type='pty'/><console type='pty'/>"
}
check "define ubuntu22.04 with virsh" \
	define ubuntu22.04 "<title>Bob's \"VM\" &lt;b&gt;&amp;</title>"
check "define gvm-api-b" define gvm-api-b
check "define gvm-api-c" define gvm-api-c
uuid=$(virsh domuuid ubuntu22.04 | head -1)

# ------------------------------------------------------------ vmmod
cat >"$d/vmmod.conf" <<EOF
socket_group =
socket_mode = 0660
audit_log = $d/audit.log
lease_file = $d/leases
reservations_dir = $d/resv
allowed_origins = https://guardian.example:8443
max_conns_per_ip = 16
EOF
mkdir -p "$d/resv"
"$vmmod" -d -f "$d/vmmod.conf" --uri qemu:///system --accel tcg \
	--socket "$d/vmmod.sock" --listen "127.0.0.1:$port" \
	--token-file "$d/token" --data-dir "$d" >"$d/vmmod.log" 2>&1 &
vmmod_pid=$!

S=(--unix-socket "$d/vmmod.sock")
# api METHOD PATH [BODY] [CURL-ARGS...]: prints the status; body in $d/out,
# headers in $d/hdr.  Over the Unix socket unless $T (TCP) is set.
api() {
	local m=$1 p=$2 body=${3-} conn=("${S[@]}") base=http://vmmod
	shift 3 2>/dev/null || shift $#
	if [ -n "${T:-}" ]; then conn=(); base=http://127.0.0.1:$port; fi
	local data=()
	[ -n "$body" ] && data=(-H 'Content-Type: application/json' --data-binary "$body")
	curl -sS --max-time 20 "${conn[@]}" -o "$d/out" -D "$d/hdr" \
		-w '%{http_code}' -X "$m" "${data[@]}" "$@" "$base$p"
}
# jq 1.6 -e passes on empty input: an empty answer must fail the check
jqe() { [ -s "${*: -1}" ] && jq -e "$@" >/dev/null; }
code() { jq -r .code "$d/out" 2>/dev/null; }
field() { jq -r "$1" "$d/out" 2>/dev/null; }
expect() { # expect STATUS CODE METHOD PATH [BODY] [CURL-ARGS...]
	local want=$1 wcode=$2 got gcode
	shift 2
	got=$(api "$@")
	gcode=$(code)
	if [ "$got" = "$want" ] && { [ "$wcode" = - ] || [ "$gcode" = "$wcode" ]; }; then
		ok "$1 $2 -> $got${wcode/#-/}"
	else
		bad "$1 $2 -> $got $gcode (want $want $wcode): $(head -c 300 "$d/out")"
	fi
}
# error bodies: exactly {"error": string, "code": string}
is_error_body() { [ -s "$d/out" ] && jq -e 'keys == ["code","error"] and (.error|type) == "string"' "$d/out" >/dev/null; }

for _ in $(seq 100); do
	[ -S "$d/vmmod.sock" ] && [ "$(api GET /api/vms/status '' 2>/dev/null)" = 200 ] &&
		[ "$(field .libvirtd_running)" = true ] && [ "$(field .vm_count)" = 3 ] && break
	sleep 0.1
done
check "vmmod answers on its Unix socket" [ -S "$d/vmmod.sock" ]
check "socket mode 0660" [ "$(stat -c %a "$d/vmmod.sock")" = 660 ]
check "token file created 0600" [ "$(stat -c %a "$d/token" 2>/dev/null)" = 600 ]
check "token is 64 hex chars" grep -qxE '[0-9a-f]{64}' "$d/token"
token=$(cat "$d/token")

# ------------------------------------------------------------ plain routes
expect 200 - GET /healthz
check "/healthz says ok" [ "$(cat "$d/out")" = ok ]
check "nosniff header" grep -qi '^X-Content-Type-Options: nosniff' "$d/hdr"
check "no-store header" grep -qi '^Cache-Control: no-store' "$d/hdr"
check "CSP header" grep -qi "^Content-Security-Policy: default-src 'none'" "$d/hdr"
expect 200 - GET /api/vms/status
check "status: libvirtd_running, enabled, libvirt_active" \
	jqe '.libvirtd_running and .enabled and .libvirt_active and .installed' "$d/out"
check "JSON content type" grep -qi '^Content-Type: application/json' "$d/hdr"
expect 200 - GET /api/vms
check "list has the three domains" jqe '.vms | length == 3' "$d/out"
check "list has ubuntu22.04" jqe '[.vms[].name] | index("ubuntu22.04") != null' "$d/out"
expect 200 - GET /api/vms/list
check "seed alias /api/vms/list has vms" jqe '.vms | length == 3' "$d/out"
expect 200 - GET /api/vms/ubuntu22.04
check "VM by name has its UUID" [ "$(field .uuid)" = "$uuid" ]
check "title with quotes and markup comes out as JSON" \
	[ "$(field .title)" = "Bob's \"VM\" <b>&" ]
check "VM object fields" jqe 'has("state") and has("vcpus") and has("memory_mb") and has("memory") and has("autostart") and has("ip") and has("stats") and .template == null' "$d/out"
expect 200 - GET "/api/vms/$uuid"
check "VM by UUID has its name" [ "$(field .name)" = ubuntu22.04 ]
expect 200 - GET /api/vms/ubuntu22.04/console
check "console answer has type" jqe 'has("type")' "$d/out"
expect 200 - GET /api/host
check "host has arch, accel, RAM, backends" \
	jqe '.arch and .accel == "tcg" and (.ram_total_mb > 0) and (.backends | length > 0)' "$d/out"
expect 200 - GET /metrics
check "metrics is Prometheus text" grep -q '^# TYPE vmmod_vms gauge' "$d/out"
check "metrics counts shutoff VMs" grep -qx 'vmmod_vms{state="shutoff"} 3' "$d/out"

# ------------------------------------------------------------ later routes
expect 200 - GET /api/vms/templates
expect 404 unknown_template POST /api/vms/create '{"template":"x","name":"y"}'
expect 404 not_found GET /api/jobs/j-1
expect 404 not_found DELETE /api/jobs/j-1
expect 200 - GET /api/jobs
# consoles (50-console), devices (80-usb) and PCI (unit) test the details
expect 409 wrong_state POST /api/vms/ubuntu22.04/console '{"type":"serial"}'
expect 200 - GET /api/host/devices
check "host devices has usb and pci arrays" jqe '(.usb | type == "array") and (.pci | type == "array")' "$d/out"
expect 200 - GET /api/vms/ubuntu22.04/devices
check "VM devices has a usb array" jqe '.usb | type == "array"' "$d/out"
expect 404 not_found GET /api/vms/nope/devices

# ------------------------------------------------------------ SSE + actions
curl -sS -N "${S[@]}" --max-time 120 http://vmmod/api/events >"$d/sse" 2>"$d/sse.err" &
sse_pid=$!
for _ in $(seq 50); do grep -q '^: hello' "$d/sse" 2>/dev/null && break; sleep 0.1; done
check "SSE stream opened" grep -q '^retry: ' "$d/sse"
sse_t0=$(date +%s)
api GET /metrics '' >/dev/null
check "metrics: one SSE client" grep -qx 'vmmod_sse_clients 1' "$d/out"
# An idle stream is suspended, not polled: vmmod sleeps.
cpu() { awk '{print $14 + $15}' "/proc/$vmmod_pid/stat"; }
c0=$(cpu)
sleep 2
c1=$(cpu)
check "idle SSE client: vmmod used $((c1 - c0)) ticks in 2 s" [ $((c1 - c0)) -lt 20 ]

t0=$(date +%s%N)
expect 200 - POST /api/vms/ubuntu22.04/start
echo "     (start answered after $((($(date +%s%N) - t0) / 1000000)) ms)"
check "start answers success and the VM" jqe '.success == true and .vm.name == "ubuntu22.04" and (.message | type == "string")' "$d/out"
running_event() { grep -A1 '^event: vm' "$d/sse" | grep '^data: ' | sed 's/^data: //' |
	jq -e -s 'map(select(.name == "ubuntu22.04" and .state == "running")) | length > 0' >/dev/null 2>&1; }
for _ in $(seq 100); do running_event && break; sleep 0.1; done
ms=$((($(date +%s%N) - t0) / 1000000))
check "SSE client got event: vm with state running (${ms} ms)" running_event
check "virsh says running" [ "$(virsh domstate ubuntu22.04 | head -1)" = running ]
expect 409 wrong_state POST /api/vms/ubuntu22.04/start
check "409 body is an error object" is_error_body
expect 200 - POST /api/vms/ubuntu22.04/pause '{}'
check "paused" [ "$(virsh domstate ubuntu22.04 | head -1)" = paused ]
expect 200 - POST "/api/vms/$uuid/resume"
check "resumed by UUID" [ "$(virsh domstate ubuntu22.04 | head -1)" = running ]
expect 202 - POST /api/vms/ubuntu22.04/restart
check "restart says success" jqe '.success == true' "$d/out"
# The guest has no OS: the ACPI request is ignored, timeout_s forces it off.
expect 202 - POST /api/vms/ubuntu22.04/stop '{"timeout_s": 2}'
st=""
for _ in $(seq 100); do
	st=$(virsh domstate ubuntu22.04 | head -1)
	[ "$st" = "shut off" ] && break
	sleep 0.1
done
check "stop with timeout_s forced it off ($st)" [ "$st" = "shut off" ]
# A start takes a while; it runs off the HTTP threads, so reads go on.
curl -sS "${S[@]}" -o "$d/start.out" -w '%{http_code}' -X POST \
	"http://vmmod/api/vms/$uuid/start" >"$d/start.code" &
start_pid=$!
sleep 0.2
slow=0 worst=0
for _ in $(seq 20); do
	out=$(curl -sS "${S[@]}" -o /dev/null -w '%{http_code} %{time_total}' http://vmmod/api/vms)
	[ "${out% *}" = 200 ] || slow=1
	ms=$(awk -v t="${out#* }" 'BEGIN { printf "%d", t * 1000 }')
	[ "$ms" -gt "$worst" ] && worst=$ms
done
still=$(kill -0 $start_pid 2>/dev/null && echo ", the start still running" || echo "")
check "20 GET /api/vms during a start: slowest ${worst} ms${still}" [ "$slow" = 0 ] && [ "$worst" -lt 500 ]
wait $start_pid
check "start by UUID answered 200" [ "$(cat "$d/start.code")" = 200 ]
check "started by UUID" [ "$(virsh domstate ubuntu22.04 | head -1)" = running ]
expect 200 - POST "/api/vms/$uuid/force-stop"
check "force-stopped by UUID" [ "$(virsh domstate ubuntu22.04 | head -1)" = "shut off" ]
expect 409 wrong_state POST /api/vms/ubuntu22.04/pause
expect 200 - POST /api/vms/gvm-api-b/autostart '{"enabled": true}'
check "autostart true in the answer" jqe '.success == true and .vm.autostart == true' "$d/out"
check "virsh agrees: autostart" sh -c 'virsh dominfo gvm-api-b | grep -q "^Autostart: *enable"'
expect 200 - POST /api/vms/gvm-api-b/autostart '{"enabled": false}'
check "virsh agrees: no autostart" sh -c 'virsh dominfo gvm-api-b | grep -q "^Autostart: *disable"'

# delete: 409 while running unless force; the seed's alias
virsh -q start gvm-api-b >/dev/null
for _ in $(seq 50); do [ "$(api GET /api/vms/gvm-api-b '')" = 200 ] && [ "$(field .state)" = running ] && break; sleep 0.1; done
expect 409 wrong_state DELETE /api/vms/gvm-api-b
check "still defined after 409" sh -c "virsh -q dominfo gvm-api-b >/dev/null"
expect 400 bad_query DELETE '/api/vms/gvm-api-b?force=maybe'
expect 204 - DELETE '/api/vms/gvm-api-b?force=true&remove_disk=true'
check "204 has no body" [ ! -s "$d/out" ]
check "gvm-api-b is gone" sh -c '! virsh -q dominfo gvm-api-b >/dev/null 2>&1'
expect 204 - DELETE /api/vms/gvm-api-c/delete
check "gvm-api-c is gone (seed alias)" sh -c '! virsh -q dominfo gvm-api-c >/dev/null 2>&1'
for _ in $(seq 50); do [ "$(api GET /api/vms/gvm-api-c '')" = 404 ] && break; sleep 0.1; done
expect 404 not_found GET /api/vms/gvm-api-c

# ------------------------------------------------------------ bad input
expect 400 bad_json POST /api/vms/ubuntu22.04/start '{"a":'
check "400 body is an error object" is_error_body
expect 400 bad_json POST /api/vms/ubuntu22.04/start '{} trailing'
expect 400 bad_json POST /api/vms/ubuntu22.04/start '[]'
expect 400 unknown_field POST /api/vms/ubuntu22.04/start '{"force":true}'
expect 400 unknown_field POST /api/vms/ubuntu22.04/stop '{"timeout":5}'
expect 400 out_of_range POST /api/vms/ubuntu22.04/stop '{"timeout_s":0}'
expect 400 bad_type POST /api/vms/ubuntu22.04/stop '{"timeout_s":"5"}'
expect 400 missing_field POST /api/vms/ubuntu22.04/autostart '{}'
expect 400 bad_type POST /api/vms/ubuntu22.04/autostart '{"enabled":"yes"}'
expect 415 unsupported_media_type POST /api/vms/ubuntu22.04/start '' \
	-H 'Content-Type: text/plain' --data-binary '{}'
head -c 65537 /dev/zero | tr '\0' ' ' >"$d/big"
expect 413 body_too_large POST /api/vms/ubuntu22.04/start '' \
	-H 'Content-Type: application/json' --data-binary @"$d/big"
expect 413 body_too_large POST /api/vms/ubuntu22.04/start '' \
	-H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' --data-binary @"$d/big"
head -c 65536 /dev/zero | tr '\0' ' ' >"$d/max"
# exactly 64 KiB is read (and then refused as not being a JSON object)
expect 400 bad_json POST /api/vms/ubuntu22.04/start '' \
	-H 'Content-Type: application/json' --data-binary @"$d/max"
expect 405 method_not_allowed PUT /api/vms/ubuntu22.04
check "405 has Allow: GET, HEAD, DELETE" grep -qi '^Allow: GET, HEAD, DELETE' "$d/hdr"
expect 405 method_not_allowed GET /api/vms/ubuntu22.04/start
check "405 has Allow: POST" grep -qi '^Allow: POST' "$d/hdr"
expect 405 method_not_allowed DELETE /api/vms/status
expect 404 not_found GET /api/nothing
expect 404 not_found GET /api/vms/ubuntu22.04/reboot
expect 404 not_found GET /api/vms/no-such-vm

# hostile names: 400 or 404, and nothing changes
before=$(virsh list --all --name | sort; virsh list --all | sort)
long=$(printf 'a%.0s' $(seq 300))
for enc in 'a%3B%24(id)' '%3Cscript%3E' '..%2Fx' '..' "$long" 'caf%C3%A9' '%E2%80%AE' \
	'' 'templates' 'status' 'a%0Ab' 'a%00b' '%2F' 'ubuntu22.04%2F' '%20ubuntu22.04'; do
	for act in start force-stop autostart; do
		body=''
		[ $act = autostart ] && body='{"enabled":true}'
		got=$(api POST "/api/vms/$enc/$act" "$body")
		case $got in
		400 | 404 | 405) ;;
		*) bad "hostile name '${enc:0:40}' $act -> $got" ;;
		esac
		is_error_body || bad "hostile name '${enc:0:40}' $act: not an error object"
	done
done
expect 400 invalid_name POST "/api/vms/$long/start"
expect 400 invalid_name POST /api/vms/a%2Fb/start
expect 400 invalid_name POST /api/vms/a%0Ab/start
after=$(virsh list --all --name | sort; virsh list --all | sort)
check "hostile names changed nothing" [ "$before" = "$after" ]

# ------------------------------------------------------------ TCP auth
export T=1
expect 401 unauthorized GET /api/vms
check "401 has WWW-Authenticate" grep -qi '^WWW-Authenticate: Bearer' "$d/hdr"
expect 401 unauthorized GET /api/vms '' -H 'Authorization: Bearer wrong'
expect 401 unauthorized GET /api/events
expect 401 unauthorized GET /metrics
expect 401 unauthorized GET /api/nothing
expect 200 - GET /healthz
expect 200 - GET /api/vms '' -H "Authorization: Bearer $token"
check "token works" jqe '.vms | length == 1' "$d/out"
expect 200 - POST /api/vms/ubuntu22.04/start '' -H "Authorization: Bearer $token"
expect 401 bad_token POST /api/login '{"token":"wrong"}'
expect 400 missing_field POST /api/login '{}'
expect 403 bad_origin POST /api/login "{\"token\":\"$token\"}" -H 'Origin: http://evil.example'
expect 200 - POST /api/login "{\"token\":\"$token\"}"
cookie=$(sed -n 's/^Set-Cookie: \(vmmod_session=[0-9a-f]*\);.*/\1/ip' "$d/hdr" | tr -d '\r')
check "login sets the session cookie" [ -n "$cookie" ]
check "cookie is HttpOnly; SameSite=Strict; Path=/" \
	grep -qi '^Set-Cookie: vmmod_session=.*Path=/; HttpOnly; SameSite=Strict' "$d/hdr"
expect 200 - GET /api/vms '' -H "Cookie: $cookie"
expect 403 bad_origin POST /api/vms/ubuntu22.04/force-stop '' -H "Cookie: $cookie"
expect 403 bad_origin POST /api/vms/ubuntu22.04/force-stop '' -H "Cookie: $cookie" -H 'Origin: http://evil.example'
expect 403 bad_origin POST /api/vms/ubuntu22.04/force-stop '' -H "Cookie: $cookie" -H 'Origin: null'
check "still running after the 403s" [ "$(virsh domstate ubuntu22.04 | head -1)" = running ]
expect 200 - POST /api/vms/ubuntu22.04/pause '' -H "Cookie: $cookie" -H "Origin: http://127.0.0.1:$port"
expect 200 - POST /api/vms/ubuntu22.04/resume '' -H "Cookie: $cookie" -H 'Origin: https://guardian.example:8443'
expect 200 - POST /api/logout '' -H "Cookie: $cookie" -H "Origin: http://127.0.0.1:$port"
check "logout clears the cookie" grep -qi '^Set-Cookie: vmmod_session=;.*Max-Age=0' "$d/hdr"
expect 401 unauthorized GET /api/vms '' -H "Cookie: $cookie"
expect 200 - POST /api/vms/ubuntu22.04/force-stop '' -H "Authorization: Bearer $token"
unset T

# ------------------------------------------------------------ metrics, audit
api GET /metrics '' >/dev/null
check "metrics label routes by pattern" grep -q '^vmmod_http_requests_total{route="/api/vms/{name}/start",code="200"} [1-9]' "$d/out"
check "metrics never carry raw names" sh -c "! grep -q 'ubuntu22.04\|script' '$d/out'"
check "latency histogram" grep -q '^vmmod_http_request_duration_seconds_bucket{route="/api/vms",le="+Inf"} [1-9]' "$d/out"
check "reconnect counter" grep -q '^vmmod_libvirt_reconnects_total [0-9]' "$d/out"
check "audit log exists" [ -s "$d/audit.log" ]
check "every audit line is one JSON object" sh -c "jq -c . '$d/audit.log' | wc -l | grep -qx \"\$(wc -l <'$d/audit.log')\""
check "audit: start by uid:0" jqe -s 'map(select(.action == "start" and .vm == "ubuntu22.04" and .peer == "uid:0" and .result == "ok")) | length > 0' "$d/audit.log"
check "audit: TCP peer is an address" jqe -s 'map(select(.peer == "127.0.0.1")) | length > 0' "$d/audit.log"
check "audit: failed start logged with its code" jqe -s 'map(select(.result == "error:wrong_state")) | length > 0' "$d/audit.log"
check "audit: delete logged" jqe -s 'map(select(.action == "delete+disk" and .vm == "gvm-api-b")) | length > 0' "$d/audit.log"
check "audit: no lines for hostile names" sh -c "! grep -q 'script' '$d/audit.log'"

# ------------------------------------------------------------ TCP limits
# max_conns_per_ip = 16: a 17th connection from 127.0.0.1 is refused.
pids=()
for _ in $(seq 16); do
	curl -sS -N --max-time 30 -H "Authorization: Bearer $token" \
		"http://127.0.0.1:$port/api/events" >/dev/null 2>&1 &
	pids+=($!)
done
for _ in $(seq 50); do
	api GET /metrics '' >/dev/null
	grep -qx 'vmmod_sse_clients 17' "$d/out" && break
	sleep 0.1
done
check "16 TCP event streams open" grep -qx 'vmmod_sse_clients 17' "$d/out"
got=$(T=1 api GET /api/vms '' -H "Authorization: Bearer $token" 2>/dev/null)
check "17th TCP connection from one address refused (got '$got')" [ "$got" != 200 ]
kill "${pids[@]}" 2>/dev/null
wait "${pids[@]}" 2>/dev/null
expect 200 - GET /api/vms/status

# ------------------------------------------------------------ SSE end
# the keepalive comment comes every ~25 s, from a suspended stream too
while [ $(($(date +%s) - sse_t0)) -lt 30 ] && ! grep -q '^: keepalive' "$d/sse"; do sleep 0.5; done
check "SSE keepalive comment within 30 s" grep -q '^: keepalive' "$d/sse"
check "SSE client still connected" kill -0 "$sse_pid"
kill "$sse_pid" 2>/dev/null
wait "$sse_pid" 2>/dev/null
sse_pid=""
# A suspended stream notices its client left at the next write: an event
# (here two autostart changes) or the next keepalive, within 25 s.
api POST /api/vms/ubuntu22.04/autostart '{"enabled":true}' >/dev/null
api POST /api/vms/ubuntu22.04/autostart '{"enabled":false}' >/dev/null
for _ in $(seq 300); do
	api GET /metrics '' >/dev/null
	grep -qx 'vmmod_sse_clients 0' "$d/out" && break
	sleep 0.1
done
check "SSE client count back to 0" grep -qx 'vmmod_sse_clients 0' "$d/out"

# ------------------------------------------------------------ HEAD
got=$(curl -sS "${S[@]}" -o /dev/null -w '%{http_code}' -I http://vmmod/api/vms)
check "HEAD /api/vms -> 200 ($got)" [ "$got" = 200 ]

# ------------------------------------------------------------ libvirtd away
# Killed: VM routes answer 503 at once, status says so; back: all resyncs.
read -r lpid </run/libvirtd.pid || true
kill -KILL "$lpid"
for _ in $(seq 100); do
	[ "$(api GET /api/vms/status '')" = 200 ] && [ "$(field .libvirtd_running)" = false ] && break
	sleep 0.1
done
check "status: libvirtd_running false" [ "$(field .libvirtd_running)" = false ]
t0=$(date +%s%N)
expect 503 libvirtd_down GET /api/vms
expect 503 libvirtd_down POST /api/vms/ubuntu22.04/start
expect 503 libvirtd_down GET /api/vms/ubuntu22.04
ms=$((($(date +%s%N) - t0) / 1000000))
check "three 503 answers took ${ms} ms (< 1000)" [ "$ms" -lt 1000 ]
expect 200 - GET /healthz
libvirtd -d -f /etc/libvirt/libvirtd.conf -p /run/libvirtd.pid
for _ in $(seq 300); do
	[ "$(api GET /api/vms '')" = 200 ] && break
	sleep 0.1
done
check "after libvirtd restarts, /api/vms answers again" jqe '.vms | map(.name) | index("ubuntu22.04") != null' "$d/out"
expect 200 - POST /api/vms/ubuntu22.04/start
expect 200 - POST /api/vms/ubuntu22.04/force-stop

# clean stop: SIGTERM ends vmmod, also with a suspended SSE stream open
curl -sS -N "${S[@]}" --max-time 30 http://vmmod/api/events >/dev/null 2>&1 &
sse_pid=$!
sleep 0.3
kill "$vmmod_pid"
rc=0
for _ in $(seq 50); do kill -0 "$vmmod_pid" 2>/dev/null || break; sleep 0.1; done
check "vmmod stops on SIGTERM with an SSE client" sh -c "! kill -0 $vmmod_pid 2>/dev/null"
wait "$vmmod_pid" || rc=$?
vmmod_pid=""
check "vmmod exit status 0 ($rc)" [ "$rc" = 0 ]
check "socket removed" [ ! -e "$d/vmmod.sock" ]
wait "$sse_pid" 2>/dev/null
sse_pid=""

[ "$fails" = 0 ] || { echo "20-api: $fails check(s) failed"; exit 1; }
echo "20-api: all checks passed"

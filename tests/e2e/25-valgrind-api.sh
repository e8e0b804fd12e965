#!/bin/bash
# 25-valgrind-api: vmmod under valgrind (memcheck) against the sandbox's
# libvirtd for a short API battery: status, list, a start and a stop, an SSE
# client, hostile and malformed requests; then SIGTERM.  Fails on any
# invalid access or definite leak (valgrind's exit 99); third-party noise is
# suppressed in tests/san/valgrind.supp, each entry saying why.
# Run it alone with:  sudo tests/sandbox.sh -- tests/e2e/25-valgrind-api.sh
set -u
top=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ -z "${GVM_SANDBOX:-}" ]; then
	exec "$top/tests/sandbox.sh" -- "$0" "$@"
fi
build=${BUILD:-build/$(uname -m)}
case $build in /*) ;; *) build=$top/$build ;; esac
vmmod=$build/vmmod
for t in curl virsh valgrind jq; do
	command -v $t >/dev/null || { echo "SKIP: no $t"; exit 77; }
done
[ -x "$vmmod" ] || { echo "FAIL: no $vmmod (make first)"; exit 1; }
# An ASan build cannot run under valgrind.
if nm -D "$vmmod" 2>/dev/null | grep -q __asan_init; then
	echo "SKIP: $vmmod is a sanitizer build"; exit 77
fi

fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
d=$(mktemp -d /tmp/gvm-e2e-vg.XXXXXX)
vg_pid="" sse_pid=""
cleanup() {
	[ -n "$sse_pid" ] && kill "$sse_pid" 2>/dev/null
	[ -n "$vg_pid" ] && kill -KILL "$vg_pid" 2>/dev/null
	if [ "$fails" != 0 ]; then
		echo "--- valgrind log (last 60 lines)"
		tail -60 "$d/vg.log" 2>/dev/null
	fi
	rm -rf "$d"
}
trap cleanup EXIT

cat >"$d/dom.xml" <<XML
<domain type='qemu'>
  <name>gvm-vg</name>
  <title>a &lt;b&gt; &amp; "q"</title>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices><serial type='pty'/><console type='pty'/><memballoon model='none'/></devices>
</domain>
XML
virsh -q define "$d/dom.xml" >/dev/null || { echo "FAIL: virsh define"; exit 1; }

cat >"$d/vmmod.conf" <<EOF
socket_group =
socket_mode = 0660
audit_log = $d/audit.log
lease_file = $d/leases
reservations_dir = $d/resv
EOF
mkdir -p "$d/resv"
valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite \
	--show-leak-kinds=definite --error-exitcode=99 --num-callers=30 \
	--suppressions="$top/tests/san/valgrind.supp" --log-file="$d/vg.log" \
	"$vmmod" -d -f "$d/vmmod.conf" --uri qemu:///system --accel tcg \
	--socket "$d/vmmod.sock" --token-file "$d/token" --data-dir "$d" \
	>"$d/vmmod.log" 2>&1 &
vg_pid=$!

S=(--unix-socket "$d/vmmod.sock")
api() { # api METHOD PATH [BODY]: prints the HTTP status
	local data=()
	[ -n "${3-}" ] && data=(-H 'Content-Type: application/json' --data-binary "$3")
	curl -sS --max-time 60 "${S[@]}" -o "$d/out" -w '%{http_code}' -X "$1" \
		"${data[@]}" "http://vmmod$2"
}
expect() { # expect STATUS METHOD PATH [BODY]
	local want=$1 got
	shift
	got=$(api "$@" 2>/dev/null)
	if [ "$got" = "$want" ]; then ok "$1 $2 -> $got"; else bad "$1 $2 -> $got (want $want)"; fi
}

# valgrind is ~20x slower: give it a minute to come up and to connect to
# libvirtd (status answers 200 before the connection is made; /api/vms
# answers 503 libvirtd_down until then).
for _ in $(seq 600); do
	[ -S "$d/vmmod.sock" ] && [ "$(api GET /api/vms/status 2>/dev/null)" = 200 ] &&
		[ -s "$d/out" ] && jq -e '.libvirtd_running == true' "$d/out" >/dev/null 2>&1 && break
	kill -0 "$vg_pid" 2>/dev/null || break
	sleep 0.1
done
expect 200 GET /api/vms/status
curl -sS -N "${S[@]}" --max-time 90 http://vmmod/api/events >"$d/sse" 2>/dev/null &
sse_pid=$!
expect 200 GET /api/vms
expect 200 GET /api/vms/gvm-vg
expect 200 POST /api/vms/gvm-vg/start
expect 200 GET /api/vms/gvm-vg
expect 202 POST /api/vms/gvm-vg/stop '{"timeout_s": 2}'
expect 404 GET /api/vms/no-such-vm
expect 400 GET '/api/vms/%3Cscript%3E%00'
expect 400 POST /api/vms/gvm-vg/start '{"force":'
expect 400 POST /api/vms/gvm-vg/start '[1,2]'
expect 404 GET /api/nowhere/at/all/x/y/z/w/v/u
expect 405 DELETE /api/vms/status
for _ in $(seq 100); do grep -q running "$d/sse" && break; sleep 0.2; done
if grep -q running "$d/sse"; then ok "SSE client saw the start"; else bad "SSE client saw no event"; fi
kill "$sse_pid" 2>/dev/null; wait "$sse_pid" 2>/dev/null; sse_pid=""
virsh -q destroy gvm-vg >/dev/null 2>&1

kill -TERM "$vg_pid"
for _ in $(seq 600); do kill -0 "$vg_pid" 2>/dev/null || break; sleep 0.1; done
wait "$vg_pid"
rc=$?
vg_pid=""
case $rc in
0) ok "vmmod exited cleanly under valgrind: no invalid access, no definite leak" ;;
99) bad "valgrind found errors or definite leaks (exit 99)" ;;
*) bad "vmmod under valgrind exited $rc" ;;
esac
[ -s "$d/vg.log" ] && { echo "--- valgrind said:"; head -80 "$d/vg.log"; }
virsh -q undefine gvm-vg >/dev/null 2>&1
[ $fails = 0 ]

#!/bin/bash
# 21-reload: SIGHUP re-reads what can change under a running vmmod without
# dropping a connection (issue 3.5, vmmod(8)): the configuration, the
# template catalog (a template added or removed shows in GET
# /api/vms/templates), and the TCP listener's API token (the old token is
# refused after, the new one accepted; an unusable token file keeps the
# old token and says so).  vmmod keeps serving throughout.
# Run it alone with:  sudo tests/sandbox.sh -- tests/e2e/21-reload.sh
set -u
top=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ -z "${GVM_SANDBOX:-}" ]; then
	exec "$top/tests/sandbox.sh" -- "$0" "$@"
fi
build=${BUILD:-build/$(uname -m)}
case $build in /*) ;; *) build=$top/$build ;; esac
vmmod=$build/vmmod
for t in curl jq; do
	command -v $t >/dev/null || { echo "SKIP: no $t"; exit 77; }
done
[ -x "$vmmod" ] || { echo "FAIL: no $vmmod (make first)"; exit 1; }

fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
check() { # check MESSAGE COMMAND...
	local m=$1
	shift
	if "$@"; then ok "$m"; else bad "$m"; fi
}
d=$(mktemp -d /tmp/gvm-e2e-reload.XXXXXX)
vmmod_pid=""
cleanup() {
	if [ -n "$vmmod_pid" ]; then
		kill "$vmmod_pid" 2>/dev/null
		wait "$vmmod_pid" 2>/dev/null
	fi
	if [ "$fails" != 0 ]; then
		echo "--- vmmod log (last 30 lines)"
		tail -30 "$d/vmmod.log"
	fi
	rm -rf "$d"
}
trap cleanup EXIT

port=18121
mkdir -p "$d/templates/devices" "$d/resv"
cp "$top/templates/ubuntu-server.json" "$d/templates/"
cat >"$d/vmmod.conf" <<EOF
socket_group =
lease_file = $d/leases
reservations_dir = $d/resv
audit_log = $d/audit.log
EOF
echo "first-token-0123456789abcdef" >"$d/token"
chmod 600 "$d/token"
"$vmmod" -f "$d/vmmod.conf" --uri qemu:///system --accel tcg --socket "$d/vmmod.sock" \
	--listen "127.0.0.1:$port" --token-file "$d/token" --data-dir "$d" \
	--templates "$d/templates" >"$d/vmmod.log" 2>&1 &
vmmod_pid=$!
S=(--unix-socket "$d/vmmod.sock")
templates() { curl -sS --max-time 10 "${S[@]}" http://vmmod/api/vms/templates | jq -r '[.templates[].id] | join(",")'; }
tcp() { # tcp TOKEN: the status of GET /api/vms over TCP with that token
	curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" \
		"http://127.0.0.1:$port/api/vms"
}
hup() { # hup: SIGHUP, then wait for the reload's log line
	local n
	n=$(grep -c 'configuration reloaded\|reload failed' "$d/vmmod.log")
	kill -HUP "$vmmod_pid"
	for _ in $(seq 100); do
		[ "$(grep -c 'configuration reloaded\|reload failed' "$d/vmmod.log")" -gt "$n" ] && return 0
		sleep 0.1
	done
	return 1
}
for _ in $(seq 100); do
	[ -S "$d/vmmod.sock" ] && [ "$(tcp first-token-0123456789abcdef)" = 200 ] && break
	sleep 0.1
done
check "vmmod up; the first token is accepted over TCP" [ "$(tcp first-token-0123456789abcdef)" = 200 ]
check "the catalog has ubuntu-server only" [ "$(templates)" = ubuntu-server ]

# a template added, the token rotated
cp "$top/templates/demo.json" "$d/templates/"
echo "second-token-0123456789abcdef" >"$d/token"
check "SIGHUP: configuration reloaded" hup
check "the catalog now has demo and ubuntu-server ($(templates))" [ "$(templates)" = demo,ubuntu-server ]
check "the old token is refused (401)" [ "$(tcp first-token-0123456789abcdef)" = 401 ]
check "the new token is accepted" [ "$(tcp second-token-0123456789abcdef)" = 200 ]
check "the log says the token was re-read" grep -q 'API token re-read' "$d/vmmod.log"

# a template removed, a token too short to use
rm "$d/templates/ubuntu-server.json"
echo "short" >"$d/token"
check "SIGHUP again" hup
check "the catalog now has demo only ($(templates))" [ "$(templates)" = demo ]
check "an unusable token file keeps the token in use" [ "$(tcp second-token-0123456789abcdef)" = 200 ]
check "and says so" grep -q 'keeping the old API token' "$d/vmmod.log"

# allowed_origins is applied by a reload: a state change from that origin
# is refused (403 bad_origin) before, reaches the handler after (404: no
# such VM)
from_origin() { # the status of POST .../start from Origin http://gvm-reload.example
	curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
		-H 'Origin: http://gvm-reload.example' -H "Authorization: Bearer second-token-0123456789abcdef" \
		-d '{}' "http://127.0.0.1:$port/api/vms/gvm-no-such-vm/start"
}
check "a state change from an origin not allowed: 403" [ "$(from_origin)" = 403 ]
echo "allowed_origins = http://gvm-reload.example" >>"$d/vmmod.conf"
check "SIGHUP with allowed_origins added" hup
check "the same request now reaches the handler (404, no such VM)" [ "$(from_origin)" = 404 ]
check "no restart warning for it" eval "! grep -q 'reload: allowed_origins' '$d/vmmod.log'"

# keys a reload does not apply: said in the log, the running values stay
printf 'bridge = br9\nmax_conns = 32\n' >>"$d/vmmod.conf"
check "SIGHUP with restart-only keys changed" hup
check "the log names them and says a restart applies them" \
	grep -q 'reload: bridge, max_conns changed; that takes effect at the next restart' "$d/vmmod.log"
check "still serving with what runs" \
	test "$(tcp second-token-0123456789abcdef)" = 200 -a "$(templates)" = demo

# a broken configuration file keeps everything
echo "no_such_key = 1" >>"$d/vmmod.conf"
check "SIGHUP with a bad configuration" hup
check "the log says the old configuration is kept" grep -q 'reload failed; keeping the old configuration' "$d/vmmod.log"
check "still serving on both listeners" \
	test "$(tcp second-token-0123456789abcdef)" = 200 -a "$(templates)" = demo
check "vmmod still running" kill -0 "$vmmod_pid"
kill "$vmmod_pid"
wait "$vmmod_pid"
rc=$?
vmmod_pid=""
check "vmmod stops cleanly (exit $rc)" [ $rc = 0 ]
[ $fails = 0 ] && echo "21-reload: all checks passed"
[ $fails = 0 ]

#!/bin/bash
# 92-backend: vmmod picks its backend from the libvirt URI at start (issue
# 8.4, vmmod/xen.c's registry): a URI of no driver it knows stops it with a
# clear error (exit 1); on x86 builds xen:///system selects the Xen backend
# (accel "xen" in /api/host, a warning that no dom0 runs, the API answering
# with libvirtd_running false since the sandbox's libvirtd has no libxl
# driver); on builds without Xen (arm64) the same URI is refused.  Starting
# a real Xen guest needs a dom0: not here, counted in the unit suite's skip.
# Run it alone with:  sudo tests/sandbox.sh -- tests/e2e/92-backend.sh
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
d=$(mktemp -d /tmp/gvm-e2e-backend.XXXXXX)
vmmod_pid=""
cleanup() {
	if [ -n "$vmmod_pid" ]; then
		kill "$vmmod_pid" 2>/dev/null
		wait "$vmmod_pid" 2>/dev/null
	fi
	rm -rf "$d"
}
trap cleanup EXIT
cat >"$d/vmmod.conf" <<EOF
socket_group =
lease_file = $d/leases
reservations_dir = $d/resv
audit_log = $d/audit.log
EOF
mkdir -p "$d/resv"
run() { # URI: vmmod in the foreground, its log in $d/log
	"$vmmod" -f "$d/vmmod.conf" --uri "$1" --accel tcg --socket "$d/vmmod.sock" \
		--token-file "$d/token" --data-dir "$d" >"$d/log" 2>&1
}

# an unknown driver: refused at start
timeout 20 bash -c "$(declare -f run); d=$d vmmod=$vmmod; run vbox:///session"
rc=$?
if [ $rc = 1 ] && grep -q 'not a qemu or xen driver' "$d/log"; then
	ok "vbox:///session: vmmod exits 1 ($(grep -o 'libvirt URI.*' "$d/log" | head -1))"
else
	bad "vbox:///session: exit $rc, log: $(head -3 "$d/log")"
fi

# xen_none.c's refusal is in the binary only where Xen is not built
if grep -q 'the Xen backend is not built' "$vmmod"; then built=0; else built=1; fi
if [ $built = 1 ]; then
	"$vmmod" -f "$d/vmmod.conf" --uri xen:///system --socket "$d/vmmod.sock" \
		--token-file "$d/token" --data-dir "$d" >"$d/log" 2>&1 &
	vmmod_pid=$!
	st=""
	for _ in $(seq 100); do
		st=$(curl -sS --max-time 5 --unix-socket "$d/vmmod.sock" http://vmmod/api/host 2>/dev/null) && break
		sleep 0.1
	done
	if [ "$(jq -r .accel <<<"$st" 2>/dev/null)" = xen ]; then
		ok "xen:///system: /api/host says accel xen"
	else
		bad "xen:///system: /api/host: ${st:-no answer}"
	fi
	if [ "$(jq -r .backend <<<"$st" 2>/dev/null)" = xen ]; then
		ok "xen:///system: /api/host says backend xen"
	else
		bad "xen:///system: /api/host backend: $(jq -c .backend <<<"$st" 2>/dev/null)"
	fi
	st=$(curl -sS --max-time 5 --unix-socket "$d/vmmod.sock" http://vmmod/api/vms/status 2>/dev/null)
	if [ "$(jq -r .libvirtd_running <<<"$st" 2>/dev/null)" = false ]; then
		ok "xen:///system: no libxl driver here: libvirtd_running false, the API still answers"
	else
		bad "xen:///system: status ${st:-no answer}"
	fi
	if grep -q 'no Xen dom0 runs here' "$d/log"; then
		ok "the log says no Xen dom0 runs here"
	else
		bad "no dom0 warning in the log: $(head -5 "$d/log")"
	fi
	kill "$vmmod_pid"
	wait "$vmmod_pid"
	rc=$?
	vmmod_pid=""
	[ $rc = 0 ] && ok "vmmod (xen backend) stops cleanly" || bad "vmmod (xen backend) exit $rc"
else
	timeout 20 bash -c "$(declare -f run); d=$d vmmod=$vmmod; run xen:///system"
	rc=$?
	if [ $rc = 1 ] && grep -q 'Xen backend is not built' "$d/log"; then
		ok "built without Xen: xen:///system refused at start"
	else
		bad "built without Xen: exit $rc, log: $(head -3 "$d/log")"
	fi
fi
[ $fails = 0 ] && echo "92-backend: all checks passed"
[ $fails = 0 ]

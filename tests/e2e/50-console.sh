#!/bin/bash
# 50-console: browser consoles end to end.  The x86_64 test appliance boots
# (direct kernel, TCG) with a pty serial console and VNC without any TCP port
# (<listen type='none'/>); a real vmmod serves it on TCP; 50-console.py
# (python3-websocket) gets tickets, opens the page, then the websockets:
# `echo hi-<random>` comes back through the guest's shell to two viewers,
# input from either reaches the guest, VNC answers "RFB 003.008", refusals
# (no ticket, used ticket, wrong/no Origin, wrong type), and destroying the
# VM sends every viewer a close frame.
# Run it alone with:  sudo tests/sandbox.sh -- tests/e2e/50-console.sh
set -u
top=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ -z "${GVM_SANDBOX:-}" ]; then
	exec "$top/tests/sandbox.sh" -- "$0" "$@"
fi
. "$top/tests/e2e/lib/console.sh" # vmmod, boot_appliance, spawn_vmmod, ...
need_tools curl virsh
need_websocket
need_appliance
need_vmmod

console_dir console
trap console_cleanup EXIT
port=18091
vm=gvm-console
boot_appliance $vm
# VNC has no TCP port: only virDomainOpenGraphicsFD reaches it
if virsh domdisplay $vm 2>/dev/null | grep -q 'vnc://'; then
	bad "VNC has a TCP display: $(virsh domdisplay $vm)"
else
	ok "VNC has no TCP port"
fi

console_conf "web_root = $d/no-web"
spawn_vmmod -d --data-dir "$d"
check "vmmod answers on 127.0.0.1:$port" vmmod_up
# the guest's shell follows GUEST-IP (no NIC here: "GUEST-IP none")
check "vmmod has $vm running" vm_running $vm

if $py "$top/tests/e2e/50-console.py" "http://127.0.0.1:$port" "$token" $vm; then
	:
else
	fails=$((fails + 1))
fi
# vmmod stays healthy and closes the libvirt stream of the gone VM
if grep -q 'serial stream closed' "$d/vmmod.log"; then
	ok "vmmod closed the VM's console stream"
else
	bad "no 'serial stream closed' in vmmod's log"
fi
if kill -0 "$vmmod_pid" 2>/dev/null; then ok "vmmod still running"; else bad "vmmod died"; fi

# vmmod stopped (SIGTERM) while a viewer has the VM's console open: the
# viewer gets a close frame, vmmod closes the stream, frees everything and
# exits 0 (under make check-asan: LeakSanitizer finds nothing left)
virsh -q start $vm >/dev/null || bad "restart $vm"
check "vmmod has $vm running again" vm_running $vm
$py "$top/tests/e2e/50-console.py" "http://127.0.0.1:$port" "$token" $vm hold \
	>"$d/hold.out" 2>&1 &
hold_pid=$!
for _ in $(seq 100); do grep -q '^holding' "$d/hold.out" && break; sleep 0.1; done
grep -q '^holding' "$d/hold.out" && ok "a serial viewer is open" || bad "no serial viewer open"
closed_before=$(grep -c 'serial stream closed' "$d/vmmod.log")
kill -TERM "$vmmod_pid"
for _ in $(seq 600); do kill -0 "$vmmod_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$vmmod_pid" 2>/dev/null && { bad "vmmod still running 60 s after SIGTERM"; kill -KILL "$vmmod_pid"; }
rc=0
wait "$vmmod_pid" || rc=$?
vmmod_pid=""
if [ "$rc" = 0 ]; then ok "vmmod stopped with a console open, exit 0"; else bad "vmmod exit $rc on SIGTERM"; fi
[ "$(grep -c 'serial stream closed' "$d/vmmod.log")" -gt "$closed_before" ] &&
	ok "vmmod closed the open stream as it stopped" || bad "stream not closed at stop"
if wait "$hold_pid"; then :; else fails=$((fails + 1)); fi
sed 's/^/  /' "$d/hold.out"
[ "$fails" = 0 ]

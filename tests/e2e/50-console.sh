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
build=${BUILD:-build/$(uname -m)}
case $build in /*) ;; *) build=$top/$build ;; esac
vmmod=$build/vmmod
app=$top/build/appliance/x86_64
py=/usr/bin/python3
for t in curl virsh; do
	command -v $t >/dev/null || { echo "SKIP: no $t"; exit 77; }
done
$py -c 'import websocket' 2>/dev/null ||
	{ echo "SKIP: no python3-websocket (sudo make deps)"; exit 77; }
[ -r "$app/vmlinuz" ] && [ -r "$app/initrd.img" ] ||
	{ echo "SKIP: no x86_64 appliance (make appliances)"; exit 77; }
[ -x "$vmmod" ] || { echo "FAIL: no $vmmod (make first)"; exit 1; }

fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }

d=$(mktemp -d /tmp/gvm-e2e-console.XXXXXX)
chmod 755 "$d"
port=18091
vm=gvm-console
vmmod_pid=""
cleanup() {
	virsh -q destroy $vm >/dev/null 2>&1
	virsh -q undefine $vm >/dev/null 2>&1
	[ -n "$vmmod_pid" ] && kill "$vmmod_pid" 2>/dev/null && wait "$vmmod_pid"
	if [ "$fails" != 0 ] && [ -f "$d/vmmod.log" ]; then
		echo "--- vmmod log (last 40 lines)"
		tail -40 "$d/vmmod.log"
	fi
	rm -rf "$d"
}
trap cleanup EXIT

# QEMU runs as libvirt-qemu: a readable copy of the kernel and initramfs
cp "$app/vmlinuz" "$app/initrd.img" "$d/"
cat >"$d/dom.xml" <<XML
<domain type='qemu'>
  <name>$vm</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>$d/vmlinuz</kernel>
    <initrd>$d/initrd.img</initrd>
    <cmdline>console=ttyS0,115200 quiet</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <serial type='pty'/>
    <console type='pty'/>
    <graphics type='vnc'><listen type='none'/></graphics>
    <video><model type='vga'/></video>
    <memballoon model='none'/>
  </devices>
</domain>
XML
if virsh -q define "$d/dom.xml" >/dev/null && virsh -q start $vm >/dev/null; then
	ok "appliance $vm defined and started (direct kernel, TCG)"
else
	bad "cannot start the appliance"
	exit 1
fi
# VNC has no TCP port: only virDomainOpenGraphicsFD reaches it
if virsh domdisplay $vm 2>/dev/null | grep -q 'vnc://'; then
	bad "VNC has a TCP display: $(virsh domdisplay $vm)"
else
	ok "VNC has no TCP port"
fi

cat >"$d/vmmod.conf" <<EOF
socket_group =
lease_file = $d/leases
reservations_dir = $d/resv
web_root = $d/no-web
EOF
mkdir -p "$d/resv"
"$vmmod" -d -f "$d/vmmod.conf" --uri qemu:///system --accel tcg \
	--socket "$d/vmmod.sock" --listen "127.0.0.1:$port" \
	--token-file "$d/token" --data-dir "$d" >"$d/vmmod.log" 2>&1 &
vmmod_pid=$!
for _ in $(seq 100); do
	[ -s "$d/token" ] && curl -s --max-time 2 -o /dev/null \
		"http://127.0.0.1:$port/healthz" && break
	sleep 0.1
done
token=$(cat "$d/token")
# the guest's shell follows GUEST-IP (no NIC here: "GUEST-IP none")
for _ in $(seq 300); do
	virsh -q domstate $vm | grep -q running &&
		curl -s -H "Authorization: Bearer $token" \
			"http://127.0.0.1:$port/api/vms/$vm" | grep -q '"running"' && break
	sleep 0.1
done

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
for _ in $(seq 300); do
	curl -s -H "Authorization: Bearer $token" \
		"http://127.0.0.1:$port/api/vms/$vm" | grep -q '"running"' && break
	sleep 0.1
done
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

# shellcheck shell=bash
# The setting the console tests share (50-console, 52-console-tls,
# 61-browser-console, 98-faults-console): the x86_64 test appliance booted
# from its kernel and initramfs (TCG) as a libvirt domain, and a real vmmod
# without a catalog serving its consoles, its files in a temp directory $d,
# its TCP listener on 127.0.0.1:$port.  Needs $top; sources lib/common.sh
# (report lines, skips, $vmmod).  A test calls console_dir, then sets
# `trap console_cleanup EXIT` (or a cleanup of its own that ends with
# console_cleanup), boot_appliance, then console_conf (or a vmmod.conf of
# its own), spawn_vmmod and vmmod_up.

. "$top/tests/e2e/lib/common.sh"
app=$top/build/appliance/x86_64
py=/usr/bin/python3
vms=() token=""

# need_appliance [FILE...]: skips the test (77) unless the x86_64 appliance
# has each FILE (vmlinuz and initrd.img by default)
need_appliance() {
	local f files=("$@")
	[ $# != 0 ] || files=(vmlinuz initrd.img)
	for f in "${files[@]}"; do
		[ -r "$app/$f" ] || { echo "SKIP: no x86_64 appliance (make appliances)"; exit 77; }
	done
}
# need_websocket: skips the test (77) unless $py has python3-websocket
need_websocket() {
	$py -c 'import websocket' 2>/dev/null ||
		{ echo "SKIP: no python3-websocket (sudo make deps)"; exit 77; }
}

# console_dir NAME: $d, a new /tmp/gvm-e2e-NAME.XXXXXX, 755 (QEMU runs as
# libvirt-qemu and reads the kernel in it); vmmod's configuration file is
# $vmmod_conf ($d/vmmod.conf)
console_dir() {
	d=$(mktemp -d "/tmp/gvm-e2e-$1.XXXXXX") || exit 1
	chmod 755 "$d"
	vmmod_conf=$d/vmmod.conf
}

# console_cleanup: removes the domains in $vms, stops vmmod, shows its log
# when a check failed, removes $d
console_cleanup() {
	local vm
	for vm in "${vms[@]}"; do
		virsh -q destroy "$vm" >/dev/null 2>&1
		virsh -q undefine --nvram "$vm" >/dev/null 2>&1 ||
			virsh -q undefine "$vm" >/dev/null 2>&1
	done
	stop_vmmod
	vmmod_log_if_failed
	rm -rf "$d"
}

# boot_appliance [--no-vnc] VM [CMDLINE]: defines and starts the domain VM
# (added to $vms): the appliance's kernel and initramfs (copied to $d)
# with CMDLINE (console=ttyS0,115200 quiet), 256 MiB, one vCPU, q35, a pty
# serial console and, unless --no-vnc, VNC without any TCP port
# (<listen type='none'/>); says so, or fails the test
boot_appliance() {
	local vnc="<graphics type='vnc'><listen type='none'/></graphics>
    <video><model type='vga'/></video>"
	[ "$1" = --no-vnc ] && { vnc=""; shift; }
	local vm=$1 cmdline=${2:-console=ttyS0,115200 quiet}
	vms+=("$vm")
	cp "$app/vmlinuz" "$app/initrd.img" "$d/"
	cat >"$d/$vm.xml" <<XML
<domain type='qemu'>
  <name>$vm</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>$d/vmlinuz</kernel>
    <initrd>$d/initrd.img</initrd>
    <cmdline>$cmdline</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <serial type='pty'/>
    <console type='pty'/>
    $vnc
    <memballoon model='none'/>
  </devices>
</domain>
XML
	if virsh -q define "$d/$vm.xml" >/dev/null && virsh -q start "$vm" >/dev/null; then
		ok "appliance $vm defined and started (direct kernel, TCG)"
	else
		bad "cannot start the appliance $vm"
		exit 1
	fi
}

# console_conf [LINE...]: $d/vmmod.conf: no socket group, leases and
# reservations in $d, then the LINEs
console_conf() {
	mkdir -p "$d/resv"
	printf '%s\n' "socket_group =" "lease_file = $d/leases" \
		"reservations_dir = $d/resv" "$@" >"$d/vmmod.conf"
}
# spawn_vmmod [OPTION...]: vmmod in the background ($vmmod_pid) on
# $vmmod_conf, TCG, its Unix socket and token file in $d, its TCP listener
# on 127.0.0.1:$port, with the OPTIONs (-d, --data-dir ...); its output in
# $d/vmmod.log
spawn_vmmod() {
	"$vmmod" -f "$vmmod_conf" --uri qemu:///system --accel tcg \
		--socket "$d/vmmod.sock" --listen "127.0.0.1:$port" \
		--token-file "$d/token" "$@" >"$d/vmmod.log" 2>&1 &
	vmmod_pid=$!
}
# vmmod_up: true once vmmod wrote its token (then in $token) and answers
# /healthz on 127.0.0.1:$port (10 s at most)
vmmod_up() {
	for _ in $(seq 100); do
		[ -s "$d/token" ] && curl -sf --max-time 2 -o /dev/null \
			"http://127.0.0.1:$port/healthz" && token=$(cat "$d/token") && return 0
		sleep 0.1
	done
	return 1
}
# vm_running VM: true once vmmod (on its Unix socket) has VM running (30 s
# at most)
vm_running() {
	for _ in $(seq 300); do
		curl -s --max-time 2 --unix-socket "$d/vmmod.sock" "http://vmmod/api/vms/$1" |
			grep -q '"running"' && return 0
		sleep 0.1
	done
	return 1
}

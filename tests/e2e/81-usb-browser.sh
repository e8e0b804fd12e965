#!/bin/bash
# 81-usb-browser: the VM page's USB devices panel in Chromium
# (tests/browser/usb.mjs) against a vmmod that runs under umockdev-run, so
# libusb enumerates the fake devices of tests/data/umockdev, and the
# sandbox's libvirtd.  A fake Zigbee stick is attached to a stopped VM from
# the page and listed; a VM whose configured stick is not plugged in gets the
# tile's warning icon and "waiting for replug"; detach.  Screenshot:
# build/screenshots/usb-panel.png.
#
# Only real hardware exercises the hand-over to QEMU: the VM here stays
# stopped (its definition gains the <hostdev>; libvirtd sees no USB device).
# Run it alone with:  tests/sandbox.sh -- tests/e2e/81-usb-browser.sh
set -u
top=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ -z "${GVM_SANDBOX:-}" ]; then
	exec "$top/tests/sandbox.sh" -- "$0" "$@"
fi
. "$top/tests/e2e/lib/common.sh"
need_vmmod
need_tools curl virsh node umockdev-run
need_browser

# libvirtd wants to list USB devices (as in 80-usb.sh): an empty
# /sys/bus/usb/devices inside the sandbox's mount namespace.
if [ ! -d /sys/bus/usb/devices ]; then
	sysb=$(mktemp -d /run/gvm-81-sysbus.XXXXXX)
	mkdir "$sysb/orig"
	mount --bind /sys/bus "$sysb/orig"
	mount -t tmpfs -o mode=0755 gvm-sysbus /sys/bus
	for dd in "$sysb"/orig/*/; do
		n=$(basename "$dd")
		mkdir "/sys/bus/$n"
		mount --bind "$dd" "/sys/bus/$n"
	done
	mkdir -p /sys/bus/usb/devices
fi

. "$top/tests/san/umockdev.sh"
d=$(mktemp -d /tmp/gvm-e2e-usbweb.XXXXXX)
chmod 755 "$d"
port=18193
cleanup() {
	local child
	if [ -n "$vmmod_pid" ]; then
		# umockdev-run passes SIGTERM on to vmmod; wait for vmmod itself
		# (its leak check under check-asan runs as it exits)
		child=$(pgrep -P "$vmmod_pid")
		kill "$vmmod_pid" 2>/dev/null && wait "$vmmod_pid" 2>/dev/null
		for _ in $(seq 300); do
			[ -n "$child" ] && kill -0 "$child" 2>/dev/null || break
			sleep 0.1
		done
		san_keep "$d/vmmod.log" 81-vmmod
	fi
	for n in gvm-usb-web gvm-usb-warn; do virsh -q undefine "$n" >/dev/null 2>&1; done
	if [ "$fails" != 0 ]; then
		echo "--- vmmod log (last 30 lines)"; tail -30 "$d/vmmod.log" 2>/dev/null
	fi
	rm -rf "$d"
}
trap cleanup EXIT

xhci="<controller type='usb' index='0' model='qemu-xhci'/>"
check "define gvm-usb-web" define_vm gvm-usb-web "" q35 "$xhci"
# wants a CH340 with a serial that no fake device has: "waiting"
check "define gvm-usb-warn" define_vm gvm-usb-warn \
	"<metadata><gvm:vm xmlns:gvm='https://guardian.hookprobe.com/vmmod/1'><gvm:usb vendor='0x1a86' product='0x7523' serial='UNPLUGGED1'/></gvm:vm></metadata>" \
	q35 "$xhci"

cat >"$d/vmmod.conf" <<CONF
socket_group =
socket_mode = 0660
lease_file = $d/leases
reservations_dir = $d/resv
CONF
mkdir -p "$d/resv"
args=()
for f in "$top"/tests/data/umockdev/*.umockdev; do
	args+=(--device "$f")
done
# under check-asan: ASan's log file cannot be set up under umockdev's
# preload (tests/san/umockdev.sh); vmmod's reports come in its log
env "${san_env[@]}" umockdev-run "${args[@]}" -- "$vmmod" -d -f "$d/vmmod.conf" --uri qemu:///system --accel tcg \
	--socket "$d/vmmod.sock" --listen "127.0.0.1:$port" --token-file "$d/token" \
	--data-dir "$d" --templates "$top/templates" --web-root "$top/web-assets" \
	>"$d/vmmod.log" 2>&1 &
vmmod_pid=$!
check "vmmod under umockdev is up" wait_vmmod $port "$d/token"
token=$(cat "$d/token")
n=$(curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/host/devices" |
	python3 -c 'import json,sys; print(len(json.load(sys.stdin)["usb"]))' 2>/dev/null)
[ "${n:-0}" -ge 3 ] && ok "vmmod lists $n fake USB devices" || bad "vmmod lists the fake USB devices ($n)"

mkdir -p "$top/build/screenshots"
if (cd "$top/tests/browser" && VMMOD_URL="http://127.0.0.1:$port" VMMOD_TOKEN=$token \
	SHOTS="$top/build/screenshots" timeout 180 node usb.mjs); then
	ok "browser checks (tests/browser/usb.mjs)"
else
	bad "browser checks (tests/browser/usb.mjs)"
fi
[ "$fails" = 0 ] || { echo "81-usb-browser: $fails failed"; exit 1; }
echo "81-usb-browser: all passed"

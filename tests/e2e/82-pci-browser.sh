#!/bin/bash
# 82-pci-browser: the PCI section of the VM page's devices panel in Chromium
# (tests/browser/pci.mjs) against vmmod and the sandbox's libvirtd.  vmmod
# runs in a mount namespace of its own where the fake sysfs tree
# tests/data/sysfs/meteorlake-dgpu (an iGPU, an NPU, bridges, a group that
# cannot go, a discrete GPU whose audio function shares its IOMMU group) is
# bound over /sys/bus/pci and /sys/kernel/iommu_groups: libpci reads it as
# it reads a real host.  libvirtd sees the real /sys; the VMs stay stopped,
# so only their definitions gain and lose <hostdev type='pci'>.
#
# Checked from the page: the fake devices listed with address, class,
# accelerator badge and IOMMU group; the reason and a disabled button for a
# device that cannot go; a device another VM has; attach (keyboard) and
# detach; a whole group; refusals by the VM's security profile (SECRET) and
# by libvirt (a VM without a PCI bus) shown as errors with `virsh dumpxml`
# still without a hostdev.  A second vmmod over an empty PCI tree (as an
# arm64 build lists none) shows no PCI section.  Screenshots:
# build/screenshots/pci-panel.png, pci-page.png.
#
# What only a real x86 host with VFIO exercises: libvirt binding the device
# to vfio-pci when the VM starts, and a live attach.
# Run it alone with:  tests/sandbox.sh -- tests/e2e/82-pci-browser.sh
set -u
top=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ -z "${GVM_SANDBOX:-}" ]; then
	exec "$top/tests/sandbox.sh" -- "$0" "$@"
fi
build=${BUILD:-build/$(uname -m)}
case $build in /*) ;; *) build=$top/$build ;; esac
vmmod=$build/vmmod
[ -x "$vmmod" ] || { echo "FAIL: no $vmmod (make first)"; exit 1; }
for t in curl virsh node unshare python3; do
	command -v $t >/dev/null || { echo "SKIP: no $t"; exit 77; }
done
[ -x /usr/bin/chromium ] || { echo "SKIP: no /usr/bin/chromium"; exit 77; }
[ -d "$top/tests/browser/node_modules/playwright-core" ] ||
	{ echo "SKIP: no playwright-core (make browser-deps)"; exit 77; }
# pci_none.c (arm64 builds) lists no PCI device whatever /sys holds
ldd "$vmmod" 2>/dev/null | grep -q 'libpci\.so' ||
	{ echo "SKIP: $vmmod is built without PCI passthrough"; exit 77; }

fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }

d=$(mktemp -d /tmp/gvm-e2e-pciweb.XXXXXX)
chmod 755 "$d"
port=18194 eport=18195
hostile='<img src=x onerror=alert(1)>pci'
vms=(gvm-pci-web gvm-pci-secret gvm-pci-nobus "$hostile")
pids=()
cleanup() {
	local p
	# vmmod exits on SIGTERM (its leak check under check-asan runs then);
	# its mount namespace and the mounts in it go with it
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	for n in "${vms[@]}"; do virsh -q undefine "$n" >/dev/null 2>&1; done
	if [ "$fails" != 0 ]; then
		echo "--- vmmod log (last 30 lines)"; tail -30 "$d/vmmod.log" 2>/dev/null
	fi
	rm -rf "$d"
}
trap cleanup EXIT

define() { # NAME-XML [METADATA] [MACHINE] [DEVICES]
	cat >"$d/dom.xml" <<XML
<domain type='qemu'>
  <name>$1</name>
  ${2:-}
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='${3:-q35}'>hvm</type></os>
  <devices><memballoon model='none'/>${4:-}</devices>
</domain>
XML
	virsh -q define "$d/dom.xml" >/dev/null
}
gvm="xmlns:gvm='https://guardian.hookprobe.com/vmmod/1'"
define gvm-pci-web || bad "define gvm-pci-web"
# SECRET: vmmod's security profile refuses PCI passthrough
define gvm-pci-secret "<metadata><gvm:vm $gvm><gvm:classification>SECRET</gvm:classification></gvm:vm></metadata>" ||
	bad "define gvm-pci-secret"
# an ISA-only PC: libvirt finds no PCI bus for a hostdev
define gvm-pci-nobus "" isapc || bad "define gvm-pci-nobus"
# holds the iGPU; named with markup, which the page must show as text
define '&lt;img src=x onerror=alert(1)&gt;pci' "" q35 \
	"<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x00' slot='0x02' function='0x0'/></source></hostdev>" ||
	bad "define the VM that holds the iGPU"

# The fake trees: copies, so nothing can write into tests/data.
cp -a "$top/tests/data/sysfs/meteorlake-dgpu" "$d/sys"
mkdir -p "$d/empty/bus/pci/devices" "$d/empty/bus/pci/drivers" "$d/empty/kernel/iommu_groups"
n_fake=$(find "$d/sys/bus/pci/devices" -mindepth 1 -maxdepth 1 | wc -l)

# start_vmmod TREE PORT NAME: vmmod with TREE over /sys/bus/pci and
# /sys/kernel/iommu_groups in a mount namespace of its own (sh execs vmmod:
# the pid is vmmod's)
start_vmmod() {
	local tree=$1 p=$2 n=$3
	mkdir -p "$d/$n/resv"
	cat >"$d/$n/vmmod.conf" <<CONF
socket_group =
socket_mode = 0660
lease_file = $d/$n/leases
reservations_dir = $d/$n/resv
CONF
	# shellcheck disable=SC2016
	unshare --mount --propagation private -- sh -euc '
		tree=$1; shift
		mount --bind "$tree/bus/pci" /sys/bus/pci
		if [ -d /sys/kernel/iommu_groups ]; then
			mount --bind "$tree/kernel/iommu_groups" /sys/kernel/iommu_groups
		else
			mount -t tmpfs -o mode=0755 gvm-sys-kernel /sys/kernel
			mkdir /sys/kernel/iommu_groups
			mount --bind "$tree/kernel/iommu_groups" /sys/kernel/iommu_groups
		fi
		exec "$@"' sh "$tree" \
		"$vmmod" -d -f "$d/$n/vmmod.conf" --uri qemu:///system --accel tcg \
		--socket "$d/$n/vmmod.sock" --listen "127.0.0.1:$p" --token-file "$d/$n/token" \
		--data-dir "$d/$n" --templates "$top/templates" --web-root "$top/web-assets" \
		>"$d/$n.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do
		curl -sf "http://127.0.0.1:$p/healthz" >/dev/null 2>&1 && [ -s "$d/$n/token" ] && break
		sleep 0.1
	done
	curl -sf "http://127.0.0.1:$p/healthz" -o /dev/null
}
npci() { # PORT NAME: how many PCI devices GET /api/host/devices lists
	curl -s -H "Authorization: Bearer $(cat "$d/$2/token")" "http://127.0.0.1:$1/api/host/devices" |
		python3 -c 'import json,sys; print(len(json.load(sys.stdin)["pci"]))' 2>/dev/null
}
start_vmmod "$d/sys" $port vmmod && ok "vmmod over the fake sysfs tree is up" || bad "vmmod is up"
start_vmmod "$d/empty" $eport vmmod-empty && ok "vmmod over an empty PCI tree is up" || bad "second vmmod is up"
n=$(npci $port vmmod)
[ "$n" = "$n_fake" ] && ok "vmmod lists the $n fake PCI devices" || bad "vmmod lists the fake PCI devices ($n, want $n_fake)"
n=$(npci $eport vmmod-empty)
[ "$n" = 0 ] && ok "the other vmmod lists no PCI device" || bad "empty PCI tree lists none ($n)"

mkdir -p "$top/build/screenshots"
if (cd "$top/tests/browser" && VMMOD_URL="http://127.0.0.1:$port" VMMOD_TOKEN=$(cat "$d/vmmod/token") \
	EMPTY_URL="http://127.0.0.1:$eport" EMPTY_TOKEN=$(cat "$d/vmmod-empty/token") HOLDER="$hostile" \
	SHOTS="$top/build/screenshots" timeout 240 node pci.mjs); then
	ok "browser checks (tests/browser/pci.mjs)"
else
	bad "browser checks (tests/browser/pci.mjs)"
fi
# whatever the page did: no VM is left with a PCI device but the holder
for n in gvm-pci-web gvm-pci-secret gvm-pci-nobus; do
	if virsh dumpxml --inactive "$n" | grep -q "<hostdev"; then
		bad "$n's definition has a hostdev left"
	else
		ok "$n's definition has no hostdev"
	fi
done
[ "$fails" = 0 ] || { echo "82-pci-browser: $fails failed"; exit 1; }
echo "82-pci-browser: all passed"

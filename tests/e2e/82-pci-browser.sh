#!/bin/bash
# 82-pci-browser: PCI passthrough in the web UI, in Chromium
# (tests/browser/pci.mjs), against vmmod and the sandbox's libvirtd: the PCI
# section of the VM page's devices panel and the deploy dialog's PCI picks.
# vmmod runs in a mount namespace of its own where a fake sysfs tree
# (tests/data/sysfs/meteorlake-dgpu: an iGPU, an NPU, bridges, a group that
# cannot go, a discrete GPU whose audio function shares its IOMMU group) is
# bound over /sys/bus/pci and /sys/kernel/iommu_groups: libpci reads it as
# it reads a real host.  libvirtd sees the real /sys; no VM is ever started,
# so only definitions gain and lose <hostdev type='pci'>.
#
# Checked from the page, devices panel: the fake devices listed with
# address, class, accelerator badge and IOMMU group; the reason and a
# disabled button for a device that cannot go; a device another VM has;
# attach (keyboard) and detach; a whole group; refusals by the VM's security
# profile (SECRET) and by libvirt (a VM without a PCI bus) shown as errors
# with `virsh dumpxml` still without a hostdev.
# Deploy dialog: a template of a local catalog (pci-demo: a small local
# qcow2 image, wants pci:npu and pci:gpu) and the shipped ubuntu-server
# offer the NPU and the GPUs (npu-demo, pci:npu: the NPU only), none
# ticked, the held iGPU disabled with its holder; a SECRET classification
# (added to the request on its way by the test: the dialog's own Security
# part stops SECRET with a PCI pick before sending, 83-security-browser)
# with the NPU is refused by vmmod, the refusal shown by the picks, nothing
# made; the NPU and the discrete GPU (with its group) picked from the
# keyboard reach the create request, and the deploy (not started) defines
# the VM with <hostdev managed='yes'> for the three addresses, which the
# dialog then shows in use.  A template that wants a USB stick and the NPU
# (mixed-demo) shows both parts; its request carries the NPU alone.  A
# vmmod over console-gpu: the host's console
# GPU offered disabled with vmmod's reason, npu-demo says there is no NPU.
# A vmmod over an empty PCI tree (as an arm64 build lists none): no PCI
# section, no PCI picks.  Screenshots: build/screenshots/pci-panel.png,
# pci-page.png, pci-deploy.png.
#
# What only a real x86 host with VFIO exercises: libvirt binding the device
# to vfio-pci when the VM starts, and a live attach.
# Run it alone with:  tests/sandbox.sh -- tests/e2e/82-pci-browser.sh
set -u
top=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ -z "${GVM_SANDBOX:-}" ]; then
	exec "$top/tests/sandbox.sh" -- "$0" "$@"
fi
. "$top/tests/e2e/lib/common.sh"
. "$top/tests/e2e/lib/fakesys.sh" # start_vmmod over a fake sysfs tree
need_vmmod
need_tools curl virsh node unshare python3 qemu-img sha256sum
need_browser
# pci_none.c (arm64 builds) lists no PCI device whatever /sys holds
ldd "$vmmod" 2>/dev/null | grep -q 'libpci\.so' ||
	{ echo "SKIP: $vmmod is built without PCI passthrough"; exit 77; }

d=$(mktemp -d /tmp/gvm-e2e-pciweb.XXXXXX)
chmod 755 "$d"
port=18194 eport=18195 cport=18196
hostile='<img src=x onerror=alert(1)>pci'
# deployed by the page (not started), and refused by the SECRET profile
deployed=gvm-pci-deploy refused=gvm-pci-refused
vms=(gvm-pci-web gvm-pci-secret gvm-pci-nobus "$hostile" "$deployed" "$refused" gvm-pci-mixed)
pids=()
cleanup() {
	local p
	# vmmod exits on SIGTERM (its leak check under check-asan runs then);
	# its mount namespace and the mounts in it go with it
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	for n in "${vms[@]}"; do virsh -q undefine --nvram "$n" >/dev/null 2>&1; done
	if [ "$fails" != 0 ]; then
		echo "--- vmmod log (last 30 lines)"; tail -30 "$d/vmmod.log" 2>/dev/null
	fi
	rm -rf "$d"
}
trap cleanup EXIT

gvm="xmlns:gvm='https://guardian.hookprobe.com/vmmod/1'"
check "define gvm-pci-web" define_vm gvm-pci-web
# SECRET: vmmod's security profile refuses PCI passthrough
check "define gvm-pci-secret" define_vm gvm-pci-secret \
	"<metadata><gvm:vm $gvm><gvm:classification>SECRET</gvm:classification></gvm:vm></metadata>"
# an ISA-only PC: libvirt finds no PCI bus for a hostdev
check "define gvm-pci-nobus" define_vm gvm-pci-nobus "" isapc
# holds the iGPU; named with markup, which the page must show as text
check "define the VM that holds the iGPU" define_vm '&lt;img src=x onerror=alert(1)&gt;pci' "" q35 \
	"<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x00' slot='0x02' function='0x0'/></source></hostdev>"

# The fake trees: copies, so nothing can write into tests/data.
cp -a "$top/tests/data/sysfs/meteorlake-dgpu" "$d/sys"
cp -a "$top/tests/data/sysfs/console-gpu" "$d/console"
mkdir -p "$d/empty/bus/pci/devices" "$d/empty/bus/pci/drivers" "$d/empty/kernel/iommu_groups"
n_fake=$(find "$d/sys/bus/pci/devices" -mindepth 1 -maxdepth 1 | wc -l)

# The catalog of the fake trees' vmmods: the shipped templates, pci-demo
# (a disk image made here, an empty qcow2: the VM is defined, never
# started) and npu-demo
cp -a "$top/templates" "$d/templates"
mkdir "$d/img"
qemu-img create -q -f qcow2 "$d/img/pci-demo.qcow2" 64M
sha=$(sha256sum "$d/img/pci-demo.qcow2" | cut -d' ' -f1)
size=$(stat -c %s "$d/img/pci-demo.qcow2")
cat >"$d/templates/pci-demo.json" <<JSON
{
  "schema": 1,
  "id": "pci-demo",
  "name": "PCI deploy test",
  "description": "An empty disk that wants the host's NPU or a GPU (82-pci-browser).",
  "kind": "disk-image",
  "firmware": {"type": "uefi", "secure_boot": false},
  "memory_mb": 256,
  "min_memory_mb": 128,
  "vcpus": 1,
  "disk_gb": 1,
  "disk_mode": "overlay",
  "web": null,
  "dns_name": "pci-demo",
  "wants_devices": ["pci:npu", "pci:gpu"],
  "cloud_init": null,
  "images": {
    "x86_64": {"url": "file://$d/img/pci-demo.qcow2", "sha256": "$sha", "note": "made by the test",
      "size": $size, "format": "qcow2", "compression": null, "version": "test"}
  }
}
JSON
# npu-demo: the same, wanting the NPU only
sed -e 's/"pci-demo"/"npu-demo"/' -e 's/"PCI deploy test"/"NPU deploy test"/' \
	-e 's/\["pci:npu", "pci:gpu"\]/["pci:npu"]/' "$d/templates/pci-demo.json" >"$d/templates/npu-demo.json"
# mixed-demo: a Zigbee stick (none is plugged in here) and the NPU
sed -e 's/"pci-demo"/"mixed-demo"/' -e 's/"PCI deploy test"/"USB and PCI deploy test"/' \
	-e 's/\["pci:npu", "pci:gpu"\]/["usb:zigbee", "pci:npu"]/' "$d/templates/pci-demo.json" >"$d/templates/mixed-demo.json"

npci() { # PORT NAME: how many PCI devices GET /api/host/devices lists
	curl -s -H "Authorization: Bearer $(cat "$d/$2/token")" "http://127.0.0.1:$1/api/host/devices" |
		python3 -c 'import json,sys; print(len(json.load(sys.stdin)["pci"]))' 2>/dev/null
}
check "vmmod over the fake sysfs tree is up" start_vmmod "$d/sys" $port vmmod "$d/templates"
check "vmmod over an empty PCI tree is up" start_vmmod "$d/empty" $eport vmmod-empty
check "vmmod over a host whose only GPU is its console is up" start_vmmod "$d/console" $cport vmmod-console "$d/templates"
n=$(npci $port vmmod)
[ "$n" = "$n_fake" ] && ok "vmmod lists the $n fake PCI devices" || bad "vmmod lists the fake PCI devices ($n, want $n_fake)"
n=$(npci $eport vmmod-empty)
[ "$n" = 0 ] && ok "the empty tree's vmmod lists no PCI device" || bad "empty PCI tree lists none ($n)"
n=$(npci $cport vmmod-console)
[ "$n" = 2 ] && ok "the console host's vmmod lists its 2 PCI devices" || bad "console-gpu lists 2 ($n)"

mkdir -p "$top/build/screenshots"
if (cd "$top/tests/browser" && VMMOD_URL="http://127.0.0.1:$port" VMMOD_TOKEN=$(cat "$d/vmmod/token") \
	EMPTY_URL="http://127.0.0.1:$eport" EMPTY_TOKEN=$(cat "$d/vmmod-empty/token") \
	CONSOLE_URL="http://127.0.0.1:$cport" CONSOLE_TOKEN=$(cat "$d/vmmod-console/token") \
	HOLDER="$hostile" DEPLOYED="$deployed" REFUSED="$refused" \
	SHOTS="$top/build/screenshots" timeout 300 node pci.mjs); then
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
# the deployed VM was deleted with its disk by the page's test, the
# refused one never made: no domain, no file in the pool, no reservation
for n in "$deployed" "$refused"; do
	left=""
	virsh -q dominfo "$n" >/dev/null 2>&1 && left="domain "
	for f in "$d/vmmod/pool/$n".* "$d/vmmod/pool/$n"-* "$d/vmmod/resv/$n" "$d/vmmod/hosts/$n"; do
		[ -e "$f" ] && left="$left${f#"$d"/} "
	done
	grep -qF "\"$n\"" "$d/vmmod/reservations.json" 2>/dev/null && left="${left}reservations.json"
	[ -z "$left" ] && ok "nothing of $n is left" || bad "$n left: $left"
done
[ "$fails" = 0 ] || { echo "82-pci-browser: $fails failed"; exit 1; }
echo "82-pci-browser: all passed"

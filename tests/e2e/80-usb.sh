#!/bin/bash
# 80-usb: USB passthrough against fake devices and the sandbox's libvirtd.
# The unit runner's usb suite runs under umockdev-run with every device
# description of tests/data/umockdev (two identical CP210x sticks with
# different serials, a ConBee II, an Intel NCS2, a CH340 without a serial,
# a hub, the root hub, a flash drive); inside tests/sandbox.sh it also
# registers its libvirt cases: attach/detach/persist in a real domain
# definition, the 409 refusals, re-attach after a synthetic "arrived"
# hotplug event (the path usb.c's libusb callback takes), a missing device
# at VM start (startupPolicy='optional', state "waiting"), and a live attach
# to a running TCG domain that fails and leaves nothing behind.
#
# Only real hardware exercises: QEMU opening the host device (the live
# hand-over).  libvirtd here sees no USB devices — umockdev fakes them for
# the test process only — so no live attach can succeed in this sandbox,
# and none is reported as succeeded.
# Run it alone with:  tests/sandbox.sh -- tests/e2e/80-usb.sh
set -eu
top=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ -z "${GVM_SANDBOX:-}" ]; then
	exec "$top/tests/sandbox.sh" -- "$0" "$@"
fi
unit=$top/${BUILD:-build/$(uname -m)}/unit-tests
case ${BUILD:-} in /*) unit=$BUILD/unit-tests ;; esac
[ -x "$unit" ] || { echo "SKIP: $unit not built (make check-unit)"; exit 77; }
command -v umockdev-run >/dev/null || { echo "SKIP: umockdev-run missing (packages.txt: umockdev)"; exit 77; }

# This kernel has no /sys/bus/usb, and libvirtd fails a VM start with a
# USB hostdev when it cannot even list USB devices (a Pi always can).  Give
# the sandbox (its own mount namespace, libvirtd's too) an empty
# /sys/bus/usb/devices: the other buses stay bind-mounted as they were.
if [ ! -d /sys/bus/usb/devices ]; then
	sysb=$(mktemp -d /run/gvm-80-sysbus.XXXXXX)
	mkdir "$sysb/orig"
	mount --bind /sys/bus "$sysb/orig"
	mount -t tmpfs -o mode=0755 gvm-sysbus /sys/bus
	for d in "$sysb"/orig/*/; do
		n=$(basename "$d")
		mkdir "/sys/bus/$n"
		mount --bind "$d" "/sys/bus/$n"
	done
	mkdir -p /sys/bus/usb/devices
fi

# under check-asan: ASan's log file cannot be set up under umockdev's
# preload (tests/san/umockdev.sh); the suite's reports come in $out
. "$top/tests/san/umockdev.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
args=()
for f in "$top"/tests/data/umockdev/*.umockdev; do
	args+=(--device "$f")
done
rc=0
out=$(cd "$top" && CK_RUN_SUITE=usb TESTDATA="$top/tests/data" \
	env "${san_env[@]}" umockdev-run "${args[@]}" -- "$unit" 2>&1) || rc=$?
printf '%s\n' "$out" >"$tmp/usb-suite.out"
san_keep "$tmp/usb-suite.out" 80-usb-suite
[ $rc = 0 ] || { echo "$out"; echo "FAIL usb suite (exit $rc)"; exit 1; }
echo "$out"
# 5 pure + 2 umockdev + 3 sandbox cases: fewer means some were left out.
grep -q '^100%: Checks: 10, Failures: 0, Errors: 0' <<<"$out" ||
	{ echo "FAIL expected 10 passing usb checks"; exit 1; }
left=$(virsh list --all --name | grep -c '^gvm-usb-' || true)
[ "$left" = 0 ] || { echo "FAIL test domains left behind"; exit 1; }
echo "ok   usb suite: discovery, persistent attach/detach, replug, refusals, failed live attach leaves nothing"

# PCI through the same devices API (x86 builds): a config-only attach and
# detach of a fake-sysfs device in a real libvirtd definition, the refusals,
# "in use by another VM".  Real VFIO (vfio-pci binding at VM start, a live
# attach) needs an x86 host with an IOMMU: not exercised here.
out=$(cd "$top" && CK_RUN_SUITE=pcidev TESTDATA="$top/tests/data" "$unit" 2>&1) ||
	{ echo "$out"; echo "FAIL pcidev suite"; exit 1; }
echo "$out"
if grep -q '^100%: Checks: 4, Failures: 0, Errors: 0' <<<"$out"; then
	echo "ok   pci via the devices API: definition attach/detach, refusals, in use by another VM, none for a SECRET VM"
elif grep -q '^100%: Checks: 2, Failures: 0, Errors: 0' <<<"$out"; then
	echo "ok   pci via the devices API: not built here (501), as on arm64"
else
	echo "FAIL expected 4 passing pcidev checks"; exit 1
fi
left=$(virsh list --all --name | grep -c '^gvm-pci-' || true)
[ "$left" = 0 ] || { echo "FAIL pci test domains left behind"; exit 1; }

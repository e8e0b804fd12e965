#!/bin/sh
# Rebuilds the fake sysfs trees the PCI unit tests point libpci at
# (tests/unit/test_pci.c; tests/e2e/82-pci-browser.sh mounts one over /sys
# for vmmod).  Each tree is a /sys: bus/pci/devices/ADDR holds
# what libpci's sysfs method reads (vendor, device, class, irq, resource)
# plus the driver and iommu_group links and boot_vga; kernel/iommu_groups/N
# lists the group's members.  Run from this directory; commit the result.
set -e
cd "$(dirname "$0")"

# dev TREE ADDR VENDOR DEVICE CLASS DRIVER|- GROUP|- BOOT_VGA|-
dev() {
	t=$1 a=$2 d=$1/bus/pci/devices/$2
	mkdir -p "$d"
	printf '0x%s\n' "$3" > "$d/vendor"
	printf '0x%s\n' "$4" > "$d/device"
	printf '0x%s\n' "$5" > "$d/class"
	printf '0\n' > "$d/irq"
	printf '0x0000000000000000 0x0000000000000000 0x0000000000000000\n' > "$d/resource"
	if [ "$6" != - ]; then
		mkdir -p "$t/bus/pci/drivers/$6"
		ln -sfn "../../drivers/$6" "$d/driver"
		printf '%s\n' "$a" > "$t/bus/pci/drivers/$6/bound"
	fi
	if [ "$7" != - ]; then
		mkdir -p "$t/kernel/iommu_groups/$7/devices"
		ln -sfn "../../../../kernel/iommu_groups/$7" "$d/iommu_group"
		ln -sfn "../../../../bus/pci/devices/$a" "$t/kernel/iommu_groups/$7/devices/$a"
	fi
	[ "$8" = - ] || printf '%s\n' "$8" > "$d/boot_vga"
}

rm -rf meteorlake meteorlake-dgpu console-gpu no-iommu

# A Meteor Lake laptop run headless (console on serial): iGPU and NPU each
# alone in a group, the NIC behind its root port (bridges may stay), the
# audio function sharing group 4 with the LPC and SPI controllers.
T=meteorlake
dev $T 0000:00:00.0 8086 7d01 060000 - 0 -
dev $T 0000:00:02.0 8086 7d55 030000 i915 1 0
dev $T 0000:00:0b.0 8086 7d1d 120000 intel_vpu 2 -
dev $T 0000:00:1c.0 8086 7e38 060400 pcieport 3 -
dev $T 0000:01:00.0 8086 125c 020000 igc 3 -
dev $T 0000:00:1f.0 8086 7e02 060100 - 4 -
dev $T 0000:00:1f.3 8086 7e28 040100 snd_hda_intel 4 -
dev $T 0000:00:1f.5 8086 7e23 0c8000 intel-spi 4 -

# The same laptop with a discrete GPU behind a second root port: the GPU and
# its HDMI audio function share group 6 and can go to a VM together
# (tests/e2e/82-pci-browser.sh: the dashboard's "Attach group").
T=meteorlake-dgpu
dev $T 0000:00:00.0 8086 7d01 060000 - 0 -
dev $T 0000:00:02.0 8086 7d55 030000 i915 1 0
dev $T 0000:00:0b.0 8086 7d1d 120000 intel_vpu 2 -
dev $T 0000:00:1c.0 8086 7e38 060400 pcieport 3 -
dev $T 0000:01:00.0 8086 125c 020000 igc 3 -
dev $T 0000:00:1f.0 8086 7e02 060100 - 4 -
dev $T 0000:00:1f.3 8086 7e28 040100 snd_hda_intel 4 -
dev $T 0000:00:1f.5 8086 7e23 0c8000 intel-spi 4 -
dev $T 0000:00:06.0 8086 7e4d 060400 pcieport 5 -
dev $T 0000:02:00.0 10de 28e0 030000 nouveau 6 -
dev $T 0000:02:00.1 10de 22be 040300 snd_hda_intel 6 -

# A desktop whose only GPU shows the host's console.
T=console-gpu
dev $T 0000:00:00.0 8086 3e0f 060000 - 0 -
dev $T 0000:00:02.0 8086 3e92 030000 i915 1 1

# The same laptop booted without intel_iommu=on: no groups at all.
T=no-iommu
dev $T 0000:00:00.0 8086 7d01 060000 - - -
dev $T 0000:00:02.0 8086 7d55 030000 i915 - 0
dev $T 0000:00:0b.0 8086 7d1d 120000 intel_vpu - -

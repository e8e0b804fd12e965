# shellcheck shell=bash
# vmmod over a fake PCI sysfs tree (tests/data/sysfs/), shared by
# 82-pci-browser and 83-security-browser.  Needs $top, $d, $vmmod, a pids
# array (the test kills them) and wait_vmmod from lib/common.sh.  libvirtd
# still sees the real /sys: the tests never start a VM with a hostdev.

# start_vmmod TREE PORT NAME [TEMPLATES]: vmmod with TREE over /sys/bus/pci
# and /sys/kernel/iommu_groups in a mount namespace of its own (sh execs
# vmmod: the pid is vmmod's), its catalog TEMPLATES (the shipped one)
start_vmmod() {
	local tree=$1 p=$2 n=$3 tpl=${4:-$top/templates}
	mkdir -p "$d/$n/resv" "$d/$n/hosts"
	cat >"$d/$n/vmmod.conf" <<CONF
socket_group =
socket_mode = 0660
lease_file = $d/$n/leases
reservations_dir = $d/$n/resv
hosts_dir = $d/$n/hosts
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
		--data-dir "$d/$n" --templates "$tpl" --web-root "$top/web-assets" \
		>"$d/$n.log" 2>&1 &
	pids+=($!)
	wait_vmmod "$p" "$d/$n/token"
}

#!/bin/bash
# 93-secureboot: a properly signed guest boots with Secure Boot on, through
# a real vmmod deploy.  vmmod acts as an x86_64 host (TCG) and deploys, with
# "secure_boot": true, the x86_64 appliance's Secure Boot variant
# (build/appliance/x86_64/disk-sb.qcow2.xz: Debian's Microsoft-signed shim,
# Debian-signed GRUB and Debian-signed cloud kernel; tests/appliance/build.sh)
# from a local catalog template (demo.json pointed at disk-sb), and as a
# control the plain appliance (unsigned GRUB) with the same profile:
#   - both domains: <domain type='qemu'>, q35, the OVMF secure-boot loader
#     (OVMF_CODE_4M.secboot.fd, secure='yes'), NVRAM from the template with
#     Microsoft's keys (OVMF_VARS_4M.ms.fd), SMM on
#   - the signed guest prints GUEST-READY x86_64 on its serial console and
#     never "Access Denied"; in its console's shell, the kernel log says
#     "secureboot: Secure boot enabled" and "Kernel is locked down from EFI
#     Secure Boot", and securityfs says lockdown is [integrity] (the kernel
#     read SecureBoot=1 from the firmware; the appliance's initramfs has no
#     efivarfs module, so the variable itself is not read here)
#   - the unsigned control never prints GUEST-READY: OVMF says "Access
#     Denied" (as in 91-profiles, here under the very same firmware)
# Skips (77) when qemu-system-x86_64, OVMF's secure-boot build or its
# Microsoft-keys NVRAM template is missing.
# Run it alone:  sudo tests/sandbox.sh -- tests/e2e/93-secureboot.sh
set -u
top=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ -z "${GVM_SANDBOX:-}" ]; then
	exec "$top/tests/sandbox.sh" -- "$0" "$@"
fi
. "$top/tests/e2e/lib/deploy.sh" # vmmod, api, field, wait_job, create, ...
timeout=${DEPLOY_TIMEOUT:-180}
boot_timeout=${APPLIANCE_TIMEOUT:-240}
need_tools curl jq virsh script xmllint qemu-img qemu-system-x86_64
for f in /usr/share/OVMF/OVMF_CODE_4M.secboot.fd /usr/share/OVMF/OVMF_VARS_4M.ms.fd; do
	[ -e "$f" ] || { echo "SKIP: no $f (ovmf)"; exit 77; }
done
need_vmmod
need_images x86_64
# SB_DISK: which disk the signed template deploys (default disk-sb; set
# SB_DISK=disk to watch this test fail on the unsigned appliance)
sbdisk=${SB_DISK:-disk-sb}
[ -f "$appl/x86_64/$sbdisk.qcow2.xz.sha256" ] ||
	{ echo "FAIL: no $appl/x86_64/$sbdisk.qcow2.xz (make appliances)"; exit 1; }

deploy_dir secureboot
trap deploy_cleanup EXIT
# The VMs' bridge, only inside the sandbox's namespace (no DHCP: the
# appliance says GUEST-IP none after about 4 s and then runs its shell).
br0_up 192.168.4.1/27
# 512 MB: with Secure Boot enforced, the signed chain reboots at 256 MB
# (demo.json's size) right after GRUB's "Loading /vmlinuz-..." (384 MB
# boots; without Secure Boot 256 MB does too).
jq --arg disk "$sbdisk" '.id = "demo-sb" | .name = "Demo appliance, signed boot chain"
	| .dns_name = "demo-sb" | .memory_mb = 512 | .min_memory_mb = 384
	| .description = "The x86_64 test appliance booted by shim-signed, grub-efi-amd64-signed and the signed Debian kernel"
	| .images = {x86_64: (.images.x86_64 | .url = "file://{appliance_dir}/x86_64/\($disk).qcow2.xz")}' \
	"$top/templates/demo.json" >"$d/templates/demo-sb.json"
vmmod_conf "ram_budget_mb = 2048"

check "vmmod (as an x86_64 host) answers" start_vmmod x86_64
api GET /api/vms/templates >/dev/null
check "the catalog has demo-sb (the signed disk, $sbdisk.qcow2.xz)" \
	jqe '[.. | objects | select(.id? == "demo-sb")] | length > 0' "$d/out"

# deploy NAME TEMPLATE: create with Secure Boot and start; records the serial
deploy() {
	create "{\"template\":\"$2\",\"name\":\"$1\",\"secure_boot\":true,\"start\":true}"
	check "create $1 ($2, secure_boot) -> 202" [ -n "$job" ]
	wait_job "$job" succeeded failed cancelled
	check "job $1 succeeded" jqe '.state == "succeeded"' "$d/out"
	serial "$1"
}
# firmware NAME: the checks of the secure-boot domain definition
firmware() {
	local x=$d/$1.inactive.xml
	virsh dumpxml --inactive "$1" >"$x" 2>/dev/null
	check "$1: <domain type='qemu'> (TCG), q35" bash -c \
		"xmllint --xpath '/domain[@type=\"qemu\"]/os/type[starts-with(@machine, \"pc-q35\") or @machine=\"q35\"]' '$x' >/dev/null 2>&1"
	check "$1: loader is OVMF's secure-boot build, secure='yes'" bash -c \
		"xmllint --xpath 'string(/domain/os/loader[@secure=\"yes\" and @type=\"pflash\"])' '$x' | grep -q 'OVMF_CODE_4M.secboot.fd'"
	check "$1: NVRAM from the template with Microsoft's keys (OVMF_VARS_4M.ms.fd)" bash -c \
		"xmllint --xpath 'string(/domain/os/nvram/@template)' '$x' | grep -q 'OVMF_VARS_4M.ms.fd'"
	check "$1: SMM on" bash -c "xmllint --xpath '/domain/features/smm[@state=\"on\"]' '$x' >/dev/null 2>&1"
}
has() { tr -d '\r' <"$d/$1.serial" 2>/dev/null | grep -Eq "$2"; }

# Both boot at once (one TCG guest each); the control first, it is smaller.
deploy sb0 demo
deploy sb1 demo-sb
firmware sb0
firmware sb1

# ------------------------------------------------------------ signed: boots
if wait_serial sb1 'Access Denied|^GUEST-READY' "$boot_timeout"; then
	if has sb1 '^GUEST-READY x86_64'; then
		ok "sb1: the signed chain (shim -> GRUB -> kernel) booted under Secure Boot: GUEST-READY x86_64"
	else
		bad "sb1: Secure Boot refused the signed chain ($(tr -d '\r' <"$d/sb1.serial" |
			grep -m1 -o 'Boot[0-9A-F]* "[^"]*".*Access Denied' | sed 's/" from .*:/":/'))"
	fi
else
	bad "sb1: neither GUEST-READY nor 'Access Denied' within ${boot_timeout}s"
	tr -d '\r' <"$d/sb1.serial" | tail -15
fi
check "sb1: no 'Access Denied' / verification failure on its console" \
	bash -c "! tr -d '\r' <'$d/sb1.serial' | grep -Eqi 'Access Denied|Verification failed|bad shim signature'"

# In the console's shell (after GUEST-IP): the kernel's own view.  The
# answers are matched at the start of a line, so the echoed command lines
# ("appliance# ...") never count.
sb_log='^\[ *[0-9.]+\] secureboot: Secure boot enabled'
ld_log='^\[ *[0-9.]+\] Kernel is locked down from EFI Secure Boot'
ld_fs='^none \[integrity\] confidentiality'
if has sb1 '^GUEST-READY' && wait_serial sb1 '^GUEST-IP ' 60; then
	# Typed into the pty QEMU reads (libvirt's console stream reads what
	# the guest writes; this end only writes).
	pty=$(virsh ttyconsole sb1 2>/dev/null)
	if [ -n "$pty" ] && exec 3>"$pty"; then
		end=$((SECONDS + 60))
		until { has sb1 "$sb_log" && has sb1 "$ld_fs"; } || [ $SECONDS -ge $end ]; do
			printf '\ndmesg | grep -e "Secure boot" -e "locked down"\n' >&3
			sleep 1
			printf 'mount -t securityfs securityfs /sys/kernel/security; cat /sys/kernel/security/lockdown\n' >&3
			sleep 3
		done
		exec 3>&-
	else
		bad "sb1: no console pty ($pty)"
	fi
	check "sb1: the guest kernel says 'secureboot: Secure boot enabled'" has sb1 "$sb_log"
	check "sb1: the guest kernel is locked down from EFI Secure Boot" has sb1 "$ld_log"
	check "sb1: /sys/kernel/security/lockdown is [integrity]" has sb1 "$ld_fs"
	check "sb1: never 'Secure boot disabled'" bash -c \
		"! tr -d '\r' <'$d/sb1.serial' | grep -Eq '^\[ *[0-9.]+\] secureboot: Secure boot disabled'"
	if [ "$fails" != 0 ]; then
		echo "     sb1 console (last 15 lines):"
		tr -d '\r' <"$d/sb1.serial" | tail -15 | sed 's/^/     /'
	fi
else
	bad "sb1: no shell to ask (no GUEST-READY / GUEST-IP)"
fi

# ------------------------------------------------------------ unsigned: refused
if wait_serial sb0 'Access Denied|^GUEST-READY' "$boot_timeout"; then
	if has sb0 '^GUEST-READY'; then
		bad "sb0: the unsigned appliance booted under the same Secure Boot firmware"
	else
		ok "sb0: the unsigned appliance is refused ($(tr -d '\r' <"$d/sb0.serial" |
			grep -m1 -o 'Boot[0-9A-F]* "[^"]*".*Access Denied' | sed 's/" from .*:/":/'))"
	fi
else
	bad "sb0: no 'Access Denied' from OVMF within ${boot_timeout}s"
	tr -d '\r' <"$d/sb0.serial" | tail -5
fi

api DELETE "/api/vms/sb0?force=true&remove_disk=true" >/dev/null
check "sb0 deleted with its disk" nothing_left sb0
api DELETE "/api/vms/sb1?force=true&remove_disk=true" >/dev/null
check "sb1 deleted with its disk" nothing_left sb1

[ "$fails" = 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all Secure Boot checks passed"

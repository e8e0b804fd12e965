#!/bin/bash
# 91-profiles: security profiles end to end through a real vmmod deploy
# (issue 8.5).  vmmod acts as an x86_64 host (TCG) and deploys the tests'
# x86_64 appliance through the demo template (file://, UEFI disk image).
#   - refused up front with 4xx and a clear message, nothing downloaded and
#     no job made: a test per classification rule (SECRET without TPM /
#     Secure Boot, TOP SECRET without encryption, SECRET and TOP SECRET with a
#     PCI device), bad classification names and types; later, as an aarch64
#     host: Secure Boot refused (409 secure_boot_unavailable)
#   - TOP SECRET (TPM + Secure Boot + encrypted disk): the job succeeds; the
#     domain has the OVMF secure-boot loader (secure='yes'), SMM, tpm-crb,
#     the disk's <encryption format='luks'> naming a libvirt secret, the
#     classification in its metadata; the volume XML and `qemu-img info` say
#     LUKS; `virsh secret-list` has the secret (private: its value is not
#     readable).  The appliance's GRUB is not signed, so Secure Boot with
#     Microsoft's keys must refuse it: the guest never prints GUEST-READY
#     (OVMF says "Access Denied" on the serial console)
#   - CUI without a TPM is allowed: deployed with an encrypted disk, it boots
#     from that disk (GUEST-READY on the serial console)
#   - a deploy cancelled while its encrypted disk is being made leaves no
#     volume and no secret
#   - deleting the VMs with remove_disk removes their volumes and secrets
# Skips (77) when qemu-system-x86_64, OVMF's secure-boot build or swtpm is
# missing.  Run it alone:  sudo tests/sandbox.sh -- tests/e2e/91-profiles.sh
set -u
top=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ -z "${GVM_SANDBOX:-}" ]; then
	exec "$top/tests/sandbox.sh" -- "$0" "$@"
fi
. "$top/tests/e2e/lib/deploy.sh" # vmmod, api, field, wait_job, create, ...
timeout=${DEPLOY_TIMEOUT:-180}
need_tools curl jq virsh script qemu-img qemu-system-x86_64
for f in /usr/share/OVMF/OVMF_CODE_4M.secboot.fd /usr/share/OVMF/OVMF_VARS_4M.ms.fd /usr/bin/swtpm; do
	[ -e "$f" ] || { echo "SKIP: no $f (ovmf, swtpm)"; exit 77; }
done
need_vmmod
need_images x86_64

deploy_dir profiles
trap deploy_cleanup EXIT
# The VMs' bridge, only inside the sandbox's namespace (no DHCP needed:
# GUEST-READY comes before the guest asks for an address).
br0_up 192.168.4.1/27
vmmod_conf "ram_budget_mb = 2048"
# expect STATUS CODE MSG-REGEX BODY: a refused create, with its message
expect() {
	local want=$1 wcode=$2 re=$3 got
	got=$(api POST /api/vms/create "$4")
	if [ "$got" = "$want" ] && [ "$(field .code)" = "$wcode" ] &&
		field .error | grep -Eq -- "$re"; then
		ok "$4 -> $got $wcode: $(field .error)"
	else
		bad "$4 -> $got $(head -c 300 "$d/out") (want $want $wcode /$re/)"
	fi
}
vol_path() { echo "$d/data/pool/$1.qcow2"; }
has_secret() { virsh secret-list | grep -q " volume $(vol_path "$1")\$"; }
# no_trace NAME: nothing of NAME left (lib/deploy.sh), no libvirt secret either
no_trace() {
	nothing_left "$1" || return 1
	has_secret "$1" && { echo "     secret of $1 left"; virsh secret-list; return 1; }
	return 0
}

check "vmmod (as an x86_64 host) answers" start_vmmod x86_64

# ------------------------------------------------------------ refused up front
D='"template":"demo"'
expect 400 classification 'SECRET VMs need a TPM' \
	"{$D,\"name\":\"s1\",\"classification\":\"SECRET\",\"secure_boot\":true}"
expect 400 classification 'SECRET VMs need Secure Boot' \
	"{$D,\"name\":\"s1\",\"classification\":\"SECRET\",\"tpm\":true}"
expect 400 classification 'TOP SECRET VMs need an encrypted disk' \
	"{$D,\"name\":\"s1\",\"classification\":\"TOP SECRET\",\"tpm\":true,\"secure_boot\":true}"
expect 400 classification 'TOP SECRET VMs need a TPM' \
	"{$D,\"name\":\"s1\",\"classification\":\"TOP SECRET\",\"disk_encryption\":true}"
expect 400 classification 'SECRET VMs get no PCI passthrough' \
	"{$D,\"name\":\"s1\",\"classification\":\"SECRET\",\"tpm\":true,\"secure_boot\":true,\"devices\":{\"pci\":[\"0000:00:02.0\"]}}"
expect 400 classification 'TOP SECRET VMs get no PCI passthrough' \
	"{$D,\"name\":\"s1\",\"classification\":\"TOP SECRET\",\"tpm\":true,\"secure_boot\":true,\"disk_encryption\":true,\"devices\":{\"pci\":[\"0000:00:02.0\"]}}"
expect 400 bad_classification 'UNCLASSIFIED, CUI, SECRET or TOP SECRET' \
	"{$D,\"name\":\"s1\",\"classification\":\"confidential\"}"
expect 400 bad_type 'tpm must be true or false' \
	"{$D,\"name\":\"s1\",\"tpm\":\"yes\"}"
expect 400 bad_type 'disk_encryption must be true or false' \
	"{$D,\"name\":\"s1\",\"disk_encryption\":\"luks\"}"
api GET /api/jobs >/dev/null
check "refusals made no job" jqe '.jobs | length == 0' "$d/out"
check "refusals downloaded nothing (no base image in the pool)" \
	bash -c "! ls '$d/data/pool' 2>/dev/null | grep -q '^base-'"
check "refusals made no secret" bash -c "[ -z \"\$(virsh -q secret-list)\" ]"

# ------------------------------------------------------------ TOP SECRET
create "{$D,\"name\":\"ts1\",\"classification\":\"TOP SECRET\",\"tpm\":true,\"secure_boot\":true,\"disk_encryption\":true,\"start\":true}"
check "create ts1 (TOP SECRET) -> 202" [ -n "$job" ]
wait_job "$job" succeeded failed cancelled
check "job ts1 succeeded" jqe '.state == "succeeded"' "$d/out"
serial ts1
virsh dumpxml ts1 >"$d/ts1.xml" 2>/dev/null
virsh dumpxml --inactive ts1 >"$d/ts1.inactive.xml" 2>/dev/null
xp() { xmllint --xpath "$1" "$d/ts1.inactive.xml" 2>/dev/null; }
check "ts1: loader is OVMF's secure-boot build, secure='yes'" bash -c \
	"xmllint --xpath 'string(/domain/os/loader[@secure=\"yes\" and @type=\"pflash\"])' '$d/ts1.inactive.xml' | grep -q 'OVMF_CODE_4M.secboot.fd'"
check "ts1: NVRAM from the template with Microsoft's keys (OVMF_VARS_4M.ms.fd)" bash -c \
	"xmllint --xpath 'string(/domain/os/nvram/@template)' '$d/ts1.inactive.xml' | grep -q 'OVMF_VARS_4M.ms.fd'"
check "ts1: SMM on" bash -c "xmllint --xpath '/domain/features/smm[@state=\"on\"]' '$d/ts1.inactive.xml' >/dev/null 2>&1"
check "ts1: emulated TPM 2.0 (tpm-crb)" bash -c \
	"xmllint --xpath '/domain/devices/tpm[@model=\"tpm-crb\"]/backend[@type=\"emulator\" and @version=\"2.0\"]' '$d/ts1.inactive.xml' >/dev/null 2>&1"
secret=$(xp 'string(/domain/devices/disk[@device="disk"]//encryption[@format="luks"]/secret[@type="passphrase"]/@uuid)')
check "ts1: the disk has <encryption format='luks'> with a secret ($secret)" [ -n "$secret" ]
check "ts1: classification TOP SECRET in the metadata" grep -q '>TOP SECRET<' "$d/ts1.inactive.xml"
virsh -q pool-refresh guardian-vms >/dev/null 2>&1
virsh vol-dumpxml ts1.qcow2 --pool guardian-vms >"$d/ts1.vol.xml" 2>/dev/null
check "ts1: the volume XML has LUKS encryption with that secret" bash -c \
	"[ \"\$(xmllint --xpath 'string(/volume/target/encryption[@format=\"luks\"]/secret/@uuid)' '$d/ts1.vol.xml')\" = '$secret' ]"
check "ts1: virsh secret-list has it (usage: the volume)" bash -c \
	"virsh secret-list | grep -q '^ *$secret *volume $(vol_path ts1)\$'"
check "ts1: the secret is private (its value is not readable)" bash -c \
	"! virsh secret-get-value '$secret' >/dev/null 2>&1"
qemu-img info -U --output=json "$(vol_path ts1)" >"$d/ts1.info" 2>&1
check "ts1: qemu-img info: encrypted, LUKS, a full copy (no backing file)" \
	jqe '.encrypted == true and ."format-specific".data.encrypt.format == "luks" and (has("backing-filename") | not)' "$d/ts1.info"
check "ts1: domain running (swtpm, secure-boot OVMF)" bash -c "virsh domstate ts1 | grep -q running"
api GET /api/vms/ts1 >/dev/null
check "ts1: GET /api/vms/ts1 shows its profile (TOP SECRET, TPM, Secure Boot, encrypted disk)" \
	jqe '.security == {"classification":"TOP SECRET","tpm":true,"secure_boot":true,"disk_encrypted":true}' "$d/out"
# The appliance's GRUB is not signed: Secure Boot must refuse to run it.
if wait_serial ts1 'Access Denied|^GUEST-READY' 120; then
	if tr -d '\r' <"$d/ts1.serial" | grep -q '^GUEST-READY'; then
		bad "ts1: the unsigned appliance booted under Secure Boot"
	else
		ok "ts1: Secure Boot refused the unsigned GRUB ($(tr -d '\r' <"$d/ts1.serial" | grep -m1 -o 'BdsDxe.*Access Denied' | cut -c1-70))"
	fi
else
	bad "ts1: no 'Access Denied' from OVMF within 120 s"
	tr -d '\r' <"$d/ts1.serial" | tail -5
fi

# ------------------------------------------------------------ CUI, encrypted, boots
create "{$D,\"name\":\"cui1\",\"classification\":\"CUI\",\"disk_encryption\":true,\"start\":true}"
check "create cui1 (CUI without TPM, encrypted disk) -> 202" [ -n "$job" ]
wait_job "$job" succeeded failed cancelled
check "job cui1 succeeded" jqe '.state == "succeeded"' "$d/out"
serial cui1
check "cui1: secret in virsh secret-list" has_secret cui1
check "cui1: qemu-img info says encrypted" bash -c \
	"qemu-img info -U '$(vol_path cui1)' | grep -q '^encrypted: yes'"
check "cui1: no TPM, no Secure Boot" bash -c \
	"virsh dumpxml cui1 | grep -vq '<tpm' && virsh dumpxml cui1 | grep -q \"secure='no'\""
if wait_serial cui1 '^GUEST-READY x86_64'; then
	ok "cui1: booted from its LUKS disk (GUEST-READY x86_64)"
else
	bad "cui1: no GUEST-READY"
	tail -20 "$d/cui1.serial"
fi

# ------------------------------------------------------------ cancelled mid-import
create "{$D,\"name\":\"ca1\",\"disk_encryption\":true}"
cjob=$job
end=$((SECONDS + 60))
until has_secret ca1 || [ $SECONDS -ge $end ]; do sleep 0.1; done
check "ca1: its secret appears while the disk is made" has_secret ca1
api DELETE "/api/jobs/$cjob" >/dev/null
wait_job "$cjob" cancelled failed succeeded
check "ca1: job cancelled" jqe '.state == "cancelled"' "$d/out"
check "ca1: no volume, no secret left" no_trace ca1

# ------------------------------------------------------------ delete
api DELETE "/api/vms/ts1?force=true&remove_disk=true" >/dev/null
check "ts1 deleted with its disk: volume and secret gone" no_trace ts1
api DELETE "/api/vms/cui1?force=true&remove_disk=true" >/dev/null
check "cui1 deleted with its disk: volume and secret gone" no_trace cui1
check "no secrets left at all" bash -c "[ -z \"\$(virsh -q secret-list)\" ]"

# ------------------------------------------------------------ aarch64 host
stop_vmmod
check "vmmod (as an aarch64 host) answers" start_vmmod aarch64
expect 409 secure_boot_unavailable 'x86_64 hosts only' \
	"{$D,\"name\":\"a1\",\"secure_boot\":true}"
expect 400 classification 'SECRET VMs need Secure Boot' \
	"{$D,\"name\":\"a1\",\"classification\":\"SECRET\",\"tpm\":true}"

[ "$fails" = 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all profile checks passed"

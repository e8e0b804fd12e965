#!/bin/bash
# 90-tpm: a VM with the product's vTPM boots and its kernel sees a TPM 2.0.
# The domain XML comes from the product's generator (gvm-domxml, spec with
# "tpm": true -> <tpm model='tpm-crb'><backend type='emulator'
# version='2.0'/></tpm>, swtpm started by the sandbox's libvirtd); the guest
# is the x86_64 test appliance booted from its kernel and initrd under TCG.
# Check, on the serial console: after GUEST-IP, "ls /dev/tpm0 /dev/tpmrm0"
# typed into the console's shell lists both device nodes (devtmpfs makes
# them only when the kernel's tpm_crb driver bound a TPM; the cloud kernel
# prints nothing about it at boot, so the boot log is not evidence).
# Skips (exit 77, with the reason) when swtpm, the appliance or the cloud
# kernel's TPM CRB driver is missing.  Never fakes a pass.
# Run alone:  sudo tests/sandbox.sh -- tests/e2e/90-tpm.sh
set -eu
top=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ -z "${GVM_SANDBOX:-}" ]; then
	exec "$top/tests/sandbox.sh" -- "$0" "$@"
fi
build=${BUILD:-$top/build/$(uname -m)}
timeout=${APPLIANCE_TIMEOUT:-120}
appl=$top/build/appliance/x86_64
name=gvm-tpm-e2e
images=/var/lib/libvirt/images

command -v swtpm >/dev/null || { echo "SKIP: swtpm is not installed"; exit 77; }
command -v qemu-system-x86_64 >/dev/null ||
	{ echo "SKIP: qemu-system-x86_64 is not installed"; exit 77; }
for f in vmlinuz initrd.img; do
	[ -f "$appl/$f" ] || { echo "SKIP: no $appl/$f (make appliances)"; exit 77; }
done
[ -x "$build/gvm-domxml" ] || { echo "FAIL: no $build/gvm-domxml (make)"; exit 1; }
config=$(ls "$top"/build/appliance/root/linux-image-*cloud-amd64*/boot/config-* 2>/dev/null | head -n1)
if [ -n "$config" ] && ! grep -Eq '^CONFIG_TCG_CRB=[ym]' "$config"; then
	echo "SKIP: the appliance's cloud kernel has no TPM CRB driver ($config)"
	exit 77
fi

fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }

# A bridge only inside the sandbox's namespace, for the VM's NIC.
ip link add br0 type bridge
ip link set br0 up
log=/var/log/libvirt/qemu/$name-serial.log
cleanup() {
	virsh -q destroy "$name" >/dev/null 2>&1 || true
	virsh -q undefine "$name" >/dev/null 2>&1 || true
	ip link del br0 2>/dev/null || true
}
trap cleanup EXIT

mkdir -p "$images" /var/log/libvirt/qemu
cp "$appl/vmlinuz" "$appl/initrd.img" "$images/"
"$build/gvm-domxml" - >/run/$name.xml <<EOF
{
  "name": "$name",
  "arch": "x86_64",
  "type": "qemu",
  "memory_mb": 512,
  "vcpus": 1,
  "tpm": true,
  "kernel": {
    "path": "$images/vmlinuz",
    "initrd": "$images/initrd.img",
    "cmdline": "console=ttyS0,115200 quiet panic=-1"
  },
  "network": {"bridge": "br0", "mac": "52:54:00:a7:90:01"}
}
EOF
grep -q "<tpm model=\"tpm-crb\">" /run/$name.xml && ok "XML has <tpm model='tpm-crb'> (emulator 2.0)" ||
	bad "the generated XML has no tpm-crb"
# The test, not the product, keeps a copy of the serial output.
sed -i "s|<serial type=\"pty\">|<serial type=\"pty\"><log file=\"$log\" append=\"off\"/>|" /run/$name.xml
virsh -q define /run/$name.xml >/dev/null
if ! out=$(virsh -q start "$name" 2>&1); then
	case $out in
	*swtpm*) echo "SKIP: swtpm cannot run in this sandbox: $out"; exit 77 ;;
	esac
	bad "start: $out"
	exit 1
fi
ok "started with swtpm ($(pgrep -a swtpm | head -n1 | cut -c1-60)...)"

has() { tr -d '\r' <"$log" 2>/dev/null | grep -Eq "$1"; }
wait_for() {
	local end=$((SECONDS + timeout))
	until has "$1"; do
		[ $SECONDS -lt $end ] || return 1
		sleep 0.5
	done
}
if ! wait_for 'GUEST-IP '; then
	bad "no GUEST-IP within ${timeout}s"
	tr -d '\r' <"$log" | tail -n 30
	exit 1
fi
ok "appliance booted (GUEST-READY, GUEST-IP)"
# The console's shell (respawned by busybox init after rcS): type into the
# pty until the shell answers (it may still be starting).
# QEMU reads its pty only while the other end is open: keep it open.
pty=$(virsh ttyconsole "$name")
exec 3<>"$pty"
end=$((SECONDS + 40))
until has '^TPM-NODES-OK' || [ $SECONDS -ge $end ]; do
	sleep 2
	printf '\nls /dev/tpm0 /dev/tpmrm0 && echo TPM-NODES-OK\n' >&3
done
exec 3>&-
if has '^TPM-NODES-OK' && has '^/dev/tpm0'; then
	ok "guest lists /dev/tpm0 and /dev/tpmrm0"
else
	bad "guest has no /dev/tpm0"
	tr -d '\r' <"$log" | tail -n 15
fi
[ $fails -eq 0 ]

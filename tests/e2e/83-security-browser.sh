#!/bin/bash
# 83-security-browser: the deploy dialog's "Security" part in Chromium
# (tests/browser/security.mjs), against vmmod and the sandbox's libvirtd.
# vmmod reads a fake sysfs tree (tests/data/sysfs/meteorlake-dgpu, bound
# over /sys/bus/pci in a mount namespace of its own, as in 82-pci-browser)
# so that a template can want the NPU; its catalog is the shipped one plus
# sec-demo (a small local UEFI qcow2 made here, wants pci:npu).  No VM is
# ever started.
#
# Checked from the page: "Security" starts collapsed and opens from the
# keyboard; GET /api/host's "security" decides which boxes can be ticked
# (a host faked without Secure Boot: the box disabled with the reason, and
# SECRET stopped before sending); CUI recommends a TPM; SECRET ticks and
# locks TPM + Secure Boot and says so, TOP SECRET also the encrypted disk;
# a request without a profile carries none of the fields; SECRET with the
# NPU picked is stopped in the dialog (no request, nothing made); vmmod's
# own refusal (400 classification, a request altered on the way) is shown
# in the dialog, nothing made; TOP SECRET deployed (not started) from the
# keyboard: the request carries classification, tpm, secure_boot and
# disk_encryption, and `virsh dumpxml` has the secure-boot loader, a TPM and
# the LUKS-encrypted disk (that part is skipped, and says so, where the host
# lacks swtpm or OVMF's secure-boot build); the VM page shows the profile
# (and a SECRET VM defined by the test, and nothing for a plain one).
# After: no VM, volume, reservation or libvirt secret of the test is left.
# Screenshot: build/screenshots/security-deploy.png.
# Run it alone with:  tests/sandbox.sh -- tests/e2e/83-security-browser.sh
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
ldd "$vmmod" 2>/dev/null | grep -q 'libpci\.so' ||
	{ echo "SKIP: $vmmod is built without PCI passthrough"; exit 77; }

d=$(mktemp -d /tmp/gvm-e2e-secweb.XXXXXX)
chmod 755 "$d"
port=18197
deployed=gvm-sec-deploy refused=gvm-sec-refused
plain=gvm-sec-plain secret=gvm-sec-secret
vms=("$deployed" "$refused" "$plain" "$secret")
pids=()
cleanup() {
	local p u
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	for n in "${vms[@]}"; do virsh -q undefine --nvram "$n" >/dev/null 2>&1; done
	# the secrets of volumes under $d, whatever the page left
	for u in $(virsh -q secret-list 2>/dev/null | awk -v d="$d/" 'index($0, d) {print $1}'); do
		virsh -q secret-undefine "$u" >/dev/null 2>&1
	done
	if [ "$fails" != 0 ]; then
		echo "--- vmmod log (last 30 lines)"; tail -30 "$d/vmmod.log" 2>/dev/null
	fi
	rm -rf "$d"
}
trap cleanup EXIT

gvm="xmlns:gvm='https://guardian.hookprobe.com/vmmod/1'"
check "define $plain" define_vm "$plain"
check "define $secret" define_vm "$secret" \
	"<metadata><gvm:vm $gvm><gvm:classification>SECRET</gvm:classification></gvm:vm></metadata>"

cp -a "$top/tests/data/sysfs/meteorlake-dgpu" "$d/sys"
cp -a "$top/templates" "$d/templates"
mkdir "$d/img"
qemu-img create -q -f qcow2 "$d/img/sec-demo.qcow2" 64M
sha=$(sha256sum "$d/img/sec-demo.qcow2" | cut -d' ' -f1)
size=$(stat -c %s "$d/img/sec-demo.qcow2")
cat >"$d/templates/sec-demo.json" <<JSON
{
  "schema": 1,
  "id": "sec-demo",
  "name": "Security profile test",
  "description": "An empty UEFI disk that may want the host's NPU (83-security-browser).",
  "kind": "disk-image",
  "firmware": {"type": "uefi", "secure_boot": false},
  "memory_mb": 256,
  "min_memory_mb": 128,
  "vcpus": 1,
  "disk_gb": 1,
  "disk_mode": "overlay",
  "web": null,
  "dns_name": "sec-demo",
  "wants_devices": ["pci:npu"],
  "cloud_init": null,
  "images": {
    "x86_64": {"url": "file://$d/img/sec-demo.qcow2", "sha256": "$sha", "note": "made by the test",
      "size": $size, "format": "qcow2", "compression": null, "version": "test"}
  }
}
JSON

check "vmmod over the fake sysfs tree is up" start_vmmod "$d/sys" "$port" vmmod "$d/templates"
hostsec=$(curl -s -H "Authorization: Bearer $(cat "$d/vmmod/token")" "http://127.0.0.1:$port/api/host" |
	python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["security"], sort_keys=True))' 2>/dev/null)
echo "     GET /api/host security: $hostsec"
# what the host has is what vmmod says it has
want_tpm=false want_sb=false
[ -x /usr/bin/swtpm ] && want_tpm=true
[ -r /usr/share/OVMF/OVMF_CODE_4M.secboot.fd ] && [ -r /usr/share/OVMF/OVMF_VARS_4M.ms.fd ] && want_sb=true
echo "$hostsec" | python3 -c "import json,sys; s=json.load(sys.stdin); \
	sys.exit(0 if s['tpm']['available'] is $([ $want_tpm = true ] && echo True || echo False) and \
	s['secure_boot']['available'] is $([ $want_sb = true ] && echo True || echo False) and \
	s['disk_encryption']['available'] is True else 1)" &&
	ok "GET /api/host says which features this host has (tpm $want_tpm, secure_boot $want_sb)" ||
	bad "GET /api/host security ($hostsec; want tpm $want_tpm, secure_boot $want_sb)"

mkdir -p "$top/build/screenshots"
if (cd "$top/tests/browser" && VMMOD_URL="http://127.0.0.1:$port" VMMOD_TOKEN=$(cat "$d/vmmod/token") \
	DEPLOYED="$deployed" REFUSED="$refused" PLAIN="$plain" SECRET_VM="$secret" \
	SHOTS="$top/build/screenshots" timeout 300 node security.mjs); then
	ok "browser checks (tests/browser/security.mjs)"
else
	bad "browser checks (tests/browser/security.mjs)"
fi
# the deployed VM was deleted with its disk by the page's test, the refused
# one never made: no domain, no file in the pool, no reservation, no secret
for n in "$deployed" "$refused"; do
	left=""
	virsh -q dominfo "$n" >/dev/null 2>&1 && left="domain "
	for f in "$d/vmmod/pool/$n".* "$d/vmmod/pool/$n"-* "$d/vmmod/resv/$n" "$d/vmmod/hosts/$n"; do
		[ -e "$f" ] && left="$left${f#"$d"/} "
	done
	grep -qF "\"$n\"" "$d/vmmod/reservations.json" 2>/dev/null && left="${left}reservations.json "
	virsh -q secret-list 2>/dev/null | grep -qF "/$n." && left="${left}secret"
	[ -z "$left" ] && ok "nothing of $n is left" || bad "$n left: $left"
done
[ "$fails" = 0 ] || { echo "83-security-browser: $fails failed"; exit 1; }
echo "83-security-browser: all passed"

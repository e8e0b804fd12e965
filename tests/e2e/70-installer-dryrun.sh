#!/bin/bash
# 70-installer-dryrun: guardian-vm-setup against a Guardian-shaped fake root
# (tests/data/installer/guardian-root: install.conf, dnsmasq guardian.conf
# with the /27 pool .2-.30, libvirt-guests, meminfo):
#   - --dry-run prints the plan (block .24-.30, pool shrunk to .2-.23) and
#     changes nothing; without GVM_SHRINK_POOL it exits 4 (consent);
#   - --unattended --root writes exactly the golden files of the unit tests
#     (tests/data/installer/guardian.*), twice -> byte-identical tree;
#   - the generated vmmod.conf passes `vmmod -n`; the units pass
#     systemd-analyze verify on a staged root;
#   - --uninstall -> the fake root is identical to before (diff -r).
# Only --root is written (a temporary directory); runs inside
# tests/sandbox.sh, or by hand: tests/e2e/70-installer-dryrun.sh
set -eu
top=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$top"
BUILD=${BUILD:-build/$(uname -m)}
setup=$top/$BUILD/guardian-vm-setup
data=$top/tests/data/installer
[ -x "$setup" ] || { echo "FAIL: $setup not built"; exit 1; }
tmp=$(mktemp -d /tmp/gvm-installer.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
same() { diff -r --no-dereference "$1" "$2"; }
# The environment must not answer for us.
unset HOOKPROBE_VM_SUPPORT GVM_STORAGE_DIR GVM_BRIDGE GVM_BRIDGE_ADDR GVM_DHCP_RANGE \
	GVM_SHRINK_POOL GVM_CONSOLE_PORT GVM_BLOCK_PORTS GVM_DEPLOY_HA GVM_TRUST_UNPINNED GVM_VM_BLOCK

cp -a "$data/guardian-root" "$tmp/root"
# the blueprint, its templates and the web assets come from the tree
export GVM_SETUP_DATADIR=$top
cp -a "$data/guardian-root" "$tmp/orig"
answers=$data/guardian.answers

# 1. dry run
rc=0
"$setup" --dry-run --root "$tmp/root" --answers "$answers" </dev/null >"$tmp/plan" 2>&1 || rc=$?
[ $rc = 0 ] || { cat "$tmp/plan"; bad "--dry-run exit $rc"; }
for want in "VM addresses: 192.168.4.24-192.168.4.30 (7)" \
    "DHCP pool: 192.168.4.2-192.168.4.30, shrunk to 192.168.4.2-192.168.4.23" \
    "console: https://192.168.4.1:8091" "dry run: nothing was changed"; do
	grep -qF -- "$want" "$tmp/plan" || bad "plan lacks '$want'"
done
same "$tmp/orig" "$tmp/root" || bad "--dry-run changed the root"

grep -v GVM_SHRINK_POOL "$answers" >"$tmp/no-consent.answers"
rc=0
"$setup" --unattended --root "$tmp/root" --answers "$tmp/no-consent.answers" </dev/null >"$tmp/out" 2>&1 || rc=$?
[ $rc = 4 ] || { cat "$tmp/out"; bad "no consent: exit $rc, not 4"; }
grep -q "needs consent (GVM_SHRINK_POOL=yes)" "$tmp/out" || bad "no consent: no clear message"
same "$tmp/orig" "$tmp/root" || bad "a refused install changed the root"
printf 'GVM_BRIDGE=br0\nGVM_BOGUS=1\n' >"$tmp/bad.answers"
rc=0
"$setup" --unattended --root "$tmp/root" --answers "$tmp/bad.answers" </dev/null >"$tmp/out" 2>&1 || rc=$?
[ $rc = 2 ] && grep -q "bad.answers:2: unknown key 'GVM_BOGUS'" "$tmp/out" ||
	{ cat "$tmp/out"; bad "bad answers: exit $rc or message"; }

rc=0
"$setup" --unattended --live --answers "$answers" </dev/null >"$tmp/out" 2>&1 || rc=$?
[ $rc = 2 ] && grep -q -- "--live goes with --root" "$tmp/out" || { cat "$tmp/out"; bad "--live without --root: exit $rc"; }

# 2. install, compare with the unit tests' golden files
rc=0
"$setup" --unattended --root "$tmp/root" --answers "$answers" </dev/null >"$tmp/install1" 2>&1 || rc=$?
[ $rc = 0 ] || { cat "$tmp/install1"; bad "install exit $rc"; }
for f in /etc/dnsmasq.d/guardian-vms.conf /etc/dnsmasq.d/guardian.conf /etc/vmmod/vmmod.conf \
    /etc/guardian-vms/setup.conf /etc/default/libvirt-guests \
    /etc/systemd/system/libvirtd.service.d/guardian-vms.conf \
    /opt/hookprobe/guardian/web/modules/__init__.py \
    /opt/hookprobe/guardian/web/templates/core/dashboard.html; do
	flat=$(echo "${f#/}" | tr / _)
	cmp -s "$tmp/root$f" "$data/guardian.$flat" ||
		{ diff -u "$data/guardian.$flat" "$tmp/root$f" | head -20; bad "$f differs from guardian.$flat"; }
done
for u in vmmod.service guardian-vms-firewall.service guardian-vms-dnsmasq-reload.path; do
	[ "$(readlink "$tmp/root/etc/systemd/system/multi-user.target.wants/$u")" = "/lib/systemd/system/$u" ] ||
		bad "$u not enabled"
done
grep -q '"type": "file"' "$tmp/root/var/lib/guardian-vms/install.json" || bad "no manifest"
f=/etc/systemd/system/guardian-webui.service.d/guardian-vms.conf
sed "s|/usr/local/share/guardian-vms|$top|" "$data/guardian.$(echo "${f#/}" | tr / _)" | cmp -s - "$tmp/root$f" ||
	bad "$f differs from its golden file (DATADIR $top)"
cmp -s guardian/guardian_vms.py "$tmp/root/opt/hookprobe/guardian/web/modules/guardian_vms/__init__.py" ||
	bad "the blueprint is not installed byte for byte"
! grep -q "NOT IMPLEMENTED" "$tmp/install1" || bad "a step reports NOT IMPLEMENTED"

cp -a "$tmp/root" "$tmp/after1"
rc=0
"$setup" --unattended --root "$tmp/root" --answers "$answers" </dev/null >"$tmp/install2" 2>&1 || rc=$?
[ $rc = 0 ] || { cat "$tmp/install2"; bad "second install exit $rc"; }
same "$tmp/after1" "$tmp/root" || bad "second install changed the tree"
grep -q "VM addresses: 192.168.4.24-192.168.4.30 (7), kept" "$tmp/install2" || bad "second run did not keep the block"

# 3. the generated vmmod.conf and units
if [ -x "$BUILD/vmmod" ]; then
	# console_listen wants the certificate vmmod.service's LoadCredential=
	# hands over in $CREDENTIALS_DIRECTORY (-n checks the keys, not files)
	CREDENTIALS_DIRECTORY=$tmp/credentials "$BUILD/vmmod" -n -f "$tmp/root/etc/vmmod/vmmod.conf" >"$tmp/n" 2>&1 ||
		{ cat "$tmp/n"; bad "vmmod -n rejects the generated vmmod.conf"; }
fi
if command -v systemd-analyze >/dev/null; then
	sr=$tmp/units
	mkdir -p "$sr/lib/systemd/system" "$sr/usr/local/sbin" "$sr/bin" "$sr/etc/systemd/system"
	cp -a /lib/systemd/system/. "$sr/lib/systemd/system/"
	cp "$setup" "$sr/usr/local/sbin/"
	cp /bin/systemctl "$sr/bin/"
	cp systemd/guardian-vms-firewall.service systemd/guardian-vms-dnsmasq-reload.* "$sr/lib/systemd/system/"
	# A stand-in libvirtd.service where the host has none (the drop-in is what is checked).
	[ -e "$sr/lib/systemd/system/libvirtd.service" ] ||
		printf '[Unit]\nDescription=stand-in\n[Service]\nExecStart=/bin/systemctl --version\n' \
			>"$sr/lib/systemd/system/libvirtd.service"
	cp -a "$tmp/root/etc/systemd/system/libvirtd.service.d" "$sr/etc/systemd/system/"
	out=$(systemd-analyze verify --root="$sr" --man=no guardian-vms-firewall.service libvirtd.service 2>&1) ||
		bad "systemd-analyze verify failed"
	[ -z "$out" ] || { echo "$out"; bad "systemd-analyze verify printed messages"; }
	for want in PartOf=nftables.service ReloadPropagatedFrom=nftables.service Type=oneshot RemainAfterExit=yes \
	    "ExecStart=/usr/local/sbin/guardian-vm-setup --apply-firewall"; do
		grep -qxF -- "$want" systemd/guardian-vms-firewall.service || bad "firewall unit lacks '$want'"
	done
fi

# 4. uninstall -> the root as before
rc=0
"$setup" --uninstall --root "$tmp/root" >"$tmp/uninstall" 2>&1 || rc=$?
[ $rc = 0 ] || { cat "$tmp/uninstall"; bad "uninstall exit $rc"; }
grep -q "your VMs and their disks were kept" "$tmp/uninstall" || bad "uninstall does not say VMs are kept"
same "$tmp/orig" "$tmp/root" || bad "uninstall did not restore the root exactly"

[ $fail = 0 ] && echo "PASS: dry run, unattended install (golden, idempotent), units, uninstall restores"
exit $fail

#!/bin/bash
# 05-units: the shipped systemd unit, man pages and example configuration.
# Stages `make install DESTDIR=` into a temporary root (with copies of the
# host's unit files and /bin/kill, which the unit refers to), then:
#   - systemd-analyze verify --root on vmmod.service: no message at all
#     (it warns about unknown keys with exit status 0, so any output fails);
#   - systemd-analyze security --offline: exposure at most 2.5;
#   - the hardening settings the design asks for are still there;
#   - the man pages render without groff warnings;
#   - the installed vmmod accepts vmmod.conf.example (vmmod -n).
# Touches nothing outside its temporary directory; needs no root, so it can
# also be run by hand: tests/e2e/05-units.sh
set -eu
top=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$top"
export BUILD=${BUILD:-build/$(uname -m)}

command -v systemd-analyze >/dev/null || { echo "SKIP: no systemd-analyze"; exit 77; }
tmp=$(mktemp -d /tmp/gvm-units.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# The host's units first (sysinit.target etc.), then our install on top.
mkdir -p "$root/lib/systemd/system" "$root/bin"
cp -a /lib/systemd/system/. "$root/lib/systemd/system/"
cp /bin/kill "$root/bin/kill"
if ! make -s install DESTDIR="$root" >"$tmp/install.log" 2>&1; then
	cat "$tmp/install.log"
	echo "FAIL: make install DESTDIR=$root"
	exit 1
fi
unit=$root/lib/systemd/system/vmmod.service
[ -f "$unit" ] || { echo "FAIL: make install did not install vmmod.service"; exit 1; }
cmp -s "$unit" systemd/vmmod.service || bad "installed unit differs from systemd/vmmod.service"

out=$(systemd-analyze verify --root="$root" --man=no vmmod.service 2>&1) || bad "systemd-analyze verify failed"
if [ -n "$out" ]; then
	echo "$out"
	bad "systemd-analyze verify printed messages"
fi

if systemd-analyze security --help 2>&1 | grep -q -- --offline; then
	systemd-analyze security --offline=yes --root="$root" --man=no \
	    --threshold=25 vmmod.service >"$tmp/security" 2>&1 ||
	    { grep -v '^✓' "$tmp/security"; bad "security exposure above 2.5"; }
	tail -1 "$tmp/security"
fi

for want in Type=notify User=vmmod "SupplementaryGroups=libvirt kvm" \
    RuntimeDirectory=vmmod StateDirectory=vmmod \
    'ExecReload=/bin/kill -HUP $MAINPID' NoNewPrivileges=yes \
    ProtectSystem=strict PrivateTmp=yes ProtectHome=yes \
    ProtectKernelTunables=yes ProtectKernelModules=yes ProtectKernelLogs=yes \
    ProtectControlGroups=yes RestrictNamespaces=yes LockPersonality=yes \
    MemoryDenyWriteExecute=yes SystemCallFilter=@system-service \
    SystemCallArchitectures=native CapabilityBoundingSet= \
    Restart=on-failure ReadWritePaths=-/etc/dnsmasq.d/guardian-vms-hosts; do
	grep -qxF -- "$want" systemd/vmmod.service || bad "vmmod.service lacks '$want'"
done
grep -q '^After=.*libvirtd\.service' systemd/vmmod.service || bad "not ordered after libvirtd.service"
grep -q '^After=.*network-online\.target' systemd/vmmod.service || bad "not ordered after network-online.target"
grep -q '^RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' systemd/vmmod.service ||
	bad "RestrictAddressFamilies changed"

# The dnsmasq reload path unit and its root oneshot (SIGHUP on changed or
# removed reservation files; dnsmasq reads new ones by inotify).
cp /bin/systemctl "$root/bin/systemctl"
for u in guardian-vms-dnsmasq-reload.path guardian-vms-dnsmasq-reload.service; do
	[ -f "$root/lib/systemd/system/$u" ] || cp "systemd/$u" "$root/lib/systemd/system/$u"
done
out=$(systemd-analyze verify --root="$root" --man=no guardian-vms-dnsmasq-reload.path \
    guardian-vms-dnsmasq-reload.service 2>&1) || bad "dnsmasq reload units: verify failed"
[ -z "$out" ] || { echo "$out"; bad "dnsmasq reload units: verify printed messages"; }
for want in PathChanged=/etc/dnsmasq.d/guardian-vms-hosts PathChanged=/etc/dnsmasq.d/guardian-vms-names \
    Unit=guardian-vms-dnsmasq-reload.service; do
	grep -qxF -- "$want" systemd/guardian-vms-dnsmasq-reload.path || bad "reload .path lacks '$want'"
done
grep -q '^ExecStart=.*kill --signal=SIGHUP.*dnsmasq\.service' systemd/guardian-vms-dnsmasq-reload.service ||
	bad "reload .service does not SIGHUP dnsmasq"

if command -v groff >/dev/null; then
	for m in man/*.[1-8]; do
		[ -e "$m" ] || continue
		w=$(groff -mandoc -ww -z "$m" 2>&1)
		[ -z "$w" ] || { echo "$w"; bad "$m renders with warnings"; }
	done
fi

vmmod=$(find "$root" -path '*/sbin/vmmod' -type f | head -1)
if [ -n "$vmmod" ]; then
	"$vmmod" -n -f vmmod/vmmod.conf.example >"$tmp/n" 2>&1 ||
	    { cat "$tmp/n"; bad "vmmod -n rejects vmmod.conf.example"; }
	printf 'bogus_key = 1\n' >"$tmp/bad.conf"
	if "$vmmod" -n -f "$tmp/bad.conf" >"$tmp/n" 2>&1; then
		bad "vmmod -n accepted an unknown key"
	fi
	grep -q "bad.conf:1: unknown key 'bogus_key'" "$tmp/n" ||
	    { cat "$tmp/n"; bad "vmmod -n did not name FILE:LINE"; }
else
	bad "make install did not install vmmod"
fi

[ $fail = 0 ] && echo "PASS: vmmod.service verified, man pages and example config OK"
exit $fail

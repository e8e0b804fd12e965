#!/bin/bash
# 00-sandbox: proves the test sandbox (tests/sandbox.sh) from the inside:
# its libvirtd answers on qemu:///system, the network namespace holds only
# `lo`, the libvirt state/config/log paths are private tmpfs, and a tiny TCG
# domain (x86_64 q35, no disk: SeaBIOS just finds nothing to boot) can be
# defined, reaches "running", is destroyed and undefined.
# Run it alone with:  sudo tests/sandbox.sh -- tests/e2e/00-sandbox.sh
# (started outside a sandbox, it wraps itself in one).
set -eu
top=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ -z "${GVM_SANDBOX:-}" ]; then
	exec "$top/tests/sandbox.sh" -- "$0" "$@"
fi

fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
check() { # check DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}

# --- libvirtd of the sandbox
check "LIBVIRT_DEFAULT_URI is qemu:///system" [ "${LIBVIRT_DEFAULT_URI:-}" = qemu:///system ]
check "virsh list --all answers" virsh -q list --all
check "virsh uri is qemu:///system" [ "$(virsh uri)" = qemu:///system ]
check "no domains in a fresh sandbox" [ -z "$(virsh list --all --name | grep .)" ]

# --- private network namespace: only lo, and it is up
links=$(ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort | tr '\n' ' ')
check "only lo in the network namespace (got: $links)" [ "$links" = "lo " ]
check "lo is up" sh -c 'ip -o link show dev lo up | grep -q lo'
check "lo has 127.0.0.1" sh -c 'ip -o -4 addr show dev lo | grep -q "127.0.0.1/8"'
check "/sys/class/net shows this namespace" [ "$(ls /sys/class/net)" = lo ]
check "no default route" [ -z "$(ip route show default)" ]

# --- private state and config
fstype() { stat -f -c %T "$1"; }
for d in /run /var/lib/libvirt /var/cache/libvirt /var/log/libvirt /etc/libvirt; do
	check "$d is a private tmpfs" [ "$(fstype "$d")" = tmpfs ]
done
check "our qemu.conf is in place" grep -q '^security_driver = "none"' /etc/libvirt/qemu.conf
check "libvirtd socket under /run/libvirt" [ -S /run/libvirt/libvirt-sock ]

# --- a tiny TCG domain reaches "running"
name=gvm-sandbox-probe
xml=$(mktemp)
trap 'rm -f "$xml"' EXIT
cat >"$xml" <<XML
<domain type='qemu'>
  <name>$name</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices>
    <serial type='pty'/>
    <console type='pty'/>
    <memballoon model='none'/>
  </devices>
</domain>
XML
check "define a TCG domain" virsh -q define "$xml"
check "start it" virsh -q start "$name"
state=""
for _ in $(seq 50); do
	state=$(virsh domstate "$name" 2>/dev/null | head -1)
	[ "$state" = running ] && break
	sleep 0.2
done
check "domain is running (state: $state)" [ "$state" = running ]
pid=""
# libvirt writes pid files without a trailing newline: read fails, pid is set
if [ -f "/run/libvirt/qemu/$name.pid" ]; then read -r pid <"/run/libvirt/qemu/$name.pid" || true; fi
check "its QEMU process ($pid) is alive" kill -0 "${pid:-0}"
check "its QEMU uses TCG" sh -c "tr '\\0' ' ' </proc/${pid:-0}/cmdline | grep -q -e '-accel tcg' -e 'accel=tcg'"
check "virtlogd wrote its log" [ -s "/var/log/libvirt/qemu/$name.log" ]
check "destroy it" virsh -q destroy "$name"
gone=1
for _ in $(seq 50); do kill -0 "${pid:-0}" 2>/dev/null || { gone=0; break; }; sleep 0.1; done
check "its QEMU process is gone" [ "$gone" = 0 ]
check "undefine it" virsh -q undefine "$name"
check "no domains left" [ -z "$(virsh list --all --name | grep .)" ]

[ "$fails" = 0 ] || { echo "00-sandbox: $fails check(s) failed"; exit 1; }
echo "00-sandbox: all checks passed"

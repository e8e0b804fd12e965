#!/bin/bash
# Boots a test appliance with plain qemu-system (TCG, no libvirt) and checks
# the whole life cycle: GUEST-READY, GUEST-IP, then an ACPI power button
# (`system_powerdown` on the QEMU monitor) -> GUEST-POWEROFF -> QEMU exits.
#
# usage: tests/appliance/qemu-smoke.sh [--out DIR] [--direct] [--nic] [--timeout S] ARCH
#   --out DIR    appliance directory (default: build/appliance)
#   --direct     direct kernel boot (vmlinuz + initrd.img) instead of UEFI + disk
#   --nic        add a virtio NIC on user networking with restrict=on (no
#                traffic leaves QEMU; expect GUEST-IP 10.0.2.15 from QEMU's
#                built-in DHCP); default: no NIC (expect GUEST-IP none)
#   --timeout S  seconds to wait for each step (default 60)
# Prints the serial log on failure and per-step timings on success.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=$here/../../build/appliance
direct=0 nic=0 timeout=60 arch=""
die() { echo "qemu-smoke: error: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
	case "$1" in
	--out) out=$2; shift ;;
	--direct) direct=1 ;;
	--nic) nic=1 ;;
	--timeout) timeout=$2; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
	x86_64 | aarch64) arch=$1 ;;
	*) die "unknown argument '$1'" ;;
	esac
	shift
done
[ -n "$arch" ] || die "no ARCH given (x86_64 | aarch64)"
dir=$out/$arch
[ -s "$dir/disk.qcow2" ] || die "$dir/disk.qcow2 missing: run tests/appliance/build.sh $arch"

tmp=$(mktemp -d /tmp/appliance-smoke.XXXXXX)
qpid=""
cleanup() {
	if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then kill "$qpid" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT

args=(-accel tcg -m 512 -smp 1 -nodefaults -display none -no-reboot
	-serial "file:$tmp/serial.log" -monitor "pipe:$tmp/mon")
case "$arch" in
x86_64)
	qemu=qemu-system-x86_64 code=/usr/share/OVMF/OVMF_CODE_4M.fd vars=/usr/share/OVMF/OVMF_VARS_4M.fd
	args+=(-machine q35) ;;
aarch64)
	qemu=qemu-system-aarch64 code=/usr/share/AAVMF/AAVMF_CODE.fd vars=/usr/share/AAVMF/AAVMF_VARS.fd
	args+=(-machine virt -cpu cortex-a57) ;;
esac
if [ $direct = 1 ]; then
	args+=(-kernel "$dir/vmlinuz" -initrd "$dir/initrd.img" -append "$(cat "$dir/cmdline")")
else
	cp "$vars" "$tmp/vars.fd"
	args+=(-drive "if=pflash,format=raw,unit=0,readonly=on,file=$code"
		-drive "if=pflash,format=raw,unit=1,file=$tmp/vars.fd"
		-drive "if=virtio,format=qcow2,file=$dir/disk.qcow2,snapshot=on")
fi
if [ $nic = 1 ]; then
	args+=(-netdev "user,id=n0,restrict=on" -device "virtio-net-pci,netdev=n0")
fi

mkfifo "$tmp/mon.in" "$tmp/mon.out"
: >"$tmp/serial.log"
start=$(date +%s.%N)
"$qemu" "${args[@]}" &
qpid=$!
cat "$tmp/mon.out" >/dev/null &

elapsed() { awk -v s="$start" -v n="$(date +%s.%N)" 'BEGIN { printf "%.1f", n - s }'; }
fail() {
	echo "qemu-smoke: FAIL ($arch): $*" >&2
	echo "---- serial log ----" >&2
	tr -d '\r' <"$tmp/serial.log" | tail -n 60 >&2
	exit 1
}
wait_for() { # REGEX: wait until the serial log has a line matching it
	local end=$((SECONDS + timeout))
	while ! tr -d '\r' <"$tmp/serial.log" | grep -Eq "$1"; do
		if ! kill -0 "$qpid" 2>/dev/null; then
			tr -d '\r' <"$tmp/serial.log" | grep -Eq "$1" || fail "qemu exited before '$1'"
			break
		fi
		[ $SECONDS -lt $end ] || fail "no '$1' within ${timeout}s"
		sleep 0.2
	done
}

wait_for '^GUEST-READY '
t_ready=$(elapsed)
wait_for '^GUEST-IP '
t_ip=$(elapsed)
ipline=$(tr -d '\r' <"$tmp/serial.log" | grep -E '^GUEST-IP ' | head -n1)
echo system_powerdown >"$tmp/mon.in"
t_btn=$(elapsed)
presses=1
if [ $direct = 1 ] && [ "$arch" = aarch64 ]; then
	# Device-tree boot: QEMU's gpio-key holds the PL061 line high for only
	# 100 ms of virtual time; a guest starved of host CPU can miss that
	# pulse.  (UEFI boot uses ACPI GED, which latches: one press must do.)
	end=$((SECONDS + timeout))
	while ! tr -d '\r' <"$tmp/serial.log" | grep -q GUEST-POWEROFF && [ $SECONDS -lt $end ]; do
		for _ in $(seq 25); do
			tr -d '\r' <"$tmp/serial.log" | grep -q GUEST-POWEROFF && break
			sleep 0.2
		done
		tr -d '\r' <"$tmp/serial.log" | grep -q GUEST-POWEROFF && break
		kill -0 "$qpid" 2>/dev/null || break
		echo system_powerdown >"$tmp/mon.in"
		presses=$((presses + 1))
	done
fi
wait_for 'GUEST-POWEROFF'
end=$((SECONDS + timeout))
while kill -0 "$qpid" 2>/dev/null; do
	[ $SECONDS -lt $end ] || fail "qemu still running ${timeout}s after GUEST-POWEROFF"
	sleep 0.2
done
wait "$qpid" || fail "qemu exited with status $?"
qpid=""
t_off=$(elapsed)
mode=uefi
[ $direct = 1 ] && mode=direct
echo "qemu-smoke: PASS $arch ($mode): $(tr -d '\r' <"$tmp/serial.log" | grep -E '^GUEST-READY ' | head -n1) at ${t_ready}s, $ipline at ${t_ip}s, power button at ${t_btn}s ($presses press(es)), GUEST-POWEROFF + qemu exit at ${t_off}s"

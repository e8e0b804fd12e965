#!/bin/bash
# 10-appliance-boot: the test appliances (tests/appliance/build.sh) boot
# under the sandbox's libvirtd exactly like Home Assistant OS would: the
# .qcow2.xz is checked against its .sha256 and unpacked into
# /var/lib/libvirt/images, a hand-written UEFI domain (tests/data/appliance/
# ARCH.xml: x86_64 = q35 + OVMF, aarch64 = virt + AAVMF, Secure Boot off,
# TCG) is defined with a virtio NIC on a br0 served by dnsmasq with a MAC
# reservation, and then for each arch:
#   GUEST-READY <arch>   on the serial console (the <log file=…> of the pty)
#   GUEST-IP <reserved>  udhcpc in the guest got the reserved address
#   virsh shutdown       (ACPI power button) -> GUEST-POWEROFF and the domain
#                        reaches "shut off (shutdown)" by itself
# Env: APPLIANCE_ARCHES (default "x86_64 aarch64"), APPLIANCE_TIMEOUT
# (seconds per step, default 90: TCG on a busy 2-core host is slow).
# Run it alone with:  sudo tests/sandbox.sh -- tests/e2e/10-appliance-boot.sh
# (started outside a sandbox, it wraps itself in one).
set -eu
top=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ -z "${GVM_SANDBOX:-}" ]; then
	exec "$top/tests/sandbox.sh" -- "$0" "$@"
fi

arches=${APPLIANCE_ARCHES:-x86_64 aarch64}
timeout=${APPLIANCE_TIMEOUT:-90}
appl=$top/build/appliance
data=${TESTDATA:-$top/tests/data}/appliance
images=/var/lib/libvirt/images
bridge=br0

fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
now() { echo "${EPOCHREALTIME/[.,]/}"; }
since() { local d=$((($(now) - $1) / 100000)); echo "$((d / 10)).$((d % 10))s"; }

# --- the appliances (a no-op when up to date; offline from the .deb cache)
# shellcheck disable=SC2086
if ! "$top/tests/appliance/build.sh" --out "$appl" $arches; then
	echo "FAIL building the appliances (run 'make appliances' where apt can reach Debian)"
	exit 1
fi

# --- br0 + dnsmasq in the sandbox's network namespace (never the host's)
[ "${GVM_SANDBOX:-}" = 1 ] || { echo "not in the sandbox"; exit 1; }
dnsmasq=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
[ -x "$dnsmasq" ] || { echo "SKIP: dnsmasq not found (dnsmasq-base)"; exit 77; }
ip link add "$bridge" type bridge
ip link set "$bridge" type bridge forward_delay 0 stp_state 0
ip addr add 192.168.4.1/27 dev "$bridge"
ip link set "$bridge" up
declare -A mac=([x86_64]=52:54:00:a7:10:24 [aarch64]=52:54:00:a7:10:25)
declare -A want_ip=([x86_64]=192.168.4.24 [aarch64]=192.168.4.25)
hosts=/run/gvm-appliance-dhcp-hosts
: >"$hosts"
for a in x86_64 aarch64; do echo "${mac[$a]},${want_ip[$a]},appliance-$a" >>"$hosts"; done
"$dnsmasq" --conf-file=/dev/null --no-resolv --no-hosts --port=0 --user=root \
	--interface="$bridge" --bind-interfaces --dhcp-authoritative \
	--dhcp-range=192.168.4.2,192.168.4.23,255.255.255.224,1h --dhcp-hostsfile="$hosts" \
	--dhcp-leasefile=/run/gvm-appliance.leases --pid-file=/run/gvm-appliance-dnsmasq.pid \
	--log-dhcp --log-facility=/run/gvm-appliance-dnsmasq.log
dnsmasq_pid=""
for _ in $(seq 50); do
	# pid files may lack a trailing newline: read sets the variable anyway
	read -r dnsmasq_pid </run/gvm-appliance-dnsmasq.pid 2>/dev/null || true
	[ -n "$dnsmasq_pid" ] && break
	sleep 0.1
done
[ -n "$dnsmasq_pid" ] || { echo "FAIL dnsmasq did not start"; exit 1; }

domains=()
cleanup() {
	local d
	for d in "${domains[@]}"; do
		virsh -q destroy "$d" >/dev/null 2>&1 || true
		virsh -q undefine --nvram "$d" >/dev/null 2>&1 || true
	done
	if [ -n "$dnsmasq_pid" ]; then kill "$dnsmasq_pid" 2>/dev/null || true; fi
	ip link del "$bridge" 2>/dev/null || true
}
trap cleanup EXIT

serial_has() { tr -d '\r' 2>/dev/null <"$1" | grep -Eq "$2"; }
wait_serial() { # wait_serial LOG REGEX DOMAIN: true when the log shows REGEX
	local end=$((SECONDS + timeout))
	until serial_has "$1" "$2"; do
		[ $SECONDS -lt $end ] || return 1
		sleep 0.25
	done
}
show_log() {
	echo "---- serial log of $2 (last 40 lines) ----"
	tr -d '\r' 2>/dev/null <"$1" | tail -n 40
	echo "---- libvirt/QEMU log of $2 ----"
	tail -n 15 "/var/log/libvirt/qemu/$2.log" 2>/dev/null
	echo "---- dnsmasq ----"
	tail -n 10 /run/gvm-appliance-dnsmasq.log 2>/dev/null
	echo "----"
}

boot_one() {
	local arch=$1 name=appliance-$1 dir=$appl/$1 xml log disk t0 st
	local code vars emu
	case $arch in
	x86_64) emu=qemu-system-x86_64 code=/usr/share/OVMF/OVMF_CODE_4M.fd vars=/usr/share/OVMF/OVMF_VARS_4M.fd ;;
	aarch64) emu=qemu-system-aarch64 code=/usr/share/AAVMF/AAVMF_CODE.fd vars=/usr/share/AAVMF/AAVMF_VARS.fd ;;
	*) bad "unknown arch $arch"; return ;;
	esac
	if ! command -v "$emu" >/dev/null || [ ! -f "$code" ] || [ ! -f "$vars" ]; then
		bad "$arch: $emu or its firmware ($code) is missing (ovmf / qemu-efi-aarch64)"
		return
	fi
	echo "== $arch"

	# Like a deploy: verify the download's digest, unpack it into the pool.
	if (cd "$dir" && sha256sum --quiet -c disk.qcow2.xz.sha256); then
		ok "$arch: disk.qcow2.xz matches disk.qcow2.xz.sha256"
	else
		bad "$arch: disk.qcow2.xz does not match its .sha256"; return
	fi
	mkdir -p "$images" /var/lib/libvirt/qemu/nvram /var/log/libvirt/qemu
	disk=$images/$name.qcow2
	xz -dc "$dir/disk.qcow2.xz" >"$disk"
	if qemu-img info --output=json "$disk" | grep -q '"format": "qcow2"' &&
		! qemu-img info --output=json "$disk" | grep -q 'backing-filename'; then
		ok "$arch: unpacked image is a qcow2 without a backing file"
	else
		bad "$arch: unpacked image is not a plain qcow2"
	fi

	log=/var/log/libvirt/qemu/$name-serial.log
	xml=$(mktemp /run/gvm-appliance-XXXXXX.xml)
	sed -e "s|@NAME@|$name|g" -e "s|@DISK@|$disk|g" -e "s|@MAC@|${mac[$arch]}|g" \
		-e "s|@BRIDGE@|$bridge|g" -e "s|@LOG@|$log|g" \
		-e "s|@NVRAM@|/var/lib/libvirt/qemu/nvram/${name}_VARS.fd|g" \
		"$data/$arch.xml" >"$xml"
	if command -v virt-xml-validate >/dev/null; then
		if virt-xml-validate "$xml" domain >/dev/null 2>&1; then ok "$arch: domain XML validates"; else bad "$arch: domain XML does not validate"; fi
	fi
	if ! virsh -q define "$xml" >/dev/null; then
		bad "$arch: virsh define"; rm -f "$xml"; return
	fi
	rm -f "$xml"
	domains+=("$name")
	t0=$(now)
	if ! virsh -q start "$name" >/dev/null; then
		bad "$arch: virsh start"; show_log "$log" "$name"; return
	fi
	ok "$arch: defined and started (TCG, UEFI)"

	if wait_serial "$log" "^GUEST-READY $arch\$"; then
		ok "$arch: GUEST-READY $arch after $(since "$t0")"
	else
		bad "$arch: no 'GUEST-READY $arch' within ${timeout}s"; show_log "$log" "$name"; return
	fi
	if wait_serial "$log" '^GUEST-IP '; then
		local got
		got=$(tr -d '\r' <"$log" | sed -n 's/^GUEST-IP //p' | head -n1)
		if [ "$got" = "${want_ip[$arch]}" ]; then
			ok "$arch: GUEST-IP $got (the reservation for ${mac[$arch]}) after $(since "$t0")"
		else
			bad "$arch: GUEST-IP '$got', expected ${want_ip[$arch]}"; show_log "$log" "$name"
		fi
	else
		bad "$arch: no 'GUEST-IP' within ${timeout}s"; show_log "$log" "$name"; return
	fi

	# Graceful stop: ACPI power button -> acpid -> poweroff.
	t0=$(now)
	if virsh -q shutdown "$name" >/dev/null; then ok "$arch: virsh shutdown sent"; else bad "$arch: virsh shutdown"; fi
	if wait_serial "$log" 'GUEST-POWEROFF'; then
		ok "$arch: GUEST-POWEROFF after $(since "$t0")"
	else
		bad "$arch: no GUEST-POWEROFF within ${timeout}s of virsh shutdown"; show_log "$log" "$name"
	fi
	local end=$((SECONDS + timeout))
	st=""
	while [ $SECONDS -lt $end ]; do
		st=$(virsh domstate --reason "$name" 2>/dev/null | head -n1)
		case $st in "shut off"*) break ;; esac
		sleep 0.25
	done
	if [ "$st" = "shut off (shutdown)" ]; then
		ok "$arch: domain is '$st' after $(since "$t0")"
	else
		bad "$arch: domain state '$st', expected 'shut off (shutdown)'"; show_log "$log" "$name"
	fi
	if virsh -q undefine --nvram "$name" >/dev/null; then ok "$arch: undefined"; else bad "$arch: undefine"; fi
	rm -f "$disk"
}

for a in $arches; do
	boot_one "$a"
done

[ "$fails" = 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all appliance checks passed"

#!/bin/bash
# `sudo make demo`: runs Guardian VMs for real, isolated from this machine.
#
# Starts tests/sandbox.sh (private mount + network namespaces with their own
# libvirtd) kept open under build/demo/run, creates a br0 bridge with
# dnsmasq inside it (192.168.4.1/27, as on Guardian), defines one VM "demo"
# from the x86_64 test appliance (a UEFI disk image shaped like Home
# Assistant OS; domain XML from the product's own generator), then runs vmmod
# in the foreground on 127.0.0.1:8090 against that libvirtd and prints the
# URL and the bearer token.  Ctrl-C stops vmmod and tears the sandbox down.
#
# usage: tools/demo.sh [--port PORT] [--build DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
port=8090
build=build/$(uname -m)
while [ $# -gt 0 ]; do
	case "$1" in
	--port) port=$2; shift ;;
	--build) build=$2; shift ;;
	--inner) shift; break ;;
	-h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "demo: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done

arch=$(uname -m)
demo=$top/build/demo
run=$demo/run
app=$top/build/appliance/$arch

# ---- inside the sandbox: network, dnsmasq, the demo VM -------------------
if [ "${GVM_SANDBOX:-}" = 1 ]; then
	mkdir -p /run/gvm/hosts /run/gvm/names
	ip link add br0 type bridge
	ip addr add 192.168.4.1/27 dev br0
	ip link set br0 up
	echo "52:54:00:04:18:18,192.168.4.20,demo" > /run/gvm/hosts/demo
	dnsmasq --conf-file=/dev/null --interface=br0 --bind-interfaces \
		--except-interface=lo --port=0 \
		--dhcp-range=192.168.4.2,192.168.4.23,255.255.255.224,12h \
		--dhcp-hostsdir=/run/gvm/hosts \
		--dhcp-leasefile=/run/gvm/dnsmasq.leases \
		--pid-file=/run/gvm/dnsmasq.pid --log-facility=/run/gvm/dnsmasq.log
	img=/var/lib/libvirt/images
	mkdir -p "$img" /var/lib/libvirt/qemu/nvram
	cp "$app/disk.qcow2" "$img/demo.qcow2"
	case $arch in
	x86_64) loader=/usr/share/OVMF/OVMF_CODE_4M.fd vars=/usr/share/OVMF/OVMF_VARS_4M.fd ;;
	aarch64) loader=/usr/share/AAVMF/AAVMF_CODE.fd vars=/usr/share/AAVMF/AAVMF_VARS.fd ;;
	esac
	cat > /run/gvm/demo.json <<JSON
{"name": "demo", "title": "Demo appliance (boots like Home Assistant OS)",
 "arch": "$arch", "type": "qemu", "memory_mb": 256, "vcpus": 1,
 "firmware": {"loader": "$loader", "nvram_template": "$vars",
              "nvram": "/var/lib/libvirt/qemu/nvram/demo_VARS.fd"},
 "disk": "$img/demo.qcow2",
 "network": {"bridge": "br0", "mac": "52:54:00:04:18:18"},
 "vnc": true}
JSON
	"$top/$build/gvm-domxml" /run/gvm/demo.json > /run/gvm/demo.xml
	virsh -q define /run/gvm/demo.xml
	touch /run/gvm/ready
	# Stay until the outer part stops the sandbox; dnsmasq is ours to end.
	trap 'kill "$(cat /run/gvm/dnsmasq.pid)" 2>/dev/null; exit 0' TERM INT
	while :; do sleep 3600 & wait $!; done
fi

# ---- outside: build, sandbox, vmmod --------------------------------------
[ "$(id -u)" = 0 ] || { echo "demo: needs root for its network namespace: sudo make demo" >&2; exit 1; }
[ -x "$build/vmmod" ] || { echo "demo: $build/vmmod missing: run make" >&2; exit 1; }
tests/appliance/build.sh --out build/appliance "$arch"
if [ -e "$run/gvm-sandbox.uri" ]; then
	echo "demo: $run is in use (another demo running?)" >&2
	exit 1
fi
mkdir -p "$demo"
rm -rf "$run"
# Each demo starts with a fresh libvirtd, so vmmod's own state starts fresh
# too (the image cache stays).
rm -rf "$demo/jobs" "$demo/pool" "$demo/reservations.json"

sandbox_pid="" vmmod_pid=""
cleanup() {
	trap - EXIT INT TERM
	[ -n "$vmmod_pid" ] && kill "$vmmod_pid" 2>/dev/null && wait "$vmmod_pid" 2>/dev/null
	if [ -n "$sandbox_pid" ]; then
		kill "$sandbox_pid" 2>/dev/null
		wait "$sandbox_pid" 2>/dev/null
	fi
	echo "demo: stopped; the sandbox is gone"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

tests/sandbox.sh --keep "$run" -- "$top/tools/demo.sh" --build "$build" --inner &
sandbox_pid=$!
for _ in $(seq 1 120); do
	[ -e "$run/gvm/ready" ] && break
	kill -0 "$sandbox_pid" 2>/dev/null || { echo "demo: the sandbox failed to start" >&2; exit 1; }
	sleep 0.5
done
[ -e "$run/gvm/ready" ] || { echo "demo: the sandbox did not get ready" >&2; exit 1; }
uri="qemu:///system?socket=$run/libvirt/libvirt-sock"

cat > "$demo/vmmod.conf" <<CONF
# written by tools/demo.sh
lease_file = $run/gvm/dnsmasq.leases
reservations_dir = $run/gvm/hosts
hosts_dir = $run/gvm/names
appliance_dir = $top/build/appliance
accel = tcg
socket_group =
CONF
"$build/vmmod" -d -f "$demo/vmmod.conf" --uri "$uri" --listen "127.0.0.1:$port" \
	--socket "$demo/vmmod.sock" --token-file "$demo/token" --data-dir "$demo" \
	--templates "$top/templates" --web-root "$top/web-assets" &
vmmod_pid=$!
for _ in $(seq 1 50); do
	[ -s "$demo/token" ] && curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
	kill -0 "$vmmod_pid" 2>/dev/null || { echo "demo: vmmod exited" >&2; exit 1; }
	sleep 0.2
done
token=$(cat "$demo/token")
cat <<MSG

  Guardian VMs demo is running (Ctrl-C stops it and removes the sandbox).

  Dashboard:  http://127.0.0.1:$port/
  Token:      $token
  Try:        curl -H "Authorization: Bearer $token" http://127.0.0.1:$port/api/vms
              curl -X POST -H "Authorization: Bearer $token" http://127.0.0.1:$port/api/vms/demo/start
  libvirt:    virsh -c '$uri' list --all

MSG
wait "$vmmod_pid"

#!/bin/bash
# 52-console-tls: vmmod's console listener (Guardian's https://<br0>:8091).
# A self-signed certificate (certtool, gnutls-bin) reaches vmmod the way
# systemd's LoadCredential= hands it over: console.crt and console.key in
# $CREDENTIALS_DIRECTORY.  First the refusals to start (missing key, the
# unit's "none" fallback, a key of another certificate); then the x86_64
# test appliance boots (as in 50-console) and 52-console-tls.py checks, over
# verified TLS: an asset is served, every non-console route is a 404, plain
# HTTP gets no answer, a ticket minted on the Unix socket yields a URL on the
# console listener, the page opens with it (Secure cookie), the websockets
# want the listener's own Origin, and serial (echo hi-<random>) and VNC work
# over wss.
# Run it alone with:  sudo tests/sandbox.sh -- tests/e2e/52-console-tls.sh
set -u
top=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ -z "${GVM_SANDBOX:-}" ]; then
	exec "$top/tests/sandbox.sh" -- "$0" "$@"
fi
build=${BUILD:-build/$(uname -m)}
case $build in /*) ;; *) build=$top/$build ;; esac
vmmod=$build/vmmod
app=$top/build/appliance/x86_64
py=/usr/bin/python3
for t in curl virsh certtool; do
	command -v $t >/dev/null || { echo "SKIP: no $t (sudo make deps)"; exit 77; }
done
$py -c 'import websocket' 2>/dev/null ||
	{ echo "SKIP: no python3-websocket (sudo make deps)"; exit 77; }
[ -r "$app/vmlinuz" ] && [ -r "$app/initrd.img" ] ||
	{ echo "SKIP: no x86_64 appliance (make appliances)"; exit 77; }
[ -x "$vmmod" ] || { echo "FAIL: no $vmmod (make first)"; exit 1; }

fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }

d=$(mktemp -d /tmp/gvm-e2e-console-tls.XXXXXX)
chmod 755 "$d"
port=18094
cport=18095
vm=gvm-console-tls
vmmod_pid=""
cleanup() {
	virsh -q destroy $vm >/dev/null 2>&1
	virsh -q undefine $vm >/dev/null 2>&1
	[ -n "$vmmod_pid" ] && kill "$vmmod_pid" 2>/dev/null && wait "$vmmod_pid"
	if [ "$fails" != 0 ] && [ -f "$d/vmmod.log" ]; then
		echo "--- vmmod log (last 40 lines)"
		tail -40 "$d/vmmod.log"
	fi
	rm -rf "$d"
}
trap cleanup EXIT

# ---- a self-signed certificate for 127.0.0.1, and a second key
creds=$d/credentials
mkdir -p "$creds" "$d/other"
cat >"$d/cert.tmpl" <<EOF
cn = "127.0.0.1"
ip_address = "127.0.0.1"
expiration_days = 2
tls_www_server
signing_key
ca
EOF
if certtool --generate-privkey --key-type=ecdsa --no-text \
	--outfile "$creds/console.key" >/dev/null 2>&1 &&
	certtool --generate-self-signed --load-privkey "$creds/console.key" \
		--template "$d/cert.tmpl" --outfile "$creds/console.crt" >/dev/null 2>&1 &&
	certtool --generate-privkey --key-type=ecdsa --no-text \
		--outfile "$d/other/console.key" >/dev/null 2>&1; then
	ok "self-signed certificate for 127.0.0.1 (certtool)"
else
	bad "certtool could not make a certificate"
	exit 1
fi
chmod 600 "$creds/console.key"

mkdir -p "$d/resv"
cat >"$d/vmmod.conf" <<EOF
socket_group =
lease_file = $d/leases
reservations_dir = $d/resv
web_root = $top/web-assets
console_listen = 127.0.0.1:$cport
EOF
run_vmmod() { # CREDENTIALS_DIRECTORY [extra conf line]; output in $d/vmmod.log
	local conf=$d/vmmod.conf
	if [ -n "${2:-}" ]; then
		conf=$d/vmmod-extra.conf
		{ cat "$d/vmmod.conf"; echo "$2"; } >"$conf"
	fi
	exec env CREDENTIALS_DIRECTORY="$1" "$vmmod" -d -f "$conf" --uri qemu:///system \
		--accel tcg --socket "$d/vmmod.sock" --listen "127.0.0.1:$port" \
		--token-file "$d/token" --data-dir "$d" >"$d/vmmod.log" 2>&1
}
# refuses to start, says why, listens nowhere
refuses() { # WHAT CREDENTIALS_DIRECTORY LOG-PATTERN [extra conf line]
	local pid rc
	run_vmmod "$2" "${4:-}" &
	pid=$!
	for _ in $(seq 600); do
		kill -0 $pid 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 $pid 2>/dev/null; then
		kill $pid
		wait $pid
		bad "$1: vmmod started anyway"
		return
	fi
	wait $pid
	rc=$?
	if [ $rc -ne 0 ] && grep -q -- "$3" "$d/vmmod.log" &&
		! curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/healthz"; then
		ok "$1: vmmod exits $rc ($(grep -m1 -- "$3" "$d/vmmod.log" | cut -c1-110))"
	else
		bad "$1: exit $rc, want a failure naming '$3'"
		sed 's/^/    /' "$d/vmmod.log" | tail -5
	fi
}
# the key missing
mkdir -p "$d/nokey"
cp "$creds/console.crt" "$d/nokey/"
refuses "missing console.key" "$d/nokey" "$d/nokey/console.key: No such file"
# vmmod.service's SetCredential= fallback: the unit's source file is missing
mkdir -p "$d/fallback"
printf none >"$d/fallback/console.crt"
printf none >"$d/fallback/console.key"
refuses "credentials are the unit's 'none' fallback" "$d/fallback" "holds no PEM data"
# a key that is not the certificate's
cp "$creds/console.crt" "$d/other/"
refuses "key of another certificate" "$d/other" "$d/other/console.crt with key"
# no credentials directory and no console_tls_* keys: a configuration error
refuses "no certificate configured" "" "console_listen needs console_tls_cert"
if CREDENTIALS_DIRECTORY=$creds "$vmmod" -n -f "$d/vmmod.conf" >/dev/null 2>&1; then
	ok "vmmod -n accepts console_listen with credentials"
else
	bad "vmmod -n refuses console_listen with credentials"
fi

# ---- the appliance (see 50-console.sh)
cp "$app/vmlinuz" "$app/initrd.img" "$d/"
cat >"$d/dom.xml" <<XML
<domain type='qemu'>
  <name>$vm</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>$d/vmlinuz</kernel>
    <initrd>$d/initrd.img</initrd>
    <cmdline>console=ttyS0,115200 quiet</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <serial type='pty'/>
    <console type='pty'/>
    <graphics type='vnc'><listen type='none'/></graphics>
    <video><model type='vga'/></video>
    <memballoon model='none'/>
  </devices>
</domain>
XML
if virsh -q define "$d/dom.xml" >/dev/null && virsh -q start $vm >/dev/null; then
	ok "appliance $vm defined and started (direct kernel, TCG)"
else
	bad "cannot start the appliance"
	exit 1
fi

run_vmmod "$creds" &
vmmod_pid=$!
for _ in $(seq 100); do
	curl -s --max-time 2 -o /dev/null --unix-socket "$d/vmmod.sock" \
		http://vmmod/healthz && break
	sleep 0.1
done
if grep -q "console listener on https://127.0.0.1:$cport" "$d/vmmod.log"; then
	ok "vmmod serves the console listener on https://127.0.0.1:$cport"
else
	bad "no console listener in vmmod's log"
fi
for _ in $(seq 300); do
	virsh -q domstate $vm | grep -q running &&
		curl -s --unix-socket "$d/vmmod.sock" "http://vmmod/api/vms/$vm" |
		grep -q '"running"' && break
	sleep 0.1
done

if ! $py "$top/tests/e2e/52-console-tls.py" "$d/vmmod.sock" \
	"https://127.0.0.1:$cport" "$creds/console.crt" $vm; then
	fails=$((fails + 1))
fi
# the main TCP listener is unchanged: plain HTTP, the API behind the token
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/api/vms")
[ "$code" = 401 ] && ok "main listener: /api/vms without token -> 401" ||
	bad "main listener: /api/vms without token -> $code"
if kill -0 "$vmmod_pid" 2>/dev/null; then ok "vmmod still running"; else bad "vmmod died"; fi
[ "$fails" = 0 ]

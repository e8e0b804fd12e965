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
. "$top/tests/e2e/lib/console.sh" # vmmod, boot_appliance, spawn_vmmod, ...
need_tools curl virsh certtool
need_websocket
need_appliance
need_vmmod

console_dir console-tls
trap console_cleanup EXIT
port=18094
cport=18095
vm=gvm-console-tls

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

console_conf "web_root = $top/web-assets" "console_listen = 127.0.0.1:$cport"
# run_vmmod CREDENTIALS_DIRECTORY [extra conf line]: spawn_vmmod with the
# credentials systemd would hand over, on vmmod.conf plus the line
run_vmmod() {
	local vmmod_conf=$vmmod_conf
	if [ -n "${2:-}" ]; then
		vmmod_conf=$d/vmmod-extra.conf
		{ cat "$d/vmmod.conf"; echo "$2"; } >"$vmmod_conf"
	fi
	CREDENTIALS_DIRECTORY=$1 spawn_vmmod -d --data-dir "$d"
}
# refuses to start, says why, listens nowhere
refuses() { # WHAT CREDENTIALS_DIRECTORY LOG-PATTERN [extra conf line]
	local rc
	run_vmmod "$2" "${4:-}"
	for _ in $(seq 600); do
		kill -0 $vmmod_pid 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 $vmmod_pid 2>/dev/null; then
		stop_vmmod
		bad "$1: vmmod started anyway"
		return
	fi
	wait $vmmod_pid
	rc=$?
	vmmod_pid=""
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
boot_appliance $vm

run_vmmod "$creds"
check "vmmod answers on 127.0.0.1:$port" vmmod_up
if grep -q "console listener on https://127.0.0.1:$cport" "$d/vmmod.log"; then
	ok "vmmod serves the console listener on https://127.0.0.1:$cport"
else
	bad "no console listener in vmmod's log"
fi
check "vmmod has $vm running" vm_running $vm

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

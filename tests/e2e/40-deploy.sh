#!/bin/bash
# 40-deploy: one-click deploys through a real vmmod in the sandbox.
#   - the aarch64 test appliance ("mini-HAOS") served over HTTP on the
#     sandbox's loopback (tests/tools/fetch-httpd.py), deployed with a
#     template shaped like homeassistant (aarch64, UEFI, virt, overlay, web
#     port 8123; vmmod acts as an arm64 host via VMMOD_ARCH, TCG): the job
#     succeeds with SSE job events, the guest prints GUEST-READY and
#     GUEST-IP <its reservation> (br0 + dnsmasq reading vmmod's dhcp-hostsdir),
#     the VM shows that ip and web_url :8123
#   - failures leave nothing in the pool, libvirt or the reservations: wrong
#     checksum, cancel mid-download (slow server), vmmod SIGKILLed mid-job
#     (restart: job failed, leftovers gone); refused before any download:
#     duplicate name, unpinned without trust_unpinned, RAM budget
#   - also: 404, free space checked first, two deploys of one image at once
#     (one download, resuming the killed job's partial one with Range, one
#     base), trust on first use (digest shown and pinned locally, no second
#     download), a cloud image's cloud-init seed ISO (cidata) as a pool volume
#   - the x86_64 appliance through the demo-style file:// template
#   - deleting a deployed VM releases its reservation and removes disk + seed
# Run it alone with:  sudo tests/sandbox.sh -- tests/e2e/40-deploy.sh
set -u
top=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ -z "${GVM_SANDBOX:-}" ]; then
	exec "$top/tests/sandbox.sh" -- "$0" "$@"
fi
. "$top/tests/e2e/lib/deploy.sh" # vmmod, api, field, wait_job, create, ...
timeout=${DEPLOY_TIMEOUT:-120}
need_tools curl jq virsh python3 script
dnsmasq=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
[ -x "$dnsmasq" ] || { echo "SKIP: dnsmasq not found"; exit 77; }
need_vmmod
need_images aarch64 x86_64

deploy_dir deploy
mkdir -p "$d/www/a"
sse_pid=""
cleanup() {
	[ -n "$sse_pid" ] && kill "$sse_pid" 2>/dev/null
	deploy_cleanup
}
trap cleanup EXIT

# ------------------------------------------------------------ network
br0_up 192.168.4.1/27
"$dnsmasq" --conf-file=/dev/null --no-resolv --no-hosts --port=0 --user=root \
	--interface=br0 --bind-interfaces --dhcp-authoritative \
	--dhcp-range=192.168.4.2,192.168.4.23,255.255.255.224,1h \
	--dhcp-hostsdir="$d/resv" --dhcp-leasefile="$d/leases" \
	--pid-file="$d/dnsmasq.pid" --log-dhcp --log-facility="$d/dnsmasq.log"
dnsmasq_pid=""
for _ in $(seq 50); do
	read -r dnsmasq_pid <"$d/dnsmasq.pid" 2>/dev/null && [ -n "$dnsmasq_pid" ] && break
	sleep 0.1
done
[ -n "$dnsmasq_pid" ] || { echo "FAIL dnsmasq did not start"; exit 1; }
bg_pids+=("$dnsmasq_pid")

# ------------------------------------------------------------ image servers
cp "$appl/aarch64/disk.qcow2.xz" "$d/www/a/haos.qcow2.xz"
sha_a=$(cut -d' ' -f1 "$appl/aarch64/disk.qcow2.xz.sha256")
size_a=$(stat -c %s "$d/www/a/haos.qcow2.xz")
# The slow server's image must not be in the pool already (ha1's base is).
cp "$appl/x86_64/disk.qcow2.xz" "$d/www/a/other.qcow2.xz"
sha_o=$(cut -d' ' -f1 "$appl/x86_64/disk.qcow2.xz.sha256")
httpd srv && httpd slow --rate 150000 || { echo "FAIL image servers did not start"; exit 1; }
: >>"$d/srv.log"

# ------------------------------------------------------------ templates
template() { # template ID URL SHA256|null [SIZE]
	jq -n --arg id "$1" --arg url "$2" --arg sha "$3" --argjson size "${4:-$size_a}" '{
	  schema: 1, id: $id, name: "Home Assistant OS (test)",
	  description: "mini-HAOS shaped like homeassistant",
	  kind: "disk-image", firmware: {type: "uefi", secure_boot: false},
	  memory_mb: 512, min_memory_mb: 256, vcpus: 1, disk_gb: 2,
	  disk_mode: "overlay", web: {scheme: "http", port: 8123, path: "/"},
	  dns_name: "homeassistant", wants_devices: ["usb:zigbee"], cloud_init: null,
	  images: {aarch64: {url: $url, sha256: (if $sha == "null" then null else $sha end),
	    note: (if $sha == "null" then "unpinned for the test" else "test pin" end),
	    size: $size, format: "qcow2", compression: "xz", version: "test"}}}' \
		>"$d/templates/$1.json"
}
template haos "http://127.0.0.1:$port_srv/a/haos.qcow2.xz" "$sha_a"
template unpinned "http://127.0.0.1:$port_srv/a/haos.qcow2.xz" null
template badsum "http://127.0.0.1:$port_srv/a/haos.qcow2.xz" \
	"$(printf '%064d' 0 | sed 's/^0/a/')"
template slow "http://127.0.0.1:$port_slow/a/other.qcow2.xz" "$sha_o" \
	"$(stat -c %s "$d/www/a/other.qcow2.xz")"
cp "$appl/x86_64/disk.qcow2.xz" "$d/www/a/twin.qcow2.xz"
template twin "http://127.0.0.1:$port_srv/a/twin.qcow2.xz" "$sha_o" \
	"$(stat -c %s "$d/www/a/twin.qcow2.xz")"
jq '.id = "cloudy" | .kind = "cloud-image" | .web = null |
    .cloud_init = {needs_login: true, user_data: {packages: ["curl"]}}' \
	"$d/templates/twin.json" >"$d/templates/cloudy.json"
template missing "http://127.0.0.1:$port_srv/a/nope.qcow2.xz" "$(printf 'b%.0s' $(seq 64))"

# ------------------------------------------------------------ vmmod
vmmod_conf "ram_budget_mb = 1500"
expect() { # expect STATUS CODE METHOD PATH [BODY]
	local want=$1 wcode=$2 got
	shift 2
	got=$(api "$@")
	if [ "$got" = "$want" ] && { [ "$wcode" = - ] || [ "$(field .code)" = "$wcode" ]; }; then
		ok "$1 $2 -> $got ${wcode/#-/}"
	else
		bad "$1 $2 -> $got $(field .code) (want $want $wcode): $(head -c 300 "$d/out")"
	fi
}
sse() { # (re)connects the SSE recorder; events append to $d/sse
	[ -n "$sse_pid" ] && kill "$sse_pid" 2>/dev/null
	curl -sS -N "${S[@]}" --max-time 600 http://vmmod/api/events >>"$d/sse" 2>/dev/null &
	sse_pid=$!
}
check "vmmod (as an aarch64 host) answers" start_vmmod aarch64
sse

# ------------------------------------------------------------ templates
expect 200 - GET /api/vms/templates
check "templates: haos available, pinned, fits RAM and disk" \
	jqe '.templates[] | select(.id == "haos") | .available and .pinned and .fits_ram and .fits_disk' "$d/out"
check "templates: unpinned is not pinned" \
	jqe '.templates[] | select(.id == "unpinned") | .available and (.pinned | not)' "$d/out"

# ------------------------------------------------------------ refused up front
expect 409 unpinned_image POST /api/vms/create '{"template":"unpinned","name":"u1"}'
check "unpinned: the message says trust_unpinned" grep -q trust_unpinned "$d/out"
expect 400 disk_path_refused POST /api/vms/create '{"template":"haos","name":"p1","disk_path":"/etc/passwd"}'
expect 400 unknown_field POST /api/vms/create '{"template":"haos","name":"p1","bogus":1}'
expect 400 invalid_name POST /api/vms/create '{"template":"haos","name":"Bad Name"}'
expect 409 ram_budget POST /api/vms/create '{"template":"haos","name":"big","memory_mb":2048}'
check "RAM guard names the numbers" grep -q '2048 MB.*1500 MB' "$d/out"
check "nothing downloaded so far" [ ! -s "$d/srv.log" ]

# ------------------------------------------------------------ aarch64 deploy
t0=$SECONDS
create '{"template":"haos","name":"ha1","start":true,"autostart":true}'
check "create ha1 -> 202 with a job id j-…" eval '[[ $job == j-?* ]]'
wait_job "$job" succeeded failed cancelled
check "job ha1: state succeeded, phase done, sha256 = the pin" \
	jqe --arg s "$sha_a" '.state == "succeeded" and .phase == "done" and .sha256 == $s and .pinned and .error == null and .kind == "deploy" and .vm == "ha1"' "$d/out"
echo "     (deploy took $((SECONDS - t0)) s)"
serial ha1
check "SSE: job events with downloading … done" bash -c \
	"grep -A1 '^event: job' '$d/sse' | grep '^data:' | grep -q '\"phase\":\"downloading\"' &&
	 grep -A1 '^event: job' '$d/sse' | grep '^data:' | grep -q '\"state\":\"succeeded\"'"
ip_ha1=$(jq -r '.reservations[]? | select(.name == "ha1") | .ip' "$d/data/reservations.json" 2>/dev/null)
[ -n "$ip_ha1" ] || ip_ha1=$(cut -d, -f2 "$d/resv/ha1" 2>/dev/null)
check "reservation file for ha1 ($ip_ha1)" [ -n "$ip_ha1" ]
check "domain XML uses the reserved MAC" bash -c \
	"virsh dumpxml ha1 | grep -qi \"mac address='$(cut -d, -f1 "$d/resv/ha1" 2>/dev/null)'\""
check "disk is a qcow2 overlay on the read-only base" bash -c \
	"qemu-img info -U --output=json '$d/data/pool/ha1.qcow2' | jq -e '.\"backing-filename\" | test(\"base-$sha_a\")' >/dev/null"
check "disk grown to 2 GiB" bash -c \
	"[ \"\$(qemu-img info -U --output=json '$d/data/pool/ha1.qcow2' | jq '.\"virtual-size\"')\" = 2147483648 ]"
check "ha1 autostart" bash -c "virsh dominfo ha1 | grep -q 'Autostart: *enable'"
if wait_serial ha1 '^GUEST-READY aarch64'; then ok "ha1: GUEST-READY aarch64 on the serial console"; else
	bad "ha1: no GUEST-READY"; tail -20 "$d/ha1.serial"; fi
if wait_serial ha1 '^GUEST-IP '; then
	got=$(tr -d '\r' <"$d/ha1.serial" | sed -n 's/^GUEST-IP //p' | head -1)
	check "ha1: GUEST-IP $got is its reservation $ip_ha1" [ "$got" = "$ip_ha1" ]
else
	bad "ha1: no GUEST-IP"; tail -20 "$d/ha1.serial"; tail -5 "$d/dnsmasq.log"
fi
expect 200 - GET /api/vms/ha1
check "VM ha1: ip = reservation, web_url :8123, template haos" \
	jqe --arg ip "$ip_ha1" '.ip == $ip and .web_url == "http://\($ip):8123" and .template == "haos"' "$d/out"

# ------------------------------------------------------------ duplicate name
n0=$(wc -l <"$d/srv.log")
expect 409 exists POST /api/vms/create '{"template":"haos","name":"ha1"}'
check "duplicate: the image server saw no request" [ "$(wc -l <"$d/srv.log")" = "$n0" ]

# ------------------------------------------------------------ RAM guard with a VM running
expect 409 ram_budget POST /api/vms/create '{"template":"haos","name":"ha2","memory_mb":1024}'
check "RAM guard: 512 committed + 1024 > 1500" grep -q '512 MB committed.*1024 MB.*1500 MB' "$d/out"

# ------------------------------------------------------------ wrong checksum
create '{"template":"badsum","name":"bad1"}'
wait_job "$job" failed succeeded cancelled
check "bad checksum: job failed" jqe '.state == "failed"' "$d/out"
check "bad checksum: error says checksum" bash -c "jq -r .error '$d/out' | grep -qi checksum"
check "bad checksum: nothing left" nothing_left bad1

# ------------------------------------------------------------ 404
create '{"template":"missing","name":"gone1"}'
wait_job "$job" failed succeeded cancelled
check "404: job failed, the error says so" jqe '.state == "failed" and (.error | test("404"))' "$d/out"
check "404: nothing left" nothing_left gone1

# ------------------------------------------------------------ cancel mid-download
create '{"template":"slow","name":"slow1"}'
end=$((SECONDS + 30))
until [ "$(api GET "/api/jobs/$job"; field '.bytes_done > 0')" = 200true ] || [ $SECONDS -ge $end ]; do sleep 0.2; done
check "slow download in progress (bytes_done > 0, rate_bps)" \
	jqe '.state == "running" and .phase == "downloading" and .bytes_done > 0' "$d/out"
expect 202 - DELETE "/api/jobs/$job"
wait_job "$job" cancelled failed succeeded
check "cancel: job cancelled" jqe '.state == "cancelled" and .error == "cancelled"' "$d/out"
check "cancel: nothing left" nothing_left slow1
expect 409 wrong_state DELETE "/api/jobs/$job"

# ------------------------------------------------------------ SIGKILL mid-job
create '{"template":"slow","name":"kill1"}'
kjob=$job
end=$((SECONDS + 30))
until [ "$(api GET "/api/jobs/$kjob"; field '.bytes_done > 100000')" = 200true ] || [ $SECONDS -ge $end ]; do sleep 0.2; done
check "kill1 downloading" jqe '.phase == "downloading"' "$d/out"
check "a half-written image is in the pool" bash -c "ls '$d/data/pool' | grep -q '\.tmp-'"
stop_vmmod KILL
check "vmmod restarted" start_vmmod aarch64
sse
sleep 1
expect 200 - GET "/api/jobs/$kjob"
check "after restart: job kill1 failed with a reason" \
	jqe '.state == "failed" and (.error | test("stopped"))' "$d/out"
check "after restart: nothing of kill1 left" nothing_left kill1
expect 200 - GET /api/jobs
check "job list has all 5 jobs so far" jqe '.jobs | length == 5' "$d/out"
check "ha1 survived the restart" bash -c "virsh domstate ha1 | grep -q running"

# ------------------------------------------------------------ delete releases
expect 204 - DELETE "/api/vms/ha1?force=true&remove_disk=true"
check "delete: reservation and disk of ha1 gone" nothing_left ha1
check "delete: the base image stays (shared)" bash -c "ls '$d/data/pool' | grep -q '^base-$sha_a'"

# ------------------------------------------------------------ free space, checked first
expect 409 no_space POST /api/vms/create '{"template":"haos","name":"huge","disk_gb":4000}'
check "no space: nothing left" nothing_left huge

# ------------------------------------------------------------ one image, two deploys at once
create '{"template":"twin","name":"tw1"}'
j1=$job
create '{"template":"twin","name":"tw2"}'
j2=$job
wait_job "$j1" succeeded failed cancelled
check "twin tw1 succeeded" jqe '.state == "succeeded"' "$d/out"
wait_job "$j2" succeeded failed cancelled
check "twin tw2 succeeded" jqe '.state == "succeeded"' "$d/out"
check "two deploys of one image: downloaded once" \
	[ "$(grep -c '^GET /a/twin.qcow2.xz' "$d/srv.log")" = 1 ]
check "…resuming (Range) what the killed job had downloaded of that digest" \
	grep -q '^GET /a/twin.qcow2.xz range=bytes=[1-9]' "$d/srv.log"
check "both overlays on the one base" bash -c \
	"[ \"\$(ls '$d/data/pool' | grep -c '^base-$sha_o')\" = 1 ] &&
	 qemu-img info -U --output=json '$d/data/pool/tw2.qcow2' | grep -q 'base-$sha_o'"
expect 204 - DELETE "/api/vms/tw1?remove_disk=true"
expect 204 - DELETE "/api/vms/tw2?remove_disk=true"
check "twin tw1 deleted: nothing left" nothing_left tw1
check "twin tw2 deleted: nothing left" nothing_left tw2

# ------------------------------------------------------------ trust on first use
n0=$(grep -c '^GET /a/haos.qcow2.xz' "$d/srv.log")
create '{"template":"unpinned","name":"t1","trust_unpinned":true}'
wait_job "$job" succeeded failed cancelled
check "unpinned t1 (trust_unpinned) succeeded, pinned false, digest computed" \
	jqe --arg s "$sha_a" '.state == "succeeded" and (.pinned | not) and .sha256 == $s' "$d/out"
check "TOFU: the digest is pinned locally" grep -q "^$sha_a http" "$d/data/pins/unpinned"
check "TOFU: it was downloaded" [ "$(grep -c '^GET /a/haos.qcow2.xz' "$d/srv.log")" = $((n0 + 1)) ]
create '{"template":"unpinned","name":"t2","trust_unpinned":true}'
wait_job "$job" succeeded failed cancelled
check "TOFU: the next deploy uses the local pin (no download)" \
	bash -c "jq -e '.state == \"succeeded\"' '$d/out' >/dev/null && [ \"\$(grep -c '^GET /a/haos.qcow2.xz' '$d/srv.log')\" = $((n0 + 1)) ]"
expect 204 - DELETE "/api/vms/t1?remove_disk=true"
expect 204 - DELETE "/api/vms/t2?remove_disk=true"
check "TOFU VMs deleted: nothing left" nothing_left t1

# ------------------------------------------------------------ cloud image + seed ISO
expect 400 missing_field POST /api/vms/create '{"template":"cloudy","name":"cl1"}'
create '{"template":"cloudy","name":"cl1","cloud_init":{"user":"bob","password":"secret-pw1"}}'
wait_job "$job" succeeded failed cancelled
check "cloud image cl1 succeeded" jqe '.state == "succeeded"' "$d/out"
check "SSE: cl1 went through seeding" bash -c \
	"grep '^data:' '$d/sse' | grep '\"vm\":\"cl1\"' | grep -q '\"phase\":\"seeding\"'"
check "seed ISO is a pool volume" bash -c "virsh -q vol-list guardian-vms | grep -q 'cl1-seed.iso'"
if command -v isoinfo >/dev/null; then
	isoinfo -J -i "$d/data/pool/cl1-seed.iso" -x /user-data >"$d/ud" 2>/dev/null
	check "seed: #cloud-config with the user bob" bash -c "head -1 '$d/ud' | grep -q '^#cloud-config' && grep -q '\"bob\"' '$d/ud'"
	isoinfo -d -i "$d/data/pool/cl1-seed.iso" >"$d/isod" 2>/dev/null
	check "seed: volume label cidata" grep -q 'Volume id: cidata' "$d/isod"
fi
check "cl1 has the seed as a cdrom" bash -c "virsh dumpxml cl1 | grep -q 'cl1-seed.iso'"
expect 204 - DELETE "/api/vms/cl1?remove_disk=true"
check "cl1 deleted: disk, seed and reservation gone" nothing_left cl1

# ------------------------------------------------------------ x86_64 (file://)
stop_vmmod
check "vmmod (x86_64) restarted" start_vmmod x86_64
create '{"template":"demo","name":"demo1","start":true}'
wait_job "$job" succeeded failed cancelled
check "demo1 job succeeded" jqe '.state == "succeeded"' "$d/out"
serial demo1
ip_demo=$(cut -d, -f2 "$d/resv/demo1" 2>/dev/null)
if wait_serial demo1 '^GUEST-READY x86_64'; then ok "demo1: GUEST-READY x86_64"; else
	bad "demo1: no GUEST-READY"; tail -20 "$d/demo1.serial"; fi
if wait_serial demo1 '^GUEST-IP '; then
	got=$(tr -d '\r' <"$d/demo1.serial" | sed -n 's/^GUEST-IP //p' | head -1)
	check "demo1: GUEST-IP $got is its reservation $ip_demo" [ "$got" = "$ip_demo" ]
else
	bad "demo1: no GUEST-IP"; tail -20 "$d/demo1.serial"
fi
check "audit log has the deploys" grep -q '"action":"deploy"' "$d/audit.log"

[ "$fails" = 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all deploy checks passed"

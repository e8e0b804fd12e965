#!/bin/bash
# 97-faults-deploy (issue 9.4): deploys under faults, one vmmod throughout
# (x86_64 test appliance from a local catalog; the pool directory is a
# tmpfs of this sandbox's mount namespace so that it can fill up):
#   b. dnsmasq absent: no dnsmasq runs, no lease file; a deploy with start
#      succeeds and the VM shows its reserved address; the reservations
#      directory removed: the deploy fails with a clear error, nothing left,
#      and works again once the directory is back;
#   c. disk full: the pool's filesystem fills (the tmpfs shrunk to what is
#      used) while a deploy downloads: the job fails naming ENOSPC, no
#      temp image, volume, domain or reservation left, the running VM and
#      its disk untouched; a pool too small up front is refused 409
#      no_space before any download; after space is freed a deploy works;
#   d. the storage pool removed underneath (pool-destroy; destroy +
#      undefine; its directory removed): the API keeps answering, the next
#      deploy re-creates what is missing and succeeds, existing disks kept;
#   e. vmmod SIGKILLed mid-deploy (blocked in "starting": virtlogd stopped,
#      so libvirt's domain start hangs, and it finishes after vmmod died): the
#      restarted vmmod marks the job failed and removes the half-made VM
#      (running domain, disk, reservation); a new deploy works.
# Every step checks that GET /api/vms answers and that vmmod did not die.
# Writes RELIABILITY rows to $REPORT_DIR/reliability.txt (tools/reliability.sh).
# Run it alone with:  sudo tests/sandbox.sh -- tests/e2e/97-faults-deploy.sh
set -u
top=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ -z "${GVM_SANDBOX:-}" ]; then
	exec "$top/tests/sandbox.sh" -- "$0" "$@"
fi
. "$top/tests/e2e/lib/deploy.sh" # vmmod, api, field, wait_job, create, rel, ...
timeout=${DEPLOY_TIMEOUT:-120}
need_tools curl jq virsh python3 qemu-img
need_vmmod
need_images aarch64 x86_64
me=97-faults-deploy

deploy_dir fdep
pool=$d/data/pool
vlog_stopped=""
cleanup() {
	[ -n "$vlog_stopped" ] && kill -CONT "$vlog_stopped" 2>/dev/null
	umount -l "$pool" 2>/dev/null
	deploy_cleanup
}
trap cleanup EXIT

# ------------------------------------------------------------ setup
# br0 without any DHCP server: dnsmasq is absent in this test
br0_up
mkdir -p "$pool"
mount -t tmpfs -o size=1200m,mode=0711 gvm-fault-pool "$pool" || { echo "FAIL: tmpfs on $pool"; exit 1; }
# "big": another image (the aarch64 appliance's disk, 34 MB unpacked, never
# started here) from a rate-limited server, so a deploy spends seconds
# downloading into the pool
cp "$appl/aarch64/disk.qcow2.xz" "$d/www/big.qcow2.xz"
httpd srv --rate 1500000 || { echo "FAIL: the image server did not start"; exit 1; }
jq --arg url "http://127.0.0.1:$port_srv/big.qcow2.xz" \
	--arg sha "$(cut -d' ' -f1 "$appl/aarch64/disk.qcow2.xz.sha256")" \
	--argjson size "$(stat -c %s "$d/www/big.qcow2.xz")" '
	.id = "big" | .name = "Big (test)" | .images = {x86_64: (.images.x86_64 |
	  .url = $url | .sha256 = $sha | .sha256_sidecar = false | .size = $size)}' \
	"$top/templates/demo.json" >"$d/templates/big.json"
vmmod_conf

# alive: vmmod still runs and GET /api/vms answers 200
alive() { kill -0 "$vmmod_pid" 2>/dev/null && [ "$(api GET /api/vms)" = 200 ]; }
deploy() { # deploy BODY: create and wait; the job in $d/out; true if it succeeded
	create "$1"
	[ -n "$job" ] && wait_job "$job" succeeded failed cancelled &&
		jqe '.state == "succeeded"' "$d/out"
}
# the first VM, deployed and running all along: its disk's digest and state
# are checked after every fault
keep_intact() {
	virsh domstate keep1 2>/dev/null | grep -qx running &&
		[ "$(qemu-img info -U --output=json "$pool/keep1.qcow2" 2>/dev/null | jq -r '."backing-filename"')" = "$keep_base" ] &&
		[ -f "$keep_base" ] && [ "$(sha256sum <"$keep_base")" = "$keep_sum" ]
}

check "vmmod up" start_vmmod

# ------------------------------------------------------------ b. dnsmasq absent
check "no dnsmasq runs in the sandbox, no lease file" \
	eval "! pgrep -x dnsmasq >/dev/null && [ ! -e '$d/leases' ]"
if deploy '{"template":"demo","name":"keep1","start":true}'; then
	ok "b: deploy with start succeeds without dnsmasq"
else
	bad "b: deploy without dnsmasq: $(head -c 300 "$d/out")"
fi
ip_keep=$(cut -d, -f2 "$d/resv/keep1" 2>/dev/null)
check "b: reservation file written for dnsmasq to read later ($ip_keep)" [ -n "$ip_keep" ]
check "b: GET /api/vms answers, keep1 running" eval "[ \"\$(api GET /api/vms)\" = 200 ] &&
	jq -e '.vms[] | select(.name == \"keep1\") | .state == \"running\"' '$d/out' >/dev/null"
check "b: GET /api/vms/keep1 shows the reserved address without a lease" \
	eval "[ \"\$(api GET /api/vms/keep1)\" = 200 ] && [ \"\$(field .ip)\" = '$ip_keep' ]"
keep_base=$(qemu-img info -U --output=json "$pool/keep1.qcow2" 2>/dev/null | jq -r '."backing-filename"')
keep_sum=$(sha256sum <"$keep_base" 2>/dev/null)
check "b: keep1's disk is an overlay on a base image in the pool" test -f "$keep_base"
rel fault "dnsmasq absent (not running, no lease file)" \
	"deploy with start succeeded; reservation file written; GET /api/vms and /api/vms/NAME answer 200 with the reserved address ($ip_keep)"

mv "$d/resv" "$d/resv.away"
deploy '{"template":"demo","name":"nores1"}'
err=$(field ".error // empty")
check "b: reservations directory missing: the job fails ($err)" \
	jqe '.state == "failed"' "$d/out"
check "b: …with an error that says reservation/address" \
	eval "grep -qiE 'reserv|address' <<<'$err'"
check "b: …and leaves nothing behind" nothing_left nores1
mv "$d/resv.away" "$d/resv"
check "b: directory back: the next deploy works" deploy '{"template":"demo","name":"nores2"}'
check "b: vmmod alive, keep1 intact" eval "alive && keep_intact"
rel fault "dnsmasq's reservations directory missing" \
	"the deploy failed: \"$err\"; nothing left; the next deploy after the directory came back succeeded"
api DELETE "/api/vms/nores2?remove_disk=true" >/dev/null

# ------------------------------------------------------------ c. disk full
used_kb() { df -k --output=used "$pool" | tail -1 | tr -d ' '; }
remount_pool() { mount -o "remount,size=$1" "$pool"; }
# too small up front: refused before any download
remount_pool 64m
n0=$(wc -l <"$d/srv.log" 2>/dev/null || echo 0)
got=$(api POST /api/vms/create '{"template":"big","name":"full0"}')
check "c: 64 MB pool filesystem: create -> 409 no_space ($(field .error))" \
	eval "[ '$got' = 409 ] && [ \"\$(field .code)\" = no_space ]"
check "c: …before any download" [ "$(wc -l <"$d/srv.log" 2>/dev/null || echo 0)" = "$n0" ]
rel fault "pool filesystem too small for the image + disk (64 MB tmpfs)" \
	"POST /api/vms/create refused at once: 409 no_space \"$(field .error)\"; nothing downloaded"
remount_pool 1200m

create '{"template":"big","name":"full1"}'
fjob=$job
end=$((SECONDS + 30))
until [ "$(api GET "/api/jobs/$fjob"; field '.phase')" = 200downloading ] || [ $SECONDS -ge $end ]; do sleep 0.1; done
check "c: deploy of big downloading" jqe '.phase == "downloading"' "$d/out"
# the filesystem fills: no more room than what is in use now (+256 kB).
# tmpfs refuses a size below what is in use (EINVAL), and the download keeps
# writing, so the image server is paused while the size is set (what is
# already in the socket buffers lands first) and the shrink is retried.
shrink_pool() {
	local i rc=1
	kill -STOP "$srv_pid"
	sleep 0.5
	for i in $(seq 20); do
		remount_pool "$(($(used_kb) + 256))k" 2>/dev/null && { rc=0; break; }
		sleep 0.2
	done
	kill -CONT "$srv_pid"
	return $rc
}
check "c: pool filesystem shrunk to what is used ($(used_kb) kB)" shrink_pool
wait_job "$fjob" failed succeeded cancelled
err=$(field ".error // empty")
check "c: disk full: the job failed ($err)" jqe '.state == "failed"' "$d/out"
check "c: …and its error names ENOSPC (disk full / No space left on device)" \
	eval "grep -qiE 'disk full|No space left on device' <<<'$err'"
check "c: nothing of full1 left (no temp image, volume, domain, reservation)" nothing_left full1
check "c: keep1 still running, its disk and base unchanged" keep_intact
check "c: vmmod alive, GET /api/vms 200" alive
rel fault "disk full during a deploy (pool filesystem fills while the image downloads)" \
	"the job failed: \"$err\"; no temp image, volume, domain or reservation left; the running VM and its disk unchanged; vmmod kept answering"
remount_pool 1200m
check "c: space freed: the same deploy now succeeds" deploy '{"template":"big","name":"full2"}'
api DELETE "/api/vms/full2?remove_disk=true" >/dev/null
check "c: full2 deleted: nothing left" nothing_left full2
rel fault "disk full, then space freed" "the next deploy of the same image succeeded, no manual step"

# ------------------------------------------------------------ d. pool removed
virsh -q pool-destroy guardian-vms >/dev/null
check "d: pool destroyed underneath: GET /api/vms still 200" alive
if deploy '{"template":"demo","name":"pd1"}'; then ok "d: next deploy succeeds"; else
	bad "d: deploy after pool-destroy: $(field .error)"; fi
check "d: the pool is active again" eval "virsh pool-info guardian-vms | grep -q 'State: *running'"
check "d: keep1 intact" keep_intact
rel fault "storage pool stopped underneath (virsh pool-destroy)" \
	"GET /api/vms kept answering; the next deploy $(field .state) (vmmod started the pool again); existing disks kept"

virsh -q pool-destroy guardian-vms >/dev/null
virsh -q pool-undefine guardian-vms >/dev/null
check "d: pool destroyed and undefined: GET /api/vms still 200" alive
if deploy '{"template":"demo","name":"pd2"}'; then ok "d: next deploy succeeds"; else
	bad "d: deploy after pool-undefine: $(field .error)"; fi
check "d: the pool is defined, active and autostarted again" \
	eval "virsh pool-info guardian-vms | grep -q 'State: *running' && virsh pool-info guardian-vms | grep -q 'Autostart: *yes'"
check "d: keep1 intact; pd1's disk is a pool volume again" \
	eval "keep_intact && virsh -q vol-list guardian-vms | grep -q '^ *pd1.qcow2'"
rel fault "storage pool destroyed and undefined underneath" \
	"GET /api/vms kept answering; the next deploy $(field .state) (vmmod defined and started the pool again); existing disks are pool volumes again"
for n in pd1 pd2; do api DELETE "/api/vms/$n?remove_disk=true" >/dev/null; done
check "d: pd1, pd2 deleted: nothing left" eval "nothing_left pd1 && nothing_left pd2"

# ------------------------------------------------------------ e. SIGKILL mid-deploy
read -r vlog <"/run/virtlogd.pid"
create '{"template":"demo","name":"half1","start":true}'
kjob=$job
# virtlogd stopped once the domain is defined: libvirt's start blocks on it
kill -STOP "$vlog" && vlog_stopped=$vlog
end=$((SECONDS + 60))
until [ "$(api GET "/api/jobs/$kjob"; field .phase)" = 200starting ] || [ $SECONDS -ge $end ]; do sleep 0.1; done
check "e: deploy half1 hangs in phase starting (virtlogd stopped)" jqe '.phase == "starting" and .state == "running"' "$d/out"
# (no virsh on half1 now: libvirt holds the domain's lock while it waits)
check "e: domain, disk and reservation of half1 exist" \
	eval "[ -e /etc/libvirt/qemu/half1.xml ] && [ -e '$pool/half1.qcow2' ] && [ -e '$d/resv/half1' ]"
stop_vmmod KILL
kill -CONT "$vlog" && vlog_stopped=""
# libvirt finishes the start vmmod asked for: a running half-made VM
for _ in $(seq 100); do virsh domstate half1 2>/dev/null | grep -qx running && break; sleep 0.1; done
echo "     after the kill: half1 is $(virsh domstate half1 2>/dev/null | head -1)"
check "e: vmmod restarted" start_vmmod
for _ in $(seq 200); do
	[ "$(api GET "/api/jobs/$kjob")" = 200 ] && jqe '.state == "failed"' "$d/out" &&
		nothing_left half1 >/dev/null && break
	sleep 0.1
done
api GET "/api/jobs/$kjob" >/dev/null
err=$(field ".error // empty")
check "e: after the restart the job is failed with a reason ($err)" \
	jqe '.state == "failed" and (.error | length > 0)' "$d/out"
check "e: the half-made VM is gone (running domain, disk, reservation)" nothing_left half1
check "e: keep1 intact" keep_intact
if deploy '{"template":"demo","name":"after1","start":true}'; then ok "e: a new deploy works"; else
	bad "e: new deploy after the restart: $(field .error)"; fi
check "e: GET /api/vms lists keep1 and after1" eval "[ \"\$(api GET /api/vms)\" = 200 ] &&
	jq -e '[.vms[].name] | index(\"keep1\") != null and index(\"after1\") != null' '$d/out' >/dev/null"
rel fault "vmmod SIGKILLed mid-deploy (domain defined, its start pending in libvirt), then restarted" \
	"the restarted vmmod marked the job failed (\"$err\") and removed the half-made VM (running domain, disk, reservation) by itself; the other VM intact; a new deploy succeeded"

# ------------------------------------------------------------ d. pool directory removed
# The pool's directory disappears (its filesystem unmounted, the directory
# removed) while the pool is active: keep1's QEMU holds its files open.
api DELETE "/api/vms/after1?force=true&remove_disk=true" >/dev/null
umount -l "$pool" && rmdir "$pool"
check "d: pool directory removed underneath" test ! -e "$pool"
check "d: GET /api/vms still 200, keep1 still running" \
	eval "alive && virsh domstate keep1 | grep -qx running"
if deploy '{"template":"demo","name":"pd3"}'; then ok "d: next deploy succeeds"; else
	bad "d: deploy after the pool directory was removed: $(field .error)"; fi
err=$(field ".error // empty")
check "d: the directory is back with pd3's disk in it" test -f "$pool/pd3.qcow2"
check "d: pd3's disk is a pool volume" eval "virsh -q vol-list guardian-vms | grep -q '^ *pd3.qcow2'"
if deploy '{"template":"demo","name":"pd4"}'; then ok "d: and the one after it too"; else
	bad "d: second deploy after the directory was removed: $(field .error)"; fi
rel fault "storage pool's directory removed underneath (pool still active)" \
	"GET /api/vms kept answering, the running VM kept running; the next deploy $(jq -r .state "$d/out")${err:+ (\"$err\")}"

[ "$fails" = 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "$me: all checks passed"

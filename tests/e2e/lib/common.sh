# shellcheck shell=bash
# What the e2e tests start with: sourced by lib/deploy.sh and
# lib/console.sh (40-deploy, 50-console, 52-console-tls, 61-browser-console,
# 91-profiles, 97-faults-deploy, 98-faults-console) and by 20-api,
# 60-browser, 81-usb-browser and 82-pci-browser.  Needs $top.  Sets
#   vmmod   the vmmod binary of $BUILD (build/<machine> by default)
#   fails   how many checks failed so far
# and defines the report lines (ok, bad, check, rel), the skips (need_tools,
# need_vmmod, need_browser), stop_vmmod / vmmod_log_if_failed for
# $vmmod_pid and $d/vmmod.log, define_vm (a small stopped domain) and
# wait_vmmod (a vmmod on TCP).

build=${BUILD:-build/$(uname -m)}
case $build in /*) ;; *) build=$top/$build ;; esac
vmmod=$build/vmmod
vmmod_pid=""

fails=0 rfails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
# check DESCRIPTION COMMAND...: ok when COMMAND succeeds, else FAIL
check() { if "${@:2}"; then ok "$1"; else bad "$1"; fi; }
# rel KIND FAULT WHAT-HAPPENED: a docs/RELIABILITY.md row for the test $me
# in $REPORT_DIR/reliability.txt (tools/reliability.sh); its result is FAIL
# when a check failed since the row before
rel() {
	local res=ok
	[ "$fails" = "$rfails" ] || res=FAIL
	rfails=$fails
	[ -z "${REPORT_DIR:-}" ] ||
		echo "RELIABILITY|$1|$2|$3|$me|$res" >>"$REPORT_DIR/reliability.txt"
}

# need_tools COMMAND...: skips the test (77) unless each COMMAND is found
need_tools() {
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null || { echo "SKIP: no $t"; exit 77; }
	done
}
# need_vmmod: fails the test unless vmmod is built
need_vmmod() { [ -x "$vmmod" ] || { echo "FAIL: no $vmmod (make first)"; exit 1; }; }
# need_browser: skips the test (77) without /usr/bin/chromium or
# tests/browser's playwright-core
need_browser() {
	[ -x /usr/bin/chromium ] || { echo "SKIP: no /usr/bin/chromium (apt-get install chromium)"; exit 77; }
	[ -d "$top/tests/browser/node_modules/playwright-core" ] ||
		{ echo "SKIP: no playwright-core (make browser-deps)"; exit 77; }
}

# define_vm NAME-XML [METADATA-XML] [MACHINE] [DEVICES-XML]: defines (in
# $d/dom.xml) a 64 MiB, one-vCPU x86_64 QEMU domain, machine q35 unless
# MACHINE, with DEVICES-XML and no balloon; NAME-XML is the <name> text,
# escaped, METADATA-XML goes after it (<title>, <metadata>)
define_vm() {
	cat >"$d/dom.xml" <<XML
<domain type='qemu'>
  <name>$1</name>
  ${2:-}
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='${3:-q35}'>hvm</type></os>
  <devices>${4:-}<memballoon model='none'/></devices>
</domain>
XML
	virsh -q define "$d/dom.xml" >/dev/null
}

# wait_vmmod PORT TOKEN-FILE: true once vmmod answers /healthz on
# 127.0.0.1:PORT and has written TOKEN-FILE (10 s at most)
wait_vmmod() {
	for _ in $(seq 100); do
		curl -sf "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && [ -s "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# stop_vmmod [SIGNAL]: sends vmmod SIGNAL (TERM) and reaps it; $vmmod_pid
# is empty afterwards
stop_vmmod() {
	[ -n "$vmmod_pid" ] || return 0
	kill -"${1:-TERM}" "$vmmod_pid" 2>/dev/null
	wait "$vmmod_pid" 2>/dev/null
	vmmod_pid=""
}
# vmmod_log_if_failed: the end of vmmod's log once a check failed
vmmod_log_if_failed() {
	[ "$fails" != 0 ] && [ -f "$d/vmmod.log" ] || return 0
	echo "--- vmmod log (last 40 lines)"
	tail -40 "$d/vmmod.log"
}

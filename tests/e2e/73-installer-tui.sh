#!/bin/bash
# 73-installer-tui: guardian-vm-setup's guided screens driven end to end
# through tmux (send-keys / capture-pane) on an 80x24 pane, against a copy
# of the Guardian-shaped fake root (tests/data/installer/guardian-root) with
# a staged proc/mounts (SD card root, an NVMe SSD, the vfat boot partition,
# a read-only disk):
#   1. --dry-run --root: every screen in order, Esc back from storage,
#      storage choice, a resize to 100x30 (and 50x12: "too small") and back,
#      the DHCP pool consent (Esc closes it, "No" refuses -> cannot install,
#      back and asked again, "y" agrees), the dry-run progress, the Home
#      Assistant screen: Deploy now asks for trust-on-first-use consent (the
#      image, its URL from the shipped template, no published checksum;
#      Esc closes it, "No" deploys nothing, a resize redraws it), "y" runs
#      the deploy with a progress bar -- SIMULATED in the dry run (the
#      phases vmmod's job reports, made-up percents; no vmmod, nothing
#      downloaded: 75-installer-deploy covers the real job) -- ending in
#      [ ok ]; the summary, Exit -> status 0, session gone, root unchanged;
#   2. Ctrl-C: status 130, the terminal restored (alternate screen off) and
#      the epilogue printed, the root unchanged; the consent refused and q:
#      status 3;
#   3. a monochrome terminal (TERM=vt100): readable, reverse video for the
#      focused button and no colour; q -> status 6;
#   4. --root with the tests' answers (consent given): the screens apply the
#      plan through steps.c; the staged files equal the unit tests' goldens
#      and --uninstall restores the root;
#   5. a step that fails (a file where /etc/vmmod should be): [FAIL] on the
#      progress screen, the summary says so, status 1, --uninstall restores.
# Each capture is kept in build/tui-captures/NN-name.txt.  tmux runs on a
# private socket in the run's temp directory; every session made here is
# killed by name.  Runs inside tests/sandbox.sh, or by hand: tests/e2e/73-installer-tui.sh
set -eu
top=${TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$top"
BUILD=${BUILD:-build/$(uname -m)}
setup=$top/$BUILD/guardian-vm-setup
data=$top/tests/data/installer
[ -x "$setup" ] || { echo "FAIL: $setup not built"; exit 1; }
for t in tmux jq; do command -v $t >/dev/null || { echo "SKIP: no $t"; exit 77; }; done
unset HOOKPROBE_VM_SUPPORT GVM_STORAGE_DIR GVM_BRIDGE GVM_BRIDGE_ADDR GVM_DHCP_RANGE \
	GVM_SHRINK_POOL GVM_CONSOLE_PORT GVM_BLOCK_PORTS GVM_DEPLOY_HA GVM_TRUST_UNPINNED GVM_VM_BLOCK \
	TMUX

# the blueprint, its templates and the web assets come from the tree
export GVM_SETUP_DATADIR=$top
tmp=$(mktemp -d /tmp/gvm-tui.XXXXXX)
caps=$top/build/tui-captures
rm -rf "$caps"
mkdir -p "$caps"
# a socket in this run's own directory: -L gvm-tui-$$ could meet a stale
# socket of an earlier run, since PIDs repeat in the sandbox's namespace
sock=$tmp/tmux.sock
sess=""
T() { tmux -S "$sock" -f /dev/null "$@"; }
end_session() {
	[ -n "$sess" ] || return 0
	T kill-session -t "$sess" 2>/dev/null || true
	sess=""
}
trap 'end_session; rm -rf "$tmp"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }

cp -a "$data/guardian-root" "$tmp/root"
cat >"$tmp/root/proc/mounts" <<'EOF'
/dev/mmcblk0p2 / ext4 rw,noatime 0 0
/dev/mmcblk0p1 /boot/firmware vfat rw,relatime 0 0
proc /proc proc rw,relatime 0 0
tmpfs /run tmpfs rw,nosuid,nodev 0 0
/dev/nvme0n1p1 /mnt/ssd ext4 rw,relatime 0 0
/dev/sda1 /srv ext4 ro,relatime 0 0
EOF
cp -a "$tmp/root" "$tmp/orig"

# start NAME COMMAND: a detached 80x24 session; the shell records the
# program's status and waits, so the screen after exit can be read too.
start() {
	sess=$1
	T new-session -d -s "$sess" -x 80 -y 24 \
		"cd '$tmp' && $2; echo \$? >'$tmp/$sess.rc'; read -r _"
}
keys() { T send-keys -t "$sess" "$@"; }
n=0
# shot NAME TEXT...: waits (up to ~5 s) until every TEXT is on the screen
# and keeps the capture as NN-NAME.txt.
shot() {
	local name=$1 f i want ok
	shift
	n=$((n + 1))
	f=$(printf '%s/%02d-%s.txt' "$caps" "$n" "$name")
	for i in $(seq 50); do
		T capture-pane -p -t "$sess" >"$f" 2>/dev/null || true
		ok=1
		for want in "$@"; do
			grep -qF -- "$want" "$f" || { ok=0; break; }
		done
		[ $ok = 1 ] && return 0
		sleep 0.1
	done
	bad "$name: no '$want' on the screen (capture: $f)"
	cat "$f"
	return 0
}
# gone NAME TEXT: waits until TEXT has left the screen.
gone() {
	local i
	for i in $(seq 50); do
		T capture-pane -p -t "$sess" | grep -qF -- "$2" || return 0
		sleep 0.1
	done
	bad "$1: '$2' is still on the screen"
}
# status: waits for the program's exit status.
status() {
	local i
	for i in $(seq 50); do
		[ -s "$tmp/$sess.rc" ] && { cat "$tmp/$sess.rc"; return 0; }
		sleep 0.1
	done
	echo none
}
size() { T display -p -t "$sess" '#{window_width}x#{window_height}'; }

# ---- 1. dry run through every screen ----------------------------------
start dry "'$setup' --dry-run --root '$tmp/root'"
shot welcome "1/7 Welcome" "DRY RUN (--dry-run): you can walk through every screen" "> Next <" "[ Quit ]"
[ "$(T display -p -t "$sess" '#{alternate_on}')" = 1 ] || bad "the screens do not use the alternate screen"
keys Enter
shot host "2/7 Host check" "Architecture  $(uname -m)" "7936 MiB (Guardian needs 6 GB)" \
	"Guardian      installed (tier guardian)" "RAM budget" "Guardian core and containers" \
	"Home Assistant VM                  2048 MiB  32 GB    fits" "Left for more VMs                  1792 MiB" \
	"RAM for VMs: 5888 MiB of 7936 MiB" "This host can run VMs." "KVM  "
keys Enter
shot storage "3/7 Storage" ">> /mnt/ssd" "nvme0n1p1      SSD" "recommended" "mmcblk0p2      SD card" \
	"VM disks go to: /mnt/ssd/guardian-vms"
cap=$caps/$(printf %02d $n)-storage.txt
grep -q "boot/firmware\|/srv" "$cap" && bad "storage lists the vfat or read-only mount"
keys Down
shot storage-sd ">> /          " "VM disks go to: /var/lib/guardian-vms/pool" "warning: this is the SD card"
keys Escape
shot esc-back-host "2/7 Host check" "This host can run VMs."
keys Enter
shot storage-kept "3/7 Storage" ">> /          "
keys Up
shot storage-ssd ">> /mnt/ssd" "VM disks go to: /mnt/ssd/guardian-vms"

T resize-window -t "$sess" -x 100 -y 30
shot resize-100x30 "3/7 Storage" ">> /mnt/ssd"
[ "$(size)" = 100x30 ] || bad "resize: window is $(size)"
[ "$(head -1 "$caps/$(printf %02d $n)-resize-100x30.txt" | sed 's/ *$//' | wc -c)" -gt 90 ] ||
	bad "resize: the title bar was not laid out for 100 columns"
T resize-window -t "$sess" -x 50 -y 12
shot resize-50x12 "Terminal too small (50x12)" "q quits"
T resize-window -t "$sess" -x 80 -y 24
shot resize-80x24 "3/7 Storage" ">> /mnt/ssd" "> Next <"
[ "$(size)" = 80x24 ] || bad "resize back: window is $(size)"
awk 'length > 80 { exit 1 }' "$caps/$(printf %02d $n)-resize-80x24.txt" || bad "resize back: lines wider than 80"

keys Enter
shot plan "4/7 Plan" "This plan gives VMs the top of the DHCP pool, which needs your consent" \
	"DHCP pool: 192.168.4.2-192.168.4.30, shrunk to 192.168.4.2-192.168.4.23" \
	"storage /mnt/ssd/guardian-vms:" "> Continue <" "lines 1-19 of"
keys End
shot plan-end "step 10/10 services" "Guardian's web UI yourself"
grep -q "not implemented" "$caps/$(printf %02d $n)-plan-end.txt" && bad "plan-end: a change is not implemented"
keys PageUp
shot plan-scrolled "step 8/10 firewall"
keys Enter
shot consent "Consent needed: the DHCP pool" "Give VMs the top of the DHCP pool?" \
	"192.168.4.2-192.168.4.30 becomes 192.168.4.2-192.168.4.23" "> Yes, shrink the pool <" "[ No ]"
keys Escape
gone consent-esc "Consent needed"
shot consent-closed "4/7 Plan" "> Continue <"
keys Enter
shot consent-again "Consent needed: the DHCP pool"
keys Right
shot consent-no "> No <"
keys Enter
shot refused "cannot install (exit 3)" "GVM_SHRINK_POOL=no" "> Back <"
grep -q "Continue" "$caps/$(printf %02d $n)-refused.txt" && bad "refused: Continue still offered"
keys Escape
shot refused-back "3/7 Storage"
keys Enter
shot plan-asks-again "4/7 Plan" "needs your consent"
keys Enter
shot consent-yes "Consent needed: the DHCP pool"
keys y
shot progress "5/7 Progress" "DRY RUN: nothing was applied" "[skip] 1/10 packages" \
	"[skip] 5/10 dnsmasq" "[skip] 10/10 services" "without --dry-run to install" "> Next <"
keys Escape
shot progress-esc "4/7 Plan"
keys Enter
shot progress-again "5/7 Progress"
keys Enter
url=$(jq -r ".images.\"$(uname -m)\".url" "$top/templates/homeassistant.json")
ver=$(jq -r ".images.\"$(uname -m)\".version" "$top/templates/homeassistant.json")
shot deploy "6/7 Home Assistant" "Deploy Home Assistant now?" "Home Assistant OS $ver for $(uname -m)" \
	"disk in /mnt/ssd/guardian-vms" "192.168.4.24-192.168.4.30" "DRY RUN: Deploy now" "SIMULATED" \
	"(not pinned: you are asked first)" "[ Deploy now ]" "> Skip <"
keys Left
shot deploy-focus "> Deploy now <"
keys Enter
shot tofu "Consent needed: an image without a published checksum" \
	"vmmod would download Home Assistant OS $ver for $(uname -m) from:" "${url:0:60}" \
	"No SHA-256 checksum is published for it" "trust on first use" \
	"Trust this download and deploy?  y: yes  n: no  Esc: back" "[ Yes, trust and deploy ]" "> No <"
awk 'length > 80 { exit 1 }' "$caps/$(printf %02d $n)-tofu.txt" || bad "tofu: lines wider than 80"
# the whole URL is on the screen, wrapped inside the box
tr -d ' |\n' <"$caps/$(printf %02d $n)-tofu.txt" | grep -qF "$url" || bad "tofu: the image URL is not shown whole"
# laid out again at each size: the title bar's right end is at the edge
T resize-window -t "$sess" -x 100 -y 30
shot tofu-100x30 "$(printf '%-83s' ' Guardian VMs setup - 6/7 Home Assistant')DRY RUN, --root" \
	"Consent needed: an image without a published checksum" "> No <"
T resize-window -t "$sess" -x 80 -y 24
shot tofu-80x24 "$(printf '%-63s' ' Guardian VMs setup - 6/7 Home Assistant')DRY RUN, --root" \
	"Consent needed: an image without a published checksum" "> No <"
keys Escape
gone tofu-esc "Consent needed: an image"
shot tofu-closed "Deploy Home Assistant now?" "> Deploy now <"
keys Enter
shot tofu-again "Consent needed: an image without a published checksum" "> No <"
keys Enter
shot tofu-no "Not deployed: no consent." "> Deploy now <"
grep -q "Deploying" "$caps/$(printf %02d $n)-tofu-no.txt" && bad "tofu-no: a deploy started without consent"
keys Enter
shot tofu-yes-ask "Consent needed: an image without a published checksum"
keys Right
shot tofu-yes-focus "> Yes, trust and deploy <"
keys Enter
shot deploy-progress "[ .. ] Deploying Home Assistant (simulated) ..." "downloading (simulated)" "%"
grep -qE '\[#+\.+\] +[0-9]+% downloading' "$caps/$(printf %02d $n)-deploy-progress.txt" ||
	bad "deploy-progress: no progress bar"
shot deploy-done "[ ok ] Home Assistant deployed (simulated: nothing was made)" \
	"[##############################] 100% deployed (simulated)" "> Next <"
keys Enter
shot summary "7/7 Summary" "Dry run: nothing was changed." "https://192.168.4.1:8080" \
	"Home Assistant: deployed (simulated)" \
	"https://192.168.4.1:8091" "guardian-vm-setup --uninstall --root $tmp/root" \
	"VM addresses:  192.168.4.24-192.168.4.30" "> Exit <"
keys Enter
shot dry-exit "guardian-vm-setup: dry run: nothing was changed"
rc=$(status)
[ "$rc" = 0 ] || bad "dry run: exit status $rc, not 0"
[ "$(T display -p -t "$sess" '#{alternate_on}')" = 0 ] || bad "dry run: the terminal was not restored"
end_session
diff -r --no-dereference "$tmp/orig" "$tmp/root" || bad "the dry run wrote under the root"

# ---- 2. Ctrl-C ------------------------------------------------------------
start intr "'$setup' --dry-run --root '$tmp/root'"
shot intr-welcome "1/7 Welcome"
keys Enter
shot intr-host "2/7 Host check"
keys C-c
shot intr-restored "guardian-vm-setup: interrupted: nothing was changed"
rc=$(status)
[ "$rc" = 130 ] || bad "Ctrl-C: exit status $rc, not 130"
[ "$(T display -p -t "$sess" '#{alternate_on}')" = 0 ] || bad "Ctrl-C: the terminal was not restored"
grep -q "Guardian VMs setup -" "$caps/$(printf %02d $n)-intr-restored.txt" && bad "Ctrl-C: the screens are still shown"
end_session
diff -r --no-dereference "$tmp/orig" "$tmp/root" || bad "Ctrl-C wrote under the root"

# refusing the pool consent and quitting there: exit 3, like GVM_SHRINK_POOL=no
start refuse "'$setup' --dry-run --root '$tmp/root'"
shot refuse-welcome "1/7 Welcome"
keys Enter
shot refuse-host "2/7 Host check"
keys Enter
shot refuse-storage "3/7 Storage"
keys Enter
shot refuse-plan "4/7 Plan"
keys Enter
shot refuse-consent "Consent needed: the DHCP pool"
keys n
shot refuse-refused "Cannot install: no room for VM addresses outside the DHCP pool"
keys q
shot refuse-quit "left before installing: nothing was changed"
rc=$(status)
[ "$rc" = 3 ] || bad "refused consent, q: exit status $rc, not 3"
end_session

# ---- 3. monochrome ----------------------------------------------------------
start mono "TERM=vt100 '$setup' --dry-run --root '$tmp/root'"
shot mono-welcome "1/7 Welcome" "> Next <"
T capture-pane -e -p -t "$sess" >"$caps/$(printf %02d $n)-mono-welcome.ansi"
grep -q $'\e\\[[0-9;]*7[;m]' "$caps/$(printf %02d $n)-mono-welcome.ansi" || bad "mono: no reverse video"
grep -qE $'\e\\[([0-9;]*;)?(3[0-7]|4[0-7]|38;|48;)' "$caps/$(printf %02d $n)-mono-welcome.ansi" &&
	bad "mono: colours on a terminal without them"
keys Enter
shot mono-host "2/7 Host check" "This host can run VMs."
keys q
shot mono-quit "left before installing: nothing was changed"
rc=$(status)
[ "$rc" = 6 ] || bad "q: exit status $rc, not 6"
end_session

# ---- 4. --root: the screens apply the plan ----------------------------------
start apply "'$setup' --root '$tmp/root' --answers '$data/guardian.answers'"
shot apply-welcome "1/7 Welcome" "--root $tmp/root: files are staged"
keys Enter
shot apply-host "2/7 Host check"
keys Enter
shot apply-storage "3/7 Storage" "VM disks go to: /srv/guardian-vms"
keys Enter
shot apply-plan "4/7 Plan" "> Install <" "storage /srv/guardian-vms"
grep -q "needs your consent" "$caps/$(printf %02d $n)-apply-plan.txt" && bad "apply: consent asked though answered"
keys Enter
shot apply-progress "5/7 Progress" "[ ok ] 7/10 vmmod" "[ ok ] 9/10 guardian" "[ ok ] 10/10 services" \
	"Done: no step failed." "> Next <"
keys Home
shot apply-progress-top "Installing under $tmp/root" "[ ok ] 1/10 packages" "packages skipped (--root)"
keys Escape
shot apply-no-back "going back cannot undo it"
keys Enter
shot apply-deploy "6/7 Home Assistant" "disk in /srv/guardian-vms" "> Skip <"
keys Enter
shot apply-summary "VM support is installed under $tmp/root." "guardian-vm-setup --uninstall --root $tmp/root"
keys Enter
shot apply-exit "guardian-vm-setup: installed"
rc=$(status)
[ "$rc" = 0 ] || bad "apply: exit status $rc, not 0"
log=$(sed -n 's/^log: //p' "$caps/$(printf %02d $n)-apply-exit.txt" | head -1)
[ -n "$log" ] && rm -f "$log"
end_session
for f in /etc/dnsmasq.d/guardian-vms.conf /etc/dnsmasq.d/guardian.conf /etc/vmmod/vmmod.conf \
    /etc/guardian-vms/setup.conf /etc/default/libvirt-guests \
    /etc/systemd/system/libvirtd.service.d/guardian-vms.conf; do
	flat=$(echo "${f#/}" | tr / _)
	cmp -s "$tmp/root$f" "$data/guardian.$flat" ||
		{ diff -u "$data/guardian.$flat" "$tmp/root$f" | head -20; bad "apply: $f differs from guardian.$flat"; }
done
rc=0
"$setup" --uninstall --root "$tmp/root" >"$tmp/uninstall" 2>&1 || rc=$?
[ $rc = 0 ] || { cat "$tmp/uninstall"; bad "uninstall exit $rc"; }
diff -r --no-dereference "$tmp/orig" "$tmp/root" || bad "uninstall after the screens did not restore the root"

# ---- 5. a failing step: shown, rolled back, exit 1 ---------------------------
cp -a "$tmp/orig" "$tmp/broken"
touch "$tmp/broken/etc/vmmod" # a file where vmmod.conf's directory goes
cp -a "$tmp/broken" "$tmp/broken.orig"
start fail "'$setup' --root '$tmp/broken' --answers '$data/guardian.answers'"
shot fail-welcome "1/7 Welcome"
keys Enter
shot fail-host "2/7 Host check"
keys Enter
shot fail-storage "3/7 Storage"
keys Enter
shot fail-plan "> Install <"
keys Enter
shot fail-progress "[FAIL] 7/10 vmmod" "[    ] 8/10 firewall" "FAILED: step vmmod failed:" "its changes were undone"
keys Enter
shot fail-summary "7/7 Summary" "The install failed; the failed step was undone." \
	"guardian-vm-setup --uninstall --root $tmp/broken"
keys Enter
shot fail-exit "guardian-vm-setup: failed: step vmmod failed"
rc=$(status)
[ "$rc" = 1 ] || bad "failed step: exit status $rc, not 1"
log=$(sed -n 's/^log: //p' "$caps/$(printf %02d $n)-fail-exit.txt" | head -1)
[ -n "$log" ] && rm -f "$log"
end_session
[ ! -e "$tmp/broken/etc/vmmod/vmmod.conf" ] || bad "failed step: vmmod.conf written"
"$setup" --uninstall --root "$tmp/broken" >"$tmp/uninstall" 2>&1 || { cat "$tmp/uninstall"; bad "uninstall after the failure"; }
diff -r --no-dereference "$tmp/broken.orig" "$tmp/broken" || bad "uninstall after the failure did not restore the root"

T has-session 2>/dev/null && bad "a tmux session is left on $sock"
[ $fail = 0 ] && echo "PASS: every screen at 80x24 (resize, Esc, consents, simulated deploy progress), dry run unchanged, Ctrl-C, mono, --root apply = goldens, failed step"
exit $fail

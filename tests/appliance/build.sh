#!/bin/bash
# Builds the Guardian VMs test appliances from Debian packages: small UEFI
# disk images shaped like Home Assistant OS (GPT + one FAT EFI System
# Partition holding a standalone GRUB, a Debian kernel and a busybox
# initramfs), shipped as disk.qcow2.xz + disk.qcow2.xz.sha256.  For x86_64
# also a Secure Boot variant, disk-sb.qcow2.xz: the same kernel, initramfs
# and serial protocol, booted by Debian's signed shim and GRUB.
#
# usage: tests/appliance/build.sh [--out DIR] [--force] ARCH...
#   ARCH     x86_64 (OVMF on q35, cloud kernel) | aarch64 (AAVMF on virt)
#   --out    output and cache directory (default: build/appliance)
#   --force  rebuild even when the inputs did not change
#
# Output per ARCH, under DIR/ARCH/:
#   disk.qcow2.xz, disk.qcow2.xz.sha256   what a deploy consumes (like HAOS)
#   disk.qcow2                           the same, unpacked
#   vmlinuz, initrd.img, cmdline         direct-kernel-boot variant
#   BOOT*.EFI, grub.cfg                  the ESP's GRUB and its embedded config
# and, for x86_64 only, the Secure Boot variant (boots with OVMF's secboot
# build and Microsoft's keys, OVMF_VARS_4M.ms.fd):
#   disk-sb.qcow2.xz, disk-sb.qcow2.xz.sha256, disk-sb.qcow2
#       ESP: \EFI\BOOT\BOOTX64.EFI = shimx64.efi.signed (shim-signed,
#       Microsoft-signed), \EFI\BOOT\grubx64.efi = grubx64.efi.signed
#       (grub-efi-amd64-signed, Debian-signed; its built-in prefix is
#       /EFI/debian, so it reads \EFI\debian\grub.cfg), the Debian-signed
#       cloud kernel and the same initrd.img
#   grub-sb.cfg                          that \EFI\debian\grub.cfg
#
# Host safety: no kernel or GRUB package is ever installed on the host.  They
# are fetched with `apt-get download` into DIR/debs and unpacked with
# `dpkg-deb -x` under DIR/root; grub-mkstandalone runs from the unpacked
# grub-common.  No loop devices, no mounts, no root needed.
# Needs: apt-get, dpkg-deb, depmod/modprobe (kmod), cpio, gzip, mtools,
# dosfstools (mkfs.fat), fdisk (sfdisk), qemu-utils (qemu-img), xz-utils;
# sbsigntool (sbverify) is optional: with it, the signers are printed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=$top/build/appliance
force=0
arches=()

die() { echo "appliance: error: $*" >&2; exit 1; }
say() { echo "appliance: $*"; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
	case "$1" in
	--out) [ $# -ge 2 ] || die "--out needs a directory"; out=$2; shift ;;
	--out=*) out=${1#--out=} ;;
	--force) force=1 ;;
	-h | --help) usage; exit 0 ;;
	x86_64 | aarch64) arches+=("$1") ;;
	*) die "unknown argument '$1' (ARCH is x86_64 or aarch64; see --help)" ;;
	esac
	shift
done
[ ${#arches[@]} -gt 0 ] || die "no ARCH given (x86_64 | aarch64; see --help)"

for tool in apt-get apt-cache dpkg-deb dpkg depmod modprobe cpio gzip mformat mmd mcopy \
	mkfs.fat sfdisk qemu-img xz sha256sum flock; do
	command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (see packages.txt, section 'test appliances')"
done

mkdir -p "$out"
out=$(cd "$out" && pwd)
debs=$out/debs
roots=$out/root
mkdir -p "$debs" "$roots"

# One build at a time per output directory (make appliances vs. a test).
exec 9>"$out/.lock"
flock 9

host_debarch=$(dpkg --print-architecture)

# Package resolution.  apt-cache is slow here (seconds per call), so all
# names are resolved with two apt-cache calls and remembered in
# $out/.resolved until apt's lists change.
declare -A DEB=()   # "pkg:arch" -> exact .deb file name apt-get download writes
declare -A KPKG=()  # kernel metapackage "linux-image-arm64:arm64" -> "linux-image-6.1.0-56-arm64"

arch_meta() { # ARCH -> debian arch and kernel metapackage
	case "$1" in
	x86_64) echo "amd64 linux-image-cloud-amd64:amd64" ;;
	aarch64) echo "arm64 linux-image-arm64:arm64" ;;
	esac
}

# sb_specs ARCH: the signed boot chain of ARCH's Secure Boot variant, if any
sb_specs() {
	case "$1" in
	x86_64) echo "shim-signed:amd64 grub-efi-amd64-signed:amd64" ;;
	esac
}

resolve() {
	local cache=$out/.resolved a debarch meta metas=() specs=() line
	if [ -s "$cache" ] && [ -z "$(find /var/lib/apt/lists /var/lib/dpkg/arch -newer "$cache" 2>/dev/null | head -n1)" ]; then
		while read -r kind key val; do
			case "$kind" in deb) DEB[$key]=$val ;; kernel) KPKG[$key]=$val ;; esac
		done <"$cache"
	fi
	for a in "${arches[@]}"; do
		read -r debarch meta <<<"$(arch_meta "$a")"
		[ -n "${KPKG[$meta]:-}" ] || metas+=("$meta")
	done
	if [ ${#metas[@]} -gt 0 ]; then
		say "resolving ${metas[*]} (apt-cache depends)"
		local cur=""
		while IFS= read -r line; do
			case "$line" in
			" "*"Depends: linux-image-"[0-9]*)
				[ -n "$cur" ] && [ -z "${KPKG[$cur]:-}" ] && {
					line=${line#*Depends: }
					KPKG[$cur]=${line%%:*}
				} ;;
			" "*) ;;
			*:*) cur=$line ;;
			*) cur=$line:$host_debarch ;; # apt omits the native architecture
			esac
		done < <(apt-cache depends "${metas[@]}" 2>/dev/null)
	fi
	for a in "${arches[@]}"; do
		read -r debarch meta <<<"$(arch_meta "$a")"
		[ -n "${KPKG[$meta]:-}" ] ||
			die "cannot resolve the kernel behind $meta (apt-cache depends $meta; is 'apt-get update' done? for arm64: 'dpkg --add-architecture arm64')"
		for spec in "${KPKG[$meta]}:$debarch" "grub-efi-$debarch-bin:$debarch" "busybox-static:$debarch" \
			"grub-common:$host_debarch" "libefiboot1:$host_debarch" "libefivar1:$host_debarch" \
			$(sb_specs "$a"); do
			[ -n "${DEB[$spec]:-}" ] || specs+=("$spec")
		done
	done
	if [ ${#specs[@]} -gt 0 ]; then
		say "resolving package versions (apt-cache show)"
		local name="" ver="" arch=""
		while IFS= read -r line; do
			case "$line" in
			"Package: "*) name=${line#Package: } ;;
			"Version: "*) ver=${line#Version: } ;;
			"Architecture: "*) arch=${line#Architecture: } ;;
			"")
				if [ -n "$name" ] && [ -z "${DEB[$name:$arch]:-}" ]; then
					DEB[$name:$arch]=${name}_${ver//:/%3a}_${arch}.deb
				fi
				name="" ver="" arch="" ;;
			esac
		done < <(apt-cache show --no-all-versions "${specs[@]}" 2>/dev/null; echo)
		for spec in "${specs[@]}"; do
			[ -n "${DEB[$spec]:-}" ] ||
				die "package $spec is unknown to apt (is 'apt-get update' done? for :arm64, is 'dpkg --add-architecture arm64' done?)"
		done
	fi
	{
		for key in "${!KPKG[@]}"; do echo "kernel $key ${KPKG[$key]}"; done
		for key in "${!DEB[@]}"; do echo "deb $key ${DEB[$key]}"; done
	} | LC_ALL=C sort >"$cache.tmp"
	mv "$cache.tmp" "$cache"
}

# fetch SPEC: download (if not cached) and unpack; prints the unpacked root.
fetch() {
	local spec=$1 file=${DEB[$1]} dl
	if [ ! -s "$debs/$file" ]; then
		say "downloading $spec ($file)" >&2
		dl=$(mktemp -d "$debs/.dl.XXXXXX")
		# apt drops privileges to _apt for downloads; let it write there.
		if [ "$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$dl"; fi
		if ! (cd "$dl" && apt-get download -q "$spec" >&2); then
			rm -rf "$dl"
			die "apt-get download $spec failed (no network to the Debian mirror? run 'make appliances' where apt works)"
		fi
		mv "$dl/$file" "$debs/$file" 2>/dev/null || { rm -rf "$dl"; die "apt-get download $spec did not produce $file"; }
		rm -rf "$dl"
	fi
	local root=$roots/${file%.deb}
	if [ ! -e "$root/.unpacked" ]; then
		say "unpacking $file" >&2
		rm -rf "$root"
		mkdir -p "$root"
		dpkg-deb -x "$debs/$file" "$root"
		touch "$root/.unpacked"
	fi
	echo "$root"
}

# grub-mkstandalone from an unpacked grub-common (plus its libefi* libraries).
grub_tools() {
	local gc lib libroot
	gc=$(fetch "grub-common:$host_debarch")
	for lib in libefiboot1 libefivar1; do
		libroot=$(fetch "$lib:$host_debarch")
		cp -a "$libroot/usr/lib/." "$gc/usr/lib/"
	done
	local missing
	missing=$(LD_LIBRARY_PATH=$(echo "$gc"/usr/lib/*-linux-gnu) ldd "$gc/usr/bin/grub-mkstandalone" | grep 'not found' || true)
	[ -z "$missing" ] || die "grub-mkstandalone lacks shared libraries: $missing"
	echo "$gc"
}

# pe_signed FILE: true when the PE/COFF image FILE has a certificate table
# (an Authenticode signature), read from its optional header's data
# directory entry 4 (PE32+ only: EFI binaries and kernels of x86_64, arm64)
pe_signed() {
	local pe magic size
	pe=$(od -An -tu4 -j 60 -N 4 "$1" | tr -d ' ')
	[ "$(od -An -c -j "$pe" -N 4 "$1" | tr -d ' ')" = 'PE\0\0' ] || return 1
	magic=$(od -An -tx2 -j $((pe + 24)) -N 2 "$1" | tr -d ' ')
	[ "$magic" = 020b ] || return 1
	size=$(od -An -tu4 -j $((pe + 24 + 112 + 4 * 8 + 4)) -N 4 "$1" | tr -d ' ')
	[ "${size:-0}" -gt 0 ]
}

# grub_cfg WHICH KFILE CMDLINE: the grub.cfg that boots /KFILE with
# /initrd.img from the partition holding it (WHICH names the copy)
grub_cfg() {
	cat <<-EOF
		# Guardian VMs test appliance ($1)
		set timeout=0
		search --no-floppy --file --set=root /$2
		echo "Loading /$2 ..."
		linux /$2 $3
		initrd /initrd.img
		boot
	EOF
}

# mkdisk WORK NAME UUIDTAIL LEVEL SRC=/DST...: WORK/NAME.qcow2 and
# NAME.qcow2.xz (xz -LEVEL), a GPT disk with one FAT ESP (label APPLIANCE)
# holding the files SRC at the paths DST (directories made as needed);
# UUIDTAIL ends the ESP's partition UUID.  Messages name build_arch's $arch.
mkdisk() {
	local work=$1 name=$2 tail=$3 level=$4 bytes=0 esp_mib f dir
	shift 4
	for f in "$@"; do bytes=$((bytes + $(stat -c %s "${f%%=*}"))); done
	esp_mib=$((bytes * 11 / 10 / 1048576 + 4))
	say "[$arch] $name: ESP ${esp_mib} MiB"
	rm -f "$work/esp.img" "$work/disk.raw"
	mkfs.fat -C -F 16 -n APPLIANCE -i 47564d53 "$work/esp.img" $((esp_mib * 1024)) >/dev/null ||
		mkfs.fat -C -F 32 -n APPLIANCE -i 47564d53 "$work/esp.img" $((esp_mib * 1024)) >/dev/null
	export MTOOLS_SKIP_CHECK=1
	local made=" " part path
	for f in "$@"; do
		path="" dir=${f#*=}
		for part in $(echo "${dir%/*}" | tr / ' '); do
			path+=/$part
			case "$made" in *" $path "*) continue ;; esac
			mmd -i "$work/esp.img" "::$path"
			made+="$path "
		done
		mcopy -i "$work/esp.img" "${f%%=*}" "::${f#*=}"
	done

	# GPT disk: 1 MiB, the ESP, 1 MiB for the backup GPT
	say "[$arch] $name: GPT disk + qcow2"
	local sectors=$((esp_mib * 2048))
	truncate -s $(((esp_mib + 2) * 1048576)) "$work/disk.raw"
	sfdisk --quiet "$work/disk.raw" <<-EOF
		label: gpt
		label-id: 6A4E5C10-8B1D-4B1E-9C7A-47554152444E
		unit: sectors
		first-lba: 2048
		start=2048, size=$sectors, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=6A4E5C10-8B1D-4B1E-9C7A-$tail, name="EFI System"
	EOF
	dd if="$work/esp.img" of="$work/disk.raw" bs=1M seek=1 conv=notrunc status=none
	qemu-img convert -f raw -O qcow2 "$work/disk.raw" "$work/$name.qcow2"
	say "[$arch] $name: xz"
	xz -T2 "-$level" -c "$work/$name.qcow2" >"$work/$name.qcow2.xz"
	rm -f "$work/esp.img" "$work/disk.raw"
}

# Builds one appliance.
build_arch() {
	local arch=$1 debarch kmeta efiname grubfmt console machine_note wanted
	read -r debarch kmeta <<<"$(arch_meta "$arch")"
	case "$arch" in
	x86_64)
		efiname=BOOTX64.EFI
		grubfmt=x86_64-efi console=ttyS0,115200 machine_note="q35 + OVMF"
		# virtio-pci NIC/disk, ACPI power button (LNXPWRBN/PNP0C0C) via evdev
		wanted=(virtio_pci virtio_net virtio_blk button evdev) ;;
	aarch64)
		efiname=BOOTAA64.EFI
		grubfmt=arm64-efi console=ttyAMA0 machine_note="virt + AAVMF"
		# power button: ACPI GED + button (UEFI/ACPI boot) or gpio-keys on
		# the PL061 (device-tree boot, e.g. direct kernel boot); both via evdev
		wanted=(virtio_pci virtio_mmio virtio_net virtio_blk gpio_keys evdev) ;;
	esac

	say "[$arch] $machine_note"
	local kpkg=${KPKG[$kmeta]} kroot gbin bb gc kver sb=()
	local specs=("$kpkg:$debarch" "grub-efi-$debarch-bin:$debarch" "busybox-static:$debarch"
		"grub-common:$host_debarch" "libefiboot1:$host_debarch" "libefivar1:$host_debarch")
	read -r -a sb <<<"$(sb_specs "$arch")"
	specs+=("${sb[@]}")
	local inputs="" s
	for s in "${specs[@]}"; do inputs+="${DEB[$s]} "; done

	local dest=$out/$arch
	local stamp
	stamp=$( {
		echo "$inputs $arch"
		cat "$0"
		(cd "$here/rootfs" && find . -type f | LC_ALL=C sort | xargs sha256sum)
	} | sha256sum | cut -d' ' -f1)
	if [ $force = 0 ] && [ -s "$dest/.stamp" ] && [ "$(cat "$dest/.stamp")" = "$stamp" ] &&
		[ -s "$dest/disk.qcow2.xz" ] && [ -s "$dest/disk.qcow2" ] && [ -s "$dest/vmlinuz" ] &&
		{ [ ${#sb[@]} = 0 ] || [ -s "$dest/disk-sb.qcow2.xz" ]; }; then
		say "[$arch] up to date: $dest/disk.qcow2.xz"
		return 0
	fi

	# Offline (e.g. inside the test sandbox) with a previous build: keep it
	# rather than fail when a newer package cannot be downloaded.
	if [ -s "$dest/disk.qcow2.xz" ] && [ -s "$dest/vmlinuz" ]; then
		for s in "${specs[@]}"; do
			[ -s "$debs/${DEB[$s]}" ] && continue
			if ! (fetch "$s" >/dev/null); then
				say "[$arch] warning: cannot fetch $s; keeping the previous build in $dest (stale)" >&2
				return 0
			fi
		done
	fi

	kroot=$(fetch "$kpkg:$debarch")
	gbin=$(fetch "grub-efi-$debarch-bin:$debarch")
	bb=$(fetch "busybox-static:$debarch")
	gc=$(grub_tools)
	kver=$(cd "$kroot/lib/modules" && ls)
	if [ -z "$kver" ] || [ ! -f "$kroot/boot/vmlinuz-$kver" ]; then die "unexpected layout in $kroot"; fi

	local work=$dest/work
	rm -rf "$work" "$dest/.stamp"
	mkdir -p "$work/initramfs"

	# --- initramfs: busybox, our rootfs files, the modules in load order
	say "[$arch] initramfs (kernel $kver)"
	[ -f "$kroot/lib/modules/$kver/modules.dep" ] || depmod -b "$kroot" "$kver"
	local ir=$work/initramfs
	mkdir -p "$ir/bin" "$ir/lib/modules" "$ir/etc" "$ir/proc" "$ir/sys" "$ir/dev" "$ir/run" "$ir/tmp" "$ir/root"
	cp "$bb/bin/busybox" "$ir/bin/busybox"
	cp -a "$here/rootfs/." "$ir/"
	local m line ko name order=()
	for m in "${wanted[@]}"; do
		line=$(modprobe -d "$kroot" -S "$kver" --show-depends "$m" 2>&1) ||
			die "[$arch] module $m not found in $kver: $line"
		while read -r cmd ko _; do
			[ "$cmd" = insmod ] || continue # "builtin NAME": nothing to load
			name=$(basename "$ko" .ko)
			case " ${order[*]} " in *" $name "*) continue ;; esac
			cp "$ko" "$ir/lib/modules/$name.ko"
			order+=("$name")
		done <<<"$line"
	done
	printf '%s\n' "${order[@]}" >"$ir/lib/modules/load.order"
	say "[$arch] modules: ${order[*]}"
	(cd "$ir" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible) |
		gzip -9n >"$work/initrd.img"

	# --- standalone GRUB with an embedded grub.cfg
	say "[$arch] GRUB ($grubfmt, grub-mkstandalone)"
	local kfile=vmlinuz-$kver cmdline="console=$console quiet"
	grub_cfg "embedded in $efiname" "$kfile" "$cmdline" >"$work/grub.cfg"
	LD_LIBRARY_PATH=$(echo "$gc"/usr/lib/*-linux-gnu) "$gc/usr/bin/grub-mkstandalone" \
		-d "$gbin/usr/lib/grub/$grubfmt" -O "$grubfmt" -o "$work/$efiname" \
		--locales= --themes= --fonts= \
		--install-modules="normal configfile search search_fs_file part_gpt fat linux echo test boot" \
		--modules="part_gpt fat" \
		"boot/grub/grub.cfg=$work/grub.cfg"

	# --- ESP (FAT) with \EFI\BOOT\<efiname>, the kernel and the initramfs;
	# GPT disk, qcow2, xz
	mkdisk "$work" disk 455350303031 6 "$work/$efiname=/EFI/BOOT/$efiname" \
		"$kroot/boot/$kfile=/$kfile" "$work/initrd.img=/initrd.img"

	# --- the Secure Boot variant: shim -> signed GRUB -> signed kernel
	local sbdisk=""
	if [ ${#sb[@]} -gt 0 ]; then
		local shim sgrub
		shim=$(fetch "shim-signed:$debarch")/usr/lib/shim/shimx64.efi.signed
		sgrub=$(fetch "grub-efi-$debarch-signed:$debarch")/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed
		say "[$arch] Secure Boot variant (shim-signed, grub-efi-amd64-signed, signed kernel)"
		local f
		for f in "$shim" "$sgrub" "$kroot/boot/$kfile"; do
			pe_signed "$f" || die "[$arch] $f carries no Authenticode signature"
			if command -v sbverify >/dev/null 2>&1; then
				say "[$arch]   $(basename "$f"): $(sbverify --list "$f" 2>/dev/null |
					sed -n 's/^ *subject: *//p' | head -n1)"
			fi
		done
		# The signed GRUB's own config (in its memdisk) sources
		# $prefix/grub.cfg, $prefix being /EFI/debian on the ESP it was
		# loaded from.  Only the commands built into it are there (Secure
		# Boot forbids insmod); `linux` has shim verify the kernel.
		grub_cfg 'Secure Boot variant, \EFI\debian\grub.cfg' "$kfile" "$cmdline" \
			>"$work/grub-sb.cfg"
		# xz -1: 3 s instead of 10 s for 3% more (mostly the
		# compressed kernel, which xz cannot shrink anyway)
		mkdisk "$work" disk-sb 455350305342 1 "$shim=/EFI/BOOT/BOOTX64.EFI" \
			"$sgrub=/EFI/BOOT/grubx64.efi" "$work/grub-sb.cfg=/EFI/debian/grub.cfg" \
			"$kroot/boot/$kfile=/$kfile" "$work/initrd.img=/initrd.img"
		sbdisk=disk-sb
	fi

	# --- publish
	mkdir -p "$dest"
	cp "$kroot/boot/$kfile" "$dest/vmlinuz"
	mv "$work/initrd.img" "$dest/initrd.img"
	echo "$cmdline" >"$dest/cmdline"
	mv "$work/grub.cfg" "$work/$efiname" "$dest/"
	local dk
	for dk in disk $sbdisk; do
		mv "$work/$dk.qcow2" "$dest/$dk.qcow2"
		mv "$work/$dk.qcow2.xz" "$dest/$dk.qcow2.xz"
		(cd "$dest" && sha256sum "$dk.qcow2.xz" >"$dk.qcow2.xz.sha256")
	done
	[ -z "$sbdisk" ] || mv "$work/grub-sb.cfg" "$dest/"
	rm -rf "$work"
	echo "$stamp" >"$dest/.stamp"
	say "[$arch] done: $dest/disk.qcow2.xz ($(du -h "$dest/disk.qcow2.xz" | cut -f1)), kernel $kver"
	[ -z "$sbdisk" ] ||
		say "[$arch] done: $dest/$sbdisk.qcow2.xz ($(du -h "$dest/$sbdisk.qcow2.xz" | cut -f1)), Secure Boot"
}

resolve
for a in "${arches[@]}"; do
	build_arch "$a"
done

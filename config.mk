# Build configuration: target architecture, toolchain and which optional parts are compiled.
# `make ARCH=arm64` cross-builds for the Raspberry Pi 5 with the :arm64 multiarch dev packages.

HOST_ARCH := $(shell uname -m)
ARCH ?= $(HOST_ARCH)
ifeq ($(ARCH),aarch64)
override ARCH := arm64
endif
ifeq ($(ARCH),amd64)
override ARCH := x86_64
endif

ifeq ($(ARCH),arm64)
  ifneq ($(HOST_ARCH),aarch64)
    CROSS ?= aarch64-linux-gnu-
    PKG_CONFIG := PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig pkg-config
    # Runs target binaries (unit tests) on an x86 build host.
    EMU ?= qemu-aarch64-static
  endif
  WITH_XEN ?= 0
  WITH_PCI ?= 0
else
  WITH_XEN ?= 1
  WITH_PCI ?= 1
endif

CC := $(CROSS)gcc
PKG_CONFIG ?= pkg-config
BUILD ?= build/$(ARCH)

PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
DATADIR ?= $(PREFIX)/share/guardian-vms
MANDIR ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR ?= /lib/systemd/system

CSTD := -std=gnu11
WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-unused-parameter
OPT ?= -O2 -g
CPPFLAGS += -D_GNU_SOURCE -Icommon -Ivmmod -Iinstaller \
	-DDATADIR='"$(DATADIR)"' -DSYSCONFDIR='"$(SYSCONFDIR)"'
CFLAGS += $(CSTD) $(WARN) $(OPT) -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE
LDFLAGS += -pie -Wl,-z,relro,-z,now

# Sanitizer build: make SAN=1 (address + undefined; UB aborts the program)
ifeq ($(SAN),1)
  CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
  LDFLAGS += -fsanitize=address,undefined
  BUILD := $(BUILD)-san
endif

pc = $(shell $(PKG_CONFIG) --cflags $(1) 2>/dev/null)
pl = $(shell $(PKG_CONFIG) --libs $(1) 2>/dev/null)

# wslay ships no pkg-config file; its headers are arch-independent and the
# arm64 build links the runtime library (libwslay-dev is not multiarch).
WSLAY_LIBS := -l:libwslay.so.1

VMMOD_PKGS := libvirt libmicrohttpd json-c libxml-2.0 libcurl liblzma nettle gnutls libusb-1.0
SETUP_PKGS := ncursesw libnl-3.0 libnl-route-3.0 libiptc libnftables json-c libxml-2.0 uuid
ifeq ($(WITH_PCI),1)
  VMMOD_PKGS += libpci
endif
TEST_PKGS := check

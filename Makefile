# Guardian VMs — build, test and install.  See README.md.
#   make                 build vmmod and guardian-vm-setup under build/$(ARCH)/
#   sudo make check      unit tests, then sandbox tests (real libvirtd + TCG guests)
#   make ARCH=arm64      cross-build for the Pi;  make check-arm64  runs unit tests under qemu-user
#   sudo make deps       install every Debian package in packages.txt
#   make REGENERATE=1 check-unit   rewrite golden files (review the diff)

include config.mk

# ---- sources -------------------------------------------------------------
# Optional parts are chosen here, never with #ifdef: WITH_PCI builds
# vmmod/pci.c (libpci, VFIO passthrough), WITH_XEN vmmod/xen.c (libxl via
# libvirt); without them vmmod/pci_none.c and vmmod/xen_none.c answer "not
# built on this arch".  x86_64 has both, arm64 (Pi 5: no VFIO) neither.
OPTIONAL := pci xen
WITH_pci := $(WITH_PCI)
WITH_xen := $(WITH_XEN)
OPT_SRCS := $(foreach f,$(OPTIONAL),$(wildcard vmmod/$(f)$(if $(filter 1,$(WITH_$(f))),,_none).c))
OPT_ALL := $(foreach f,$(OPTIONAL),vmmod/$(f).c vmmod/$(f)_none.c)

COMMON_SRCS := $(wildcard common/*.c)
VMMOD_LIB_SRCS := $(filter-out vmmod/vmmod.c $(OPT_ALL),$(wildcard vmmod/*.c)) $(OPT_SRCS)
VMMOD_SRCS := vmmod/vmmod.c $(VMMOD_LIB_SRCS)
SETUP_LIB_SRCS := $(filter-out installer/main.c,$(wildcard installer/*.c))
SETUP_SRCS := installer/main.c $(SETUP_LIB_SRCS)
TEST_SRCS := $(wildcard tests/unit/test_*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

COMMON_OBJS := $(call obj,$(COMMON_SRCS))
VMMOD_OBJS := $(call obj,$(VMMOD_SRCS))
VMMOD_LIB_OBJS := $(call obj,$(VMMOD_LIB_SRCS))
SETUP_OBJS := $(call obj,$(SETUP_SRCS))
SETUP_LIB_OBJS := $(call obj,$(SETUP_LIB_SRCS))
TEST_OBJS := $(call obj,$(TEST_SRCS) tests/unit/main.c tests/unit/testutil.c)

VMMOD_CFLAGS := $(call pc,$(VMMOD_PKGS))
VMMOD_LIBS := $(call pl,$(VMMOD_PKGS)) $(WSLAY_LIBS) -lpthread -lm
# guardian-vm-setup defines the libvirt network and storage pool (installer/lv.c)
# and deploys through vmmod's socket with libcurl (installer/deploy.c).
SETUP_PKGS += libvirt libcurl
SETUP_CFLAGS := $(call pc,$(SETUP_PKGS))
SETUP_LIBS := $(call pl,$(SETUP_PKGS))
TEST_CFLAGS := $(call pc,$(TEST_PKGS))
TEST_LIBS := $(call pl,$(TEST_PKGS))

ALL_CFLAGS := $(sort $(VMMOD_CFLAGS) $(SETUP_CFLAGS))
FEATURES := -DWITH_XEN=$(WITH_XEN) -DWITH_PCI=$(WITH_PCI)

CROSS_NM := aarch64-linux-gnu-nm
CROSS_READELF := aarch64-linux-gnu-readelf
VMMOD := $(BUILD)/vmmod
SETUP := $(BUILD)/guardian-vm-setup
UNIT := $(BUILD)/unit-tests
DOMXML := $(BUILD)/gvm-domxml

.PHONY: all check check-unit check-sandbox check-arm64 install uninstall clean deps \
	fmt fmt-check appliances demo bench
.DEFAULT_GOAL := all

# The installer is built once installer/main.c exists (its own issue).
PROGS := $(VMMOD) $(if $(wildcard installer/main.c),$(SETUP))
all: $(PROGS) $(DOMXML)

# V=1 shows whole command lines.
Q := $(if $(V),,@)
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(V),,echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(FEATURES) $(CFLAGS) $(ALL_CFLAGS) $(TEST_CFLAGS_$(findstring tests/,$<)) -MMD -MP -c -o $@ $<

TEST_CFLAGS_tests/ = $(TEST_CFLAGS) -I$(BUILD)/tests -Itests/unit

$(VMMOD): $(VMMOD_OBJS) $(COMMON_OBJS)
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(VMMOD_LIBS)

$(SETUP): $(SETUP_OBJS) $(COMMON_OBJS)
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(SETUP_LIBS) -lpthread

# Developer/test tool: spec JSON -> domain XML with the product's generator.
$(DOMXML): $(BUILD)/obj/tools/gvm-domxml.o $(VMMOD_LIB_OBJS) $(COMMON_OBJS)
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(VMMOD_LIBS)

# The unit-test runner links every object but the two main()s; each
# tests/unit/test_NAME.c provides `Suite *suite_NAME(void)`.
$(BUILD)/tests/suites.h: $(TEST_SRCS) Makefile
	@mkdir -p $(@D)
	@printf '%s\n' $(patsubst tests/unit/test_%.c,'SUITE(%)',$(TEST_SRCS)) > $@.tmp
	@cmp -s $@.tmp $@ || mv $@.tmp $@; rm -f $@.tmp

$(BUILD)/obj/tests/unit/main.o: $(BUILD)/tests/suites.h

$(UNIT): $(TEST_OBJS) $(VMMOD_LIB_OBJS) $(SETUP_LIB_OBJS) $(COMMON_OBJS)
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(VMMOD_LIBS) $(SETUP_LIBS) $(TEST_LIBS)

# ---- tests ---------------------------------------------------------------
# The appliances are built first, outside the sandbox: apt-get download
# needs the network namespace that can reach Debian's mirror.
check: all $(UNIT) web-vendor browser-deps
	tests/appliance/build.sh --out build/appliance x86_64 aarch64
	@tests/run.sh --build $(BUILD) --all

check-unit: $(UNIT)
	@tests/run.sh --build $(BUILD) --unit

check-sandbox: all $(UNIT) web-vendor browser-deps
	tests/appliance/build.sh --out build/appliance x86_64 aarch64
	@tests/run.sh --build $(BUILD) --sandbox

check-arm64:
	$(MAKE) ARCH=arm64 all build/arm64/unit-tests
	@# The Pi build must not carry the x86-only parts.  pci_none.c and
	@# xen_none.c define the same functions as pci.c and xen.c, so symbol
	@# names prove nothing; instead: no libpci in NEEDED, no libpci symbol
	@# imported, and the DWARF compile units name the _none files (proof the
	@# probe sees sources at all) but never pci.c or xen.c.
	@v=build/arm64/vmmod; \
	if $(CROSS_READELF) -d $$v | grep -E 'NEEDED.*libpci'; then \
		echo "check-arm64: the arm64 vmmod links libpci" >&2; exit 1; fi; \
	if $(CROSS_NM) -D $$v | grep -E ' U pci_'; then \
		echo "check-arm64: the arm64 vmmod imports libpci symbols" >&2; exit 1; fi; \
	cus=$$($(CROSS_READELF) --debug-dump=info $$v | \
		sed -n 's|.*DW_AT_name.*: \(vmmod/[A-Za-z0-9_]*\.c\)$$|\1|p'); \
	for f in $(wildcard vmmod/pci_none.c vmmod/xen_none.c); do \
		echo "$$cus" | grep -qx "$$f" || { echo "check-arm64: no $$f in the \
			debug info of $$v: cannot tell what was linked" >&2; exit 1; }; done; \
	for f in vmmod/pci.c vmmod/xen.c; do \
		if echo "$$cus" | grep -qx "$$f"; then \
			echo "check-arm64: $$f (x86 only) is in $$v" >&2; exit 1; fi; done; \
	echo "$$cus" | grep -qx vmmod/usb.c && $(CROSS_READELF) -d $$v | \
		grep -q 'NEEDED.*libusb-1.0' || { echo "check-arm64: USB \
		passthrough (vmmod/usb.c, libusb) is not in $$v" >&2; exit 1; }; \
	echo "check-arm64: $$v has USB passthrough, no PCI passthrough, no Xen"
	@tests/run.sh --build build/arm64 --unit --emu qemu-aarch64-static

appliances:
	tests/appliance/build.sh --out build/appliance x86_64 aarch64

# The README's first command: deps (once per packages.txt), build, then run
# the product against a sandboxed libvirtd (tools/demo.sh says how).
demo: build/deps.stamp
	$(MAKE) all web-vendor
	tools/demo.sh --build $(BUILD)

build/deps.stamp: packages.txt
	$(MAKE) deps

# ---- install -------------------------------------------------------------
# Paths inside the shipped files are written for PREFIX=/usr/local; sed
# rewrites them for the PREFIX being installed.
SUBST = sed -e 's|/usr/local/sbin|$(SBINDIR)|g' -e 's|/usr/share/guardian-vms|$(DATADIR)|g'
install: all web-vendor
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(DATADIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/vmmod
	install -m 0755 $(PROGS) $(DESTDIR)$(SBINDIR)/
	for f in man/*.8; do [ -e "$$f" ] && install -m 0644 "$$f" $(DESTDIR)$(MANDIR)/man8/; done; true
	for f in man/*.5; do [ -e "$$f" ] && install -m 0644 "$$f" $(DESTDIR)$(MANDIR)/man5/; done; true
	for f in systemd/*.service systemd/*.timer systemd/*.path; do [ -e "$$f" ] && \
		$(SUBST) "$$f" > $(DESTDIR)$(UNITDIR)/$$(basename "$$f"); done; true
	$(SUBST) vmmod/vmmod.conf.example > $(DESTDIR)$(SYSCONFDIR)/vmmod/vmmod.conf.example
	install -m 0644 docs/openapi.yaml $(DESTDIR)$(DATADIR)/openapi.yaml
	for d in templates web-assets guardian; do [ ! -d "$$d" ] || cp -R "$$d" $(DESTDIR)$(DATADIR)/; done

clean:
	rm -rf build

# Installs every Debian package of packages.txt (build, test, runtime); never
# enables or starts a host service.
deps:
	@[ "$$(id -u)" = 0 ] || { echo "make deps: run as root (sudo make deps)" >&2; exit 1; }
	@dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		$$(sed -e 's/#.*//' packages.txt)
	@# npm: Debian's package only where no npm came with nodejs (NodeSource
	@# builds bundle it and conflict with Debian's npm).
	command -v npm >/dev/null || DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends npm
	@mkdir -p build && touch build/deps.stamp

FMT_FILES = $(wildcard common/*.[ch] vmmod/*.[ch] installer/*.[ch] tests/unit/*.[ch] bench/*.c tools/*.c)
fmt:
	clang-format -i $(FMT_FILES)

fmt-check:
	clang-format --dry-run --Werror $(FMT_FILES)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# `sudo make bench`: vmmod against the seed's Flask + virsh module, printed
# as tables (bench/README.md); informational, fails only when broken.
bench: all
	bench/run.sh --build $(BUILD)

# ---- web UI: vendored browser libraries, browser-test deps (issue 5) -----
# `make web-vendor`: the console page's xterm.js and noVNC, pinned in
# tools/web-vendor/package-lock.json, installed with `npm ci` and only their
# dist files copied to web-assets/vendor/ (git-ignored; web-assets/README.md).
# `make browser-deps`: playwright-core for tests/e2e/60-browser.sh (it drives
# Debian's /usr/bin/chromium and downloads no browser).
.PHONY: web-vendor browser-deps
WEB_VENDOR := web-assets/vendor
NPM_CI := npm ci --ignore-scripts --no-audit --no-fund
web-vendor: $(WEB_VENDOR)/.stamp
$(WEB_VENDOR)/.stamp: tools/web-vendor/package.json tools/web-vendor/package-lock.json
	rm -rf build/web-vendor $(WEB_VENDOR)
	mkdir -p build/web-vendor $(WEB_VENDOR)/xterm $(WEB_VENDOR)/novnc
	cp tools/web-vendor/package.json tools/web-vendor/package-lock.json build/web-vendor/
	cd build/web-vendor && $(NPM_CI)
	cp build/web-vendor/node_modules/@xterm/xterm/lib/xterm.js \
		build/web-vendor/node_modules/@xterm/xterm/css/xterm.css \
		build/web-vendor/node_modules/@xterm/xterm/LICENSE $(WEB_VENDOR)/xterm/
	cp -R build/web-vendor/node_modules/@novnc/novnc/core \
		build/web-vendor/node_modules/@novnc/novnc/vendor \
		build/web-vendor/node_modules/@novnc/novnc/LICENSE.txt $(WEB_VENDOR)/novnc/
	touch $@

browser-deps: tests/browser/node_modules/.package-lock.json
tests/browser/node_modules/.package-lock.json: tests/browser/package.json tests/browser/package-lock.json
	cd tests/browser && $(NPM_CI)

# ---- sanitizers and fuzzing (issue 9) ------------------------------------
# `sudo make check-asan`: everything built with ASan + UBSan (make SAN=1, UB
# aborts), then the unit and sandbox suites against build/$(ARCH)-san.  Any
# sanitizer report, also from a daemon an e2e test ran in the background,
# fails the run (tests/run.sh --san: reports go to files it checks).
# `make fuzz FUZZ_SECONDS=N`: each libFuzzer target (tests/fuzz/fuzz_*.c,
# clang, objects under build/fuzz/) runs N seconds on its seed corpus
# tests/fuzz/corpus/TARGET/; new inputs go to build/fuzz/corpus/TARGET/,
# crashes to build/fuzz/crash-TARGET-*.  `make fuzz-regress` replays every
# committed corpus file once (make check does, through tests/run.sh).
.PHONY: check-asan fuzz fuzz-build fuzz-regress
SAN_BUILD := build/$(ARCH)-san
check-asan: web-vendor browser-deps
	$(MAKE) SAN=1 all $(SAN_BUILD)/unit-tests
	tests/appliance/build.sh --out build/appliance x86_64 aarch64
	@tests/run.sh --build $(SAN_BUILD) --san $(if $(SAN_ONLY),--unit --sandbox --only '$(SAN_ONLY)',--all)

FUZZ_SECONDS ?= 60
FUZZ_BUILD := build/fuzz
FUZZ_CC := clang
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := $(CSTD) -g -O1 -fno-omit-frame-pointer $(FUZZ_SAN) -fsanitize=fuzzer-no-link
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(addprefix $(FUZZ_BUILD)/,$(FUZZ_TARGETS))
FUZZ_LIB_OBJS := $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(VMMOD_LIB_SRCS) $(COMMON_SRCS))

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(V),,echo "  FUZZCC  $<")
	$(Q)$(FUZZ_CC) $(CPPFLAGS) $(FEATURES) $(FUZZ_CFLAGS) $(VMMOD_CFLAGS) -Itests/fuzz -MMD -MP -c -o $@ $<

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_LIB_OBJS)
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(VMMOD_LIBS)

# keep the objects: make would delete them as intermediates
.SECONDARY: $(FUZZ_LIB_OBJS) $(patsubst %,$(FUZZ_BUILD)/obj/tests/fuzz/%.o,$(FUZZ_TARGETS))
fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p $(FUZZ_BUILD)/corpus/$$t; \
		echo "== fuzz $$t ($(FUZZ_SECONDS)s)"; \
		$(FUZZ_BUILD)/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
			-rss_limit_mb=2048 -print_final_stats=1 \
			-artifact_prefix=$(FUZZ_BUILD)/crash-$$t- \
			$(FUZZ_BUILD)/corpus/$$t tests/fuzz/corpus/$$t \
			>$(FUZZ_BUILD)/$$t.log 2>&1; rc=$$?; \
		grep -E '^(#[0-9]+ +DONE|SUMMARY|stat::number_of_executed_units)' $(FUZZ_BUILD)/$$t.log; \
		[ $$rc = 0 ] || { tail -40 $(FUZZ_BUILD)/$$t.log; \
			echo "fuzz: $$t failed (log: $(FUZZ_BUILD)/$$t.log)" >&2; exit 1; }; \
	done

fuzz-regress: fuzz-build
	@tests/run.sh --fuzz-regress

# make check replays the fuzz corpora as a unit-level step.
check check-unit: fuzz-build
-include $(shell find $(FUZZ_BUILD)/obj -name '*.d' 2>/dev/null)

# ---- docs/RELIABILITY.md (issue 9.5) --------------------------------------
# `sudo make reliability`: replays the fuzz corpora and runs 25-valgrind-api,
# 95-load and 96-98-faults-* with REPORT_DIR set (each writes its rows and
# figures there), then tools/reliability.sh writes docs/RELIABILITY.md from
# them.  Commit the result of a green run (a failed test or row still
# writes the file, then fails the target).
REL_DIR := $(BUILD)/reliability
.PHONY: reliability
reliability: all fuzz-build
	rm -rf $(REL_DIR) && mkdir -p $(REL_DIR)
	-REPORT_DIR=$(REL_DIR) tests/run.sh --fuzz-regress
	-REPORT_DIR=$(REL_DIR) tests/run.sh --sandbox --only '25-valgrind-api'
	-REPORT_DIR=$(REL_DIR) tests/run.sh --sandbox --only '9[5-8]-*'
	tools/reliability.sh $(REL_DIR) $(FUZZ_BUILD) >docs/RELIABILITY.md.tmp
	mv docs/RELIABILITY.md.tmp docs/RELIABILITY.md
	@echo "reliability: docs/RELIABILITY.md written from $(REL_DIR)"
	@! grep -h '|FAIL' $(REL_DIR)/results.txt $(REL_DIR)/reliability.txt

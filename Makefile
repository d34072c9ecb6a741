# hvrun build.  `make` builds build/hvrun; `make asan` an ASan+UBSan variant
# in build/asan/hvrun; `make check` installs deps, builds and runs every test;
# `make demo` installs deps, builds and runs both modes on the default image.
#
# Sources are picked up by folder, so adding a file needs no Makefile edit.
# Folders with special targets (guest init, guest kernel, default image)
# keep them in their own module.mk, included at the end.

BUILD ?= build
CC ?= gcc
PYTHON ?= /usr/bin/python3
SAN ?=
OPT ?= -O2
CFLAGS_BASE := -std=gnu11 -Wall -Wextra -Werror $(OPT) -g -D_GNU_SOURCE -I. \
  -fno-strict-aliasing -fstack-protector-strong
ifeq ($(SAN),1)
CFLAGS_BASE += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS_SAN := -fsanitize=address,undefined
endif
CFLAGS_ALL = $(CFLAGS_BASE) $(CFLAGS)
# libarchive and libcrypto (and their compression libraries) are linked
# statically: dynamically, libarchive drags in libxml2, ICU and libstdc++, and
# relocating those took more than half of hvrun's start-up time, paid on
# every container start.  Static archives only contribute the objects we
# call, so the xar/xml2 code is never linked.  zstd, acl and lz4 ship no
# static archive in Debian and stay dynamic (they are small).
LIBS := -Wl,-Bstatic -lseccomp -lcap -ljansson -lcgroup -larchive -lcrypto -lnettle \
  -llzma -lbz2 -lz -Wl,-Bdynamic -l:libzstd.so.1 -l:libacl.so.1 -l:liblz4.so.1 -lpthread -ldl
# Unit tests may use more of libarchive (writers for test tarballs, whose
# generic format table pulls the xml2-based xar writer): link them dynamically.
TEST_LIBS := -lseccomp -lcap -ljansson -lcgroup -larchive -lcrypto -lpthread -ldl

# LIB_DIRS can be narrowed while one folder is being developed, e.g.
#   make BUILD=build/cg LIB_DIRS="runtime cgroups" build/cg/tests/test_cgroups
LIB_DIRS ?= runtime ns cgroups vm images
LIB_SRCS := $(sort $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c)))
CLI_SRCS := $(sort $(wildcard cli/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/obj/%.o)
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
HEADERS := $(wildcard */*.h vm/*/*.h)

.PHONY: all asan deps check unit integration demo clean prereqs
all: $(BUILD)/hvrun

$(BUILD)/obj/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/libhvrun.a: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# Debug info goes to hvrun.debug (found by gdb through the debuglink): every
# container start copies the binary into a sealed memfd (CVE-2019-5736), so
# its size is paid per start.
$(BUILD)/hvrun: $(CLI_OBJS) $(BUILD)/libhvrun.a
	$(CC) $(LDFLAGS_SAN) $(LDFLAGS) -o $@.full $(CLI_OBJS) $(BUILD)/libhvrun.a $(LIBS)
	objcopy --only-keep-debug $@.full $@.debug
	objcopy --strip-debug --add-gnu-debuglink=$@.debug $@.full $@.tmp
	rm -f $@.full && mv $@.tmp $@

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libhvrun.a $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(BUILD)/libhvrun.a $(LDFLAGS_SAN) $(TEST_LIBS) -lcmocka

asan:
	$(MAKE) BUILD=build/asan SAN=1 OPT=-O1 all

# Debian packages the project needs; installs only what is missing.
DEB_PKGS := build-essential pkg-config libseccomp-dev libcap-dev libcgroup-dev \
  libarchive-dev linux-libc-dev libjansson-dev libssl-dev erofs-utils linux-source \
  busybox-static libcmocka-dev python3-pytest flex bison bc libelf-dev cpio \
  crun runc qemu-system-x86 podman containerd umoci skopeo bubblewrap \
  zstd chromium acpica-tools
deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
	  grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then echo "make deps: installing $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "make deps: all packages present"; fi

unit: $(UNIT_BINS)
	@fail=0; for t in $(UNIT_BINS); do echo "== $$t"; $$t || fail=1; done; exit $$fail

# Everything the integration tests and the demo use: both binaries, the
# static guest init, the guest kernel (cached by content hash) and the
# default image hvrun/busybox in the default store.
prereqs: all asan guest-init kernel stock-kernel image

# The whole suite runs against build/hvrun; the ASan+UBSan binary then runs
# the lifecycle, one-shot, bad-input, VM-backend and limits files again,
# where memory errors in the runtime and the VMM would show (the long
# own-VMM tests, ten at once, the limits run and the stock kernel's ACPI
# boot, only in the first pass).
ASAN_INTEGRATION := tests/integration/test_oci_cli.py tests/integration/test_oneshot.py \
  tests/integration/test_bad_input.py tests/integration/test_vm_backend.py \
  tests/integration/test_limits_both_models.py tests/integration/test_stock_kernel.py
integration: prereqs
	HVRUN=$(BUILD)/hvrun $(PYTHON) -m pytest -q -ra tests/integration
	HVRUN=build/asan/hvrun HVRUN_SKIP_LONG_VMM=1 $(PYTHON) -m pytest -q -ra $(ASAN_INTEGRATION)

check: deps
	$(MAKE) prereqs
	$(MAKE) unit
	$(MAKE) BUILD=build/asan SAN=1 OPT=-O1 unit
	$(MAKE) integration

demo: deps
	$(MAKE) all guest-init kernel image
	./tests/demo.sh

clean:
	rm -rf build

-include $(sort $(wildcard */module.mk vm/*/module.mk))

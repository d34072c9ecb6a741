# vm/module.mk: tiny ring-0 test guests for the VMM core's unit tests.
# tests/unit/guests/NAME.S -> $(BUILD)/guests/NAME.bin (flat binary linked at
# 0x100000, where vm_setup_test_longmode loads it).  The vm unit tests find
# them next to themselves ($(BUILD)/tests/../guests) and depend on them, so
# `make unit` builds them first.
VM_GUEST_SRCS := $(wildcard tests/unit/guests/*.S)
VM_GUEST_BINS := $(VM_GUEST_SRCS:tests/unit/guests/%.S=$(BUILD)/guests/%.bin)

.PHONY: vm-guests
vm-guests: $(VM_GUEST_BINS)

$(BUILD)/guests/%.bin: tests/unit/guests/%.S tests/unit/guests/common.h
	@mkdir -p $(dir $@)
	$(CC) -c -o $(@:.bin=.o) -Itests/unit/guests $<
	ld -N --no-warn-rwx-segments -o $(@:.bin=.elf) -Ttext=0x100000 -e _start --build-id=none $(@:.bin=.o)
	objcopy -O binary -j .text $(@:.bin=.elf) $@

$(BUILD)/tests/test_vm_core $(BUILD)/tests/test_vm_boot: $(VM_GUEST_BINS)

# vm/kernel/module.mk: hvrun's guest kernel (`make kernel`).
# Built from Debian's linux-source-6.1 with our config fragment and patches;
# cached by content hash under $(HVRUN_KERNEL_CACHE) (default
# $(BUILD)/kernel), so a rebuild happens only when an input changes.
# build/kernel/vmlinux and build/kernel/bzImage link to the current build.
HVRUN_KERNEL_CACHE ?= $(BUILD)/kernel
KERNEL_WORK ?= $(BUILD)/kernel/work

.PHONY: kernel
kernel:
	@out=$$(vm/kernel/build.sh "$(HVRUN_KERNEL_CACHE)" "$(KERNEL_WORK)") && \
	  test -f "$$out/vmlinux" && \
	  mkdir -p $(BUILD)/kernel && \
	  ln -sfn "$$(realpath "$$out")/vmlinux" $(BUILD)/kernel/vmlinux && \
	  ln -sfn "$$(realpath "$$out")/bzImage" $(BUILD)/kernel/bzImage && \
	  echo "kernel: $$out"

# Debian's stock cloud kernel and its modules, unpacked (not installed) under
# $(BUILD)/stock-kernel/current: what the tests boot through --kernel to
# check the distribution-kernel path (ACPI devices, modules in the initrd).
.PHONY: stock-kernel
stock-kernel:
	@vm/kernel/stock.sh $(BUILD)/stock-kernel

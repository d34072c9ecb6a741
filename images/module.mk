# images/module.mk: `make image` builds the built-in default image
# hvrun/busybox OFFLINE from Debian's busybox-static as an OCI image layout
# ($(BUILD)/images/busybox-oci, deterministic: fixed mtimes, so its digest is
# stable) and imports it into the store: `make image STORE=DIR`, else
# $HVRUN_STORE, else /var/lib/hvrun.
#
# Static test helpers go into the image's /usr/local/bin:
#   - every tests/helpers/*.c is built here with -static;
#   - other folders may append ready-made files (with their own build rules)
#     to HV_IMAGE_HELPERS_EXTRA in their module.mk.
# Both lists are expanded when the recipe runs, so include order does not
# matter.
HV_IMAGE_LAYOUT := $(BUILD)/images/busybox-oci
HV_IMAGE_HELPER_SRCS = $(sort $(wildcard tests/helpers/*.c))
HV_IMAGE_HELPERS = $(HV_IMAGE_HELPER_SRCS:tests/helpers/%.c=$(BUILD)/image-helpers/%) \
  $(HV_IMAGE_HELPERS_EXTRA)

$(BUILD)/image-helpers/%: tests/helpers/%.c
	@mkdir -p $(dir $@)
	$(CC) -static -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -o $@ $<

.PHONY: image image-layout
image-layout:
	$(if $(strip $(HV_IMAGE_HELPERS)),$(MAKE) --no-print-directory $(HV_IMAGE_HELPERS))
	@mkdir -p $(dir $(HV_IMAGE_LAYOUT))
	$(PYTHON) images/mkbusybox.py $(HV_IMAGE_LAYOUT) $(addprefix --helper ,$(HV_IMAGE_HELPERS))

image: $(BUILD)/hvrun image-layout
	$(BUILD)/hvrun image $(if $(STORE),--store $(STORE)) import $(HV_IMAGE_LAYOUT) hvrun/busybox:latest

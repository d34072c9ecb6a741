# runtime/module.mk: the parts of runtime/ that need more than "compile
# every .c file" (included by the top-level Makefile).

ifneq ($(filter runtime,$(LIB_DIRS)),)

# 1. The built-in seccomp profile ships as runtime/seccomp-default.json and
#    is embedded as a C array (od, since xxd may not be installed).  The
#    object joins libhvrun.a as an extra prerequisite: the archive recipe
#    uses $^, so it is archived with the rest.
HV_SECCOMP_JSON := runtime/seccomp-default.json
HV_SECCOMP_C := $(BUILD)/gen/runtime/seccomp_default.c
HV_SECCOMP_O := $(BUILD)/obj/gen/runtime/seccomp_default.o

$(HV_SECCOMP_C): $(HV_SECCOMP_JSON) runtime/module.mk
	@mkdir -p $(dir $@)
	@{ echo '/* generated from $< by runtime/module.mk; do not edit */'; \
	  echo '#include <stddef.h>'; \
	  echo 'extern const char hv_seccomp_default_json[];'; \
	  echo 'extern const size_t hv_seccomp_default_json_len;'; \
	  echo 'const char hv_seccomp_default_json[] = {'; \
	  od -An -v -tx1 $< | sed -e 's/\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo '0x00};'; \
	  echo "const size_t hv_seccomp_default_json_len = $$(wc -c < $<);"; } > $@.tmp && mv $@.tmp $@

$(HV_SECCOMP_O): $(HV_SECCOMP_C)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/libhvrun.a: $(HV_SECCOMP_O)

# 2. Backends: runtime/backend.c refers to hv_backend_container/_vm weakly
#    so the tree links without them; a weak reference never pulls an
#    object out of an archive, though, so when a folder in the build
#    defines the symbol, backend.c is told to refer to it normally.
HV_NS_BACKEND_SRC := $(if $(filter ns,$(LIB_DIRS)),$(shell grep -lE 'hv_backend_container[[:space:]]*=' ns/*.c 2>/dev/null))
HV_VM_BACKEND_SRC := $(if $(filter vm,$(LIB_DIRS)),$(shell grep -lE 'hv_backend_vm[[:space:]]*=' vm/*.c 2>/dev/null))
$(BUILD)/obj/runtime/backend.o: CFLAGS_ALL += $(if $(HV_NS_BACKEND_SRC),-DHV_HAVE_BACKEND_CONTAINER) $(if $(HV_VM_BACKEND_SRC),-DHV_HAVE_BACKEND_VM)
# Rebuild when that answer may change.
$(BUILD)/obj/runtime/backend.o: runtime/module.mk $(HV_NS_BACKEND_SRC) $(HV_VM_BACKEND_SRC)

endif

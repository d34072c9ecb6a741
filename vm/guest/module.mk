# vm/guest/module.mk: the static guest init, build/hvrun-init.
# It links libhvrun.a so the VM enforces the container backend's policy code
# (ns_finalize_and_exec: rlimits, user, caps, no_new_privs, seccomp) and
# parses config.json with the same OCI parser.  Only the archive members it
# needs are pulled in; the static libraries cover what they reference.
GUEST_SRCS := $(sort $(wildcard vm/guest/*.c))
GUEST_OBJS := $(GUEST_SRCS:%.c=$(BUILD)/obj/%.o)
GUEST_STATIC_LIBS := -lseccomp -lcap -ljansson -lpthread

.PHONY: guest-init
guest-init: $(BUILD)/hvrun-init

$(BUILD)/hvrun-init: $(GUEST_OBJS) $(BUILD)/libhvrun.a
	$(CC) -static $(LDFLAGS) -o $@ $(GUEST_OBJS) $(BUILD)/libhvrun.a $(GUEST_STATIC_LIBS)

/* oci_free.c: release everything the OCI parser allocates.  Every
 * function accepts partially filled objects (the parser frees what it
 * built so far on error). */
#include "oci_internal.h"

void hv_oci_keyvals_free(struct hv_oci_keyval *kv, size_t n) {
  for (size_t i = 0; kv && i < n; i++) {
    free(kv[i].key);
    free(kv[i].value);
  }
  free(kv);
}

static void caps_free(struct hv_oci_capabilities *c) {
  if (!c)
    return;
  hv_strv_free(c->bounding);
  hv_strv_free(c->effective);
  hv_strv_free(c->inheritable);
  hv_strv_free(c->permitted);
  hv_strv_free(c->ambient);
  free(c);
}

static void process_clear(struct hv_oci_process *p) {
  free(p->json);
  free(p->user.additional_gids);
  free(p->user.username);
  hv_strv_free(p->args);
  free(p->command_line);
  hv_strv_free(p->env);
  free(p->cwd);
  caps_free(p->capabilities);
  for (size_t i = 0; p->rlimits && i < p->n_rlimits; i++)
    free(p->rlimits[i].type);
  free(p->rlimits);
  free(p->apparmor_profile);
  free(p->selinux_label);
  free(p->io_priority_class);
  free(p->exec_cpu_affinity_initial);
  free(p->exec_cpu_affinity_final);
}

void hv_oci_process_free(struct hv_oci_process *p) {
  if (!p)
    return;
  process_clear(p);
  free(p);
}

void hv_oci_resources_clear(struct hv_oci_resources *r) {
  if (!r)
    return;
  for (size_t i = 0; r->devices && i < r->n_devices; i++)
    free(r->devices[i].access);
  free(r->devices);
  free(r->cpu.cpus);
  free(r->cpu.mems);
  free(r->block_io.weight_device);
  free(r->block_io.throttle_read_bps);
  free(r->block_io.throttle_write_bps);
  free(r->block_io.throttle_read_iops);
  free(r->block_io.throttle_write_iops);
  for (size_t i = 0; r->hugepage_limits && i < r->n_hugepage_limits; i++)
    free(r->hugepage_limits[i].page_size);
  free(r->hugepage_limits);
  for (size_t i = 0; r->network.priorities && i < r->network.n_priorities; i++)
    free(r->network.priorities[i].name);
  free(r->network.priorities);
  hv_oci_keyvals_free(r->unified, r->n_unified);
  *r = (struct hv_oci_resources){0};
}

void hv_oci_seccomp_free(struct hv_oci_seccomp *s) {
  if (!s)
    return;
  free(s->default_action);
  hv_strv_free(s->architectures);
  hv_strv_free(s->flags);
  free(s->listener_path);
  free(s->listener_metadata);
  for (size_t i = 0; s->syscalls && i < s->n_syscalls; i++) {
    struct hv_oci_seccomp_syscall *sc = &s->syscalls[i];
    hv_strv_free(sc->names);
    free(sc->action);
    for (size_t k = 0; sc->args && k < sc->n_args; k++)
      free(sc->args[k].op);
    free(sc->args);
  }
  free(s->syscalls);
  free(s);
}

static void hook_list_free(struct hv_oci_hook *h, size_t n) {
  for (size_t i = 0; h && i < n; i++) {
    free(h[i].path);
    hv_strv_free(h[i].args);
    hv_strv_free(h[i].env);
  }
  free(h);
}

void hv_oci_hooks_clear(struct hv_oci_hooks *h) {
  hook_list_free(h->prestart, h->n_prestart);
  hook_list_free(h->create_runtime, h->n_create_runtime);
  hook_list_free(h->create_container, h->n_create_container);
  hook_list_free(h->start_container, h->n_start_container);
  hook_list_free(h->poststart, h->n_poststart);
  hook_list_free(h->poststop, h->n_poststop);
  *h = (struct hv_oci_hooks){0};
}

void hv_oci_free(struct hv_oci_config *c) {
  if (!c)
    return;
  free(c->oci_version);
  free(c->root.path);
  hv_oci_process_free(c->process);
  free(c->hostname);
  free(c->domainname);
  for (size_t i = 0; c->mounts && i < c->n_mounts; i++) {
    struct hv_oci_mount *m = &c->mounts[i];
    free(m->destination);
    free(m->type);
    free(m->source);
    hv_strv_free(m->options);
    free(m->uid_mappings);
    free(m->gid_mappings);
  }
  free(c->mounts);
  hv_oci_hooks_clear(&c->hooks);
  hv_oci_keyvals_free(c->annotations, c->n_annotations);
  for (size_t i = 0; c->linux.namespaces && i < c->linux.n_namespaces; i++) {
    free(c->linux.namespaces[i].type);
    free(c->linux.namespaces[i].path);
  }
  free(c->linux.namespaces);
  free(c->linux.uid_mappings);
  free(c->linux.gid_mappings);
  hv_oci_keyvals_free(c->linux.time_offsets, c->linux.n_time_offsets);
  for (size_t i = 0; c->linux.devices && i < c->linux.n_devices; i++)
    free(c->linux.devices[i].path);
  free(c->linux.devices);
  free(c->linux.cgroups_path);
  hv_oci_resources_clear(&c->linux.resources);
  free(c->linux.rootfs_propagation);
  hv_oci_keyvals_free(c->linux.sysctl, c->linux.n_sysctl);
  hv_oci_seccomp_free(c->linux.seccomp);
  hv_strv_free(c->linux.masked_paths);
  hv_strv_free(c->linux.readonly_paths);
  free(c->linux.mount_label);
  hv_strv_free(c->linux.intel_rdt_unused.flags);
  free(c->linux.personality_domain);
  json_decref(c->raw);
  free(c->bundle);
  free(c);
}

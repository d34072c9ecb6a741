/* backend.c: choose the container (ns/) or VM (vm/) backend.
 *
 * The backends live in other folders that may be left out of a build
 * (LIB_DIRS) or not written yet, so by default they are weak references
 * and a missing one reads as "not built in".  A weak reference alone
 * would never pull the backend's object out of libhvrun.a, though, so
 * runtime/module.mk defines HV_HAVE_BACKEND_CONTAINER / _VM when the
 * folder in the build defines the symbol, and then the reference is a
 * normal (strong) one. */
#include "runtime.h"
#include <string.h>

#ifndef HV_HAVE_BACKEND_CONTAINER
#pragma weak hv_backend_container
#endif
#ifndef HV_HAVE_BACKEND_VM
#pragma weak hv_backend_vm
#endif

#define BACKEND_ANNOTATION "org.hvrun.backend"

const struct hv_backend *hv_backend_by_name(const char *name) {
  if (!name)
    return NULL;
  if (strcmp(name, "container") == 0)
    return &hv_backend_container;
  if (strcmp(name, "vm") == 0)
    return &hv_backend_vm;
  return NULL;
}

const struct hv_backend *hv_backend_select(const char *flag, const struct hv_oci_config *cfg,
                                           hv_error_t *err) {
  const char *name = "container", *source = NULL;
  if (flag && *flag) {
    name = flag;
    source = "--backend";
  } else if (cfg && hv_oci_annotation(cfg, BACKEND_ANNOTATION)) {
    name = hv_oci_annotation(cfg, BACKEND_ANNOTATION);
    source = "annotation " BACKEND_ANNOTATION;
  }
  if (strcmp(name, "container") != 0 && strcmp(name, "vm") != 0) {
    hv_error(err, 0, "%s: unknown backend \"%s\" (expected container or vm)", source, name);
    return NULL;
  }
  const struct hv_backend *b = hv_backend_by_name(name);
  if (!b) {
    hv_error(err, 0, "backend %s is not built in", name);
    return NULL;
  }
  return b;
}

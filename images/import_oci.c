/* import_oci.c: OCI image layouts (a directory, or an oci-archive staged
 * into one): oci-layout + index.json, platform selection in (possibly
 * nested) indexes, then the chosen manifest. */
#include "store_internal.h"
#include <errno.h>
#include <string.h>

#define META_MAX (16u << 20)

struct platform { char os[64], arch[64], variant[64]; };

static int parse_platform(const char *s, struct platform *p, hv_error_t *err) {
  memset(p, 0, sizeof *p);
  if (!s)
    s = "linux/amd64";
  const char *a = strchr(s, '/');
  const char *v = a ? strchr(a + 1, '/') : NULL;
  if (!a || a == s || !a[1] || (v && (!v[1] || v == a + 1)) || strlen(s) > 120 ||
      (v && strchr(v + 1, '/')))
    return hv_error(err, 0, "--platform `%s`: want os/arch[/variant], e.g. linux/amd64", s);
  snprintf(p->os, sizeof p->os, "%.*s", (int)(a - s), s);
  snprintf(p->arch, sizeof p->arch, "%.*s", (int)(v ? v - a - 1 : (long)strlen(a + 1)), a + 1);
  if (v)
    snprintf(p->variant, sizeof p->variant, "%s", v + 1);
  return 0;
}

static bool platform_match(json_t *jp, const struct platform *want) {
  if (!json_is_object(jp))
    return true; /* no platform: a single-platform layout */
  const char *os = json_string_value(json_object_get(jp, "os"));
  const char *arch = json_string_value(json_object_get(jp, "architecture"));
  const char *variant = json_string_value(json_object_get(jp, "variant"));
  return os && arch && !strcmp(os, want->os) && !strcmp(arch, want->arch) &&
         (!want->variant[0] || (variant && !strcmp(variant, want->variant)));
}

static bool is_index_mt(const char *mt) {
  return mt && (!strcmp(mt, HV_MT_OCI_INDEX) || !strcmp(mt, HV_MT_DOCKER_LIST));
}
static bool is_manifest_mt(const char *mt) {
  return mt && (!strcmp(mt, HV_MT_OCI_MANIFEST) || !strcmp(mt, HV_MT_DOCKER_MANIFEST));
}

/* Pick the manifest descriptor for `want` out of an index (recursing into
 * nested indexes).  Returns a new reference to the descriptor. */
static int select_manifest(struct hv_import_ctx *c, json_t *index, const char *what,
                           const struct platform *want, int depth, json_t **out,
                           hv_error_t *err) {
  json_t *ms = json_object_get(index, "manifests");
  if (!json_is_array(ms))
    return hv_error(err, 0, "%s: %s: missing \"manifests\" array", c->src_name, what);
  if (!json_array_size(ms))
    return hv_error(err, 0, "%s: %s: the index lists no manifests", c->src_name, what);
  size_t i;
  json_t *d, *chosen = NULL;
  const char *unknown = NULL;
  cleanup_free char *available = hv_xstrdup("");
  json_array_foreach(ms, i, d) {
    const char *mt = json_string_value(json_object_get(d, "mediaType"));
    if (!is_index_mt(mt) && !is_manifest_mt(mt)) {
      unknown = mt ? mt : "(missing)";
      continue;
    }
    json_t *jp = json_object_get(d, "platform");
    if (platform_match(jp, want)) {
      if (!chosen)
        chosen = d;
      else if (!jp)
        hv_warn("%s: %s lists several manifests; importing the first", c->src_name, what);
    } else {
      char *n = hv_xasprintf("%s%s%s/%s", available, *available ? ", " : "",
                             json_string_value(json_object_get(jp, "os")) ?: "?",
                             json_string_value(json_object_get(jp, "architecture")) ?: "?");
      free(available);
      available = n;
    }
  }
  if (!chosen) {
    if (unknown && !*available)
      return hv_error(err, 0, "%s: %s: unknown media type `%s`", c->src_name, what, unknown);
    return hv_error(err, 0, "%s: %s: no manifest for platform %s/%s%s%s (available: %s)",
                    c->src_name, what, want->os, want->arch, want->variant[0] ? "/" : "",
                    want->variant, *available ? available : "none");
  }
  const char *mt = json_string_value(json_object_get(chosen, "mediaType"));
  if (!is_index_mt(mt)) {
    *out = json_incref(chosen);
    return 0;
  }
  if (depth >= 4)
    return hv_error(err, 0, "%s: indexes nested too deeply", c->src_name);
  const char *dg = json_string_value(json_object_get(chosen, "digest"));
  json_t *sz = json_object_get(chosen, "size");
  cleanup_free char *text = NULL;
  size_t len = 0;
  if (hv_import_meta_blob(c, dg, json_is_integer(sz) ? json_integer_value(sz) : -1, &text, &len,
                          err) < 0)
    return -1;
  json_error_t je;
  cleanup_json json_t *nested = json_loadb(text, len, 0, &je);
  if (!nested)
    return hv_error(err, 0, "%s: index %s: invalid JSON at line %d: %s", c->src_name, dg, je.line,
                    je.text);
  cleanup_free char *nwhat = hv_xasprintf("index %s", dg);
  return select_manifest(c, nested, nwhat, want, depth + 1, out, err);
}

int hv_import_oci(struct hv_import_ctx *c, hv_error_t *err) {
  struct platform want;
  if (parse_platform(c->o->platform, &want, err) < 0)
    return -1;
  cleanup_free char *layout = NULL, *itext = NULL;
  size_t llen = 0, ilen = 0;
  if (hv_read_at(c->srcfd, "oci-layout", 4096, &layout, &llen, err) < 0)
    return hv_error_wrap(err, "%s: not an OCI image layout", c->src_name);
  json_error_t je;
  cleanup_json json_t *lj = json_loadb(layout, llen, 0, &je);
  if (!json_is_string(json_object_get(lj, "imageLayoutVersion")))
    return hv_error(err, 0, "%s: oci-layout: missing imageLayoutVersion", c->src_name);
  if (hv_read_at(c->srcfd, "index.json", 16u << 20, &itext, &ilen, err) < 0)
    return hv_error_wrap(err, "%s", c->src_name);
  cleanup_json json_t *index = json_loadb(itext, ilen, 0, &je);
  if (!index)
    return hv_error(err, 0, "%s: index.json: invalid JSON at line %d: %s", c->src_name, je.line,
                    je.text);
  const char *imt = json_string_value(json_object_get(index, "mediaType"));
  if (imt && !is_index_mt(imt))
    return hv_error(err, 0, "%s: index.json: unknown media type `%s`", c->src_name, imt);
  cleanup_json json_t *desc = NULL;
  if (select_manifest(c, index, "index.json", &want, 0, &desc, err) < 0)
    return -1;
  /* The name recorded with the top-level entry (containerd writes the full
   * name separately; ref.name may be a full reference or just a tag). */
  json_t *ms = json_object_get(index, "manifests");
  size_t i;
  json_t *d;
  json_array_foreach(ms, i, d) {
    json_t *ann = json_object_get(d, "annotations");
    const char *n = json_string_value(json_object_get(ann, "io.containerd.image.name"));
    if (!n)
      n = json_string_value(json_object_get(ann, "org.opencontainers.image.ref.name"));
    if (n && !c->default_name)
      c->default_name = hv_xstrdup(n);
  }

  const char *dg = json_string_value(json_object_get(desc, "digest"));
  json_t *sz = json_object_get(desc, "size");
  cleanup_free char *mtext = NULL, *ctext = NULL;
  size_t mlen = 0, clen = 0;
  if (hv_import_meta_blob(c, dg, json_is_integer(sz) ? json_integer_value(sz) : -1, &mtext,
                          &mlen, err) < 0)
    return -1;
  c->img = hv_xmalloc0(sizeof *c->img);
  c->img->digest = hv_xstrdup(dg);
  cleanup_free char *what = hv_xasprintf("%s: manifest %s", c->src_name, dg);
  if (hv_manifest_parse(mtext, mlen, what, c->img, err) < 0 ||
      hv_import_meta_blob(c, c->img->config_digest, c->img->config_size, &ctext, &clen, err) < 0 ||
      hv_image_attach_config(c->img, ctext, clen, err) < 0)
    return -1;
  return hv_import_manifest_layers(c, err);
}

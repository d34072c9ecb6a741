/* import_docker.c: docker-archive (`docker save`, `podman save --format
 * docker-archive`), staged into a directory: manifest.json names the config
 * file and the layer tars.  The image is stored as an OCI manifest whose
 * layer digests are computed while ingesting; each layer must match the
 * config's diff id. */
#include "store_internal.h"
#include <errno.h>
#include <string.h>

int hv_import_docker(struct hv_import_ctx *c, hv_error_t *err) {
  cleanup_free char *text = NULL, *ctext = NULL;
  size_t len = 0, clen = 0;
  if (hv_read_at(c->srcfd, "manifest.json", 16u << 20, &text, &len, err) < 0)
    return hv_error_wrap(err, "%s", c->src_name);
  json_error_t je;
  cleanup_json json_t *doc = json_loadb(text, len, 0, &je);
  if (!doc)
    return hv_error(err, 0, "%s: manifest.json: invalid JSON at line %d: %s", c->src_name,
                    je.line, je.text);
  if (!json_is_array(doc) || !json_array_size(doc))
    return hv_error(err, 0, "%s: manifest.json: expected a non-empty array", c->src_name);
  if (json_array_size(doc) > 1)
    hv_warn("%s: manifest.json lists %zu images; importing the first", c->src_name,
            json_array_size(doc));
  json_t *m = json_array_get(doc, 0);
  const char *config = json_string_value(json_object_get(m, "Config"));
  json_t *layers = json_object_get(m, "Layers");
  if (!config)
    return hv_error(err, 0, "%s: manifest.json[0].Config: missing", c->src_name);
  if (!json_is_array(layers))
    return hv_error(err, 0, "%s: manifest.json[0].Layers: missing", c->src_name);
  const char *tag = json_string_value(json_array_get(json_object_get(m, "RepoTags"), 0));
  if (tag)
    c->default_name = hv_xstrdup(tag);

  hv_error_t rerr = NULL;
  if (hv_read_at(c->srcfd, config, 16u << 20, &ctext, &clen, &rerr) < 0) {
    if (rerr->errno_ == ENOENT) {
      hv_error_release(&rerr);
      return hv_error(err, 0, "%s: config `%s` is missing", c->src_name, config);
    }
    *err = rerr;
    return hv_error_wrap(err, "%s", c->src_name);
  }
  char cdig[72];
  if (hv_import_put_blob(c, ctext, clen, cdig, err) < 0)
    return -1;
  struct hv_image *img = c->img = hv_xmalloc0(sizeof *img);
  img->config_digest = hv_xstrdup(cdig);
  img->config_size = (int64_t)clen;
  img->n_layers = json_array_size(layers);
  img->layers = hv_xmalloc0((img->n_layers + 1) * sizeof *img->layers);
  if (hv_image_attach_config(img, ctext, clen, err) < 0)
    return hv_error_wrap(err, "%s", c->src_name);

  json_t *ldescs = json_array();
  cleanup_json json_t *man = json_pack(
      "{s:i,s:s,s:{s:s,s:s,s:I},s:o}", "schemaVersion", 2, "mediaType", HV_MT_OCI_MANIFEST,
      "config", "mediaType", HV_MT_OCI_CONFIG, "digest", cdig, "size", (json_int_t)clen,
      "layers", ldescs);
  for (size_t i = 0; i < img->n_layers; i++) {
    const char *path = json_string_value(json_array_get(layers, i));
    if (!path)
      return hv_error(err, 0, "%s: manifest.json[0].Layers[%zu]: expected a path", c->src_name, i);
    struct hv_layer_desc *l = &img->layers[i];
    for (size_t k = 0; k < i; k++) /* the same tar listed twice: already moved */
      if (!strcmp(path, json_string_value(json_array_get(layers, k))) &&
          !strcmp(l->diff_id, img->layers[k].diff_id)) {
        l->digest = hv_xstrdup(img->layers[k].digest);
        l->media_type = hv_xstrdup(img->layers[k].media_type);
        l->size = img->layers[k].size;
        break;
      }
    if (!l->digest && hv_import_layer(c, path, l, err) < 0)
      return -1;
    json_array_append_new(ldescs, json_pack("{s:s,s:s,s:I}", "mediaType", l->media_type,
                                            "digest", l->digest, "size", (json_int_t)l->size));
  }
  cleanup_free char *mtext = json_dumps(man, JSON_COMPACT | JSON_SORT_KEYS);
  char mdig[72];
  if (hv_import_put_blob(c, mtext, strlen(mtext), mdig, err) < 0)
    return -1;
  img->digest = hv_xstrdup(mdig);
  return 0;
}

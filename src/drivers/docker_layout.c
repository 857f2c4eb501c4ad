/*
 * docker_layout: the OCI image layout of one repository:reference as the docker driver
 * shows it (include/upstreamfs/oci_layout.h) — the blobs its manifests name (the manifest
 * or index, each platform's manifest and config, each layer), found one by one or listed,
 * and its generated index.json. See docker.c for the driver's design.
 */
#include "upstreamfs/driver.h"
#include "upstreamfs/fetch.h"
#include "upstreamfs/index.h"
#include "upstreamfs/log.h"
#include "upstreamfs/oci.h"
#include "upstreamfs/upstream.h"

#include "docker_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* Visits one blob of the layout. Returns 1 when the search is over, 0 to go on, or -errno. */
static int visit(struct upstream *u, const char *repo, const char *digest, int64_t size,
                 const char *mt, bool manifest, struct dk_walk *w)
{
    const char *hex = digest + 7;
    if (w->want && strcmp(hex, w->want) != 0)
        return 0;
    for (size_t i = 0; w->list && i < w->list->n; i++)
        if (strcmp(w->list->items[i].name, hex) == 0)
            return 0; /* layers shared between platforms are listed once */
    struct drv_entry e = {.kind = NODE_FILE,
                          .size = size,
                          .expect = (char *)digest,
                          .content_type = (char *)mt,
                          .is_mutable = false};
    int rc = dk_reg_url(u, &e.url, "%s/%s/%s", repo, manifest ? "manifests" : "blobs", digest);
    if (rc < 0)
        return rc;
    if (w->want) {
        w->found->kind = NODE_FILE;
        w->found->size = size;
        w->found->url = e.url;
        w->found->expect = strdup(digest);
        w->found->content_type = mt ? strdup(mt) : NULL;
        w->found->is_mutable = false;
        rc = w->found->expect ? 1 : -ENOMEM;
    } else {
        rc = drv_listing_add(w->list, hex, &e);
        free(e.url);
    }
    return rc;
}

static int visit_desc(struct upstream *u, const char *repo, const struct oci_desc *d, bool manifest,
                      struct dk_walk *w)
{
    return visit(u, repo, d->digest, d->size, d->media_type, manifest, w);
}

/* The config and layers of an image manifest. */
static int visit_image(struct upstream *u, const char *repo, const struct oci_manifest *m,
                       struct dk_walk *w)
{
    int rc = visit_desc(u, repo, &m->config, false, w);
    for (size_t i = 0; rc == 0 && i < m->n_layers; i++)
        rc = visit_desc(u, repo, &m->layers[i], false, w);
    return rc;
}

/*
 * Visits every blob of repo:ref's layout, fetching manifests only as far as
 * the search needs (docker_impl.h): the top document first (from the HEAD's answer when
 * that says enough), then each (platform-filtered) child and its blobs.
 * Nested indexes are listed but not expanded. Returns 0 (found or all
 * visited) or -errno.
 */
int dk_walk_image(struct upstream *u, const char *repo, const char *ref,
                  const struct dk_resolved *res, struct dk_walk *w)
{
    const char *filter = upstream_platform_filter(u);
    struct oci_manifest m;
    int64_t size = -1;
    int rc = 0;
    bool top_done = false;
    if (res->size >= 0 && res->mt[0] && (!filter || oci_media_type_is_manifest(res->mt))) {
        rc = visit(u, repo, res->digest, res->size, res->mt, true, w);
        if (rc != 0)
            return rc < 0 ? rc : 0;
        top_done = true;
    }
    rc = dk_load_manifest(u, repo, res->digest, res->mt[0] ? res->mt : NULL, &m, &size);
    if (rc < 0)
        return rc;
    if (!top_done && (!filter || m.kind == OCI_KIND_MANIFEST))
        rc = visit(u, repo, res->digest, size, m.media_type, true, w);
    if (rc == 0 && m.kind == OCI_KIND_MANIFEST)
        rc = visit_image(u, repo, &m, w);
    for (size_t i = 0; rc == 0 && m.kind == OCI_KIND_INDEX && i < m.n_manifests; i++) {
        const struct oci_desc *c = &m.manifests[i];
        if (filter && !(c->has_platform && oci_platform_match(filter, &c->platform)))
            continue;
        rc = visit_desc(u, repo, c, true, w);
        if (rc != 0 || oci_media_type_is_index(c->media_type))
            continue;
        struct oci_manifest cm;
        rc = dk_load_manifest(u, repo, c->digest, c->media_type, &cm, NULL);
        if (rc < 0)
            break;
        if (cm.kind == OCI_KIND_MANIFEST)
            rc = visit_image(u, repo, &cm, w);
        oci_manifest_clear(&cm);
    }
    oci_manifest_clear(&m);
    (void)ref;
    return rc < 0 ? rc : 0;
}

/* ---- index.json ---------------------------------------------------------------------------- */

static json_t *desc_json(const char *mt, const char *digest, int64_t size,
                         const struct oci_platform *pl, const char *tag)
{
    json_t *d = json_object();
    if (!d)
        return NULL;
    json_object_set_new(d, "mediaType", json_string(mt && mt[0] ? mt : OCI_MT_OCI_MANIFEST));
    json_object_set_new(d, "digest", json_string(digest));
    json_object_set_new(d, "size", json_integer((json_int_t)size));
    if (pl) {
        json_t *p = json_object();
        json_object_set_new(p, "architecture", json_string(pl->arch));
        json_object_set_new(p, "os", json_string(pl->os));
        if (pl->variant)
            json_object_set_new(p, "variant", json_string(pl->variant));
        json_object_set_new(d, "platform", p);
    }
    if (tag) {
        json_t *a = json_object();
        json_object_set_new(a, "org.opencontainers.image.ref.name", json_string(tag));
        json_object_set_new(d, "annotations", a);
    }
    return d;
}

int dk_make_index_json(struct upstream *u, const char *repo, const char *ref, char **body,
                       size_t *len, bool *stale)
{
    const char *filter = upstream_platform_filter(u);
    const char *tag = oci_digest_valid(ref) ? NULL : ref;
    struct dk_resolved res;
    struct oci_manifest m;
    bool loaded = false;
    int rc = dk_image_check(u, repo, ref, &res);
    if (rc < 0)
        return rc;
    json_t *arr = json_array();
    json_t *root = json_object();
    if (!arr || !root) {
        rc = -ENOMEM;
        goto out;
    }
    if (!filter || oci_media_type_is_manifest(res.mt)) {
        json_array_append_new(arr, desc_json(res.mt, res.digest, res.size, NULL, tag));
    } else {
        int64_t size = -1;
        rc = dk_load_manifest(u, repo, res.digest, res.mt, &m, &size);
        if (rc < 0)
            goto out;
        loaded = true;
        if (m.kind == OCI_KIND_MANIFEST) {
            json_array_append_new(arr, desc_json(m.media_type, res.digest, size, NULL, tag));
        } else {
            for (size_t i = 0; i < m.n_manifests; i++) {
                const struct oci_desc *c = &m.manifests[i];
                if (c->has_platform && oci_platform_match(filter, &c->platform))
                    json_array_append_new(
                        arr, desc_json(c->media_type, c->digest, c->size, &c->platform, tag));
            }
        }
    }
    json_object_set_new(root, "schemaVersion", json_integer(2));
    json_object_set_new(root, "mediaType", json_string(OCI_MT_OCI_INDEX));
    json_object_set(root, "manifests", arr);
    *body = json_dumps(root, JSON_COMPACT);
    if (!*body) {
        rc = -ENOMEM;
        goto out;
    }
    *len = strlen(*body);
    *stale = res.stale;
out:
    if (loaded)
        oci_manifest_clear(&m);
    json_decref(arr);
    json_decref(root);
    return rc;
}

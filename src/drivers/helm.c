/*
 * helm: a classic Helm chart repository (an index.yaml plus chart archives).
 *
 *   index.yaml                  the upstream index, rewritten so that every
 *                               chart URL is relative: charts/<name>-<version>.tgz
 *   charts/<name>-<version>.tgz each chart, wherever the upstream hosts it
 *                               (relative, or absolute on another host), verified
 *                               against the index's digest
 *
 * The upstream index is a mutable document (TTL, conditional revalidation,
 * stale-if-error through upstream_doc_get). It is parsed and re-emitted by
 * src/parsers/helm_index.c, so everything but the URLs passes through unchanged.
 * The parsed chart table is cached per proxy, keyed by the index's sha256.
 */
#include "upstreamfs/driver.h"
#include "upstreamfs/fetch.h"
#include "upstreamfs/hash.h"
#include "upstreamfs/helm.h"
#include "upstreamfs/index.h"
#include "upstreamfs/log.h"
#include "upstreamfs/upstream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The chart table of the index last read (the driver's state slot), keyed by its sha256. */
struct chart_table {
    char index_sha[65];
    struct helm_charts c;
};

static void table_free(void *p)
{
    struct chart_table *t = p;
    if (!t)
        return;
    helm_charts_clear(&t->c);
    free(t);
}

/*
 * Makes upstream_state(u) the chart table of the current index (parsing it only
 * when it changed). Callers then read the table under the state lock.
 */
static int load_table(struct upstream *u)
{
    char url[4200], *raw = NULL;
    size_t rlen = 0;
    bool stale;
    snprintf(url, sizeof(url), "%sindex.yaml", upstream_config(u)->url);
    int rc = upstream_doc_get(u, url, &raw, &rlen, &stale);
    if (rc < 0)
        return rc;
    char sha[65];
    hash_sha256_hex(raw, rlen, sha);
    upstream_state_lock(u);
    struct chart_table *t = upstream_state(u);
    bool current = t && strcmp(t->index_sha, sha) == 0;
    upstream_state_unlock(u);
    if (current) {
        free(raw);
        return 0;
    }
    t = calloc(1, sizeof(*t));
    if (!t) {
        free(raw);
        return -ENOMEM;
    }
    memcpy(t->index_sha, sha, sizeof(sha));
    rc = helm_index_charts(raw, rlen, upstream_config(u)->url, &t->c);
    free(raw);
    if (rc < 0) {
        table_free(t);
        return rc;
    }
    upstream_state_lock(u);
    upstream_set_state(u, t, table_free);
    upstream_state_unlock(u);
    return 0;
}

static int helm_lookup(struct upstream *u, const char *path, struct drv_entry *out)
{
    if (strcmp(path, "index.yaml") == 0)
        return drv_entry_generated(u, path, NULL, out);
    if (strcmp(path, "charts") == 0) {
        out->kind = NODE_DIR;
        return 0;
    }
    if (strncmp(path, "charts/", 7) != 0 || strchr(path + 7, '/'))
        return -ENOENT;
    struct chart_table *t;
    int rc = load_table(u);
    if (rc < 0)
        return rc;
    rc = -ENOENT;
    upstream_state_lock(u);
    t = upstream_state(u);
    for (size_t i = 0; t && i < t->c.n; i++) {
        if (!t->c.charts[i].file || strcmp(t->c.charts[i].file, path + 7) != 0)
            continue;
        out->kind = NODE_FILE;
        out->url = strdup(t->c.charts[i].url);
        out->size = -1;
        out->is_mutable = false;
        if (t->c.charts[i].digest) {
            char ex[100];
            snprintf(ex, sizeof(ex), "sha256:%.64s", t->c.charts[i].digest);
            out->expect = strdup(ex);
        }
        rc = out->url ? 0 : -ENOMEM;
        break;
    }
    upstream_state_unlock(u);
    if (rc == 0)
        drv_entry_size_from_head(u, out); /* the index has no sizes */
    return rc;
}

static int helm_list(struct upstream *u, const char *dir, struct drv_listing *out)
{
    struct drv_entry e = {0};
    if (!dir[0]) {
        e.kind = NODE_DIR;
        int rc = drv_listing_add(out, "charts", &e);
        if (rc == 0) {
            e.kind = NODE_FILE;
            e.is_mutable = true;
            e.size = -1;
            rc = drv_listing_add(out, "index.yaml", &e);
        }
        return rc;
    }
    if (strcmp(dir, "charts") != 0)
        return -ENOTSUP;
    struct chart_table *t;
    int rc = load_table(u);
    if (rc < 0)
        return rc;
    upstream_state_lock(u);
    t = upstream_state(u);
    for (size_t i = 0; t && i < t->c.n && rc == 0; i++) {
        char ex[100];
        if (!t->c.charts[i].file)
            continue;
        e.kind = NODE_FILE;
        e.size = -1;
        e.url = t->c.charts[i].url;
        e.expect = NULL;
        if (t->c.charts[i].digest) {
            snprintf(ex, sizeof(ex), "sha256:%.64s", t->c.charts[i].digest);
            e.expect = ex;
        }
        rc = drv_listing_add(out, t->c.charts[i].file, &e);
    }
    upstream_state_unlock(u);
    return rc;
}

static int helm_generate(struct upstream *u, const char *path, char **body, size_t *len,
                         bool *stale)
{
    if (strcmp(path, "index.yaml") != 0)
        return -ENOENT;
    char *raw = NULL;
    size_t rlen = 0;
    char url[4200];
    snprintf(url, sizeof(url), "%sindex.yaml", upstream_config(u)->url);
    int rc = upstream_doc_get(u, url, &raw, &rlen, stale);
    if (rc < 0)
        return rc;
    rc = helm_rewrite_index(raw, rlen, upstream_config(u)->url, body, len);
    free(raw);
    return rc;
}

const struct driver_ops driver_helm = {
    .type = "helm",
    .lookup = helm_lookup,
    .list = helm_list,
    .generate = helm_generate,
};

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
 * The parsed chart table of the current index is kept (drv_doc_use), keyed by the
 * index's sha256: a lookup of a chart reads the index's bytes only when it changed.
 */
#include "upstreamfs/driver.h"
#include "upstreamfs/fetch.h"
#include "upstreamfs/helm.h"
#include "upstreamfs/index.h"
#include "upstreamfs/log.h"
#include "upstreamfs/policy.h"
#include "upstreamfs/upstream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the upstream index is parsed from (drv_doc_use). */
struct charts_src {
    const char *repo_url;
    const struct upstream_doc *d;
};

static void charts_free(void *p)
{
    if (p)
        helm_charts_clear(p);
    free(p);
}

static int charts_parse(void *arg, void **parsed)
{
    const struct charts_src *src = arg;
    struct helm_charts *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    int rc = helm_index_charts(src->d->body, src->d->len, src->repo_url, c);
    if (rc < 0) {
        charts_free(c);
        return rc;
    }
    *parsed = c;
    return 0;
}

/*
 * Runs use on the chart table of the current index (struct helm_charts, read and parsed only
 * when the index changed: drv_doc_use), under the state lock.
 */
static int with_charts(struct upstream *u, int (*use)(void *charts, void *arg), void *arg)
{
    char url[4200];
    struct upstream_doc d = {0};
    snprintf(url, sizeof(url), "%sindex.yaml", upstream_config(u)->url);
    struct upstream_doc_req req = {.url = url};
    struct charts_src src = {.repo_url = upstream_config(u)->url, .d = &d};
    int rc = drv_doc_use(u, &req, &d, "index.yaml", charts_parse, &src, charts_free, use, arg);
    upstream_doc_clear(&d);
    return rc;
}

/* A chart's expectation, "sha256:<hex>", into ex (100 bytes); NULL when it has no digest. */
static const char *chart_expect(const struct helm_chart *c, char *ex)
{
    if (!c->digest)
        return NULL;
    snprintf(ex, 100, "sha256:%.64s", c->digest);
    return ex;
}

struct chart_query {
    const char *file;
    struct drv_entry *out;
};

static int chart_find(void *charts, void *arg)
{
    const struct helm_charts *t = charts;
    const struct chart_query *q = arg;
    for (size_t i = 0; i < t->n; i++) {
        char ex[100];
        const struct helm_chart *c = &t->charts[i];
        if (!c->file || strcmp(c->file, q->file) != 0)
            continue;
        const char *expect = chart_expect(c, ex);
        q->out->kind = NODE_FILE;
        q->out->size = -1;
        q->out->is_mutable = false;
        q->out->url = strdup(c->url);
        q->out->expect = expect ? strdup(expect) : NULL;
        return q->out->url && (q->out->expect || !expect) ? 0 : -ENOMEM;
    }
    return -ENOENT;
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
    struct chart_query q = {.file = path + 7, .out = out};
    int rc = with_charts(u, chart_find, &q);
    if (rc == 0)
        drv_entry_size_from_head(u, out); /* the index has no sizes */
    return rc;
}

static int charts_list(void *charts, void *arg)
{
    const struct helm_charts *t = charts;
    int rc = 0;
    for (size_t i = 0; i < t->n && rc == 0; i++) {
        char ex[100];
        const struct helm_chart *c = &t->charts[i];
        if (!c->file)
            continue;
        struct drv_entry e = {
            .kind = NODE_FILE, .size = -1, .url = c->url, .expect = (char *)chart_expect(c, ex)};
        rc = drv_listing_add(arg, c->file, &e);
    }
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
    return with_charts(u, charts_list, out);
}

/* A chart version the proxy's package rules refuse is left out of the index (docs/policy.md). */
static bool chart_hidden(void *arg, const char *name, const char *version)
{
    return policy_name_verdict(arg, name, version, NULL) == POLICY_DENIED;
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
    rc = helm_rewrite_index_filtered(raw, rlen, upstream_config(u)->url, chart_hidden,
                                     (void *)upstream_config(u), body, len);
    free(raw);
    return rc;
}

const struct driver_ops driver_helm = {
    .type = "helm",
    .lookup = helm_lookup,
    .list = helm_list,
    .generate = helm_generate,
};

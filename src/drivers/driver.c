/*
 * driver: the driver table and the small helpers every driver shares.
 */
#include "upstreamfs/driver.h"
#include "upstreamfs/config.h"
#include "upstreamfs/index.h"
#include "upstreamfs/upstream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void drv_entry_clear(struct drv_entry *e)
{
    free(e->name);
    free(e->url);
    free(e->expect);
    free(e->content_type);
    memset(e, 0, sizeof(*e));
}

void drv_listing_clear(struct drv_listing *l)
{
    for (size_t i = 0; i < l->n; i++)
        drv_entry_clear(&l->items[i]);
    free(l->items);
    memset(l, 0, sizeof(*l));
}

int drv_listing_add(struct drv_listing *l, const char *name, const struct drv_entry *e)
{
    if ((l->n & (l->n - 1)) == 0) { /* grow at powers of two */
        size_t cap = l->n ? l->n * 2 : 16;
        struct drv_entry *ni = realloc(l->items, cap * sizeof(*ni));
        if (!ni)
            return -ENOMEM;
        l->items = ni;
    }
    struct drv_entry *d = &l->items[l->n];
    *d = *e;
    d->name = strdup(name);
    d->url = e->url ? strdup(e->url) : NULL;
    d->expect = e->expect ? strdup(e->expect) : NULL;
    d->content_type = e->content_type ? strdup(e->content_type) : NULL;
    if (!d->name)
        return -ENOMEM;
    l->n++;
    return 0;
}

int drv_entry_generated(struct upstream *u, const char *path, const char *content_type,
                        struct drv_entry *out)
{
    char *body = NULL;
    size_t len = 0;
    bool stale = false;
    int rc = upstream_driver(u)->generate(u, path, &body, &len, &stale);
    free(body);
    if (rc < 0)
        return rc;
    out->kind = NODE_FILE;
    out->is_mutable = true;
    out->generated = true;
    out->size = (int64_t)len;
    if (content_type && !(out->content_type = strdup(content_type)))
        return -ENOMEM;
    return 0;
}

void drv_entry_size_from_head(struct upstream *u, struct drv_entry *e)
{
    struct fetch_response r;
    if (upstream_request(u, e->url, true, 0, &r) == 0 && r.status == 200)
        e->size = r.content_length;
    fetch_response_clear(&r);
}

const struct driver_ops *driver_for_type(int proxy_type)
{
    switch (proxy_type) {
    case PROXY_DOCKER:
        return &driver_docker;
    case PROXY_ECR:
        return &driver_ecr;
    case PROXY_MAVEN:
        return &driver_maven;
    case PROXY_HELM:
        return &driver_helm;
    case PROXY_GENERIC:
        return &driver_generic;
    case PROXY_NPM:
        return &driver_npm;
    case PROXY_PYPI:
        return &driver_pypi;
    default:
        /* Not a type (validation refuses it before it is stored): a plain tree. */
        return &driver_generic;
    }
}

/*
 * by_digest: a blob asked for by digest with no manifest first (the shim's
 * /v2/<key>/<repo>/blobs/<digest>, docs/SECURITY.md "Blob and file
 * scoping"). The object gets a node of its own, outside the mount's tree
 * (parent 0, as upstream.c's documents), whose URL is the blob at this
 * proxy's own upstream and whose expectation is the digest; opening it goes
 * through reader.c like any other file, so the store serves it only when
 * this proxy obtained it from that location, and otherwise it is downloaded
 * from this proxy's upstream (with its credentials), verified and recorded.
 * A 404 there is remembered for the proxy's negative TTL.
 */
#include "engine_i.h"
#include "upstreamfs/hash.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int engine__scope_check(struct engine *e, struct upstream *u, const struct node *n,
                        const char *hex, int64_t *size)
{
    char repo[4096];
    index_scope_repo(n->url, repo, sizeof(repo));
    pthread_mutex_lock(&e->mu);
    int rc = index_scope_has(e->ix, hex, n->top, repo);
    pthread_mutex_unlock(&e->mu);
    if (rc == 1 || !u || !u->drv->confirm || !n->url)
        return rc == 1 ? 1 : 0;
    /* The upstream's word now, with this proxy's credentials (a HEAD: no bytes move). */
    rc = u->drv->confirm(u, n->url, size);
    if (rc == -ENOENT)
        return -ENOENT;
    if (rc < 0)
        return 0; /* undecided: the download path reports the failure */
    pthread_mutex_lock(&e->mu);
    index_scope_add(e->ix, hex, n->top, repo);
    pthread_mutex_unlock(&e->mu);
    return 1;
}

/* The hidden node of key/repo@digest, created or refreshed from the driver's URL. */
static int blob_node(struct engine *e, const char *key, const char *repo, const char *digest,
                     struct engine_attr *out)
{
    struct upstream *u = engine__upstream(e, key);
    if (!u)
        return -ENOENT;
    char *url = NULL;
    int rc = u->drv->blob_url ? u->drv->blob_url(u, repo, digest, &url) : -ENOENT;
    upstream_unref(u);
    if (rc < 0)
        return rc;
    char name[CONFIG_KEY_MAX + 512], path[512];
    snprintf(path, sizeof(path), ".by-digest/%s@%s", repo, digest);
    snprintf(name, sizeof(name), "blob:%s/%s", key, path);
    struct node n = {0};
    pthread_mutex_lock(&e->mu);
    rc = index_child(e->ix, 0, name, &n);
    if (rc == 0 && n.kind == NODE_ABSENT && engine__now() < n.neg_until) {
        rc = -ENOENT; /* the upstream said 404 a moment ago */
    } else if (rc == 0 || rc == -ENOENT) {
        if (rc == -ENOENT)
            memset(&n, 0, sizeof(n));
        if (n.kind != NODE_FILE || !n.url || strcmp(n.url, url) != 0) {
            int64_t ino = n.ino; /* a 404 remembered earlier, or another URL: the same row */
            node_clear(&n);
            memset(&n, 0, sizeof(n));
            n.ino = ino;
            n.parent = 0;
            n.name = strdup(name);
            n.top = strdup(key);
            n.path = strdup(path);
            n.url = url;
            url = NULL;
            n.expect = strdup(digest);
            n.kind = NODE_FILE;
            n.size = -1;
            rc = n.name && n.top && n.path && n.expect ? index_put(e->ix, &n) : -ENOMEM;
        } else {
            rc = 0;
        }
        if (rc == 0)
            engine__attr_from_node(e, &n, out);
    }
    pthread_mutex_unlock(&e->mu);
    node_clear(&n);
    free(url);
    return rc;
}

int engine_blob(struct engine *e, const char *key, const char *repo, const char *digest,
                struct engine_attr *out)
{
    struct registry r;
    if (engine__registry(e, key, &r) < 0)
        return blob_node(e, key, repo, digest, out);
    /* A registry serves what any of its upstreams may serve, through that upstream: the
     * first whose upstream has it (404 moves on; any other failure ends the search). */
    int rc = -ENOENT;
    for (char **k = r.upstreams; k && *k && rc == -ENOENT; k++) {
        rc = blob_node(e, *k, repo, digest, out);
        if (rc < 0)
            continue;
        struct engine_file *f = NULL;
        bool keep = false, changed = false;
        rc = engine_file_open(e, out->ino, NULL, &f, &keep, &changed);
        if (rc == 0)
            engine_file_close(f);
    }
    config_registry_clear(&r);
    return rc;
}

int engine_blob_confirm(struct engine *e, int64_t ino, struct engine_attr *a)
{
    struct node n;
    struct hash_expect ex;
    int rc = engine__node_get(e, ino, &n);
    if (rc < 0)
        return rc;
    if (n.via) { /* a registry entry: its upstream's node decides */
        struct node un;
        char *via = strdup(n.via), *path = strdup(n.path);
        rc = via && path ? engine__resolve_node(e, via, path, &un) : -ENOMEM;
        free(via);
        free(path);
        node_clear(&n);
        if (rc < 0)
            return rc;
        n = un;
    }
    struct upstream *u = n.local ? NULL : engine__upstream(e, n.top);
    const char *hex = n.expect && hash_expect_parse(n.expect, &ex) == 0 && ex.algo == HASH_SHA256
                          ? ex.hex
                          : n.digest;
    int64_t size = -1;
    rc = 0;
    if (n.local)
        rc = 1; /* a registry's own content */
    else if (u && u->drv->confirm && hex[0])
        rc = engine__scope_check(e, u, &n, hex, &size);
    if (rc == 0) { /* no HEAD in this protocol: its own copy decides */
        struct engine_file *f = NULL;
        bool keep = false, changed = false;
        rc = engine_file_open(e, ino, NULL, &f, &keep, &changed);
        if (rc == 0) {
            rc = engine_file_wait(f, NULL);
            engine_file_close(f);
        }
    } else if (rc == 1 && n.size < 0) {
        if (size < 0)
            size = store_blob_size(&e->store, hex);
        pthread_mutex_lock(&e->mu);
        n.size = size; /* an unreferenced blob: its size from the upstream's answer */
        index_put(e->ix, &n);
        pthread_mutex_unlock(&e->mu);
    }
    upstream_unref(u);
    node_clear(&n);
    return rc < 0 ? rc : engine_getattr(e, ino, a);
}

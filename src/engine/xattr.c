/*
 * xattr: the user.upstreamfs.* extended attributes (engine_getxattr,
 * engine_listxattr; contracts in include/upstreamfs/engine.h): a file's
 * digest, source, cached state and staleness, any node's last failure, the
 * removed-upstream mark of a file or tag directory (src/engine/removals.c),
 * and a proxy's or registry's health on its top directory.
 */
#include "engine_i.h"
#include "upstreamfs/health.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How long a question about a file's content waits for a finished download's commit. */
#define XATTR_SETTLE_MS 5000

/* An xattr value (or list) of vl bytes into buf (len 0: its size only). */
static int xattr_copy(const char *val, size_t vl, char *buf, size_t len)
{
    if (len == 0)
        return (int)vl;
    if (len < vl)
        return -ERANGE;
    memcpy(buf, val, vl);
    return (int)vl;
}

/*
 * A registry's health: ok while its upstreams are; else the first one that
 * is not, named ("failing: upstream hubproxy: auth").
 */
static int registry_health(struct engine *e, const char *key, char *val, size_t len)
{
    struct registry r;
    if (engine__registry(e, key, &r) < 0)
        return -ENODATA;
    snprintf(val, len, "ok");
    for (char **k = r.upstreams; k && *k; k++) {
        struct health_snapshot h;
        char d[200];
        if (engine_proxy_health(e, *k, &h) < 0 || h.state == HEALTH_OK)
            continue;
        if (h.cause != FAILURE_NONE && h.state != HEALTH_OFFLINE)
            snprintf(d, sizeof(d), "%s", failure_cause_name(h.cause));
        else
            health_describe(&h, d, sizeof(d));
        snprintf(val, len, "failing: upstream %s: %s", *k, d);
        break;
    }
    config_registry_clear(&r);
    return 0;
}

/*
 * user.upstreamfs.error of any node whose last fetch failed, and
 * user.upstreamfs.health of a proxy's or a registry's top directory.
 */
static int failure_xattr(struct engine *e, const struct node *n, const char *name, char *val,
                         size_t len)
{
    if (strcmp(name, "user.upstreamfs.error") == 0)
        return engine_node_error(e, n->ino, val, len);
    if (n->kind != NODE_DIR || n->parent != INDEX_ROOT_INO || !n->top)
        return -ENODATA;
    struct health_snapshot h;
    if (engine__is_registry(e, n->top))
        return registry_health(e, n->top, val, len);
    if (engine_proxy_health(e, n->top, &h) < 0)
        return -ENODATA;
    health_describe(&h, val, len);
    return 0;
}

int engine_getxattr(struct engine *e, int64_t ino, const char *name, char *buf, size_t len)
{
    struct node n;
    char val[4200];
    /*
     * Only user.* attributes exist here: security.*, system.* (ACLs) and trusted.* are not
     * supported, which tools take to heart per file system (ls -l stops asking every file for
     * its ACL and security label after the first: two round trips per listing, not two per file).
     */
    if (strncmp(name, "user.", 5) != 0)
        return -EOPNOTSUPP;
    if (strncmp(name, "user.upstreamfs.", 16) != 0)
        return -ENODATA;
    int rc = engine__node_get(e, ino, &n);
    if (rc < 0)
        return rc;
    if (strcmp(name, "user.upstreamfs.removed") == 0) {
        rc = engine__removed_xattr(e, n.ino, val, sizeof(val));
        node_clear(&n);
        return rc < 0 ? rc : xattr_copy(val, strlen(val), buf, len);
    }
    if (strcmp(name, "user.upstreamfs.error") == 0 || strcmp(name, "user.upstreamfs.health") == 0) {
        rc = failure_xattr(e, &n, name, val, sizeof(val));
        node_clear(&n);
        return rc < 0 ? rc : xattr_copy(val, strlen(val), buf, len);
    }
    if (n.kind != NODE_FILE) {
        node_clear(&n);
        return -ENODATA;
    }
    if (n.via && !n.local) {
        struct node un;
        pthread_mutex_lock(&e->mu);
        rc = index_find(e->ix, n.via, n.path, &un);
        pthread_mutex_unlock(&e->mu);
        if (rc == 0) {
            node_clear(&n);
            n = un;
        }
    }
    bool about_content = strcmp(name, "user.upstreamfs.digest") == 0 ||
                         strcmp(name, "user.upstreamfs.cached") == 0;
    if (about_content && !n.digest[0] && n.url && !n.local) {
        /* A reader may have reached the end of a download whose commit is under way. */
        char key[4400];
        engine__flight_key(n.top, n.path, n.expect, key, sizeof(key));
        flight_table_settle(e->flights, key, XATTR_SETTLE_MS);
        struct node again;
        pthread_mutex_lock(&e->mu);
        rc = index_find(e->ix, n.top, n.path, &again);
        pthread_mutex_unlock(&e->mu);
        if (rc == 0) {
            node_clear(&n);
            n = again;
        }
    }
    rc = 0;
    if (strcmp(name, "user.upstreamfs.digest") == 0) {
        if (!n.digest[0])
            rc = -ENODATA;
        else
            snprintf(val, sizeof(val), "sha256:%s", n.digest);
    } else if (strcmp(name, "user.upstreamfs.source") == 0) {
        snprintf(val, sizeof(val), "%s", n.local ? "local" : n.url ? n.url : "");
    } else if (strcmp(name, "user.upstreamfs.cached") == 0) {
        const char *st = "none";
        if (n.digest[0] && store_blob_size(&e->store, n.digest) >= 0)
            st = "complete";
        else if (n.url && !n.local) {
            /* A download of this file under way counts as partial. */
            char key[4400];
            engine__flight_key(n.top, n.path, n.expect, key, sizeof(key));
            int64_t present = 0, size = 0;
            if (flight_partial(e->flights, key, &present, &size) == 0 && size > 0) {
                /* A partial object (src/fetch/lazy.c): the share of its bytes present. */
                snprintf(val, sizeof(val), "partial %.1f%%", 100.0 * (double)present / (double)size);
                st = NULL;
            } else if (flight_table_has(e->flights, key)) {
                st = "partial";
            }
        }
        if (st)
            snprintf(val, sizeof(val), "%s", st);
    } else if (strcmp(name, "user.upstreamfs.stale") == 0) {
        snprintf(val, sizeof(val), "%d", n.stale ? 1 : 0);
    } else {
        rc = -ENODATA;
    }
    node_clear(&n);
    return rc < 0 ? rc : xattr_copy(val, strlen(val), buf, len);
}

int engine_listxattr(struct engine *e, int64_t ino, char *buf, size_t len)
{
    /* Only names that can be read: the digest once known, error and health where they apply. */
    static const char *const names[] = {"user.upstreamfs.digest", "user.upstreamfs.source",
                                        "user.upstreamfs.cached", "user.upstreamfs.stale",
                                        "user.upstreamfs.error",  "user.upstreamfs.health",
                                        "user.upstreamfs.removed"};
    char list[300];
    size_t n = 0;
    struct engine_attr a;
    int rc = engine_getattr(e, ino, &a);
    if (rc < 0)
        return rc;
    for (size_t i = a.kind == NODE_FILE ? 0 : 4; i < sizeof(names) / sizeof(names[0]); i++) {
        rc = engine_getxattr(e, ino, names[i], NULL, 0);
        if (rc < 0 && rc != -ENODATA)
            return rc;
        if (rc >= 0) {
            memcpy(list + n, names[i], strlen(names[i]) + 1);
            n += strlen(names[i]) + 1;
        }
    }
    return xattr_copy(list, n, buf, len);
}

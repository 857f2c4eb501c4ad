/*
 * registry: the engine's view of its config tables (the running upstreams
 * and the registries, swapped by a reload under e->cfg_lock) and the lookup
 * of a registry's names.
 *
 * A registry's local content is in the index already; any other name is
 * looked for in each upstream in order (local first, then upstreams in the
 * registry's order): 404 moves on, any other failure ends the search, so a
 * lower upstream never silently stands in for a failing higher one. An OCI
 * image layout found in one upstream stays bound to it (pinned).
 */
#include "engine_i.h"
#include "upstreamfs/policy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct upstream *engine__upstream(struct engine *e, const char *key)
{
    struct upstream *u = NULL;
    pthread_rwlock_rdlock(&e->cfg_lock);
    for (size_t i = 0; i < e->n_ups; i++) {
        if (strcmp(e->ups[i]->cfg.key, key) == 0) {
            u = e->ups[i];
            upstream_ref(u);
            break;
        }
    }
    pthread_rwlock_unlock(&e->cfg_lock);
    return u;
}

int engine__registry(struct engine *e, const char *name, struct registry *out)
{
    int rc = -ENOENT;
    memset(out, 0, sizeof(*out));
    pthread_rwlock_rdlock(&e->cfg_lock);
    for (size_t i = 0; i < e->n_regs; i++) {
        const struct registry *r = &e->regs[i];
        if (strcmp(r->name, name) != 0)
            continue;
        snprintf(out->name, sizeof(out->name), "%s", r->name);
        out->type = r->type;
        size_t n = 0;
        while (r->upstreams && r->upstreams[n])
            n++;
        out->upstreams = calloc(n + 1, sizeof(char *));
        for (size_t j = 0; out->upstreams && j < n; j++)
            out->upstreams[j] = strdup(r->upstreams[j]);
        rc = out->upstreams ? 0 : -ENOMEM;
        break;
    }
    pthread_rwlock_unlock(&e->cfg_lock);
    return rc;
}

bool engine__registry_policy(struct engine *e, const char *name, struct proxy *out)
{
    bool found = false;
    pthread_rwlock_rdlock(&e->cfg_lock);
    for (size_t i = 0; i < e->n_regs && !found; i++)
        if (strcmp(e->regs[i].name, name) == 0 && e->regs[i].policy &&
            policy_active(e->regs[i].policy))
            found = config_proxy_copy(out, e->regs[i].policy) == 0;
    pthread_rwlock_unlock(&e->cfg_lock);
    return found;
}

bool engine__is_registry(struct engine *e, const char *name)
{
    bool found = false;
    pthread_rwlock_rdlock(&e->cfg_lock);
    for (size_t i = 0; i < e->n_regs && !found; i++)
        found = strcmp(e->regs[i].name, name) == 0;
    pthread_rwlock_unlock(&e->cfg_lock);
    return found;
}

/*
 * A directory a driver gave a media type (an OCI image layout) is one unit:
 * inside a registry, everything below it comes from the upstream that
 * provided it, so a layout never mixes two images that share a name. Walks
 * up from dir; returns that upstream (malloc'd) or NULL when any upstream may
 * provide the name (merged trees: Maven groups, file trees, namespaces).
 */
char *engine__registry_pinned(struct engine *e, const struct node *dir)
{
    char *via = NULL;
    struct node cur;
    if (dir->local || !dir->via)
        return NULL;
    pthread_mutex_lock(&e->mu);
    int rc = node_copy(&cur, dir);
    for (int depth = 0; rc == 0 && depth < 64 && cur.parent != INDEX_ROOT_INO; depth++) {
        if (cur.kind == NODE_DIR && cur.ctype && cur.via && !cur.local) {
            via = strdup(cur.via);
            break;
        }
        int64_t parent = cur.parent;
        node_clear(&cur);
        rc = index_get(e->ix, parent, &cur);
    }
    if (rc == 0)
        node_clear(&cur);
    pthread_mutex_unlock(&e->mu);
    return via;
}

/*
 * A registry name: its local content is in the index already; otherwise each
 * upstream in order. 404 moves on; any other failure ends the search, so a
 * lower upstream never silently stands in for a failing higher one.
 */
int engine__registry_lookup(struct engine *e, const struct node *parent, const char *name,
                            struct node *out)
{
    struct registry r;
    char *path = engine__join(parent->path, name);
    int rc = engine__registry(e, parent->top, &r);
    if (rc < 0 || !path) {
        free(path);
        return rc < 0 ? rc : -ENOMEM;
    }
    rc = -ENOENT;
    char *pinned = engine__registry_pinned(e, parent);
    for (char **k = r.upstreams; k && *k; k++) {
        struct node un;
        if (pinned && strcmp(*k, pinned) != 0)
            continue;
        rc = engine__resolve_node(e, *k, path, &un);
        if (rc == -ENOENT)
            continue;
        if (rc < 0)
            break;
        struct drv_entry de = {.kind = un.kind,
                               .size = un.size,
                               .mtime = un.mtime,
                               .url = un.url,
                               .expect = un.expect,
                               .is_mutable = un.is_mutable,
                               .content_type = un.ctype};
        rc = engine__remember(e, parent, name, path, &de, 0, out);
        if (rc == 0) {
            pthread_mutex_lock(&e->mu);
            free(out->via);
            out->via = strdup(*k);
            index_put(e->ix, out);
            pthread_mutex_unlock(&e->mu);
        }
        node_clear(&un);
        break;
    }
    if (rc == -ENOENT)
        engine__remember(e, parent, name, path, NULL, engine__now() + CONFIG_DEFAULT_NEG_TTL / 10,
                         NULL);
    free(pinned);
    config_registry_clear(&r);
    free(path);
    return rc;
}

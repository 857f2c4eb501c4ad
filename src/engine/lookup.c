/*
 * lookup: names and attributes (engine_lookup, engine_getattr, engine_resolve;
 * contracts in include/upstreamfs/engine.h).
 *
 * Lookups are answered from the index whenever it knows the name: a file or
 * directory once seen, or a 404 remembered until its negative TTL. Only an
 * unknown name (or an expired absence) asks the driver, which may contact
 * the remote; the answer is written back so the next lookup is local. A
 * registry's names are resolved in registry.c.
 */
#include "engine_i.h"
#include "upstreamfs/match.h"
#include "upstreamfs/log.h"
#include "upstreamfs/policy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int engine__node_get(struct engine *e, int64_t ino, struct node *out)
{
    pthread_mutex_lock(&e->mu);
    int rc = index_get(e->ix, ino, out);
    pthread_mutex_unlock(&e->mu);
    return rc;
}

bool engine__path_allowed(const struct proxy *p, const char *path)
{
    return match_path_allowed(p->exclude, p->include, path);
}

bool engine__path_listed(const struct proxy *p, const char *path)
{
    return engine__path_allowed(p, path) &&
           policy_path_verdict(p, path, NULL) != POLICY_DENIED; /* refused by name: not listed */
}

bool engine__node_hidden(struct engine *e, const struct node *n)
{
    if (n->local || !n->path || !n->path[0] || !n->top[0])
        return false;
    /* A registry's entry follows the rules of the proxy that provides it. */
    struct upstream *u = engine__upstream(e, n->via ? n->via : n->top);
    bool hidden = u && !engine__path_allowed(&u->cfg, n->path);
    /* A hidden directory hides what is below it (reached by an inode the kernel kept). */
    char prefix[4096];
    for (const char *sl = strchr(n->path, '/'); u && !hidden && sl; sl = strchr(sl + 1, '/')) {
        size_t len = (size_t)(sl - n->path);
        if (len >= sizeof(prefix))
            break;
        memcpy(prefix, n->path, len);
        prefix[len] = '\0';
        hidden = !engine__path_allowed(&u->cfg, prefix);
    }
    upstream_unref(u);
    return hidden || engine__removed_hidden(e, n);
}

void engine__attr_from_node(struct engine *e, const struct node *n, struct engine_attr *a)
{
    memset(a, 0, sizeof(*a));
    a->ino = n->ino;
    a->kind = n->kind;
    a->size = n->kind == NODE_FILE ? (n->size < 0 ? 0 : n->size) : 0;
    a->mtime = n->mtime ? n->mtime : e->started;
    a->writable = n->local || (n->kind == NODE_DIR && n->path && !n->path[0] && n->top[0] &&
                               engine__is_registry(e, n->top));
    a->is_mutable = n->is_mutable || n->local;
    if (n->kind == NODE_DIR) {
        a->timeout = ENGINE_DIR_TIMEOUT;
    } else if (n->size < 0 && !n->local) {
        a->timeout = 0.0; /* not known yet: the kernel must ask again */
    } else if (a->is_mutable) {
        double ttl = CONFIG_DEFAULT_META_TTL;
        struct upstream *u = n->top ? engine__upstream(e, n->top) : NULL;
        if (u) {
            ttl = (double)u->cfg.metadata_ttl;
            upstream_unref(u);
        }
        a->timeout = n->local ? 0.0 : (ttl < 60.0 ? ttl : 60.0);
        /* never fetched yet: what a reader gets now is fetched now, fresh for the whole TTL */
        int64_t left = (int64_t)ttl - (n->checked ? (int64_t)time(NULL) - n->checked : 0);
        a->fresh_for = n->local || n->stale || left < 0 ? 0 : left;
    } else {
        a->timeout = ENGINE_IMMUTABLE_TIMEOUT;
    }
    /* A registry entry may be re-bound to another upstream when the order changes. */
    if (n->via && !n->local && a->timeout > ENGINE_DIR_TIMEOUT)
        a->timeout = ENGINE_DIR_TIMEOUT;
}

bool engine__name_ok(const char *name)
{
    size_t n = strlen(name);
    return n > 0 && n <= 255 && strcmp(name, ".") != 0 && strcmp(name, "..") != 0 &&
           !strchr(name, '/');
}

/* Records what the remote said about a name below parent. */
int engine__remember(struct engine *e, const struct node *parent, const char *name,
                     const char *path, const struct drv_entry *de, int64_t neg_until,
                     struct node *out)
{
    struct node n = {0};
    int64_t now = engine__now();
    int rc;
    pthread_mutex_lock(&e->mu);
    if (index_child(e->ix, parent->ino, name, &n) < 0)
        memset(&n, 0, sizeof(n));
    free(n.name);
    n.name = strdup(name);
    free(n.top);
    n.top = strdup(parent->top);
    free(n.path);
    n.path = strdup(path);
    n.parent = parent->ino;
    if (!de) {
        n.kind = NODE_ABSENT;
        n.neg_until = neg_until;
        n.digest[0] = '\0';
    } else {
        bool same_content = n.kind == NODE_FILE && de->kind == NODE_FILE && n.url && de->url &&
                            strcmp(n.url, de->url) == 0 &&
                            (!de->expect || (n.expect && strcmp(n.expect, de->expect) == 0));
        if (!same_content)
            n.digest[0] = '\0';
        n.kind = de->kind;
        n.size = de->size;
        n.mtime = de->mtime > 0 ? de->mtime : (n.mtime ? n.mtime : now);
        free(n.url);
        n.url = de->url ? strdup(de->url) : NULL;
        free(n.expect);
        n.expect = de->expect ? strdup(de->expect) : NULL;
        n.is_mutable = de->is_mutable;
        free(n.ctype);
        n.ctype = de->content_type ? strdup(de->content_type) : NULL;
        n.neg_until = 0;
        if (!same_content)
            n.checked = 0;
    }
    rc = index_put(e->ix, &n);
    pthread_mutex_unlock(&e->mu);
    if (rc == 0 && out) {
        *out = n;
        return 0;
    }
    node_clear(&n);
    return rc;
}

static int proxy_lookup(struct engine *e, const struct node *parent, const char *name,
                        struct node *out)
{
    char *path = engine__join(parent->path, name);
    struct upstream *u = engine__upstream(e, parent->top);
    struct drv_entry de = {0};
    int rc;
    failure_note_clear(); /* this lookup's failure only (src/engine/failed.c) */
    if (!path || !u) {
        rc = path ? -ENOENT : -ENOMEM;
        goto out;
    }
    if (strlen(path) > 4000) {
        rc = -ENAMETOOLONG;
        goto out;
    }
    if (u->cfg.offline) {
        rc = -ENOENT;
        goto out;
    }
    if (upstream_backing_off(u)) {
        rc = engine__failed(e, u, parent->ino, -EREMOTEIO);
        goto out;
    }
    rc = u->drv->lookup(u, path, &de);
    if (rc == -ENOENT) {
        engine__remember(e, parent, name, path, NULL, engine__now() + u->cfg.negative_ttl, NULL);
    } else if (rc == 0) {
        rc = engine__remember(e, parent, name, path, &de, 0, out);
    } else {
        rc = engine__failed(e, u, parent->ino, rc); /* the name is unknown: its directory */
    }
out:
    drv_entry_clear(&de);
    upstream_unref(u);
    free(path);
    return rc;
}

/* Whether a proxy's include/exclude let name below dir show (names in registries: always). */
static bool name_allowed(struct engine *e, const struct node *dir, const char *name)
{
    if (dir->local || engine__is_registry(e, dir->top))
        return true;
    struct upstream *u = engine__upstream(e, dir->top);
    char *path = u ? engine__join(dir->path, name) : NULL;
    bool ok = !u || (path && engine__path_allowed(&u->cfg, path));
    free(path);
    upstream_unref(u);
    return ok;
}

/*
 * The package rules (include/upstreamfs/policy.h) for a name below dir, before the index or
 * the remote is asked: 0, or -EACCES with cause policy (recorded on dir, as a failed lookup
 * is). A registry's names follow the rules of the upstream that provides them (registry.c
 * resolves them through it) and the registry's own, except its local content (local: the name
 * is that).
 */
static int name_policy(struct engine *e, const struct node *dir, const char *name, bool local)
{
    struct proxy rp;
    bool reg = engine__is_registry(e, dir->top);
    if (dir->local || local || (reg && !engine__registry_policy(e, dir->top, &rp)))
        return 0;
    struct upstream *u = reg ? NULL : engine__upstream(e, dir->top);
    const struct proxy *p = reg ? &rp : u ? &u->cfg : NULL;
    char *path = p && policy_active(p) ? engine__join(dir->path, name) : NULL;
    const char *rule = NULL;
    int rc = 0;
    if (path && policy_path_verdict(p, path, &rule) == POLICY_DENIED) {
        char pkg[POLICY_NAME_MAX + 1], ver[POLICY_VERSION_MAX + 1];
        bool known = policy_subject(p->type, path, pkg, sizeof(pkg), ver, sizeof(ver));
        failure_note_clear();
        rc = policy_refuse(p, known ? pkg : path, known && ver[0] ? ver : NULL, POLICY_DENIED,
                           rule);
        if (u)
            rc = engine__failed(e, u, dir->ino, rc);
    }
    free(path);
    upstream_unref(u);
    if (reg)
        config_proxy_clear(&rp);
    return rc;
}

/* Resolves one name under a known parent node into *out. */
int engine__lookup_node(struct engine *e, int64_t parent_ino, const char *name, struct node *out)
{
    struct node p, c;
    int rc;
    if (!engine__name_ok(name))
        return strlen(name) > 255 ? -ENAMETOOLONG : -ENOENT;
    pthread_mutex_lock(&e->mu);
    rc = index_get(e->ix, parent_ino, &p);
    if (rc == 0 && p.kind != NODE_DIR)
        rc = -ENOTDIR;
    int crc = rc == 0 ? index_child(e->ix, parent_ino, name, &c) : -ENOENT;
    pthread_mutex_unlock(&e->mu);
    if (rc < 0)
        return rc;
    /* The rules hold for names the index knows too: a rule added later hides them. */
    if (parent_ino != INDEX_ROOT_INO && !name_allowed(e, &p, name)) {
        if (crc == 0)
            node_clear(&c);
        node_clear(&p);
        return -ENOENT;
    }
    if (parent_ino != INDEX_ROOT_INO && (rc = name_policy(e, &p, name, crc == 0 && c.local)) < 0) {
        if (crc == 0)
            node_clear(&c);
        node_clear(&p);
        return rc;
    }
    if (crc == 0) {
        /* A file known only from a listing has no size yet: ask the remote, so ls -l is true. */
        bool sizeless = c.kind == NODE_FILE && c.size < 0 && !c.local && !c.via;
        if (c.via && !c.local && c.kind != NODE_ABSENT) {
            /*
             * A registry name is bound to the upstream that provided it; the order
             * may have changed since, so resolve it again (from the upstreams'
             * index entries: no network for names they know).
             */
            node_clear(&c);
            rc = engine__registry_lookup(e, &p, name, out);
            node_clear(&p);
            return rc;
        }
        if (c.kind != NODE_ABSENT && !sizeless) {
            rc = engine__removed_refused(e, &c); /* removed upstream, hidden: policy */
            if (rc < 0)
                node_clear(&c);
            else
                *out = c;
            node_clear(&p);
            return rc;
        }
        if (sizeless) {
            rc = proxy_lookup(e, &p, name, out);
            if (rc == 0 || rc == -ENOENT) {
                node_clear(&c);
            } else {
                *out = c; /* the remote failed: what the listing said is all we know */
                rc = 0;
            }
            node_clear(&p);
            return rc;
        }
        bool still_absent = c.neg_until > engine__now();
        node_clear(&c);
        if (still_absent || parent_ino == INDEX_ROOT_INO) {
            node_clear(&p);
            return -ENOENT;
        }
    }
    if (parent_ino == INDEX_ROOT_INO) {
        node_clear(&p);
        return -ENOENT;
    }
    if (engine__is_registry(e, p.top))
        rc = engine__registry_lookup(e, &p, name, out);
    else
        rc = proxy_lookup(e, &p, name, out);
    node_clear(&p);
    return rc;
}

int engine__resolve_node(struct engine *e, const char *top, const char *path, struct node *out)
{
    struct node cur;
    int rc = engine__lookup_node(e, INDEX_ROOT_INO, top, &cur);
    if (rc < 0)
        return rc;
    char buf[4096];
    if (strlen(path) >= sizeof(buf)) {
        node_clear(&cur);
        return -ENAMETOOLONG;
    }
    snprintf(buf, sizeof(buf), "%s", path);
    char *save = NULL;
    for (char *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        struct node next;
        rc = engine__lookup_node(e, cur.ino, c, &next);
        node_clear(&cur);
        if (rc < 0)
            return rc;
        cur = next;
    }
    *out = cur;
    return 0;
}

int engine_resolve(struct engine *e, const char *path, struct engine_attr *out)
{
    while (*path == '/')
        path++;
    char top[CONFIG_KEY_MAX + 2];
    size_t n = strcspn(path, "/");
    if (n == 0) {
        return engine_getattr(e, INDEX_ROOT_INO, out);
    }
    if (n > CONFIG_KEY_MAX)
        return -ENOENT;
    memcpy(top, path, n);
    top[n] = '\0';
    const char *rest = path[n] ? path + n + 1 : "";
    struct node node;
    int rc = engine__resolve_node(e, top, rest, &node);
    if (rc < 0)
        return rc;
    engine__attr_from_node(e, &node, out);
    node_clear(&node);
    return 0;
}

int engine_find_below(struct engine *e, const char *dir, const char *tail, struct engine_attr *out)
{
    size_t kl = strcspn(dir, "/");
    if (kl == 0 || kl > CONFIG_KEY_MAX || !dir[kl] || !dir[kl + 1] || !tail[0] || tail[0] == '/')
        return -EINVAL;
    char top[CONFIG_KEY_MAX + 1];
    memcpy(top, dir, kl);
    top[kl] = '\0';
    int64_t ino = 0;
    pthread_mutex_lock(&e->mu);
    int rc = index_find_below(e->ix, top, dir + kl + 1, tail, &ino);
    pthread_mutex_unlock(&e->mu);
    return rc == 0 ? engine_getattr(e, ino, out) : rc;
}

/* A registry's non-local node shows what its upstream's node shows now. */
void engine__follow_via(struct engine *e, struct node *n)
{
    if (!n->via || n->local)
        return;
    struct node un;
    pthread_mutex_lock(&e->mu);
    int rc = index_find(e->ix, n->via, n->path, &un);
    pthread_mutex_unlock(&e->mu);
    if (rc == 0) {
        n->size = un.size;
        n->mtime = un.mtime;
        n->is_mutable = un.is_mutable;
        memcpy(n->digest, un.digest, sizeof(n->digest));
        n->stale = un.stale;
        node_clear(&un);
    }
}

int engine_lookup(struct engine *e, int64_t parent, const char *name, struct engine_attr *out)
{
    struct node n;
    int rc = engine__lookup_node(e, parent, name, &n);
    if (rc < 0)
        return rc;
    engine__follow_via(e, &n);
    engine__attr_from_node(e, &n, out);
    node_clear(&n);
    return 0;
}

int engine_getattr(struct engine *e, int64_t ino, struct engine_attr *out)
{
    struct node n;
    int rc = engine__node_get(e, ino, &n);
    if (rc < 0)
        return rc;
    if (n.kind == NODE_ABSENT || engine__node_hidden(e, &n)) {
        rc = n.kind != NODE_ABSENT && engine__removed_refused(e, &n) < 0 ? -EACCES : -ENOENT;
        node_clear(&n);
        return rc;
    }
    engine__follow_via(e, &n);
    engine__attr_from_node(e, &n, out);
    node_clear(&n);
    return 0;
}

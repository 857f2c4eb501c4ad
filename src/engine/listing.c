/*
 * listing: directory listings (engine_readdir; contract in
 * include/upstreamfs/engine.h).
 *
 * A proxy directory is listed from the index, kept fresh from the remote at
 * most once per metadata TTL: a directory never listed waits for the remote,
 * one listed before is answered at once while a background thread re-lists
 * it (engine__bg_begin). A registry directory merges its local content and
 * each upstream's listing, the first source of a name winning.
 */
#include "engine_i.h"
#include "upstreamfs/strset.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Drops the names of dir that the remote's listing no longer has: all of
 * them when the listing is complete, else only those never cached (what was
 * read stays readable, as the mount promises).
 */
static void forget_unlisted(struct engine *e, const struct node *dir, const struct drv_listing *l)
{
    struct node *kids = NULL;
    size_t nk = 0;
    pthread_mutex_lock(&e->mu);
    if (index_children(e->ix, dir->ino, &kids, &nk) == 0) {
        for (size_t i = 0; i < nk; i++) {
            bool listed = false;
            for (size_t j = 0; j < l->n && !listed; j++)
                listed = strcmp(kids[i].name, l->items[j].name) == 0;
            if (listed || kids[i].local || (!l->complete && kids[i].digest[0]) ||
                (!l->complete && kids[i].kind == NODE_DIR))
                continue;
            index_remove(e->ix, kids[i].ino);
        }
        index_nodes_free(kids, nk);
    }
    pthread_mutex_unlock(&e->mu);
}

/* A listing the remote has not (-ENOENT) or the driver does not make (the npm/pypi roots). */
static bool listing_declined(int rc)
{
    return rc == -ENOENT || rc == -ENOTSUP || rc == -EOPNOTSUPP;
}

/*
 * Merges the remote's listing of a proxy directory into the index. Returns
 * 0, or the errno of the failure (its cause's, engine__failed); a declined
 * listing's own errno (listing_declined).
 */
static int merge_listing(struct engine *e, struct upstream *u, struct node *dir)
{
    int64_t now = engine__now();
    struct drv_listing l = {0};
    failure_note_clear();
    int rc = u->drv->list(u, dir->path, &l);
    int err = listing_declined(rc) ? rc : engine__failed(e, u, dir->ino, rc);
    if (rc == 0) {
        for (size_t i = 0; i < l.n; i++) {
            struct node c;
            char *path = engine__join(dir->path, l.items[i].name);
            if (!path || !engine__name_ok(l.items[i].name) ||
                !engine__path_listed(&u->cfg, path)) {
                free(path);
                continue;
            }
            pthread_mutex_lock(&e->mu);
            int have = index_child(e->ix, dir->ino, l.items[i].name, &c);
            pthread_mutex_unlock(&e->mu);
            /* A name the index knows keeps what it learned (its digest, its exact size). */
            if (have == 0 && c.kind != NODE_ABSENT) {
                node_clear(&c);
                free(path);
                continue;
            }
            if (have == 0)
                node_clear(&c);
            engine__remember(e, dir, l.items[i].name, path, &l.items[i], 0, NULL);
            free(path);
        }
        forget_unlisted(e, dir, &l);
    }
    /*
     * Tried, whatever the outcome: the next attempt waits for the TTL (or the back-off). A
     * directory never listed stays so after a failure: it has no listing to serve.
     */
    pthread_mutex_lock(&e->mu);
    struct node d;
    if (index_get(e->ix, dir->ino, &d) == 0) {
        if (rc == 0 || listing_declined(rc) || d.listed != 0) {
            d.listed = rc == 0 ? now : now - u->cfg.metadata_ttl + 5;
            index_put(e->ix, &d);
        }
        node_clear(&d);
    }
    pthread_mutex_unlock(&e->mu);
    drv_listing_clear(&l);
    return rc == 0 ? 0 : err;
}

struct relist {
    struct engine *e;
    struct upstream *u;
    struct node dir;
};

static void *relist_main(void *arg)
{
    struct relist *r = arg;
    int rc = merge_listing(r->e, r->u, &r->dir);
    if (rc < 0 && !listing_declined(rc))
        upstream_note_stale(r->u); /* the last listing is what ls shows: stale */
    engine__bg_end(r->e, r->dir.ino);
    upstream_unref(r->u);
    node_clear(&r->dir);
    free(r);
    return NULL;
}

/*
 * Keeps a directory's listing fresh, at most once per TTL. A directory
 * never listed is listed now (there is nothing else to show), and its
 * failure is ls's error (failing is not empty: docs/troubleshooting.md);
 * one listed before is answered from the index while a background thread
 * asks the remote, so ls never waits on the network for what is already
 * known (and a failure there serves the last listing, stale).
 */
static int refresh_listing(struct engine *e, struct node *dir)
{
    struct upstream *u = engine__upstream(e, dir->top);
    if (!u)
        return 0;
    int64_t now = engine__now();
    int rc = 0;
    if (u->cfg.offline || !u->drv->list || now < dir->listed + u->cfg.metadata_ttl) {
        upstream_unref(u);
        return 0;
    }
    if (dir->listed == 0) {
        /* (While the proxy backs off, a driver listing from cached documents still can.) */
        rc = merge_listing(e, u, dir);
        upstream_unref(u);
        return listing_declined(rc) ? 0 : rc;
    }
    if (upstream_backing_off(u)) {
        upstream_note_stale(u);
        upstream_unref(u);
        return 0;
    }
    struct relist *r = calloc(1, sizeof(*r));
    pthread_t th;
    if (!r || !engine__bg_begin(e, dir->ino)) {
        free(r);
        upstream_unref(u);
        return 0;
    }
    r->e = e;
    r->u = u;
    node_copy(&r->dir, dir);
    if (pthread_create(&th, NULL, relist_main, r) == 0) {
        pthread_detach(th);
        return 0;
    }
    engine__bg_end(e, dir->ino);
    upstream_unref(u);
    node_clear(&r->dir);
    free(r);
    return 0;
}

/*
 * A directory listing being built. Registries merge several sources, where
 * the first source of a name wins (local, then upstreams in order): they set
 * dedupe, and names are checked against the set of the entries so far.
 * A proxy directory's names are unique already (one index row per name).
 */
struct dirlist {
    struct engine_dirent *items;
    size_t n, cap;
    bool dedupe;
    struct strset names; /* with dedupe: the items' names */
};

static int add_dirent(struct dirlist *l, const char *name, const struct engine_attr *a)
{
    if (l->dedupe && strset_has(&l->names, name))
        return 0; /* an earlier source has the name */
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        struct engine_dirent *nl = realloc(l->items, cap * sizeof(*nl));
        if (!nl)
            return -ENOMEM;
        l->items = nl;
        l->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy || (l->dedupe && strset_add(&l->names, copy) < 0)) {
        free(copy);
        return -ENOMEM;
    }
    l->items[l->n].name = copy;
    l->items[l->n].attr = *a;
    l->n++;
    return 0;
}

/*
 * Adds ino's children; rules, when not NULL, are the proxy's include/exclude; skip, when not
 * NULL, the names left out (removed upstream: src/engine/removals.c).
 */
static int list_children(struct engine *e, int64_t ino, struct dirlist *l, bool local_only,
                         const struct proxy *rules, const struct strset *skip)
{
    struct node *kids = NULL;
    size_t nk = 0;
    pthread_mutex_lock(&e->mu);
    int rc = index_children(e->ix, ino, &kids, &nk);
    pthread_mutex_unlock(&e->mu);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < nk && rc == 0; i++) {
        if ((local_only && !kids[i].local) ||
            (rules && !engine__path_listed(rules, kids[i].path)) ||
            (skip && strset_has(skip, kids[i].name)))
            continue;
        struct engine_attr a;
        if (kids[i].kind == NODE_FILE && kids[i].size < 0 && !kids[i].local && !kids[i].via) {
            struct node fresh;
            if (engine__lookup_node(e, ino, kids[i].name, &fresh) == 0) {
                node_clear(&kids[i]);
                kids[i] = fresh;
            }
        }
        engine__follow_via(e, &kids[i]);
        engine__attr_from_node(e, &kids[i], &a);
        rc = add_dirent(l, kids[i].name, &a);
    }
    index_nodes_free(kids, nk);
    return rc;
}

/*
 * Adds an upstream's listing of a registry directory (ino) to l: each name gets the registry's
 * own inode, resolved lazily. A name a failing earlier upstream hides is listed without an
 * inode (ino 0: no entry for the kernel); opening it gives that failure.
 */
static int add_upstream_names(struct engine *e, int64_t ino, struct dirlist *l,
                              const struct engine_dirent *ul, size_t un_n)
{
    int rc = 0;
    for (size_t i = 0; i < un_n && rc == 0; i++) {
        struct engine_attr a;
        struct failure_note note;
        failure_note_clear();
        int lrc = engine_lookup(e, ino, ul[i].name, &a);
        /* refused by the registry's package rules (lookup.c, name_policy): not listed */
        if (lrc == -EACCES && failure_note_get(&note) && note.f.cause == FAILURE_POLICY)
            continue;
        if (lrc < 0 && lrc != -ENOENT) {
            a = ul[i].attr;
            a.ino = 0;
            a.timeout = 0;
        }
        if (lrc == 0 || lrc != -ENOENT)
            rc = add_dirent(l, ul[i].name, &a);
    }
    return rc;
}

/*
 * A registry directory d: its local names, then each upstream's (the pinned one only, below an
 * image layout). An upstream that fails leaves its names out; all failing and nothing local:
 * the first failure is the listing's error.
 */
static int list_registry(struct engine *e, const struct node *d, struct dirlist *l)
{
    struct registry r;
    int failed = 0, listed = 0;
    l->dedupe = true;
    int rc = list_children(e, d->ino, l, true, NULL, NULL);
    if (rc < 0 || engine__registry(e, d->top, &r) < 0)
        return rc;
    char *pinned = engine__registry_pinned(e, d);
    for (char **k = r.upstreams; k && *k && rc == 0; k++) {
        struct node un;
        if (pinned && strcmp(*k, pinned) != 0)
            continue;
        int urc = engine__resolve_node(e, *k, d->path, &un);
        if (urc < 0) {
            if (urc != -ENOENT && !failed)
                failed = urc;
            continue;
        }
        struct engine_dirent *ul = NULL;
        size_t un_n = 0;
        urc = un.kind == NODE_DIR ? engine_readdir(e, un.ino, &ul, &un_n) : -ENOTDIR;
        if (urc < 0 && urc != -ENOTDIR && urc != -ENOENT && !failed)
            failed = urc;
        listed += urc == 0;
        if (urc == 0) {
            rc = add_upstream_names(e, d->ino, l, ul, un_n);
            engine_dirents_free(ul, un_n);
        }
        node_clear(&un);
    }
    free(pinned);
    config_registry_clear(&r);
    return rc == 0 && failed && !listed && l->n == 0 ? failed : rc;
}

/* The root, or a proxy directory d kept fresh from its remote, filtered by its proxy's rules. */
static int list_proxy(struct engine *e, struct node *d, struct dirlist *l)
{
    int rc = 0;
    struct strset removed = {0};
    char **gone = NULL;
    size_t ngone = 0;
    struct upstream *u = d->ino != INDEX_ROOT_INO ? engine__upstream(e, d->top) : NULL;
    if (d->ino != INDEX_ROOT_INO)
        rc = refresh_listing(e, d);
    if (rc == 0 && u)
        rc = engine__removed_names(e, d, &gone, &ngone);
    for (size_t i = 0; rc == 0 && i < ngone; i++)
        rc = strset_add(&removed, gone[i]) < 0 ? -ENOMEM : 0;
    if (rc == 0)
        rc = list_children(e, d->ino, l, false, u ? &u->cfg : NULL, &removed);
    strset_free(&removed);
    for (size_t i = 0; i < ngone; i++)
        free(gone[i]);
    free(gone);
    upstream_unref(u);
    return rc;
}

int engine_readdir(struct engine *e, int64_t ino, struct engine_dirent **out, size_t *n)
{
    struct node d;
    struct dirlist dl = {0};
    int rc = engine__node_get(e, ino, &d);
    if (rc < 0)
        return rc;
    if (d.kind != NODE_DIR || engine__node_hidden(e, &d))
        rc = d.kind != NODE_DIR                     ? -ENOTDIR
             : engine__removed_refused(e, &d) < 0 ? -EACCES /* removed upstream: policy */
                                                  : -ENOENT;
    else if (ino != INDEX_ROOT_INO && engine__is_registry(e, d.top))
        rc = list_registry(e, &d, &dl);
    else
        rc = list_proxy(e, &d, &dl);
    node_clear(&d);
    strset_free(&dl.names);
    if (rc < 0) {
        engine_dirents_free(dl.items, dl.n);
        return rc;
    }
    *out = dl.items;
    *n = dl.n;
    return 0;
}

void engine_dirents_free(struct engine_dirent *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i].name);
    free(list);
}

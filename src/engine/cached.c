/*
 * cached: what the cache holds below a proxy or registry, from the index alone (no network),
 * for "upstreamfs export KEY" without --from (src/cli/cli_export.c); and one file landed as
 * local content, for "registry import" of a bundle (src/cli/cli_bundle.c).
 */
#include "engine_i.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct walk {
    struct engine_cached *list;
    size_t n, cap;
};

static int walk_add(struct walk *w, const struct node *nd)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        struct engine_cached *nl = realloc(w->list, cap * sizeof(*nl));
        if (!nl)
            return -ENOMEM;
        w->list = nl;
        w->cap = cap;
    }
    struct engine_cached *c = &w->list[w->n];
    if (!(c->path = strdup(nd->path)))
        return -ENOMEM;
    c->size = nd->size;
    memcpy(c->sha256, nd->digest, sizeof(c->sha256));
    w->n++;
    return 0;
}

/* Called with e->mu held. */
static int walk_dir(struct engine *e, int64_t ino, int depth, struct walk *w)
{
    struct node *kids = NULL;
    size_t nk = 0;
    if (depth > 64)
        return -ELOOP;
    int rc = index_children(e->ix, ino, &kids, &nk);
    for (size_t i = 0; rc == 0 && i < nk; i++) {
        struct object_info o;
        if (kids[i].kind == NODE_DIR)
            rc = walk_dir(e, kids[i].ino, depth + 1, w);
        else if (kids[i].kind == NODE_FILE && kids[i].digest[0] && kids[i].path &&
                 index_object_get(e->ix, kids[i].digest, &o) == 0)
            rc = walk_add(w, &kids[i]);
    }
    index_nodes_free(kids, nk);
    return rc;
}

int engine_cached_files(struct engine *e, const char *key, struct engine_cached **out, size_t *n)
{
    struct walk w = {0};
    struct node top;
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&e->mu);
    int rc = index_child(e->ix, INDEX_ROOT_INO, key, &top);
    if (rc == 0) {
        if (top.kind == NODE_DIR)
            rc = walk_dir(e, top.ino, 0, &w);
        node_clear(&top);
    }
    pthread_mutex_unlock(&e->mu);
    if (rc < 0) {
        engine_cached_free(w.list, w.n);
        return rc;
    }
    *out = w.list;
    *n = w.n;
    return 0;
}

void engine_cached_free(struct engine_cached *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i].path);
    free(list);
}

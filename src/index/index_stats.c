/*
 * index_stats: read-only reports over the cache tables for the web page's
 * cache view (shim/ui_api.c): per top-level name, the distinct objects its
 * files point at, how many of its nodes were last served stale and how many
 * entries are marked removed-upstream; the
 * largest cached objects with one mount path each; the pinned count.
 */
#include "index_i.h"
#include "upstreamfs/state.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct index_usage *usage_of(struct index_usage *u, size_t n, const char *top)
{
    for (size_t i = 0; top && i < n; i++)
        if (!strcmp(u[i].top, top))
            return &u[i];
    return NULL;
}

/* Adds the (top, count) rows of statement which to the int64_t member at off of each top's use. */
static int count_per_top(struct index *ix, enum index_stmt which, struct index_usage *u, size_t n,
                         size_t off)
{
    sqlite3_stmt *s = index__stmt(ix, which);
    int step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        struct index_usage *x = usage_of(u, n, (const char *)sqlite3_column_text(s, 0));
        if (x)
            *(int64_t *)((char *)x + off) += sqlite3_column_int64(s, 1);
    }
    return index__done(s, step);
}

int index_usage(struct index *ix, struct index_usage *u, size_t n)
{
    sqlite3_stmt *s = index__stmt(ix, S_USE_OBJECTS);
    int step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        struct index_usage *x = usage_of(u, n, (const char *)sqlite3_column_text(s, 0));
        if (!x)
            continue; /* a name deleted since its files were cached */
        if (sqlite3_column_int(s, 1)) {
            x->local_objects += sqlite3_column_int64(s, 2);
            x->local_bytes += sqlite3_column_int64(s, 3);
        } else {
            x->objects += sqlite3_column_int64(s, 2);
            x->bytes += sqlite3_column_int64(s, 3);
        }
    }
    int rc = index__done(s, step);
    if (rc == 0)
        rc = count_per_top(ix, S_USE_STALE, u, n, offsetof(struct index_usage, stale));
    if (rc == 0)
        rc = count_per_top(ix, S_USE_REMOVED, u, n, offsetof(struct index_usage, removed));
    return rc;
}

int index_largest(struct index *ix, size_t max, struct index_artifact **out, size_t *n)
{
    sqlite3_stmt *s = index__stmt(ix, S_LARGEST);
    sqlite3_bind_int64(s, 1, (int64_t)(max > 1000000 ? 1000000 : max));
    struct index_artifact *list = calloc(max ? max : 1, sizeof(*list));
    size_t cnt = 0;
    int step = list ? SQLITE_OK : SQLITE_NOMEM;
    while (list && cnt < max && (step = sqlite3_step(s)) == SQLITE_ROW) {
        struct index_artifact *a = &list[cnt++];
        const unsigned char *d = sqlite3_column_text(s, 0);
        snprintf(a->digest, sizeof(a->digest), "%s", d ? (const char *)d : "");
        a->size = sqlite3_column_int64(s, 1);
        a->atime = sqlite3_column_int64(s, 2);
        a->pinned = sqlite3_column_int(s, 3) != 0;
        a->path = index__col_dup(s, 4);
    }
    int rc = index__done(s, step);
    if (rc < 0) {
        index_largest_free(list, cnt);
        return rc;
    }
    *out = list;
    *n = cnt;
    return 0;
}

void index_largest_free(struct index_artifact *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        free(list[i].path);
    free(list);
}

int index_pinned_count(struct index *ix, int64_t *count)
{
    sqlite3_stmt *s = index__stmt(ix, S_PINNED);
    int step = sqlite3_step(s);
    *count = step == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    return index__done(s, step);
}

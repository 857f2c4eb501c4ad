/*
 * index_partial: the rows of partial objects (see index.h): one per large file being fetched
 * by chunk, its map of present chunks and the validators they came with. The flight of the
 * file saves it (src/fetch/lazy.c, at most every 200 ms, one UPSERT), the next open resumes
 * from it, and `cache stats`, the quota and the eviction read it (src/fetch/partial.c). The
 * table is schema.c's version 8.
 */
#include "index_i.h"
#include "upstreamfs/state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int index_partial_save(struct index *ix, const struct index_partial *p)
{
    sqlite3_stmt *s = index__stmt(ix, S_PART_SAVE);
    sqlite3_bind_text(s, 1, p->key, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, p->name ? p->name : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, p->url ? p->url : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, p->size);
    sqlite3_bind_int64(s, 5, p->chunk);
    sqlite3_bind_text(s, 6, p->etag, -1, SQLITE_STATIC); /* NULL binds NULL */
    sqlite3_bind_text(s, 7, p->last_modified, -1, SQLITE_STATIC);
    sqlite3_bind_blob64(s, 8, p->map ? (const void *)p->map : "", p->map_len, SQLITE_STATIC);
    sqlite3_bind_int64(s, 9, p->present);
    sqlite3_bind_int64(s, 10, p->updated);
    return index__done(s, sqlite3_step(s));
}

/* The PARTIAL_COLS of the current row (index.c); 0 or -ENOMEM. */
static int read_partial(sqlite3_stmt *s, struct index_partial *p)
{
    memset(p, 0, sizeof(*p));
    const unsigned char *k = sqlite3_column_text(s, 0);
    snprintf(p->key, sizeof(p->key), "%s", k ? (const char *)k : "");
    p->name = index__col_dup(s, 1);
    p->url = index__col_dup(s, 2);
    p->size = sqlite3_column_int64(s, 3);
    p->chunk = sqlite3_column_int64(s, 4);
    p->etag = index__col_dup(s, 5);
    p->last_modified = index__col_dup(s, 6);
    p->present = sqlite3_column_int64(s, 7);
    p->updated = sqlite3_column_int64(s, 8);
    return p->name && p->url ? 0 : -ENOMEM;
}

int index_partial_get(struct index *ix, const char *key, struct index_partial *out)
{
    sqlite3_stmt *s = index__stmt(ix, S_PART_GET);
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    int step = sqlite3_step(s), rc = 0;
    if (step == SQLITE_ROW) {
        rc = read_partial(s, out);
        int len = sqlite3_column_bytes(s, 9);
        const void *map = sqlite3_column_blob(s, 9);
        out->map_len = (size_t)len;
        if (rc == 0 && (out->map = malloc(len > 0 ? (size_t)len : 1)) == NULL)
            rc = -ENOMEM;
        if (rc == 0 && len > 0)
            memcpy(out->map, map, (size_t)len);
        if (rc < 0)
            index_partial_clear(out);
    }
    int done = index__done(s, step);
    if (step == SQLITE_DONE)
        return -ENOENT;
    return rc < 0 ? rc : done;
}

void index_partial_clear(struct index_partial *p)
{
    if (!p)
        return;
    free(p->name);
    free(p->url);
    free(p->etag);
    free(p->last_modified);
    free(p->map);
    memset(p, 0, sizeof(*p));
}

int index_partial_delete(struct index *ix, const char *key)
{
    sqlite3_stmt *s = index__stmt(ix, S_PART_DELETE);
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    return index__done(s, sqlite3_step(s));
}

int index_partial_totals(struct index *ix, int64_t *bytes, int64_t *count)
{
    sqlite3_stmt *s = index__stmt(ix, S_PART_TOTALS);
    int step = sqlite3_step(s);
    *bytes = step == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    *count = step == SQLITE_ROW ? sqlite3_column_int64(s, 1) : 0;
    return index__done(s, step);
}

int index_partial_list(struct index *ix, int64_t before, size_t max, struct index_partial **out,
                       size_t *n)
{
    sqlite3_stmt *s = index__stmt(ix, S_PART_LIST);
    sqlite3_bind_int64(s, 1, before);
    sqlite3_bind_int64(s, 2, max > INT64_MAX ? INT64_MAX : (int64_t)max);
    struct index_partial *list = NULL;
    size_t cnt = 0, cap = 0;
    int step = SQLITE_DONE, rc = 0;
    while (rc == 0 && (step = sqlite3_step(s)) == SQLITE_ROW) {
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 16;
            struct index_partial *nl = realloc(list, nc * sizeof(*nl));
            if (!nl) {
                rc = -ENOMEM;
                break;
            }
            list = nl;
            cap = nc;
        }
        rc = read_partial(s, &list[cnt++]);
    }
    int done = index__done(s, rc < 0 ? SQLITE_DONE : step);
    if (rc == 0)
        rc = done;
    if (rc < 0) {
        index_partial_list_free(list, cnt);
        return rc;
    }
    *out = list;
    *n = cnt;
    return 0;
}

void index_partial_list_free(struct index_partial *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        index_partial_clear(&list[i]);
    free(list);
}

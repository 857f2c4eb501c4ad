/*
 * index_removed: the cached entries their upstream no longer lists (a
 * tarball of an unpublished npm version, a file gone from a PyPI page, a
 * vanished tag): one row (top, path, since) per entry, kept by
 * src/engine/removals.c. The table and the trigger that drops a row with
 * its node are the migration in src/state/schema.c.
 */
#include "index_i.h"
#include "upstreamfs/state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sqlite3_stmt *bind_entry(struct index *ix, enum index_stmt which, const char *top,
                                const char *path)
{
    sqlite3_stmt *s = index__stmt(ix, which);
    sqlite3_bind_text(s, 1, top, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC);
    return s;
}

int index_removed_sync(struct index *ix, const char *top, char *const *mark, size_t n_mark,
                       char *const *unmark, size_t n_unmark, int64_t now)
{
    int rc = state_sqlite_errno(sqlite3_exec(ix->db, "SAVEPOINT removed", NULL, NULL, NULL));
    for (size_t i = 0; rc == 0 && i < n_mark; i++) {
        sqlite3_stmt *s = bind_entry(ix, S_RM_MARK, top, mark[i]);
        sqlite3_bind_int64(s, 3, now);
        rc = index__done(s, sqlite3_step(s));
    }
    for (size_t i = 0; rc == 0 && i < n_unmark; i++) {
        sqlite3_stmt *s = bind_entry(ix, S_RM_UNMARK, top, unmark[i]);
        rc = index__done(s, sqlite3_step(s));
    }
    if (rc < 0)
        sqlite3_exec(ix->db, "ROLLBACK TO removed", NULL, NULL, NULL);
    sqlite3_exec(ix->db, "RELEASE removed", NULL, NULL, NULL);
    return rc;
}

int index_removed_get(struct index *ix, const char *top, const char *path, int64_t *since)
{
    sqlite3_stmt *s = bind_entry(ix, S_RM_GET, top, path);
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW && since)
        *since = sqlite3_column_int64(s, 0);
    int rc = index__done(s, step);
    return step == SQLITE_ROW ? 1 : rc;
}

int index_removed_list(struct index *ix, const char *top, struct index_removed **out, size_t *n)
{
    sqlite3_stmt *s = index__stmt(ix, S_RM_LIST);
    if (top)
        sqlite3_bind_text(s, 1, top, -1, SQLITE_STATIC);
    struct index_removed *list = NULL;
    size_t cnt = 0, cap = 0;
    int step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 16;
            struct index_removed *nl = realloc(list, nc * sizeof(*nl));
            if (!nl) {
                step = SQLITE_NOMEM;
                break;
            }
            list = nl;
            cap = nc;
        }
        struct index_removed *r = &list[cnt++];
        r->top = index__col_dup(s, 0);
        r->path = index__col_dup(s, 1);
        r->since = sqlite3_column_int64(s, 2);
        if (!r->top || !r->path) {
            step = SQLITE_NOMEM;
            break;
        }
    }
    int rc = index__done(s, step);
    if (rc < 0) {
        index_removed_free(list, cnt);
        return rc;
    }
    *out = list;
    *n = cnt;
    return 0;
}

void index_removed_free(struct index_removed *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++) {
        free(list[i].top);
        free(list[i].path);
    }
    free(list);
}

int index_removed_count(struct index *ix, int64_t *count)
{
    sqlite3_stmt *s = index__stmt(ix, S_RM_COUNT);
    int step = sqlite3_step(s);
    *count = step == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    return index__done(s, step);
}

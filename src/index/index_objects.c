/*
 * index_objects: the object rows (one per file of the store), their running
 * totals and the shared settings (see index.h).
 *
 * The totals are the table object_totals, one row per value of
 * object.local, kept by triggers (schema.c, version 4) in the same
 * transaction as the insert, update or delete that changes them: reading
 * them costs one row whatever the number of objects, and after a crash they
 * are what the last committed transaction left, like the rows themselves.
 */
#include "index_i.h"
#include "upstreamfs/state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int index_object_put(struct index *ix, const char *digest, int64_t size, bool local)
{
    sqlite3_stmt *s = index__stmt(ix, S_OBJ_PUT);
    sqlite3_bind_text(s, 1, digest, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, size);
    sqlite3_bind_int(s, 3, local);
    return index__done(s, sqlite3_step(s));
}

static void read_object(sqlite3_stmt *s, struct object_info *o)
{
    memset(o, 0, sizeof(*o));
    const unsigned char *d = sqlite3_column_text(s, 0);
    snprintf(o->digest, sizeof(o->digest), "%s", d ? (const char *)d : "");
    o->size = sqlite3_column_int64(s, 1);
    o->atime = sqlite3_column_int64(s, 2);
    o->pinned = sqlite3_column_int(s, 3);
    o->local = sqlite3_column_int(s, 4);
}

int index_object_get(struct index *ix, const char *digest, struct object_info *out)
{
    sqlite3_stmt *s = index__stmt(ix, S_OBJ_GET);
    sqlite3_bind_text(s, 1, digest, -1, SQLITE_STATIC);
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW)
        read_object(s, out);
    int rc = index__done(s, step);
    return step == SQLITE_DONE ? -ENOENT : rc;
}

int index_object_touch(struct index *ix, const char *digest, int64_t now)
{
    sqlite3_stmt *s = index__stmt(ix, S_OBJ_TOUCH);
    sqlite3_bind_text(s, 1, digest, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, now);
    return index__done(s, sqlite3_step(s));
}

int index_object_pin(struct index *ix, const char *digest, bool pinned)
{
    sqlite3_stmt *s = index__stmt(ix, S_OBJ_PIN);
    sqlite3_bind_text(s, 1, digest, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, pinned);
    int rc = index__done(s, sqlite3_step(s));
    if (rc == 0 && sqlite3_changes(ix->db) == 0)
        return -ENOENT;
    return rc;
}

int index_object_delete(struct index *ix, const char *digest)
{
    sqlite3_stmt *s = index__stmt(ix, S_OBJ_DELETE);
    sqlite3_bind_text(s, 1, digest, -1, SQLITE_STATIC);
    return index__done(s, sqlite3_step(s));
}

static int totals(struct index *ix, bool local, int64_t *bytes, int64_t *count)
{
    sqlite3_stmt *s = index__stmt(ix, S_OBJ_TOTALS);
    sqlite3_bind_int(s, 1, local);
    int step = sqlite3_step(s);
    *bytes = *count = 0;
    if (step == SQLITE_ROW) {
        *bytes = sqlite3_column_int64(s, 0);
        *count = sqlite3_column_int64(s, 1);
    }
    int rc = index__done(s, step);
    return step == SQLITE_DONE ? -EIO : rc; /* the migration wrote both rows */
}

int index_object_totals(struct index *ix, int64_t *bytes, int64_t *count)
{
    return totals(ix, false, bytes, count);
}

int index_local_totals(struct index *ix, int64_t *bytes, int64_t *count)
{
    return totals(ix, true, bytes, count);
}

int index_local_usage(struct index *ix, const char *top, int64_t *bytes, int64_t *files)
{
    sqlite3_stmt *s = index__stmt(ix, S_LOCAL_USAGE);
    sqlite3_bind_text(s, 1, top, -1, SQLITE_STATIC);
    int step = sqlite3_step(s);
    *bytes = *files = 0;
    if (step == SQLITE_ROW) {
        *bytes = sqlite3_column_int64(s, 0);
        *files = sqlite3_column_int64(s, 1);
    }
    return index__done(s, step);
}

static int object_list(struct index *ix, enum index_stmt which, size_t max,
                       struct object_info **out, size_t *n)
{
    sqlite3_stmt *s = index__stmt(ix, which);
    sqlite3_bind_int64(s, 1, (uint64_t)max > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)max);
    size_t cnt = 0, cap = 0;
    struct object_info *list = NULL;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? cap * 2 : 64;
            struct object_info *nl = realloc(list, cap * sizeof(*nl));
            if (!nl) {
                rc = SQLITE_NOMEM;
                break;
            }
            list = nl;
        }
        read_object(s, &list[cnt++]);
    }
    rc = index__done(s, rc);
    if (rc < 0) {
        free(list);
        return rc;
    }
    *out = list;
    *n = cnt;
    return 0;
}

int index_object_lru(struct index *ix, struct object_info **out, size_t *n, size_t max)
{
    return object_list(ix, S_OBJ_LRU, max, out, n);
}

int index_object_all(struct index *ix, struct object_info **out, size_t *n)
{
    return object_list(ix, S_OBJ_ALL, SIZE_MAX, out, n);
}

int index_setting_get(struct index *ix, const char *key, char *buf, size_t len)
{
    sqlite3_stmt *s = index__stmt(ix, S_SETTING_GET);
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW)
        snprintf(buf, len, "%s", (const char *)sqlite3_column_text(s, 0));
    int rc = index__done(s, step);
    return step == SQLITE_DONE ? -ENOENT : rc;
}

int index_setting_set(struct index *ix, const char *key, const char *value)
{
    sqlite3_stmt *s = index__stmt(ix, S_SETTING_SET);
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, value, -1, SQLITE_STATIC);
    return index__done(s, sqlite3_step(s));
}

/*
 * index: SQLite rows for nodes and objects (see index.h). Statements are
 * prepared once per connection; every function resets what it used.
 */
#include "upstreamfs/index.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char index_schema_sql[] =
    "CREATE TABLE node("
    " ino INTEGER PRIMARY KEY,"
    " parent INTEGER NOT NULL,"
    " name TEXT NOT NULL,"
    " top TEXT NOT NULL,"
    " path TEXT NOT NULL,"
    " kind INTEGER NOT NULL,"
    " size INTEGER NOT NULL DEFAULT -1,"
    " mtime INTEGER NOT NULL DEFAULT 0,"
    " digest TEXT,"
    " expect TEXT,"
    " url TEXT,"
    " mutable INTEGER NOT NULL DEFAULT 0,"
    " etag TEXT,"
    " last_modified TEXT,"
    " checked INTEGER NOT NULL DEFAULT 0,"
    " neg_until INTEGER NOT NULL DEFAULT 0,"
    " listed INTEGER NOT NULL DEFAULT 0,"
    " stale INTEGER NOT NULL DEFAULT 0,"
    " local INTEGER NOT NULL DEFAULT 0,"
    " via TEXT,"
    " ctype TEXT,"
    " UNIQUE(parent, name));"
    "CREATE INDEX node_top_path ON node(top, path);"
    "CREATE INDEX node_digest ON node(digest);"
    "INSERT INTO node(ino, parent, name, top, path, kind) VALUES (1, 0, '', '', '', 1);"
    "CREATE TABLE object("
    " digest TEXT PRIMARY KEY,"
    " size INTEGER NOT NULL,"
    " atime INTEGER NOT NULL DEFAULT 0,"
    " pinned INTEGER NOT NULL DEFAULT 0,"
    " local INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX object_lru ON object(local, pinned, atime);";

#define NODE_COLS                                                                                  \
    "ino, parent, name, top, path, kind, size, mtime, digest, expect, url, mutable, etag, "        \
    "last_modified, checked, neg_until, listed, stale, local, via, ctype"

enum {
    S_GET,
    S_CHILD,
    S_CHILDREN,
    S_FIND,
    S_INSERT,
    S_UPDATE,
    S_OBJ_PUT,
    S_OBJ_GET,
    S_OBJ_TOUCH,
    S_COUNT
};

static const char *const sqls[S_COUNT] = {
    [S_GET] = ("SELECT " NODE_COLS " FROM node WHERE ino = ?1"),
    [S_CHILD] = ("SELECT " NODE_COLS " FROM node WHERE parent = ?1 AND name = ?2"),
    [S_CHILDREN] = ("SELECT " NODE_COLS " FROM node WHERE parent = ?1 AND kind != 0 ORDER BY name"),
    [S_FIND] = ("SELECT " NODE_COLS " FROM node WHERE top = ?1 AND path = ?2"),
    [S_INSERT] =
        "INSERT INTO node(parent, name, top, path, kind, size, mtime, digest, expect, "
        "url, mutable, etag, last_modified, checked, neg_until, listed, stale, local, via, ctype)"
        " VALUES (?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21)"
        " ON CONFLICT(parent, name) DO UPDATE SET top=?4, path=?5, kind=?6, size=?7,"
        " mtime=?8, digest=?9, expect=?10, url=?11, mutable=?12, etag=?13,"
        " last_modified=?14, checked=?15, neg_until=?16, listed=?17, stale=?18,"
        " local=?19, via=?20, ctype=?21 RETURNING ino",
    [S_UPDATE] = "UPDATE node SET parent=?2, name=?3, top=?4, path=?5, kind=?6, size=?7, mtime=?8,"
                 " digest=?9, expect=?10, url=?11, mutable=?12, etag=?13, last_modified=?14,"
                 " checked=?15, neg_until=?16, listed=?17, stale=?18, local=?19, via=?20, ctype=?21"
                 " WHERE ino=?1",
    [S_OBJ_PUT] =
        "INSERT INTO object(digest, size, atime, local) VALUES (?1, ?2, strftime('%s'), ?3)"
        " ON CONFLICT(digest) DO UPDATE SET size=?2, local=MAX(local, ?3)",
    [S_OBJ_GET] = "SELECT digest, size, atime, pinned, local FROM object WHERE digest = ?1",
    [S_OBJ_TOUCH] = "UPDATE object SET atime = ?2 WHERE digest = ?1",
};

struct index {
    sqlite3 *db;
    sqlite3_stmt *st[S_COUNT];
};

int index_open(sqlite3 *db, struct index **out)
{
    struct index *ix = calloc(1, sizeof(*ix));
    if (!ix)
        return -ENOMEM;
    ix->db = db;
    for (int i = 0; i < S_COUNT; i++) {
        if (sqlite3_prepare_v3(db, sqls[i], -1, SQLITE_PREPARE_PERSISTENT, &ix->st[i], NULL) !=
            SQLITE_OK) {
            index_close(ix);
            return -EIO;
        }
    }
    *out = ix;
    return 0;
}

void index_close(struct index *ix)
{
    if (!ix)
        return;
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(ix->st[i]);
    free(ix);
}

sqlite3 *index_db(struct index *ix)
{
    return ix->db;
}

static char *col_dup(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? strdup((const char *)t) : NULL;
}

static void read_node(sqlite3_stmt *s, struct node *n)
{
    memset(n, 0, sizeof(*n));
    n->ino = sqlite3_column_int64(s, 0);
    n->parent = sqlite3_column_int64(s, 1);
    n->name = col_dup(s, 2);
    n->top = col_dup(s, 3);
    n->path = col_dup(s, 4);
    n->kind = sqlite3_column_int(s, 5);
    n->size = sqlite3_column_int64(s, 6);
    n->mtime = sqlite3_column_int64(s, 7);
    const unsigned char *d = sqlite3_column_text(s, 8);
    if (d)
        snprintf(n->digest, sizeof(n->digest), "%s", d);
    n->expect = col_dup(s, 9);
    n->url = col_dup(s, 10);
    n->is_mutable = sqlite3_column_int(s, 11);
    n->etag = col_dup(s, 12);
    n->last_modified = col_dup(s, 13);
    n->checked = sqlite3_column_int64(s, 14);
    n->neg_until = sqlite3_column_int64(s, 15);
    n->listed = sqlite3_column_int64(s, 16);
    n->stale = sqlite3_column_int(s, 17);
    n->local = sqlite3_column_int(s, 18);
    n->via = col_dup(s, 19);
    n->ctype = col_dup(s, 20);
}

void node_clear(struct node *n)
{
    free(n->name);
    free(n->top);
    free(n->path);
    free(n->expect);
    free(n->url);
    free(n->etag);
    free(n->last_modified);
    free(n->via);
    free(n->ctype);
    memset(n, 0, sizeof(*n));
}

static char *dupn(const char *s)
{
    return s ? strdup(s) : NULL;
}

int node_copy(struct node *dst, const struct node *src)
{
    *dst = *src;
    dst->name = dupn(src->name);
    dst->top = dupn(src->top);
    dst->path = dupn(src->path);
    dst->expect = dupn(src->expect);
    dst->url = dupn(src->url);
    dst->etag = dupn(src->etag);
    dst->last_modified = dupn(src->last_modified);
    dst->via = dupn(src->via);
    dst->ctype = dupn(src->ctype);
    return 0;
}

static int one_node(sqlite3_stmt *s, struct node *out)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        read_node(s, out);
        rc = 0;
    } else {
        rc = rc == SQLITE_DONE ? -ENOENT : -EIO;
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc;
}

int index_get(struct index *ix, int64_t ino, struct node *out)
{
    sqlite3_stmt *s = ix->st[S_GET];
    sqlite3_bind_int64(s, 1, ino);
    return one_node(s, out);
}

int index_child(struct index *ix, int64_t parent, const char *name, struct node *out)
{
    sqlite3_stmt *s = ix->st[S_CHILD];
    sqlite3_bind_int64(s, 1, parent);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
    return one_node(s, out);
}

int index_find(struct index *ix, const char *top, const char *path, struct node *out)
{
    sqlite3_stmt *s = ix->st[S_FIND];
    sqlite3_bind_text(s, 1, top, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC);
    return one_node(s, out);
}

int index_children(struct index *ix, int64_t parent, struct node **out, size_t *n)
{
    sqlite3_stmt *s = ix->st[S_CHILDREN];
    size_t cap = 0, cnt = 0;
    struct node *list = NULL;
    int rc;
    sqlite3_bind_int64(s, 1, parent);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            struct node *nl = realloc(list, cap * sizeof(*nl));
            if (!nl) {
                rc = SQLITE_NOMEM;
                break;
            }
            list = nl;
        }
        read_node(s, &list[cnt++]);
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc != SQLITE_DONE) {
        index_nodes_free(list, cnt);
        return -EIO;
    }
    *out = list;
    *n = cnt;
    return 0;
}

void index_nodes_free(struct node *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        node_clear(&list[i]);
    free(list);
}

static void bind_node(sqlite3_stmt *s, const struct node *n)
{
    sqlite3_bind_int64(s, 1, n->ino);
    sqlite3_bind_int64(s, 2, n->parent);
    sqlite3_bind_text(s, 3, n->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, n->top ? n->top : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, n->path ? n->path : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 6, n->kind);
    sqlite3_bind_int64(s, 7, n->size);
    sqlite3_bind_int64(s, 8, n->mtime);
    if (n->digest[0])
        sqlite3_bind_text(s, 9, n->digest, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 9);
    sqlite3_bind_text(s, 10, n->expect, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 11, n->url, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 12, n->is_mutable);
    sqlite3_bind_text(s, 13, n->etag, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 14, n->last_modified, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 15, n->checked);
    sqlite3_bind_int64(s, 16, n->neg_until);
    sqlite3_bind_int64(s, 17, n->listed);
    sqlite3_bind_int(s, 18, n->stale);
    sqlite3_bind_int(s, 19, n->local);
    sqlite3_bind_text(s, 20, n->via, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 21, n->ctype, -1, SQLITE_STATIC);
}

int index_put(struct index *ix, struct node *n)
{
    sqlite3_stmt *s = ix->st[n->ino > 0 ? S_UPDATE : S_INSERT];
    bind_node(s, n);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW && n->ino <= 0)
        n->ino = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -EIO;
}

static int exec_bind(struct index *ix, const char *sql, const char *t1, int64_t i2)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(ix->db, sql, -1, &s, NULL) != SQLITE_OK)
        return -EIO;
    if (t1)
        sqlite3_bind_text(s, 1, t1, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(s, 1, i2);
    if (t1)
        sqlite3_bind_int64(s, 2, i2);
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

int index_remove(struct index *ix, int64_t ino)
{
    return exec_bind(ix,
                     "WITH RECURSIVE sub(i) AS (SELECT ?1 UNION ALL SELECT n.ino FROM node n, sub "
                     "WHERE n.parent = sub.i) DELETE FROM node WHERE ino IN sub",
                     NULL, ino);
}

int index_move(struct index *ix, int64_t ino, int64_t new_parent, const char *new_name,
               const char *new_path)
{
    struct node old;
    if (index_child(ix, new_parent, new_name, &old) == 0) {
        int rc = index_remove(ix, old.ino);
        node_clear(&old);
        if (rc < 0)
            return rc;
    }
    struct node n;
    int rc = index_get(ix, ino, &n);
    if (rc < 0)
        return rc;
    char *oldpath = n.path;
    size_t oldlen = strlen(oldpath);
    sqlite3_stmt *s;
    /* Children keep their place under the moved node; only their path prefix changes. */
    if (sqlite3_prepare_v2(ix->db,
                           "UPDATE node SET path = ?2 || substr(path, ?3) WHERE top = ?1 AND "
                           "substr(path, 1, ?4) = ?5",
                           -1, &s, NULL) != SQLITE_OK) {
        node_clear(&n);
        return -EIO;
    }
    char prefix[4096];
    snprintf(prefix, sizeof(prefix), "%s/", oldpath);
    char newprefix[4096];
    snprintf(newprefix, sizeof(newprefix), "%s/", new_path);
    sqlite3_bind_text(s, 1, n.top, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, newprefix, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, (int64_t)oldlen + 2);
    sqlite3_bind_int64(s, 4, (int64_t)oldlen + 1);
    sqlite3_bind_text(s, 5, prefix, -1, SQLITE_STATIC);
    rc = sqlite3_step(s) == SQLITE_DONE ? 0 : -EIO;
    sqlite3_finalize(s);
    if (rc == 0) {
        n.parent = new_parent;
        free(n.name);
        n.name = strdup(new_name);
        n.path = strdup(new_path);
        free(oldpath);
        rc = index_put(ix, &n);
    } else {
        free(oldpath);
        n.path = NULL;
    }
    node_clear(&n);
    return rc;
}

int index_remove_top(struct index *ix, const char *top, bool keep_top)
{
    return exec_bind(ix,
                     keep_top ? "DELETE FROM node WHERE top = ?1 AND path != '' AND ?2 >= 0"
                              : "DELETE FROM node WHERE top = ?1 AND ?2 >= 0",
                     top, 0);
}

int index_tops(struct index *ix, char ***keys, size_t *n)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(ix->db, "SELECT name FROM node WHERE parent = 1 ORDER BY name", -1, &s,
                           NULL) != SQLITE_OK)
        return -EIO;
    size_t cnt = 0, cap = 8;
    char **list = calloc(cap + 1, sizeof(char *));
    while (list && sqlite3_step(s) == SQLITE_ROW) {
        if (cnt == cap) {
            char **nl = realloc(list, (cap * 2 + 1) * sizeof(char *));
            if (!nl)
                break;
            list = nl;
            cap *= 2;
        }
        list[cnt++] = col_dup(s, 0);
        list[cnt] = NULL;
    }
    sqlite3_finalize(s);
    if (!list)
        return -ENOMEM;
    *keys = list;
    *n = cnt;
    return 0;
}

int index_object_put(struct index *ix, const char *digest, int64_t size, bool local)
{
    sqlite3_stmt *s = ix->st[S_OBJ_PUT];
    sqlite3_bind_text(s, 1, digest, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, size);
    sqlite3_bind_int(s, 3, local);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

static void read_object(sqlite3_stmt *s, struct object_info *o)
{
    memset(o, 0, sizeof(*o));
    snprintf(o->digest, sizeof(o->digest), "%s", sqlite3_column_text(s, 0));
    o->size = sqlite3_column_int64(s, 1);
    o->atime = sqlite3_column_int64(s, 2);
    o->pinned = sqlite3_column_int(s, 3);
    o->local = sqlite3_column_int(s, 4);
}

int index_object_get(struct index *ix, const char *digest, struct object_info *out)
{
    sqlite3_stmt *s = ix->st[S_OBJ_GET];
    sqlite3_bind_text(s, 1, digest, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        read_object(s, out);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : -EIO;
}

int index_object_touch(struct index *ix, const char *digest, int64_t now)
{
    sqlite3_stmt *s = ix->st[S_OBJ_TOUCH];
    sqlite3_bind_text(s, 1, digest, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, now);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

int index_object_pin(struct index *ix, const char *digest, bool pinned)
{
    int rc = exec_bind(ix, "UPDATE object SET pinned = ?2 WHERE digest = ?1", digest, pinned);
    if (rc == 0 && sqlite3_changes(ix->db) == 0)
        return -ENOENT;
    return rc;
}

int index_object_delete(struct index *ix, const char *digest)
{
    return exec_bind(ix, "DELETE FROM object WHERE digest = ?1 AND ?2 >= 0", digest, 0);
}

/* Runs a (sum, count) query; top, when not NULL, is bound as ?1. */
static int totals(struct index *ix, const char *sql, const char *top, int64_t *bytes,
                  int64_t *count)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(ix->db, sql, -1, &s, NULL) != SQLITE_OK)
        return -EIO;
    if (top)
        sqlite3_bind_text(s, 1, top, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *bytes = sqlite3_column_int64(s, 0);
        *count = sqlite3_column_int64(s, 1);
    }
    sqlite3_finalize(s);
    return rc == SQLITE_ROW ? 0 : -EIO;
}

int index_object_totals(struct index *ix, int64_t *bytes, int64_t *count)
{
    return totals(ix, "SELECT COALESCE(SUM(size),0), COUNT(*) FROM object WHERE local = 0", NULL,
                  bytes, count);
}

int index_local_totals(struct index *ix, int64_t *bytes, int64_t *count)
{
    return totals(ix, "SELECT COALESCE(SUM(size),0), COUNT(*) FROM object WHERE local = 1", NULL,
                  bytes, count);
}

int index_local_usage(struct index *ix, const char *top, int64_t *bytes, int64_t *files)
{
    return totals(ix,
                  "SELECT COALESCE(SUM(size),0), COUNT(*) FROM node WHERE top = ?1 AND local = 1 "
                  "AND kind = 2",
                  top, bytes, files);
}

static int object_list(struct index *ix, const char *sql, size_t max, struct object_info **out,
                       size_t *n)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(ix->db, sql, -1, &s, NULL) != SQLITE_OK)
        return -EIO;
    sqlite3_bind_int64(s, 1, (int64_t)max);
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
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) {
        free(list);
        return -EIO;
    }
    *out = list;
    *n = cnt;
    return 0;
}

int index_object_lru(struct index *ix, struct object_info **out, size_t *n, size_t max)
{
    return object_list(ix,
                       "SELECT digest, size, atime, pinned, local FROM object WHERE local = 0 AND "
                       "pinned = 0 ORDER BY atime LIMIT ?1",
                       max, out, n);
}

int index_object_all(struct index *ix, struct object_info **out, size_t *n)
{
    return object_list(ix,
                       "SELECT digest, size, atime, pinned, local FROM object ORDER BY digest "
                       "LIMIT ?1",
                       (size_t)INT64_MAX, out, n);
}

int index_digest_referenced(struct index *ix, const char *digest)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(ix->db, "SELECT 1 FROM node WHERE digest = ?1 LIMIT 1", -1, &s, NULL) !=
        SQLITE_OK)
        return -EIO;
    sqlite3_bind_text(s, 1, digest, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -EIO;
}

int index_setting_get(struct index *ix, const char *key, char *buf, size_t len)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(ix->db, "SELECT value FROM setting WHERE key = ?1", -1, &s, NULL) !=
        SQLITE_OK)
        return -EIO;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        snprintf(buf, len, "%s", (const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : -EIO;
}

int index_setting_set(struct index *ix, const char *key, const char *value)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(ix->db,
                           "INSERT INTO setting(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO "
                           "UPDATE SET value = ?2",
                           -1, &s, NULL) != SQLITE_OK)
        return -EIO;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, value, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

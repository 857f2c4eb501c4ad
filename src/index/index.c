/*
 * index: SQLite rows for nodes and objects (see index.h). Statements are
 * prepared once per connection; every function resets what it used.
 */
#include "index_i.h"
#include "upstreamfs/state.h"

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
#define OBJECT_COLS  "digest, size, atime, pinned, local"
#define PARTIAL_COLS "key, name, url, size, chunk, etag, last_modified, present, updated"

_Static_assert(NODE_ABSENT == 0 && NODE_FILE == 2, "the SQL below names kinds by number");

/* Every statement the index runs (index_i.h names them); SQL on the cache tables lives here. */
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
    [S_REMOVE] = "WITH RECURSIVE sub(i) AS (SELECT ?1 UNION ALL SELECT n.ino FROM node n, sub "
                 "WHERE n.parent = sub.i) DELETE FROM node WHERE ino IN sub",
    /* Children keep their place under a moved node; only their path prefix changes. */
    [S_MOVE_PATHS] = "UPDATE node SET path = ?2 || substr(path, ?3) WHERE top = ?1 AND "
                     "substr(path, 1, ?4) = ?5",
    [S_REMOVE_TOP] = "DELETE FROM node WHERE top = ?1",
    [S_REMOVE_BELOW_TOP] = "DELETE FROM node WHERE top = ?1 AND path != ''",
    [S_TOPS] = "SELECT name FROM node WHERE parent = 1 ORDER BY name",
    [S_REFERENCED] = "SELECT 1 FROM node WHERE digest = ?1 LIMIT 1",
    [S_DIGESTS_UNDER] = "WITH RECURSIVE sub(i) AS (SELECT ?1 UNION ALL SELECT n.ino FROM node n, "
                        "sub WHERE n.parent = sub.i) SELECT DISTINCT n.digest FROM node n "
                        "WHERE n.ino IN sub AND n.digest IS NOT NULL",
    [S_FIND_BELOW] = "SELECT ino, path FROM node WHERE top = ?1 AND path >= ?2 AND "
                     "path < ?3 AND kind = 2 AND substr(path, -?4) = ?5",
    [S_OBJ_PUT] =
        "INSERT INTO object(digest, size, atime, local) VALUES (?1, ?2, strftime('%s'), ?3)"
        " ON CONFLICT(digest) DO UPDATE SET size=?2, local=MAX(local, ?3)",
    [S_OBJ_GET] = "SELECT " OBJECT_COLS " FROM object WHERE digest = ?1",
    [S_OBJ_TOUCH] = "UPDATE object SET atime = ?2 WHERE digest = ?1",
    [S_OBJ_PIN] = "UPDATE object SET pinned = ?2 WHERE digest = ?1",
    [S_OBJ_DELETE] = "DELETE FROM object WHERE digest = ?1",
    /* Kept by the triggers of schema.c's version 4: one row per value of object.local. */
    [S_OBJ_TOTALS] = "SELECT bytes, count FROM object_totals WHERE local = ?1",
    [S_SCOPE_ADD] = "INSERT OR IGNORE INTO object_scope(digest, top, repo) VALUES (?1, ?2, ?3)",
    [S_SCOPE_HAS] = "SELECT 1 FROM object_scope WHERE digest = ?1 AND top = ?2 AND repo = ?3 "
                    "LIMIT 1",
    [S_LOCAL_USAGE] = "SELECT COALESCE(SUM(size),0), COUNT(*) FROM node WHERE top = ?1 AND "
                      "local = 1 AND kind = 2",
    [S_OBJ_LRU] = "SELECT " OBJECT_COLS " FROM object WHERE local = 0 AND pinned = 0 "
                  "ORDER BY atime LIMIT ?1",
    [S_OBJ_ALL] = "SELECT " OBJECT_COLS " FROM object ORDER BY digest LIMIT ?1",
    [S_SETTING_GET] = "SELECT value FROM setting WHERE key = ?1",
    [S_SETTING_SET] = "INSERT INTO setting(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO "
                      "UPDATE SET value = ?2",
    /* Per top: distinct objects its files point at, split by local content. */
    [S_USE_OBJECTS] = "SELECT t.top, o.local, COUNT(*), COALESCE(SUM(o.size), 0) FROM (SELECT "
                      "DISTINCT top, digest FROM node WHERE kind = 2 AND digest IS NOT NULL AND "
                      "digest != '') t JOIN object o ON o.digest = t.digest GROUP BY t.top, "
                      "o.local",
    /* Per top: nodes last served stale. */
    [S_USE_STALE] = "SELECT top, COUNT(*) FROM node WHERE stale != 0 AND kind != 0 GROUP BY top",
    /* The largest cached objects, each with the mount path of the oldest file naming it. */
    [S_LARGEST] = "SELECT o.digest, o.size, o.atime, o.pinned, (SELECT CASE WHEN n.path = '' "
                  "THEN n.top ELSE n.top || '/' || n.path END FROM node n WHERE n.digest = "
                  "o.digest AND n.kind = 2 ORDER BY n.ino LIMIT 1) FROM object o WHERE o.local = "
                  "0 ORDER BY o.size DESC, o.digest LIMIT ?1",
    [S_PINNED] = "SELECT COUNT(*) FROM object WHERE pinned != 0 AND local = 0",
    /* Cached entries their upstream no longer lists (index_removed.c). */
    [S_RM_MARK] = "INSERT OR IGNORE INTO removed_upstream(top, path, since) VALUES (?1, ?2, ?3)",
    [S_RM_UNMARK] = "DELETE FROM removed_upstream WHERE top = ?1 AND path = ?2",
    [S_RM_GET] = "SELECT since FROM removed_upstream WHERE top = ?1 AND path = ?2",
    [S_RM_LIST] = "SELECT top, path, since FROM removed_upstream WHERE ?1 IS NULL OR top = ?1 "
                  "ORDER BY top, path",
    [S_RM_COUNT] = "SELECT COUNT(*) FROM removed_upstream",
    [S_USE_REMOVED] = "SELECT top, COUNT(*) FROM removed_upstream GROUP BY top",
    /* Partial objects' chunk maps (index_partial.c). */
    [S_PART_SAVE] = "INSERT INTO partial(key, name, url, size, chunk, etag, last_modified, map, "
                    "present, updated) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10) ON CONFLICT(key) "
                    "DO UPDATE SET name=?2, url=?3, size=?4, chunk=?5, etag=?6, "
                    "last_modified=?7, map=?8, present=?9, updated=?10",
    [S_PART_GET] = "SELECT " PARTIAL_COLS ", map FROM partial WHERE key = ?1",
    [S_PART_DELETE] = "DELETE FROM partial WHERE key = ?1",
    [S_PART_TOTALS] = "SELECT COALESCE(SUM(present), 0), COUNT(*) FROM partial",
    [S_PART_LIST] = "SELECT " PARTIAL_COLS " FROM partial WHERE updated <= ?1 ORDER BY updated, "
                    "key LIMIT ?2",
};

int index_open(sqlite3 *db, struct index **out)
{
    struct index *ix = calloc(1, sizeof(*ix));
    if (!ix)
        return -ENOMEM;
    ix->db = db;
    for (int i = 0; i < S_COUNT; i++) {
        int rc = sqlite3_prepare_v3(db, sqls[i], -1, SQLITE_PREPARE_PERSISTENT, &ix->st[i], NULL);
        if (rc != SQLITE_OK) {
            index_close(ix);
            return state_sqlite_errno(rc);
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

sqlite3_stmt *index__stmt(struct index *ix, enum index_stmt which)
{
    return ix->st[which];
}

int index__done(sqlite3_stmt *s, int rc)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return state_sqlite_errno(rc);
}

char *index__col_dup(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? strdup((const char *)t) : NULL;
}

static void read_node(sqlite3_stmt *s, struct node *n)
{
    memset(n, 0, sizeof(*n));
    n->ino = sqlite3_column_int64(s, 0);
    n->parent = sqlite3_column_int64(s, 1);
    n->name = index__col_dup(s, 2);
    n->top = index__col_dup(s, 3);
    n->path = index__col_dup(s, 4);
    n->kind = sqlite3_column_int(s, 5);
    n->size = sqlite3_column_int64(s, 6);
    n->mtime = sqlite3_column_int64(s, 7);
    const unsigned char *d = sqlite3_column_text(s, 8);
    if (d)
        snprintf(n->digest, sizeof(n->digest), "%s", d);
    n->expect = index__col_dup(s, 9);
    n->url = index__col_dup(s, 10);
    n->is_mutable = sqlite3_column_int(s, 11);
    n->etag = index__col_dup(s, 12);
    n->last_modified = index__col_dup(s, 13);
    n->checked = sqlite3_column_int64(s, 14);
    n->neg_until = sqlite3_column_int64(s, 15);
    n->listed = sqlite3_column_int64(s, 16);
    n->stale = sqlite3_column_int(s, 17);
    n->local = sqlite3_column_int(s, 18);
    n->via = index__col_dup(s, 19);
    n->ctype = index__col_dup(s, 20);
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
    if (rc == SQLITE_ROW)
        read_node(s, out);
    int err = index__done(s, rc);
    return rc == SQLITE_DONE ? -ENOENT : err;
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
    rc = index__done(s, rc);
    if (rc < 0) {
        index_nodes_free(list, cnt);
        return rc;
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
    return index__done(s, rc);
}

/* Runs a statement that returns no rows; 0 or a negative errno. */
static int run(sqlite3_stmt *s)
{
    return index__done(s, sqlite3_step(s));
}

int index_remove(struct index *ix, int64_t ino)
{
    sqlite3_stmt *s = ix->st[S_REMOVE];
    sqlite3_bind_int64(s, 1, ino);
    return run(s);
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
    size_t oldlen = strlen(n.path);
    char prefix[4096], newprefix[4096];
    snprintf(prefix, sizeof(prefix), "%s/", n.path);
    snprintf(newprefix, sizeof(newprefix), "%s/", new_path);
    sqlite3_stmt *s = ix->st[S_MOVE_PATHS];
    sqlite3_bind_text(s, 1, n.top, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, newprefix, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, (int64_t)oldlen + 2);
    sqlite3_bind_int64(s, 4, (int64_t)oldlen + 1);
    sqlite3_bind_text(s, 5, prefix, -1, SQLITE_STATIC);
    rc = run(s);
    if (rc == 0) {
        n.parent = new_parent;
        free(n.name);
        free(n.path);
        n.name = strdup(new_name);
        n.path = strdup(new_path);
        rc = n.name && n.path ? index_put(ix, &n) : -ENOMEM;
    }
    node_clear(&n);
    return rc;
}

int index_remove_top(struct index *ix, const char *top, bool keep_top)
{
    sqlite3_stmt *s = ix->st[keep_top ? S_REMOVE_BELOW_TOP : S_REMOVE_TOP];
    sqlite3_bind_text(s, 1, top, -1, SQLITE_STATIC);
    return run(s);
}

/* Appends a copy of column 0 of each row of s to a NULL-terminated list. */
static int text_list(sqlite3_stmt *s, char ***out, size_t *n)
{
    size_t cnt = 0, cap = 8;
    char **list = calloc(cap + 1, sizeof(char *));
    int rc = list ? SQLITE_OK : SQLITE_NOMEM;
    while (list && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (cnt == cap) {
            char **nl = realloc(list, (cap * 2 + 1) * sizeof(char *));
            if (!nl) {
                rc = SQLITE_NOMEM;
                break;
            }
            list = nl;
            cap *= 2;
        }
        if (!(list[cnt++] = index__col_dup(s, 0))) {
            rc = SQLITE_NOMEM;
            break;
        }
        list[cnt] = NULL;
    }
    rc = index__done(s, rc);
    if (rc < 0) {
        for (size_t i = 0; i < cnt; i++)
            free(list[i]);
        free(list);
        return rc;
    }
    *out = list;
    *n = cnt;
    return 0;
}

int index_tops(struct index *ix, char ***keys, size_t *n)
{
    return text_list(ix->st[S_TOPS], keys, n);
}

int index_digests_under(struct index *ix, int64_t ino, char ***digests, size_t *n)
{
    sqlite3_stmt *s = ix->st[S_DIGESTS_UNDER];
    sqlite3_bind_int64(s, 1, ino);
    return text_list(s, digests, n);
}

int index_find_below(struct index *ix, const char *top, const char *dir, const char *tail,
                     int64_t *ino)
{
    /* Paths below "<dir>/" sort in ["<dir>/", "<dir>0"): '0' follows '/'. */
    char *lo = NULL, *hi = NULL, *end = NULL;
    if (asprintf(&lo, "%s/", dir) < 0)
        lo = NULL;
    if (asprintf(&hi, "%s0", dir) < 0)
        hi = NULL;
    if (asprintf(&end, "/%s", tail) < 0)
        end = NULL;
    int rc = -ENOMEM;
    if (lo && hi && end) {
        size_t pl = strlen(lo), el = strlen(end);
        sqlite3_stmt *s = ix->st[S_FIND_BELOW];
        sqlite3_bind_text(s, 1, top, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, lo, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, hi, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 4, (sqlite3_int64)el);
        sqlite3_bind_text(s, 5, end, -1, SQLITE_STATIC);
        int step = SQLITE_DONE;
        rc = -ENOENT;
        while (rc == -ENOENT && (step = sqlite3_step(s)) == SQLITE_ROW) {
            const char *p = (const char *)sqlite3_column_text(s, 1);
            size_t n = p ? strlen(p) : 0;
            /* Exactly one name between dir and tail. */
            if (n > pl + el && memchr(p + pl, '/', n - pl - el) == NULL) {
                *ino = sqlite3_column_int64(s, 0);
                rc = 0;
            }
        }
        int err = index__done(s, step);
        if (rc == -ENOENT && err < 0)
            rc = err;
    }
    free(lo);
    free(hi);
    free(end);
    return rc;
}

int index_digest_referenced(struct index *ix, const char *digest)
{
    sqlite3_stmt *s = ix->st[S_REFERENCED];
    sqlite3_bind_text(s, 1, digest, -1, SQLITE_STATIC);
    int step = sqlite3_step(s);
    int rc = index__done(s, step);
    return rc < 0 ? rc : step == SQLITE_ROW;
}

/*
 * index: the cache's SQLite tables — nodes (what the mount shows) and
 * objects (what the store holds).
 *
 * A node is one name under a parent directory; its rowid is its FUSE inode
 * number, so inodes are stable across restarts and no inode holds an fd.
 * Inode numbers are never reused (AUTOINCREMENT, schema.c version 5): a
 * kernel or NFS client holding an old one gets ENOENT, never another file.
 * Root is inode 1. Each proxy or registry is a top-level node whose "top"
 * column is its key; every node below carries the same top and its path
 * relative to it. A node of kind NODE_ABSENT remembers a 404 until neg_until.
 *
 * An object is one file in the store, by sha256: size, last access, pin,
 * and whether it is local content (never evicted, not counted in the quota).
 * A file node points at its content through digest; the object may have
 * been evicted since, and is then fetched again.
 *
 * The index does no locking of its own: the caller serialises access to one
 * struct index (one connection). All SQL on these tables is in src/index;
 * errors are state_sqlite_errno's (a full disk is -ENOSPC, a locked
 * database -EBUSY, corruption -EIO).
 */
#ifndef UPSTREAMFS_INDEX_H
#define UPSTREAMFS_INDEX_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define INDEX_ROOT_INO 1

enum node_kind { NODE_ABSENT = 0, NODE_DIR = 1, NODE_FILE = 2 };

struct node {
    int64_t ino;
    int64_t parent;
    char *name;
    char *top;  /* proxy key or registry name; "" for the root */
    char *path; /* below top, "" for the top node itself */
    int kind;
    int64_t size; /* -1 unknown */
    int64_t mtime;
    char digest[65]; /* sha256 hex of the content, "" unknown */
    char *expect;    /* expected checksum "algo:hex" from upstream metadata, or NULL */
    char *url;       /* where the content comes from */
    bool is_mutable;
    char *etag;
    char *last_modified;
    int64_t checked;   /* when the remote last confirmed it (epoch s) */
    int64_t neg_until; /* NODE_ABSENT: remembered until */
    int64_t listed;    /* directories: when the remote listing was last read */
    bool stale;
    bool local;  /* registry local content */
    char *via;   /* registry: the upstream proxy that provides this node */
    char *ctype; /* media type of the content when the remote names one (manifests) */
};

struct index;

/* The SQL of the cache tables, applied as a state migration. */
extern const char index_schema_sql[];

int index_open(sqlite3 *db, struct index **out);
void index_close(struct index *ix);

void node_clear(struct node *n);
int node_copy(struct node *dst, const struct node *src);

int index_get(struct index *ix, int64_t ino, struct node *out);
/* -ENOENT when no row. */
int index_child(struct index *ix, int64_t parent, const char *name, struct node *out);
/* Children except NODE_ABSENT ones, ordered by name. */
int index_children(struct index *ix, int64_t parent, struct node **out, size_t *n);
void index_nodes_free(struct node *list, size_t n);

/* Inserts, or updates the row with the same (parent, name); sets n->ino. */
int index_put(struct index *ix, struct node *n);
/* Removes a node and everything below it. */
int index_remove(struct index *ix, int64_t ino);
/* Renames/moves a node (local content). Replaces an existing target row. */
int index_move(struct index *ix, int64_t ino, int64_t new_parent, const char *new_name,
               const char *new_path);
/* Removes every node of a top-level key except the top node when keep_top. */
int index_remove_top(struct index *ix, const char *top, bool keep_top);
/* Top-level keys present in the index. */
int index_tops(struct index *ix, char ***keys, size_t *n);
/* Finds a node by (top, path); -ENOENT when none. */
int index_find(struct index *ix, const char *top, const char *path, struct node *out);

struct object_info {
    char digest[65];
    int64_t size;
    int64_t atime;
    bool pinned;
    bool local;
};

int index_object_put(struct index *ix, const char *digest, int64_t size, bool local);
int index_object_get(struct index *ix, const char *digest, struct object_info *out);
int index_object_touch(struct index *ix, const char *digest, int64_t now);
int index_object_pin(struct index *ix, const char *digest, bool pinned);
int index_object_delete(struct index *ix, const char *digest);
/* Cache totals, local content excluded: running totals, one row read (index_objects.c). */
int index_object_totals(struct index *ix, int64_t *bytes, int64_t *count);
int index_local_totals(struct index *ix, int64_t *bytes, int64_t *count);
/* The local content of one registry (its top-level key): files and their bytes. */
int index_local_usage(struct index *ix, const char *top, int64_t *bytes, int64_t *files);
/* Evictable objects in LRU order (not pinned, not local), at most max. */
int index_object_lru(struct index *ix, struct object_info **out, size_t *n, size_t max);
/* Every object (for verify/gc). */
int index_object_all(struct index *ix, struct object_info **out, size_t *n);
/* Settings shared between processes on one state dir (e.g. "quota"). -ENOENT when unset. */
int index_setting_get(struct index *ix, const char *key, char *buf, size_t len);
int index_setting_set(struct index *ix, const char *key, const char *value);

/* Whether any node still points at a digest. */
int index_digest_referenced(struct index *ix, const char *digest);
/* Distinct digests of a node and everything below it (NULL-terminated, each malloc'd). */
int index_digests_under(struct index *ix, int64_t ino, char ***digests, size_t *n);
/* The file node at top/dir/<one name>/tail (dir: the path below top); -ENOENT when none. */
int index_find_below(struct index *ix, const char *top, const char *dir, const char *tail,
                     int64_t *ino);

/* Use of one top-level name (index_stats.c); the caller names the tops and zeroes the counts. */
struct index_usage {
    const char *top;
    int64_t objects, bytes, local_objects, local_bytes; /* distinct objects its files name */
    int64_t stale;                                      /* nodes last served stale */
    int64_t removed; /* entries marked removed-upstream (index_removed.c) */
};
int index_usage(struct index *ix, struct index_usage *u, size_t n);
/* The largest cached (non-local) objects, with the mount path of the oldest file naming each. */
struct index_artifact {
    char digest[65];
    int64_t size, atime;
    bool pinned;
    char *path; /* "top/path", or NULL when no file names it */
};
int index_largest(struct index *ix, size_t max, struct index_artifact **out, size_t *n);
void index_largest_free(struct index_artifact *list, size_t n);
/* Pinned cached objects. */
int index_pinned_count(struct index *ix, int64_t *count);

/*
 * Upstream removals (index_removed.c): cached entries (top, path) their upstream's document no
 * longer lists, since a Unix time. index_removed_sync marks and unmarks in one transaction.
 */
struct index_removed {
    char *top, *path;
    int64_t since;
};
int index_removed_sync(struct index *ix, const char *top, char *const *mark, size_t n_mark,
                       char *const *unmark, size_t n_unmark, int64_t now);
/* 1 when marked (*since set when not NULL), 0 when not, or -errno. */
int index_removed_get(struct index *ix, const char *top, const char *path, int64_t *since);
/* Every mark of top (NULL: of every top), by top and path. */
int index_removed_list(struct index *ix, const char *top, struct index_removed **out, size_t *n);
void index_removed_free(struct index_removed *list, size_t n);
int index_removed_count(struct index *ix, int64_t *count);

/*
 * Partial objects (index_partial.c; src/fetch/lazy.c keeps them): a large file fetched by
 * chunk, its bytes in STATEDIR/partial/<key>, its map of present chunks here so a restart
 * resumes it. key is the sha256 hex of the flight key, name the flight key itself, url where
 * the bytes come from (without its query: no signature is stored). map holds bit i of byte
 * i / 8 for chunk i (src/fetch/chunks.c); present is the bytes present; updated the Unix time
 * of the last save (eviction takes the oldest first).
 */
struct index_partial {
    char key[65];
    char *name, *url;
    int64_t size, chunk;
    char *etag, *last_modified; /* the validators of the answers the chunks came from */
    uint8_t *map;               /* NULL in a list */
    size_t map_len;
    int64_t present, updated;
};
/* Inserts or replaces the row of p->key. */
int index_partial_save(struct index *ix, const struct index_partial *p);
/* The row of key, map included (free with index_partial_clear); -ENOENT when none. */
int index_partial_get(struct index *ix, const char *key, struct index_partial *out);
void index_partial_clear(struct index_partial *p);
int index_partial_delete(struct index *ix, const char *key);
/* Bytes present of every partial object and how many there are: one SUM over the table. */
int index_partial_totals(struct index *ix, int64_t *bytes, int64_t *count);
/* The rows saved at or before Unix time before, oldest first, at most max, without maps. */
int index_partial_list(struct index *ix, int64_t before, size_t max, struct index_partial **out,
                       size_t *n);
void index_partial_list_free(struct index_partial *list, size_t n);

/* Blob and file scoping (index_scope.c): the location at the upstream an object URL names. */
void index_scope_repo(const char *url, char *buf, size_t len);
/* Records that proxy top downloaded and verified digest itself from repo. */
int index_scope_add(struct index *ix, const char *digest, const char *top, const char *repo);
/* 1 when proxy top obtained digest from repo, 0 when not, -EIO. */
int index_scope_has(struct index *ix, const char *digest, const char *top, const char *repo);

#endif

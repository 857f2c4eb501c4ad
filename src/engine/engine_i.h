/*
 * engine_i.h: the engine's private state, shared by the files of src/engine/
 * (engine.c lifecycle, reload.c config reloads, lookup.c names and
 * attributes, registry.c config tables and registry names, listing.c
 * directory listings, xattr.c extended attributes, reader.c opening and
 * reading, local.c registry local content, evict.c quota and cache
 * management, upstream.c per-proxy runtime). Nothing outside src/engine
 * includes it.
 *
 * Locking: e->mu guards the index connection and the open-object table. It
 * is never held across network I/O or a wait on a download. e->cfg_lock
 * guards the upstream and registry tables, which a reload swaps.
 */
#ifndef UPSTREAMFS_ENGINE_I_H
#define UPSTREAMFS_ENGINE_I_H

#include "upstreamfs/config.h"
#include "upstreamfs/engine.h"
#include "upstreamfs/flight.h"
#include "upstreamfs/index.h"
#include "upstreamfs/single_flight.h"
#include "upstreamfs/state.h"
#include "upstreamfs/store.h"
#include "upstream_i.h"

#include <pthread.h>
#include <stdatomic.h>

#define ENGINE_IMMUTABLE_TIMEOUT 86400.0
#define ENGINE_DIR_TIMEOUT       1.0
#define ENGINE_OPEN_TIMEOUT_MS   20000 /* connect + response headers */
#define ENGINE_STALL_MS          20000 /* no byte for this long: give up */

/* An open file: a stored object, a running download, or local content being written. */
struct engine_file {
    struct engine *e;
    int fd; /* complete content, or -1 while streaming */
    struct flight *flight;
    char digest[65]; /* object held open, protected from eviction */
    int64_t size;
    char proxy[64]; /* the proxy a download comes from (its failure's note) */
    /* local content being written (local.c) */
    bool writable;
    int64_t ino;
    char *tmp_path;
    bool dirty;
    bool shared; /* the temp file's inode is also the stored object: copy before writing */
    struct engine_file *prev, *next; /* e->files, under e->files_mu */
};

struct open_obj {
    char digest[65];
    int count;
    struct open_obj *next;
};

#define ENGINE_NODE_ERRORS 256

struct engine {
    char *state_dir;
    bool publish_health; /* engine_opts.publish_health */
    int fill;            /* engine_opts.fill: enum flight_fill */
    int streams;         /* engine_opts.streams */
    int64_t streams_min; /* engine_opts.streams_min */
    int64_t lazy_min;    /* engine_opts.lazy_min */
    const struct driver_ops *driver_override; /* engine_opts.driver_override (tests only) */
    struct state *st; /* the connection the index also uses, under mu */
    struct index *ix;
    pthread_mutex_t mu;
    struct store store;
    struct flight_table *flights;
    struct sf_group *docs; /* document fetches in progress (src/engine/documents.c) */
    struct open_obj *open_objs; /* under mu: objects that eviction must skip */

    pthread_rwlock_t cfg_lock;
    struct upstream **ups;
    size_t n_ups;
    struct registry *regs;
    size_t n_regs;
    long long generation;
    pthread_mutex_t reload_mu; /* held while reload_cb runs, and to change it */
    void (*reload_cb)(void *, const char *);
    void *reload_arg;

    pthread_t watcher;
    bool watcher_running;
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cv;
    bool stopping;
    int64_t bg[64]; /* directories being re-listed in the background, under stop_mu */
    size_t n_bg;

    int64_t quota;
    /* Every open file, so close can release what a front door never did (a killed mount). */
    pthread_mutex_t files_mu;
    struct engine_file *files;
    int64_t started; /* mtime of nodes that have none (the root) */
    char *platforms;
    int lock_fd; /* shared flock on STATEDIR/engine.lock while open */
    atomic_llong hits, misses, upstream_requests, evictions, stale_serves;
    atomic_llong upstream_bytes; /* bytes of downloads committed to the store */
    atomic_llong renders;        /* documents rendered for a client (rendered.c) */
    atomic_llong doc_reads;      /* stored documents read whole into memory (documents.c) */
    int64_t published[6];        /* the counters last written to STATEDIR/counters (counters.c) */
    bool counters_written;
    /* The last failed fetch of recently failing inodes (user.upstreamfs.error), src/engine/failed.c */
    pthread_mutex_t err_mu;
    struct engine_node_error {
        int64_t ino;
        struct failure f;
        int64_t at; /* Unix seconds */
    } errs[ENGINE_NODE_ERRORS];
    size_t errs_next;
};

/*
 * The end of an engine operation on ino for proxy u (rc its result): a
 * failure gets its cause (this thread's failure note, else the proxy's last
 * failure, else the errno's), is recorded on the proxy if no one did yet
 * and on ino for user.upstreamfs.error, and the mount's errno is that of
 * the cause (include/upstreamfs/failure.h). A success forgets ino's error.
 * Returns the errno for the front door (0 / rc on success).
 */
int engine__failed(struct engine *e, struct upstream *u, int64_t ino, int rc);
/* Records f (NULL: forgets) as the last failure of the node top/path (a download's). */
void engine__path_failed(struct engine *e, const char *top, const char *path,
                         const struct failure *f);
/* ino's user.upstreamfs.error value ("<cause> <status|-> <RFC 3339 time>"), or -ENODATA. */
int engine_node_error(struct engine *e, int64_t ino, char *buf, size_t n);

int64_t engine__now(void);

/* Writes this process's counters to STATEDIR/counters/PID when they changed (counters.c). */
void engine__counters_publish(struct engine *e);
void engine__counters_unpublish(struct engine *e);

/* A referenced upstream by key, or NULL. */
struct upstream *engine__upstream(struct engine *e, const char *key);
/* Copy of a registry's config (caller clears), or -ENOENT. */
int engine__registry(struct engine *e, const char *name, struct registry *out);
/* A copy of registry name's package policy (config.h, struct registry) into *out, cleared
 * with config_proxy_clear; false when it has none. */
bool engine__registry_policy(struct engine *e, const char *name, struct proxy *out);
bool engine__is_registry(struct engine *e, const char *name);

void engine__attr_from_node(struct engine *e, const struct node *n, struct engine_attr *a);
/* Resolves a path below a top-level key into its node (caller clears). */
int engine__resolve_node(struct engine *e, const char *top, const char *path, struct node *out);
/* "dir/name" or "name" when dir is empty; malloc'd. */
char *engine__join(const char *dir, const char *name);

void engine__obj_open(struct engine *e, const char *digest);
void engine__obj_close(struct engine *e, const char *digest);
bool engine__obj_is_open(struct engine *e, const char *digest);

/* Records a committed object and evicts if the quota is exceeded (takes mu). */
void engine__object_added(struct engine *e, const char *digest, int64_t size, bool local);
int64_t engine__default_quota(const char *state_dir);
/*
 * Evicts until the state dir's filesystem has room for length more bytes
 * plus a margin (the quota counts what the cache holds; this watches the
 * disk itself, which other files share). length -1: just the margin.
 */
void engine__ensure_room(struct engine *e, int64_t length);

/* Whether include/exclude let this path through (directories leading to an include pass). */
bool engine__path_allowed(const struct proxy *p, const char *path);
/* Whether a listing shows this path: the path rules and the package rules (policy.h) pass it. */
bool engine__path_listed(const struct proxy *p, const char *path);
/* Whether the rules of the proxy that provides n (a proxy's or a registry's node) hide it. */
bool engine__node_hidden(struct engine *e, const struct node *n);

/* Evicts one object unless it is not cached or local content: 1 evicted, 0 skipped, or -errno. */
int engine__evict_object(struct engine *e, const char *digest);

/*
 * Upstream removals (removals.c). engine__removals_check: the document that lists dir changed
 * at u's upstream; marks and unmarks dir's cached entries. engine__removed_hidden: n is marked
 * and its proxy hides such entries; engine__removed_refused: then the lookup's -EACCES with
 * cause policy, else 0. engine__removed_names: the names below dir that listings leave out
 * (each and the array malloc'd).
 */
void engine__removals_check(struct upstream *u, const char *dir);
bool engine__removed_hidden(struct engine *e, const struct node *n);
int engine__removed_refused(struct engine *e, const struct node *n);
int engine__removed_names(struct engine *e, const struct node *dir, char ***names, size_t *n);
/* user.upstreamfs.removed of ino: "removed-upstream <RFC 3339 time>", or -ENODATA. */
int engine__removed_xattr(struct engine *e, int64_t ino, char *buf, size_t len);

/*
 * The single-flight key of a download: content named by a sha256 is shared
 * by the paths of one proxy that name it (never across proxies: the scoping
 * rule, by_digest.c); anything else is per path.
 */
void engine__flight_key(const char *top, const char *path, const char *expect, char *buf,
                        size_t len);

/*
 * The scoping rule (by_digest.c): may n's proxy u serve the stored object hex
 * for n? 1: it obtained it from n's location, or u's upstream confirms it now
 * (then recorded); 0: ask by downloading; -ENOENT: the upstream said 404.
 */
int engine__scope_check(struct engine *e, struct upstream *u, const struct node *n,
                        const char *hex, int64_t *size);

/* Background work on a directory: at most one at a time per inode; close waits for all. */
bool engine__bg_begin(struct engine *e, int64_t ino);
void engine__bg_end(struct engine *e, int64_t ino);

/* ---- lookup (lookup.c) and registry names (registry.c) ---- */

/* The index's node ino into *out (caller clears), taking e->mu for the read. */
int engine__node_get(struct engine *e, int64_t ino, struct node *out);
/* Whether name can be a directory entry: 1 to 255 bytes, no '/', not "." or "..". */
bool engine__name_ok(const char *name);
/*
 * Records what the remote said about name below parent: de the entry, or NULL for a 404 kept
 * until neg_until. A file whose URL or expectation changed forgets its digest. With out, the
 * stored node is copied there (caller clears). Takes mu.
 */
int engine__remember(struct engine *e, const struct node *parent, const char *name,
                     const char *path, const struct drv_entry *de, int64_t neg_until,
                     struct node *out);
/* Resolves one name under a known parent node into *out (caller clears): from the index, or
 * from the remote when the index does not know it (or its absence expired). */
int engine__lookup_node(struct engine *e, int64_t parent_ino, const char *name, struct node *out);
/* A registry's non-local node takes what its upstream's node shows now (size, digest, ...). */
void engine__follow_via(struct engine *e, struct node *n);
/*
 * The upstream a registry directory is bound to (malloc'd): the one that provided the nearest
 * OCI image layout at or above dir; NULL when any upstream may provide a name below it.
 */
char *engine__registry_pinned(struct engine *e, const struct node *dir);
/* Looks name up below a registry directory: each upstream in order, 404 moving on. */
int engine__registry_lookup(struct engine *e, const struct node *parent, const char *name,
                            struct node *out);

/* ---- opening files (reader.c, download.c) ---- */

/* Opens a stored object as a complete file, protected from eviction while open. */
int engine__open_blob(struct engine *e, const char *hex, struct engine_file **out);
/* Sets n's stale flag in the index and, with checked, its last check to now. */
void engine__mark_node(struct engine *e, const struct node *n, bool stale, bool checked);
/*
 * The remote failed with err: serves the stored copy (have) marked stale, counting it, or
 * returns err (the front door's errno then comes from its cause: engine__failed).
 */
int engine__serve_stale(struct engine *e, const struct node *n, bool have, int err,
                        struct engine_file **out);
/* Records n as absent (a 404) for neg_ttl seconds. */
void engine__remember_absent(struct engine *e, const struct node *n, int64_t neg_ttl);
/*
 * Opens n of proxy u from its remote (download.c): a sha256-named object this proxy stored
 * already, else a download shared through the flight table. have: a stored copy past its TTL,
 * revalidated with a conditional request and served stale if the remote fails. *changed: the
 * content may differ from what the kernel cached.
 */
int engine__open_download(struct engine *e, struct upstream *u, struct node *n, bool have,
                          const struct engine_wait *w, struct engine_file **out, bool *changed);

/*
 * A download that failed, as this operation's front door tells it (download.c): its own cause,
 * never the proxy's last failure; a failed verification notes cause digest. The flight's error.
 */
int engine__download_failed(struct flight *fl, const char *proxy, const char *url);

/* Registry local content (local.c). */
struct engine_file *engine__local_open_read(struct engine *e, const struct node *n, int *err);
/* Stores a written local file on close: hash, commit, point the node at it. */
int engine__local_commit(struct engine_file *f);
struct engine_file *engine__file_new(struct engine *e);
/* Closes every file still open (engine_close: a front door that went away without releasing). */
void engine__close_all_files(struct engine *e);

#endif

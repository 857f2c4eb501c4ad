/*
 * engine: the one core behind both front doors (FUSE and the HTTP shim).
 *
 * It resolves names to nodes (inode numbers are index row ids), opens files
 * as readers that stream from the store or from a running download, and
 * keeps the cache policies (docs/ARCHITECTURE.md): freshness by TTL, negative caching,
 * stale-if-error, per-proxy back-off, include/exclude, offline proxies,
 * registries (local content, then each upstream in order), quota and LRU
 * eviction. Front doors translate requests into these calls and replies;
 * they know no protocol.
 *
 * Every function returns 0 (or a count) or a negative errno that a front
 * door can pass on unchanged: ENOENT, EIO (remote failed and nothing is
 * cached), ENETUNREACH (offline proxy, nothing cached), EROFS (write to a
 * proxy tree), ENOSPC, EINTR (the caller gave up), ETIMEDOUT.
 */
#ifndef UPSTREAMFS_ENGINE_H
#define UPSTREAMFS_ENGINE_H

#include "upstreamfs/config.h"
#include "upstreamfs/health.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct driver_ops;
struct drv_local_file;
struct engine;
struct engine_file;

struct engine_opts {
    const char *state_dir;
    int64_t quota_bytes;   /* 0: default (min(10 GiB, half the free space)) */
    const char *platforms; /* docker: "os/arch[/variant][:os/arch...]" to show, or NULL for all */
    /*
     * A mount (or serve) owns the cache's quota and publishes it, and its platform filter,
     * in the state; other engines on the state dir (cache, prefetch, import) use the
     * published ones. Image layouts learned under another filter are forgotten.
     */
    bool owns_quota;
    /* A mount or serve: writes each proxy's health to STATEDIR/health/<key>.json (health.h). */
    bool publish_health;
    /* When a partial object's missing chunks are fetched: enum flight_fill (0: auto). */
    int fill;
    /* Concurrent ranged requests of a partial object's fill, and the size from which (0: defaults). */
    int streams;
    int64_t streams_min;
    /* Files of this size or more are partial objects (0: FLIGHT_LAZY_MIN; < 0: none). */
    int64_t lazy_min;
    /*
     * Test-only (tests/unit/test_driver.c): every proxy uses this driver instead of its
     * type's. NULL everywhere else.
     */
    const struct driver_ops *driver_override;
};

/* Attributes a front door needs; timeouts tell the kernel how long to trust them. */
struct engine_attr {
    int64_t ino;
    int kind; /* NODE_DIR or NODE_FILE */
    int64_t size;
    int64_t mtime;
    bool writable;   /* registry local content: the node may be changed */
    bool is_mutable; /* content may change: short kernel timeouts */
    double timeout;  /* seconds the kernel may cache entry and attributes */
    /*
     * Mutable files: seconds the content stays fresh before the remote is asked again (the
     * proxy's TTL less the time since the remote last confirmed it; the whole TTL for content
     * never fetched, which a reader will fetch now); 0 for local content and content past its
     * TTL. Immutable files and directories: 0 (unused).
     */
    int64_t fresh_for;
};

struct engine_dirent {
    char *name;
    struct engine_attr attr;
};

/* Lets a long wait end early (an interrupted FUSE request, a closed client). */
struct engine_wait {
    bool (*cancelled)(void *arg);
    void *arg;
    /*
     * Where the opener will read first (a shim Range): a large file's first chunk fetched.
     * -1: not known before the first read (a FUSE open); an uncached large file's open then
     * returns before the remote answers, and the first read's chunk is the one asked for.
     */
    int64_t first_offset;
    int64_t first_len; /* and how much it reads from there (0: unknown), asked in one request */
};

int engine_open(const struct engine_opts *opts, struct engine **out);
/* Stops downloads and background threads; open files must be closed first. */
void engine_close(struct engine *e);

/* The -o platform= filter ("linux/amd64:linux/arm64"), or NULL when every platform shows. */
const char *engine_platform_filter(const struct engine *e);

/* Re-reads proxies and registries if they changed (also done every second by a thread). */
int engine_reload(struct engine *e);
/*
 * cb is called after a reload, from the engine's watcher thread, once for every top-level
 * name (proxy or registry) whose tree the new config may show differently (a proxy's
 * settings changed, such as its include/exclude, or it went away; a registry that lists
 * it), so a front door can drop what it cached of that tree. Setting cb to NULL returns
 * once no call is running.
 */
void engine_on_reload(struct engine *e, void (*cb)(void *arg, const char *name), void *arg);

int engine_lookup(struct engine *e, int64_t parent, const char *name, struct engine_attr *out);
int engine_getattr(struct engine *e, int64_t ino, struct engine_attr *out);
int engine_readdir(struct engine *e, int64_t ino, struct engine_dirent **out, size_t *n);
void engine_dirents_free(struct engine_dirent *list, size_t n);
/* Resolves "key/a/b" from the mount root, component by component. */
int engine_resolve(struct engine *e, const char *path, struct engine_attr *out);

/*
 * Finds, from the index alone (never the network, never a download), a file
 * already shown (listed or looked up) at "<dir>/<one name>/<tail>": with dir
 * "hub/library/alpine" and tail "blobs/sha256/<hex>", a blob that some tag or
 * digest directory of that repository has listed. dir names a proxy or
 * registry and a path below it ("key/a/b"); the one name between dir and tail
 * holds no '/'. Fills *out as engine_getattr would. Returns 0; -ENOENT when
 * no such file is known; -EINVAL for a dir without a path below its key or
 * an empty tail.
 */
int engine_find_below(struct engine *e, const char *dir, const char *tail, struct engine_attr *out);

/*
 * A blob by digest ("sha256:<hex>") of repository repo of proxy or registry
 * key that no manifest listed (by_digest.c): a file outside the mount's tree
 * that is read from key's own upstream (a registry: the first of its
 * upstreams that has it). Fills *out as engine_getattr would. Returns 0;
 * -ENOENT when the protocol has no such URL or the upstream said 404 within
 * the negative TTL; other -errno.
 */
int engine_blob(struct engine *e, const char *key, const char *repo, const char *digest,
                struct engine_attr *out);
/*
 * Before answering a HEAD for content named by digest: 0 when the node's
 * proxy may serve it (the scoping rule of by_digest.c: its own copy, or its
 * upstream confirms it now), *a refreshed; -ENOENT when the upstream does not
 * have it; other -errno. No body is downloaded where the protocol has a HEAD.
 */
int engine_blob_confirm(struct engine *e, int64_t ino, struct engine_attr *a);

/*
 * Opens a file for reading. *keep_cache says the kernel may keep its pages
 * from an earlier open (the content did not change); *changed says this
 * open found new content, so the front door should invalidate the inode.
 */
int engine_file_open(struct engine *e, int64_t ino, const struct engine_wait *w,
                     struct engine_file **out, bool *keep_cache, bool *changed);
ssize_t engine_file_read(struct engine_file *f, void *buf, size_t len, off_t off,
                         const struct engine_wait *w);
/*
 * A read of a download in progress, for a reply by splice: waits as engine_file_read and
 * returns how many bytes at off may be read now, unread, from *fd. When more than 0, *held
 * keeps the download (its fd open, its file not given back) until engine_read_fd_done(*held),
 * called once the reply is sent, when f may be closed already (a FUSE release can follow the
 * reply at once). -EAGAIN when the file is not a download in progress.
 */
ssize_t engine_file_read_fd(struct engine_file *f, size_t len, off_t off,
                            const struct engine_wait *w, int *fd, void **held);
void engine_read_fd_done(void *held);
/* An fd with the complete content, or -EAGAIN while it is still arriving. */
int engine_file_fd(struct engine_file *f);
/*
 * The fd and size of stored, read-only content as the file was opened with
 * it, or -EAGAIN (a download still arriving, local content open for
 * writing). Never waits and changes nothing, so concurrent readers of one
 * open file may ask; the fd stays valid until engine_file_close.
 */
int engine_file_blob(const struct engine_file *f, int64_t *size);
int64_t engine_file_size(struct engine_file *f);
/*
 * Reads a whole file (at most max bytes) into a malloc'd, NUL-terminated
 * buffer: fetching it if needed, waiting until it is stored and verified.
 * -EFBIG past max.
 */
int engine_read_all(struct engine *e, int64_t ino, const struct engine_wait *w, size_t max,
                    char **out, size_t *len);
/* engine_read_all of a file already open (it stays open). */
int engine_file_read_all(struct engine_file *f, const struct engine_wait *w, size_t max,
                         char **out, size_t *len);
/* Waits until the whole content is in the store (prefetch). */
int engine_file_wait(struct engine_file *f, const struct engine_wait *w);
int engine_file_close(struct engine_file *f);

/*
 * Extended attributes (user.upstreamfs.digest|source|cached|stale, and removed:
 * src/engine/removals.c).
 */
/* Every proxy's health (malloc'd array, caller frees), or one proxy's (-ENOENT: no such proxy). */
int engine_health(struct engine *e, struct health_snapshot **out, size_t *n);
int engine_proxy_health(struct engine *e, const char *key, struct health_snapshot *out);
/*
 * What serves the top-level key, from the loaded configuration (no query):
 * its type, its source (SOURCE_NONE for a registry; source may be NULL) and
 * whether it is a registry. 0, or -ENOENT when no proxy or registry has it.
 */
int engine_proxy_type(struct engine *e, const char *key, enum proxy_type *type,
                      enum proxy_source *source, bool *is_registry);
/*
 * The failure the last fetch of node ino met (what user.upstreamfs.error
 * shows), and when (at may be NULL); -ENODATA when it did not fail.
 */
int engine_node_failure(struct engine *e, int64_t ino, struct failure *f, int64_t *at);

int engine_getxattr(struct engine *e, int64_t ino, const char *name, char *buf, size_t len);
int engine_listxattr(struct engine *e, int64_t ino, char *buf, size_t len);

/* Registry local content. */
int engine_create(struct engine *e, int64_t parent, const char *name, struct engine_file **out,
                  struct engine_attr *attr);
int engine_file_open_write(struct engine *e, int64_t ino, bool truncate, struct engine_file **out);
ssize_t engine_file_write(struct engine_file *f, const void *buf, size_t len, off_t off);
/* Stores what was written so far (close(2) returns after this); later writes continue. */
int engine_file_flush(struct engine_file *f);
int engine_truncate(struct engine *e, int64_t ino, int64_t size, struct engine_file *f);
int engine_mkdir(struct engine *e, int64_t parent, const char *name, struct engine_attr *attr);
int engine_unlink(struct engine *e, int64_t parent, const char *name);
int engine_rmdir(struct engine *e, int64_t parent, const char *name);
int engine_rename(struct engine *e, int64_t parent, const char *name, int64_t newparent,
                  const char *newname);

/*
 * Copies the file tree at src_dir into a registry's local content at dest
 * ("NAME/a/b", created as needed), as if written through the mount: each
 * file stored by digest, never evicted. Existing local names are replaced.
 * *files and *bytes count what was imported. Returns 0, -ENOENT (no such
 * registry), -EROFS (dest is not in a registry), or the first I/O error.
 */
/*
 * The files of a registry's local content directly below dir ("REGISTRY/path"), with size
 * and sha256, from the index alone (no network). *n = 0 when there are none (or dir is no
 * directory the index knows). Free with engine_local_files_free.
 */
int engine_local_files(struct engine *e, const char *dir, struct drv_local_file **out, size_t *n);
void engine_local_files_free(struct drv_local_file *files, size_t n);

int engine_import(struct engine *e, const char *dest, const char *src_dir, int64_t *files,
                  int64_t *bytes);
/*
 * One file (the content read from fd) as local content dest/name ("NAME/a/b" created as
 * needed), replacing one of that name; *bytes grows by its size. Returns as engine_import.
 */
int engine_import_file(struct engine *e, const char *dest, const char *name, int fd,
                       int64_t *bytes);

/* A file the cache holds (cached.c): its path below the key, size and sha256. */
struct engine_cached {
    char *path;
    int64_t size;
    char sha256[65];
};
/*
 * Every file below proxy or registry key whose content is in the store (cached or local),
 * from the index alone: no network, nothing fetched. *n = 0 for a key the index does not know.
 */
int engine_cached_files(struct engine *e, const char *key, struct engine_cached **out, size_t *n);
void engine_cached_free(struct engine_cached *list, size_t n);

struct engine_stats {
    int64_t cache_bytes, cache_objects;
    int64_t local_bytes, local_objects;
    int64_t quota_bytes;
    int64_t hits, misses, upstream_requests, evictions, stale_serves;
    int64_t upstream_bytes; /* bytes of completed downloads */
    int64_t partial_bytes, partial_objects; /* partial objects (src/fetch/lazy.c): bytes present */
    int64_t renders;        /* documents rendered for a client (src/engine/rendered.c) */
    int64_t doc_reads;      /* stored documents read whole into memory (src/engine/documents.c) */
    int inflight;
    int64_t removed_upstream; /* cached entries marked removed-upstream (src/engine/removals.c) */
};
int engine_stats(struct engine *e, struct engine_stats *out);
/*
 * Adds the counters (hits, misses, upstream_requests, upstream_bytes, evictions, stale_serves)
 * of every running process on state_dir into *sum; *procs: how many (counters.c).
 */
int engine_counters_running(const char *state_dir, struct engine_stats *sum, int *procs);

/*
 * Cache management on a mount path ("key/a/b"): the number of objects pinned
 * (unpinned, evicted), with *failed (may be NULL) the number that could not
 * be (an index error; for evict also -EBUSY, held open by a reader). Files
 * not cached and local content are skipped, not failures. When nothing was
 * done and something failed, the first failure's -errno; pin: -ENODATA when
 * nothing under path is cached.
 */
int engine_pin(struct engine *e, const char *path, bool pin, int *failed);
int engine_evict_path(struct engine *e, const char *path, int *failed);
/*
 * "cache purge KEY/NAME[@VERSION]" (src/engine/removals.c): deletes for good the entries
 * marked removed-upstream that spec names (removals_spec_matches), their nodes and the
 * objects no other node names. Returns the count, with their mount paths in *paths (free
 * each and the array); *failed: objects or entries that could not be removed. -EINVAL for a
 * malformed spec, -ENODATA when no marked entry matches.
 */
int engine_purge(struct engine *e, const char *spec, char ***paths, size_t *n, int *failed);
/* Evicts LRU objects until the cache is under target bytes; returns the count. */
int engine_evict_to(struct engine *e, int64_t target);
/* Re-hashes every object; counts bad ones (removed) into *bad. */
int engine_verify(struct engine *e, int64_t *checked, int64_t *bad);
/* Removes objects no node refers to and leftovers in tmp/. */
int engine_gc(struct engine *e, int64_t *removed);

#endif

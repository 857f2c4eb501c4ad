/*
 * driver: the one interface every upstream type implements. A driver is the
 * only place a remote protocol lives: it maps a path inside a proxy to a
 * directory, a file (where its bytes come from, how to verify them, whether
 * they can change), or nothing. The engine does caching, freshness,
 * single flight and error policy around it.
 *
 * Return conventions for every op: 0 success; -ENOENT the remote says the
 * thing does not exist (cached as absence for --negative-ttl); -EREMOTEIO the
 * remote failed (5xx, 429, timeout, refused: never remembered as absence);
 * -EACCES the remote refused the credentials; -EIO the remote answered
 * something malformed; -ENOTSUP the op does not apply. A status becomes one
 * of these through failure_status_errno (include/upstreamfs/failure.h);
 * the errno the mount returns comes from the failure's cause, not from
 * these. Paths are relative to the proxy root, no leading '/', "" for root.
 */
#ifndef UPSTREAMFS_DRIVER_H
#define UPSTREAMFS_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct curl_slist;

struct upstream;
struct upstream_doc;
struct upstream_doc_req;
struct proxy;

struct drv_entry {
    char *name;   /* listings only */
    int kind;     /* NODE_DIR or NODE_FILE */
    int64_t size; /* -1 unknown */
    int64_t mtime;
    char *url;    /* files: where the bytes come from */
    char *expect; /* files: checksum the bytes must have ("algo:hex"), or NULL */
    bool is_mutable;
    bool generated;     /* files: bytes come from driver->generate, not from url */
    char *content_type; /* files: media type, when the protocol names one */
};

/* A file of a registry's local content, as a registry's merged documents list it. */
struct drv_local_file {
    char *name;
    int64_t size;
    char sha256[65]; /* hex */
};

struct drv_listing {
    struct drv_entry *items;
    size_t n;
    /*
     * The listing is the whole directory (an image layout's blobs): names it
     * no longer has are gone, cached or not. Otherwise (index pages) names
     * that were cached stay listed.
     */
    bool complete;
};

struct driver_ops {
    const char *type;
    /*
     * The size of a file that has an expected sha256 is the protocol's own statement of its
     * length (an OCI descriptor's size): a download longer than that is cut there and nothing
     * is kept, instead of running to the end to fail its digest (docs/SECURITY.md, rule 3).
     */
    bool sizes_exact;
    /* What is at path. */
    int (*lookup)(struct upstream *u, const char *path, struct drv_entry *out);
    /* The remote's listing of a directory; -ENOTSUP when the remote has none. */
    int (*list)(struct upstream *u, const char *dir, struct drv_listing *out);
    /* Bytes of a generated file (e.g. a rewritten index); *stale when from a stale copy. */
    int (*generate)(struct upstream *u, const char *path, char **body, size_t *len, bool *stale);
    /* Checksum a file must match, found just before download (e.g. a sidecar); may be NULL. */
    int (*expectation)(struct upstream *u, const char *path, const struct drv_entry *e,
                       char **expect);
    /*
     * Extra request headers for downloading url (e.g. a registry's Bearer
     * token), appended to *headers; may be NULL. libcurl drops Authorization
     * when a redirect leaves the host.
     */
    int (*request_headers)(struct upstream *u, const char *url, struct curl_slist **headers);
    /*
     * A download carrying request_headers' credentials was refused (status
     * 401, or 400/403 where the protocol means "token refused"; www is the
     * challenge or NULL): drop the cached credential. True when one retry
     * with fresh headers may succeed. May be NULL.
     */
    bool (*auth_rejected)(struct upstream *u, const char *url, long status, const char *www);
    /*
     * The URL of the blob digest ("sha256:<hex>") of repository repo (as the
     * mount shows it) at this proxy's upstream, for a client that asks for a
     * blob by digest with no manifest first (engine_blob). No I/O. May be NULL.
     */
    int (*blob_url)(struct upstream *u, const char *repo, const char *digest, char **url);
    /*
     * Whether the upstream has url now, asked with the proxy's credentials
     * and without the body (a registry's HEAD): 0 (*size the length, or -1,
     * when size is not NULL), -ENOENT, or another -errno. May be NULL: then
     * only a download of the proxy's own copy confirms content by digest.
     */
    int (*confirm)(struct upstream *u, const char *url, int64_t *size);
    /*
     * The cooldown of policy (the proxy's, or a registry's over it) for a file the index
     * already knows (cached, or known before the rule was set): 0, or policy_refuse's -EACCES
     * when the publish time in the package's document (the cached one while fresh: no
     * request) holds its version back (src/engine/reader.c). May be NULL.
     */
    int (*cooldown)(struct upstream *u, const struct proxy *policy, const char *path);
    /*
     * generate, with the versions a further policy (a registry's over this proxy) refuses
     * left out too: both must let a version through. May be NULL.
     */
    int (*generate_as)(struct upstream *u, const struct proxy *also, const char *path,
                       char **body, size_t *len, bool *stale);
};

void drv_entry_clear(struct drv_entry *e);
void drv_listing_clear(struct drv_listing *l);
/* Appends a copy of e (name included) to l. */
int drv_listing_add(struct drv_listing *l, const char *name, const struct drv_entry *e);

/*
 * A file whose index names no size: asks the remote with a HEAD of e->url, so that ls -l
 * tells the truth; on a 200, e->size is its Content-Length, else e->size stays as it is.
 */
void drv_entry_size_from_head(struct upstream *u, struct drv_entry *e);

/*
 * Describes a file the driver generates (a rewritten index): builds it once
 * through u->drv->generate to learn its true size. content_type may be NULL.
 */
int drv_entry_generated(struct upstream *u, const char *path, const char *content_type,
                        struct drv_entry *out);

/*
 * The parsed form of a document the driver read through the shared document cache
 * (upstream_doc_fetch), kept for the next call (src/drivers/doc_memo.c): when key and sha256
 * (the document's) are those parsed last, use runs on the kept form; else parse makes it
 * (*parsed, freed with free_fn), use runs on it and it is kept instead. use runs under the
 * driver's state lock (upstream.h: no I/O, copy what is needed). The memo is the driver's
 * state slot: a driver that uses it keeps nothing else there. Returns parse's error, or
 * use's result.
 */
int drv_doc_memo_use(struct upstream *u, const char *key, const char *sha256,
                     int (*parse)(void *parse_arg, void **parsed), void *parse_arg,
                     void (*free_fn)(void *), int (*use)(void *parsed, void *use_arg),
                     void *use_arg);

/*
 * upstream_doc_fetch of req into *d and drv_doc_memo_use of its parsed form under key, without
 * reading the document's bytes while its stored copy stands and its form is kept: the cache
 * answers with the document's sha256 only (upstream_doc_req.no_body), and the bytes are read
 * into d->body (upstream_doc_body; fetched again when they were evicted meanwhile) just before
 * parse, which reads them through its parse_arg (d->body is NULL when parse does not run).
 * Callers that miss the kept form together wait for one parse (single flight per key and
 * sha256; a parse error is theirs too). The caller clears *d (upstream_doc_clear) whatever
 * the result; d->stale says the document is a stale copy. Returns upstream_doc_fetch's or
 * parse's error, or use's result.
 */
int drv_doc_use(struct upstream *u, const struct upstream_doc_req *req, struct upstream_doc *d,
                const char *key, int (*parse)(void *parse_arg, void **parsed), void *parse_arg,
                void (*free_fn)(void *), int (*use)(void *parsed, void *use_arg), void *use_arg);

const struct driver_ops *driver_for_type(int proxy_type);

extern const struct driver_ops driver_generic;
extern const struct driver_ops driver_maven;
extern const struct driver_ops driver_helm;
extern const struct driver_ops driver_docker;
extern const struct driver_ops driver_ecr;
extern const struct driver_ops driver_npm;
extern const struct driver_ops driver_pypi;

#endif

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

#define DRV_SHIM_PATH_MAX 4096

/* How the HTTP shim answers one request of a path route (driver_ops.shim_route). */
struct drv_shim_route {
    char path[DRV_SHIM_PATH_MAX]; /* engine path below the proxy or registry, "" for its root */
    bool want_slash; /* a page that lives at a '/'-terminated URL: redirect a target without one */
    bool render;     /* path is a document: the reply is shim_render's rewrite of its bytes */
    int variant;     /* render: which representation the client asked for (driver-defined) */
    /*
     * render, in a registry: the path of a local file, in the document's directory, that
     * holds the registry's own version of the document (npm: "<package>/package.json" for
     * either variant), or "".
     */
    char local_doc[DRV_SHIM_PATH_MAX];
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
     * For protocols whose client routes differ from the mount layout (npm,
     * pypi); NULL for the others, whose routes mirror the mount. Maps a
     * request to the shim below /<key-or-registry>/ — path normalised ("" for
     * the top itself), slash when the target ended with '/', escaped_slash
     * when the client wrote a '/' as %2f (npm's "@scope%2fname"; path then
     * holds it as a separator), accept the Accept header or NULL — to *out.
     * No I/O. Returns 0; -ENOTSUP: not a route of the protocol, serve path as
     * the mount shows it (refused with 400 when escaped_slash); -ENOENT: 404;
     * -EINVAL: 400.
     */
    int (*shim_route)(const char *path, bool slash, bool escaped_slash, const char *accept,
                      struct drv_shim_route *out);
    /*
     * The reply body of a render route: doc (len bytes) is what the engine
     * file at route->path holds; base is the absolute URL the shim serves
     * that engine path at (scheme://host/<key-or-registry>/<path, escaped>),
     * against which the relative URLs the driver stored in doc resolve, so
     * every URL in the reply points back at the shim. Sets a malloc'd *out,
     * *out_len and a static *ctype. No I/O. -EIO for a document it cannot read.
     */
    int (*shim_render)(const char *doc, size_t len, const char *base, int variant, char **out,
                       size_t *out_len, const char **ctype);
    /*
     * A registry's render route (route_path as shim_route set it), when the registry has
     * local content for it: the document its first upstream that has one provides (doc, len;
     * NULL when none has it) merged with the registry's own, local first: local_doc (the
     * content of the route's local_doc; NULL when there is none) and the local files of the
     * document's directory. Sets a malloc'd document in the form shim_render reads; -ENOENT
     * when there is nothing to serve. No I/O. May be NULL: the registry serves the first
     * document found, local content first.
     */
    int (*shim_merge_local)(const char *route_path, const char *doc, size_t len,
                            const char *local_doc, size_t local_len,
                            const struct drv_local_file *files, size_t n, char **out,
                            size_t *out_len);
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

const struct driver_ops *driver_for_type(int proxy_type);

extern const struct driver_ops driver_generic;
extern const struct driver_ops driver_maven;
extern const struct driver_ops driver_helm;
extern const struct driver_ops driver_docker;
extern const struct driver_ops driver_ecr;
extern const struct driver_ops driver_npm;
extern const struct driver_ops driver_pypi;

#endif

/*
 * upstream: what a driver sees of the proxy it serves — the driver's narrow
 * environment. A driver (src/drivers) gets a struct upstream it cannot look
 * into: the proxy's validated config, its secret and endpoint (read-only),
 * the platform filter, requests under the proxy's auth and failure policy
 * (upstream_perform, upstream_request), documents through the shared
 * document cache (upstream_doc_fetch), and one private state slot. The
 * struct itself, its health and its life cycle are the engine's
 * (src/engine/upstream_i.h); drivers include nothing of src/engine.
 */
#ifndef UPSTREAMFS_UPSTREAM_H
#define UPSTREAMFS_UPSTREAM_H

#include "upstreamfs/config.h"
#include "upstreamfs/fetch.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UPSTREAM_DOC_MAX              (64u << 20) /* cap on an index document */

struct upstream;
struct driver_ops;

/* The proxy's validated config; it does not change for the life of u. */
const struct proxy *upstream_config(const struct upstream *u);
/* The proxy's secret (a credential: never log it), or NULL when it has none. */
const char *upstream_secret(const struct upstream *u);
/* The proxy's endpoint: TLS material, deadlines, egress rule, Basic credentials. */
const struct fetch_endpoint *upstream_endpoint(const struct upstream *u);
/* The engine's platform filter ("os/arch[/variant],..."), or NULL for all platforms. */
const char *upstream_platform_filter(const struct upstream *u);
/* The driver serving u. */
const struct driver_ops *upstream_driver(const struct upstream *u);

/*
 * The driver's one private state slot (e.g. helm's parsed index, docker's tag
 * and token caches). The slot has its own lock, separate from the engine's:
 *  - upstream_state_lock / upstream_state_unlock take and drop it;
 *  - upstream_state (with the lock held) is the state, NULL until set;
 *  - upstream_set_state (with the lock held) makes st (freed with free_fn)
 *    the state, freeing the one before; the engine frees the last one when
 *    the proxy goes.
 * Rule: the slot lock is a leaf. While holding it a driver does no I/O and
 * calls no upstream_* function other than the ones in this block and the
 * read-only accessors above; readers copy what they need before unlocking,
 * so a replaced state can be freed at once.
 */
void upstream_state_lock(struct upstream *u);
void upstream_state_unlock(struct upstream *u);
void *upstream_state(struct upstream *u);
void upstream_set_state(struct upstream *u, void *st, void (*free_fn)(void *));

/* The remote URL of a path below the proxy root (url + escaped path). Malloc'd. */
char *upstream_url(const struct upstream *u, const char *path);

/*
 * A registry URL's roots (docker): with api, its API root <origin>/v2/; else its repositories'
 * root, <origin>/v2/<path>/ when base has a path (a parent upstreamfs's route), else the API
 * root. -ENAMETOOLONG when out (len) is too small.
 */
int upstream_base_root(const char *base, bool api, char *out, size_t len);

/* A document fetched through upstream_doc_fetch. */
struct upstream_doc {
    char *body; /* malloc'd, NUL-terminated */
    size_t len;
    bool stale;             /* past its TTL, served because the remote failed */
    char *content_type;     /* as the remote named it, or NULL */
    char *www_authenticate; /* on -EACCES: the remote's challenge, if any */
    char sha256[65];
    bool changed; /* this fetch stored new bytes: a first copy, or other than the last one */
};

struct upstream_doc_req {
    const char *url;
    const struct curl_slist *headers; /* e.g. Accept, Authorization */
    bool immutable;      /* digest-addressed: once stored, never asked again */
    const char *expect;  /* checksum the body must match ("sha256:<hex>", ...), or NULL */
    size_t max;          /* size cap; 0 means UPSTREAM_DOC_MAX */
    /* the mount directory whose files the document lists ("<name>/-"), or NULL: when a
     * fetch stores new bytes (changed), the entries cached there are compared with the new
     * listing (upstream removals, src/engine/removals.c) */
    const char *lists;
    /* a stored copy served as it is (fresh, a 304, stale) comes without its bytes: body
     * NULL, len and sha256 set; for a caller that keeps what it made of them, keyed by
     * sha256 (drv_doc_use), which reads them with upstream_doc_body only when it must */
    bool no_body;
};

/*
 * A document (index page, index.yaml, manifest, metadata) kept in the store
 * and indexed by URL per proxy: mutable ones are revalidated after the
 * proxy's TTL with a conditional request, and served stale when the remote
 * fails; immutable ones are fetched once. Returns 0, -ENOENT (404/410),
 * -EACCES (401/403; www_authenticate set), -EREMOTEIO (remote failed and no
 * copy), -ENETUNREACH (offline proxy, no copy), -EIO (checksum mismatch or
 * another status), -EFBIG (over the cap).
 */
int upstream_doc_fetch(struct upstream *u, const struct upstream_doc_req *req,
                       struct upstream_doc *out);
void upstream_doc_clear(struct upstream_doc *d);
/*
 * The bytes of a document answered without them (upstream_doc_req.no_body): the stored
 * object d->sha256 into d->body (0 at once when d has its body). -ENOENT: it is no longer
 * stored (evicted meanwhile: fetch the document again).
 */
int upstream_doc_body(struct upstream *u, struct upstream_doc *d);

/* upstream_doc_fetch of a mutable document with no extra headers. */
int upstream_doc_get(struct upstream *u, const char *url, char **body, size_t *len, bool *stale);

/*
 * Upstream removals (src/engine/removals.c) for versions no cached document lists (docker
 * tags). upstream_removals_listed: l is dir's listing fresh from the upstream (tags/list);
 * what is cached below dir and l lacks is marked removed-upstream, what l has is unmarked.
 * upstream_removed_set: path (a tag directory) is gone at the upstream (removed: its manifest
 * answers 404) or there again; only a cached path is marked.
 */
struct drv_listing;
void upstream_removals_listed(struct upstream *u, const char *dir, const struct drv_listing *l);
void upstream_removed_set(struct upstream *u, const char *path, bool removed);

/* GET/HEAD with the proxy's endpoint and the metadata deadline; records health. */
int upstream_request(struct upstream *u, const char *url, bool head, size_t max_body,
                     struct fetch_response *resp);
/*
 * Any request to the remote, with the proxy's policies around it: refused
 * with -ENETUNREACH when offline and -EREMOTEIO while backing off; the
 * outcome goes through upstream_outcome (final: false). The endpoint
 * (req->ep) is the proxy's when NULL. A failure of the remote (transport,
 * 5xx, 429) gives -EREMOTEIO, the drivers' "serve stale" signal
 * (driver.h); the front door learns its cause from the failure note.
 */
int upstream_perform(struct upstream *u, const struct fetch_request *req,
                     struct fetch_response *resp);

#endif

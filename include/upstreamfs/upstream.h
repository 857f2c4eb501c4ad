/*
 * upstream: one configured proxy at run time — its validated config, its
 * credentials, its driver, and its health.
 *
 * Health implements DESIGN §3's back-off: after 3 consecutive remote
 * failures the proxy counts as offline for a back-off that starts at 1 s
 * and doubles up to 30 s; any success resets it. While offline, requests
 * fail fast (or are served stale) instead of stacking up on a dead remote.
 *
 * An upstream is reference counted: a config reload replaces the engine's
 * table while requests may still hold the old object.
 */
#ifndef UPSTREAMFS_UPSTREAM_H
#define UPSTREAMFS_UPSTREAM_H

#include "upstreamfs/config.h"
#include "upstreamfs/driver.h"
#include "upstreamfs/fetch.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define UPSTREAM_FAILS_BEFORE_OFFLINE 3
#define UPSTREAM_BACKOFF_START_MS     1000
#define UPSTREAM_BACKOFF_MAX_MS       30000
#define UPSTREAM_DOC_MAX              (64u << 20) /* cap on an index document */
#define UPSTREAM_HOLD_MAX_S           300

struct engine;

struct upstream {
    struct proxy cfg;
    char *secret;
    struct fetch_endpoint ep;
    const struct driver_ops *drv;
    struct engine *eng;
    void *drv_state; /* driver's cache (e.g. helm's parsed index), under mu */
    void (*drv_state_free)(void *);

    pthread_mutex_t mu;
    int refs;
    int failures;
    int64_t offline_until_ms;
    int backoff_ms;
};

struct upstream *upstream_new(struct engine *eng, const struct proxy *cfg, const char *secret);
/*
 * With u->mu held: makes st (freed with free_fn) the driver's cache, freeing the one before.
 * Readers use the cache only under u->mu and copy what they need, so the old one can go.
 */
void upstream_set_state(struct upstream *u, void *st, void (*free_fn)(void *));
void upstream_ref(struct upstream *u);
void upstream_unref(struct upstream *u);

/* True while the back-off says: do not contact the remote now. */
bool upstream_backing_off(struct upstream *u);
void upstream_note_success(struct upstream *u);
void upstream_note_failure(struct upstream *u);
/*
 * The remote asked for a pause (429 or 503 with Retry-After): no request goes
 * to it for that long (capped at UPSTREAM_HOLD_MAX_S); cached answers are
 * served meanwhile.
 */
void upstream_hold(struct upstream *u, long seconds);
/* Applies a response's Retry-After when its status asks for one. */
void upstream_note_response(struct upstream *u, const struct fetch_response *r);

/* The remote URL of a path below the proxy root (url + escaped path). Malloc'd. */
char *upstream_url(const struct upstream *u, const char *path);

/* A document fetched through upstream_doc_fetch. */
struct upstream_doc {
    char *body; /* malloc'd, NUL-terminated */
    size_t len;
    bool stale;             /* past its TTL, served because the remote failed */
    char *content_type;     /* as the remote named it, or NULL */
    char *www_authenticate; /* on -EACCES: the remote's challenge, if any */
    char sha256[65];
};

struct upstream_doc_req {
    const char *url;
    const struct curl_slist *headers; /* e.g. Accept, Authorization */
    bool immutable;      /* digest-addressed: once stored, never asked again */
    const char *expect;  /* checksum the body must match ("sha256:<hex>", ...), or NULL */
    size_t max;          /* size cap; 0 means UPSTREAM_DOC_MAX */
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

/* upstream_doc_fetch of a mutable document with no extra headers. */
int upstream_doc_get(struct upstream *u, const char *url, char **body, size_t *len, bool *stale);

/* GET/HEAD with the proxy's endpoint and the metadata deadline; records health. */
int upstream_request(struct upstream *u, const char *url, bool head, size_t max_body,
                     struct fetch_response *resp);
/*
 * Any request to the remote, with the proxy's policies around it: refused
 * with -ENETUNREACH when offline and -EREMOTEIO while backing off; the
 * outcome counts for the back-off and Retry-After is honoured. The
 * endpoint (req->ep) is the proxy's when NULL. A 5xx or 429 gives -EREMOTEIO.
 */
int upstream_perform(struct upstream *u, const struct fetch_request *req,
                     struct fetch_response *resp);

#endif

/*
 * shim_i.h: the shim's private state, shared by the files of src/shim/
 * (shim.c the daemon, routing and access log; reply.c the replies; files.c the path routes;
 * api.c /api/v1; v2.c the registry API). Nothing outside src/shim includes it.
 *
 * A request is one struct shim_req, created on MHD's first call for it and
 * freed by the completion callback, which also writes the access-log line
 * and counts it. Every reply goes through shim__reply, so status and bytes
 * are always known there. Replies are queued once; a handler returns what
 * shim__reply returned.
 */
#ifndef UPSTREAMFS_SHIM_I_H
#define UPSTREAMFS_SHIM_I_H

#include "upstreamfs/config.h"
#include "upstreamfs/engine.h"
#include "upstreamfs/shim.h"
#include "upstreamfs/shim_admin.h"
#include "upstreamfs/shim_buf.h"
#include "upstreamfs/shim_htpasswd.h"
#include "upstreamfs/shim_http.h"
#include "upstreamfs/shim_metrics.h"
#include "upstreamfs/state.h"

#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define SHIM_API_BODY_MAX (1024 * 1024)      /* request bodies (the API's JSON) */
#define SHIM_INDEX_MAX    (16 * 1024 * 1024) /* one generated index page */
#define SHIM_STREAM_BLOCK (64 * 1024)
#define SHIM_WAIT_SMALL   (1024 * 1024) /* downloads up to this size are awaited whole */
#define SHIM_CONN_MEMORY  (64 * 1024)   /* per connection: caps request line and headers */
#define SHIM_CONN_LIMIT   512
#define SHIM_CONN_PER_IP  128
#define SHIM_IDLE_TIMEOUT 60 /* seconds without traffic before a connection is closed */
/* Every answer but the web page's (docs/SECURITY.md: served artifacts are inert). */
#define SHIM_CONTENT_CSP "sandbox; default-src 'none'"
/* Cache-Control max-age of content that never changes (digest-addressed, released files). */
#define SHIM_IMMUTABLE_MAX_AGE 31536000

struct shim {
    struct engine *e;
    struct MHD_Daemon *d;
    struct state *st; /* configuration for /api; one sqlite connection, under st_mu */
    pthread_mutex_t st_mu;
    struct index *ix; /* the cache tables on st's connection (ui_api.c), opened on first use */
    struct shim_metrics metrics;
    struct shim_htpasswd *auth; /* NULL: no authentication */
    bool cache_public;          /* --cache-public */
    char **admins;              /* --admin: htpasswd users who may use /api/v1 */
    size_t n_admins;
    char **public_names; /* --public-name: Host names answered besides IPs and localhost */
    size_t n_public_names;
    char admin_token[SHIM_ADMIN_TOKEN_HEX + 1]; /* STATEDIR/admin-token (shim_admin.h) */
    char *token_path;                           /* its path, for the 401's explanation */
    char *state_dir;
    char *host; /* the --listen host, for the page's address */
    char *default_name;
    char *tls_cert, *tls_key; /* PEM, kept (and wiped at stop) while MHD may use them */
    size_t tls_key_len;
    atomic_bool stopping;
    unsigned port;
};

struct shim_req {
    struct shim *s;
    struct MHD_Connection *c;
    const char *method; /* MHD's string, valid for the request */
    bool head;
    char *target; /* the request path as received (still escaped), for redirects and logs */
    char path[SHIM_PATH_MAX + 1]; /* normalised: "key/a/b", "" for "/" */
    bool slash;                   /* the target ended with '/' */
    bool escaped_slash;           /* path holds a '/' the client escaped (%2f): see shim__files */
    enum shim_route route;
    int sock;
    char client[INET6_ADDRSTRLEN + 2];
    struct shim_buf body;
    bool wants_body;
    bool replied;
    int status;
    uint64_t bytes; /* body bytes handed to MHD (planned for fd responses) */
    enum shim_cache_result cache;
    struct engine_file *file; /* held open until the reply is complete */
    struct timespec started;
};

/* What an engine wait polls: the shim stopping, or the client gone. */
struct shim_waiter {
    struct shim *s;
    int sock;
};
bool shim__cancelled(void *arg);

/* Queues resp with status (taking resp; NULL fails the connection) and records the status. */
enum MHD_Result shim__reply(struct shim_req *r, unsigned status, struct MHD_Response *resp);
/* A copied body with a Content-Type. */
enum MHD_Result shim__reply_data(struct shim_req *r, unsigned status, const char *type,
                                 const void *data, size_t len);
/* A one-line text/plain body (a newline is added). */
enum MHD_Result shim__reply_text(struct shim_req *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* 405 with an Allow header. */
enum MHD_Result shim__reply_method(struct shim_req *r, const char *allow);
/* An engine error as a status and a one-line body naming the cause (what: the path). */
enum MHD_Result shim__reply_errno(struct shim_req *r, int rc, const char *what);
/* "proxy KEY, cause CAUSE, upstream status N|-" of the failure behind rc (failure.h's note). */
void shim__failure_text(int rc, char *buf, size_t n);
/* Whether rc is a refusal by a proxy's package rules or cooldown (docs/policy.md): a 403. */
bool shim__policy_refused(int rc);
/* A header of the request, or NULL. */
const char *shim__header(struct shim_req *r, const char *name);

/* The cap on a document a render route reads whole (docs/npm-pypi.md). */
#define SHIM_DOC_MAX UPSTREAM_DOC_MAX

struct shim_protocol;
struct shim_protocol_route;
struct rendered_info;
/*
 * The rendered document of a render route (src/shim/render.c): route rt of protocol d below
 * proxy or registry top (registry: a registry), engine path epath, rendered for this
 * request's base URL once per source, variant and base. 0 with *f (stored, complete content)
 * and *info; -EFBIG past SHIM_DOC_MAX; other -errno.
 */
int shim__rendered_open(struct shim_req *r, const struct shim_protocol *d, bool registry,
                        const char *top, const char *epath, const struct shim_protocol_route *rt,
                        struct engine_file **f, struct rendered_info *info);

/*
 * How long caches may keep an answer (shim__common_headers adds who may), into out: content
 * that never changes for a year, else for fresh_for seconds (what is left of its freshness);
 * a negative fresh_for: revalidated on every use ("no-cache": rendered documents).
 */
void shim__cache_control(bool immutable, int64_t fresh_for, char *out, size_t len);
/*
 * Serves the file at engine node a (a->kind NODE_FILE) named name: Range,
 * ETag (the content's sha256), Last-Modified, HEAD without opening, bytes
 * zero-copy from the store or streamed from a running download. type NULL
 * picks one from the name. extra (NULL-terminated name/value pairs, may be
 * NULL) is added to a successful answer, e.g. Docker-Content-Digest.
 */
enum MHD_Result shim__serve_file(struct shim_req *r, const struct engine_attr *a, const char *name,
                                 const char *type, const char *const *extra);

/* The headers of every answer: HSTS under TLS, nosniff, and SHIM_CONTENT_CSP unless set. */
void shim__common_headers(struct shim_req *r, struct MHD_Response *resp);
/*
 * The Host and Origin rules and the credentials the route needs (access.c).
 * True when the request may go on; else *reply holds the answer.
 */
bool shim__admitted(struct shim_req *r, enum MHD_Result *reply);

/* Route handlers. */
enum MHD_Result shim__files(struct shim_req *r);
enum MHD_Result shim__api(struct shim_req *r);

/* The API's answers (api.c), shared with the page's API routes (ui_api.c). */
enum MHD_Result shim__api_json(struct shim_req *r, unsigned status, json_t *j);
/* {"error": {"field": F, "message": M}} with status. */
enum MHD_Result shim__api_error(struct shim_req *r, unsigned status, const char *field,
                                const char *message);
/* A config/configdb result (rc < 0) as an error answer: 400, 404, 409 or 500. */
enum MHD_Result shim__api_config_error(struct shim_req *r, int rc, const struct config_error *err);
/* The request body as one JSON object; replies (and returns NULL) if it is not one. */
json_t *shim__api_body(struct shim_req *r, enum MHD_Result *reply);
/*
 * Refuses a body that is not application/json (when needs_json): a page on
 * another site can make a browser send a form or text/plain body without a
 * preflight, never application/json. The Origin rule is checked before any
 * route (src/shim/access.c). True when the request may go on; else *reply
 * holds the answer.
 */
bool shim__api_guard(struct shim_req *r, bool needs_json, enum MHD_Result *reply);
enum MHD_Result shim__v2(struct shim_req *r);

#endif

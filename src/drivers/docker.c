/*
 * docker: a Docker/OCI registry (the pull side of the distribution API) as
 * a tree of OCI image layouts (README.md, the mount layout; the names are
 * include/upstreamfs/oci_layout.h's):
 *
 *   <repository>/                      lists tags (tags/list, Link pagination)
 *   <repository>/<tag>/                an OCI image layout of what the tag names now
 *   <repository>/sha256:<hex>/         the same, by digest
 *       oci-layout                     generated, {"imageLayoutVersion":"1.0.0"}
 *       index.json                     generated, one descriptor annotated with the tag
 *       blobs/sha256/<hex>             the manifest or index, each platform's manifest and
 *                                      config, each layer; sizes from descriptors
 *   <namespace>/                       a directory on the way to repositories (catalog)
 *
 * Repository names contain '/', so a path has several readings (oci.h
 * oci_path_parse); the registry decides between them, asked only when a
 * reading needs it: a name inside a layout needs its repository:reference
 * to exist; a directory that may be a namespace is answered without a
 * request unless the registry's catalog says there is no such namespace.
 *
 * Freshness. Tag -> digest is mutable metadata: it is kept in memory per
 * proxy and revalidated after --metadata-ttl with a HEAD on the manifest
 * (free on Docker Hub); when the remote fails (5xx, 429, timeout, refused)
 * the last digest is used and reported stale. Manifests are fetched by
 * digest through upstream_doc_fetch (immutable, verified against the
 * digest), so they are asked for once and survive restarts. Blobs are
 * downloaded by the engine from the URLs given here and verified against
 * their digests; manifests under blobs/ are usually in the store already.
 *
 * Auth. Basic credentials are libcurl's (the proxy's endpoint, sent only to
 * the registry's own host). A Bearer challenge is learned from any 401 (or
 * a /v2/ probe before a download) and tokens come from token.h's cache,
 * one scope per repository. Every request goes through upstream_perform,
 * so the proxy's back-off and a 429's Retry-After hold apply, and cached
 * answers are served meanwhile.
 *
 * Variants (docker_i.h). The ecr driver is this driver with a variant that
 * names the registry's base URL and the Authorization to send (ECR tokens,
 * refreshed by ecr_auth), maps the proxy root to a namespace (ECR Public's
 * alias) and may limit the proxy to one repository. Names inside the
 * driver are the registry's (the variant's prefix is put on when a mount
 * path is parsed), so URLs, token scopes and the tag cache need nothing
 * else; a scoped proxy answers every other name -ENOENT without a request.
 *
 * Locking: per-proxy state is the driver's state slot (upstream_state); its
 * fields are guarded by the slot's lock (upstream_state_lock), which is never
 * held across a request. The token cache has its own lock; probe_mu
 * serialises /v2/ probes so that concurrent first downloads do not race past
 * an unknown auth scheme.
 */
#include "upstreamfs/clock.h"
#include "upstreamfs/failure.h"
#include "upstreamfs/config.h"
#include "upstreamfs/driver.h"
#include "upstreamfs/egress.h"
#include "upstreamfs/fetch.h"
#include "upstreamfs/index.h"
#include "upstreamfs/log.h"
#include "upstreamfs/oci.h"
#include "upstreamfs/oci_layout.h"
#include "upstreamfs/token.h"
#include "upstreamfs/upstream.h"

#include "docker_i.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DK_MANIFEST_MAX     (4u << 20) /* registries refuse bigger manifests too */
#define DK_PAGE_MAX         (4u << 20) /* one tags/list or _catalog page */
#define DK_PAGES_MAX        200
#define DK_LIST_ENTRIES_MAX 100000
#define DK_TAG_CACHE_MAX    2048
#define DK_URL_MAX          4096

enum dk_auth { DK_AUTH_UNKNOWN, DK_AUTH_NONE, DK_AUTH_BASIC, DK_AUTH_BEARER };
enum dk_catalog { DK_CAT_UNKNOWN, DK_CAT_HAVE, DK_CAT_NONE };

/* What a repository:tag resolved to, or that it does not exist. */
struct dk_tag {
    char *repo, *ref;
    bool absent;
    char digest[OCI_DIGEST_LEN + 1];
    char mt[OCI_MEDIA_TYPE_MAX + 1]; /* "" unknown */
    int64_t size;                    /* -1 unknown */
    int64_t checked;                 /* monotonic ms */
};

struct dk_state {
    pthread_mutex_t probe_mu;
    struct token_cache *tokens;
    const struct dk_variant *var; /* NULL for a plain registry */
    void *var_st;
    struct dk_variant_info info;
    bool cat_fixed; /* the catalog is decided (one scoped repository, or none): never asked */
    /* under the state lock: */
    enum dk_auth auth;
    char *realm, *service;
    struct dk_tag *tags;
    size_t ntags, captags;
    enum dk_catalog cat;
    char **catalog; /* sorted */
    size_t ncatalog;
    int64_t cat_checked;
    char *prefix; /* the variant's namespace, "" for none; NULL until asked */
};

/* A reference resolved to a manifest. */
struct dk_resolved {
    char digest[OCI_DIGEST_LEN + 1];
    char mt[OCI_MEDIA_TYPE_MAX + 1];
    int64_t size;
    bool stale;
};

static void wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static void catalog_free(char **cat, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(cat[i]);
    free(cat);
}

static void state_free(void *p)
{
    struct dk_state *s = p;
    if (!s)
        return;
    token_cache_free(s->tokens);
    if (s->var && s->var_st)
        s->var->close(s->var_st);
    free(s->prefix);
    free(s->realm);
    free(s->service);
    for (size_t i = 0; i < s->ntags; i++) {
        free(s->tags[i].repo);
        free(s->tags[i].ref);
    }
    free(s->tags);
    catalog_free(s->catalog, s->ncatalog);
    pthread_mutex_destroy(&s->probe_mu);
    free(s);
}

/* The variant of a proxy's driver, or NULL for a plain Docker/OCI registry. */
static const struct dk_variant *variant_of(const struct upstream *u)
{
    return upstream_driver(u) == &driver_ecr ? &dk_variant_ecr : NULL;
}

/*
 * A variant's fixed catalog: the one repository of a scoped proxy (the
 * root lists the way to it, and nothing else is a namespace), or none.
 */
static int fixed_catalog(struct dk_state *s)
{
    if (s->info.only_repository) {
        if (!(s->catalog = calloc(1, sizeof(*s->catalog))) ||
            !(s->catalog[0] = strdup(s->info.only_repository)))
            return -ENOMEM;
        s->ncatalog = 1;
        s->cat = DK_CAT_HAVE;
        s->cat_fixed = true;
    } else if (s->info.no_catalog) {
        s->cat = DK_CAT_NONE;
        s->cat_fixed = true;
    }
    return 0;
}

/* The proxy's state, created on first use; it lives as long as u. */
static struct dk_state *dk_state(struct upstream *u)
{
    upstream_state_lock(u);
    struct dk_state *s = upstream_state(u);
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (s) {
            s->tokens = token_cache_new();
            pthread_mutex_init(&s->probe_mu, NULL);
            s->var = variant_of(u);
            if (s->var)
                s->var_st = s->var->open(u, &s->info);
            if (!s->tokens || (s->var && !s->var_st) || fixed_catalog(s) < 0) {
                state_free(s);
                s = NULL;
            }
        }
        if (s)
            upstream_set_state(u, s, state_free);
    }
    upstream_state_unlock(u);
    return s;
}

static bool is_hub(const struct upstream *u)
{
    return upstream_config(u)->source == SOURCE_DOCKERHUB;
}

/* The registry's base URL (ends with '/'): the variant's, else the proxy's url. malloc'd. */
static int reg_base(struct upstream *u, struct dk_state *s, char **base)
{
    *base = NULL;
    if (!s)
        return -ENOMEM;
    if (s->var) {
        struct dk_access a = {0};
        int rc = s->var->access(s->var_st, &a);
        /* The variant's registry (ECR's proxyEndpoint) is a configured endpoint (egress.h). */
        if (rc == 0 && a.base)
            rc = egress_policy_trust(upstream_endpoint(u)->egress, a.base);
        if (rc == 0) {
            *base = a.base;
            a.base = NULL;
        }
        dk_access_clear(&a);
        return rc < 0 ? rc : *base ? 0 : -EIO;
    }
    *base = strdup(upstream_config(u)->url ? upstream_config(u)->url : "");
    return *base ? 0 : -ENOMEM;
}

/* *out = <registry>/v2/<formatted>. 0, -ENAMETOOLONG, -ENOMEM or the variant's error. */
static int reg_url(struct upstream *u, char **out, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int reg_url(struct upstream *u, char **out, const char *fmt, ...)
{
    char buf[DK_URL_MAX], *base = NULL;
    *out = NULL;
    int rc = reg_base(u, dk_state(u), &base);
    if (rc < 0)
        return rc;
    int n = snprintf(buf, sizeof(buf), "%sv2/", base);
    free(base);
    va_list ap;
    va_start(ap, fmt);
    int m = n >= 0 && (size_t)n < sizeof(buf) ? vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap)
                                              : -1;
    va_end(ap);
    if (m < 0 || (size_t)(n + m) >= sizeof(buf))
        return -ENAMETOOLONG;
    *out = strdup(buf);
    return *out ? 0 : -ENOMEM;
}


static void scope_for(const char *repo, char *buf, size_t n)
{
    snprintf(buf, n, "repository:%s:pull", repo);
}

/* ---- auth -------------------------------------------------------------------------------- */

/* The credential a request carried, to forget it if the registry refuses it. */
struct dk_cred {
    char *token; /* a Bearer token of the registry's token flow */
    char *authz; /* the variant's Authorization value */
};

static void cred_clear(struct dk_cred *c)
{
    wipe_free(c->token);
    wipe_free(c->authz);
    c->token = c->authz = NULL;
}

/* Appends "Authorization: <value>" to *hdrs. */
static int add_authorization(struct curl_slist **hdrs, const char *scheme, const char *value)
{
    size_t hl = strlen(value) + 32;
    char *h = malloc(hl);
    if (!h)
        return -ENOMEM;
    snprintf(h, hl, "Authorization: %s%s", scheme, value);
    int rc = fetch_header_add(hdrs, h);
    wipe_free(h);
    return rc;
}

/*
 * The variant's Authorization, when it has one: added to *hdrs and kept in
 * used->authz. *done says whether the registry's own auth is to be skipped.
 */
static int variant_auth(struct dk_state *s, struct curl_slist **hdrs, struct dk_cred *used,
                        bool *done)
{
    struct dk_access a = {0};
    *done = false;
    if (!s->var)
        return 0;
    int rc = s->var->access(s->var_st, &a);
    if (rc == 0 && a.authorization) {
        rc = add_authorization(hdrs, "", a.authorization);
        if (rc == 0) {
            used->authz = a.authorization;
            a.authorization = NULL;
            *done = true;
        }
    }
    dk_access_clear(&a);
    return rc;
}

static void probe_auth(struct upstream *u, struct dk_state *s);

/*
 * Adds the Authorization a request in scope needs: the variant's, else
 * Bearer when the registry asked for tokens (found out first with a /v2/
 * probe when probe is set and nothing is known yet). used receives what
 * was sent.
 */
static int auth_add(struct upstream *u, struct dk_state *s, const char *scope,
                    struct curl_slist **hdrs, struct dk_cred *used, bool probe)
{
    char *realm = NULL, *service = NULL, *tok = NULL;
    bool done = false;
    int rc = variant_auth(s, hdrs, used, &done);
    if (rc < 0 || done)
        return rc;
    if (probe) {
        upstream_state_lock(u);
        bool unknown = s->auth == DK_AUTH_UNKNOWN;
        upstream_state_unlock(u);
        if (unknown)
            probe_auth(u, s);
    }
    upstream_state_lock(u);
    bool bearer = s->auth == DK_AUTH_BEARER && s->realm;
    if (bearer) {
        realm = strdup(s->realm);
        service = s->service ? strdup(s->service) : NULL;
    }
    upstream_state_unlock(u);
    if (!bearer)
        return 0;
    if (!realm) {
        rc = -ENOMEM;
        goto out;
    }
    rc = token_get(s->tokens, upstream_endpoint(u), realm, service, scope, &tok);
    if (rc < 0) {
        log_warn("proxy %s: no registry token for %s: %s", upstream_config(u)->key, scope,
                 strerror(-rc));
        goto out;
    }
    rc = add_authorization(hdrs, "Bearer ", tok);
    if (rc < 0)
        goto out;
    used->token = tok;
    tok = NULL;
out:
    wipe_free(tok);
    free(realm);
    free(service);
    return rc;
}

/*
 * Learns from a 401's challenge. Returns true when asking again may
 * succeed: a Bearer challenge that is new, or one that refused the token we
 * sent (which is then forgotten). A Basic challenge means the credentials
 * libcurl sent (if any) were refused: retrying would not help.
 */
static bool learn(struct upstream *u, struct dk_state *s, const char *www, const char *scope,
                  const char *used)
{
    struct token_challenge ch;
    bool retry = false;
    int rc = token_challenge_parse(www, &ch);
    if (rc < 0) {
        log_warn("proxy %s: the registry answered 401 with %s challenge", upstream_config(u)->key,
                 rc == -ENOENT ? "no usable" : "a malformed");
        return false;
    }
    upstream_state_lock(u);
    if (ch.scheme == TOKEN_SCHEME_BEARER) {
        bool same = s->auth == DK_AUTH_BEARER && s->realm && strcmp(s->realm, ch.realm) == 0 &&
                    strcmp(s->service ? s->service : "", ch.service ? ch.service : "") == 0;
        if (!same) {
            free(s->realm);
            free(s->service);
            s->realm = ch.realm;
            s->service = ch.service;
            ch.realm = ch.service = NULL;
            s->auth = DK_AUTH_BEARER;
        }
        retry = !same || used;
    } else {
        s->auth = DK_AUTH_BASIC;
    }
    char *realm = s->realm ? strdup(s->realm) : NULL;
    char *service = s->service ? strdup(s->service) : NULL;
    upstream_state_unlock(u);
    if (ch.scheme == TOKEN_SCHEME_BEARER && used && realm)
        token_invalidate(s->tokens, realm, service, scope, used);
    if (ch.scheme == TOKEN_SCHEME_BASIC)
        log_warn("proxy %s: the registry wants Basic credentials%s", upstream_config(u)->key,
                 upstream_endpoint(u)->username ? " and refused the configured ones"
                                                : "; none are configured");
    free(realm);
    free(service);
    token_challenge_clear(&ch);
    return retry;
}

/* Forgets a Bearer token the registry refused. */
static void forget_token(struct upstream *u, struct dk_state *s, const char *scope,
                         const char *token)
{
    upstream_state_lock(u);
    char *realm = s->realm ? strdup(s->realm) : NULL;
    char *service = s->service ? strdup(s->service) : NULL;
    upstream_state_unlock(u);
    if (realm)
        token_invalidate(s->tokens, realm, service, scope, token);
    free(realm);
    free(service);
}

/*
 * A request that carried used was answered status (www: its challenge).
 * Returns true when asking once more may succeed: the variant's credential
 * or a token was refused (401, or the variant's deny_status) and is
 * forgotten now, or learn() says so.
 */
static bool refused(struct upstream *u, struct dk_state *s, long status, const char *www,
                    const char *scope, const struct dk_cred *used)
{
    bool deny = s->info.deny_status != 0 && status == s->info.deny_status;
    if (used->authz && (status == 401 || deny)) {
        log_info("proxy %s: the registry refused the credentials (HTTP %ld); renewing them",
                 upstream_config(u)->key, status);
        s->var->refused(s->var_st, used->authz);
        return true;
    }
    if (deny && used->token) {
        log_info("proxy %s: the registry refused its token (HTTP %ld); asking for a new one",
                 upstream_config(u)->key, status);
        forget_token(u, s, scope, used->token);
        return true;
    }
    return status == 401 && learn(u, s, www, scope, used->token);
}

/*
 * The status a document request's outcome stands for, for refused():
 * -EACCES is a 401 when a challenge came with it and a 403 otherwise; -EIO
 * a 400 (the only status refused() cares about among those
 * upstream_doc_fetch calls -EIO); 0 otherwise.
 */
static long doc_status(int rc, const struct upstream_doc *d)
{
    if (rc == -EACCES)
        return d->www_authenticate ? 401 : 403;
    return rc == -EIO ? 400 : 0;
}

/* Finds out once which auth the registry wants, with a GET /v2/ (before a download). */
static void probe_auth(struct upstream *u, struct dk_state *s)
{
    pthread_mutex_lock(&s->probe_mu);
    upstream_state_lock(u);
    bool known = s->auth != DK_AUTH_UNKNOWN;
    upstream_state_unlock(u);
    if (!known) {
        char *url = NULL;
        struct fetch_response r;
        memset(&r, 0, sizeof(r));
        if (reg_url(u, &url, "%s", "") == 0 && upstream_request(u, url, false, 64 << 10, &r) == 0) {
            if (r.status == 401) {
                learn(u, s, r.www_authenticate, "", NULL);
            } else if (r.status == 200) {
                upstream_state_lock(u);
                if (s->auth == DK_AUTH_UNKNOWN)
                    s->auth = DK_AUTH_NONE;
                upstream_state_unlock(u);
            }
        }
        fetch_response_clear(&r);
        free(url);
    }
    pthread_mutex_unlock(&s->probe_mu);
}

/*
 * A metadata request (HEAD or GET into memory) in a scope, with Accept for
 * manifests and a Bearer token when needed; a 401 with a new challenge is
 * answered once. Returns upstream_perform's code (which also honours a
 * 429's Retry-After for the whole proxy); r holds the response.
 */
static int reg_request(struct upstream *u, const char *scope, const char *url, bool head,
                       bool manifest, size_t max, struct fetch_response *r)
{
    struct dk_state *s = dk_state(u);
    int rc;
    memset(r, 0, sizeof(*r));
    if (!s)
        return -ENOMEM;
    for (int attempt = 0;; attempt++) {
        struct curl_slist *h = NULL;
        struct dk_cred used = {0};
        rc = manifest ? fetch_header_add(&h, OCI_ACCEPT_HEADER) : 0;
        if (rc == 0)
            rc = auth_add(u, s, scope, &h, &used, false);
        if (rc == 0) {
            struct fetch_request req = {.url = url,
                                        .head = head,
                                        .headers = h,
                                        .timeout_ms = FETCH_META_TIMEOUT_MS,
                                        .max_body = max};
            rc = upstream_perform(u, &req, r);
        }
        curl_slist_free_all(h);
        bool again =
            rc == 0 && attempt == 0 && refused(u, s, r->status, r->www_authenticate, scope, &used);
        cred_clear(&used);
        if (!again)
            break;
        fetch_response_clear(r);
    }
    if (rc == 0 && r->status >= 200 && r->status < 300) {
        upstream_state_lock(u);
        if (s->auth == DK_AUTH_UNKNOWN)
            s->auth = DK_AUTH_NONE;
        upstream_state_unlock(u);
    }
    return rc;
}

/* ---- manifests and tags ------------------------------------------------------------------ */

/* A manifest by digest: cached for good, verified against the digest. */
static int fetch_manifest(struct upstream *u, const char *repo, const char *digest,
                          struct upstream_doc *d)
{
    struct dk_state *s = dk_state(u);
    char scope[OCI_NAME_MAX + 32];
    char *url = NULL;
    memset(d, 0, sizeof(*d));
    int rc = s ? reg_url(u, &url, "%s/manifests/%s", repo, digest) : -ENOMEM;
    if (rc < 0)
        goto out;
    scope_for(repo, scope, sizeof(scope));
    for (int attempt = 0;; attempt++) {
        struct curl_slist *h = NULL;
        struct dk_cred used = {0};
        rc = fetch_header_add(&h, OCI_ACCEPT_HEADER);
        if (rc == 0)
            rc = auth_add(u, s, scope, &h, &used, false);
        if (rc == 0) {
            struct upstream_doc_req req = {.url = url,
                                           .headers = h,
                                           .immutable = true,
                                           .expect = digest,
                                           .max = DK_MANIFEST_MAX};
            rc = upstream_doc_fetch(u, &req, d);
        }
        curl_slist_free_all(h);
        bool again =
            attempt == 0 && refused(u, s, doc_status(rc, d), d->www_authenticate, scope, &used);
        cred_clear(&used);
        if (!again)
            break;
        upstream_doc_clear(d);
    }
out:
    free(url);
    return rc;
}

/* Fetches and parses a manifest or index by digest; *size and mt get what the bytes say. */
static int load_manifest(struct upstream *u, const char *repo, const char *digest,
                         const char *mt_hint, struct oci_manifest *m, int64_t *size)
{
    struct upstream_doc d;
    char err[200];
    memset(m, 0, sizeof(*m));
    int rc = fetch_manifest(u, repo, digest, &d);
    if (rc == 0) {
        rc = oci_manifest_parse(d.body, d.len, d.content_type ? d.content_type : mt_hint, m, err,
                                sizeof(err));
        if (rc == -EIO)
            log_warn("proxy %s: manifest %s@%s: %s", upstream_config(u)->key, repo, digest, err);
        if (size)
            *size = (int64_t)d.len;
    }
    upstream_doc_clear(&d);
    return rc;
}

static struct dk_tag *tag_find(struct dk_state *s, const char *repo, const char *ref)
{
    for (size_t i = 0; i < s->ntags; i++)
        if (strcmp(s->tags[i].repo, repo) == 0 && strcmp(s->tags[i].ref, ref) == 0)
            return &s->tags[i];
    return NULL;
}

/* Records what a tag resolved to (under the state lock); the oldest entry makes room. */
static void tag_put(struct dk_state *s, const char *repo, const char *ref, const struct dk_tag *v)
{
    struct dk_tag *t = tag_find(s, repo, ref);
    if (!t && s->ntags == DK_TAG_CACHE_MAX) {
        size_t old = 0;
        for (size_t i = 1; i < s->ntags; i++)
            if (s->tags[i].checked < s->tags[old].checked)
                old = i;
        free(s->tags[old].repo);
        free(s->tags[old].ref);
        s->tags[old] = s->tags[--s->ntags];
    }
    if (!t) {
        if (s->ntags == s->captags) {
            size_t cap = s->captags ? s->captags * 2 : 16;
            struct dk_tag *nt = realloc(s->tags, cap * sizeof(*nt));
            if (!nt)
                return;
            s->tags = nt;
            s->captags = cap;
        }
        t = &s->tags[s->ntags];
        memset(t, 0, sizeof(*t));
        t->repo = strdup(repo);
        t->ref = strdup(ref);
        if (!t->repo || !t->ref) {
            free(t->repo);
            free(t->ref);
            return;
        }
        s->ntags++;
    }
    t->absent = v->absent;
    memcpy(t->digest, v->digest, sizeof(t->digest));
    memcpy(t->mt, v->mt, sizeof(t->mt));
    t->size = v->size;
    t->checked = v->checked;
}

/* A tag whose HEAD gave no usable digest: GET it (a mutable document) and hash the bytes. */
static int resolve_by_get(struct upstream *u, const char *repo, const char *ref, struct dk_tag *v)
{
    struct dk_state *s = dk_state(u);
    char scope[OCI_NAME_MAX + 32];
    char *url = NULL;
    struct upstream_doc d;
    memset(&d, 0, sizeof(d));
    int rc = s ? reg_url(u, &url, "%s/manifests/%s", repo, ref) : -ENOMEM;
    if (rc < 0)
        goto out;
    scope_for(repo, scope, sizeof(scope));
    for (int attempt = 0;; attempt++) {
        struct curl_slist *h = NULL;
        struct dk_cred used = {0};
        rc = fetch_header_add(&h, OCI_ACCEPT_HEADER);
        if (rc == 0)
            rc = auth_add(u, s, scope, &h, &used, false);
        if (rc == 0) {
            struct upstream_doc_req req = {.url = url, .headers = h, .max = DK_MANIFEST_MAX};
            rc = upstream_doc_fetch(u, &req, &d);
        }
        curl_slist_free_all(h);
        bool again =
            attempt == 0 && refused(u, s, doc_status(rc, &d), d.www_authenticate, scope, &used);
        cred_clear(&used);
        if (!again)
            break;
        upstream_doc_clear(&d);
    }
    if (rc == 0) {
        snprintf(v->digest, sizeof(v->digest), "sha256:%s", d.sha256);
        oci_media_type_base(d.content_type, v->mt, sizeof(v->mt));
        v->size = (int64_t)d.len;
    }
out:
    upstream_doc_clear(&d);
    free(url);
    return rc;
}

/*
 * What repo:ref names now. A digest names itself (its existence is checked
 * when the manifest is fetched). A tag is answered from memory within the
 * TTL, else by a HEAD; when the remote fails, the last answer is used and
 * marked stale.
 */
static void resolved_from(struct dk_resolved *out, const struct dk_tag *t, bool stale)
{
    memcpy(out->digest, t->digest, sizeof(out->digest));
    memcpy(out->mt, t->mt, sizeof(out->mt));
    out->size = t->size;
    out->stale = stale;
}

/* Asks the registry what a tag names now (HEAD, or GET where HEAD gives no digest). */
static int ask_tag(struct upstream *u, const char *repo, const char *ref, struct dk_tag *v)
{
    struct fetch_response r;
    char scope[OCI_NAME_MAX + 32];
    char *url = NULL;
    int rc = reg_url(u, &url, "%s/manifests/%s", repo, ref);
    if (rc < 0)
        return rc;
    scope_for(repo, scope, sizeof(scope));
    rc = reg_request(u, scope, url, true, true, 0, &r);
    free(url);
    v->size = -1;
    v->checked = clock_mono_ms();
    if (rc == 0 && r.status == 200 && r.docker_digest && oci_digest_valid(r.docker_digest)) {
        snprintf(v->digest, sizeof(v->digest), "%s", r.docker_digest);
        oci_media_type_base(r.content_type, v->mt, sizeof(v->mt));
        v->size = r.content_length;
    } else if (rc == 0 && (r.status == 200 || r.status == 405 || r.status == 501)) {
        rc = resolve_by_get(u, repo, ref, v); /* no digest header, or no HEAD at all */
    } else if (rc == 0) {
        rc = failure_status_errno(r.status);
        if (rc == -EACCES)
            log_warn("proxy %s: %s:%s: access denied (HTTP %ld)", upstream_config(u)->key, repo,
                     ref, r.status);
    }
    fetch_response_clear(&r);
    if (rc == -ENOENT)
        v->absent = true;
    return rc;
}

/*
 * What repo:ref names now. A digest names itself (its existence is checked
 * when the manifest is fetched). A tag is answered from memory within the
 * TTL, else by asking; when the remote fails, the last answer is used and
 * marked stale.
 */
static int resolve(struct upstream *u, const char *repo, const char *ref, struct dk_resolved *out)
{
    struct dk_state *s = dk_state(u);
    struct dk_tag cached = {0}, v = {0};
    bool have = false;
    memset(out, 0, sizeof(*out));
    out->size = -1;
    if (oci_digest_valid(ref)) {
        snprintf(out->digest, sizeof(out->digest), "%s", ref);
        return 0;
    }
    if (!s)
        return -ENOMEM;
    upstream_state_lock(u);
    struct dk_tag *t = tag_find(s, repo, ref);
    if (t) {
        cached = *t;
        cached.repo = cached.ref = NULL;
        have = true;
    }
    upstream_state_unlock(u);
    if (have) {
        int64_t ttl =
            (cached.absent ? upstream_config(u)->negative_ttl : upstream_config(u)->metadata_ttl) *
            1000;
        if (clock_mono_ms() < cached.checked + ttl || upstream_config(u)->offline) {
            if (cached.absent)
                return -ENOENT;
            resolved_from(out, &cached, false);
            return 0;
        }
    }
    int rc = ask_tag(u, repo, ref, &v);
    if (rc == 0 || v.absent) {
        upstream_state_lock(u);
        tag_put(s, repo, ref, &v);
        upstream_state_unlock(u);
        if (rc == 0)
            resolved_from(out, &v, false);
        return rc;
    }
    if (rc == -ETIMEDOUT || rc == -ECONNREFUSED || rc == -ENETUNREACH)
        rc = -EREMOTEIO;
    if (rc == -EREMOTEIO && have && !cached.absent) {
        log_info("proxy %s: %s:%s: the remote failed; using the last digest (stale)",
                 upstream_config(u)->key, repo, ref);
        resolved_from(out, &cached, true);
        return 0;
    }
    return rc;
}

/*
 * Whether repo:ref exists; fills res. A digest reference is checked by
 * fetching its manifest (needed next anyway, and cached for good), and so
 * is a tag whose HEAD did not name a manifest type and size.
 */
static int image_check(struct upstream *u, const char *repo, const char *ref,
                       struct dk_resolved *res)
{
    int rc = resolve(u, repo, ref, res);
    if (rc < 0 || (res->size >= 0 &&
                   (oci_media_type_is_manifest(res->mt) || oci_media_type_is_index(res->mt))))
        return rc;
    struct upstream_doc d;
    char err[200];
    rc = fetch_manifest(u, repo, res->digest, &d);
    if (rc == 0) {
        struct oci_manifest m;
        rc = oci_manifest_parse(d.body, d.len, d.content_type, &m, err, sizeof(err));
        if (rc == 0) {
            snprintf(res->mt, sizeof(res->mt), "%s", m.media_type);
            res->size = (int64_t)d.len;
            oci_manifest_clear(&m);
        } else if (rc == -EIO) {
            log_warn("proxy %s: manifest %s@%s: %s", upstream_config(u)->key, repo, res->digest,
                     err);
        }
    }
    upstream_doc_clear(&d);
    return rc;
}

/* ---- walking an image --------------------------------------------------------------------- */

/* Either finds one blob (want) or collects all of them (list). */
struct walk {
    const char *want;
    struct drv_entry *found;
    struct drv_listing *list;
};

/* Visits one blob of the layout. Returns 1 when the search is over, 0 to go on, or -errno. */
static int visit(struct upstream *u, const char *repo, const char *digest, int64_t size,
                 const char *mt, bool manifest, struct walk *w)
{
    const char *hex = digest + 7;
    if (w->want && strcmp(hex, w->want) != 0)
        return 0;
    for (size_t i = 0; w->list && i < w->list->n; i++)
        if (strcmp(w->list->items[i].name, hex) == 0)
            return 0; /* layers shared between platforms are listed once */
    struct drv_entry e = {.kind = NODE_FILE,
                          .size = size,
                          .expect = (char *)digest,
                          .content_type = (char *)mt,
                          .is_mutable = false};
    int rc = reg_url(u, &e.url, "%s/%s/%s", repo, manifest ? "manifests" : "blobs", digest);
    if (rc < 0)
        return rc;
    if (w->want) {
        w->found->kind = NODE_FILE;
        w->found->size = size;
        w->found->url = e.url;
        w->found->expect = strdup(digest);
        w->found->content_type = mt ? strdup(mt) : NULL;
        w->found->is_mutable = false;
        rc = w->found->expect ? 1 : -ENOMEM;
    } else {
        rc = drv_listing_add(w->list, hex, &e);
        free(e.url);
    }
    return rc;
}

static int visit_desc(struct upstream *u, const char *repo, const struct oci_desc *d, bool manifest,
                      struct walk *w)
{
    return visit(u, repo, d->digest, d->size, d->media_type, manifest, w);
}

/* The config and layers of an image manifest. */
static int visit_image(struct upstream *u, const char *repo, const struct oci_manifest *m,
                       struct walk *w)
{
    int rc = visit_desc(u, repo, &m->config, false, w);
    for (size_t i = 0; rc == 0 && i < m->n_layers; i++)
        rc = visit_desc(u, repo, &m->layers[i], false, w);
    return rc;
}

/*
 * Visits every blob of repo:ref's layout, fetching manifests only as far as
 * the search needs: the top document first (from the HEAD's answer when
 * that says enough), then each (platform-filtered) child and its blobs.
 * Nested indexes are listed but not expanded. Returns 0 (found or all
 * visited) or -errno.
 */
static int walk_image(struct upstream *u, const char *repo, const char *ref,
                      const struct dk_resolved *res, struct walk *w)
{
    const char *filter = upstream_platform_filter(u);
    struct oci_manifest m;
    int64_t size = -1;
    int rc = 0;
    bool top_done = false;
    if (res->size >= 0 && res->mt[0] && (!filter || oci_media_type_is_manifest(res->mt))) {
        rc = visit(u, repo, res->digest, res->size, res->mt, true, w);
        if (rc != 0)
            return rc < 0 ? rc : 0;
        top_done = true;
    }
    rc = load_manifest(u, repo, res->digest, res->mt[0] ? res->mt : NULL, &m, &size);
    if (rc < 0)
        return rc;
    if (!top_done && (!filter || m.kind == OCI_KIND_MANIFEST))
        rc = visit(u, repo, res->digest, size, m.media_type, true, w);
    if (rc == 0 && m.kind == OCI_KIND_MANIFEST)
        rc = visit_image(u, repo, &m, w);
    for (size_t i = 0; rc == 0 && m.kind == OCI_KIND_INDEX && i < m.n_manifests; i++) {
        const struct oci_desc *c = &m.manifests[i];
        if (filter && !(c->has_platform && oci_platform_match(filter, &c->platform)))
            continue;
        rc = visit_desc(u, repo, c, true, w);
        if (rc != 0 || oci_media_type_is_index(c->media_type))
            continue;
        struct oci_manifest cm;
        rc = load_manifest(u, repo, c->digest, c->media_type, &cm, NULL);
        if (rc < 0)
            break;
        if (cm.kind == OCI_KIND_MANIFEST)
            rc = visit_image(u, repo, &cm, w);
        oci_manifest_clear(&cm);
    }
    oci_manifest_clear(&m);
    (void)ref;
    return rc < 0 ? rc : 0;
}

/* ---- index.json ---------------------------------------------------------------------------- */

static json_t *desc_json(const char *mt, const char *digest, int64_t size,
                         const struct oci_platform *pl, const char *tag)
{
    json_t *d = json_object();
    if (!d)
        return NULL;
    json_object_set_new(d, "mediaType", json_string(mt && mt[0] ? mt : OCI_MT_OCI_MANIFEST));
    json_object_set_new(d, "digest", json_string(digest));
    json_object_set_new(d, "size", json_integer((json_int_t)size));
    if (pl) {
        json_t *p = json_object();
        json_object_set_new(p, "architecture", json_string(pl->arch));
        json_object_set_new(p, "os", json_string(pl->os));
        if (pl->variant)
            json_object_set_new(p, "variant", json_string(pl->variant));
        json_object_set_new(d, "platform", p);
    }
    if (tag) {
        json_t *a = json_object();
        json_object_set_new(a, "org.opencontainers.image.ref.name", json_string(tag));
        json_object_set_new(d, "annotations", a);
    }
    return d;
}

/*
 * The layout's index.json: the tag's manifest or index, or, with a platform
 * filter and an index upstream, the matching platforms' manifests.
 */
static int make_index_json(struct upstream *u, const char *repo, const char *ref, char **body,
                           size_t *len, bool *stale)
{
    const char *filter = upstream_platform_filter(u);
    const char *tag = oci_digest_valid(ref) ? NULL : ref;
    struct dk_resolved res;
    struct oci_manifest m;
    bool loaded = false;
    int rc = image_check(u, repo, ref, &res);
    if (rc < 0)
        return rc;
    json_t *arr = json_array();
    json_t *root = json_object();
    if (!arr || !root) {
        rc = -ENOMEM;
        goto out;
    }
    if (!filter || oci_media_type_is_manifest(res.mt)) {
        json_array_append_new(arr, desc_json(res.mt, res.digest, res.size, NULL, tag));
    } else {
        int64_t size = -1;
        rc = load_manifest(u, repo, res.digest, res.mt, &m, &size);
        if (rc < 0)
            goto out;
        loaded = true;
        if (m.kind == OCI_KIND_MANIFEST) {
            json_array_append_new(arr, desc_json(m.media_type, res.digest, size, NULL, tag));
        } else {
            for (size_t i = 0; i < m.n_manifests; i++) {
                const struct oci_desc *c = &m.manifests[i];
                if (c->has_platform && oci_platform_match(filter, &c->platform))
                    json_array_append_new(
                        arr, desc_json(c->media_type, c->digest, c->size, &c->platform, tag));
            }
        }
    }
    json_object_set_new(root, "schemaVersion", json_integer(2));
    json_object_set_new(root, "mediaType", json_string(OCI_MT_OCI_INDEX));
    json_object_set(root, "manifests", arr);
    *body = json_dumps(root, JSON_COMPACT);
    if (!*body) {
        rc = -ENOMEM;
        goto out;
    }
    *len = strlen(*body);
    *stale = res.stale;
out:
    if (loaded)
        oci_manifest_clear(&m);
    json_decref(arr);
    json_decref(root);
    return rc;
}

/* ---- listings ------------------------------------------------------------------------------ */

/* Follows Link rel="next" from a page, only on the registry's own origin. */
static char *next_page(struct upstream *u, const char *link, const char *url)
{
    char *next = NULL, *base = NULL;
    if (!link || oci_link_next(link, url, &next) < 0)
        return NULL;
    char *a = fetch_url_origin(next);
    char *b = reg_base(u, dk_state(u), &base) == 0 ? fetch_url_origin(base) : NULL;
    bool same = a && b && strcmp(a, b) == 0;
    free(a);
    free(b);
    free(base);
    if (!same) {
        log_warn("proxy %s: ignoring a pagination link to another origin", upstream_config(u)->key);
        free(next);
        return NULL;
    }
    return next;
}

/*
 * Reads every page of a paginated list (tags/list, _catalog), calling add
 * for each string of the array named key. Returns 0 or -errno.
 */
static int read_pages(struct upstream *u, const char *scope, const char *first, const char *key,
                      int (*add)(void *arg, const char *s), void *arg)
{
    char *url = strdup(first);
    size_t total = 0;
    int rc = url ? 0 : -ENOMEM;
    for (int page = 0; rc == 0 && url && page < DK_PAGES_MAX; page++) {
        struct fetch_response r;
        json_error_t jerr;
        rc = reg_request(u, scope, url, false, false, DK_PAGE_MAX, &r);
        if (rc == 0)
            rc = failure_status_errno(r.status);
        json_t *root = rc == 0 ? json_loadb(r.body, r.body_len, 0, &jerr) : NULL;
        json_t *list = json_object_get(root, key);
        if (rc == 0 &&
            (!json_is_object(root) || (list && !json_is_array(list) && !json_is_null(list)))) {
            log_warn("proxy %s: %s: not a list answer", upstream_config(u)->key, url);
            rc = -EIO;
        }
        size_t i;
        json_t *v;
        json_array_foreach(json_is_array(list) ? list : NULL, i, v)
        {
            if (rc != 0 || total >= DK_LIST_ENTRIES_MAX)
                break;
            if (json_is_string(v)) {
                rc = add(arg, json_string_value(v));
                total++;
            }
        }
        char *next = rc == 0 && total < DK_LIST_ENTRIES_MAX ? next_page(u, r.link, url) : NULL;
        json_decref(root);
        fetch_response_clear(&r);
        free(url);
        url = next;
    }
    free(url);
    return rc;
}

static int add_tag(void *arg, const char *tag)
{
    struct drv_entry e = {.kind = NODE_DIR, .size = 0};
    return oci_tag_valid(tag) ? drv_listing_add(arg, tag, &e) : 0;
}

static int list_tags(struct upstream *u, const char *repo, struct drv_listing *out)
{
    char scope[OCI_NAME_MAX + 32];
    char *url = NULL;
    int rc = reg_url(u, &url, "%s/tags/list", repo);
    if (rc < 0)
        return rc;
    scope_for(repo, scope, sizeof(scope));
    rc = read_pages(u, scope, url, "tags", add_tag, out);
    free(url);
    return rc;
}

struct strv {
    char **v;
    size_t n, cap;
};

static int strv_add(void *arg, const char *s)
{
    struct strv *sv = arg;
    if (!oci_name_valid(s))
        return 0;
    if (sv->n == sv->cap) {
        size_t cap = sv->cap ? sv->cap * 2 : 64;
        char **nv = realloc(sv->v, cap * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        sv->v = nv;
        sv->cap = cap;
    }
    sv->v[sv->n] = strdup(s);
    return sv->v[sv->n++] ? 0 : -ENOMEM;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Refreshes the catalog when it is older than the TTL. A registry that
 * does not serve one (Docker Hub, denied scope) is remembered as such for
 * the TTL; a failing one keeps the last answer.
 */
static void catalog_refresh(struct upstream *u, struct dk_state *s)
{
    if (is_hub(u))
        return; /* Docker Hub has no catalog */
    int64_t now = clock_mono_ms();
    upstream_state_lock(u);
    bool fresh = s->cat_fixed || (s->cat != DK_CAT_UNKNOWN &&
                                  now < s->cat_checked + upstream_config(u)->metadata_ttl * 1000);
    upstream_state_unlock(u);
    if (fresh || upstream_config(u)->offline)
        return;
    struct strv sv = {0};
    /* No n=: registry 2.8 refuses one above its maxentries; its own page size and Links do. */
    char *url = NULL;
    int rc = reg_url(u, &url, "_catalog");
    if (rc == 0)
        rc = read_pages(u, "registry:catalog:*", url, "repositories", strv_add, &sv);
    free(url);
    if (rc == 0 && sv.n > 1)
        qsort(sv.v, sv.n, sizeof(*sv.v), cmp_str);
    upstream_state_lock(u);
    if (rc == 0) {
        catalog_free(s->catalog, s->ncatalog);
        s->catalog = sv.v;
        s->ncatalog = sv.n;
        s->cat = DK_CAT_HAVE;
        s->cat_checked = now;
        sv.v = NULL;
        sv.n = 0;
    } else if (rc == -ENOENT || rc == -EACCES || rc == -EIO) {
        catalog_free(s->catalog, s->ncatalog);
        s->catalog = NULL;
        s->ncatalog = 0;
        s->cat = DK_CAT_NONE;
        s->cat_checked = now;
    }
    upstream_state_unlock(u);
    catalog_free(sv.v, sv.n);
}

/* First index in the sorted catalog not less than key (under the state lock). */
static size_t lower_bound(struct dk_state *s, const char *key)
{
    size_t lo = 0, hi = s->ncatalog;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(s->catalog[mid], key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/*
 * What the catalog says about a directory path: whether it may be a
 * namespace or repository (true when there is no catalog), and whether it
 * is exactly a repository.
 */
static void catalog_knows(struct upstream *u, const char *path, bool *possible, bool *is_repo)
{
    struct dk_state *s = dk_state(u);
    char prefix[OCI_NAME_MAX + 2];
    *possible = true;
    *is_repo = false;
    if (!s || is_hub(u))
        return;
    catalog_refresh(u, s);
    snprintf(prefix, sizeof(prefix), "%s/", path);
    upstream_state_lock(u);
    if (s->cat == DK_CAT_HAVE) {
        size_t i = lower_bound(s, path);
        *is_repo = i < s->ncatalog && strcmp(s->catalog[i], path) == 0;
        size_t j = lower_bound(s, prefix);
        bool below = j < s->ncatalog && strncmp(s->catalog[j], prefix, strlen(prefix)) == 0;
        *possible = *is_repo || below;
    } else {
        *is_repo = true; /* unknown: worth asking */
    }
    upstream_state_unlock(u);
}

/* The catalog's next components below dir ("" for the root), as directories. */
static int catalog_children(struct upstream *u, const char *dir, struct drv_listing *out,
                            bool *have)
{
    struct dk_state *s = dk_state(u);
    char prefix[OCI_NAME_MAX + 2];
    struct strv names = {0};
    int rc = 0;
    *have = false;
    if (!s || is_hub(u))
        return 0;
    catalog_refresh(u, s);
    snprintf(prefix, sizeof(prefix), "%s%s", dir, dir[0] ? "/" : "");
    size_t pl = strlen(prefix);
    upstream_state_lock(u);
    if (s->cat == DK_CAT_HAVE) {
        *have = true;
        for (size_t i = lower_bound(s, prefix);
             rc == 0 && i < s->ncatalog && strncmp(s->catalog[i], prefix, pl) == 0; i++) {
            const char *rest = s->catalog[i] + pl;
            char comp[OCI_NAME_MAX + 1];
            size_t n = strcspn(rest, "/");
            if (n == 0 || n > OCI_NAME_MAX)
                continue;
            memcpy(comp, rest, n);
            comp[n] = '\0';
            if (names.n == 0 || strcmp(names.v[names.n - 1], comp) != 0)
                rc = strv_add(&names, comp);
        }
    }
    upstream_state_unlock(u);
    /* Below one prefix, names sharing a first component are adjacent only after sorting. */
    if (names.n > 1)
        qsort(names.v, names.n, sizeof(*names.v), cmp_str);
    struct drv_entry e = {.kind = NODE_DIR};
    for (size_t i = 0; rc == 0 && i < names.n; i++)
        if (i == 0 || strcmp(names.v[i], names.v[i - 1]) != 0)
            rc = drv_listing_add(out, names.v[i], &e);
    catalog_free(names.v, names.n);
    return rc;
}

/* ---- names ----------------------------------------------------------------------------- */

void dk_access_clear(struct dk_access *a)
{
    wipe_free(a->authorization);
    free(a->base);
    a->authorization = a->base = NULL;
}

/* Whether dir is name or a directory on the way to it. */
static bool on_the_way(const char *dir, const char *name)
{
    size_t n = strlen(dir);
    return strncmp(name, dir, n) == 0 && (name[n] == '\0' || name[n] == '/');
}

int dk_path_limit(struct oci_path *p, const char *only)
{
    if (!only)
        return p->layout || p->tagdir || p->nsdir ? 0 : -ENOENT;
    if (p->layout && strcmp(p->repo, only) != 0)
        p->layout = false;
    if (p->tagdir && strcmp(p->td_repo, only) != 0)
        p->tagdir = false;
    if (p->nsdir && !on_the_way(p->ns_name, only))
        p->nsdir = false;
    if (p->nsdir)
        p->ns_repo = strcmp(p->ns_name, only) == 0;
    return p->layout || p->tagdir || p->nsdir ? 0 : -ENOENT;
}

/* buf = prefix + buf (size OCI_NAME_MAX + 1); false when it does not fit. */
static bool prefix_name(char *buf, const char *prefix)
{
    size_t pl = strlen(prefix), bl = strlen(buf);
    if (pl + bl > OCI_NAME_MAX)
        return false;
    memmove(buf + pl, buf, bl + 1);
    memcpy(buf, prefix, pl);
    return true;
}

int dk_path_prefix(struct oci_path *p, const char *prefix)
{
    if (prefix && *prefix) {
        if (p->layout && !prefix_name(p->repo, prefix))
            p->layout = false;
        if (p->tagdir && !prefix_name(p->td_repo, prefix))
            p->tagdir = false;
        if (p->nsdir && !prefix_name(p->ns_name, prefix))
            p->nsdir = false;
    }
    return p->layout || p->tagdir || p->nsdir ? 0 : -ENOENT;
}

/* The variant's namespace ("" for none), asked once; copied into buf (OCI_NAME_MAX + 1). */
static int name_prefix(struct upstream *u, struct dk_state *s, char *buf)
{
    buf[0] = '\0';
    if (!s->var || !s->var->prefix)
        return 0;
    upstream_state_lock(u);
    bool have = s->prefix != NULL;
    if (have)
        snprintf(buf, OCI_NAME_MAX + 1, "%s", s->prefix);
    upstream_state_unlock(u);
    if (have)
        return 0;
    char *got = NULL;
    int rc = s->var->prefix(s->var_st, &got);
    if (rc < 0)
        return rc;
    if (got && strlen(got) > OCI_NAME_MAX) {
        free(got);
        return -ENAMETOOLONG;
    }
    snprintf(buf, OCI_NAME_MAX + 1, "%s", got ? got : "");
    upstream_state_lock(u);
    if (!s->prefix) {
        s->prefix = got ? got : strdup("");
        got = NULL;
    }
    upstream_state_unlock(u);
    free(got);
    return 0;
}

/*
 * The readings of a mount path, in the registry's names: those outside a
 * scoped proxy's repository are dropped (no request), the variant's
 * namespace is put before the rest. -ENOENT when none is left.
 */
static int dk_parse(struct upstream *u, const char *path, struct oci_path *p)
{
    struct dk_state *s = dk_state(u);
    char prefix[OCI_NAME_MAX + 1];
    if (!s)
        return -ENOMEM;
    if (oci_path_parse(path, is_hub(u), p) < 0 || dk_path_limit(p, s->info.only_repository) < 0)
        return -ENOENT;
    int rc = name_prefix(u, s, prefix);
    return rc < 0 ? rc : dk_path_prefix(p, prefix);
}

/* ---- driver ops -------------------------------------------------------------------------- */

/* A name inside repo:ref's layout, once the image is known to exist. */
static int layout_entry(struct upstream *u, const struct oci_path *p, const struct dk_resolved *res,
                        struct drv_entry *out)
{
    switch (p->part) {
    case OCI_PART_OCI_LAYOUT:
        out->kind = NODE_FILE;
        out->generated = true;
        out->size = (int64_t)strlen(OCI_LAYOUT_FILE_BODY);
        return 0;
    case OCI_PART_INDEX_JSON: {
        char *body = NULL;
        size_t len = 0;
        bool stale = false;
        int rc = make_index_json(u, p->repo, p->ref, &body, &len, &stale);
        free(body);
        if (rc < 0)
            return rc;
        out->kind = NODE_FILE;
        out->generated = true;
        out->size = (int64_t)len;
        out->is_mutable = !oci_digest_valid(p->ref);
        out->content_type = strdup(OCI_MT_OCI_INDEX);
        return out->content_type ? 0 : -ENOMEM;
    }
    case OCI_PART_BLOBS:
    case OCI_PART_BLOBS_SHA256:
        out->kind = NODE_DIR;
        return 0;
    case OCI_PART_BLOB: {
        struct walk w = {.want = p->hex, .found = out};
        int rc = walk_image(u, p->repo, p->ref, res, &w);
        if (rc == 0 && !out->url)
            rc = -ENOENT; /* not part of this image */
        return rc;
    }
    default:
        return -ENOENT;
    }
}

/*
 * Whether path lies below the blobs/ directory of an image already known to
 * exist (memory only, no request): there only layout names are valid, so
 * any other reading (a repository named .../blobs/sha256) is not looked for.
 */
static bool below_known_layout(struct upstream *u, const char *path)
{
    struct dk_state *s = dk_state(u);
    char prefix[OCI_NAME_MAX + OCI_REF_MAX + 16];
    bool known = false;
    if (!s)
        return false;
    for (const char *b = strstr(path, "/" OCI_LAYOUT_BLOBS "/"); b && !known;
         b = strstr(b + 1, "/" OCI_LAYOUT_BLOBS "/")) {
        struct oci_path p;
        size_t n = (size_t)(b - path) + 6; /* up to and including "/blobs" */
        if (n >= sizeof(prefix))
            break;
        memcpy(prefix, path, n);
        prefix[n] = '\0';
        if (dk_parse(u, prefix, &p) < 0 || !p.layout || p.part != OCI_PART_BLOBS ||
            oci_digest_valid(p.ref))
            continue;
        upstream_state_lock(u);
        struct dk_tag *t = tag_find(s, p.repo, p.ref);
        known = t && !t->absent;
        upstream_state_unlock(u);
    }
    return known;
}

static int dk_lookup(struct upstream *u, const char *path, struct drv_entry *out)
{
    struct oci_path p;
    struct dk_resolved res;
    int rc;
    if (!path[0]) {
        out->kind = NODE_DIR;
        return 0;
    }
    if ((rc = dk_parse(u, path, &p)) < 0)
        return rc;
    if (p.layout) {
        rc = image_check(u, p.repo, p.ref, &res);
        if (rc == 0)
            return layout_entry(u, &p, &res, out);
        if (rc != -ENOENT)
            return rc;
    }
    if (below_known_layout(u, path))
        return -ENOENT;
    bool ns = false, ns_repo = false;
    if (p.nsdir)
        catalog_knows(u, path, &ns, &ns_repo);
    if (p.tagdir) {
        /*
         * Where a namespace is possible, a plain tag name is answered
         * without asking; a digest, a reserved layout name or a name that
         * can only be a tag directory is checked.
         */
        if (ns && !p.layout && !oci_digest_valid(p.td_ref)) {
            out->kind = NODE_DIR;
            return 0;
        }
        rc = image_check(u, p.td_repo, p.td_ref, &res);
        if (rc == 0 || ns) {
            out->kind = NODE_DIR;
            /* A known image layout is one unit: a registry takes all of it from one upstream. */
            if (rc == 0 && !(out->content_type = strdup(OCI_LAYOUT_DIR_TYPE)))
                return -ENOMEM;
            return 0;
        }
        return rc;
    }
    if (ns) {
        out->kind = NODE_DIR;
        return 0;
    }
    return -ENOENT;
}

static int add_layout_entries(struct upstream *u, const char *repo, const char *ref,
                              struct drv_listing *out)
{
    struct drv_entry e = {
        .kind = NODE_FILE, .generated = true, .size = (int64_t)strlen(OCI_LAYOUT_FILE_BODY)};
    int rc = drv_listing_add(out, OCI_LAYOUT_FILE, &e);
    if (rc < 0)
        return rc;
    char *body = NULL;
    size_t len = 0;
    bool stale = false;
    rc = make_index_json(u, repo, ref, &body, &len, &stale);
    free(body);
    if (rc < 0)
        return rc;
    e.size = (int64_t)len;
    e.is_mutable = !oci_digest_valid(ref);
    e.content_type = (char *)OCI_MT_OCI_INDEX;
    rc = drv_listing_add(out, OCI_LAYOUT_INDEX, &e);
    if (rc < 0)
        return rc;
    struct drv_entry d = {.kind = NODE_DIR};
    return drv_listing_add(out, OCI_LAYOUT_BLOBS, &d);
}

static int dk_list(struct upstream *u, const char *dir, struct drv_listing *out)
{
    struct oci_path p;
    struct dk_resolved res;
    bool have = false;
    int rc = 0, err = -ENOTSUP;
    if (!dir[0]) {
        rc = catalog_children(u, "", out, &have);
        return rc < 0 ? rc : have ? 0 : -ENOTSUP;
    }
    if ((rc = dk_parse(u, dir, &p)) < 0)
        return rc;
    if (p.layout && (p.part == OCI_PART_BLOBS || p.part == OCI_PART_BLOBS_SHA256)) {
        rc = image_check(u, p.repo, p.ref, &res);
        if (rc == 0 && p.part == OCI_PART_BLOBS) {
            struct drv_entry d = {.kind = NODE_DIR};
            return drv_listing_add(out, OCI_LAYOUT_ALG, &d);
        }
        if (rc == 0) {
            struct walk w = {.list = out};
            /* The layout of the digest the tag points at now: older blobs are not part of it. */
            out->complete = true;
            return walk_image(u, p.repo, p.ref, &res, &w);
        }
        if (rc != -ENOENT)
            return rc;
    }
    bool is_repo = false;
    if (p.nsdir) {
        bool ns = false, maybe_repo = false;
        catalog_knows(u, dir, &ns, &maybe_repo);
        if (ns) {
            bool cat = false;
            rc = catalog_children(u, dir, out, &cat);
            if (rc < 0)
                return rc;
            have = cat && out->n > 0;
        }
        if (p.ns_repo && maybe_repo) {
            size_t before = out->n;
            rc = list_tags(u, p.ns_name, out);
            if (rc == 0) {
                is_repo = true;
                have = true;
            } else {
                /* Not a repository after all: drop what a partial read added. */
                while (out->n > before)
                    drv_entry_clear(&out->items[--out->n]);
                err = rc == -ENOENT || rc == -EACCES ? err : rc;
            }
        }
    }
    if (p.tagdir && !is_repo) {
        rc = image_check(u, p.td_repo, p.td_ref, &res);
        if (rc == 0) {
            rc = add_layout_entries(u, p.td_repo, p.td_ref, out);
            if (rc < 0)
                return rc;
            have = true;
        } else if (rc != -ENOENT) {
            err = rc;
        }
    }
    return have ? 0 : err;
}

static int dk_generate(struct upstream *u, const char *path, char **body, size_t *len, bool *stale)
{
    struct oci_path p;
    *stale = false;
    int rc = dk_parse(u, path, &p);
    if (rc < 0 || !p.layout)
        return rc < 0 ? rc : -ENOENT;
    if (p.part == OCI_PART_OCI_LAYOUT) {
        *body = strdup(OCI_LAYOUT_FILE_BODY);
        *len = strlen(OCI_LAYOUT_FILE_BODY);
        return *body ? 0 : -ENOMEM;
    }
    if (p.part == OCI_PART_INDEX_JSON)
        return make_index_json(u, p.repo, p.ref, body, len, stale);
    return -ENOENT;
}

/*
 * The repository a registry URL of this proxy names (".../v2/<repo>/manifests|blobs/..."),
 * and whether it is a manifest URL. -ENOENT for any other URL.
 */
static int url_repository(struct upstream *u, struct dk_state *s, const char *url,
                          char repo[OCI_NAME_MAX + 1], bool *manifest)
{
    char base[DK_URL_MAX];
    char *reg = NULL;
    int rc = reg_base(u, s, &reg);
    if (rc < 0)
        return rc;
    int n = snprintf(base, sizeof(base), "%sv2/", reg);
    free(reg);
    if (n < 0 || (size_t)n >= sizeof(base) || strncmp(url, base, (size_t)n) != 0)
        return -ENOENT;
    const char *rest = url + n;
    const char *m = NULL, *b = NULL;
    for (const char *q = strstr(rest, "/manifests/"); q; q = strstr(q + 1, "/manifests/"))
        m = q;
    for (const char *q = strstr(rest, "/blobs/"); q; q = strstr(q + 1, "/blobs/"))
        b = q;
    const char *cut = m && (!b || m > b) ? m : b;
    if (!cut || (size_t)(cut - rest) > OCI_NAME_MAX)
        return -ENOENT;
    memcpy(repo, rest, (size_t)(cut - rest));
    repo[cut - rest] = '\0';
    *manifest = cut == m;
    return oci_name_valid(repo) ? 0 : -ENOENT;
}

/*
 * Headers for downloading a registry URL: Accept for manifests, and a
 * Bearer token for the repository the URL names. Other URLs get nothing.
 */
static int dk_request_headers(struct upstream *u, const char *url, struct curl_slist **headers)
{
    char repo[OCI_NAME_MAX + 1], scope[OCI_NAME_MAX + 32];
    struct dk_state *s = dk_state(u);
    struct dk_cred used = {0};
    bool manifest = false;
    int rc = url_repository(u, s, url, repo, &manifest);
    if (rc < 0)
        return rc == -ENOENT ? 0 : rc;
    if (manifest && (rc = fetch_header_add(headers, OCI_ACCEPT_HEADER)) < 0)
        return rc;
    scope_for(repo, scope, sizeof(scope));
    rc = auth_add(u, s, scope, headers, &used, true);
    cred_clear(&used);
    return rc;
}

/*
 * A download the engine made with dk_request_headers was refused (401, or
 * ECR Public's 400): forget the credential it carried, so the engine's one
 * retry gets a fresh one. True when a retry may succeed.
 */
static bool dk_auth_rejected(struct upstream *u, const char *url, long status, const char *www)
{
    char repo[OCI_NAME_MAX + 1], scope[OCI_NAME_MAX + 32];
    struct dk_state *s = dk_state(u);
    struct dk_cred used = {0};
    struct curl_slist *h = NULL;
    bool manifest = false;
    if (url_repository(u, s, url, repo, &manifest) < 0)
        return false;
    scope_for(repo, scope, sizeof(scope));
    bool again =
        auth_add(u, s, scope, &h, &used, false) == 0 && refused(u, s, status, www, scope, &used);
    curl_slist_free_all(h);
    cred_clear(&used);
    return again;
}

/* A blob by digest of a repository, as the mount names the repository (engine_blob). */
static int dk_blob_url(struct upstream *u, const char *repo, const char *digest, char **url)
{
    char path[OCI_NAME_MAX + 80];
    struct oci_path p;
    *url = NULL;
    if (!oci_digest_valid(digest) ||
        (size_t)snprintf(path, sizeof(path), "%s/%s", repo, digest) >= sizeof(path))
        return -ENOENT;
    int rc = dk_parse(u, path, &p);
    if (rc < 0)
        return rc;
    if (!p.tagdir)
        return -ENOENT;
    return reg_url(u, url, "%s/blobs/%s", p.td_repo, digest);
}

/* A HEAD on a registry URL of this proxy, with its credentials (the blob scoping rule). */
static int dk_confirm(struct upstream *u, const char *url, int64_t *size)
{
    char repo[OCI_NAME_MAX + 1], scope[OCI_NAME_MAX + 32];
    struct dk_state *s = dk_state(u);
    struct fetch_response r;
    bool manifest = false;
    if (!s)
        return -ENOMEM;
    int rc = url_repository(u, s, url, repo, &manifest);
    if (rc < 0)
        return rc;
    scope_for(repo, scope, sizeof(scope));
    rc = reg_request(u, scope, url, true, manifest, 0, &r);
    if (rc == 0 && r.status >= 200 && r.status < 300) {
        if (size)
            *size = r.content_length;
    } else if (rc == 0) {
        /* Refused to this proxy's credentials (after reg_request's one fresh try): the
         * upstream does not confirm the blob for this proxy, as if it had none. */
        bool no = r.status == 404 || r.status == 410 || r.status == 401 || r.status == 403;
        rc = no ? -ENOENT : failure_status_errno(r.status);
    }
    fetch_response_clear(&r);
    return rc;
}

const struct driver_ops driver_docker = {
    .type = "docker",
    .sizes_exact = true,
    .lookup = dk_lookup,
    .list = dk_list,
    .generate = dk_generate,
    .request_headers = dk_request_headers,
    .auth_rejected = dk_auth_rejected,
    .blob_url = dk_blob_url,
    .confirm = dk_confirm,
};

/* AWS ECR, private and public: this driver with the ECR variant of ecr.c. */
const struct driver_ops driver_ecr = {
    .type = "ecr",
    .sizes_exact = true,
    .lookup = dk_lookup,
    .list = dk_list,
    .generate = dk_generate,
    .request_headers = dk_request_headers,
    .auth_rejected = dk_auth_rejected,
    .blob_url = dk_blob_url,
    .confirm = dk_confirm,
};

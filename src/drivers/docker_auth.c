/*
 * docker_auth: how the docker driver reaches its registry — the registry's URLs (the
 * variant's base or the proxy's url), the credential a request needs (the variant's
 * Authorization, else a Bearer token of the registry's token flow, learned from a 401's
 * challenge or a /v2/ probe; Basic credentials are libcurl's), and the one authorised
 * request every metadata request and manifest fetch goes through (authorized_call: a
 * refused credential is dropped and the request asked once more). See docker.c for the
 * driver's design.
 */
#include "upstreamfs/driver.h"
#include "upstreamfs/egress.h"
#include "upstreamfs/fetch.h"
#include "upstreamfs/log.h"
#include "upstreamfs/oci.h"
#include "upstreamfs/secret.h"
#include "upstreamfs/upstream.h"

#include "docker_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>

int dk_reg_base(struct upstream *u, struct dk_state *s, char **base)
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

int dk_repo_root(struct upstream *u, struct dk_state *s, char *out, size_t len, bool api)
{
    char *base = NULL;
    int rc = dk_reg_base(u, s, &base);
    if (rc < 0)
        return rc;
    /*
     * A registry URL with a path names a repository prefix, as another upstreamfs's shim
     * serves a proxy at /v2/<key>/<repository>/... (docs/SCALE-OUT.md): the API's own root
     * stays /v2/ at the origin, repositories go below /v2/<path>/.
     */
    rc = upstream_base_root(base, api, out, len);
    free(base);
    return rc;
}

int dk_reg_url(struct upstream *u, char **out, const char *fmt, ...)
{
    char buf[DK_URL_MAX], tail[DK_URL_MAX];
    *out = NULL;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(tail, sizeof(tail), fmt, ap);
    va_end(ap);
    if (m < 0 || (size_t)m >= sizeof(tail))
        return -ENAMETOOLONG;
    /* "" is the API's root (the /v2/ probe); anything else is below the repositories' root */
    int rc = dk_repo_root(u, dk_state(u), buf, sizeof(buf), !tail[0]);
    if (rc < 0)
        return rc;
    size_t n = strlen(buf);
    if (n + (size_t)m >= sizeof(buf))
        return -ENAMETOOLONG;
    memcpy(buf + n, tail, (size_t)m + 1);
    *out = strdup(buf);
    return *out ? 0 : -ENOMEM;
}

void dk_scope(const char *repo, char *buf, size_t n)
{
    snprintf(buf, n, "repository:%s:pull", repo);
}

/* ---- auth -------------------------------------------------------------------------------- */

void dk_cred_clear(struct dk_cred *c)
{
    secret_free(c->token);
    secret_free(c->authz);
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
    secret_free(h);
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

int dk_auth_add(struct upstream *u, struct dk_state *s, const char *scope, struct curl_slist **hdrs,
                struct dk_cred *used, bool probe)
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
    secret_free(tok);
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
bool dk_refused(struct upstream *u, struct dk_state *s, long status, const char *www,
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
 * The status a document request's outcome stands for, for dk_refused():
 * -EACCES is a 401 when a challenge came with it and a 403 otherwise; -EIO
 * a 400 (the only status dk_refused() cares about among those
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
        if (dk_reg_url(u, &url, "%s", "") == 0 &&
            upstream_request(u, url, false, 64 << 10, &r) == 0) {
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
 * One request of the driver to the registry (dk_reg_request, dk_manifest_fetch): a plain
 * request (resp) or a document through the shared document cache (doc_req, doc).
 */
struct dk_call {
    const char *url;
    bool manifest; /* send the manifests' Accept */
    bool head;
    size_t max;
    struct fetch_response *resp;
    const struct upstream_doc_req *doc_req; /* headers are added here */
    struct upstream_doc *doc;
};

/* One attempt with headers h; *status and *www: what dk_refused() looks at. */
static int call_once(struct upstream *u, const struct dk_call *c, const struct curl_slist *h,
                     long *status, const char **www)
{
    int rc;
    if (c->doc) {
        struct upstream_doc_req req = *c->doc_req;
        req.headers = h;
        rc = upstream_doc_fetch(u, &req, c->doc);
        *status = doc_status(rc, c->doc);
        *www = c->doc->www_authenticate;
        return rc;
    }
    struct fetch_request req = {.url = c->url,
                                .head = c->head,
                                .headers = h,
                                .timeout_ms = FETCH_META_TIMEOUT_MS,
                                .max_body = c->max};
    rc = upstream_perform(u, &req, c->resp);
    *status = rc == 0 ? c->resp->status : 0;
    *www = c->resp->www_authenticate;
    return rc;
}

/*
 * The driver's one auth-retry loop: the request with the credential its scope needs; when
 * the answer refuses that credential (dk_refused(): a 401 with a new challenge, a refused token
 * or variant credential), it is dropped and the request is asked once more.
 */
static int authorized_call(struct upstream *u, struct dk_state *s, const char *scope,
                           const struct dk_call *c)
{
    for (int attempt = 0;; attempt++) {
        struct curl_slist *h = NULL;
        struct dk_cred used = {0};
        long status = 0;
        const char *www = NULL;
        int rc = c->manifest ? fetch_header_add(&h, OCI_ACCEPT_HEADER) : 0;
        if (rc == 0)
            rc = dk_auth_add(u, s, scope, &h, &used, false);
        if (rc == 0)
            rc = call_once(u, c, h, &status, &www);
        curl_slist_free_all(h);
        bool again = attempt == 0 && dk_refused(u, s, status, www, scope, &used);
        dk_cred_clear(&used);
        if (!again)
            return rc;
        if (c->doc)
            upstream_doc_clear(c->doc);
        else
            fetch_response_clear(c->resp);
    }
}

int dk_reg_request(struct upstream *u, const char *scope, const char *url, bool head, bool manifest,
                   size_t max, struct fetch_response *r)
{
    struct dk_state *s = dk_state(u);
    memset(r, 0, sizeof(*r));
    if (!s)
        return -ENOMEM;
    struct dk_call c = {.url = url, .manifest = manifest, .head = head, .max = max, .resp = r};
    int rc = authorized_call(u, s, scope, &c);
    if (rc == 0 && r->status >= 200 && r->status < 300) {
        upstream_state_lock(u);
        if (s->auth == DK_AUTH_UNKNOWN)
            s->auth = DK_AUTH_NONE;
        upstream_state_unlock(u);
    }
    return rc;
}

int dk_manifest_fetch(struct upstream *u, struct dk_state *s, const char *scope,
                      const struct upstream_doc_req *req, struct upstream_doc *d)
{
    memset(d, 0, sizeof(*d));
    struct dk_call c = {.url = req->url, .manifest = true, .doc_req = req, .doc = d};
    return authorized_call(u, s, scope, &c);
}

void dk_access_clear(struct dk_access *a)
{
    secret_free(a->authorization);
    free(a->base);
    a->authorization = a->base = NULL;
}

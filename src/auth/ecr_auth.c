/*
 * ecr_auth: ECR registry tokens, fetched with SigV4 and cached (see
 * ecr_auth.h for the contract). The API's answers are parsed in ecr_parse.c.
 *
 * The cache keeps one token with the time it was installed (issued_ms),
 * its expiry and the refresh time derived from both. Invariants, all under
 * mu:
 *  - at most one refresh is in flight (the single flight of
 *    src/util/single_flight.c, joined under mu), and it runs without mu, so
 *    callers with a valid token never wait on the network;
 *  - a token is replaced only by a newer one; a failed refresh leaves the
 *    old one in place, and while it is valid retry_after_ms holds further
 *    attempts back for ECR_AUTH_RETRY_S;
 *  - a caller without a valid token waits for the refresh in flight and
 *    takes its outcome (the leader publishes last_rc under mu) instead of
 *    starting another one of its own.
 * Token and header strings are wiped before they are freed. The signing
 * time is always the real clock: the injectable clock only decides expiry.
 */
#include "ecr_auth_i.h"
#include "upstreamfs/ecr_auth.h"
#include "upstreamfs/aws_credentials.h"
#include "upstreamfs/defaults.h"
#include "upstreamfs/fetch.h"
#include "upstreamfs/log.h"
#include "upstreamfs/sigv4.h"
#include "upstreamfs/single_flight.h"
#include "upstreamfs/secret.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define JSON_CONTENT_TYPE "application/x-amz-json-1.1"
/* Room to compose a message from pieces of ECR_AUTH_ERROR_MAX; what is kept is cut to that. */
#define ERR_TEXT_MAX (2 * ECR_AUTH_ERROR_MAX)

struct ecr_auth {
    char key[CONFIG_KEY_MAX + 1];
    enum proxy_auth auth;
    bool is_public;
    char *region; /* signing region */
    char *account;
    char *proxy_url; /* the proxy's registry URL, ends with '/' */
    char *endpoint;  /* API endpoint that requests are POSTed to */
    char *access_key;
    char *secret;
    char *ca_file;
    char *http_proxy;
    struct fetch_endpoint ep;
    int64_t (*now_ms)(void *arg);
    void *clock_arg;

    pthread_mutex_t mu;
    struct sf_group *refresh; /* the refresh in flight (key "token"); joined under mu */
    int last_rc;
    char *header;   /* "Basic <token>" or "Bearer <token>" */
    char *base_url; /* ends with '/' */
    int64_t issued_ms, expires_ms, refresh_ms, retry_after_ms;
    int64_t denied_until_ms; /* after -EACCES without a valid token: answer it, ask nobody */
    char last_error[ECR_AUTH_ERROR_MAX];

    pthread_mutex_t alias_mu; /* one DescribeRegistries lookup at a time */
    char *alias;
};

void ecr_auth_string_free(char *s)
{
    secret_free(s);
}

static int64_t real_now_ms(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ecr_auth_refresh_at(int64_t issued_ms, int64_t expires_ms)
{
    int64_t lifetime = expires_ms - issued_ms;
    if (lifetime <= 0)
        return expires_ms;
    int64_t margin = lifetime / 10;
    if (margin > ECR_AUTH_MARGIN_MAX_MS)
        margin = ECR_AUTH_MARGIN_MAX_MS;
    return expires_ms - margin;
}

/* The API endpoint for cfg (see the header for the order), with a path. */
static char *choose_endpoint(const struct proxy *cfg, const char *region)
{
    char buf[ECR_ENDPOINT_MAX + 2];
    const char *e = cfg->aws_endpoint && *cfg->aws_endpoint ? cfg->aws_endpoint : NULL;
    if (!e)
        e = getenv(cfg->ecr.is_public ? "AWS_ENDPOINT_URL_ECR_PUBLIC" : "AWS_ENDPOINT_URL_ECR");
    if (!e || !*e)
        e = getenv("AWS_ENDPOINT_URL");
    if (!e || !*e) {
        if (cfg->ecr.is_public)
            e = upstream_defaults.ecr_public_api;
        else if (defaults_expand(upstream_defaults.ecr_api, region, NULL, buf, sizeof(buf)) == 0)
            e = buf;
        else
            return NULL;
    }
    if (!ecr__http_url_ok(e))
        return NULL;
    /* "http://host:port" has no path; the request line needs "/". */
    const char *auth = strstr(e, "://") + 3;
    bool has_path = strcspn(auth, "/?#") < strlen(auth);
    char *out = NULL;
    if (asprintf(&out, "%s%s", e, has_path ? "" : "/") < 0)
        return NULL;
    return out;
}

struct ecr_auth *ecr_auth_new(const struct proxy *cfg, const char *secret)
{
    struct ecr_auth *a = NULL;
    int err = EINVAL;
    if (!cfg || cfg->type != PROXY_ECR || (!cfg->ecr.is_public && !cfg->ecr.region))
        goto fail;
    if (cfg->auth == AUTH_ACCESS_KEY && (!cfg->access_key || !*cfg->access_key || !secret))
        goto fail;
    err = ENOMEM;
    if (!(a = calloc(1, sizeof(*a))))
        goto fail;
    pthread_mutex_init(&a->mu, NULL);
    pthread_mutex_init(&a->alias_mu, NULL);
    if (!(a->refresh = sf_group_new()))
        goto fail;
    snprintf(a->key, sizeof(a->key), "%s", cfg->key);
    a->auth = cfg->auth;
    a->is_public = cfg->ecr.is_public;
    a->now_ms = real_now_ms;
    a->region = strdup(a->is_public ? ECR_PUBLIC_REGION : cfg->ecr.region);
    if (!a->region)
        goto fail;
    if (cfg->url)
        a->proxy_url = strdup(cfg->url);
    else if (cfg->ecr.host && asprintf(&a->proxy_url, "https://%s/", cfg->ecr.host) < 0)
        a->proxy_url = NULL;
    if (!a->proxy_url)
        goto fail;
    if ((cfg->ecr.account && !(a->account = strdup(cfg->ecr.account))) ||
        (cfg->ecr.alias && !(a->alias = strdup(cfg->ecr.alias))))
        goto fail;
    if (a->auth == AUTH_ACCESS_KEY &&
        (!(a->access_key = strdup(cfg->access_key)) || !(a->secret = strdup(secret))))
        goto fail;
    if (a->auth != AUTH_ANONYMOUS || a->is_public) {
        if (!(a->endpoint = choose_endpoint(cfg, a->region))) {
            err = EINVAL;
            goto fail;
        }
    }
    /* The SDKs' AWS_CA_BUNDLE applies to the API when the proxy names no CA itself. */
    const char *ca = cfg->ca_file ? cfg->ca_file : getenv("AWS_CA_BUNDLE");
    if ((ca && *ca && !(a->ca_file = strdup(ca))) ||
        (cfg->http_proxy && !(a->http_proxy = strdup(cfg->http_proxy))))
        goto fail;
    a->ep.ca_file = a->ca_file;
    a->ep.http_proxy = a->http_proxy;
    return a;
fail:
    ecr_auth_free(a);
    errno = err;
    return NULL;
}

void ecr_auth_free(struct ecr_auth *a)
{
    if (!a)
        return;
    pthread_mutex_destroy(&a->mu);
    sf_group_free(a->refresh);
    pthread_mutex_destroy(&a->alias_mu);
    free(a->region);
    free(a->account);
    free(a->proxy_url);
    free(a->endpoint);
    free(a->access_key);
    secret_free(a->secret);
    free(a->ca_file);
    free(a->http_proxy);
    secret_free(a->header);
    free(a->base_url);
    free(a->alias);
    secret_wipe(a, sizeof(*a));
    free(a);
}

void ecr_auth_set_clock(struct ecr_auth *a, int64_t (*now_ms)(void *arg), void *arg)
{
    pthread_mutex_lock(&a->mu);
    a->now_ms = now_ms ? now_ms : real_now_ms;
    a->clock_arg = arg;
    pthread_mutex_unlock(&a->mu);
}

const char *ecr_auth_endpoint(const struct ecr_auth *a)
{
    return a->endpoint;
}

void ecr_auth_last_error(struct ecr_auth *a, char *buf, size_t n)
{
    pthread_mutex_lock(&a->mu);
    snprintf(buf, n, "%s", a->last_error);
    pthread_mutex_unlock(&a->mu);
}

static void set_error(struct ecr_auth *a, const char *text)
{
    pthread_mutex_lock(&a->mu);
    ecr__sanitise(a->last_error, sizeof(a->last_error), text);
    pthread_mutex_unlock(&a->mu);
}

/* The key pair for the next request; on failure the reason is in err. */
static int credentials(struct ecr_auth *a, struct aws_credentials *c, char *err, size_t n)
{
    char why[ECR_AUTH_ERROR_MAX];
    int rc;
    if (a->auth == AUTH_ACCESS_KEY) {
        rc = aws_credentials_set(c, a->access_key, a->secret, NULL, 0, AWS_CREDS_STATIC);
        if (rc == -EINVAL)
            snprintf(err, n, "the access key or secret has characters no AWS key has");
        return rc == -EINVAL ? -EACCES : rc;
    }
    rc = aws_credentials_resolve(c, why, sizeof(why));
    if (rc == -ENOENT || rc == -EINVAL) {
        snprintf(err, n, "no usable AWS credentials (%s)", why);
        return -EACCES;
    }
    if (rc < 0)
        snprintf(err, n, "AWS credential chain failed (errno %d)", -rc);
    return rc;
}

/* Wipes every header line (one is Authorization) and frees the list. */
static void free_signed_headers(struct curl_slist *l)
{
    for (struct curl_slist *p = l; p; p = p->next)
        secret_wipe(p->data, strlen(p->data));
    curl_slist_free_all(l);
}

/* One signed AWS JSON 1.1 call; resp holds any HTTP answer. */
static int api_call(struct ecr_auth *a, const struct aws_credentials *c, const char *target,
                    const char *body, size_t cap, struct fetch_response *resp)
{
    struct sigv4_header hs[] = {{"Content-Type", JSON_CONTENT_TYPE}, {"X-Amz-Target", target}};
    struct sigv4_request sr = {.method = "POST",
                               .url = a->endpoint,
                               .headers = hs,
                               .n_headers = 2,
                               .payload = body,
                               .payload_len = strlen(body),
                               .region = a->region,
                               .service = a->is_public ? "ecr-public" : "ecr",
                               .when = time(NULL),
                               .access_key_id = c->access_key_id,
                               .secret_access_key = c->secret_access_key,
                               .session_token = c->session_token};
    struct curl_slist *hdrs = NULL;
    int rc = sigv4_sign_headers(&sr, &hdrs);
    if (rc < 0) {
        memset(resp, 0, sizeof(*resp));
        goto out;
    }
    struct sigv4_http_request hr = {.method = "POST",
                                    .url = a->endpoint,
                                    .ep = &a->ep,
                                    .headers = hdrs,
                                    .body = body,
                                    .body_len = strlen(body),
                                    .timeout_ms = FETCH_META_TIMEOUT_MS,
                                    .max_body = cap};
    rc = sigv4_http_perform(&hr, resp);
out:
    free_signed_headers(hdrs);
    return rc;
}

static void wipe_response(struct fetch_response *r)
{
    if (r->body)
        secret_wipe(r->body, r->body_len);
    fetch_response_clear(r);
}

/* Asks AWS for a token (no lock held). On failure, err says why. */
static int request_token(struct ecr_auth *a, struct ecr_token *tok, char *err, size_t n)
{
    struct aws_credentials c = {0};
    struct fetch_response resp = {0};
    const char *op = a->is_public ? "ecr-public GetAuthorizationToken" : "GetAuthorizationToken";
    char ebuf[128];
    int rc = credentials(a, &c, err, n);
    if (rc < 0)
        goto out;
    rc = api_call(a, &c, a->is_public ? ECR_PUBLIC_TARGET : ECR_PRIVATE_TARGET, "{}",
                  ECR_AUTH_TOKEN_MAX, &resp);
    if (rc < 0) {
        snprintf(err, n, "%s at %s: %s", op, a->endpoint, strerror_r(-rc, ebuf, sizeof(ebuf)));
        goto out;
    }
    if (resp.status != 200) {
        char msg[ECR_AUTH_ERROR_MAX];
        rc = ecr_auth_error_parse(resp.status, resp.body, resp.body_len, msg, sizeof(msg));
        snprintf(err, n, "%s refused%s: %s", op,
                 rc == -EACCES ? " (check the access key and secret)" : "", msg);
        goto out;
    }
    rc = ecr_token_parse(resp.body, resp.body_len, a->is_public, tok);
    if (rc < 0)
        snprintf(err, n, "%s answer does not parse", op);
out:
    wipe_response(&resp);
    aws_credentials_clear(&c);
    return rc;
}

static int copy_out(struct ecr_auth *a, char **header, char **base)
{
    if (header && !(*header = strdup(a->header)))
        return -ENOMEM;
    if (base && !(*base = strdup(a->base_url))) {
        if (header) {
            secret_free(*header);
            *header = NULL;
        }
        return -ENOMEM;
    }
    return 0;
}

/* Installs a fresh token under mu. */
static int install(struct ecr_auth *a, struct ecr_token *tok, int64_t now)
{
    char *header = NULL, *base = NULL;
    const char *where = tok->proxy_endpoint ? tok->proxy_endpoint : a->proxy_url;
    size_t wl = strlen(where);
    if (asprintf(&header, "%s %s", a->is_public ? "Bearer" : "Basic", tok->authorization_token) < 0)
        return -ENOMEM;
    if (asprintf(&base, "%s%s", where, wl && where[wl - 1] == '/' ? "" : "/") < 0) {
        secret_free(header);
        return -ENOMEM;
    }
    secret_free(a->header);
    free(a->base_url);
    a->header = header;
    a->base_url = base;
    a->issued_ms = now;
    a->expires_ms = tok->expires_at_ms;
    a->refresh_ms = ecr_auth_refresh_at(now, tok->expires_at_ms);
    a->retry_after_ms = 0;
    if (tok->expires_at_ms <= now)
        log_warn("ecr %s: the registry token is already expired by this host's clock (skew?)",
                 a->key);
    return 0;
}

/*
 * With mu held, after a refresh (rc its outcome, tok the token, err its
 * reason): installs the token, or keeps a still-valid one for a while
 * (retry_after_ms), or holds refused credentials back (denied_until_ms);
 * sets last_rc and copies the header and base out. Returns the caller's rc.
 */
static int refresh_done(struct ecr_auth *a, int rc, struct ecr_token *tok, const char *err,
                        char **authorization_header, char **registry_base_url)
{
    int64_t now = a->now_ms(a->clock_arg);
    if (rc == 0)
        rc = install(a, tok, now);
    a->last_rc = rc;
    if (rc == 0) {
        a->last_error[0] = '\0';
        log_debug("ecr %s: new registry token, valid for %lld s", a->key,
                  (long long)((a->expires_ms - now) / 1000));
        rc = copy_out(a, authorization_header, registry_base_url);
    } else {
        ecr__sanitise(a->last_error, sizeof(a->last_error), err);
        if (a->header && now < a->expires_ms) {
            log_warn("ecr %s: token refresh failed, the current token stays in use for %lld s: "
                     "%s",
                     a->key, (long long)((a->expires_ms - now) / 1000), a->last_error);
            a->retry_after_ms = now + ECR_AUTH_RETRY_S * 1000;
            rc = copy_out(a, authorization_header, registry_base_url);
        } else {
            log_error("ecr %s: %s", a->key, a->last_error);
            if (rc == -EACCES)
                a->denied_until_ms = now + ECR_AUTH_RETRY_S * 1000;
        }
    }
    return rc;
}

int ecr_auth_get(struct ecr_auth *a, char **authorization_header, char **registry_base_url)
{
    struct ecr_token tok = {0};
    char err[ERR_TEXT_MAX] = "";
    int rc;
    if (authorization_header)
        *authorization_header = NULL;
    if (registry_base_url)
        *registry_base_url = NULL;
    if (a->auth == AUTH_ANONYMOUS) {
        if (registry_base_url && !(*registry_base_url = strdup(a->proxy_url)))
            return -ENOMEM;
        return 0;
    }

    struct sf_call *call = NULL;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        int64_t now = a->now_ms(a->clock_arg);
        bool valid = a->header && now < a->expires_ms;
        if (valid && (now < a->refresh_ms || now < a->retry_after_ms)) {
            rc = copy_out(a, authorization_header, registry_base_url);
            goto unlock;
        }
        /* Refused credentials stay refused for a while: do not sign a request per read. */
        if (!valid && a->last_rc == -EACCES && now < a->denied_until_ms) {
            rc = -EACCES;
            goto unlock;
        }
        int role = sf_join(a->refresh, "token", NULL, NULL, NULL, &call);
        if (role == SF_LEADER)
            break;
        if (role < 0 || valid) {
            /* A refresh is in flight: the current token meanwhile, nobody waits. */
            sf_release(call);
            call = NULL;
            rc = role < 0 ? role : copy_out(a, authorization_header, registry_base_url);
            goto unlock;
        }
        /* No valid token: wait for the refresh in flight and take its outcome. */
        int outcome = 0;
        pthread_mutex_unlock(&a->mu);
        sf_wait(call, INT64_MAX, &outcome, NULL);
        sf_release(call);
        call = NULL;
        pthread_mutex_lock(&a->mu);
        now = a->now_ms(a->clock_arg);
        if (outcome == 0 && a->header) {
            rc = copy_out(a, authorization_header, registry_base_url);
            goto unlock;
        }
        if (!(a->header && now < a->expires_ms)) {
            rc = outcome;
            goto unlock;
        }
    }
    pthread_mutex_unlock(&a->mu);

    rc = request_token(a, &tok, err, sizeof(err));

    pthread_mutex_lock(&a->mu);
    rc = refresh_done(a, rc, &tok, err, authorization_header, registry_base_url);
    /* Under mu: a waiter that wakes finds the token (or the failure) installed. */
    sf_finish(a->refresh, call, a->last_rc, 0);
    sf_release(call);
unlock:
    pthread_mutex_unlock(&a->mu);
    ecr_token_clear(&tok);
    return rc;
}

void ecr_auth_invalidate(struct ecr_auth *a, const char *authorization_header)
{
    if (!authorization_header)
        return;
    pthread_mutex_lock(&a->mu);
    if (a->header && strcmp(a->header, authorization_header) == 0) {
        secret_free(a->header);
        a->header = NULL;
        a->expires_ms = a->refresh_ms = a->retry_after_ms = 0;
        log_info("ecr %s: the registry refused the token; a new one is asked for", a->key);
    }
    pthread_mutex_unlock(&a->mu);
}

/* One DescribeRegistries page after next (NULL for the first). */
static int describe_page(struct ecr_auth *a, const struct aws_credentials *c, const char *next,
                         char **alias, char **next_out, char *err, size_t n)
{
    struct fetch_response resp = {0};
    char ebuf[128], *body = NULL;
    int rc;
    json_t *req = next ? json_pack("{s:s}", "nextToken", next) : json_object();
    if (!req || !(body = json_dumps(req, JSON_COMPACT))) {
        json_decref(req);
        return -ENOMEM;
    }
    json_decref(req);
    rc = api_call(a, c, ECR_DESCRIBE_TARGET, body, ECR_AUTH_DESCRIBE_MAX, &resp);
    if (rc < 0) {
        snprintf(err, n, "DescribeRegistries at %s: %s", a->endpoint,
                 strerror_r(-rc, ebuf, sizeof(ebuf)));
    } else if (resp.status != 200) {
        char msg[ECR_AUTH_ERROR_MAX];
        rc = ecr_auth_error_parse(resp.status, resp.body, resp.body_len, msg, sizeof(msg));
        snprintf(err, n, "DescribeRegistries refused: %s", msg);
    } else {
        rc = ecr_auth_describe_parse(resp.body, resp.body_len, a->account, alias, next_out);
        if (rc == -EIO)
            snprintf(err, n, "DescribeRegistries answer does not parse");
    }
    free(body);
    fetch_response_clear(&resp);
    return rc;
}

int ecr_auth_public_alias(struct ecr_auth *a, char **alias)
{
    struct aws_credentials c = {0};
    char err[ERR_TEXT_MAX] = "", *next = NULL;
    int rc = 0;
    *alias = NULL;
    if (!a->is_public)
        return -EINVAL;
    pthread_mutex_lock(&a->alias_mu);
    if (a->alias) {
        rc = (*alias = strdup(a->alias)) ? 0 : -ENOMEM;
        goto out;
    }
    if (a->auth == AUTH_ANONYMOUS || !a->account) {
        snprintf(err, sizeof(err),
                 "the public registry alias of account %s cannot be looked up without "
                 "credentials",
                 a->account ? a->account : "?");
        rc = a->auth == AUTH_ANONYMOUS ? -EACCES : -EINVAL;
        goto out;
    }
    if ((rc = credentials(a, &c, err, sizeof(err))) < 0)
        goto out;
    for (int page = 0; page < ECR_AUTH_DESCRIBE_PAGES; page++) {
        char *following = NULL;
        rc = describe_page(a, &c, next, alias, &following, err, sizeof(err));
        free(next);
        next = following;
        if (rc != -ENOENT || !next)
            break;
    }
    if (rc == -ENOENT)
        snprintf(err, sizeof(err),
                 "DescribeRegistries: these credentials see no public registry alias for "
                 "account %s",
                 a->account);
    if (rc == 0 && !(a->alias = strdup(*alias)))
        rc = -ENOMEM;
    if (rc == 0)
        log_info("ecr %s: public registry alias of account %s is %s", a->key, a->account, *alias);
out:
    if (rc < 0) {
        free(*alias);
        *alias = NULL;
        if (err[0]) {
            set_error(a, err);
            log_error("ecr %s: %s", a->key, err);
        }
    }
    pthread_mutex_unlock(&a->alias_mu);
    free(next);
    aws_credentials_clear(&c);
    return rc;
}

/*
 * fetch: libcurl easy transfers sharing one connection cache.
 *
 * A request gets a fresh easy handle bound to the global share; the share
 * keeps connections alive between requests, so reuse does not depend on
 * which thread asks. Deadlines are libcurl's own (connect timeout, low-speed
 * limit, total timeout), so no thread ever waits on a socket without one.
 */
#include "upstreamfs/fetch.h"
#include "upstreamfs/failure.h"
#include "upstreamfs/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <strings.h>

static CURLSH *share;
static pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *u)
{
    (void)h, (void)access, (void)u;
    pthread_mutex_lock(&share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *u)
{
    (void)h, (void)u;
    pthread_mutex_unlock(&share_locks[data]);
}

int fetch_global_init(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -EIO;
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&share_locks[i], NULL);
    share = curl_share_init();
    if (!share)
        return -ENOMEM;
    curl_share_setopt(share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    return 0;
}

void fetch_global_cleanup(void)
{
    if (share)
        curl_share_cleanup(share);
    share = NULL;
    curl_global_cleanup();
}

struct xfer {
    const struct fetch_request *req;
    struct fetch_response *resp;
    CURL *h;
    bool headers_done;
    int cb_err;
    size_t cap;
    size_t body_cap_alloc;
};

static char *header_dup(CURL *h, const char *name)
{
    struct curl_header *hd = NULL;
    if (curl_easy_header(h, name, 0, CURLH_HEADER, -1, &hd) != CURLHE_OK || !hd)
        return NULL;
    return strdup(hd->value);
}

#define FETCH_HEADER_LIST_MAX 16384

/*
 * Every instance of a list-valued header joined with ", " (RFC 9110 5.3), so
 * that a challenge or link sent on a second line is not lost; capped.
 */
static char *header_join(CURL *h, const char *name)
{
    struct curl_header *hd = NULL;
    size_t amount = 0, len = 0;
    char *out = NULL;
    if (curl_easy_header(h, name, 0, CURLH_HEADER, -1, &hd) != CURLHE_OK || !hd)
        return NULL;
    amount = hd->amount;
    for (size_t i = 0; i < amount; i++) {
        if (i > 0 && curl_easy_header(h, name, i, CURLH_HEADER, -1, &hd) != CURLHE_OK)
            break;
        size_t vl = strlen(hd->value);
        if (len + vl + 3 > FETCH_HEADER_LIST_MAX)
            break;
        char *n = realloc(out, len + vl + 3);
        if (!n)
            break;
        out = n;
        len += (size_t)sprintf(out + len, "%s%s", len ? ", " : "", hd->value);
    }
    return out;
}

/* The leading number of a header ("76;w=21600" is 76), or -1 when absent or not a number. */
static long header_number(CURL *h, const char *name)
{
    char *v = header_dup(h, name), *end = NULL;
    long n = v ? strtol(v, &end, 10) : -1;
    if (!v || end == v || n < 0)
        n = -1;
    free(v);
    return n;
}

/* Collects the final response's status and headers (called once, before the body). */
static int collect_headers(struct xfer *x)
{
    struct fetch_response *r = x->resp;
    char *s;
    curl_off_t cl = -1;
    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(x->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    r->content_length = cl;
    r->content_type = header_dup(x->h, "Content-Type");
    r->etag = header_dup(x->h, "ETag");
    r->last_modified = header_dup(x->h, "Last-Modified");
    r->location = header_dup(x->h, "Location");
    r->www_authenticate = header_join(x->h, "WWW-Authenticate");
    r->docker_digest = header_dup(x->h, "Docker-Content-Digest");
    r->link = header_join(x->h, "Link");
    if (curl_easy_getinfo(x->h, CURLINFO_EFFECTIVE_URL, &s) == CURLE_OK && s)
        r->effective_url = strdup(s);
    r->ratelimit_remaining = header_number(x->h, "ratelimit-remaining");
    r->ratelimit_limit = header_number(x->h, "ratelimit-limit");
    char *ra = header_dup(x->h, "Retry-After");
    if (ra) {
        long v = strtol(ra, NULL, 10);
        r->retry_after = v > 0 && v < 3600 ? v : 0;
        free(ra);
    }
    x->headers_done = true;
    if (x->req->on_headers)
        return x->req->on_headers(x->req->arg, r);
    return 0;
}

static size_t on_header_line(char *buf, size_t size, size_t n, void *arg)
{
    struct xfer *x = arg;
    size_t len = size * n;
    long code = 0;
    /* The blank line ends a header block; only a final (non-1xx, non-followed-3xx) one counts. */
    if (len <= 2 && (buf[0] == '\r' || buf[0] == '\n') && !x->headers_done) {
        curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
        struct curl_header *loc = NULL;
        bool redirect = code >= 300 && code < 400 && code != 304 && !x->req->no_redirects &&
                        curl_easy_header(x->h, "Location", 0, CURLH_HEADER, -1, &loc) == CURLHE_OK;
        if (code >= 200 && !redirect) {
            int rc = collect_headers(x);
            if (rc < 0) {
                x->cb_err = rc;
                return 0;
            }
        }
    }
    return len;
}

static size_t on_body(char *buf, size_t size, size_t n, void *arg)
{
    struct xfer *x = arg;
    size_t len = size * n;
    int rc;
    if (!x->headers_done && (rc = collect_headers(x)) < 0) {
        x->cb_err = rc;
        return 0;
    }
    if (x->req->on_data) {
        rc = x->req->on_data(x->req->arg, buf, len);
        if (rc < 0) {
            x->cb_err = rc;
            return 0;
        }
        return len;
    }
    struct fetch_response *r = x->resp;
    if (r->body_len + len > x->cap) {
        x->cb_err = -EFBIG;
        return 0;
    }
    if (r->body_len + len + 1 > x->body_cap_alloc) {
        size_t want = x->body_cap_alloc ? x->body_cap_alloc * 2 : 16384;
        while (want < r->body_len + len + 1)
            want *= 2;
        char *nb = realloc(r->body, want);
        if (!nb) {
            x->cb_err = -ENOMEM;
            return 0;
        }
        r->body = nb;
        x->body_cap_alloc = want;
    }
    memcpy(r->body + r->body_len, buf, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return len;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    struct xfer *x = arg;
    if (x->req->should_abort && x->req->should_abort(x->req->arg)) {
        x->cb_err = -ECANCELED;
        return 1;
    }
    return 0;
}

int fetch_perform(const struct fetch_request *req, struct fetch_response *resp)
{
    struct xfer x = {.req = req, .resp = resp};
    int rc = 0;
    memset(resp, 0, sizeof(*resp));
    resp->content_length = -1;
    resp->ratelimit_remaining = resp->ratelimit_limit = -1;
    x.cap = req->max_body ? req->max_body : (1u << 20);
    CURL *h = curl_easy_init();
    if (!h)
        return -ENOMEM;
    x.h = h;
    const struct fetch_endpoint *ep = req->ep;
    curl_easy_setopt(h, CURLOPT_URL, req->url);
    curl_easy_setopt(h, CURLOPT_SHARE, share);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "upstreamfs/" UPSTREAMFS_VERSION);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, req->no_redirects ? 0L : 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    long connect_ms = req->connect_timeout_ms > 0              ? req->connect_timeout_ms
                      : req->ep && req->ep->connect_timeout_ms > 0 ? req->ep->connect_timeout_ms
                                                                   : (long)FETCH_CONNECT_TIMEOUT_S * 1000;
    long total_ms = req->timeout_ms;
    if (total_ms == FETCH_META_TIMEOUT_MS && req->ep && req->ep->metadata_timeout_ms > 0)
        total_ms = req->ep->metadata_timeout_ms; /* the proxy's --metadata-timeout */
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, (long)FETCH_LOW_SPEED_BPS);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)FETCH_LOW_SPEED_TIME_S);
    if (total_ms > 0)
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, total_ms);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header_line);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
    if (req->on_data) /* streamed bodies: fewer, larger pieces (each is written and hashed) */
        curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 1024L * 1024L);
    if (req->should_abort) {
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    }
    if (req->head)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    struct curl_slist *hdrs = NULL;
    for (const struct curl_slist *l = req->headers; l; l = l->next)
        hdrs = curl_slist_append(hdrs, l->data);
    if (req->method) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body_len ? (const char *)req->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        if (strcmp(req->method, "POST") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
        /* No "Expect: 100-continue" round trip for the small bodies this sends. */
        hdrs = curl_slist_append(hdrs, "Expect:");
    }
    if (hdrs)
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    if (ep) {
        if (ep->ca_file)
            curl_easy_setopt(h, CURLOPT_CAINFO, ep->ca_file);
        if (ep->client_cert)
            curl_easy_setopt(h, CURLOPT_SSLCERT, ep->client_cert);
        if (ep->client_key)
            curl_easy_setopt(h, CURLOPT_SSLKEY, ep->client_key);
        if (ep->http_proxy)
            curl_easy_setopt(h, CURLOPT_PROXY, ep->http_proxy);
        if (ep->username && ep->password) {
            curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
            curl_easy_setopt(h, CURLOPT_USERNAME, ep->username);
            curl_easy_setopt(h, CURLOPT_PASSWORD, ep->password);
        }
    }
    CURLcode c = curl_easy_perform(h);
    if (c == CURLE_OK && !x.headers_done)
        rc = collect_headers(&x);
    if (c != CURLE_OK) {
        long os_errno = 0;
        curl_off_t lookup = 0;
        curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
        curl_easy_getinfo(h, CURLINFO_NAMELOOKUP_TIME_T, &lookup);
        int err = -EIO;
        resp->cause = failure_of_curl(c, os_errno, lookup > 0, &err);
        if (!resp->status) /* the last status that came (a redirect of a loop), or 0 */
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
        if (x.cb_err) {
            rc = x.cb_err;
            resp->cause = rc == -EFBIG ? FAILURE_TOO_LARGE : FAILURE_NONE;
        } else {
            rc = err;
        }
    }
    if (rc == 0 && !req->on_data && !resp->body) {
        resp->body = calloc(1, 1);
        if (!resp->body)
            rc = -ENOMEM;
    }
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    if (rc < 0)
        log_debug("fetch %s: %s", req->url, c != CURLE_OK ? curl_easy_strerror(c) : "aborted");
    return rc;
}

void fetch_response_clear(struct fetch_response *r)
{
    free(r->content_type);
    free(r->etag);
    free(r->last_modified);
    free(r->location);
    free(r->www_authenticate);
    free(r->docker_digest);
    free(r->effective_url);
    free(r->link);
    free(r->body);
    memset(r, 0, sizeof(*r));
    r->content_length = -1;
    r->ratelimit_remaining = r->ratelimit_limit = -1;
}

int fetch_get(const char *url, const struct fetch_endpoint *ep, const struct curl_slist *headers,
              size_t max_body, struct fetch_response *resp)
{
    struct fetch_request req = {.url = url,
                                .ep = ep,
                                .headers = headers,
                                .timeout_ms = FETCH_META_TIMEOUT_MS,
                                .max_body = max_body};
    return fetch_perform(&req, resp);
}

char *fetch_url_resolve(const char *base, const char *ref)
{
    CURLU *u = curl_url();
    char *out = NULL;
    if (!u)
        return NULL;
    if (curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_URL, ref, 0) == CURLUE_OK) {
        char *s = NULL;
        if (curl_url_get(u, CURLUPART_URL, &s, 0) == CURLUE_OK) {
            /* The URL API decodes a percent-encoded host ("h%88"): a URL that would put a
             * control or 8-bit byte on the wire is no URL we follow. */
            bool clean = true;
            for (const unsigned char *c = (const unsigned char *)s; *c && clean; c++)
                clean = *c > 0x20 && *c < 0x7f;
            out = clean ? strdup(s) : NULL;
            curl_free(s);
        }
    }
    curl_url_cleanup(u);
    return out;
}

char *fetch_url_origin(const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *out = NULL;
    if (!u)
        return NULL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
        goto out;
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        goto out;
    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
    size_t n = strlen(scheme) + strlen(host) + (port ? strlen(port) : 0) + 8;
    out = malloc(n);
    if (out) {
        snprintf(out, n, "%s://%s:%s", scheme, host, port ? port : "");
        for (char *p = out; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
    }
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return out;
}

char *fetch_url_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    char *out = e ? strdup(e) : NULL;
    curl_free(e);
    return out;
}


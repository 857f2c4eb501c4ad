/*
 * fetch: libcurl easy transfers sharing one connection cache.
 *
 * A request gets a fresh easy handle bound to the global share; the share
 * keeps connections alive between requests, so reuse does not depend on
 * which thread asks. Deadlines are libcurl's own (connect timeout, low-speed
 * limit, total timeout), so no thread ever waits on a socket without one.
 */
#include "upstreamfs/clock.h"
#include "upstreamfs/fetch.h"
#include "upstreamfs/egress.h"
#include "upstreamfs/failure.h"
#include "upstreamfs/log.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
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

/* Internal sentinel: a redirect's body is being skipped (its Location is all that counts). */
#define FETCH_ESKIP (-10002)
#define FETCH_REDIRECT_BODY_MAX (64u << 10)
#define FETCH_MAX_HOPS 10

/* One hop of a request: one libcurl transfer. */
struct xfer {
    const struct fetch_request *req;
    struct fetch_response *resp;
    CURL *h;
    bool headers_done;
    int cb_err;
    size_t cap;
    size_t body_cap_alloc;
    int64_t stream_cap; /* streamed bytes allowed, -1: no cap */
    int64_t streamed;
    bool redirecting; /* the response is a 3xx this function follows */
    size_t skipped;
    bool configured;   /* the hop's origin is a configured one (or there is no policy) */
    bool check_socket; /* the address rule applies to each connection of this hop */
    const char *refused; /* the range a refused address fell in */
    char refused_ip[256];
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

/* A 206's Content-Range "bytes FIRST-LAST/TOTAL" into r (each -1 when absent or malformed). */
static void content_range(CURL *h, struct fetch_response *r)
{
    char *v = header_dup(h, "Content-Range");
    long long a = -1, b = -1, t = -1;
    int used = 0;
    r->range_first = r->range_last = r->range_total = -1;
    if (v && sscanf(v, "bytes %lld-%lld/%lld%n", &a, &b, &t, &used) == 3 && v[used] == '\0' &&
        a >= 0 && b >= a && t > b) {
        r->range_first = a;
        r->range_last = b;
        r->range_total = t;
    }
    free(v);
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
    content_range(x->h, r);
    r->location = header_dup(x->h, "Location");
    /* Only a configured origin may name a realm that would receive credentials. */
    r->www_authenticate = x->configured ? header_join(x->h, "WWW-Authenticate") : NULL;
    r->docker_digest = header_dup(x->h, "Docker-Content-Digest");
    r->repr_digest = header_join(x->h, "Repr-Digest");
    char *trailer = header_join(x->h, "Trailer");
    r->repr_digest_trailer = trailer && strcasestr(trailer, "repr-digest") != NULL;
    free(trailer);
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
    if (x->req->on_data) {
        int64_t limit = x->req->ep ? x->req->ep->max_size : 0;
        x->stream_cap = r->content_length >= 0 ? r->content_length : limit > 0 ? limit : -1;
    }
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
        x->redirecting = redirect;
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
    if (x->redirecting) { /* read a little of it so that the connection can be reused */
        x->skipped += len;
        if (x->skipped <= FETCH_REDIRECT_BODY_MAX)
            return len;
        x->cb_err = FETCH_ESKIP;
        return 0;
    }
    if (!x->headers_done && (rc = collect_headers(x)) < 0) {
        x->cb_err = rc;
        return 0;
    }
    if (x->req->on_data) {
        /* Longer than announced (or than max_size when nothing was): cut, nothing is kept. */
        if (x->stream_cap >= 0 && x->streamed + (int64_t)len > x->stream_cap) {
            log_warn("fetch %s: the body is longer than %s (%lld bytes); cut", x->req->url,
                     x->resp->content_length >= 0 ? "its Content-Length" : "the proxy's max_size",
                     (long long)x->stream_cap);
            x->cb_err = -EFBIG;
            return 0;
        }
        x->streamed += (int64_t)len;
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

/* ---- the address rule at connect time (src/fetch/egress.c) ------------------------------- */

static void note_refusal(struct xfer *x, const char *why, const char *ip)
{
    x->refused = why;
    snprintf(x->refused_ip, sizeof(x->refused_ip), "%s", ip);
}

/* Every new connection of a checked hop: the address it is about to connect to. */
static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct xfer *x = arg;
    (void)purpose;
    const char *why = egress_addr_refusal(&a->addr, a->addrlen);
    if (why) {
        char ip[INET6_ADDRSTRLEN] = "?";
        getnameinfo(&a->addr, a->addrlen, ip, sizeof(ip), NULL, 0, NI_NUMERICHOST);
        note_refusal(x, why, ip);
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* Before each request, also on a connection reused from the shared cache (no socket opened). */
static int before_request(void *arg, char *primary_ip, char *local_ip, int pport, int lport)
{
    struct xfer *x = arg;
    bool is_ip;
    (void)local_ip, (void)pport, (void)lport;
    const char *why = egress_text_refusal(primary_ip, &is_ip);
    if (!is_ip)
        why = "not an IP address";
    if (why) {
        note_refusal(x, why, primary_ip);
        return CURL_PREREQFUNC_ABORT;
    }
    return CURL_PREREQFUNC_OK;
}

/* Whether libcurl will send a request for url through an HTTP proxy (explicit or environment). */
static bool proxied(const struct fetch_endpoint *ep, const char *url)
{
    if (ep && ep->http_proxy && *ep->http_proxy)
        return true;
    bool https = strncasecmp(url, "https:", 6) == 0;
    const char *names[] = {https ? "https_proxy" : "http_proxy", https ? "HTTPS_PROXY" : NULL,
                           "all_proxy", "ALL_PROXY"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *v = names[i] ? getenv(names[i]) : NULL;
        if (v && *v)
            return true;
    }
    return false;
}

/*
 * Through a proxy the daemon connects only to the proxy (configured): the
 * host's own resolution is what can be checked. Every address must pass.
 */
static void check_resolved(struct xfer *x, const char *host)
{
    char h[256];
    bool is_ip;
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[')
        host++, n -= 2;
    if (n >= sizeof(h))
        return;
    memcpy(h, host, n);
    h[n] = '\0';
    const char *why = egress_text_refusal(h, &is_ip);
    if (is_ip) {
        if (why)
            note_refusal(x, why, h);
        return;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(h, NULL, &hints, &res) != 0)
        return; /* the proxy may know names this host does not */
    for (struct addrinfo *ai = res; ai && !x->refused; ai = ai->ai_next) {
        if ((why = egress_addr_refusal(ai->ai_addr, ai->ai_addrlen))) {
            char ip[INET6_ADDRSTRLEN] = "?";
            getnameinfo(ai->ai_addr, ai->ai_addrlen, ip, sizeof(ip), NULL, 0, NI_NUMERICHOST);
            note_refusal(x, why, ip);
        }
    }
    freeaddrinfo(res);
}

static char *url_host(const char *url)
{
    CURLU *u = curl_url();
    char *host = NULL, *out = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
        out = strdup(host);
    curl_free(host);
    curl_url_cleanup(u);
    return out;
}

/* ---- one hop ----------------------------------------------------------------------------- */

/* What a hop may carry and where it may connect (see fetch.h). */
struct hop_rules {
    bool credentials;
    bool configured;
    bool check; /* the address rule applies */
};

static struct hop_rules hop_rules(const struct fetch_request *req, const char *url, int hop,
                                  const char *first_origin)
{
    struct hop_rules r = {0};
    struct egress_policy *p = req->ep ? req->ep->egress : NULL;
    if (!p) {
        char *o = hop > 0 ? fetch_url_origin(url) : NULL;
        r.credentials = hop == 0 || (o && first_origin && strcmp(o, first_origin) == 0);
        r.configured = true;
        free(o);
        return r;
    }
    if (egress_origin_configured(p, url)) {
        r.credentials = r.configured = true;
        return r;
    }
    char *host = url_host(url);
    r.credentials = hop == 0 && (req->realm || egress_pass_credentials(p));
    /* A realm on the registry's own host (any port) is the registry's; elsewhere it is learned. */
    r.check = !host || (!egress_host_allowed(p, host) &&
                        !(req->realm && hop == 0 && egress_host_configured(p, host)));
    free(host);
    return r;
}

int fetch_header_add(struct curl_slist **l, const char *h)
{
    struct curl_slist *nl = curl_slist_append(*l, h);
    if (!nl) {
        curl_slist_free_all(*l);
        *l = NULL;
        return -ENOMEM;
    }
    *l = nl;
    return 0;
}

/* The request's headers for one hop: without Authorization when it may not carry credentials. */
static int hop_headers(const struct fetch_request *req, const char *method, bool credentials,
                       struct curl_slist **hdrs)
{
    int rc = 0;
    *hdrs = NULL;
    for (const struct curl_slist *l = req->headers; l && rc == 0; l = l->next)
        if (credentials || strncasecmp(l->data, "Authorization:", 14) != 0)
            rc = fetch_header_add(hdrs, l->data);
    if (rc == 0 && method) /* No "Expect: 100-continue" round trip for the small bodies this sends. */
        rc = fetch_header_add(hdrs, "Expect:");
    /* TE is hop-by-hop: the Connection option says so to any intermediary (RFC 9110 7.6.1). */
    if (rc == 0 && req->want_trailers && !method && !req->head)
        rc = fetch_header_add(hdrs, "TE: trailers");
    if (rc == 0 && req->want_trailers && !method && !req->head)
        rc = fetch_header_add(hdrs, "Connection: TE");
    return rc;
}

static void hop_setopt(CURL *h, struct xfer *x, const char *url, const char *method,
                       const struct hop_rules *hr, long timeout_ms, struct curl_slist *hdrs)
{
    const struct fetch_request *req = x->req;
    const struct fetch_endpoint *ep = req->ep;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_SHARE, share);
    curl_easy_setopt(h, CURLOPT_RANGE, req->range); /* NULL: the whole body */
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "upstreamfs/" UPSTREAMFS_VERSION);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    long connect_ms = req->connect_timeout_ms > 0                 ? req->connect_timeout_ms
                      : req->ep && req->ep->connect_timeout_ms > 0 ? req->ep->connect_timeout_ms
                                                                   : (long)FETCH_CONNECT_TIMEOUT_S * 1000;
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, (long)FETCH_LOW_SPEED_BPS);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)FETCH_LOW_SPEED_TIME_S);
    if (timeout_ms > 0)
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header_line);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    /* Streamed bodies: fewer, larger receives. libcurl 7.88 still hands them to on_body in
     * pieces of CURL_MAX_WRITE_SIZE (16 KiB); src/fetch/sink.c gathers those for the disk. */
    if (req->on_data)
        curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 1024L * 1024L);
    if (req->should_abort) {
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    }
    if (x->check_socket) {
        curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
        curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, x);
        curl_easy_setopt(h, CURLOPT_PREREQFUNCTION, before_request);
        curl_easy_setopt(h, CURLOPT_PREREQDATA, x);
    }
    if (req->head)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    if (method) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body_len ? (const char *)req->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    if (hdrs)
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    if (!ep)
        return;
    if (ep->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, ep->ca_file);
    if (ep->client_cert && hr->credentials)
        curl_easy_setopt(h, CURLOPT_SSLCERT, ep->client_cert);
    if (ep->client_key && hr->credentials)
        curl_easy_setopt(h, CURLOPT_SSLKEY, ep->client_key);
    if (ep->http_proxy)
        curl_easy_setopt(h, CURLOPT_PROXY, ep->http_proxy);
    if (ep->username && ep->password && hr->credentials) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERNAME, ep->username);
        curl_easy_setopt(h, CURLOPT_PASSWORD, ep->password);
    }
}

static void log_refusal(const char *url, const struct xfer *x)
{
    char *origin = fetch_url_origin(url), *host = url_host(url);
    log_warn("egress rule: refused %s: it resolves to %s, a %s address, and a host learned from "
             "the remote (index entry, redirect, token realm) may not reach loopback, private, "
             "link-local or multicast addresses; the proxy's --allow-host %s would allow it",
             origin ? origin : "a URL", x->refused_ip, x->refused, host ? host : "HOST");
    free(origin);
    free(host);
}

/*
 * One transfer to url. *next receives the URL of a redirect to follow (the
 * response is then not collected), else stays NULL.
 */
static int perform_hop(const struct fetch_request *req, struct fetch_response *resp,
                       const char *url, const char *method, const struct hop_rules *hr,
                       long timeout_ms, char **next, long *status)
{
    struct xfer x = {.req = req, .resp = resp, .stream_cap = -1, .configured = hr->configured};
    int rc = 0;
    x.cap = req->max_body ? req->max_body : (1u << 20);
    if (hr->check) {
        if (proxied(req->ep, url)) {
            char *host = url_host(url);
            if (host)
                check_resolved(&x, host);
            free(host);
        } else {
            x.check_socket = true;
        }
        if (x.refused) {
            log_refusal(url, &x);
            return -EPERM;
        }
    }
    struct curl_slist *hdrs = NULL;
    if (hop_headers(req, method, hr->credentials, &hdrs) < 0)
        return -ENOMEM;
    CURL *h = curl_easy_init();
    if (!h) {
        curl_slist_free_all(hdrs);
        return -ENOMEM;
    }
    x.h = h;
    hop_setopt(h, &x, url, method, hr, timeout_ms, hdrs);
    CURLcode c = curl_easy_perform(h);
    if (x.redirecting && (c == CURLE_OK || x.cb_err == FETCH_ESKIP)) {
        char *loc = NULL;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
        curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &loc);
        if (loc && (strncasecmp(loc, "http://", 7) == 0 || strncasecmp(loc, "https://", 8) == 0))
            *next = strdup(loc);
        rc = *next ? 0 : loc ? -EIO : -ENOMEM;
    } else if (x.refused) {
        log_refusal(url, &x);
        resp->cause = FAILURE_POLICY;
        rc = -EPERM;
    } else if (c == CURLE_OK && !x.headers_done) {
        rc = collect_headers(&x);
    } else if (c == CURLE_OK && req->want_trailers && !resp->repr_digest) {
        struct curl_header *t = NULL;
        if (curl_easy_header(h, "Repr-Digest", 0, CURLH_TRAILER, -1, &t) == CURLHE_OK && t &&
            strlen(t->value) < FETCH_HEADER_LIST_MAX)
            resp->repr_digest = strdup(t->value);
    } else if (c != CURLE_OK) {
        long os_errno = 0;
        curl_off_t lookup = 0;
        curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
        curl_easy_getinfo(h, CURLINFO_NAMELOOKUP_TIME_T, &lookup);
        int err = -EIO;
        resp->cause = failure_of_curl(c, os_errno, lookup > 0, &err);
        if (!resp->status) /* the last status that came, or 0 */
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
        if (x.cb_err) {
            rc = x.cb_err;
            resp->cause = rc == -EFBIG ? FAILURE_TOO_LARGE : FAILURE_NONE;
        } else {
            rc = err;
        }
    }
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    if (rc < 0 && rc != -EPERM)
        log_debug("fetch %s: %s", url, c != CURLE_OK ? curl_easy_strerror(c) : "aborted");
    return rc;
}

int fetch_perform(const struct fetch_request *req, struct fetch_response *resp)
{
    int rc = 0;
    memset(resp, 0, sizeof(*resp));
    resp->content_length = -1;
    resp->range_first = resp->range_last = resp->range_total = -1;
    resp->ratelimit_remaining = resp->ratelimit_limit = -1;
    char *url = strdup(req->url), *first_origin = fetch_url_origin(req->url);
    const char *method = req->method;
    int64_t start = clock_mono_ms();
    long total_ms = req->timeout_ms;
    if (total_ms == FETCH_META_TIMEOUT_MS && req->ep && req->ep->metadata_timeout_ms > 0)
        total_ms = req->ep->metadata_timeout_ms; /* the proxy's --metadata-timeout */
    for (int hop = 0; url; hop++) {
        long timeout_ms = 0;
        if (total_ms > 0) {
            timeout_ms = total_ms - (long)(clock_mono_ms() - start);
            if (timeout_ms <= 0) {
                resp->cause = FAILURE_TIMEOUT;
                rc = -ETIMEDOUT;
                break;
            }
        }
        struct hop_rules hr = hop_rules(req, url, hop, first_origin);
        char *next = NULL;
        long status = 0;
        rc = perform_hop(req, resp, url, method, &hr, timeout_ms, &next, &status);
        free(url);
        url = NULL;
        if (rc < 0 || !next)
            break;
        if (hop == FETCH_MAX_HOPS) {
            free(next);
            log_debug("fetch %s: more than %d redirects", req->url, FETCH_MAX_HOPS);
            resp->cause = FAILURE_HTTP; /* the remote answers, with a loop */
            resp->status = status;
            rc = -ELOOP;
            break;
        }
        /* As libcurl's own following did: 303, and 301/302 after a POST, continue as GET. */
        if ((status == 303 && !req->head) ||
            ((status == 301 || status == 302) && method && strcmp(method, "POST") == 0))
            method = NULL;
        url = next;
    }
    free(url);
    free(first_origin);
    if (rc == 0 && !req->on_data && !resp->body) {
        resp->body = calloc(1, 1);
        if (!resp->body)
            rc = -ENOMEM;
    }
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
    free(r->repr_digest);
    free(r->effective_url);
    free(r->link);
    free(r->body);
    memset(r, 0, sizeof(*r));
    r->content_length = -1;
    r->range_first = r->range_last = r->range_total = -1;
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

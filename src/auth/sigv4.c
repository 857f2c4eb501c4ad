/*
 * sigv4: AWS Signature Version 4 (see sigv4.h for the canonical rules).
 *
 * The canonical request is built in one bounded buffer (SIGV4_CANONICAL_MAX),
 * so a hostile URL or header set can make signing fail but never grow memory
 * without bound. Every byte of the request that AWS canonicalises is taken
 * from the caller's request as it will be sent: the Host value is returned
 * so that the caller sends exactly the string that was signed, rather than
 * trusting libcurl to format the same one.
 *
 * Secrets: the secret key only enters the first HMAC of the key chain; the
 * "AWS4"+secret buffer and every intermediate key are wiped with
 * secret_wipe (src/util/secret.c) before they are freed or go out of scope. Nothing here
 * logs.
 */
#include "upstreamfs/hash.h"
#include "upstreamfs/sigv4.h"
#include "upstreamfs/secret.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#define SHA256_LEN 32

/* A growable string with a hard maximum; the first failure sticks in err. */
struct sbuf {
    char *p;
    size_t len, cap, max;
    int err;
};

static void sbuf_put(struct sbuf *b, const char *s, size_t n)
{
    if (b->err)
        return;
    if (b->len + n + 1 > b->max) {
        b->err = -E2BIG;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t want = b->cap ? b->cap : 256;
        while (want < b->len + n + 1)
            want *= 2;
        if (want > b->max)
            want = b->max;
        char *np = realloc(b->p, want);
        if (!np) {
            b->err = -ENOMEM;
            return;
        }
        b->p = np;
        b->cap = want;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sbuf_puts(struct sbuf *b, const char *s)
{
    sbuf_put(b, s, strlen(s));
}

static void sbuf_putc(struct sbuf *b, char c)
{
    sbuf_put(b, &c, 1);
}

/* Hands the string over (NUL-terminated, possibly empty) or returns the error. */
static int sbuf_take(struct sbuf *b, char **out)
{
    if (!b->err && !b->p)
        sbuf_put(b, "", 0);
    if (b->err) {
        free(b->p);
        b->p = NULL;
        return b->err;
    }
    *out = b->p;
    b->p = NULL;
    return 0;
}

static bool is_unreserved(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

/* Appends s[0..n) URI-encoded with the SigV4 unreserved set. */
static void put_encoded(struct sbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_unreserved(c)) {
            sbuf_putc(b, (char)c);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            sbuf_put(b, e, 3);
        }
    }
}

/*
 * Percent-decodes s[0..n) into a new string, then re-encodes it. A '%' not
 * followed by two hex digits stands for itself. Decoded bytes may be NUL,
 * so the decoded form is kept with its length.
 */
static int reencode(const char *s, size_t n, char **out)
{
    char *dec = malloc(n + 1);
    size_t dn = 0;
    struct sbuf b = {.max = SIGV4_CANONICAL_MAX};
    if (!dec)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < n && (hi = hash_hex_value(s[i + 1])) >= 0 &&
            (lo = hash_hex_value(s[i + 2])) >= 0) {
            dec[dn++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            dec[dn++] = s[i];
        }
    }
    put_encoded(&b, dec, dn);
    free(dec);
    return sbuf_take(&b, out);
}

/* The parts of an absolute URL that SigV4 signs. */
struct url_parts {
    char *host; /* lower case; default port dropped */
    const char *path;
    size_t path_len;
    const char *query;
    size_t query_len;
};

static int url_split(const char *url, struct url_parts *u)
{
    const char *p, *default_port;
    memset(u, 0, sizeof(*u));
    if (strncasecmp(url, "https://", 8) == 0) {
        p = url + 8;
        default_port = "443";
    } else if (strncasecmp(url, "http://", 7) == 0) {
        p = url + 7;
        default_port = "80";
    } else {
        return -EINVAL;
    }
    size_t alen = strcspn(p, "/?#");
    if (alen == 0)
        return -EINVAL;
    for (size_t i = 0; i < alen; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c <= 0x20 || c >= 0x7f || c == '@' || c == '\\')
            return -EINVAL;
    }
    /* A port is what follows the last ':' that is not inside an IPv6 literal. */
    size_t hlen = alen;
    const char *colon = NULL;
    for (size_t i = 0; i < alen; i++) {
        if (p[i] == ']')
            colon = NULL;
        else if (p[i] == ':')
            colon = p + i;
    }
    if (colon) {
        const char *port = colon + 1;
        size_t plen = (size_t)(p + alen - port);
        for (size_t i = 0; i < plen; i++)
            if (!isdigit((unsigned char)port[i]))
                return -EINVAL;
        if (plen == 0 || (plen == strlen(default_port) && memcmp(port, default_port, plen) == 0))
            hlen = (size_t)(colon - p);
    }
    if (hlen == 0)
        return -EINVAL;
    u->host = strndup(p, hlen);
    if (!u->host)
        return -ENOMEM;
    for (char *c = u->host; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    p += alen;
    u->path = p;
    u->path_len = strcspn(p, "?#");
    p += u->path_len;
    if (*p == '?') {
        u->query = p + 1;
        u->query_len = strcspn(u->query, "#");
    }
    return 0;
}

/* Canonical URI: segments resolved ("." and ".." and empty ones), each encoded. */
static void put_canonical_uri(struct sbuf *b, const char *path, size_t n)
{
    size_t nseg = 1;
    for (size_t i = 0; i < n; i++)
        nseg += path[i] == '/';
    struct seg {
        const char *s;
        size_t n;
    } *segs = calloc(nseg, sizeof(*segs));
    size_t top = 0;
    bool trailing = false;
    if (!segs) {
        b->err = b->err ? b->err : -ENOMEM;
        return;
    }
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && path[j] != '/')
            j++;
        size_t len = j - i;
        bool dot = len == 1 && path[i] == '.';
        bool dotdot = len == 2 && path[i] == '.' && path[i + 1] == '.';
        if (dotdot && top > 0)
            top--;
        else if (len > 0 && !dot && !dotdot)
            segs[top++] = (struct seg){path + i, len};
        /* RFC 3986 remove_dot_segments leaves a '/' after a final "." or "..". */
        trailing = j == n ? dot || dotdot : (j + 1 == n);
        i = j + 1;
    }
    sbuf_putc(b, '/');
    for (size_t k = 0; k < top; k++) {
        if (k)
            sbuf_putc(b, '/');
        put_encoded(b, segs[k].s, segs[k].n);
    }
    if (top > 0 && trailing)
        sbuf_putc(b, '/');
    free(segs);
}

struct qparam {
    char *name, *value;
};

static int qparam_cmp(const void *a, const void *b)
{
    const struct qparam *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

static void put_canonical_query(struct sbuf *b, const char *q, size_t n)
{
    size_t cap = 1, count = 0;
    int rc = 0;
    for (size_t i = 0; i < n; i++)
        cap += q[i] == '&';
    struct qparam *ps = calloc(cap, sizeof(*ps));
    if (!ps) {
        b->err = b->err ? b->err : -ENOMEM;
        return;
    }
    for (size_t i = 0; i < n && rc == 0;) {
        size_t j = i;
        while (j < n && q[j] != '&')
            j++;
        if (j > i) {
            const char *eq = memchr(q + i, '=', j - i);
            size_t nlen = eq ? (size_t)(eq - (q + i)) : j - i;
            struct qparam *p = &ps[count++];
            rc = reencode(q + i, nlen, &p->name);
            if (rc == 0)
                rc = eq ? reencode(eq + 1, (size_t)(q + j - eq - 1), &p->value)
                        : reencode("", 0, &p->value);
        }
        i = j + 1;
    }
    if (rc == 0) {
        qsort(ps, count, sizeof(*ps), qparam_cmp);
        for (size_t k = 0; k < count; k++) {
            if (k)
                sbuf_putc(b, '&');
            sbuf_puts(b, ps[k].name);
            sbuf_putc(b, '=');
            sbuf_puts(b, ps[k].value);
        }
    } else if (!b->err) {
        b->err = rc;
    }
    for (size_t k = 0; k < count; k++) {
        free(ps[k].name);
        free(ps[k].value);
    }
    free(ps);
}

/* A header on its way into the canonical list. */
struct chdr {
    char *name; /* lower case */
    const char *value;
    size_t order; /* position given, so repeated names keep their order */
};

static int chdr_cmp(const void *a, const void *b)
{
    const struct chdr *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

static bool is_tchar(unsigned char c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int check_header(const char *name, const char *value)
{
    static const char *const owned[] = {"host", "x-amz-date", "x-amz-security-token",
                                        "authorization"};
    if (!name || !*name || !value)
        return -EINVAL;
    for (const char *c = name; *c; c++)
        if (!is_tchar((unsigned char)*c))
            return -EINVAL;
    if (strpbrk(value, "\r\n"))
        return -EINVAL;
    for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++)
        if (strcasecmp(name, owned[i]) == 0)
            return -EINVAL;
    return 0;
}

/* Appends a header value trimmed, with inner runs of blanks collapsed to one space. */
static void put_trimmed(struct sbuf *b, const char *v)
{
    bool pending = false, any = false;
    for (; *v; v++) {
        if (*v == ' ' || *v == '\t') {
            pending = any;
            continue;
        }
        if (pending)
            sbuf_putc(b, ' ');
        pending = false;
        any = true;
        sbuf_putc(b, *v);
    }
}

/* A value that goes into the credential scope or the Credential field. */
static bool scope_word_ok(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c >= 0x7f || c == '/' || c == ',' || c == ';' || c == '=')
            return false;
    }
    return true;
}

static int check_request(const struct sigv4_request *req)
{
    if (!req->method || !*req->method || !req->url || !req->secret_access_key ||
        !scope_word_ok(req->region) || !scope_word_ok(req->service) ||
        !scope_word_ok(req->access_key_id) || (req->payload_len && !req->payload))
        return -EINVAL;
    for (const char *c = req->method; *c; c++)
        if (!is_tchar((unsigned char)*c))
            return -EINVAL;
    if (req->session_token && (!*req->session_token || strpbrk(req->session_token, "\r\n")))
        return -EINVAL;
    for (size_t i = 0; i < req->n_headers; i++) {
        int rc = check_header(req->headers[i].name, req->headers[i].value);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int hmac(const void *key, size_t klen, const void *data, size_t n,
                unsigned char out[SHA256_LEN])
{
    unsigned int olen = 0;
    if (!HMAC(EVP_sha256(), key, (int)klen, data, n, out, &olen) || olen != SHA256_LEN)
        return -EIO;
    return 0;
}

int sigv4_amz_date(time_t when, char *buf, size_t n)
{
    struct tm tm;
    if (n < SIGV4_AMZ_DATE_LEN + 1 || !gmtime_r(&when, &tm))
        return -EINVAL;
    if (strftime(buf, n, "%Y%m%dT%H%M%SZ", &tm) != SIGV4_AMZ_DATE_LEN)
        return -EINVAL;
    return 0;
}

/* Frees the n entries of a header list and the list. */
static void chdrs_free(struct chdr *hs, size_t n)
{
    for (size_t i = 0; hs && i < n; i++)
        free(hs[i].name);
    free(hs);
}

/*
 * The headers to sign, sorted by lower-case name (repeated names in the order given): the
 * request's, then host, x-amz-date and, with a session token, x-amz-security-token. *out has
 * *count entries (free with chdrs_free). 0 or -ENOMEM.
 */
static int collect_headers(const struct sigv4_request *req, const char *host, const char *amz_date,
                           struct chdr **out, size_t *count)
{
    const char *own[3][2] = {
        {"host", host}, {"x-amz-date", amz_date}, {"x-amz-security-token", req->session_token}};
    size_t nh = req->n_headers + 3, n = 0;
    struct chdr *hs = calloc(nh, sizeof(*hs));
    int rc = hs ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < nh; i++) {
        bool given = i < req->n_headers;
        const char *name = given ? req->headers[i].name : own[i - req->n_headers][0];
        const char *value = given ? req->headers[i].value : own[i - req->n_headers][1];
        if (!given && !value)
            continue;
        hs[n].value = value;
        hs[n].order = n;
        if (!(hs[n++].name = strdup(name)))
            rc = -ENOMEM;
        for (char *c = hs[n - 1].name; c && *c; c++)
            *c = (char)tolower((unsigned char)*c);
    }
    if (rc == 0) {
        qsort(hs, n, sizeof(*hs), chdr_cmp);
    } else {
        chdrs_free(hs, n);
        hs = NULL;
        n = 0;
    }
    *out = hs;
    *count = n;
    return rc;
}

/* The canonical headers block into b (name:value lines, repeats joined by ',') and the signed
 * header names into sh (';'-separated). */
static void put_headers(struct sbuf *b, struct sbuf *sh, const struct chdr *hs, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        bool repeat = i > 0 && strcmp(hs[i].name, hs[i - 1].name) == 0;
        if (repeat) {
            sbuf_putc(b, ',');
        } else {
            if (i > 0) {
                sbuf_putc(b, '\n');
                sbuf_putc(sh, ';');
            }
            sbuf_puts(b, hs[i].name);
            sbuf_putc(b, ':');
            sbuf_puts(sh, hs[i].name);
        }
        put_trimmed(b, hs[i].value);
    }
}

/*
 * Builds the canonical request; host_out (optional) receives the Host
 * value. The caller has checked req.
 */
static int build_canonical(const struct sigv4_request *req, const char *amz_date, char **creq,
                           char **signed_out, char **host_out)
{
    struct url_parts u;
    struct sbuf b = {.max = SIGV4_CANONICAL_MAX}, sh = {.max = SIGV4_CANONICAL_MAX};
    size_t count = 0;
    struct chdr *hs = NULL;
    char payload_hash[2 * SHA256_LEN + 1];
    int rc = url_split(req->url, &u);
    if (rc < 0)
        return rc;
    if ((rc = collect_headers(req, u.host, amz_date, &hs, &count)) == 0) {
        sbuf_puts(&b, req->method);
        sbuf_putc(&b, '\n');
        put_canonical_uri(&b, u.path, u.path_len);
        sbuf_putc(&b, '\n');
        if (u.query)
            put_canonical_query(&b, u.query, u.query_len);
        sbuf_putc(&b, '\n');
        put_headers(&b, &sh, hs, count);
        sbuf_puts(&b, "\n\n");
        if (sh.p)
            sbuf_puts(&b, sh.p);
        sbuf_putc(&b, '\n');
        hash_sha256_hex(req->payload ? (const void *)req->payload : "", req->payload_len,
                        payload_hash);
        sbuf_puts(&b, payload_hash);
        rc = sbuf_take(&sh, signed_out);
    }
    if (rc == 0 && (rc = sbuf_take(&b, creq)) < 0) {
        free(*signed_out);
        *signed_out = NULL;
    }
    if (rc == 0 && host_out) {
        *host_out = u.host;
        u.host = NULL;
    }
    chdrs_free(hs, count);
    free(b.p);
    free(sh.p);
    free(u.host);
    return rc;
}

int sigv4_canonical_request(const struct sigv4_request *req, const char *amz_date, char **creq,
                            char **signed_headers)
{
    int rc = check_request(req);
    if (rc < 0)
        return rc;
    if (!amz_date || strlen(amz_date) != SIGV4_AMZ_DATE_LEN)
        return -EINVAL;
    return build_canonical(req, amz_date, creq, signed_headers, NULL);
}

/* kSigning = HMAC chain over date, region, service, "aws4_request". */
static int signing_key(const struct sigv4_request *req, const char *date8,
                       unsigned char out[SHA256_LEN])
{
    size_t slen = strlen(req->secret_access_key);
    unsigned char k1[SHA256_LEN], k2[SHA256_LEN], k3[SHA256_LEN];
    char *seed = malloc(slen + 5);
    int rc;
    if (!seed)
        return -ENOMEM;
    memcpy(seed, "AWS4", 4);
    memcpy(seed + 4, req->secret_access_key, slen + 1);
    rc = hmac(seed, slen + 4, date8, 8, k1);
    if (rc == 0)
        rc = hmac(k1, SHA256_LEN, req->region, strlen(req->region), k2);
    if (rc == 0)
        rc = hmac(k2, SHA256_LEN, req->service, strlen(req->service), k3);
    if (rc == 0)
        rc = hmac(k3, SHA256_LEN, "aws4_request", 12, out);
    secret_wipe(seed, slen + 4);
    secret_wipe(k1, sizeof(k1));
    secret_wipe(k2, sizeof(k2));
    secret_wipe(k3, sizeof(k3));
    free(seed);
    return rc;
}

int sigv4_sign(const struct sigv4_request *req, struct sigv4_signature *out)
{
    char *creq = NULL, *sts = NULL;
    char creq_hash[2 * SHA256_LEN + 1], sig_hex[2 * SHA256_LEN + 1], date8[9];
    unsigned char key[SHA256_LEN], sig[SHA256_LEN];
    int rc;
    memset(out, 0, sizeof(*out));
    if ((rc = check_request(req)) < 0)
        return rc;
    if ((rc = sigv4_amz_date(req->when, out->amz_date, sizeof(out->amz_date))) < 0)
        return rc;
    memcpy(date8, out->amz_date, 8);
    date8[8] = '\0';
    rc = build_canonical(req, out->amz_date, &creq, &out->signed_headers, &out->host);
    if (rc < 0)
        goto out;
    hash_sha256_hex(creq, strlen(creq), creq_hash);
    if (asprintf(&sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", out->amz_date, date8,
                 req->region, req->service, creq_hash) < 0) {
        sts = NULL;
        rc = -ENOMEM;
        goto out;
    }
    if ((rc = signing_key(req, date8, key)) < 0)
        goto out;
    rc = hmac(key, sizeof(key), sts, strlen(sts), sig);
    secret_wipe(key, sizeof(key));
    if (rc < 0)
        goto out;
    hash_hex_encode(sig, sizeof(sig), sig_hex);
    if (asprintf(&out->authorization,
                 "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, "
                 "Signature=%s",
                 req->access_key_id, date8, req->region, req->service, out->signed_headers,
                 sig_hex) < 0) {
        out->authorization = NULL;
        rc = -ENOMEM;
    }
out:
    free(creq);
    free(sts);
    if (rc < 0)
        sigv4_signature_clear(out);
    return rc;
}

void sigv4_signature_clear(struct sigv4_signature *sig)
{
    free(sig->host);
    free(sig->signed_headers);
    free(sig->authorization);
    memset(sig, 0, sizeof(*sig));
}

/* Appends "Name: value" to *l; curl sends "Name;" as a header with an empty value. */
static int slist_add(struct curl_slist **l, const char *name, const char *value)
{
    char *line = NULL;
    int n = *value ? asprintf(&line, "%s: %s", name, value) : asprintf(&line, "%s;", name);
    if (n < 0)
        return -ENOMEM;
    int rc = fetch_header_add(l, line);
    free(line);
    return rc;
}

int sigv4_sign_headers(const struct sigv4_request *req, struct curl_slist **list)
{
    struct sigv4_signature sig;
    struct curl_slist *add = NULL;
    int rc = sigv4_sign(req, &sig);
    if (rc < 0)
        return rc;
    rc = slist_add(&add, "Host", sig.host);
    for (size_t i = 0; rc == 0 && i < req->n_headers; i++)
        rc = slist_add(&add, req->headers[i].name, req->headers[i].value);
    if (rc == 0)
        rc = slist_add(&add, "X-Amz-Date", sig.amz_date);
    if (rc == 0 && req->session_token)
        rc = slist_add(&add, "X-Amz-Security-Token", req->session_token);
    if (rc == 0)
        rc = slist_add(&add, "Authorization", sig.authorization);
    sigv4_signature_clear(&sig);
    if (rc < 0) {
        curl_slist_free_all(add);
        return rc;
    }
    if (!*list) {
        *list = add;
    } else {
        struct curl_slist *t = *list;
        while (t->next)
            t = t->next;
        t->next = add;
    }
    return 0;
}

int sigv4_http_perform(const struct sigv4_http_request *req, struct fetch_response *resp)
{
    memset(resp, 0, sizeof(*resp));
    resp->content_length = -1;
    if (!req->method || !req->url || (req->body_len && !req->body))
        return -EINVAL;
    /* AWS APIs answer where they are asked; a redirect would only move a signed request. */
    struct fetch_request fr = {.url = req->url,
                               .ep = req->ep,
                               .method = req->method,
                               .body = req->body,
                               .body_len = req->body_len,
                               .connect_timeout_ms = req->connect_timeout_ms,
                               .no_redirects = true,
                               .headers = req->headers,
                               .timeout_ms = req->timeout_ms > 0 ? req->timeout_ms
                                                                 : FETCH_META_TIMEOUT_MS,
                               .max_body = req->max_body};
    int rc = fetch_perform(&fr, resp);
    if (rc < 0)
        fetch_response_clear(resp);
    return rc;
}

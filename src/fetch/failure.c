/*
 * failure: causes, their names, and the maps between libcurl results, HTTP
 * statuses, causes and errnos (the table is in include/upstreamfs/failure.h
 * and docs/troubleshooting.md).
 */
#include "upstreamfs/failure.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *const cause_names[FAILURE_CAUSE_COUNT] = {
    [FAILURE_NONE] = "none",       [FAILURE_DNS] = "dns",       [FAILURE_CONNECT] = "connect",
    [FAILURE_TLS] = "tls",         [FAILURE_TIMEOUT] = "timeout", [FAILURE_AUTH] = "auth",
    [FAILURE_HTTP] = "http",       [FAILURE_DIGEST] = "digest", [FAILURE_TOO_LARGE] = "too-large",
    [FAILURE_POLICY] = "policy",   [FAILURE_OFFLINE] = "offline",
};

const char *failure_cause_name(enum failure_cause c)
{
    return (unsigned)c < FAILURE_CAUSE_COUNT ? cause_names[c] : "none";
}

int failure_cause_parse(const char *name)
{
    for (int i = 0; name && i < FAILURE_CAUSE_COUNT; i++)
        if (strcmp(name, cause_names[i]) == 0)
            return i;
    return -1;
}

enum failure_cause failure_of_curl(CURLcode c, long os_errno, bool resolved, int *err)
{
    enum failure_cause cause = FAILURE_NONE;
    int e = -EIO;
    switch (c) {
    case CURLE_OK:
        e = 0;
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        cause = FAILURE_DNS;
        e = -EHOSTUNREACH;
        break;
    case CURLE_COULDNT_CONNECT:
        cause = FAILURE_CONNECT;
        e = os_errno == EHOSTUNREACH || os_errno == ENETUNREACH ? -EHOSTUNREACH : -ECONNREFUSED;
        break;
    case CURLE_OPERATION_TIMEDOUT:
        cause = resolved ? FAILURE_TIMEOUT : FAILURE_DNS;
        e = resolved ? -ETIMEDOUT : -EHOSTUNREACH;
        break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
        cause = FAILURE_TLS;
        break;
    case CURLE_TOO_MANY_REDIRECTS:
        cause = FAILURE_HTTP;
        e = -ELOOP;
        break;
    case CURLE_FILESIZE_EXCEEDED:
        cause = FAILURE_TOO_LARGE;
        e = -EFBIG;
        break;
    case CURLE_ABORTED_BY_CALLBACK:
        e = -ECANCELED; /* ours, not the remote's */
        break;
    default: /* a connection cut, a malformed answer: the remote's side of the transfer */
        cause = FAILURE_HTTP;
        break;
    }
    if (err)
        *err = e;
    return cause;
}

enum failure_cause failure_of_status(long status)
{
    /* An answer the caller reads (a redirect it did not follow, not modified) or absence. */
    if ((status >= 200 && status < 400) || status == 404 || status == 410)
        return FAILURE_NONE;
    if (status == 401 || status == 403)
        return FAILURE_AUTH;
    return FAILURE_HTTP;
}

int failure_status_errno(long status)
{
    if (status >= 200 && status < 300)
        return 0;
    if (status == 404 || status == 410)
        return -ENOENT;
    struct failure f = {.cause = failure_of_status(status), .status = status};
    return f.cause == FAILURE_NONE ? -EIO : failure_errno(&f);
}

int failure_errno(const struct failure *f)
{
    switch (f->cause) {
    case FAILURE_NONE:
        return 0;
    case FAILURE_DNS:
        return -EHOSTUNREACH;
    case FAILURE_CONNECT:
        return -ECONNREFUSED;
    case FAILURE_TIMEOUT:
        return -ETIMEDOUT;
    case FAILURE_AUTH:
    case FAILURE_POLICY:
        return -EACCES;
    case FAILURE_HTTP:
        return f->status == 0 || f->status == 429 || f->status >= 500 ? -EREMOTEIO : -EIO;
    case FAILURE_TOO_LARGE:
        return -EFBIG;
    case FAILURE_OFFLINE:
        return -ENETUNREACH;
    case FAILURE_TLS:
    case FAILURE_DIGEST:
    default:
        return -EIO;
    }
}

enum failure_cause failure_cause_of_errno(int err)
{
    switch (err < 0 ? -err : err) {
    case 0:
    case ENOENT:
        return FAILURE_NONE;
    case EHOSTUNREACH:
        return FAILURE_DNS;
    case ECONNREFUSED:
        return FAILURE_CONNECT;
    case ETIMEDOUT:
        return FAILURE_TIMEOUT;
    case EACCES:
    case EPERM:
        return FAILURE_AUTH;
    case EFBIG:
        return FAILURE_TOO_LARGE;
    case ENETUNREACH:
        return FAILURE_OFFLINE;
    case EBADMSG:
        return FAILURE_DIGEST;
    default:
        return FAILURE_HTTP;
    }
}

bool failure_is_remote(const struct failure *f)
{
    switch (f->cause) {
    case FAILURE_DNS:
    case FAILURE_CONNECT:
    case FAILURE_TLS:
    case FAILURE_TIMEOUT:
        return true;
    case FAILURE_HTTP:
        return f->status == 0 || f->status == 429 || f->status >= 500;
    default:
        return false;
    }
}

bool failure_classify(int rc, long status, enum failure_cause resp_cause, struct failure *f)
{
    memset(f, 0, sizeof(*f));
    if (rc < 0) {
        f->cause = resp_cause;
        f->status = status;
        if (f->cause == FAILURE_NONE && rc == -EFBIG)
            f->cause = FAILURE_TOO_LARGE;
    } else {
        f->status = status;
        f->cause = failure_of_status(status);
    }
    if (f->cause == FAILURE_NONE)
        f->status = 0;
    return f->cause != FAILURE_NONE;
}

void failure_format(const struct failure *f, char *buf, size_t n)
{
    if (f->status > 0)
        snprintf(buf, n, "%s %ld", failure_cause_name(f->cause), f->status);
    else
        snprintf(buf, n, "%s -", failure_cause_name(f->cause));
}

void failure_url_redact(const char *url, char *buf, size_t n)
{
    if (!n)
        return;
    buf[0] = '\0';
    if (!url)
        return;
    const char *scheme = strstr(url, "://");
    const char *host = scheme ? scheme + 3 : url;
    const char *end = host + strcspn(host, "/?#");
    const char *at = memchr(host, '@', (size_t)(end - host));
    size_t pre = (size_t)(host - url);
    const char *rest = at ? at + 1 : host;
    size_t restlen = strcspn(rest, "?#");
    snprintf(buf, n, "%.*s%.*s", (int)pre, url, (int)restlen, rest);
}

void failure_time_rfc3339(int64_t t, char *buf, size_t n)
{
    struct tm tm;
    time_t tt = (time_t)t;
    gmtime_r(&tt, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int failure_http_status(int err)
{
    switch (err < 0 ? -err : err) {
    case ENOENT:
    case ENOTDIR:
    case EISDIR:
        return 404;
    case ENAMETOOLONG:
        return 414;
    case ETIMEDOUT:
        return 504;
    case EACCES:
    case EPERM:
    case ENETUNREACH:
    case EIO:
    case EREMOTEIO:
    case ECONNREFUSED:
    case EHOSTUNREACH:
    case EBADMSG:
    case EFBIG:
        return 502;
    case ENOSPC:
        return 507;
    case EAGAIN:
    case EBUSY:
        return 429;
    case EINTR:
    case ECANCELED:
        return 503;
    default:
        return 500;
    }
}

static _Thread_local struct failure_note note;
static _Thread_local bool note_set;

void failure_note_set(const char *proxy, const struct failure *f, const char *url, bool recorded)
{
    note.f = *f;
    snprintf(note.proxy, sizeof(note.proxy), "%s", proxy ? proxy : "");
    failure_url_redact(url, note.url, sizeof(note.url));
    note.recorded = recorded;
    note_set = true;
}

bool failure_note_get(struct failure_note *out)
{
    if (note_set && out)
        *out = note;
    return note_set;
}

void failure_note_clear(void)
{
    note_set = false;
}

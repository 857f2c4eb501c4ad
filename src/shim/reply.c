/*
 * reply: how the shim answers (contracts in shim_i.h). Every reply goes
 * through shim__reply, which adds the headers every answer carries and
 * records the status and body bytes for the access log and the metrics; an
 * engine errno becomes an HTTP status and a text that names the failure's
 * cause (never a secret). shim__cancelled is what the engine polls to cut a
 * wait short when the client hung up or the shim is stopping.
 */
#include "shim_i.h"
#include "upstreamfs/failure.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Headers of every answer. Served artifacts are inert (docs/SECURITY.md):
 * every answer but the web page's own (ui.c sets a strict policy of its
 * own) gets a sandbox policy, so a proxy's .html or .svg runs no script and
 * has an opaque origin, never this server's, and nosniff keeps a browser
 * from taking a text/plain file for HTML.
 */
void shim__common_headers(struct shim_req *r, struct MHD_Response *resp)
{
    /*
     * Who may keep an answer: the routes say how long (Cache-Control max-age, no-cache,
     * immutable); this says whether shared caches may too. An answer that says nothing
     * (errors, the API, the page) is kept by nobody.
     */
    const char *cc = MHD_get_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL);
    if (!cc) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    } else if (strncmp(cc, "no-store", 8) != 0) {
        char v[128];
        snprintf(v, sizeof(v), "%s, %s",
                 r->s->auth && !r->s->cache_public ? "private" : "public", cc);
        MHD_del_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, cc);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, v);
    }
    if (r->s->tls_cert)
        MHD_add_response_header(resp, "Strict-Transport-Security", "max-age=31536000");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (!MHD_get_response_header(resp, "Content-Security-Policy"))
        MHD_add_response_header(resp, "Content-Security-Policy", SHIM_CONTENT_CSP);
}

enum MHD_Result shim__reply(struct shim_req *r, unsigned status, struct MHD_Response *resp)
{
    if (!resp)
        return MHD_NO;
    shim__common_headers(r, resp);
    enum MHD_Result ok = MHD_queue_response(r->c, status, resp);
    MHD_destroy_response(resp);
    if (ok == MHD_YES) {
        r->replied = true;
        r->status = (int)status;
    }
    return ok;
}

enum MHD_Result shim__reply_data(struct shim_req *r, unsigned status, const char *type,
                                 const void *data, size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (resp && type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (!r->head)
        r->bytes += len;
    return shim__reply(r, status, resp);
}

enum MHD_Result shim__reply_text(struct shim_req *r, unsigned status, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    line[n] = '\0';
    return shim__reply_data(r, status, "text/plain; charset=utf-8", line, (size_t)n);
}

enum MHD_Result shim__reply_method(struct shim_req *r, const char *allow)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        strlen("method not allowed\n"), (void *)"method not allowed\n", MHD_RESPMEM_PERSISTENT);
    if (resp) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    }
    r->bytes += strlen("method not allowed\n");
    return shim__reply(r, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
}

void shim__failure_text(int rc, char *buf, size_t n)
{
    struct failure_note note;
    struct failure f = {.cause = failure_cause_of_errno(rc)};
    const char *proxy = "-";
    if (failure_note_get(&note) && note.f.cause != FAILURE_NONE) {
        f = note.f;
        proxy = note.proxy[0] ? note.proxy : "-";
    }
    char st[24] = "-";
    if (f.status > 0)
        snprintf(st, sizeof(st), "%ld", f.status);
    snprintf(buf, n, "proxy %.64s, cause %s, upstream status %s%s%.40s", proxy,
             failure_cause_name(f.cause), st, f.code[0] ? " " : "", f.code);
    failure_note_clear(); /* told once: a later request on this thread starts clean */
}

bool shim__policy_refused(int rc)
{
    struct failure_note note;
    /* the codes policy_refuse (src/policy/rules.c) notes: not a failure of the upstream */
    return rc == -EACCES && failure_note_get(&note) && note.f.cause == FAILURE_POLICY &&
           (!strcmp(note.f.code, "deny") || !strcmp(note.f.code, "allow") ||
            !strcmp(note.f.code, "min-age"));
}

enum MHD_Result shim__reply_errno(struct shim_req *r, int rc, const char *what)
{
    char w[300], why[200];
    shim_http_log_escape(what && *what ? what : "/", w, sizeof(w));
    int status = failure_http_status(rc);
    if (shim__policy_refused(rc)) {
        shim__failure_text(rc, why, sizeof(why));
        return shim__reply_text(r, MHD_HTTP_FORBIDDEN,
                                "forbidden: %s: refused by the proxy's policy (%s)", w, why);
    }
    if (status == 502 || status == 504)
        shim__failure_text(rc, why, sizeof(why));
    switch (status) {
    case 404:
        return shim__reply_text(r, MHD_HTTP_NOT_FOUND, "not found: %s", w);
    case 414:
        return shim__reply_text(r, MHD_HTTP_URI_TOO_LONG, "path too long: %s", w);
    case 504:
        return shim__reply_text(r, MHD_HTTP_GATEWAY_TIMEOUT,
                                "gateway timeout: %s: the upstream did not answer in time and "
                                "nothing is cached (%s)",
                                w, why);
    case 502:
        return shim__reply_text(r, MHD_HTTP_BAD_GATEWAY,
                                "bad gateway: %s: the upstream failed and nothing good is cached "
                                "(%s)",
                                w, why);
    case 507:
        return shim__reply_text(r, MHD_HTTP_INSUFFICIENT_STORAGE,
                                "insufficient storage: %s: the cache's disk is full", w);
    case 429:
    case 503:
        return shim__reply_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable: %s: %s", w,
                                strerror(rc < 0 ? -rc : rc));
    default:
        return shim__reply_text(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error: %s: %s", w,
                                strerror(rc < 0 ? -rc : rc));
    }
}

const char *shim__header(struct shim_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->c, MHD_HEADER_KIND, name);
}

bool shim__cancelled(void *arg)
{
    const struct shim_waiter *w = arg;
    if (atomic_load(&w->s->stopping))
        return true;
    if (w->sock < 0)
        return false;
    struct pollfd pfd = {.fd = w->sock, .events = POLLRDHUP};
    /* Only a hang-up counts: a pipelined next request makes the socket readable, not gone. */
    return poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

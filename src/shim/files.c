/*
 * files: the path-mirroring routes, GET|HEAD /<key-or-registry>/<path>,
 * and the file replies other routes reuse (shim__serve_file).
 *
 * A path is resolved with engine_resolve exactly as the mount resolves it
 * and opened with engine_file_open, so a shim request and a FUSE read of the
 * same uncached file join one download. Bytes go out one of two ways:
 *  - complete content (engine_file_fd succeeds) as an fd response on a dup
 *    of the store's fd, which MHD sends with sendfile(2) (zero-copy) on
 *    plain HTTP; the engine_file stays open until the reply completes, so
 *    eviction leaves the object alone meanwhile;
 *  - content still arriving as a callback response that reads
 *    engine_file_read at increasing offsets, each read waiting only for the
 *    bytes it needs, except the one that reaches the end of content with an
 *    expected digest, which waits for the verdict (flight_read). If the
 *    download fails after the headers went out, the connection is closed
 *    short (a Content-Length reply lacks its last bytes, a chunked one its
 *    terminating chunk), so a client never mistakes a partial or unverified
 *    body for a whole one. Content up to SHIM_WAIT_SMALL is
 *    awaited whole before the headers instead, so that a failed
 *    verification of a small file is an honest 502.
 * HEAD answers from the node's attributes and never opens (never starts a
 * download). The ETag is the content's sha256 from user.upstreamfs.digest,
 * when the engine knows it.
 *
 * A directory asked for without its trailing slash is redirected to it, so
 * the relative links of its index page (and of Helm's rewritten index.yaml,
 * "charts/<name>-<version>.tgz" against "/<key>/index.yaml") resolve below
 * it, back to the shim.
 *
 * Protocols whose client routes are not the mount's paths (npm, pypi) have
 * a shim protocol (include/upstreamfs/shim_protocol.h) whose route maps a
 * request to an engine path; when it says the answer is a document to
 * render, the protocol's render rewrites the document for this shim's base
 * URL (the request's scheme and Host), so every URL in it points back here.
 * That happens once per source document, variant and base: the rendered
 * bytes are stored (include/upstreamfs/rendered.h) and every request is
 * answered from the store like a file, with the rendered bytes' digest as
 * its ETag; the source is only opened (revalidated as a read would) to learn
 * its digest, and read whole only when it must be rendered. The shim itself knows no protocol: it finds the
 * protocol by the type of the proxy or registry the path names. A target
 * with an escaped '/' is served only where that protocol accepts it.
 */
#include "shim_i.h"
#include "upstreamfs/shim_protocol.h"
#include "upstreamfs/hash.h"
#include "upstreamfs/index.h"
#include "upstreamfs/log.h"
#include "upstreamfs/rendered.h"
#include "upstreamfs/upstream.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A reply body read from an engine file that may still be downloading. */
struct stream {
    struct engine_file *f;
    int64_t start;     /* file offset of the first byte sent */
    int64_t len;       /* bytes to send, or -1 until the end of the file */
    uint64_t *counter; /* the request's byte count (only touched while the request lives) */
    struct shim_waiter w;
    char what[128];
    /* Repr-Digest trailer (stream_trailer): the reply, and the file's engine and inode. */
    struct MHD_Response *resp;
    struct engine *e;
    int64_t ino;
};

static void etag_of(struct engine *e, int64_t ino, char *etag, size_t len);

/*
 * The end of a reply whose headers promised a Repr-Digest trailer (a file streamed while its
 * digest was unknown, to a client that accepts trailers): once the download is complete, its
 * sha256 as a footer of the chunked reply. -errno when it failed: the reply is cut instead.
 */
static int stream_trailer(struct stream *st, const struct engine_wait *w)
{
    char etag[128], hex[65], repr[80];
    int rc = engine_file_wait(st->f, w);
    if (rc < 0)
        return rc;
    etag_of(st->e, st->ino, etag, sizeof(etag));
    if (strncmp(etag, "\"sha256:", 8) != 0)
        return 0; /* the engine knows no digest: the client's copy stays unchecked */
    snprintf(hex, sizeof(hex), "%.64s", etag + 8);
    if (hash_repr_digest_format(hex, repr, sizeof(repr)) == 0 &&
        MHD_add_response_footer(st->resp, "Repr-Digest", repr) != MHD_YES)
        return -ENOMEM;
    return 0;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct stream *st = cls;
    struct engine_wait w = {.cancelled = shim__cancelled, .arg = &st->w};
    size_t want = max;
    if (st->len >= 0) {
        if ((int64_t)pos >= st->len)
            return MHD_CONTENT_READER_END_OF_STREAM;
        /*
         * A read that reaches the end of verified content returns only once
         * the download matched its digest (flight_read), so the last bytes of
         * a reply to the end stay back until the content is known good; a
         * mismatch then cuts the reply short (no terminating chunk either).
         */
        if ((int64_t)want > st->len - (int64_t)pos)
            want = (size_t)(st->len - (int64_t)pos);
    }
    ssize_t n = engine_file_read(st->f, buf, want, (off_t)(st->start + (int64_t)pos), &w);
    if (n == -EINTR) {
        log_debug("shim: %s: client gone or shim stopping after %llu bytes", st->what,
                  (unsigned long long)pos);
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (n < 0) {
        log_warn("shim: %s: read failed after %llu bytes: %s", st->what, (unsigned long long)pos,
                 strerror((int)-n));
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (n == 0) {
        if (st->len < 0 && st->resp && (n = stream_trailer(st, &w)) < 0) {
            log_warn("shim: %s: the download failed after %llu bytes: %s", st->what,
                     (unsigned long long)pos, strerror((int)-n));
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (st->len < 0)
            return MHD_CONTENT_READER_END_OF_STREAM;
        log_warn("shim: %s: content ended after %llu of %lld bytes", st->what,
                 (unsigned long long)pos, (long long)st->len);
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (st->len >= 0 && n > st->len - (int64_t)pos)
        n = (ssize_t)(st->len - (int64_t)pos);
    *st->counter += (uint64_t)n;
    return n;
}

static void stream_free(void *cls)
{
    struct stream *st = cls;
    engine_file_close(st->f);
    free(st);
}

/* HEAD bodies are never read; MHD needs a size to announce, so this reader only refuses. */
static ssize_t no_body(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls, (void)pos, (void)buf, (void)max;
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

/* The strong ETag "sha256:<hex>" of a file, or "" when the engine does not know it yet. */
static void etag_of(struct engine *e, int64_t ino, char *etag, size_t len)
{
    char v[100];
    int n = engine_getxattr(e, ino, "user.upstreamfs.digest", v, sizeof(v));
    etag[0] = '\0';
    if (n > 0 && (size_t)n + 3 <= len) {
        etag[0] = '"';
        memcpy(etag + 1, v, (size_t)n);
        memcpy(etag + 1 + n, "\"", 2);
    }
}

/* If-None-Match against our ETag: "*" or any listed tag equal to it (weak comparison). */
static bool none_match(const char *header, const char *etag)
{
    if (!header || !etag[0])
        return false;
    size_t el = strlen(etag);
    for (const char *p = header; *p;) {
        p += strspn(p, " \t,");
        if (*p == '*')
            return true;
        if (!strncmp(p, "W/", 2))
            p += 2;
        if (!strncmp(p, etag, el) && (p[el] == '\0' || p[el] == ',' || p[el] == ' '))
            return true;
        p += strcspn(p, ",");
    }
    return false;
}

/*
 * If-Modified-Since against the file's mtime, asked only when the request has no
 * If-None-Match (RFC 9110 13.1.3) and the reply would carry a Last-Modified.
 */
static bool not_modified_since(struct shim_req *r, const struct engine_attr *a)
{
    const char *ims = shim__header(r, MHD_HTTP_HEADER_IF_MODIFIED_SINCE);
    if (!ims || a->mtime <= 0 || shim__header(r, MHD_HTTP_HEADER_IF_NONE_MATCH))
        return false;
    time_t t = curl_getdate(ims, NULL);
    return t != (time_t)-1 && (int64_t)t >= a->mtime;
}

void shim__cache_control(bool immutable, int64_t fresh_for, char *out, size_t len)
{
    if (immutable)
        snprintf(out, len, "max-age=%d, immutable", SHIM_IMMUTABLE_MAX_AGE);
    else if (fresh_for < 0)
        snprintf(out, len, "no-cache");
    else
        snprintf(out, len, "max-age=%lld", (long long)fresh_for);
}

static void cache_control(const struct engine_attr *a, char *out, size_t len)
{
    shim__cache_control(!a->is_mutable, a->fresh_for, out, len);
}

static void add_headers(struct MHD_Response *resp, const char *type, const char *etag,
                        const struct engine_attr *a, const char *const *extra)
{
    char date[40], cc[64];
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
    char repr[80];
    if (etag[0]) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
        /* etag is "sha256:<hex>" quoted: the same digest for clients that verify (RFC 9530) */
        char hex[65];
        snprintf(hex, sizeof(hex), "%.64s", etag + 8);
        if (!strncmp(etag, "\"sha256:", 8) && hash_repr_digest_format(hex, repr, sizeof(repr)) == 0)
            MHD_add_response_header(resp, "Repr-Digest", repr);
    }
    if (a->mtime > 0) {
        shim_http_date((time_t)a->mtime, date, sizeof(date));
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LAST_MODIFIED, date);
    }
    cache_control(a, cc, sizeof(cc));
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, cc);
    for (size_t i = 0; extra && extra[i] && extra[i + 1]; i += 2)
        MHD_add_response_header(resp, extra[i], extra[i + 1]);
}

/* A 304 carries the validators and freshness a 200 would (RFC 9110 15.4.5); a NULL: rendered. */
static enum MHD_Result not_modified(struct shim_req *r, const char *etag,
                                    const struct engine_attr *a)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    char cc[64];
    if (resp && etag[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    if (resp) {
        if (a)
            cache_control(a, cc, sizeof(cc));
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, a ? cc : "no-cache");
    }
    return shim__reply(r, MHD_HTTP_NOT_MODIFIED, resp);
}

static enum MHD_Result head_reply(struct shim_req *r, const struct engine_attr *a, const char *type,
                                  const char *etag, const char *const *extra)
{
    struct MHD_Response *resp = MHD_create_response_from_callback(
        a->size >= 0 ? (uint64_t)a->size : MHD_SIZE_UNKNOWN, 1024, no_body, NULL, NULL);
    if (resp)
        add_headers(resp, type, etag, a, extra);
    return shim__reply(r, MHD_HTTP_OK, resp);
}

/*
 * Opens the file's content (*f, *fd: -1 while it is still downloading, *size) and waits for
 * small content whole, so a failed verification is a 502, not a cut. 0, or -errno with
 * nothing left open.
 */
static int open_content(struct engine *e, int64_t ino, const struct engine_wait *w,
                        struct engine_file **f, int *fd, int64_t *size, bool *changed)
{
    bool keep = false;
    int rc = engine_file_open(e, ino, w, f, &keep, changed);
    if (rc < 0)
        return rc;
    *fd = engine_file_fd(*f);
    *size = engine_file_size(*f);
    if (*fd < 0 && *size >= 0 && *size <= SHIM_WAIT_SMALL) {
        if ((rc = engine_file_wait(*f, w)) < 0) {
            engine_file_close(*f);
            return rc;
        }
        *fd = engine_file_fd(*f);
        *size = engine_file_size(*f);
    }
    return 0;
}

/* The request's TE names "trailers" (RFC 9110 10.1.4): its client reads a Repr-Digest trailer. */
static bool accepts_trailers(struct shim_req *r)
{
    const char *te = shim__header(r, "TE");
    for (const char *p = te; p && *p;) {
        p += strspn(p, " \t,");
        size_t n = strcspn(p, " \t,;");
        if (n == 8 && strncasecmp(p, "trailers", 8) == 0)
            return true;
        p += strcspn(p, ",");
    }
    return false;
}

/* 416 for a Range outside the file's size bytes. */
static enum MHD_Result range_not_satisfiable(struct shim_req *r, int64_t size)
{
    char cr[48];
    snprintf(cr, sizeof(cr), "bytes */%lld", (long long)size);
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        strlen("range not satisfiable\n"), (void *)"range not satisfiable\n",
        MHD_RESPMEM_PERSISTENT);
    if (resp) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
    }
    r->bytes += strlen("range not satisfiable\n");
    return shim__reply(r, MHD_HTTP_RANGE_NOT_SATISFIABLE, resp);
}

/*
 * The response carrying len bytes of f from start (f is then the reply's): zero-copy from
 * fd when the content is complete, streamed from the running download otherwise. 0 with
 * *resp (NULL when MHD could not make one), or -errno with f closed.
 */
static int body_response(struct shim_req *r, struct engine_file *f, int fd, int64_t start,
                         int64_t len, const struct shim_waiter *waiter, int64_t trailer_ino,
                         struct MHD_Response **resp)
{
    if (fd >= 0) {
        int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (dfd < 0) {
            int rc = -errno;
            engine_file_close(f);
            return rc;
        }
        *resp = MHD_create_response_from_fd_at_offset64((uint64_t)len, dfd, (uint64_t)start);
        if (!*resp)
            close(dfd);
        r->file = f; /* closed when the reply completes */
        r->bytes += (uint64_t)len;
        return 0;
    }
    struct stream *st = calloc(1, sizeof(*st));
    if (!st) {
        engine_file_close(f);
        return -ENOMEM;
    }
    st->f = f;
    st->start = start;
    st->len = len;
    st->counter = &r->bytes;
    st->w = *waiter;
    snprintf(st->what, sizeof(st->what), "%.120s", r->path);
    if (trailer_ino > 0) /* chunked, so that a trailer can follow the body */
        st->len = -1;
    *resp = MHD_create_response_from_callback(st->len >= 0 ? (uint64_t)len : MHD_SIZE_UNKNOWN,
                                              SHIM_STREAM_BLOCK, stream_read, st, stream_free);
    if (!*resp) {
        stream_free(st);
    } else if (trailer_ino > 0) {
        st->resp = *resp;
        st->e = r->s->e;
        st->ino = trailer_ino;
        MHD_add_response_header(*resp, "Trailer", "Repr-Digest");
    }
    return 0;
}

/*
 * Serves file a (the steps above): 304 on a matching validator, the headers alone for HEAD,
 * else the content opened (and fetched or revalidated), whole or the requested Range (If-Range
 * against the current ETag), with the freshness the open left and whether it was a cache hit.
 */
enum MHD_Result shim__serve_file(struct shim_req *r, const struct engine_attr *a, const char *name,
                                 const char *type, const char *const *extra)
{
    struct engine *e = r->s->e;
    struct shim_waiter waiter = {.s = r->s, .sock = r->sock};
    struct engine_wait w = {.cancelled = shim__cancelled, .arg = &waiter};
    struct engine_file *f = NULL;
    struct MHD_Response *resp = NULL;
    char etag[128], cached[16] = "";
    bool changed = false;
    int64_t start = 0, len, size = 0;
    int fd = -1;

    if (!type)
        type = shim_http_content_type(name);
    etag_of(e, a->ino, etag, sizeof(etag));
    if (none_match(shim__header(r, MHD_HTTP_HEADER_IF_NONE_MATCH), etag) ||
        not_modified_since(r, a))
        return not_modified(r, etag, a);
    if (r->head)
        return head_reply(r, a, type, etag, extra);

    int n = engine_getxattr(e, a->ino, "user.upstreamfs.cached", cached, sizeof(cached) - 1);
    cached[n > 0 ? n : 0] = '\0';
    /* A large uncached file's first chunks are those the Range asks for (src/fetch/lazy.c). */
    if (shim_http_range(shim__header(r, MHD_HTTP_HEADER_RANGE), a->size, &start, &len) == 1) {
        w.first_offset = start;
        w.first_len = len;
    }
    int rc = open_content(e, a->ino, &w, &f, &fd, &size, &changed);
    if (rc < 0)
        return shim__reply_errno(r, rc, r->path);
    r->cache =
        fd >= 0 && !changed && !strcmp(cached, "complete") ? SHIM_CACHE_HIT : SHIM_CACHE_MISS;
    if (changed || !etag[0])
        etag_of(e, a->ino, etag, sizeof(etag)); /* the open may have found new content */
    /* What the open fetched or revalidated is fresh from now: its attributes say how long. */
    struct engine_attr cur = *a;
    if (r->cache == SHIM_CACHE_MISS && engine_getattr(e, a->ino, &cur) < 0)
        cur = *a;

    const char *range = shim__header(r, MHD_HTTP_HEADER_RANGE);
    const char *if_range = shim__header(r, MHD_HTTP_HEADER_IF_RANGE);
    if (range && if_range && (!etag[0] || strcmp(if_range, etag) != 0))
        range = NULL; /* the client's copy is another version: send the whole new one */
    int pr = shim_http_range(range, size, &start, &len);
    if (pr == -ERANGE) {
        engine_file_close(f);
        return range_not_satisfiable(r, size);
    }
    if (pr == 0) {
        start = 0;
        len = size;
    }
    /* A whole file streamed before its digest is known: the digest follows as a trailer. */
    int64_t trailer_ino = fd < 0 && pr == 0 && !etag[0] && accepts_trailers(r) ? a->ino : 0;
    if ((rc = body_response(r, f, fd, start, len, &waiter, trailer_ino, &resp)) < 0)
        return shim__reply_errno(r, rc, r->path);
    if (!resp)
        return MHD_NO;
    add_headers(resp, type, etag, &cur, extra);
    MHD_add_response_header(resp, "X-Upstreamfs-Cache",
                            r->cache == SHIM_CACHE_HIT ? "hit" : "miss");
    if (pr == 1) {
        char cr[80];
        snprintf(cr, sizeof(cr), "bytes %lld-%lld/%lld", (long long)start,
                 (long long)(start + len - 1), (long long)size);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
    }
    return shim__reply(r, pr == 1 ? MHD_HTTP_PARTIAL_CONTENT : MHD_HTTP_OK, resp);
}

/* An HTML index of a directory: one relative link per entry, directories ending in '/'. */
static enum MHD_Result listing(struct shim_req *r, const struct engine_attr *a)
{
    struct engine_dirent *ents = NULL;
    size_t n = 0;
    struct shim_buf b;
    char title[SHIM_PATH_MAX * 6 + 8], href[SHIM_COMPONENT_MAX * 3 + 2];
    char label[SHIM_COMPONENT_MAX * 6 + 2], date[40];
    int rc = engine_readdir(r->s->e, a->ino, &ents, &n);
    if (rc < 0)
        return shim__reply_errno(r, rc, r->path);
    shim_buf_init(&b, SHIM_INDEX_MAX);
    shim_http_html_escape(r->path, title, sizeof(title));
    rc = shim_buf_printf(&b,
                         "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                         "<title>Index of /%s%s</title></head>\n<body><h1>Index of /%s%s</h1>\n"
                         "<pre>\n",
                         title, r->path[0] ? "/" : "", title, r->path[0] ? "/" : "");
    if (rc == 0 && r->path[0])
        rc = shim_buf_puts(&b, "<a href=\"../\">../</a>\n");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        bool dir = ents[i].attr.kind == NODE_DIR;
        if (shim_http_href_escape(ents[i].name, href, sizeof(href)) < 0 ||
            shim_http_html_escape(ents[i].name, label, sizeof(label)) < 0)
            continue;
        rc = shim_buf_printf(&b, "<a href=\"%s%s\">%s%s</a>", href, dir ? "/" : "", label,
                             dir ? "/" : "");
        if (rc == 0 && ents[i].attr.mtime > 0) {
            shim_http_date((time_t)ents[i].attr.mtime, date, sizeof(date));
            rc = shim_buf_printf(&b, "  %s", date);
        }
        if (rc == 0 && !dir && ents[i].attr.size >= 0)
            rc = shim_buf_printf(&b, "  %lld", (long long)ents[i].attr.size);
        if (rc == 0)
            rc = shim_buf_puts(&b, "\n");
    }
    if (rc == 0)
        rc = shim_buf_puts(&b, "</pre>\n</body></html>\n");
    engine_dirents_free(ents, n);
    enum MHD_Result ok;
    char hex[65], etag[80] = "";
    if (rc == 0) {
        hash_sha256_hex(b.data, b.len, hex);
        snprintf(etag, sizeof(etag), "\"sha256:%s\"", hex);
    }
    if (rc < 0) {
        ok = shim__reply_errno(r, rc == -EFBIG ? -ENOMEM : rc, r->path);
    } else if (none_match(shim__header(r, MHD_HTTP_HEADER_IF_NONE_MATCH), etag)) {
        ok = not_modified(r, etag, NULL);
    } else {
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_COPY);
        if (resp) {
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/html; charset=utf-8");
            MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
            /* A listing changes as the cache fills: caches revalidate it on every use. */
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        }
        r->bytes += r->head ? 0 : b.len;
        ok = shim__reply(r, MHD_HTTP_OK, resp);
    }
    shim_buf_free(&b);
    return ok;
}

static enum MHD_Result redirect_to_dir(struct shim_req *r)
{
    static const char body[] = "moved: the directory's address ends with '/'\n";
    size_t n = strlen(r->target);
    char *loc = malloc(n + 2);
    struct MHD_Response *resp = NULL;
    if (loc) {
        memcpy(loc, r->target, n);
        memcpy(loc + n, "/", 2);
        resp = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
        if (resp) {
            MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, loc);
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
        }
        free(loc);
    }
    r->bytes += r->head ? 0 : strlen(body);
    return shim__reply(r, MHD_HTTP_MOVED_PERMANENTLY, resp);
}


/* The shim protocol of the proxy or registry named top, as the engine has it loaded; NULL if none. */
static const struct shim_protocol *protocol_of(struct shim *s, const char *top, bool *registry)
{
    enum proxy_type type;
    *registry = false;
    if (engine_proxy_type(s->e, top, &type, NULL, registry) < 0)
        return NULL;
    return shim_protocol_for_type(type);
}

static enum MHD_Result bad_request(struct shim_req *r)
{
    return shim__reply_text(r, MHD_HTTP_BAD_REQUEST,
                            "bad request path: escaped '/' where this proxy's protocol has none");
}

/* A document over the cap: a 502 that says so (the cap is documented in docs/BENCHMARKS.md). */
static enum MHD_Result too_big(struct shim_req *r)
{
    unsigned mib = (unsigned)(SHIM_DOC_MAX >> 20);
    log_warn("shim: %.200s: the document is larger than the %u MiB cap on documents", r->path, mib);
    return shim__reply_text(r, MHD_HTTP_BAD_GATEWAY,
                            "%.200s: the document is larger than the %u MiB cap on documents",
                            r->path, mib);
}

/*
 * The stored rendered document f (info) as the reply, like any stored file: a 304 on a matching
 * validator (the ETag is the rendered bytes' digest, Last-Modified when they were rendered),
 * headers alone for HEAD, else the bytes or the Range asked for, zero-copy. Rendered documents
 * are revalidated on every use (no-cache), and vary with Accept.
 */
static enum MHD_Result reply_rendered(struct shim_req *r, struct engine_file *f,
                                      const struct rendered_info *info)
{
    struct shim_waiter waiter = {.s = r->s, .sock = r->sock};
    struct engine_attr a = {.kind = NODE_FILE,
                            .size = info->size,
                            .mtime = info->rendered,
                            .is_mutable = true,
                            .fresh_for = -1};
    struct MHD_Response *resp = NULL;
    char etag[80];
    int64_t start = 0, len = info->size;
    snprintf(etag, sizeof(etag), "\"sha256:%s\"", info->digest);
    r->cache = info->made ? SHIM_CACHE_MISS : SHIM_CACHE_HIT;
    const char *const extra[] = {MHD_HTTP_HEADER_VARY, "Accept", "X-Upstreamfs-Cache",
                                 info->made ? "miss" : "hit", NULL};
    if (none_match(shim__header(r, MHD_HTTP_HEADER_IF_NONE_MATCH), etag) ||
        not_modified_since(r, &a)) {
        engine_file_close(f);
        return not_modified(r, etag, &a);
    }
    if (r->head) {
        engine_file_close(f);
        return head_reply(r, &a, info->ctype, etag, extra);
    }
    const char *range = shim__header(r, MHD_HTTP_HEADER_RANGE);
    const char *if_range = shim__header(r, MHD_HTTP_HEADER_IF_RANGE);
    if (range && if_range && strcmp(if_range, etag) != 0)
        range = NULL;
    int pr = shim_http_range(range, info->size, &start, &len);
    if (pr == -ERANGE) {
        engine_file_close(f);
        return range_not_satisfiable(r, info->size);
    }
    if (pr == 0) {
        start = 0;
        len = info->size;
    }
    int rc = body_response(r, f, engine_file_fd(f), start, len, &waiter, 0, &resp);
    if (rc < 0)
        return shim__reply_errno(r, rc, r->path);
    if (!resp)
        return MHD_NO;
    add_headers(resp, info->ctype, etag, &a, extra);
    if (pr == 1) {
        char cr[80];
        snprintf(cr, sizeof(cr), "bytes %lld-%lld/%lld", (long long)start,
                 (long long)(start + len - 1), (long long)info->size);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
    }
    return shim__reply(r, pr == 1 ? MHD_HTTP_PARTIAL_CONTENT : MHD_HTTP_OK, resp);
}

/*
 * A document route: the route's document, rewritten by the protocol for this shim, once per
 * source, variant and base (src/shim/render.c), then served as a stored file.
 */
static enum MHD_Result render(struct shim_req *r, const struct shim_protocol *d, bool registry,
                              const char *top, const char *epath,
                              const struct shim_protocol_route *rt)
{
    struct rendered_info info;
    struct engine_file *f = NULL;
    int rc = shim__rendered_open(r, d, registry, top, epath, rt, &f, &info);
    if (rc == -EFBIG)
        return too_big(r);
    if (rc < 0)
        return shim__reply_errno(r, rc, r->path);
    return reply_rendered(r, f, &info);
}

/* The engine node at path, answered as the mount shows it: a listing or the file. */
static enum MHD_Result serve_path(struct shim_req *r, const char *path, bool slash)
{
    struct engine_attr a;
    int rc = engine_resolve(r->s->e, path, &a);
    if (rc < 0)
        return shim__reply_errno(r, rc, r->path);
    if (a.kind == NODE_DIR) {
        if (path[0] && !slash)
            return redirect_to_dir(r);
        return listing(r, &a);
    }
    if (slash)
        return shim__reply_errno(r, -ENOTDIR, r->path);
    const char *base = strrchr(path, '/');
    return shim__serve_file(r, &a, base ? base + 1 : path, NULL, NULL);
}

/* A route of a protocol with its own routes (shim_protocol.route); -ENOTSUP when it has none. */
static int protocol_route(struct shim_req *r, enum MHD_Result *res)
{
    char top[SHIM_COMPONENT_MAX + 1];
    size_t n = strcspn(r->path, "/");
    if (n == 0 || n > SHIM_COMPONENT_MAX)
        return -ENOTSUP;
    snprintf(top, sizeof(top), "%.*s", (int)n, r->path);
    bool registry;
    const struct shim_protocol *d = protocol_of(r->s, top, &registry);
    if (!d || !d->route)
        return -ENOTSUP;
    struct shim_protocol_route *rt = calloc(1, sizeof(*rt));
    if (!rt)
        return -ENOMEM;
    const char *rest = r->path[n] ? r->path + n + 1 : "";
    int rc =
        d->route(rest, r->slash, r->escaped_slash, shim__header(r, MHD_HTTP_HEADER_ACCEPT), rt);
    if (rc == -ENOTSUP) {
        free(rt);
        return rc;
    }
    char *epath = NULL;
    if (rc == 0 && (epath = malloc(n + strlen(rt->path) + 2)) != NULL)
        sprintf(epath, "%s%s%s", top, rt->path[0] ? "/" : "", rt->path);
    if (rc == -EINVAL)
        *res = bad_request(r);
    else if (rc < 0)
        *res = shim__reply_errno(r, rc, r->path);
    else if (!epath)
        *res = shim__reply_errno(r, -ENOMEM, r->path);
    else if (rt->want_slash && !r->slash)
        *res = redirect_to_dir(r);
    else if (!rt->render)
        *res = serve_path(r, epath, rt->want_slash || r->slash);
    else
        *res = render(r, d, registry, top, epath, rt);
    free(epath);
    free(rt);
    return 0;
}

enum MHD_Result shim__files(struct shim_req *r)
{
    enum MHD_Result res;
    if (strcmp(r->method, "GET") != 0 && !r->head)
        return shim__reply_method(r, "GET, HEAD");
    int rc = protocol_route(r, &res);
    if (rc == 0)
        return res;
    if (rc != -ENOTSUP)
        return shim__reply_errno(r, rc, r->path);
    if (r->escaped_slash)
        return bad_request(r);
    return serve_path(r, r->path, r->slash);
}

/*
 * render: the documents of render routes (include/upstreamfs/shim_protocol.h) for the shim's
 * replies (src/shim/files.c): the route's source document opened — the engine file at its
 * path, or in a registry with local content the merge of its first upstream's document with
 * that content — and its rendering for this shim's base URL, made once per source, variant
 * and base and kept in the store (include/upstreamfs/rendered.h). A warm request opens the
 * source only to learn its digest (a read would revalidate it the same way) and reads nothing
 * whole.
 */
#include "shim_i.h"
#include "upstreamfs/configdb.h"
#include "upstreamfs/driver.h"
#include "upstreamfs/hash.h"
#include "upstreamfs/index.h"
#include "upstreamfs/rendered.h"
#include "upstreamfs/shim_protocol.h"
#include "upstreamfs/upstream.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads a whole engine file into memory (capped); the wait ends when the client goes. */
static int read_whole(struct shim_req *r, const struct engine_attr *a, char **out, size_t *len)
{
    struct shim_waiter waiter = {.s = r->s, .sock = r->sock};
    struct engine_wait w = {.cancelled = shim__cancelled, .arg = &waiter};
    return engine_read_all(r->s->e, a->ino, &w, SHIM_DOC_MAX, out, len);
}

/*
 * The absolute URL this shim serves the engine path epath at: the request's
 * scheme and Host (when it is a plain host[:port]), then the path with each
 * byte but unreserved ones, '/' and '@' percent-encoded.
 */
static char *base_url(struct shim_req *r, const char *epath)
{
    char host[300];
    const char *h = shim__header(r, MHD_HTTP_HEADER_HOST);
    bool ok = h && *h && strlen(h) < sizeof(host);
    for (const char *p = h; ok && *p; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
             strchr(".-:[]_", *p);
    if (ok)
        snprintf(host, sizeof(host), "%s", h);
    else
        snprintf(host, sizeof(host), "localhost:%u", r->s->port);
    struct shim_buf b;
    shim_buf_init(&b, strlen(epath) * 3 + sizeof(host) + 16);
    int rc = shim_buf_printf(&b, "%s://%s/", r->s->tls_cert ? "https" : "http", host);
    for (const unsigned char *p = (const unsigned char *)epath; rc == 0 && *p; p++) {
        if (isalnum(*p) || strchr("-._~/@", *p))
            rc = shim_buf_append(&b, p, 1);
        else
            rc = shim_buf_printf(&b, "%%%02X", *p);
    }
    if (rc < 0) {
        shim_buf_free(&b);
        return NULL;
    }
    return shim_buf_steal(&b, NULL);
}

/* The engine file at path, read whole: -ENOENT when it is no file. *writable: local content. */
static int read_file_at(struct shim_req *r, const char *path, char **doc, size_t *len,
                        bool *writable)
{
    struct engine_attr a;
    int rc = engine_resolve(r->s->e, path, &a);
    if (rc == 0 && a.kind != NODE_FILE)
        rc = -ENOENT;
    if (rc == 0 && writable)
        *writable = a.writable;
    return rc == 0 ? read_whole(r, &a, doc, len) : rc;
}

/*
 * A render route's source document, and its identity (rendered.h's key). A registry's merged
 * document is identified by what it is made of (the first upstream's document and the local
 * files of its directory, by digest) and merged only when it must be rendered.
 */
struct route_src {
    struct engine_file *f; /* the engine file it is (open, complete); a merge: the upstream's */
    char *doc;             /* its bytes once read */
    size_t len;
    char sha256[65];
    bool merge;                   /* doc is the merge of f (or none) and files */
    struct drv_local_file *files; /* a merge: the local files of the document's directory */
    size_t nfiles;
};

static void route_src_clear(struct route_src *src)
{
    engine_file_close(src->f);
    free(src->doc);
    engine_local_files_free(src->files, src->nfiles);
    memset(src, 0, sizeof(*src));
}

/*
 * The engine file at path as a source: opened (fetched, generated or revalidated as a read
 * would) and complete; its identity is its content's digest, read from the store's record,
 * so a document whose source did not change is never read here. -EFBIG past SHIM_DOC_MAX.
 */
static int open_source(struct shim_req *r, const char *path, struct route_src *src)
{
    struct shim_waiter waiter = {.s = r->s, .sock = r->sock};
    struct engine_wait w = {.cancelled = shim__cancelled, .arg = &waiter};
    struct engine_attr a;
    bool keep = false, changed = false;
    int rc = engine_resolve(r->s->e, path, &a);
    if (rc == 0 && a.kind != NODE_FILE)
        rc = -ENOENT;
    if (rc == 0)
        rc = engine_file_open(r->s->e, a.ino, &w, &src->f, &keep, &changed);
    if (rc == 0)
        rc = engine_file_wait(src->f, &w);
    if (rc == 0 && (uint64_t)engine_file_size(src->f) > SHIM_DOC_MAX)
        rc = -EFBIG;
    if (rc == 0 && engine_file_digest(src->f)[0])
        snprintf(src->sha256, sizeof(src->sha256), "%s", engine_file_digest(src->f));
    else if (rc == 0) { /* content the store has no digest for (local content): its bytes' */
        rc = engine_file_read_all(src->f, &w, SHIM_DOC_MAX, &src->doc, &src->len);
        if (rc == 0)
            hash_sha256_hex(src->doc, src->len, src->sha256);
    }
    return rc;
}

/*
 * The document at route_path of the first of registry top's upstreams that has one, opened as
 * a source (a missing one moves on, any other failure ends the search, as the registry's own
 * lookups do); src->f stays NULL when none has it.
 */
static int upstreams_source(struct shim_req *r, const char *top, const char *route_path,
                            struct route_src *src)
{
    struct registry g;
    struct config_error err;
    pthread_mutex_lock(&r->s->st_mu);
    int rc = configdb_registry_get(r->s->st, top, &g, &err);
    pthread_mutex_unlock(&r->s->st_mu);
    if (rc < 0)
        return rc;
    rc = -ENOENT;
    for (char **k = g.upstreams; k && *k && rc == -ENOENT; k++) {
        char *path = malloc(strlen(*k) + strlen(route_path) + 2);
        if (!path) {
            rc = -ENOMEM;
            break;
        }
        sprintf(path, "%s/%s", *k, route_path);
        rc = open_source(r, path, src);
        free(path);
        if (rc == -ENOENT) { /* an upstream without it: nothing of it kept */
            engine_file_close(src->f);
            src->f = NULL;
        }
    }
    config_registry_clear(&g);
    return rc == -ENOENT ? 0 : rc;
}

/* A merge's identity: its upstream document's and its local files' digests (and names). */
static void merge_identity(struct route_src *src)
{
    size_t total = 80, at = 0;
    for (size_t i = 0; i < src->nfiles; i++)
        total += strlen(src->files[i].name) + 67;
    char *buf = malloc(total);
    if (!buf) {
        snprintf(src->sha256, sizeof(src->sha256), "%s", "unknown"); /* matches no row */
        return;
    }
    at += (size_t)snprintf(buf, total, "merge %s\n", src->f ? src->sha256 : "-");
    for (size_t i = 0; i < src->nfiles; i++)
        at += (size_t)snprintf(buf + at, total - at, "%s %s\n", src->files[i].sha256,
                               src->files[i].name);
    hash_sha256_hex(buf, at, src->sha256);
    free(buf);
}

/*
 * The source of a render route: the engine file at epath. In a registry whose protocol merges
 * (merge_local) and that has local content for it (files in the document's directory, the
 * route's local_doc among them), the upstreams' document merged with that local content
 * (made by merge_doc when it must be rendered); the document may then exist only locally.
 */
static int route_doc(struct shim_req *r, const struct shim_protocol *d, bool registry,
                     const char *top, const char *epath, const struct shim_protocol_route *rt,
                     struct route_src *src)
{
    memset(src, 0, sizeof(*src));
    if (!registry || !d->merge_local)
        return open_source(r, epath, src);
    char *dir = strdup(epath), *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash)
        *slash = '\0';
    int rc = dir ? engine_local_files(r->s->e, dir, &src->files, &src->nfiles) : -ENOMEM;
    free(dir);
    if (rc == 0 && src->nfiles == 0) {
        engine_local_files_free(src->files, 0);
        src->files = NULL;
        return open_source(r, epath, src);
    }
    src->merge = true;
    if (rc == 0)
        rc = upstreams_source(r, top, rt->path, src);
    if (rc == 0)
        merge_identity(src);
    return rc;
}

/*
 * A registry's merged document into src->doc: the upstream's (read from src->f) with the local
 * document (when it is one of the local files, and still local) and files laid over it.
 */
static int merge_doc(struct shim_req *r, const struct shim_protocol *d, const char *top,
                     const struct shim_protocol_route *rt, struct route_src *src,
                     const struct engine_wait *w)
{
    size_t llen = 0, ulen = 0;
    char *ldoc = NULL, *udoc = NULL;
    bool local = false;
    int rc = 0;
    if (src->doc) { /* the upstream's, read whole already (content with no digest) */
        udoc = src->doc;
        ulen = src->len;
        src->doc = NULL;
    } else if (src->f) {
        rc = engine_file_read_all(src->f, w, SHIM_DOC_MAX, &udoc, &ulen);
    }
    /* the local document is one of those files: looked for there, so no upstream is asked */
    const char *lname = strrchr(rt->local_doc, '/');
    lname = lname ? lname + 1 : rt->local_doc;
    for (size_t i = 0; rc == 0 && lname[0] && i < src->nfiles && !ldoc; i++) {
        if (strcmp(src->files[i].name, lname) != 0)
            continue;
        char *lpath = malloc(strlen(top) + strlen(rt->local_doc) + 2);
        if (lpath)
            sprintf(lpath, "%s/%s", top, rt->local_doc);
        rc = lpath ? read_file_at(r, lpath, &ldoc, &llen, &local) : -ENOMEM;
        free(lpath);
        if (rc == 0 && !local) { /* replaced meanwhile by an upstream's: none of our own */
            free(ldoc);
            ldoc = NULL;
            llen = 0;
        }
    }
    if (rc == 0)
        rc = d->merge_local(rt->path, udoc, ulen, ldoc, llen, src->files, src->nfiles, &src->doc,
                            &src->len);
    free(udoc);
    free(ldoc);
    return rc;
}

/* What a render needs (rendered_make_fn's argument). */
struct render_job {
    struct shim_req *r;
    const struct shim_protocol *d;
    const char *top;
    const struct shim_protocol_route *rt;
    struct route_src *src;
    const char *base;
};

static int make_render(void *arg, char **out, size_t *len, const char **ctype)
{
    struct render_job *j = arg;
    struct shim_waiter waiter = {.s = j->r->s, .sock = j->r->sock};
    struct engine_wait w = {.cancelled = shim__cancelled, .arg = &waiter};
    int rc = 0;
    if (j->src->merge)
        rc = merge_doc(j->r, j->d, j->top, j->rt, j->src, &w);
    else if (!j->src->doc)
        rc = engine_file_read_all(j->src->f, &w, SHIM_DOC_MAX, &j->src->doc, &j->src->len);
    if (rc == 0)
        rc = j->d->render(j->src->doc, j->src->len, j->base, j->rt->variant, out, len, ctype);
    free(j->src->doc); /* the source is not needed past the render: its memory goes first */
    j->src->doc = NULL;
    return rc;
}

int shim__rendered_open(struct shim_req *r, const struct shim_protocol *d, bool registry,
                        const char *top, const char *epath, const struct shim_protocol_route *rt,
                        struct engine_file **f, struct rendered_info *info)
{
    struct route_src src;
    char *base = NULL;
    int rc = route_doc(r, d, registry, top, epath, rt, &src);
    if (rc == 0 && !(base = base_url(r, epath)))
        rc = -ENOMEM;
    if (rc == 0) {
        /* filter_key: the fingerprint of rules that filter a document at render time; none yet */
        struct rendered_key k = {.top = top,
                                 .path = epath,
                                 .source = src.sha256,
                                 .variant = rt->variant,
                                 .base = base,
                                 .filter_key = ""};
        struct render_job job = {.r = r, .d = d, .top = top, .rt = rt, .src = &src, .base = base};
        rc = engine_rendered_open(r->s->e, &k, make_render, &job, f, info);
    }
    route_src_clear(&src);
    free(base);
    return rc;
}

/*
 * pypi: a Python package repository (the "simple" API: PEP 503 HTML, PEP 691
 * JSON). The proxy's --url is the repository root; a project's page is
 * <url>simple/<normalised-name>/. There is no default URL.
 *
 *   <name>/                  a project, by its PEP 503 normalised name only (one
 *                            tree per project; "Foo_Bar" is not an alias of "foo-bar")
 *   <name>/<file>            each distribution file the page lists, wherever it is
 *                            hosted, verified against the page's sha256 (else sha512,
 *                            else sha1); immutable
 *   <name>/<file>.metadata   a file's core metadata (PEP 658), when the page offers it
 *   <name>/.simple.json      the page as a PEP 691 document whose file URLs are
 *                            relative (the escaped file name: the file beside it)
 *
 * The upstream page is a mutable document (upstream_doc_fetch: TTL,
 * conditional revalidation, stale-if-error), asked for as JSON first, as pip
 * does, and read whichever way it answers. Both forms are read into one
 * canonical form (pypi.h, src/parsers/pypi_index.c) from which everything
 * here is made, from the page the shared document cache (upstream_doc_fetch)
 * holds; the canonical form of the last page parsed is kept
 * (drv_doc_memo_use), keyed by project and sha256. File names are checked there, so a hostile page
 * cannot name a path outside its project's directory, nor one of the driver's own dot names.
 *
 * The HTTP shim serves the simple API: GET /<key>/simple/<name>/ (any
 * spelling of the name; normalised here) answers .simple.json rendered as
 * JSON or HTML as the Accept header asks (PEP 691), with every file URL
 * resolved to the shim (/<key>/<name>/<file>) and its hashes kept (in the
 * URL's "#sha256=" fragment on HTML pages); /<key>/simple/ lists the
 * projects the proxy knows. Everything else is served as the mount shows it,
 * which is why a page's URL without its trailing slash (pip always sends
 * it) is not redirected: /<key>/simple/<x> is file x of a project named
 * "simple", which the pages of that project link to.
 */
#include "upstreamfs/pypi.h"
#include "upstreamfs/driver.h"
#include "upstreamfs/fetch.h"
#include "upstreamfs/index.h"
#include "upstreamfs/log.h"
#include "upstreamfs/policy.h"
#include "upstreamfs/shim_protocol.h"
#include "upstreamfs/upstream.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define PYPI_DOC "simple.json" /* after the leading '.' */
#define PYPI_ACCEPT_UPSTREAM                                                                       \
    "Accept: application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.1, "     \
    "text/html;q=0.01"

/* ---- the driver --------------------------------------------------------------------------- */

/* What a project's page is parsed from (drv_doc_memo_use). */
struct index_src {
    struct upstream *u;
    struct upstream_doc *d;
    const char *page, *name;
};

static int index_parse(void *arg, void **parsed)
{
    const struct index_src *src = arg;
    struct pypi_index *index = NULL;
    int rc = pypi_index_parse(src->d->body, src->d->len, src->d->content_type, src->page, src->name,
                              &index);
    /* the page is not needed past its parse: not held beside what the form is used for */
    free(src->d->body);
    src->d->body = NULL;
    src->d->len = 0;
    if (rc < 0) {
        log_warn("pypi proxy %s: the index page of %s cannot be read (%s)",
                 upstream_config(src->u)->key, src->name, strerror(-rc));
        return rc;
    }
    *parsed = index;
    return 0;
}

static void index_free(void *p)
{
    pypi_index_free(p);
}

struct index_use {
    int (*fn)(const struct pypi_index *index, void *arg);
    void *arg;
    const struct proxy *cfg;
    const struct proxy *also; /* a registry's policy over the proxy, or NULL */
    const char *name;
    const char *file; /* the file looked up, or NULL */
};

/*
 * The file of the page x->file is (or the distribution of a ".metadata"), the first of the
 * two in the page's order; -1 when there is none.
 */
static ptrdiff_t file_of(const struct index_use *x, const struct pypi_index *index)
{
    static const char suffix[] = ".metadata";
    size_t n = strlen(x->file), k = sizeof(suffix) - 1;
    ptrdiff_t i = pypi_index_lookup(index, x->file), d = -1;
    if (n > k && n - k <= PYPI_NAME_MAX && strcmp(x->file + n - k, suffix) == 0) {
        char dist[PYPI_NAME_MAX + 1];
        memcpy(dist, x->file, n - k);
        dist[n - k] = '\0';
        d = pypi_index_lookup(index, dist);
    }
    return i < 0 || (d >= 0 && d < i) ? d : i;
}

/* A file of the page (or the distribution of a ".metadata") policy cfg hides: refused. */
static int file_policy(const struct index_use *x, const struct proxy *cfg,
                       const struct pypi_index *index, int64_t now)
{
    ptrdiff_t i = file_of(x, index);
    if (i < 0)
        return 0;
    char version[POLICY_VERSION_MAX + 1];
    bool has =
        policy_pypi_file_version(pypi_index_filename(index, (size_t)i), version, sizeof(version));
    int64_t published = policy_parse_time(pypi_index_upload_time(index, (size_t)i));
    enum policy_verdict v =
        policy_version_verdict(cfg, x->name, has ? version : NULL, published, now, NULL);
    return v == POLICY_PASS ? 0 : policy_refuse(cfg, x->name, has ? version : NULL, v, NULL);
}

/*
 * Runs fn on the page as the proxy's policy shows it (policy_pypi_filter). A file looked up is
 * refused when hidden (file_policy), else it is what the filtered page would show: fn runs on
 * the page, found in its table, without filtering every other file first.
 */
static int index_use(void *parsed, void *arg)
{
    const struct index_use *x = arg;
    if (!policy_active(x->cfg) && !(x->also && policy_active(x->also)))
        return x->fn(parsed, x->arg);
    int64_t now = (int64_t)time(NULL);
    if (x->file) {
        int rc = file_policy(x, x->cfg, parsed, now);
        if (rc == 0 && x->also)
            rc = file_policy(x, x->also, parsed, now);
        return rc == 0 ? x->fn(parsed, x->arg) : rc;
    }
    struct pypi_index *shown = NULL, *both = NULL;
    struct policy_filtered f;
    int rc = policy_pypi_filter(x->cfg, x->name, parsed, now, &shown, &f);
    if (rc == 0 && x->also)
        rc = policy_pypi_filter(x->also, x->name, shown, now, &both, &f);
    if (rc == 0)
        rc = x->fn(both ? both : shown, x->arg);
    pypi_index_free(both);
    pypi_index_free(shown);
    return rc;
}

/*
 * Fetches the project's page through the shared document cache and runs fn on its
 * canonical form, under the state lock (fn copies what it needs). *stale, when not NULL,
 * says the page is a stale copy.
 */
static int with_index_as(struct upstream *u, const struct proxy *also, const char *name,
                         const char *file, bool *stale,
                         int (*fn)(const struct pypi_index *index, void *arg), void *arg)
{
    struct upstream_doc d;
    memset(&d, 0, sizeof(d));
    char *page = malloc(strlen(upstream_config(u)->url) + strlen(name) + sizeof("simple//"));
    if (!page)
        return -ENOMEM;
    sprintf(page, "%ssimple/%s/", upstream_config(u)->url, name);
    struct curl_slist *h = NULL;
    int rc = fetch_header_add(&h, PYPI_ACCEPT_UPSTREAM);
    struct upstream_doc_req req = {.url = page, .headers = h, .lists = name}; /* its files */
    struct index_src src = {.u = u, .d = &d, .page = page, .name = name};
    struct index_use use = {.fn = fn,
                            .arg = arg,
                            .cfg = upstream_config(u),
                            .also = also,
                            .name = name,
                            .file = file};
    /* the page's bytes are read only when they changed: the form parsed is kept */
    if (rc == 0)
        rc = drv_doc_use(u, &req, &d, name, index_parse, &src, index_free, index_use, &use);
    curl_slist_free_all(h);
    if (stale && d.sha256[0])
        *stale = d.stale;
    upstream_doc_clear(&d);
    free(page);
    return rc;
}

static int with_index(struct upstream *u, const char *name, const char *file, bool *stale,
                      int (*fn)(const struct pypi_index *index, void *arg), void *arg)
{
    return with_index_as(u, NULL, name, file, stale, fn, arg);
}

static int exists_fn(const struct pypi_index *index, void *arg)
{
    (void)index, (void)arg;
    return 0;
}

struct emit_arg {
    char *body;
    size_t len;
};

static int emit_fn(const struct pypi_index *index, void *arg)
{
    struct emit_arg *a = arg;
    return pypi_index_emit(index, false, &a->body, &a->len);
}

/* What find_fn learns of one file. */
struct file_arg {
    const char *file;
    char *url, *expect;
    int64_t size;
};

static int find_fn(const struct pypi_index *index, void *arg)
{
    struct file_arg *a = arg;
    return pypi_index_find(index, a->file, &a->url, &a->expect, &a->size);
}

/* pypi_index_each callback: every file into a listing. */
static int list_one(void *arg, const char *file, const char *url, const char *expect, int64_t size)
{
    struct drv_entry e = {
        .kind = NODE_FILE, .size = size, .url = (char *)url, .expect = (char *)expect};
    return drv_listing_add(arg, file, &e);
}

static int list_fn(const struct pypi_index *index, void *arg)
{
    return pypi_index_each(index, list_one, arg);
}

/* Splits "<name>[/<rest>]": a normalised project name, and rest ("" for the project). */
static int project_split(const char *path, char *name, const char **rest)
{
    size_t n = strcspn(path, "/");
    if (n == 0 || n > PYPI_NAME_MAX)
        return -ENOENT;
    memcpy(name, path, n);
    name[n] = '\0';
    *rest = path[n] ? path + n + 1 : "";
    return pypi_name_is_normalised(name) ? 0 : -ENOENT;
}

static bool is_doc(const char *rest)
{
    return rest[0] == '.' && !strcmp(rest + 1, PYPI_DOC);
}

static int pypi_generate_as(struct upstream *u, const struct proxy *also, const char *path,
                            char **body, size_t *len, bool *stale)
{
    char name[PYPI_NAME_MAX + 1];
    const char *rest;
    struct emit_arg a = {0};
    if (project_split(path, name, &rest) < 0 || !is_doc(rest))
        return -ENOENT;
    int rc = with_index_as(u, also, name, NULL, stale, emit_fn, &a);
    if (rc == 0) {
        *body = a.body;
        *len = a.len;
    }
    return rc;
}

static int pypi_generate(struct upstream *u, const char *path, char **body, size_t *len,
                         bool *stale)
{
    return pypi_generate_as(u, NULL, path, body, len, stale);
}

static int pypi_lookup(struct upstream *u, const char *path, struct drv_entry *out)
{
    char name[PYPI_NAME_MAX + 1];
    const char *rest;
    if (project_split(path, name, &rest) < 0 || strchr(rest, '/'))
        return -ENOENT;
    if (!rest[0]) {
        int rc = with_index(u, name, NULL, NULL, exists_fn, NULL);
        if (rc == 0)
            out->kind = NODE_DIR;
        return rc;
    }
    if (is_doc(rest)) {
        return drv_entry_generated(u, path, "application/vnd.pypi.simple.v1+json", out);
    }
    struct file_arg a = {.file = rest};
    int rc = with_index(u, name, rest, NULL, find_fn, &a);
    if (rc < 0)
        return rc;
    out->kind = NODE_FILE;
    out->url = a.url;
    out->expect = a.expect;
    out->size = a.size;
    if (out->size < 0)
        drv_entry_size_from_head(u, out); /* the page has no size for it */
    return 0;
}

static int pypi_list(struct upstream *u, const char *dir, struct drv_listing *out)
{
    char name[PYPI_NAME_MAX + 1];
    const char *rest;
    if (!dir[0] || project_split(dir, name, &rest) < 0 || rest[0])
        return -ENOTSUP; /* the list of every project is not worth its size */
    return with_index(u, name, NULL, NULL, list_fn, out);
}

static int pypi_shim_route(const char *path, bool slash, bool escaped_slash, const char *accept,
                           struct shim_protocol_route *out)
{
    char name[PYPI_NAME_MAX + 1];
    memset(out, 0, sizeof(*out));
    if (escaped_slash)
        return -EINVAL;
    if (!strcmp(path, "simple")) {
        out->want_slash = true; /* the root page: the projects this proxy knows */
        return 0;
    }
    /* Files are fetched without a trailing slash; a project page always has one (pip adds it). */
    if (strncmp(path, "simple/", 7) != 0 || !slash || strchr(path + 7, '/'))
        return -ENOTSUP;
    if (pypi_normalise(path + 7, name, sizeof(name)) < 0)
        return -ENOENT;
    snprintf(out->path, sizeof(out->path), "%s/.%s", name, PYPI_DOC);
    out->want_slash = true;
    out->render = true;
    out->variant = (int)pypi_accept_variant(accept);
    return 0;
}

static int pypi_shim_render(const char *doc, size_t len, const char *base, int variant, char **out,
                            size_t *out_len, const char **ctype)
{
    return pypi_index_render(doc, len, base, (enum pypi_variant)variant, out, out_len, ctype);
}

static int pypi_shim_merge_local(const char *route_path, const char *doc, size_t len,
                                 const char *local_doc, size_t local_len,
                                 const struct drv_local_file *files, size_t n, char **out,
                                 size_t *out_len)
{
    (void)local_doc; /* pages are made from the files: route names no local_doc */
    (void)local_len;
    char name[PYPI_NAME_MAX + 1];
    const char *rest;
    if (project_split(route_path, name, &rest) < 0 || !is_doc(rest))
        return -ENOENT;
    return pypi_index_merge_local(doc, len, name, files, n, out, out_len);
}

static int pypi_cooldown(struct upstream *u, const struct proxy *policy, const char *path)
{
    char name[PYPI_NAME_MAX + 1];
    const char *rest;
    if (project_split(path, name, &rest) < 0 || !rest[0] || strchr(rest, '/') || is_doc(rest))
        return 0;
    /* file_policy's verdict: the proxy's, and a registry's over it */
    return with_index_as(u, policy == upstream_config(u) ? NULL : policy, name, rest, NULL,
                         exists_fn, NULL);
}

const struct driver_ops driver_pypi = {
    .type = "pypi",
    .lookup = pypi_lookup,
    .list = pypi_list,
    .generate = pypi_generate,
    .cooldown = pypi_cooldown,
    .generate_as = pypi_generate_as,
};

const struct shim_protocol shim_protocol_pypi = {
    .type = "pypi",
    .route = pypi_shim_route,
    .render = pypi_shim_render,
    .merge_local = pypi_shim_merge_local,
};

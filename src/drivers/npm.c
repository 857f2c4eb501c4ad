/*
 * npm: an npm registry (package documents, "packuments", plus tarballs).
 *
 *   <package>/                     a package, "name" or "@scope/name" (an "@scope"
 *                                  directory is accepted without asking the remote)
 *   <package>/package.json         the full document, dist.tarball of every version
 *                                  rewritten to "-/<name>-<version>.tgz" (relative
 *                                  to this file: the tarball below)
 *   <package>/.abbreviated.json    the same for the abbreviated ("corgi") document
 *   <package>/-/<name>-<version>.tgz   each tarball, wherever the document says it
 *                                  is, verified against dist.integrity (strongest
 *                                  SRI hash) or else dist.shasum
 *
 * Both documents are mutable (upstream_doc_fetch: TTL, conditional
 * revalidation, stale-if-error), fetched with the Accept header of their
 * variant and cached separately: the document cache is keyed by URL, so the
 * abbreviated one is keyed with the fragment "#abbreviated", which libcurl
 * never sends. An upstream that ignores the Accept header and answers the
 * full document for both is served as it answered. Tarballs are immutable.
 * The abbreviated document, the one npm installs from, also decides which
 * tarballs exist. File names are built from the package and version, never
 * taken from the remote's URL, so a hostile document cannot name a path
 * outside its package's "-/" directory.
 *
 * The HTTP shim serves the registry protocol: GET /<key>/<package> (scoped
 * as "@scope%2fname" or "@scope/name") answers the abbreviated document when
 * Accept asks for application/vnd.npm.install-v1+json and the full one
 * otherwise, with every tarball URL resolved against the document's own URL
 * on the shim, so it points back at the shim under the proxy's (or
 * registry's) path prefix; tarballs are served at the mount paths. There is
 * no default URL: every npm proxy names its registry with --url.
 *
 * Documents are parsed by src/parsers/npm_doc.c from the copy the shared
 * document cache (upstream_doc_fetch) holds; a document it cannot read (not
 * JSON, integers beyond 64 bits) is -EIO. The tarball table of the last
 * document parsed is kept (drv_doc_use), keyed by package and sha256: a lookup
 * of a tarball reads the document's bytes only when they changed.
 */
#include "upstreamfs/npm.h"
#include "upstreamfs/driver.h"
#include "upstreamfs/fetch.h"
#include "upstreamfs/index.h"
#include "upstreamfs/log.h"
#include "upstreamfs/policy.h"
#include "upstreamfs/shim_protocol.h"
#include "upstreamfs/upstream.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define NPM_FULL_DOC        "package.json"
#define NPM_ABBREVIATED_DOC ".abbreviated.json"
#define NPM_ACCEPT_FULL     "Accept: application/json"
#define NPM_ACCEPT_ABBREVIATED                                                                     \
    "Accept: application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"

/* ---- the driver --------------------------------------------------------------------------- */

/* A mount path split at its package: "<package>[/<rest>]". */
struct pkg_path {
    char name[NPM_NAME_MAX + 2];
    const char *rest; /* after the package and its '/', "" for the package itself */
    bool scope_only;  /* the path is just "@scope" */
};

static int pkg_split(const char *path, struct pkg_path *p)
{
    memset(p, 0, sizeof(*p));
    size_t n = strcspn(path, "/");
    if (path[0] == '@') {
        if (!path[n]) {
            p->scope_only = true;
            return npm_name_part_valid(path + 1, n - 1) ? 0 : -ENOENT;
        }
        n += 1 + strcspn(path + n + 1, "/");
    }
    if (n > NPM_NAME_MAX)
        return -ENOENT;
    memcpy(p->name, path, n);
    p->name[n] = '\0';
    p->rest = path[n] ? path + n + 1 : "";
    return npm_name_valid(p->name) ? 0 : -ENOENT;
}

/* The document's URL on the remote: scoped names as "@scope%2fname", as npm asks for them. */
static char *doc_url(const struct upstream *u, const char *name)
{
    const char *slash = name[0] == '@' ? strchr(name, '/') : NULL;
    char *a = NULL, *b = NULL, *url = NULL;
    if (slash) {
        char scope[NPM_NAME_MAX + 1];
        snprintf(scope, sizeof(scope), "%.*s", (int)(slash - name - 1), name + 1);
        a = fetch_url_escape(scope);
        b = fetch_url_escape(slash + 1);
    } else {
        a = fetch_url_escape(name);
    }
    if (a && (b || !slash) &&
        (url = malloc(strlen(upstream_config(u)->url) + strlen(a) + 8 + (b ? strlen(b) : 0))) !=
            NULL) {
        if (slash)
            sprintf(url, "%s@%s%%2f%s", upstream_config(u)->url, a, b);
        else
            sprintf(url, "%s%s", upstream_config(u)->url, a);
    }
    free(a);
    free(b);
    return url;
}

/* The document cache's request for one variant of a package's document (doc_req_clear). */
struct doc_req {
    struct upstream_doc_req req;
    char *url; /* its real URL */
    char *key; /* url, with "#abbreviated" for that variant: the cache's key */
    struct curl_slist *headers;
    char tarballs[NPM_NAME_MAX + 8]; /* the directory its versions' tarballs are in */
};

static void doc_req_clear(struct doc_req *r)
{
    curl_slist_free_all(r->headers);
    free(r->key);
    free(r->url);
    memset(r, 0, sizeof(*r));
}

/* The request for the variant asked for as it is. */
static int doc_req_make(struct upstream *u, const char *name, bool abbreviated, struct doc_req *r)
{
    memset(r, 0, sizeof(*r));
    r->url = doc_url(u, name);
    r->key = r->url ? malloc(strlen(r->url) + sizeof("#abbreviated")) : NULL;
    if (!r->key) {
        doc_req_clear(r);
        return -ENOMEM;
    }
    sprintf(r->key, "%s%s", r->url, abbreviated ? "#abbreviated" : "");
    int rc = fetch_header_add(&r->headers, abbreviated ? NPM_ACCEPT_ABBREVIATED : NPM_ACCEPT_FULL);
    snprintf(r->tarballs, sizeof(r->tarballs), "%s/-", name);
    r->req = (struct upstream_doc_req){.url = r->key, .headers = r->headers, .lists = r->tarballs};
    if (rc < 0)
        doc_req_clear(r);
    return rc;
}

/*
 * One variant of a package's document, through the document cache (no_body: its identity
 * only, upstream_doc_req.no_body).
 */
static int doc_get(struct upstream *u, const char *name, bool abbreviated, bool no_body,
                   struct upstream_doc *d)
{
    struct doc_req r;
    memset(d, 0, sizeof(*d));
    /* The publish times are in the full document only: a cooldown reads it for both. */
    if (abbreviated && policy_cooldown_applies(upstream_config(u), name))
        abbreviated = false;
    int rc = doc_req_make(u, name, abbreviated, &r);
    r.req.no_body = no_body;
    if (rc == 0)
        rc = upstream_doc_fetch(u, &r.req, d);
    doc_req_clear(&r);
    return rc;
}

/* What a tarball search looks for, under the proxy's policy (include/upstreamfs/policy.h). */
struct tarball_search {
    const struct proxy *cfg;
    const char *name, *file;
    struct drv_entry *out;
    struct drv_listing *all;
};

/* Copies the tarball named q->file into q->out, or (file NULL) every visible one into q->all;
 * a version the policy hides is left out of listings and refused by name. */
static int table_search(const struct npm_tarballs *t, const struct tarball_search *q)
{
    int64_t now = (int64_t)time(NULL);
    if (!q->all) { /* one of many thousand looked up in a listing: by its hash */
        const struct npm_tarball *tb = npm_tarballs_find(t, q->file);
        if (!tb)
            return -ENOENT;
        enum policy_verdict v =
            policy_active(q->cfg)
                ? policy_version_verdict(q->cfg, q->name, tb->version, tb->published, now, NULL)
                : POLICY_PASS;
        if (v != POLICY_PASS)
            return policy_refuse(q->cfg, q->name, tb->version, v, NULL);
        q->out->kind = NODE_FILE;
        q->out->size = -1;
        q->out->url = strdup(tb->url);
        q->out->expect = tb->expect ? strdup(tb->expect) : NULL;
        return q->out->url && (q->out->expect || !tb->expect) ? 0 : -ENOMEM;
    }
    for (size_t i = 0; i < t->n; i++) {
        const struct npm_tarball *tb = &t->items[i];
        if (policy_active(q->cfg) &&
            policy_version_verdict(q->cfg, q->name, tb->version, tb->published, now, NULL) !=
                POLICY_PASS)
            continue;
        struct drv_entry e = {.kind = NODE_FILE, .size = -1, .url = tb->url, .expect = tb->expect};
        int rc = drv_listing_add(q->all, tb->file, &e);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/*
 * Looks up a tarball of package name (file) or lists them all (file NULL,
 * into all), from the abbreviated document's table.
 */
/* What the abbreviated document of a package is parsed from (drv_doc_use). */
struct tarballs_src {
    struct upstream *u;
    const struct upstream_doc *d;
    const char *name, *url;
};

static void tarballs_free(void *p)
{
    if (p)
        npm_tarballs_clear(p);
    free(p);
}

static int tarballs_parse(void *arg, void **parsed)
{
    const struct tarballs_src *src = arg;
    struct npm_tarballs *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    int rc = npm_packument_tarballs(src->d->body, src->d->len, src->name, src->url, t);
    if (rc == -EIO)
        log_warn("npm proxy %s: the document of %s is not valid JSON", upstream_config(src->u)->key,
                 src->name);
    if (rc < 0) {
        tarballs_free(t);
        return rc;
    }
    *parsed = t;
    return 0;
}

static int tarballs_search(void *parsed, void *arg)
{
    return table_search(parsed, arg);
}

/*
 * find_tarball under policy (NULL: the proxy's). While the document is fresh and its table
 * kept, the document's bytes are not read (drv_doc_use): a directory listing's lookups of
 * each of its tarballs cost the table's search only.
 */
static int find_tarball_as(struct upstream *u, const struct proxy *policy, const char *name,
                           const char *file, struct drv_entry *out, struct drv_listing *all)
{
    struct upstream_doc d = {0};
    struct doc_req r;
    if (!policy)
        policy = upstream_config(u);
    /* a registry's cooldown over the proxy reads the times too (the full document) */
    bool full = policy_cooldown_applies(policy, name) || policy_cooldown_applies(upstream_config(u), name);
    int rc = doc_req_make(u, name, !full, &r);
    if (rc == 0) {
        struct tarballs_src src = {.u = u, .d = &d, .name = name, .url = r.url};
        struct tarball_search q = {
            .cfg = policy, .name = name, .file = file, .out = out, .all = all};
        rc = drv_doc_use(u, &r.req, &d, name, tarballs_parse, &src, tarballs_free,
                         tarballs_search, &q);
    }
    doc_req_clear(&r);
    upstream_doc_clear(&d);
    return rc;
}

static int find_tarball(struct upstream *u, const char *name, const char *file,
                        struct drv_entry *out, struct drv_listing *all)
{
    return find_tarball_as(u, NULL, name, file, out, all);
}

/*
 * The document with the versions the proxy's policy (and also's, a registry's over it: NULL
 * none) hides left out (policy_npm_filter), into *out (NULL when there is no policy: the
 * document as it came). -EIO: not JSON.
 */
static int policy_doc(struct upstream *u, const struct proxy *also, const char *name,
                      const struct upstream_doc *d, char **out, size_t *out_len)
{
    const struct proxy *cfg = upstream_config(u);
    *out = NULL;
    if (!policy_active(cfg) && !(also && policy_active(also)))
        return 0;
    json_error_t jerr;
    json_t *root = json_loadb(d->body, d->len, 0, &jerr);
    if (!json_is_object(root)) {
        json_decref(root);
        return -EIO;
    }
    struct policy_filtered f;
    int rc = policy_npm_filter(cfg, name, root, (int64_t)time(NULL), &f);
    size_t hidden = f.hidden;
    if (rc == 0 && also && (rc = policy_npm_filter(also, name, root, (int64_t)time(NULL), &f)) == 0)
        f.hidden += hidden;
    if (rc == 0 && f.hidden)
        log_debug("npm proxy %s: %zu versions of %s hidden by the policy", cfg->key, f.hidden,
                  name);
    char *s = rc == 0 ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (rc == 0 && !s)
        rc = -ENOMEM;
    if (rc == 0) {
        *out = s;
        *out_len = strlen(s);
    }
    return rc;
}

static int npm_generate_as(struct upstream *u, const struct proxy *also, const char *path,
                           char **body, size_t *len, bool *stale)
{
    struct pkg_path p;
    struct upstream_doc d;
    if (pkg_split(path, &p) < 0 || p.scope_only)
        return -ENOENT;
    bool abbreviated = strcmp(p.rest, NPM_ABBREVIATED_DOC) == 0;
    if (!abbreviated && strcmp(p.rest, NPM_FULL_DOC) != 0)
        return -ENOENT;
    /* a registry's cooldown over the proxy reads the times too */
    int rc = doc_get(u, p.name, abbreviated && !(also && policy_cooldown_applies(also, p.name)),
                     false, &d);
    if (rc == 0) {
        *stale = d.stale;
        char *shown = NULL;
        size_t shown_len = 0;
        rc = policy_doc(u, also, p.name, &d, &shown, &shown_len);
        const char *src = shown ? shown : d.body;
        size_t src_len = shown ? shown_len : d.len;
        if (rc == 0)
            rc = abbreviated ? npm_packument_rewrite_abbreviated(src, src_len, p.name, body, len)
                             : npm_packument_rewrite(src, src_len, p.name, body, len);
        free(shown);
        if (rc == -EIO)
            log_warn("npm proxy %s: the document of %s is not valid JSON", upstream_config(u)->key,
                     p.name);
    }
    upstream_doc_clear(&d);
    return rc;
}

static int npm_generate(struct upstream *u, const char *path, char **body, size_t *len, bool *stale)
{
    return npm_generate_as(u, NULL, path, body, len, stale);
}

static int npm_lookup(struct upstream *u, const char *path, struct drv_entry *out)
{
    struct pkg_path p;
    struct upstream_doc d;
    if (pkg_split(path, &p) < 0)
        return -ENOENT;
    if (p.scope_only) {
        out->kind = NODE_DIR;
        return 0;
    }
    if (!p.rest[0]) {
        /* A package exists when the registry has its (abbreviated) document. */
        int rc = doc_get(u, p.name, true, true, &d); /* its bytes are not needed */
        upstream_doc_clear(&d);
        if (rc == 0)
            out->kind = NODE_DIR;
        return rc;
    }
    if (!strcmp(p.rest, NPM_FULL_DOC) || !strcmp(p.rest, NPM_ABBREVIATED_DOC)) {
        return drv_entry_generated(u, path, "application/json", out);
    }
    if (!strcmp(p.rest, "-")) {
        out->kind = NODE_DIR;
        return 0;
    }
    if (strncmp(p.rest, "-/", 2) != 0 || strchr(p.rest + 2, '/'))
        return -ENOENT;
    int rc = find_tarball(u, p.name, p.rest + 2, out, NULL);
    if (rc == 0)
        drv_entry_size_from_head(u, out); /* the document has no tarball sizes */
    return rc;
}

static int npm_cooldown(struct upstream *u, const struct proxy *policy, const char *path)
{
    struct pkg_path p;
    if (pkg_split(path, &p) < 0 || p.scope_only || strncmp(p.rest, "-/", 2) != 0 ||
        strchr(p.rest + 2, '/'))
        return 0;
    struct drv_entry de = {0};
    int rc = find_tarball_as(u, policy, p.name, p.rest + 2, &de, NULL); /* table_search's verdict */
    drv_entry_clear(&de);
    return rc;
}

static int npm_list(struct upstream *u, const char *dir, struct drv_listing *out)
{
    struct pkg_path p;
    if (!dir[0] || pkg_split(dir, &p) < 0 || p.scope_only)
        return -ENOTSUP; /* a registry lists no packages, nor a scope's */
    if (!p.rest[0]) {
        struct drv_entry e = {.kind = NODE_DIR};
        int rc = drv_listing_add(out, "-", &e);
        if (rc == 0) {
            e.kind = NODE_FILE;
            e.is_mutable = true;
            e.size = -1;
            rc = drv_listing_add(out, NPM_FULL_DOC, &e);
        }
        return rc;
    }
    if (strcmp(p.rest, "-") != 0)
        return -ENOTSUP;
    return find_tarball(u, p.name, NULL, NULL, out);
}

static int npm_shim_route(const char *path, bool slash, bool escaped_slash, const char *accept,
                          struct shim_protocol_route *out)
{
    struct pkg_path p;
    memset(out, 0, sizeof(*out));
    if (escaped_slash && path[0] != '@')
        return -EINVAL; /* only a scoped name escapes its '/' */
    if (!path[0] || slash || pkg_split(path, &p) < 0 || p.scope_only || p.rest[0])
        return escaped_slash ? -EINVAL : -ENOTSUP; /* tarballs and the rest: as mounted */
    int n = snprintf(out->path, sizeof(out->path), "%s/%s", p.name,
                     npm_accept_abbreviated(accept) ? NPM_ABBREVIATED_DOC : NPM_FULL_DOC);
    if (n < 0 || (size_t)n >= sizeof(out->path))
        return -ENOENT;
    out->render = true;
    /* a registry's own document is the package.json written into its local content */
    n = snprintf(out->local_doc, sizeof(out->local_doc), "%s/%s", p.name, NPM_FULL_DOC);
    if (n < 0 || (size_t)n >= sizeof(out->local_doc))
        return -ENOENT;
    return 0;
}

static int npm_shim_merge_local(const char *route_path, const char *doc, size_t len,
                                const char *local_doc, size_t local_len,
                                const struct drv_local_file *files, size_t n, char **out,
                                size_t *out_len)
{
    (void)route_path; /* tarballs are named by the documents, not listed from files */
    (void)files;
    (void)n;
    return npm_packument_merge(doc, len, local_doc, local_len, out, out_len);
}

static int npm_shim_render(const char *doc, size_t len, const char *base, int variant, char **out,
                           size_t *out_len, const char **ctype)
{
    (void)variant;
    *ctype = "application/json";
    return npm_packument_render(doc, len, base, out, out_len);
}

const struct driver_ops driver_npm = {
    .type = "npm",
    .lookup = npm_lookup,
    .list = npm_list,
    .generate = npm_generate,
    .cooldown = npm_cooldown,
    .generate_as = npm_generate_as,
};

const struct shim_protocol shim_protocol_npm = {
    .type = "npm",
    .route = npm_shim_route,
    .render = npm_shim_render,
    .merge_local = npm_shim_merge_local,
};

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
 * Documents are parsed with jansson; a document it cannot read (not JSON,
 * integers beyond 64 bits) is -EIO. The tarball table of the last document
 * parsed is kept per proxy (under the state lock), keyed by the document's sha256.
 */
#include "upstreamfs/npm.h"
#include "upstreamfs/driver.h"
#include "upstreamfs/fetch.h"
#include "upstreamfs/index.h"
#include "upstreamfs/log.h"
#include "upstreamfs/shim_protocol.h"
#include "upstreamfs/upstream.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NPM_FULL_DOC        "package.json"
#define NPM_ABBREVIATED_DOC ".abbreviated.json"
#define NPM_ACCEPT_FULL     "Accept: application/json"
#define NPM_ACCEPT_ABBREVIATED                                                                     \
    "Accept: application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"
#define NPM_CORGI_TYPE "application/vnd.npm.install-v1+json"
#define NPM_FILE_MAX   255

/* ---- names -------------------------------------------------------------------------------- */

static bool part_valid(const char *s, size_t n)
{
    static const char extra[] = "-._~!*'()";
    if (n == 0 || n > NPM_NAME_MAX || s[0] == '.' || s[0] == '_' || (n == 1 && s[0] == '-'))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && !strchr(extra, c))
            return false;
    }
    return true;
}

bool npm_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > NPM_NAME_MAX)
        return false;
    if (s[0] != '@')
        return part_valid(s, n);
    const char *slash = strchr(s, '/');
    return slash && part_valid(s + 1, (size_t)(slash - s - 1)) &&
           part_valid(slash + 1, strlen(slash + 1));
}

/* The name without its scope: what tarball file names start with. */
static const char *unscoped(const char *name)
{
    const char *slash = name[0] == '@' ? strchr(name, '/') : NULL;
    return slash ? slash + 1 : name;
}

/* "<name>-<version>.tgz" into buf, or -EINVAL when the version cannot be part of a file name. */
static int tarball_file(const char *name, const char *version, char *buf, size_t len)
{
    size_t vl = strlen(version);
    if (vl == 0 || version[0] == '.')
        return -EINVAL;
    for (size_t i = 0; i < vl; i++) {
        unsigned char c = (unsigned char)version[i];
        if (c < 0x20 || c == 0x7f || c == '/' || c == '\\')
            return -EINVAL;
    }
    int n = snprintf(buf, len, "%s-%s.tgz", unscoped(name), version);
    return n > 0 && (size_t)n < len && n <= NPM_FILE_MAX ? 0 : -EINVAL;
}

/* ---- integrity ---------------------------------------------------------------------------- */

static void to_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/*
 * The strongest hash of an SRI string ("sha512-<b64> sha1-<b64>?opt ...")
 * as "algo:hex" into out; false when none is usable.
 */
static bool sri_best(const char *sri, char *out, size_t outlen)
{
    static const struct {
        const char *name;
        size_t raw;
    } algs[] = {{"sha512", 64}, {"sha256", 32}, {"sha1", 20}}; /* strongest first */
    int best = -1;
    unsigned char raw[100];
    char hex[2 * 64 + 1];
    const char *p = sri;
    while (*p) {
        p += strspn(p, " \t\r\n");
        size_t tl = strcspn(p, " \t\r\n");
        const char *dash = memchr(p, '-', tl);
        if (dash) {
            size_t al = (size_t)(dash - p);
            size_t bl = strcspn(dash + 1, "? \t\r\n");
            for (int a = 0; a < 3; a++) {
                if ((best >= 0 && a >= best) || strlen(algs[a].name) != al ||
                    strncmp(p, algs[a].name, al) != 0)
                    continue;
                size_t want = (algs[a].raw + 2) / 3 * 4;
                if (bl != want)
                    break;
                int got = EVP_DecodeBlock(raw, (const unsigned char *)dash + 1, (int)bl);
                size_t pad = (dash[bl] == '=') + (dash[bl - 1] == '=');
                if (got < 0 || (size_t)got - pad != algs[a].raw)
                    break;
                to_hex(raw, algs[a].raw, hex);
                snprintf(out, outlen, "%s:%s", algs[a].name, hex);
                best = a;
                break;
            }
        }
        p += tl;
    }
    return best >= 0;
}

/* The checksum a tarball must match, from its version's dist object; malloc'd or NULL. */
static char *dist_expect(json_t *dist)
{
    char buf[200];
    const char *integrity = json_string_value(json_object_get(dist, "integrity"));
    if (integrity && sri_best(integrity, buf, sizeof(buf)))
        return strdup(buf);
    const char *shasum = json_string_value(json_object_get(dist, "shasum"));
    if (shasum && strlen(shasum) == 40) {
        memcpy(buf, "sha1:", 5);
        for (size_t i = 0; i < 40; i++) {
            if (!isxdigit((unsigned char)shasum[i]))
                return NULL;
            buf[5 + i] = (char)tolower((unsigned char)shasum[i]);
        }
        buf[45] = '\0';
        return strdup(buf);
    }
    return NULL;
}

/* ---- documents ---------------------------------------------------------------------------- */

static json_t *load_doc(const char *body, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    if (root && !json_is_object(root)) {
        json_decref(root);
        return NULL;
    }
    if (!root)
        log_debug("npm: package document: %s (line %d)", jerr.text, jerr.line);
    return root;
}

static int dump_doc(json_t *root, char **out, size_t *out_len)
{
    char *s = json_dumps(root, JSON_COMPACT);
    if (!s)
        return -ENOMEM;
    *out = s;
    *out_len = strlen(s);
    return 0;
}

void npm_tarballs_clear(struct npm_tarballs *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->items[i].file);
        free(t->items[i].url);
        free(t->items[i].expect);
    }
    free(t->items);
    memset(t, 0, sizeof(*t));
}

static bool is_http_url(const char *u)
{
    return u && (strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0);
}

int npm_packument_tarballs(const char *body, size_t len, const char *name, const char *doc_url,
                           struct npm_tarballs *out)
{
    const char *ver;
    json_t *v;
    int rc = 0;
    memset(out, 0, sizeof(*out));
    json_t *root = load_doc(body, len);
    if (!root)
        return -EIO;
    json_t *versions = json_object_get(root, "versions");
    json_object_foreach(versions, ver, v)
    {
        char file[NPM_FILE_MAX + 1];
        json_t *dist = json_object_get(v, "dist");
        const char *tarball = json_string_value(json_object_get(dist, "tarball"));
        if (!tarball || tarball_file(name, ver, file, sizeof(file)) < 0)
            continue;
        bool dup = false;
        for (size_t i = 0; i < out->n && !dup; i++)
            dup = strcmp(out->items[i].file, file) == 0;
        char *url = dup ? NULL : fetch_url_resolve(doc_url, tarball);
        if (!is_http_url(url)) {
            free(url);
            continue;
        }
        if ((out->n & (out->n - 1)) == 0) { /* grow at powers of two */
            struct npm_tarball *ni =
                realloc(out->items, (out->n ? out->n * 2 : 8) * sizeof(*out->items));
            if (!ni) {
                free(url);
                rc = -ENOMEM;
                break;
            }
            out->items = ni;
        }
        struct npm_tarball *t = &out->items[out->n++];
        t->url = url;
        t->file = strdup(file);
        t->expect = dist_expect(dist);
        if (!t->file) {
            rc = -ENOMEM;
            break;
        }
    }
    json_decref(root);
    if (rc < 0)
        npm_tarballs_clear(out);
    return rc;
}

int npm_packument_rewrite(const char *body, size_t len, const char *name, char **out,
                          size_t *out_len)
{
    const char *ver;
    json_t *v;
    int rc = 0;
    json_t *root = load_doc(body, len);
    if (!root)
        return -EIO;
    json_object_foreach(json_object_get(root, "versions"), ver, v)
    {
        char file[NPM_FILE_MAX + 1];
        json_t *dist = json_object_get(v, "dist");
        if (!json_is_object(dist) || !json_object_get(dist, "tarball"))
            continue;
        if (tarball_file(name, ver, file, sizeof(file)) < 0) {
            json_object_del(dist, "tarball"); /* never point a client at the remote */
            continue;
        }
        char *esc = fetch_url_escape(file);
        char *rel = esc ? malloc(strlen(esc) + 3) : NULL;
        if (rel)
            sprintf(rel, "-/%s", esc);
        if (!rel || json_object_set_new(dist, "tarball", json_string(rel)) < 0)
            rc = -ENOMEM;
        free(esc);
        free(rel);
        if (rc < 0)
            break;
    }
    if (rc == 0)
        rc = dump_doc(root, out, out_len);
    json_decref(root);
    return rc;
}

int npm_packument_merge(const char *up, size_t up_len, const char *local, size_t local_len,
                        char **out, size_t *out_len)
{
    if (!up && !local)
        return -ENOENT;
    json_t *root = up ? load_doc(up, up_len) : NULL;
    json_t *over = local ? load_doc(local, local_len) : NULL;
    int rc = (up && !root) || (local && !over) ? -EIO : 0;
    const char *key;
    json_t *v;
    json_object_foreach(rc == 0 && root ? over : NULL, key, v)
    {
        json_t *mine = json_object_get(root, key);
        bool merge =
            (!strcmp(key, "versions") || !strcmp(key, "dist-tags") || !strcmp(key, "time")) &&
            json_is_object(v) && json_is_object(mine);
        if (merge ? json_object_update(mine, v) < 0 : json_object_set(root, key, v) < 0)
            rc = -ENOMEM;
        if (rc < 0)
            break;
    }
    if (rc == 0)
        rc = dump_doc(root ? root : over, out, out_len);
    json_decref(root);
    json_decref(over);
    return rc;
}

int npm_packument_render(const char *doc, size_t len, const char *base, char **out, size_t *out_len)
{
    const char *ver;
    json_t *v;
    int rc = 0;
    json_t *root = load_doc(doc, len);
    if (!root)
        return -EIO;
    json_object_foreach(json_object_get(root, "versions"), ver, v)
    {
        json_t *dist = json_object_get(v, "dist");
        const char *tarball = json_string_value(json_object_get(dist, "tarball"));
        if (!tarball)
            continue;
        char *abs = fetch_url_resolve(base, tarball);
        if (!abs) {
            json_object_del(dist, "tarball");
            continue;
        }
        if (json_object_set_new(dist, "tarball", json_string(abs)) < 0)
            rc = -ENOMEM;
        free(abs);
        if (rc < 0)
            break;
    }
    if (rc == 0)
        rc = dump_doc(root, out, out_len);
    json_decref(root);
    return rc;
}

bool npm_accept_abbreviated(const char *accept)
{
    size_t tl = strlen(NPM_CORGI_TYPE);
    for (const char *p = accept; p && *p;) {
        p += strspn(p, " \t,");
        const char *end = p + strcspn(p, ",");
        size_t mt = strcspn(p, ";,");
        while (mt > 0 && (p[mt - 1] == ' ' || p[mt - 1] == '\t'))
            mt--;
        if (mt == tl && strncasecmp(p, NPM_CORGI_TYPE, tl) == 0) {
            /* Asked for unless its q is zero. */
            bool zero = false;
            for (const char *q = p + mt; q < end; q++) {
                if (*q != ';')
                    continue;
                q += 1 + strspn(q + 1, " \t");
                if (q + 1 < end && (q[0] == 'q' || q[0] == 'Q') && q[1] == '=')
                    zero = strtod(q + 2, NULL) <= 0.0;
            }
            if (!zero)
                return true;
        }
        p = end;
    }
    return false;
}

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
            return part_valid(path + 1, n - 1) ? 0 : -ENOENT;
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

/* One variant of a package's document, through the document cache. *url is its real URL. */
static int doc_get(struct upstream *u, const char *name, bool abbreviated, struct upstream_doc *d,
                   char **url_out)
{
    memset(d, 0, sizeof(*d));
    char *url = doc_url(u, name);
    if (!url)
        return -ENOMEM;
    char *key = malloc(strlen(url) + sizeof("#abbreviated"));
    if (!key) {
        free(url);
        return -ENOMEM;
    }
    sprintf(key, "%s%s", url, abbreviated ? "#abbreviated" : "");
    struct curl_slist *h = NULL;
    int rc = fetch_header_add(&h, abbreviated ? NPM_ACCEPT_ABBREVIATED : NPM_ACCEPT_FULL);
    struct upstream_doc_req req = {.url = key, .headers = h};
    if (rc == 0)
        rc = upstream_doc_fetch(u, &req, d);
    curl_slist_free_all(h);
    free(key);
    if (rc == 0 && url_out)
        *url_out = url;
    else
        free(url);
    return rc;
}

/* The tarball table the proxy keeps: the last abbreviated document parsed. */
struct npm_state {
    char name[NPM_NAME_MAX + 2];
    char sha[65];
    struct npm_tarballs t;
};

static void state_free(void *p)
{
    struct npm_state *s = p;
    if (!s)
        return;
    npm_tarballs_clear(&s->t);
    free(s);
}

/* Copies the tarball named file into out, or (file NULL) every tarball into all. */
static int table_search(const struct npm_tarballs *t, const char *file, struct drv_entry *out,
                        struct drv_listing *all)
{
    for (size_t i = 0; i < t->n; i++) {
        const struct npm_tarball *tb = &t->items[i];
        if (all) {
            struct drv_entry e = {
                .kind = NODE_FILE, .size = -1, .url = tb->url, .expect = tb->expect};
            int rc = drv_listing_add(all, tb->file, &e);
            if (rc < 0)
                return rc;
        } else if (strcmp(tb->file, file) == 0) {
            out->kind = NODE_FILE;
            out->size = -1;
            out->url = strdup(tb->url);
            out->expect = tb->expect ? strdup(tb->expect) : NULL;
            return out->url && (out->expect || !tb->expect) ? 0 : -ENOMEM;
        }
    }
    return all ? 0 : -ENOENT;
}

/*
 * Looks up a tarball of package name (file) or lists them all (file NULL,
 * into all), from the abbreviated document's table.
 */
static int find_tarball(struct upstream *u, const char *name, const char *file,
                        struct drv_entry *out, struct drv_listing *all)
{
    struct upstream_doc d;
    char *url = NULL;
    struct npm_state *ns = NULL;
    int rc = doc_get(u, name, true, &d, &url);
    if (rc < 0)
        goto out;
    upstream_state_lock(u);
    struct npm_state *s = upstream_state(u);
    if (s && strcmp(s->name, name) == 0 && strcmp(s->sha, d.sha256) == 0) {
        rc = table_search(&s->t, file, out, all);
        upstream_state_unlock(u);
        goto out;
    }
    upstream_state_unlock(u);
    if (!(ns = calloc(1, sizeof(*ns)))) {
        rc = -ENOMEM;
        goto out;
    }
    if ((rc = npm_packument_tarballs(d.body, d.len, name, url, &ns->t)) < 0) {
        if (rc == -EIO)
            log_warn("npm proxy %s: the document of %s is not valid JSON", upstream_config(u)->key,
                     name);
        goto out;
    }
    snprintf(ns->name, sizeof(ns->name), "%s", name);
    memcpy(ns->sha, d.sha256, sizeof(ns->sha));
    rc = table_search(&ns->t, file, out, all);
    upstream_state_lock(u);
    upstream_set_state(u, ns, state_free);
    ns = NULL;
    upstream_state_unlock(u);
out:
    state_free(ns);
    free(url);
    upstream_doc_clear(&d);
    return rc;
}

static int npm_generate(struct upstream *u, const char *path, char **body, size_t *len, bool *stale)
{
    struct pkg_path p;
    struct upstream_doc d;
    if (pkg_split(path, &p) < 0 || p.scope_only)
        return -ENOENT;
    bool abbreviated = strcmp(p.rest, NPM_ABBREVIATED_DOC) == 0;
    if (!abbreviated && strcmp(p.rest, NPM_FULL_DOC) != 0)
        return -ENOENT;
    int rc = doc_get(u, p.name, abbreviated, &d, NULL);
    if (rc == 0) {
        *stale = d.stale;
        rc = npm_packument_rewrite(d.body, d.len, p.name, body, len);
        if (rc == -EIO)
            log_warn("npm proxy %s: the document of %s is not valid JSON", upstream_config(u)->key,
                     p.name);
    }
    upstream_doc_clear(&d);
    return rc;
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
        int rc = doc_get(u, p.name, true, &d, NULL);
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
};

const struct shim_protocol shim_protocol_npm = {
    .type = "npm",
    .route = npm_shim_route,
    .render = npm_shim_render,
    .merge_local = npm_shim_merge_local,
};

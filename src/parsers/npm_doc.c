/*
 * npm_doc: npm package documents ("packuments"), parsed and rewritten without I/O
 * (include/upstreamfs/npm.h): package names, the tarball table with each tarball's
 * strongest integrity hash, the rewrite the mount keeps, a registry's merge with its local
 * document, and the render for the shim. The driver is src/drivers/npm.c.
 *
 * The tarball table and the rewrites read the text in place (src/parsers/json_stream.c, no
 * tree); the registry merge parses with jansson. A document jansson cannot read (not JSON,
 * integers beyond 64 bits) is -EIO either way.
 */
#include "upstreamfs/npm.h"
#include "upstreamfs/accept.h"
#include "upstreamfs/fetch.h"
#include "upstreamfs/json_stream.h"
#include "upstreamfs/log.h"
#include "upstreamfs/policy.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NPM_CORGI_TYPE "application/vnd.npm.install-v1+json"
#define NPM_FILE_MAX   255

/* ---- names -------------------------------------------------------------------------------- */

bool npm_name_part_valid(const char *s, size_t n)
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
        return npm_name_part_valid(s, n);
    const char *slash = strchr(s, '/');
    return slash && npm_name_part_valid(s + 1, (size_t)(slash - s - 1)) &&
           npm_name_part_valid(slash + 1, strlen(slash + 1));
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

/* The checksum a tarball must match, from its dist's integrity or shasum; malloc'd or NULL. */
static char *dist_expect(const char *integrity, const char *shasum)
{
    char buf[200];
    if (integrity && sri_best(integrity, buf, sizeof(buf)))
        return strdup(buf);
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
        free(t->items[i].version);
    }
    free(t->items);
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

static bool is_http_url(const char *u)
{
    return u && (strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0);
}

/*
 * The tarball table is read from the text in place (json_stream.h), as jansson would read it:
 * of repeated members the last one counts ("versions", "time", a version's "dist", its
 * "tarball"); a repeated version keeps its first place and its last usable tarball. Files are
 * found by a hash of their names (open addressing over item indexes + 1, kept in the table for
 * npm_tarballs_find), so a table of many thousand versions is built in linear time.
 */
struct tb_build {
    const char *text;
    size_t len;
    const char *name, *doc_url;
    struct npm_tarballs *out;
};

/* The slot of file in t's hash: the one holding it, or the empty one where it would go. */
static size_t *tb_slot(const struct npm_tarballs *t, const char *file)
{
    size_t h = 14695981039346656037u;
    for (const char *p = file; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211u;
    for (size_t i = h & (t->nslots - 1);; i = (i + 1) & (t->nslots - 1))
        if (!t->slots[i] || strcmp(t->items[t->slots[i] - 1].file, file) == 0)
            return &t->slots[i];
}

const struct npm_tarball *npm_tarballs_find(const struct npm_tarballs *t, const char *file)
{
    size_t *slot = t->nslots ? tb_slot(t, file) : NULL;
    return slot && *slot ? &t->items[*slot - 1] : NULL;
}

/* The strings of a version's dist object at dist: tarball URL resolved, and the expectation. */
static int tb_dist(struct tb_build *b, size_t dist, char **url, char **expect)
{
    static const char *const keys[] = {"tarball", "integrity", "shasum"};
    struct json_member m;
    int err = 0;
    char *v[3] = {NULL, NULL, NULL};
    for (size_t i = 0; i < 3 && !err; i++)
        if (json_stream_find(b->text, b->len, dist, keys[i], &m))
            err = json_stream_dup(b->text, m.value, m.value_end, &v[i]);
    char *tarball = v[0], *integrity = v[1], *shasum = v[2];
    *url = tarball && !err ? fetch_url_resolve(b->doc_url, tarball) : NULL;
    if (!is_http_url(*url)) {
        free(*url);
        *url = NULL;
    }
    *expect = *url ? dist_expect(integrity, shasum) : NULL;
    free(tarball);
    free(integrity);
    free(shasum);
    return err;
}

/* One member vm of "versions": its tarball added (or, a repeated version, replaced). */
static int tb_version(struct tb_build *b, const struct json_member *vm)
{
    char ver[NPM_FILE_MAX + 1], file[NPM_FILE_MAX + 1];
    struct json_member dm;
    char *url = NULL, *expect = NULL;
    if (json_stream_string(b->text, vm->key, vm->key_end, ver, sizeof(ver)) < 0 ||
        tarball_file(b->name, ver, file, sizeof(file)) < 0 ||
        !json_stream_find(b->text, b->len, vm->value, "dist", &dm) || b->text[dm.value] != '{')
        return 0;
    int rc = tb_dist(b, dm.value, &url, &expect);
    if (rc < 0 || !url) {
        free(url);
        free(expect);
        return rc;
    }
    struct npm_tarballs *out = b->out;
    size_t *slot = tb_slot(out, file);
    if (*slot) { /* a repeated version: its last usable member */
        struct npm_tarball *t = &out->items[*slot - 1];
        free(t->url);
        free(t->expect);
        t->url = url;
        t->expect = expect;
        return 0;
    }
    struct npm_tarball *t = &out->items[out->n];
    *t = (struct npm_tarball){.url = url, .expect = expect, .published = -1};
    t->file = strdup(file);
    t->version = strdup(ver);
    *slot = ++out->n;
    return t->file && t->version ? 0 : -ENOMEM;
}

/* The publish times of the table's versions, from the object at obj ("time"). */
static int tb_times(struct tb_build *b, size_t obj)
{
    struct json_member m;
    size_t pos = obj;
    char ver[NPM_FILE_MAX + 1], file[NPM_FILE_MAX + 1], when[80];
    while (json_stream_member(b->text, b->len, &pos, &m)) {
        if (json_stream_string(b->text, m.key, m.key_end, ver, sizeof(ver)) < 0 ||
            tarball_file(b->name, ver, file, sizeof(file)) < 0)
            continue;
        size_t *slot = tb_slot(b->out, file);
        if (!*slot)
            continue;
        int64_t at = -1; /* the last member counts, whatever its value */
        if (b->text[m.value] == '"' &&
            json_stream_string(b->text, m.value, m.value_end, when, sizeof(when)) == 0)
            at = policy_parse_time(when);
        b->out->items[*slot - 1].published = at;
    }
    return 0;
}

int npm_packument_tarballs(const char *body, size_t len, const char *name, const char *doc_url,
                           struct npm_tarballs *out)
{
    struct json_member vs, tm, m;
    memset(out, 0, sizeof(*out));
    if (json_stream_check(body, len) < 0) {
        log_debug("npm: package document %s: not a JSON object", name);
        return -EIO;
    }
    struct tb_build b = {.text = body, .len = len, .name = name, .doc_url = doc_url, .out = out};
    if (!json_stream_find(body, len, 0, "versions", &vs) || body[vs.value] != '{')
        return 0;
    size_t n = 0, pos = vs.value;
    while (json_stream_member(body, len, &pos, &m))
        n++;
    if (n == 0)
        return 0;
    for (out->nslots = 16; out->nslots < 2 * n; out->nslots *= 2)
        ;
    out->slots = calloc(out->nslots, sizeof(*out->slots));
    out->items = calloc(n, sizeof(*out->items));
    int rc = out->slots && out->items ? 0 : -ENOMEM;
    for (pos = vs.value; rc == 0 && json_stream_member(body, len, &pos, &m);)
        rc = tb_version(&b, &m);
    if (rc == 0 && out->n && json_stream_find(body, len, 0, "time", &tm) && body[tm.value] == '{')
        rc = tb_times(&b, tm.value);
    if (rc < 0)
        npm_tarballs_clear(out);
    return rc;
}

/* ---- rewrites without a tree (include/upstreamfs/json_stream.h) ------------------------ */

/* The members of a version an install needs: those npm's registry keeps in its corgi form. */
/* clang-format off */
static const char *const corgi_version_keys[] = {
    "name", "version", "deprecated", "dependencies", "optionalDependencies", "devDependencies",
    "bundleDependencies", "peerDependencies", "peerDependenciesMeta", "bin", "directories",
    "dist", "engines", "cpu", "os", "libc", "_hasShrinkwrap", "hasInstallScript", NULL};
/* clang-format on */

/* One rewrite of a checked document: what it writes, and how tarball URLs change. */
struct rw {
    const char *text;
    size_t len;
    const char *name; /* the mount's rewrite: tarballs become "-/<name>-<version>.tgz" */
    const char *base; /* the shim's render: tarball URLs resolved against base */
    bool abbreviated;
    struct json_out o;
};

static bool key_in(const struct rw *w, const struct json_member *m, const char *const *keys)
{
    for (size_t i = 0; keys[i]; i++)
        if (json_stream_key_is(w->text, m->key, m->key_end, keys[i]))
            return true;
    return false;
}

/* Writes the member's key (after a ',' unless it is the first) and the ':'. */
static void put_key(struct rw *w, const struct json_member *m, bool *first)
{
    if (!*first)
        json_out_put(&w->o, ",", 1);
    *first = false;
    json_out_put(&w->o, w->text + m->key, m->key_end - m->key);
    json_out_put(&w->o, ":", 1);
}

/* The member's value copied as it is. */
static void put_member(struct rw *w, const struct json_member *m, bool *first)
{
    put_key(w, m, first);
    json_out_value(&w->o, w->text, m->value, m->value_end);
}

/*
 * A version's "tarball" member: the mount's relative name for version ver (NULL: a version no
 * file name can hold: left out), or the URL resolved against base (a string only; left out
 * when it does not resolve).
 */
static void put_tarball(struct rw *w, const struct json_member *m, const char *ver, bool *first)
{
    if (w->name) {
        char file[NPM_FILE_MAX + 1];
        if (!ver || tarball_file(w->name, ver, file, sizeof(file)) < 0)
            return; /* never point a client at the remote */
        char *esc = fetch_url_escape(file);
        char *rel = esc ? malloc(strlen(esc) + 3) : NULL;
        if (rel) {
            sprintf(rel, "-/%s", esc);
            put_key(w, m, first);
            json_out_string(&w->o, rel);
        } else {
            w->o.err = -ENOMEM;
        }
        free(esc);
        free(rel);
        return;
    }
    if (w->text[m->value] != '"') {
        put_member(w, m, first);
        return;
    }
    size_t cap = m->value_end - m->value;
    char *url = malloc(cap);
    char *abs = url && json_stream_string(w->text, m->value, m->value_end, url, cap) == 0
                    ? fetch_url_resolve(w->base, url)
                    : NULL;
    if (!url)
        w->o.err = -ENOMEM;
    if (abs) {
        put_key(w, m, first);
        json_out_string(&w->o, abs);
    }
    free(url);
    free(abs);
}

static void put_dist(struct rw *w, const struct json_member *dm, const char *ver)
{
    struct json_member m;
    size_t pos = dm->value;
    bool first = true;
    json_out_put(&w->o, "{", 1);
    while (json_stream_member(w->text, w->len, &pos, &m)) {
        if (json_stream_key_is(w->text, m.key, m.key_end, "tarball"))
            put_tarball(w, &m, ver, &first);
        else
            put_member(w, &m, &first);
    }
    json_out_put(&w->o, "}", 1);
}

/* Whether a version's scripts (an object) name an install script. */
static bool install_script(const struct rw *w, const struct json_member *sm)
{
    static const char *const hooks[] = {"preinstall", "install", "postinstall", NULL};
    struct json_member m;
    size_t pos = sm->value;
    while (w->text[sm->value] == '{' && json_stream_member(w->text, w->len, &pos, &m))
        if (key_in(w, &m, hooks))
            return true;
    return false;
}

/* One version (its member vm of "versions"): dist's tarball rewritten; abbreviated: the corgi. */
static void put_version(struct rw *w, const struct json_member *vm)
{
    char ver[NPM_FILE_MAX + 1];
    bool has_ver = json_stream_string(w->text, vm->key, vm->key_end, ver, sizeof(ver)) == 0;
    if (w->text[vm->value] != '{') {
        if (w->abbreviated)
            json_out_put(&w->o, "{}", 2);
        else
            json_out_value(&w->o, w->text, vm->value, vm->value_end);
        return;
    }
    struct json_member m;
    size_t pos = vm->value;
    bool first = true, has_flag = false, scripts = false;
    json_out_put(&w->o, "{", 1);
    while (json_stream_member(w->text, w->len, &pos, &m)) {
        if (w->abbreviated && json_stream_key_is(w->text, m.key, m.key_end, "scripts"))
            scripts = scripts || install_script(w, &m);
        if (w->abbreviated && !key_in(w, &m, corgi_version_keys))
            continue;
        has_flag = has_flag || json_stream_key_is(w->text, m.key, m.key_end, "hasInstallScript");
        if (w->text[m.value] == '{' && json_stream_key_is(w->text, m.key, m.key_end, "dist")) {
            put_key(w, &m, &first);
            put_dist(w, &m, has_ver ? ver : NULL);
        } else {
            put_member(w, &m, &first);
        }
    }
    if (w->abbreviated && !has_flag && scripts)
        json_out_puts(&w->o, first ? "\"hasInstallScript\":true" : ",\"hasInstallScript\":true");
    json_out_put(&w->o, "}", 1);
}

static void put_versions(struct rw *w, const struct json_member *vs)
{
    struct json_member m;
    size_t pos = vs->value;
    bool first = true;
    json_out_put(&w->o, "{", 1);
    while (json_stream_member(w->text, w->len, &pos, &m)) {
        put_key(w, &m, &first);
        put_version(w, &m);
    }
    json_out_put(&w->o, "}", 1);
}

/*
 * Abbreviated: the "modified" the document lacks at its top, from time.modified (a string), as
 * npm's registry writes it; *has_versions says whether it has any "versions" member.
 */
static void put_modified(struct rw *w, bool *first, bool *has_versions)
{
    struct json_member m, t, found = {0};
    size_t pos = 0, tpos;
    bool have = false, own = false;
    *has_versions = false;
    while (json_stream_member(w->text, w->len, &pos, &m)) {
        bool str = w->text[m.value] == '"';
        *has_versions = *has_versions || json_stream_key_is(w->text, m.key, m.key_end, "versions");
        own = own || (str && json_stream_key_is(w->text, m.key, m.key_end, "modified"));
        if (w->text[m.value] != '{' || !json_stream_key_is(w->text, m.key, m.key_end, "time"))
            continue;
        for (tpos = m.value; json_stream_member(w->text, w->len, &tpos, &t);) {
            if (w->text[t.value] == '"' && json_stream_key_is(w->text, t.key, t.key_end, "modified")) {
                found = t;
                have = true;
            }
        }
    }
    if (have && !own) {
        json_out_puts(&w->o, "\"modified\":");
        json_out_put(&w->o, w->text + found.value, found.value_end - found.value);
        *first = false;
    }
}

/* The rewrite of w's document (checked), into *out. */
static int rw_run(struct rw *w, char **out, size_t *out_len)
{
    static const char *const corgi_top[] = {"name", "modified", "dist-tags", "versions", NULL};
    struct json_member m;
    size_t pos = 0;
    bool first = true, has_versions = true;
    int rc = json_stream_check(w->text, w->len);
    if (rc < 0)
        return rc;
    /* the output is about the input's size (a render adds the base to every tarball) */
    json_out_init(&w->o, w->abbreviated ? w->len / 2 : w->len + w->len / 8);
    json_out_put(&w->o, "{", 1);
    if (w->abbreviated)
        put_modified(w, &first, &has_versions);
    while (json_stream_member(w->text, w->len, &pos, &m)) {
        bool versions = json_stream_key_is(w->text, m.key, m.key_end, "versions");
        if (w->abbreviated &&
            (!key_in(w, &m, corgi_top) ||
             (json_stream_key_is(w->text, m.key, m.key_end, "modified") &&
              w->text[m.value] != '"')))
            continue;
        if (versions && w->text[m.value] == '{') {
            put_key(w, &m, &first);
            put_versions(w, &m);
        } else if (versions && w->abbreviated) {
            put_key(w, &m, &first);
            json_out_put(&w->o, "{}", 2);
        } else {
            put_member(w, &m, &first);
        }
    }
    if (!has_versions)
        json_out_puts(&w->o, first ? "\"versions\":{}" : ",\"versions\":{}");
    json_out_put(&w->o, "}", 1);
    return json_out_finish(&w->o, out, out_len);
}

int npm_packument_rewrite(const char *body, size_t len, const char *name, char **out,
                          size_t *out_len)
{
    struct rw w = {.text = body, .len = len, .name = name};
    return rw_run(&w, out, out_len);
}

int npm_packument_rewrite_abbreviated(const char *body, size_t len, const char *name, char **out,
                                      size_t *out_len)
{
    struct rw w = {.text = body, .len = len, .name = name, .abbreviated = true};
    return rw_run(&w, out, out_len);
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
    struct rw w = {.text = doc, .len = len, .base = base};
    return rw_run(&w, out, out_len);
}

bool npm_accept_abbreviated(const char *accept)
{
    struct accept_range r;
    size_t tl = strlen(NPM_CORGI_TYPE);
    /* Asked for unless its q is zero. */
    for (const char *p = accept; accept_next(&p, &r);)
        if (r.len == tl && strncasecmp(r.type, NPM_CORGI_TYPE, tl) == 0 && !(r.q <= 0.0))
            return true;
    return false;
}

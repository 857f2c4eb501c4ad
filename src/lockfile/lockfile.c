/*
 * lockfile: parsers of package-lock.json, requirements.txt, Chart.lock, image lists and
 * Maven dependency lists, and the mount paths of what they name (include/upstreamfs/lockfile.h).
 */
#include "upstreamfs/lockfile.h"
#include "upstreamfs/npm.h"
#include "upstreamfs/oci.h"
#include "upstreamfs/pypi.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define LINE_MAX_LEN 16384 /* a longer line (joined continuations) is refused */

static const struct {
    const char *name;
    enum lockfile_format f;
} formats[] = {{"npm", LOCKFILE_NPM},       {"pip", LOCKFILE_PIP},    {"pypi", LOCKFILE_PIP},
               {"helm", LOCKFILE_HELM},     {"images", LOCKFILE_IMAGES}, {"image", LOCKFILE_IMAGES},
               {"docker", LOCKFILE_IMAGES}, {"maven", LOCKFILE_MAVEN}};

int lockfile_format_parse(const char *s, enum lockfile_format *out)
{
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
        if (!strcmp(s, formats[i].name)) {
            *out = formats[i].f;
            return 0;
        }
    return -EINVAL;
}

const char *lockfile_format_name(enum lockfile_format f)
{
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
        if (formats[i].f == f)
            return formats[i].name;
    return "auto";
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static bool is_scope(const char *s, size_t n)
{
    static const char *const scopes[] = {"compile", "runtime", "test", "provided", "system",
                                         "import"};
    for (size_t i = 0; i < sizeof(scopes) / sizeof(scopes[0]); i++)
        if (strlen(scopes[i]) == n && !strncmp(s, scopes[i], n))
            return true;
    return false;
}

/* A Maven dependency:list entry's first token: 5 or 6 ':'-separated fields ending in a scope. */
static bool maven_token(const char *line, size_t n)
{
    while (n && isspace((unsigned char)*line))
        line++, n--;
    if (n >= 6 && !strncmp(line, "[INFO]", 6))
        line += 6, n -= 6;
    while (n && isspace((unsigned char)*line))
        line++, n--;
    size_t tok = 0, colons = 0, last = 0;
    while (tok < n && !isspace((unsigned char)line[tok])) {
        if (line[tok] == ':')
            colons++, last = tok + 1;
        tok++;
    }
    return (colons == 4 || colons == 5) && is_scope(line + last, tok - last);
}

enum lockfile_format lockfile_detect(const char *filename, const char *buf, size_t len)
{
    const char *base = filename ? strrchr(filename, '/') : NULL;
    base = base ? base + 1 : filename ? filename : "";
    if (!strcmp(base, "package-lock.json") || !strcmp(base, "npm-shrinkwrap.json"))
        return LOCKFILE_NPM;
    if (!strcmp(base, "Chart.lock"))
        return LOCKFILE_HELM;
    if (!strncmp(base, "requirements", 12))
        return LOCKFILE_PIP;
    size_t i = 0;
    while (i < len && isspace((unsigned char)buf[i]))
        i++;
    if (i < len && buf[i] == '{')
        return LOCKFILE_NPM;
    /* Line by line: a YAML "dependencies:", a pin, a Maven entry. */
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(buf + at, '\n', len - at);
        size_t n = nl ? (size_t)(nl - (buf + at)) : len - at;
        const char *l = buf + at;
        if (n >= 13 && !strncmp(l, "dependencies:", 13))
            return LOCKFILE_HELM;
        if (maven_token(l, n))
            return LOCKFILE_MAVEN;
        if (n && l[0] != '#' && memchr(l, '=', n) && n > 1) {
            for (size_t k = 0; k + 1 < n; k++)
                if (l[k] == '=' && l[k + 1] == '=')
                    return LOCKFILE_PIP;
        }
        at += n + 1;
    }
    return LOCKFILE_IMAGES;
}

void lockfile_free(struct lockfile *lf)
{
    for (size_t i = 0; lf && i < lf->n; i++) {
        free(lf->items[i].name);
        free(lf->items[i].version);
        free(lf->items[i].kind);
    }
    if (lf) {
        free(lf->items);
        lf->items = NULL;
        lf->n = 0;
    }
}

/* Appends an item (copies of the strings); -EFBIG past the cap. Duplicates: merge_duplicates. */
static int add_item(struct lockfile *lf, size_t *cap, const char *name, size_t nlen,
                    const char *version, size_t vlen, const char *kind,
                    struct lockfile_item **added)
{
    if (lf->n >= LOCKFILE_MAX_ITEMS)
        return -EFBIG;
    if (lf->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 32;
        struct lockfile_item *ni = realloc(lf->items, nc * sizeof(*ni));
        if (!ni)
            return -ENOMEM;
        lf->items = ni;
        *cap = nc;
    }
    struct lockfile_item *it = &lf->items[lf->n];
    memset(it, 0, sizeof(*it));
    it->name = strndup(name, nlen);
    it->version = strndup(version, vlen);
    it->kind = kind ? strdup(kind) : NULL;
    if (!it->name || !it->version || (kind && !it->kind)) {
        free(it->name);
        free(it->version);
        free(it->kind);
        return -ENOMEM;
    }
    lf->n++;
    *added = it;
    return 0;
}

static int cmp_items(const struct lockfile_item *a, const struct lockfile_item *b)
{
    int c = strcmp(a->name, b->name);
    if (!c)
        c = strcmp(a->version, b->version);
    if (!c)
        c = strcmp(a->kind ? a->kind : "", b->kind ? b->kind : "");
    return c;
}

static int cmp_index(const void *a, const void *b, void *items)
{
    const struct lockfile_item *base = items;
    size_t i = *(const size_t *)a, k = *(const size_t *)b;
    int c = cmp_items(&base[i], &base[k]);
    return c ? c : (i > k) - (i < k);
}

static void add_hash(struct lockfile_item *it, const struct hash_expect *h);

/*
 * One item per name, version and kind (npm's nested copies, a pin written twice), in the
 * order of first appearance, with the hashes of all: sorted once, O(n log n).
 */
static int merge_duplicates(struct lockfile *lf)
{
    if (lf->n < 2)
        return 0;
    size_t *idx = malloc(lf->n * sizeof(*idx));
    bool *gone = calloc(lf->n, sizeof(*gone));
    if (!idx || !gone) {
        free(idx);
        free(gone);
        return -ENOMEM;
    }
    for (size_t i = 0; i < lf->n; i++)
        idx[i] = i;
    qsort_r(idx, lf->n, sizeof(*idx), cmp_index, lf->items);
    for (size_t i = 1, first = idx[0]; i < lf->n; i++) {
        struct lockfile_item *it = &lf->items[idx[i]];
        if (cmp_items(it, &lf->items[first])) {
            first = idx[i];
            continue;
        }
        for (size_t h = 0; h < it->nhashes; h++)
            add_hash(&lf->items[first], &it->hashes[h]);
        gone[idx[i]] = true;
    }
    size_t o = 0;
    for (size_t i = 0; i < lf->n; i++) {
        if (gone[i]) {
            free(lf->items[i].name);
            free(lf->items[i].version);
            free(lf->items[i].kind);
        } else {
            lf->items[o++] = lf->items[i];
        }
    }
    lf->n = o;
    free(idx);
    free(gone);
    return 0;
}

static void add_hash(struct lockfile_item *it, const struct hash_expect *h)
{
    for (size_t i = 0; i < it->nhashes; i++)
        if (it->hashes[i].algo == h->algo && !strcmp(it->hashes[i].hex, h->hex))
            return;
    if (it->nhashes < LOCKFILE_MAX_HASHES)
        it->hashes[it->nhashes++] = *h;
}

/* An SRI "sha1-<base64>" (hash_expect_parse reads "sha512-"): 20 bytes, 28 characters. */
static int sri_sha1(const char *s, size_t n, struct hash_expect *out)
{
    unsigned char raw[24];
    if (n != 5 + 28 || strncmp(s, "sha1-", 5))
        return -EINVAL;
    if (EVP_DecodeBlock(raw, (const unsigned char *)s + 5, 28) != 21 || s[5 + 27] != '=')
        return -EINVAL;
    out->algo = HASH_SHA1;
    hash_hex_encode(raw, 20, out->hex);
    return 0;
}

/* npm's integrity: space-separated SRI hashes; sha512 and sha1 are kept, others ignored. */
static int npm_integrity(struct lockfile_item *it, const char *sri, char *err, size_t errlen)
{
    for (const char *p = sri; *p;) {
        p += strspn(p, " \t\n");
        size_t n = strcspn(p, " \t\n");
        if (!n)
            break;
        char one[256];
        struct hash_expect h;
        snprintf(one, sizeof(one), "%.*s", (int)(n < 255 ? n : 255), p);
        if (!strncmp(p, "sha512-", 7) || !strncmp(p, "sha1-", 5)) {
            int rc = p[3] == '5' ? hash_expect_parse(one, &h) : sri_sha1(p, n, &h);
            if (rc < 0 || n > 255) {
                set_err(err, errlen, "%s: integrity \"%.40s\" is not a valid hash", it->name,
                        one);
                return -EINVAL;
            }
            add_hash(it, &h);
        }
        p += n;
    }
    return 0;
}

static int parse_npm(const char *buf, size_t len, struct lockfile *lf, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_loadb(buf, len, 0, &je);
    if (!root) {
        set_err(err, errlen, "not JSON (line %d: %s)", je.line, je.text);
        return -EINVAL;
    }
    json_t *pkgs = json_object_get(root, "packages");
    if (!json_is_object(pkgs)) {
        set_err(err, errlen, "no \"packages\" object (a package-lock.json of lockfileVersion 2 "
                             "or 3 is needed; npm 7 and later write one)");
        json_decref(root);
        return -EINVAL;
    }
    size_t cap = 0;
    int rc = 0;
    const char *key;
    json_t *v;
    json_object_foreach(pkgs, key, v)
    {
        const char *version = json_string_value(json_object_get(v, "version"));
        const char *resolved = json_string_value(json_object_get(v, "resolved"));
        const char *name = json_string_value(json_object_get(v, "name"));
        const char *nm = strstr(key, "node_modules/"), *last = NULL;
        for (; nm; nm = strstr(nm + 1, "node_modules/"))
            last = nm;
        if (!*key || json_is_true(json_object_get(v, "link")) ||
            json_is_true(json_object_get(v, "inBundle")) || !version || !last)
            continue;
        if (resolved && strncmp(resolved, "http://", 7) && strncmp(resolved, "https://", 8))
            continue; /* file:, git+...: nothing a registry serves */
        if (!name)
            name = last + 13;
        if (!npm_name_valid(name) || !*version || strchr(version, '/') ||
            strlen(version) > 256) {
            set_err(err, errlen, "packages[\"%.200s\"]: not a package name and version", key);
            rc = -EINVAL;
            break;
        }
        struct lockfile_item *it;
        rc = add_item(lf, &cap, name, strlen(name), version, strlen(version), NULL, &it);
        const char *integrity = json_string_value(json_object_get(v, "integrity"));
        if (rc == 0 && integrity)
            rc = npm_integrity(it, integrity, err, errlen);
        if (rc < 0)
            break;
    }
    json_decref(root);
    return rc;
}

/* The next logical line (continuations joined) into line; false at the end. */
static bool next_line(const char *buf, size_t len, size_t *at, char *line, size_t cap,
                      int *lineno, bool *too_long)
{
    size_t o = 0;
    *too_long = false;
    if (*at >= len)
        return false;
    while (*at < len) {
        const char *s = buf + *at;
        const char *nl = memchr(s, '\n', len - *at);
        size_t n = nl ? (size_t)(nl - s) : len - *at;
        *at += n + (nl != NULL);
        (*lineno)++;
        if (n && s[n - 1] == '\r')
            n--;
        bool cont = n && s[n - 1] == '\\';
        if (cont)
            n--;
        if (o + n + 1 >= cap) {
            *too_long = true;
            n = 0;
        }
        memcpy(line + o, s, n);
        o += n;
        if (cont && o + 1 < cap)
            line[o++] = ' ';
        if (!cont)
            break;
    }
    line[o] = '\0';
    return true;
}

/* Cuts a comment: '#' at the start or after whitespace. */
static void cut_comment(char *line)
{
    for (char *p = line; *p; p++)
        if (*p == '#' && (p == line || isspace((unsigned char)p[-1]))) {
            *p = '\0';
            return;
        }
}

static int parse_pip_line(char *line, int lineno, struct lockfile *lf, size_t *cap, char *err,
                          size_t errlen)
{
    char *p = line + strspn(line, " \t");
    if (!*p || *p == '-')
        return 0; /* blank, or an option (-i, --index-url, -r: not followed) */
    size_t nlen = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-");
    char *q = p + nlen;
    if (*q == '[')
        q = strchr(q, ']') ? strchr(q, ']') + 1 : q;
    q += strspn(q, " \t");
    if (!nlen || strncmp(q, "==", 2) || q[2] == '=') {
        set_err(err, errlen, "line %d: \"%.60s\" is not an exact pin (NAME==VERSION)", lineno,
                p);
        return -EINVAL;
    }
    q += 2;
    q += strspn(q, " \t");
    size_t vlen = strcspn(q, " \t;,");
    if (!vlen || vlen > 128 || memchr(q, '*', vlen) || memchr(q, '/', vlen)) {
        set_err(err, errlen, "line %d: \"%.60s\" is not an exact pin (NAME==VERSION)", lineno,
                p);
        return -EINVAL;
    }
    struct lockfile_item *it;
    int rc = add_item(lf, cap, p, nlen, q, vlen, NULL, &it);
    for (char *h = strstr(q + vlen, "--hash"); rc == 0 && h; h = strstr(h + 6, "--hash")) {
        char *val = h + 6;
        val += strspn(val, " \t=");
        size_t hl = strcspn(val, " \t");
        char one[200];
        struct hash_expect e;
        snprintf(one, sizeof(one), "%.*s", (int)(hl < 199 ? hl : 199), val);
        if (hl >= 199 || !strchr(one, ':') || hash_expect_parse(one, &e) < 0) {
            set_err(err, errlen, "line %d: \"--hash %.60s\" is not ALGO:HEX", lineno, one);
            return -EINVAL;
        }
        add_hash(it, &e);
    }
    return rc;
}

/* A line-based format: each logical line without its comment goes to fn. */
static int parse_lines(const char *buf, size_t len, struct lockfile *lf, char *err, size_t errlen,
                       int (*fn)(char *line, int lineno, struct lockfile *lf, size_t *cap,
                                 char *err, size_t errlen))
{
    char *line = malloc(LINE_MAX_LEN);
    if (!line)
        return -ENOMEM;
    size_t at = 0, cap = 0;
    int lineno = 0, rc = 0;
    bool too_long;
    while (rc == 0 && next_line(buf, len, &at, line, LINE_MAX_LEN, &lineno, &too_long)) {
        if (too_long) {
            set_err(err, errlen, "line %d: longer than %d bytes", lineno, LINE_MAX_LEN);
            rc = -EINVAL;
            break;
        }
        if (memchr(line, '\0', strlen(line)) != NULL)
            continue;
        cut_comment(line);
        rc = fn(line, lineno, lf, &cap, err, errlen);
    }
    free(line);
    return rc;
}

static int parse_image_line(char *line, int lineno, struct lockfile *lf, size_t *cap, char *err,
                            size_t errlen)
{
    char *p = line + strspn(line, " \t");
    p[strcspn(p, " \t\r")] = '\0';
    if (!*p)
        return 0;
    /* A registry host in front ("docker.io/", "localhost:5000/") is dropped. */
    char *slash = strchr(p, '/');
    if (slash && (memchr(p, '.', (size_t)(slash - p)) || memchr(p, ':', (size_t)(slash - p)) ||
                  (slash - p == 9 && !strncmp(p, "localhost", 9))))
        p = slash + 1;
    char *at = strchr(p, '@'), *ref;
    if (at) {
        *at = '\0';
        ref = at + 1;
        if (!oci_digest_valid(ref) || strncmp(ref, "sha256:", 7)) {
            set_err(err, errlen, "line %d: \"%.80s\" is not a sha256 digest", lineno, ref);
            return -EINVAL;
        }
    } else {
        char *colon = strrchr(p, ':');
        if (colon && !strchr(colon, '/')) {
            *colon = '\0';
            ref = colon + 1;
        } else {
            ref = "latest";
        }
        if (!oci_tag_valid(ref)) {
            set_err(err, errlen, "line %d: \"%.80s\" is not a tag", lineno, ref);
            return -EINVAL;
        }
    }
    if (!oci_name_valid(p)) {
        set_err(err, errlen, "line %d: \"%.80s\" is not a repository name", lineno, p);
        return -EINVAL;
    }
    struct lockfile_item *it;
    return add_item(lf, cap, p, strlen(p), ref, strlen(ref), NULL, &it);
}

/* A Maven coordinate field: no '/', no "..", not empty. */
static bool mvn_field_ok(const char *s, size_t n)
{
    if (!n || n > 200 || (n == 2 && s[0] == '.' && s[1] == '.') || (n == 1 && s[0] == '.'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '/' || s[i] == '\\' || isspace((unsigned char)s[i]))
            return false;
    return true;
}

static int parse_maven_line(char *line, int lineno, struct lockfile *lf, size_t *cap, char *err,
                            size_t errlen)
{
    if (!maven_token(line, strlen(line)))
        return 0; /* mvn's other lines: headers, "none", warnings */
    char *p = line + strspn(line, " \t");
    if (!strncmp(p, "[INFO]", 6))
        p += 6;
    p += strspn(p, " \t");
    p[strcspn(p, " \t")] = '\0';
    const char *f[6];
    size_t fl[6], n = 0;
    for (char *s = p; n < 6;) {
        size_t l = strcspn(s, ":");
        f[n] = s;
        fl[n++] = l;
        if (!s[l])
            break;
        s += l + 1;
    }
    for (size_t i = 0; i < n; i++)
        if (!mvn_field_ok(f[i], fl[i]) ||
            (i == 0 && (f[0][0] == '.' || f[0][fl[0] - 1] == '.' || strstr(f[0], "..")))) {
            set_err(err, errlen, "line %d: \"%.80s\" is not group:artifact:type:version:scope",
                    lineno, p);
            return -EINVAL;
        }
    char name[420], kind[420];
    snprintf(name, sizeof(name), "%.*s:%.*s", (int)fl[0], f[0], (int)fl[1], f[1]);
    if (n == 6)
        snprintf(kind, sizeof(kind), "%.*s:%.*s", (int)fl[2], f[2], (int)fl[3], f[3]);
    else
        snprintf(kind, sizeof(kind), "%.*s", (int)fl[2], f[2]);
    const char *ver = f[n - 2];
    struct lockfile_item *it;
    return add_item(lf, cap, name, strlen(name), ver, fl[n - 2], kind, &it);
}

/* A scalar of a YAML mapping node, or NULL. */
static const char *yaml_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        yaml_node_t *v = yaml_document_get_node(doc, p->value);
        if (k && k->type == YAML_SCALAR_NODE && !strcmp((char *)k->data.scalar.value, key))
            return v && v->type == YAML_SCALAR_NODE ? (const char *)v->data.scalar.value : NULL;
    }
    return NULL;
}

static yaml_node_t *yaml_get_node(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        if (k && k->type == YAML_SCALAR_NODE && !strcmp((char *)k->data.scalar.value, key))
            return yaml_document_get_node(doc, p->value);
    }
    return NULL;
}

/* A chart name or version: no '/', no "..", printable. */
static bool chart_field_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (!n || n > 200 || strstr(s, ".."))
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '/' || s[i] == '\\' || !isgraph((unsigned char)s[i]))
            return false;
    return true;
}

static int parse_helm(const char *buf, size_t len, struct lockfile *lf, char *err, size_t errlen)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    if (!yaml_parser_load(&parser, &doc)) {
        set_err(err, errlen, "not YAML (line %zu: %s)", parser.problem_mark.line + 1,
                parser.problem ? parser.problem : "unreadable");
        yaml_parser_delete(&parser);
        return -EINVAL;
    }
    yaml_parser_delete(&parser);
    int rc = 0;
    size_t cap = 0;
    yaml_node_t *deps = yaml_get_node(&doc, yaml_document_get_root_node(&doc), "dependencies");
    if (!deps || deps->type != YAML_SEQUENCE_NODE) {
        set_err(err, errlen, "no \"dependencies\" list (a Chart.lock is needed)");
        rc = -EINVAL;
    }
    for (yaml_node_item_t *i = deps && rc == 0 ? deps->data.sequence.items.start : NULL;
         i && i < deps->data.sequence.items.top; i++) {
        yaml_node_t *d = yaml_document_get_node(&doc, *i);
        const char *name = yaml_get(&doc, d, "name"), *ver = yaml_get(&doc, d, "version");
        if (!chart_field_ok(name) || !chart_field_ok(ver)) {
            set_err(err, errlen, "dependencies[%td]: no chart name and version",
                    i - deps->data.sequence.items.start);
            rc = -EINVAL;
            break;
        }
        struct lockfile_item *it;
        if ((rc = add_item(lf, &cap, name, strlen(name), ver, strlen(ver), NULL, &it)) < 0)
            break;
    }
    yaml_document_delete(&doc);
    return rc;
}

int lockfile_parse(const char *buf, size_t len, enum lockfile_format fmt, struct lockfile *out,
                   char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    set_err(err, errlen, "%s", "");
    if (len > LOCKFILE_MAX_BYTES) {
        set_err(err, errlen, "larger than %u bytes", LOCKFILE_MAX_BYTES);
        return -EFBIG;
    }
    if (fmt == LOCKFILE_AUTO)
        fmt = lockfile_detect(NULL, buf, len);
    out->format = fmt;
    int rc;
    switch (fmt) {
    case LOCKFILE_NPM:
        rc = parse_npm(buf, len, out, err, errlen);
        break;
    case LOCKFILE_HELM:
        rc = parse_helm(buf, len, out, err, errlen);
        break;
    case LOCKFILE_PIP:
        rc = parse_lines(buf, len, out, err, errlen, parse_pip_line);
        break;
    case LOCKFILE_MAVEN:
        rc = parse_lines(buf, len, out, err, errlen, parse_maven_line);
        break;
    default:
        rc = parse_lines(buf, len, out, err, errlen, parse_image_line);
        break;
    }
    if (rc == 0)
        rc = merge_duplicates(out);
    if (rc == -EFBIG)
        set_err(err, errlen, "more than %d items", LOCKFILE_MAX_ITEMS);
    if (rc < 0)
        lockfile_free(out);
    return rc;
}

/* snprintf into a path slot; -EINVAL when it does not fit. */
static int path_put(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int path_put(char *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, LOCKFILE_PATH_MAX, fmt, ap);
    va_end(ap);
    return n < 0 || n >= LOCKFILE_PATH_MAX ? -EINVAL : 0;
}

static int maven_paths(const struct lockfile_item *it, char paths[][LOCKFILE_PATH_MAX], int max)
{
    char group[LOCKFILE_PATH_MAX];
    const char *colon = strchr(it->name, ':');
    if (!colon || !it->kind || max < 1)
        return -EINVAL;
    snprintf(group, sizeof(group), "%.*s", (int)(colon - it->name), it->name);
    for (char *c = group; *c; c++)
        if (*c == '.')
            *c = '/';
    const char *art = colon + 1, *cls = strchr(it->kind, ':');
    int type_len = cls ? (int)(cls - it->kind) : (int)strlen(it->kind);
    const char *ext = it->kind;
    /* The packaging types whose files have another extension. */
    if (type_len == 8 && !strncmp(it->kind, "test-jar", 8))
        ext = "jar", type_len = 3;
    if ((type_len == 12 && !strncmp(it->kind, "maven-plugin", 12)) ||
        (type_len == 6 && !strncmp(it->kind, "bundle", 6)))
        ext = "jar", type_len = 3;
    if (path_put(paths[0], "%s/%s/%s/%s-%s%s%s.%.*s", group, art, it->version, art, it->version,
                 cls ? "-" : "", cls ? cls + 1 : "", type_len, ext) < 0)
        return -EINVAL;
    if (max < 2 || (type_len == 3 && !strncmp(ext, "pom", 3) && !cls))
        return 1;
    if (path_put(paths[1], "%s/%s/%s/%s-%s.pom", group, art, it->version, art, it->version) < 0)
        return -EINVAL;
    return 2;
}

int lockfile_item_paths(enum lockfile_format fmt, const struct lockfile_item *it,
                        char paths[][LOCKFILE_PATH_MAX], int max)
{
    if (max < 1)
        return -EINVAL;
    switch (fmt) {
    case LOCKFILE_NPM: {
        const char *base = it->name[0] == '@' ? strchr(it->name, '/') : NULL;
        base = base ? base + 1 : it->name;
        return path_put(paths[0], "%s/-/%s-%s.tgz", it->name, base, it->version) < 0 ? -EINVAL
                                                                                      : 1;
    }
    case LOCKFILE_HELM:
        return path_put(paths[0], "charts/%s-%s.tgz", it->name, it->version) < 0 ? -EINVAL : 1;
    case LOCKFILE_IMAGES:
        return path_put(paths[0], "%s/%s", it->name, it->version) < 0 ? -EINVAL : 1;
    case LOCKFILE_PIP: {
        char norm[LOCKFILE_PATH_MAX];
        if (pypi_normalise(it->name, norm, sizeof(norm)) < 0)
            return -EINVAL;
        return path_put(paths[0], "%s", norm) < 0 ? -EINVAL : 1;
    }
    case LOCKFILE_MAVEN:
        return maven_paths(it, paths, max);
    default:
        return -EINVAL;
    }
}

/* Strips a distribution's archive extension; false when it has none known. */
static bool sdist_stem(const char *file, size_t *stem)
{
    static const char *const exts[] = {".tar.gz", ".zip", ".tar.bz2", ".tgz", ".tar.xz"};
    size_t n = strlen(file);
    for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
        size_t e = strlen(exts[i]);
        if (n > e && !strcmp(file + n - e, exts[i])) {
            *stem = n - e;
            return true;
        }
    }
    return false;
}

bool lockfile_pip_file_of(const struct lockfile_item *it, const char *file)
{
    char want[256], got[256], name[256];
    size_t n = strlen(file), stem;
    const char *dash;
    if (pypi_normalise(it->name, want, sizeof(want)) < 0 || n >= sizeof(name))
        return false;
    if (n > 4 && !strcmp(file + n - 4, ".whl")) {
        /* {name}-{version}(-{build})?-{python}-{abi}-{platform}.whl */
        dash = strchr(file, '-');
        if (!dash)
            return false;
        const char *ve = strchr(dash + 1, '-');
        if (!ve || strlen(it->version) != (size_t)(ve - dash - 1) ||
            strncasecmp(dash + 1, it->version, (size_t)(ve - dash - 1)))
            return false;
    } else if (sdist_stem(file, &stem)) {
        /* {name}-{version}.tar.gz: the version is what follows the last '-'. */
        size_t vl = strlen(it->version);
        if (stem <= vl + 1 || file[stem - vl - 1] != '-' ||
            strncasecmp(file + stem - vl, it->version, vl))
            return false;
        dash = file + stem - vl - 1;
    } else {
        return false;
    }
    snprintf(name, sizeof(name), "%.*s", (int)(dash - file), file);
    return pypi_normalise(name, got, sizeof(got)) == 0 && !strcmp(got, want);
}

void lockfile_item_label(enum lockfile_format fmt, const struct lockfile_item *it, char *buf,
                         size_t len)
{
    switch (fmt) {
    case LOCKFILE_PIP:
        snprintf(buf, len, "%s==%s", it->name, it->version);
        break;
    case LOCKFILE_IMAGES:
        snprintf(buf, len, "%s%s%s", it->name, strchr(it->version, ':') ? "@" : ":", it->version);
        break;
    case LOCKFILE_MAVEN:
        snprintf(buf, len, "%s:%s:%s", it->name, it->kind ? it->kind : "jar", it->version);
        break;
    default:
        snprintf(buf, len, "%s@%s", it->name, it->version);
        break;
    }
}

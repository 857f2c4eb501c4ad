/*
 * oci: grammars, manifest parsing, Link headers, platform filters and mount
 * path readings for the docker driver (see oci.h).
 *
 * The invariants every function here keeps: no input can make it read past
 * a terminator or write past a buffer (every copy is length-checked before
 * it is made), nothing recurses on input, and every rejection says why in
 * one line. Manifests are parsed with jansson, which bounds nesting itself;
 * the counts of descriptors are capped at OCI_DESC_MAX.
 */
#include "upstreamfs/oci.h"
#include "upstreamfs/fetch.h"
#include "upstreamfs/hash.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool alnum(char c)
{
    return lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

bool oci_name_component_valid(const char *s, size_t n)
{
    size_t i = 0;
    if (n == 0)
        return false;
    for (;;) {
        size_t start = i;
        while (i < n && lower_alnum(s[i]))
            i++;
        if (i == start)
            return false;
        if (i == n)
            return true;
        if (s[i] == '.') {
            i++;
        } else if (s[i] == '_') {
            i++;
            if (i < n && s[i] == '_')
                i++;
        } else if (s[i] == '-') {
            while (i < n && s[i] == '-')
                i++;
        } else {
            return false;
        }
        if (i == n)
            return false; /* a separator must be followed by [a-z0-9] */
    }
}

bool oci_name_valid(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > OCI_NAME_MAX)
        return false;
    const char *p = name;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (!oci_name_component_valid(p, n))
            return false;
        if (!slash)
            return true;
        p = slash + 1;
    }
}

bool oci_tag_valid(const char *tag)
{
    size_t n = strlen(tag);
    if (n == 0 || n > OCI_TAG_MAX || !(alnum(tag[0]) || tag[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(alnum(tag[i]) || tag[i] == '.' || tag[i] == '_' || tag[i] == '-'))
            return false;
    return true;
}

bool oci_digest_valid(const char *digest)
{
    return strncmp(digest, "sha256:", 7) == 0 && hash_is_sha256_hex(digest + 7);
}

void oci_media_type_base(const char *mt, char *buf, size_t n)
{
    size_t o = 0;
    if (n == 0)
        return;
    buf[0] = '\0';
    if (!mt)
        return;
    while (*mt == ' ' || *mt == '\t')
        mt++;
    for (; *mt && *mt != ';' && *mt != ' ' && *mt != '\t' && o + 1 < n; mt++) {
        char c = *mt;
        buf[o++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    buf[o] = '\0';
}

bool oci_media_type_is_manifest(const char *mt)
{
    char b[OCI_MEDIA_TYPE_MAX + 1];
    oci_media_type_base(mt, b, sizeof(b));
    return strcmp(b, OCI_MT_DOCKER_MANIFEST) == 0 || strcmp(b, OCI_MT_OCI_MANIFEST) == 0;
}

bool oci_media_type_is_index(const char *mt)
{
    char b[OCI_MEDIA_TYPE_MAX + 1];
    oci_media_type_base(mt, b, sizeof(b));
    return strcmp(b, OCI_MT_DOCKER_LIST) == 0 || strcmp(b, OCI_MT_OCI_INDEX) == 0;
}

/* ---- manifests ------------------------------------------------------------------------- */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* A short printable string (media types, platform fields): no controls, no quotes, capped. */
static bool plain_string(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == '"' ||
            s[i] == '\\')
            return false;
    return true;
}

static void desc_clear(struct oci_desc *d)
{
    free(d->media_type);
    free(d->platform.os);
    free(d->platform.arch);
    free(d->platform.variant);
    memset(d, 0, sizeof(*d));
}

static int platform_parse(json_t *o, struct oci_platform *p, char *err, size_t errlen)
{
    json_t *os = json_object_get(o, "os");
    json_t *arch = json_object_get(o, "architecture");
    json_t *var = json_object_get(o, "variant");
    if (!json_is_string(os) || !json_is_string(arch) || !plain_string(json_string_value(os), 64) ||
        !plain_string(json_string_value(arch), 64)) {
        set_err(err, errlen, "a platform lacks a valid os or architecture");
        return -EIO;
    }
    if (var && !json_is_null(var) &&
        (!json_is_string(var) ||
         (json_string_value(var)[0] && !plain_string(json_string_value(var), 64)))) {
        set_err(err, errlen, "a platform has an invalid variant");
        return -EIO;
    }
    p->os = strdup(json_string_value(os));
    p->arch = strdup(json_string_value(arch));
    if (json_is_string(var) && json_string_value(var)[0])
        p->variant = strdup(json_string_value(var));
    if (!p->os || !p->arch || (json_is_string(var) && json_string_value(var)[0] && !p->variant))
        return -ENOMEM;
    return 0;
}

static int desc_parse(json_t *o, bool with_platform, const char *what, struct oci_desc *d,
                      char *err, size_t errlen)
{
    memset(d, 0, sizeof(*d));
    if (!json_is_object(o)) {
        set_err(err, errlen, "%s is not an object", what);
        return -EIO;
    }
    json_t *mt = json_object_get(o, "mediaType");
    json_t *dg = json_object_get(o, "digest");
    json_t *sz = json_object_get(o, "size");
    if (mt && (!json_is_string(mt) || !plain_string(json_string_value(mt), OCI_MEDIA_TYPE_MAX))) {
        set_err(err, errlen, "%s has an invalid mediaType", what);
        return -EIO;
    }
    if (!json_is_string(dg)) {
        set_err(err, errlen, "%s has no digest", what);
        return -EIO;
    }
    if (!oci_digest_valid(json_string_value(dg))) {
        set_err(err, errlen, "%s has a digest that is not sha256:<64 lower-case hex>", what);
        return -EIO;
    }
    if (!json_is_integer(sz) || json_integer_value(sz) < 0) {
        set_err(err, errlen, "%s has no valid size", what);
        return -EIO;
    }
    snprintf(d->digest, sizeof(d->digest), "%s", json_string_value(dg));
    d->size = (int64_t)json_integer_value(sz);
    if (mt) {
        d->media_type = strdup(json_string_value(mt));
        if (!d->media_type)
            return -ENOMEM;
    }
    json_t *pl = with_platform ? json_object_get(o, "platform") : NULL;
    if (pl && !json_is_null(pl)) {
        if (!json_is_object(pl)) {
            set_err(err, errlen, "%s has a platform that is not an object", what);
            return -EIO;
        }
        int rc = platform_parse(pl, &d->platform, err, errlen);
        if (rc < 0)
            return rc;
        d->has_platform = true;
    }
    return 0;
}

static int desc_array(json_t *arr, bool with_platform, const char *what, struct oci_desc **out,
                      size_t *n, char *err, size_t errlen)
{
    if (!json_is_array(arr)) {
        set_err(err, errlen, "%s is missing or not an array", what);
        return -EIO;
    }
    size_t cnt = json_array_size(arr);
    if (cnt > OCI_DESC_MAX) {
        set_err(err, errlen, "%s has %zu entries (at most %d)", what, cnt, OCI_DESC_MAX);
        return -EIO;
    }
    *out = calloc(cnt ? cnt : 1, sizeof(**out));
    if (!*out)
        return -ENOMEM;
    for (size_t i = 0; i < cnt; i++) {
        char w[64];
        snprintf(w, sizeof(w), "%s[%zu]", what, i);
        int rc = desc_parse(json_array_get(arr, i), with_platform, w, &(*out)[i], err, errlen);
        *n = i + 1; /* so that clear frees what this entry allocated */
        if (rc < 0)
            return rc;
    }
    *n = cnt;
    return 0;
}

int oci_manifest_parse(const char *body, size_t len, const char *content_type,
                       struct oci_manifest *out, char *err, size_t errlen)
{
    json_error_t jerr;
    char ct[OCI_MEDIA_TYPE_MAX + 1], mt[OCI_MEDIA_TYPE_MAX + 1];
    int rc = -EIO;
    memset(out, 0, sizeof(*out));
    set_err(err, errlen, "%s", "");
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        set_err(err, errlen, "not JSON: %s (line %d)", jerr.text, jerr.line);
        return -EIO;
    }
    if (!json_is_object(root)) {
        set_err(err, errlen, "not a JSON object");
        goto out;
    }
    json_t *sv = json_object_get(root, "schemaVersion");
    if (!json_is_integer(sv) || json_integer_value(sv) != 2) {
        set_err(err, errlen, "schemaVersion is not 2 (schema 1 manifests are not supported)");
        goto out;
    }
    oci_media_type_base(content_type, ct, sizeof(ct));
    json_t *jmt = json_object_get(root, "mediaType");
    if (jmt && !(json_is_string(jmt) && plain_string(json_string_value(jmt), OCI_MEDIA_TYPE_MAX))) {
        set_err(err, errlen, "mediaType is not a valid string");
        goto out;
    }
    oci_media_type_base(jmt ? json_string_value(jmt) : NULL, mt, sizeof(mt));
    if (!mt[0] && (oci_media_type_is_manifest(ct) || oci_media_type_is_index(ct)))
        snprintf(mt, sizeof(mt), "%s", ct);
    if (oci_media_type_is_index(mt)) {
        out->kind = OCI_KIND_INDEX;
    } else if (oci_media_type_is_manifest(mt)) {
        out->kind = OCI_KIND_MANIFEST;
    } else if (mt[0]) {
        set_err(err, errlen, "unsupported media type %.80s", mt);
        goto out;
    } else if (json_object_get(root, "manifests")) {
        out->kind = OCI_KIND_INDEX; /* untyped: the OCI types are the defaults */
        snprintf(mt, sizeof(mt), "%s", OCI_MT_OCI_INDEX);
    } else if (json_object_get(root, "config")) {
        out->kind = OCI_KIND_MANIFEST;
        snprintf(mt, sizeof(mt), "%s", OCI_MT_OCI_MANIFEST);
    } else {
        set_err(err, errlen, "neither a manifest (config, layers) nor an index (manifests)");
        goto out;
    }
    out->media_type = strdup(mt);
    if (!out->media_type) {
        rc = -ENOMEM;
        goto out;
    }
    if (out->kind == OCI_KIND_INDEX) {
        rc = desc_array(json_object_get(root, "manifests"), true, "manifests", &out->manifests,
                        &out->n_manifests, err, errlen);
    } else {
        rc =
            desc_parse(json_object_get(root, "config"), false, "config", &out->config, err, errlen);
        if (rc == 0)
            rc = desc_array(json_object_get(root, "layers"), false, "layers", &out->layers,
                            &out->n_layers, err, errlen);
    }
out:
    json_decref(root);
    if (rc < 0)
        oci_manifest_clear(out);
    return rc;
}

void oci_manifest_clear(struct oci_manifest *m)
{
    free(m->media_type);
    desc_clear(&m->config);
    for (size_t i = 0; i < m->n_layers; i++)
        desc_clear(&m->layers[i]);
    free(m->layers);
    for (size_t i = 0; i < m->n_manifests; i++)
        desc_clear(&m->manifests[i]);
    free(m->manifests);
    memset(m, 0, sizeof(*m));
}

/* ---- platforms -------------------------------------------------------------------------- */

/* Whether the n bytes at f equal the string s (s may be NULL: equals an empty field). */
static bool field_eq(const char *f, size_t n, const char *s)
{
    return s ? strlen(s) == n && strncmp(f, s, n) == 0 : n == 0;
}

bool oci_platform_match(const char *filter, const struct oci_platform *p)
{
    if (!filter || !filter[0])
        return true;
    if (!p || !p->os || !p->arch)
        return false;
    const char *e = filter;
    while (*e) {
        size_t n = strcspn(e, ":");
        const char *s1 = memchr(e, '/', n);
        if (s1) {
            size_t osl = (size_t)(s1 - e);
            const char *a = s1 + 1;
            size_t rest = n - osl - 1;
            const char *s2 = memchr(a, '/', rest);
            size_t al = s2 ? (size_t)(s2 - a) : rest;
            bool ok = field_eq(e, osl, p->os) && field_eq(a, al, p->arch);
            if (ok && s2)
                ok = field_eq(s2 + 1, rest - al - 1, p->variant);
            if (ok)
                return true;
        }
        e += n;
        if (*e == ':')
            e++;
    }
    return false;
}

/* ---- Link ------------------------------------------------------------------------------- */

static bool tchar(char c)
{
    return alnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static const char *skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/*
 * Reads a token or a quoted-string at *pp into buf (size n, truncated
 * silently: only a short rel value is ever compared). Returns false on a
 * malformed value (an unterminated quote).
 */
static bool read_value(const char **pp, char *buf, size_t n)
{
    const char *p = *pp;
    size_t o = 0;
    if (*p == '"') {
        for (p++; *p && *p != '"'; p++) {
            if (*p == '\\' && p[1])
                p++;
            if (o + 1 < n)
                buf[o++] = *p;
        }
        if (*p != '"')
            return false;
        p++;
    } else {
        for (; tchar(*p); p++)
            if (o + 1 < n)
                buf[o++] = *p;
    }
    buf[o] = '\0';
    *pp = p;
    return true;
}

/* Whether a rel value (a space-separated list of relation types) contains "next". */
static bool rel_has_next(const char *rel)
{
    const char *p = rel;
    while (*p) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, " ");
        if (n == 4 && strncasecmp(p, "next", 4) == 0)
            return true;
        p += n;
    }
    return false;
}

int oci_link_next(const char *link, const char *base_url, char **next)
{
    const char *p = link;
    *next = NULL;
    if (!link)
        return -ENOENT;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            return -ENOENT;
        if (*p != '<')
            return -EINVAL;
        const char *uri = ++p;
        const char *gt = strchr(uri, '>');
        if (!gt)
            return -EINVAL;
        size_t ulen = (size_t)(gt - uri);
        p = gt + 1;
        bool is_next = false;
        for (;;) {
            p = skip_ows(p);
            if (*p != ';')
                break;
            p = skip_ows(p + 1);
            char name[32] = "", val[128] = "";
            size_t nl = 0;
            while (tchar(*p)) {
                if (nl + 1 < sizeof(name))
                    name[nl++] = *p;
                p++;
            }
            name[nl] = '\0';
            if (nl == 0)
                return -EINVAL;
            p = skip_ows(p);
            if (*p == '=') {
                p = skip_ows(p + 1);
                if (!read_value(&p, val, sizeof(val)))
                    return -EINVAL;
            }
            if (strcasecmp(name, "rel") == 0 && rel_has_next(val))
                is_next = true;
        }
        p = skip_ows(p);
        if (*p && *p != ',')
            return -EINVAL;
        if (is_next) {
            if (ulen == 0 || ulen > 8192)
                return -EINVAL;
            char *ref = strndup(uri, ulen);
            if (!ref)
                return -ENOMEM;
            for (char *c = ref; *c; c++)
                if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f) {
                    free(ref);
                    return -EINVAL;
                }
            *next = fetch_url_resolve(base_url, ref);
            free(ref);
            return *next ? 0 : -EINVAL;
        }
    }
}

/* ---- names and paths -------------------------------------------------------------------- */

int oci_hub_normalise(const char *repo, char *buf, size_t n)
{
    int w = strchr(repo, '/') ? snprintf(buf, n, "%s", repo) : snprintf(buf, n, "library/%s", repo);
    return w < 0 || (size_t)w >= n ? -ENAMETOOLONG : 0;
}

#define PATH_MAX_COMPONENTS 64
#define PATH_MAX_LEN        1024

struct comp {
    const char *s;
    size_t n;
};

static bool comp_is(const struct comp *c, const char *s)
{
    return c->n == strlen(s) && strncmp(c->s, s, c->n) == 0;
}

/* A reference component (a tag or a digest) into buf (size OCI_REF_MAX + 1). */
static bool ref_from(const struct comp *c, char *buf)
{
    if (c->n > OCI_REF_MAX)
        return false;
    memcpy(buf, c->s, c->n);
    buf[c->n] = '\0';
    return oci_tag_valid(buf) || oci_digest_valid(buf);
}

/* The repository named by components [0, k): each valid, normalised for Docker Hub. */
static bool repo_from(const struct comp *c, size_t k, bool hub, char *buf)
{
    char raw[OCI_NAME_MAX + 1];
    size_t o = 0;
    if (k == 0 || (hub && k > 2))
        return false;
    for (size_t i = 0; i < k; i++) {
        if (!oci_name_component_valid(c[i].s, c[i].n) || o + c[i].n + 1 > OCI_NAME_MAX)
            return false;
        if (i)
            raw[o++] = '/';
        memcpy(raw + o, c[i].s, c[i].n);
        o += c[i].n;
    }
    raw[o] = '\0';
    if (!hub) {
        memcpy(buf, raw, o + 1);
        return true;
    }
    if (k == 1 && strcmp(raw, "library") == 0)
        return false; /* Docker Hub's library/ is a namespace, never a repository */
    return oci_hub_normalise(raw, buf, OCI_NAME_MAX + 1) == 0;
}

int oci_path_parse(const char *path, bool hub, struct oci_path *out)
{
    struct comp c[PATH_MAX_COMPONENTS];
    size_t n = 0, len = strlen(path);
    memset(out, 0, sizeof(*out));
    if (len == 0 || len > PATH_MAX_LEN)
        return -ENOENT;
    const char *p = path;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t cl = slash ? (size_t)(slash - p) : strlen(p);
        if (cl == 0 || n == PATH_MAX_COMPONENTS)
            return -ENOENT;
        c[n].s = p;
        c[n].n = cl;
        n++;
        if (!slash)
            break;
        p = slash + 1;
    }
    /* Inside a layout: the most specific reading first. */
    size_t k = 0;
    enum oci_part part = OCI_PART_NONE;
    if (n >= 5 && comp_is(&c[n - 3], OCI_LAYOUT_BLOBS) && comp_is(&c[n - 2], OCI_LAYOUT_ALG) &&
        c[n - 1].n == 64) {
        char hex[65];
        memcpy(hex, c[n - 1].s, 64);
        hex[64] = '\0';
        if (hash_is_sha256_hex(hex)) {
            part = OCI_PART_BLOB;
            k = n - 4;
            memcpy(out->hex, hex, sizeof(hex));
        }
    }
    if (!part && n >= 4 && comp_is(&c[n - 2], OCI_LAYOUT_BLOBS) &&
        comp_is(&c[n - 1], OCI_LAYOUT_ALG)) {
        part = OCI_PART_BLOBS_SHA256;
        k = n - 3;
    }
    if (!part && n >= 3) {
        k = n - 2;
        if (comp_is(&c[n - 1], OCI_LAYOUT_FILE))
            part = OCI_PART_OCI_LAYOUT;
        else if (comp_is(&c[n - 1], OCI_LAYOUT_INDEX))
            part = OCI_PART_INDEX_JSON;
        else if (comp_is(&c[n - 1], OCI_LAYOUT_BLOBS))
            part = OCI_PART_BLOBS;
    }
    if (part && repo_from(c, k, hub, out->repo) && ref_from(&c[k], out->ref)) {
        out->layout = true;
        out->part = part;
    } else {
        out->hex[0] = '\0';
        out->repo[0] = out->ref[0] = '\0';
    }
    if (n >= 2 && repo_from(c, n - 1, hub, out->td_repo) && ref_from(&c[n - 1], out->td_ref))
        out->tagdir = true;
    else
        out->td_repo[0] = out->td_ref[0] = '\0';
    /* A namespace or repository: every component a name component. */
    bool ns = (!hub || n <= 2) && len <= OCI_NAME_MAX;
    for (size_t i = 0; ns && i < n; i++)
        ns = oci_name_component_valid(c[i].s, c[i].n);
    if (ns) {
        out->nsdir = true;
        out->ns_repo = repo_from(c, n, hub, out->ns_name);
        if (!out->ns_repo)
            snprintf(out->ns_name, sizeof(out->ns_name), "%s", path);
    }
    return out->layout || out->tagdir || out->nsdir ? 0 : -ENOENT;
}

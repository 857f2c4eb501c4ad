/*
 * pypi_index: a project's page of the simple API (PEP 503 HTML, PEP 691 JSON) read into
 * the one canonical form of include/upstreamfs/pypi.h, without I/O: names, both page
 * forms, a file's URL and checksum, the document the mount keeps, and a registry's merge
 * with its local files. File names are checked (no '/', no control byte, no leading '.'),
 * so a hostile page cannot name a path outside its project's directory, nor one of the
 * driver's own dot names. Pages are read without a tree of the page: HTML through libxml2's
 * SAX interface, JSON checked whole and each file parsed alone (json_stream.h); only the
 * canonical form is a tree. Rendering for the shim: src/parsers/pypi_render.c; the driver:
 * src/drivers/pypi.c.
 */
#include "upstreamfs/pypi.h"
#include "upstreamfs/driver.h"
#include "upstreamfs/fetch.h"
#include "upstreamfs/json_stream.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <libxml/HTMLparser.h>
#include <libxml/parserInternals.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PYPI_TEXT_MAX 1024 /* requires-python, yanked reasons, upload times */
#define PYPI_HASH_HEX 128  /* sha512's hex */

/* ---- names -------------------------------------------------------------------------------- */

int pypi_normalise(const char *name, char *out, size_t outlen)
{
    size_t n = strlen(name), w = 0;
    if (n == 0 || !isalnum((unsigned char)name[0]) || !isalnum((unsigned char)name[n - 1]))
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        bool sep = c == '-' || c == '_' || c == '.';
        if (!sep && !isalnum(c))
            return -EINVAL;
        if (sep && w > 0 && out[w - 1] == '-')
            continue; /* a run of separators is one '-' */
        if (w + 1 >= outlen)
            return -ENAMETOOLONG;
        out[w++] = sep ? '-' : (char)tolower(c);
    }
    out[w] = '\0';
    return 0;
}

bool pypi_name_is_normalised(const char *name)
{
    char norm[PYPI_NAME_MAX + 1];
    return pypi_normalise(name, norm, sizeof(norm)) == 0 && strcmp(norm, name) == 0;
}

/* A distribution file name the mount can show. */
static bool filename_ok(const char *f)
{
    size_t n = strlen(f);
    if (n == 0 || n > 255 || f[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)f[i];
        if (c < 0x20 || c == 0x7f || c == '/' || c == '\\')
            return false;
    }
    return true;
}

/* ---- the canonical form ------------------------------------------------------------------- */

/* A lower-case copy of a hash value, or false when it is not hex (at most sha512's length). */
static bool hex_norm(const char *v, char out[PYPI_HASH_HEX + 1])
{
    size_t n = v ? strlen(v) : 0;
    if (n == 0 || n > PYPI_HASH_HEX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)v[i]))
            return false;
        out[i] = (char)tolower((unsigned char)v[i]);
    }
    out[n] = '\0';
    return true;
}

static bool hash_name_ok(const char *k, size_t n)
{
    if (n == 0 || n > 16)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)k[i]) && !isdigit((unsigned char)k[i]))
            return false;
    return true;
}

/* Adds "alg": hex to hashes when both are usable; false otherwise. */
static bool hash_add(json_t *hashes, const char *alg, size_t alen, const char *value)
{
    char hex[PYPI_HASH_HEX + 1], name[17];
    if (!hash_name_ok(alg, alen) || !hex_norm(value, hex))
        return false;
    memcpy(name, alg, alen);
    name[alen] = '\0';
    return json_object_set_new(hashes, name, json_string(hex)) == 0;
}

/* The usable entries of a hashes object. */
static json_t *hashes_clean(const json_t *in)
{
    const char *k;
    json_t *v;
    json_t *out = json_object();
    json_object_foreach((json_t *)in, k, v)
    {
        if (out && json_is_string(v))
            hash_add(out, k, strlen(k), json_string_value(v));
    }
    return out;
}

/* Sets key to a string when it is valid UTF-8 of a sane length; false otherwise. */
static bool set_text(json_t *o, const char *key, const char *s)
{
    if (!s || strlen(s) > PYPI_TEXT_MAX)
        return false;
    json_t *js = json_string(s);
    return js && json_object_set_new(o, key, js) == 0;
}

static bool is_http_url(const char *u)
{
    return u && (strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0);
}

/* Resolves href (its fragment cut off) against base; a malloc'd http(s) URL or NULL. */
static char *resolve_link(const char *base, const char *href)
{
    size_t n = strcspn(href, "#");
    char *ref = strndup(href, n);
    char *abs = ref ? fetch_url_resolve(base, ref) : NULL;
    free(ref);
    if (!is_http_url(abs)) {
        free(abs);
        return NULL;
    }
    return abs;
}

/* A new file entry, or NULL when the name or URL is unusable. */
static json_t *file_new(const char *filename, const char *url)
{
    if (!filename || !url || !filename_ok(filename))
        return NULL;
    /* json_string refuses what is not UTF-8; json_object_set_new takes the value even on failure.
     */
    json_t *o = json_object();
    if (!o || json_object_set_new(o, "filename", json_string(filename)) < 0 ||
        json_object_set_new(o, "url", json_string(url)) < 0 ||
        json_object_set_new(o, "hashes", json_object()) < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Appends f (taking it) unless its filename is already listed. */
static int files_add(json_t *files, json_t *seen, json_t *f)
{
    const char *name = json_string_value(json_object_get(f, "filename"));
    if (json_object_get(seen, name)) {
        json_decref(f);
        return 0;
    }
    if (json_object_set_new(seen, name, json_true()) < 0) {
        json_decref(f);
        return -ENOMEM;
    }
    return json_array_append_new(files, f) < 0 ? -ENOMEM : 0;
}

/* One file of a JSON page (a value of its "files", parsed alone) into the canonical form. */
static int json_file(const json_t *f, const char *page_url, json_t *files, json_t *seen)
{
    const char *href = json_string_value(json_object_get(f, "url"));
    char *abs = href ? resolve_link(page_url, href) : NULL;
    json_t *o = file_new(json_string_value(json_object_get(f, "filename")), abs);
    free(abs);
    if (!o)
        return 0;
    json_object_set_new(o, "hashes", hashes_clean(json_object_get(f, "hashes")));
    set_text(o, "requires-python", json_string_value(json_object_get(f, "requires-python")));
    json_t *y = json_object_get(f, "yanked");
    if (json_is_true(y) || (json_is_string(y) && !json_string_length(y)))
        json_object_set_new(o, "yanked", json_true());
    else if (json_is_string(y))
        set_text(o, "yanked", json_string_value(y));
    json_t *cm = json_object_get(f, "core-metadata");
    if (!cm)
        cm = json_object_get(f, "dist-info-metadata");
    if (json_is_true(cm))
        json_object_set_new(o, "core-metadata", json_true());
    else if (json_is_object(cm))
        json_object_set_new(o, "core-metadata", hashes_clean(cm));
    json_t *size = json_object_get(f, "size");
    if (json_is_integer(size) && json_integer_value(size) >= 0)
        json_object_set_new(o, "size", json_integer(json_integer_value(size)));
    set_text(o, "upload-time", json_string_value(json_object_get(f, "upload-time")));
    return files_add(files, seen, o);
}

/*
 * A JSON page, read in place (include/upstreamfs/json_stream.h) as jansson would read it: the
 * page is checked whole, then each of its files is parsed alone, so no tree of the whole page
 * is ever built.
 */
static int parse_json(const char *body, size_t len, const char *page_url, json_t *files,
                      json_t *seen)
{
    struct json_member meta, ver, list;
    json_error_t jerr;
    char *v = NULL;
    if (json_stream_check(body, len) < 0 || !json_stream_find(body, len, 0, "files", &list) ||
        body[list.value] != '[')
        return -EIO;
    if (json_stream_find(body, len, 0, "meta", &meta) &&
        json_stream_find(body, len, meta.value, "api-version", &ver) &&
        json_stream_dup(body, ver.value, ver.value_end, &v) < 0)
        return -ENOMEM;
    bool major_ok = !v || strtol(v, NULL, 10) == 1;
    free(v);
    if (!major_ok)
        return -EIO;
    size_t pos = list.value, start, end;
    int rc = 0;
    while (rc == 0 && json_stream_element(body, len, &pos, &start, &end)) {
        if (body[start] != '{')
            continue;
        json_t *f = json_loadb(body + start, end - start, 0, &jerr);
        rc = f ? json_file(f, page_url, files, seen) : -ENOMEM;
        json_decref(f);
    }
    return rc;
}

static bool is_element(const xmlChar *name, const char *want)
{
    return name && !strcasecmp((const char *)name, want);
}

/* An attribute's value among a start tag's (name, value) pairs: "" for one without a value. */
static const char *attr(const xmlChar **atts, const char *name)
{
    for (size_t i = 0; atts && atts[i]; i += 2)
        if (!strcmp((const char *)atts[i], name))
            return atts[i + 1] ? (const char *)atts[i + 1] : "";
    return NULL;
}

/*
 * The last path segment of an absolute URL, then decoded, as pip names a
 * link's file; malloc'd, NULL when there is none or it decodes to a NUL.
 */
static char *url_filename(const char *url)
{
    CURLU *h = curl_url();
    char *path = NULL, *out = NULL;
    if (h && curl_url_set(h, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(h, CURLUPART_PATH, &path, 0) == CURLUE_OK) {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        int n = 0;
        char *dec = *base ? curl_easy_unescape(NULL, base, 0, &n) : NULL;
        if (dec && n > 0 && (size_t)n == strlen(dec))
            out = strdup(dec);
        curl_free(dec);
    }
    curl_free(path);
    curl_url_cleanup(h);
    return out;
}

/* The value of a data-core-metadata attribute: true, or "<alg>=<hex>" as hashes. */
static json_t *core_metadata_attr(const char *v)
{
    if (!strcmp(v, "true"))
        return json_true();
    const char *eq = strchr(v, '=');
    json_t *h = eq ? json_object() : NULL;
    if (h && !hash_add(h, v, (size_t)(eq - v), eq + 1)) {
        json_decref(h);
        h = NULL;
    }
    return h;
}

/* One anchor of an HTML page, from its start tag's attributes. */
static int html_link(const xmlChar **atts, const char *base, json_t *files, json_t *seen)
{
    const char *href = attr(atts, "href");
    char *abs = href ? resolve_link(base, href) : NULL;
    char *name = abs ? url_filename(abs) : NULL;
    json_t *o = file_new(name, abs);
    int rc = 0;
    if (o) {
        const char *frag = strchr(href, '#');
        const char *eq = frag ? strchr(frag, '=') : NULL;
        if (eq)
            hash_add(json_object_get(o, "hashes"), frag + 1, (size_t)(eq - frag - 1), eq + 1);
        const char *v = attr(atts, "data-requires-python");
        if (v)
            set_text(o, "requires-python", v);
        if ((v = attr(atts, "data-yanked")) != NULL) {
            if (!v[0] || !set_text(o, "yanked", v))
                json_object_set_new(o, "yanked", json_true());
        }
        v = attr(atts, "data-core-metadata");
        if (!v)
            v = attr(atts, "data-dist-info-metadata");
        json_t *cm = v ? core_metadata_attr(v) : NULL;
        if (cm)
            json_object_set_new(o, "core-metadata", cm);
        rc = files_add(files, seen, o);
    }
    free(name);
    free(abs);
    return rc;
}

/*
 * An HTML page read by libxml2's SAX interface: the start tags of <a> and <base> as the parser
 * meets them, no tree. Links resolve against the first <base> with a usable href, wherever it
 * is (as a browser's and pip's do): one met after links were read starts the page again.
 */
struct html_read {
    const char *page_url;
    char *base;      /* the <base href>, resolved, once met */
    bool base_final; /* the second reading: base is known */
    bool restart;    /* a <base> came after links: read again */
    size_t links;    /* anchors read so far */
    json_t *files, *seen;
    int rc;
};

static void html_start(void *ctx, const xmlChar *name, const xmlChar **atts)
{
    xmlParserCtxtPtr c = ctx;
    struct html_read *h = c->_private;
    if (h->rc < 0 || h->restart)
        return;
    if (!h->base_final && !h->base && is_element(name, "base")) {
        const char *href = attr(atts, "href");
        h->base = href ? resolve_link(h->page_url, href) : NULL;
        if (h->base && h->links) {
            h->restart = true;
            xmlStopParser(c);
        }
    } else if (is_element(name, "a")) {
        h->links++;
        h->rc = html_link(atts, h->base ? h->base : h->page_url, h->files, h->seen);
        if (h->rc < 0)
            xmlStopParser(c);
    }
}

/* One reading of the page by the SAX handler above. */
static int html_pass(const char *body, size_t len, struct html_read *h)
{
    htmlParserCtxtPtr c = htmlCreateMemoryParserCtxt(body, (int)len);
    xmlCharEncodingHandlerPtr utf8 = xmlFindCharEncodingHandler("UTF-8");
    if (!c)
        return -ENOMEM;
    memset(c->sax, 0, sizeof(*c->sax));
    c->sax->startElement = html_start;
    c->sax->initialized = 1;
    c->_private = h;
    htmlCtxtUseOptions(c, HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET |
                              HTML_PARSE_RECOVER | HTML_PARSE_NOBLANKS);
    if (utf8)
        xmlSwitchToEncoding(c, utf8);
    htmlParseDocument(c);
    if (c->myDoc)
        xmlFreeDoc(c->myDoc);
    htmlFreeParserCtxt(c);
    return h->rc;
}

static int parse_html(const char *body, size_t len, const char *page_url, json_t *files,
                      json_t *seen)
{
    if (len > (size_t)INT32_MAX)
        return -EFBIG;
    if (!len)
        return 0;
    struct html_read h = {.page_url = page_url, .files = files, .seen = seen};
    int rc = html_pass(body, len, &h);
    if (rc == 0 && h.restart) {
        json_array_clear(files);
        json_object_clear(seen);
        h.restart = false;
        h.base_final = true;
        rc = html_pass(body, len, &h);
    }
    free(h.base);
    return rc;
}

static bool is_json_type(const char *ct, const char *body, size_t len)
{
    if (!ct) {
        size_t i = 0;
        while (i < len && isspace((unsigned char)body[i]))
            i++;
        return i < len && body[i] == '{';
    }
    size_t n = strcspn(ct, "; \t");
    return (n == strlen("application/json") && !strncasecmp(ct, "application/json", n)) ||
           (n > 5 && !strncasecmp(ct + n - 5, "+json", 5));
}

int pypi_index_parse(const char *body, size_t len, const char *content_type, const char *page_url,
                     const char *name, json_t **out)
{
    json_t *files = json_array(), *seen = json_object();
    json_t *root = json_pack("{s:{s:s}, s:s, s:O}", "meta", "api-version", "1.0", "name", name,
                             "files", files);
    int rc = !files || !seen || !root                ? -ENOMEM
             : is_json_type(content_type, body, len) ? parse_json(body, len, page_url, files, seen)
                                                     : parse_html(body, len, page_url, files, seen);
    json_decref(files);
    json_decref(seen);
    if (rc < 0) {
        json_decref(root);
        return rc;
    }
    *out = root;
    return 0;
}

/* The strongest usable hash of a hashes object as "algo:hex" into out; "" when none. */
static void best_hash(const json_t *hashes, char *out, size_t len)
{
    static const struct {
        const char *name;
        size_t hex;
    } algs[] = {{"sha256", 64}, {"sha512", 128}, {"sha1", 40}};
    out[0] = '\0';
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        const char *v = json_string_value(json_object_get(hashes, algs[i].name));
        if (v && strlen(v) == algs[i].hex) {
            snprintf(out, len, "%s:%s", algs[i].name, v);
            return;
        }
    }
}

int pypi_index_each(const json_t *index,
                    int (*fn)(void *arg, const char *file, const char *url, const char *expect,
                              int64_t size),
                    void *arg)
{
    size_t i;
    json_t *f;
    char expect[200], file[300];
    json_array_foreach(json_object_get(index, "files"), i, f)
    {
        const char *name = json_string_value(json_object_get(f, "filename"));
        const char *url = json_string_value(json_object_get(f, "url"));
        if (!name || !url)
            continue;
        json_t *size = json_object_get(f, "size");
        best_hash(json_object_get(f, "hashes"), expect, sizeof(expect));
        int rc = fn(arg, name, url, expect[0] ? expect : NULL,
                    json_is_integer(size) ? json_integer_value(size) : -1);
        if (rc != 0)
            return rc;
        json_t *cm = json_object_get(f, "core-metadata");
        /* PEP 658: the metadata lives at the file's URL plus ".metadata". */
        if ((!json_is_true(cm) && !json_is_object(cm)) || strchr(url, '?') ||
            snprintf(file, sizeof(file), "%s.metadata", name) >= (int)sizeof(file))
            continue;
        char *murl = malloc(strlen(url) + sizeof(".metadata"));
        if (!murl)
            return -ENOMEM;
        sprintf(murl, "%s.metadata", url);
        best_hash(json_is_object(cm) ? cm : NULL, expect, sizeof(expect));
        rc = fn(arg, file, murl, expect[0] ? expect : NULL, -1);
        free(murl);
        if (rc != 0)
            return rc;
    }
    return 0;
}

struct find_arg {
    const char *file;
    char *url, *expect;
    int64_t size;
};

/* pypi_index_each callback: 1 (stop) at the file wanted. */
static int find_one(void *arg, const char *file, const char *url, const char *expect, int64_t size)
{
    struct find_arg *a = arg;
    if (strcmp(file, a->file) != 0)
        return 0;
    a->url = strdup(url);
    a->expect = expect ? strdup(expect) : NULL;
    a->size = size;
    return !a->url || (expect && !a->expect) ? -ENOMEM : 1;
}

int pypi_index_find(const json_t *index, const char *file, char **url, char **expect, int64_t *size)
{
    struct find_arg a = {.file = file};
    int rc = pypi_index_each(index, find_one, &a);
    if (rc == 1) {
        *url = a.url;
        *expect = a.expect;
        *size = a.size;
        return 0;
    }
    free(a.url);
    free(a.expect);
    return rc < 0 ? rc : -ENOENT;
}

/* v in jansson's compact form appended to o. */
static void out_dump(struct json_out *o, const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s)
        o->err = -ENOMEM;
    else
        json_out_puts(o, s);
    free(s);
}

/*
 * The canonical form written as json_dumps(JSON_COMPACT) would write it with each url relative,
 * one file at a time: no copy of the tree.
 */
int pypi_index_emit(const json_t *index, char **out, size_t *out_len)
{
    struct json_out o;
    const char *k;
    json_t *v;
    bool first = true;
    json_out_init(&o, 4096);
    json_out_put(&o, "{", 1);
    json_object_foreach((json_t *)index, k, v)
    {
        json_t *key = json_string(k);
        json_out_puts(&o, first ? "" : ",");
        first = false;
        out_dump(&o, key);
        json_decref(key);
        json_out_put(&o, ":", 1);
        if (strcmp(k, "files") != 0 || !json_is_array(v)) {
            out_dump(&o, v);
            continue;
        }
        size_t i;
        json_t *f;
        json_out_put(&o, "[", 1);
        json_array_foreach(v, i, f)
        {
            char *esc = fetch_url_escape(json_string_value(json_object_get(f, "filename")));
            json_t *copy = esc ? json_copy(f) : NULL;
            if (!copy || json_object_set_new(copy, "url", json_string(esc)) < 0)
                o.err = -ENOMEM;
            json_out_puts(&o, i ? "," : "");
            if (!o.err)
                out_dump(&o, copy);
            json_decref(copy);
            free(esc);
            if (o.err)
                break;
        }
        json_out_put(&o, "]", 1);
    }
    json_out_put(&o, "}", 1);
    return json_out_finish(&o, out, out_len);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static const struct drv_local_file *local_find(const struct drv_local_file *files, size_t n,
                                               const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(files[i].name, name) == 0)
            return &files[i];
    return NULL;
}

/* A local distribution as an index entry (url: the escaped filename, as emit writes it). */
static json_t *local_entry(const struct drv_local_file *f, const struct drv_local_file *files,
                           size_t n)
{
    char meta[PYPI_NAME_MAX + 300];
    char *esc = fetch_url_escape(f->name);
    json_t *o = esc ? file_new(f->name, esc) : NULL;
    free(esc);
    if (!o)
        return NULL;
    const struct drv_local_file *m = NULL;
    if (snprintf(meta, sizeof(meta), "%s.metadata", f->name) < (int)sizeof(meta))
        m = local_find(files, n, meta);
    if (json_object_set_new(json_object_get(o, "hashes"), "sha256", json_string(f->sha256)) < 0 ||
        (f->size >= 0 && json_object_set_new(o, "size", json_integer(f->size)) < 0) ||
        (m &&
         json_object_set_new(o, "core-metadata", json_pack("{s:s}", "sha256", m->sha256)) < 0)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int pypi_index_merge_local(const char *doc, size_t len, const char *name,
                           const struct drv_local_file *files, size_t n, char **out,
                           size_t *out_len)
{
    json_error_t jerr;
    json_t *up = doc ? json_loadb(doc, len, 0, &jerr) : NULL;
    if (doc && (!json_is_object(up) || !json_is_array(json_object_get(up, "files")))) {
        json_decref(up);
        return -EIO;
    }
    json_t *list = json_array(), *seen = json_object();
    json_t *root =
        up ? json_incref(up)
           : json_pack("{s:{s:s}, s:s, s:[]}", "meta", "api-version", "1.0", "name", name, "files");
    int rc = list && seen && root ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const struct drv_local_file *f = &files[i];
        if (f->name[0] == '.' || ends_with(f->name, ".metadata") || !filename_ok(f->name))
            continue;
        json_t *o = local_entry(f, files, n);
        rc = o ? files_add(list, seen, o) : -ENOMEM;
    }
    size_t i;
    json_t *f;
    json_array_foreach(up ? json_object_get(up, "files") : NULL, i, f)
    {
        if (rc == 0)
            rc = files_add(list, seen, json_incref(f));
    }
    if (rc == 0 && json_array_size(list) == 0)
        rc = -ENOENT;
    if (rc == 0 && json_object_set(root, "files", list) < 0)
        rc = -ENOMEM;
    char *s = rc == 0 ? json_dumps(root, JSON_COMPACT) : NULL;
    if (rc == 0 && !s)
        rc = -ENOMEM;
    json_decref(up);
    json_decref(root);
    json_decref(list);
    json_decref(seen);
    if (rc < 0)
        return rc;
    *out = s;
    *out_len = strlen(s);
    return 0;
}

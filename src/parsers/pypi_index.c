/*
 * pypi_index: a project's page of the simple API (PEP 503 HTML, PEP 691 JSON) read into the
 * one canonical form of include/upstreamfs/pypi.h (src/parsers/pypi_form.c), without I/O, and
 * a registry's merge of a stored document with its local files. File names are checked (no
 * '/', no control byte, no leading '.'), so a hostile page cannot name a path outside its
 * project's directory, nor one of the driver's own dot names. Pages are read without a tree of
 * the page: HTML through libxml2's SAX interface, JSON checked whole and each file parsed alone
 * (json_stream.h), each file straight into the compact form. Rendering for the shim:
 * src/parsers/pypi_render.c; the driver: src/drivers/pypi.c.
 */
#include "pypi_form.h"
#include "upstreamfs/driver.h"
#include "upstreamfs/fetch.h"
#include "upstreamfs/json_stream.h"
#include "upstreamfs/strset.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <libxml/HTMLparser.h>
#include <libxml/parserInternals.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* ---- pages into the canonical form ---------------------------------------------------------- */

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

/* The usable entries of a JSON hashes object as a hash list (pypi_form.h). */
static uint32_t hashes_clean(struct pypi_index *ix, const json_t *in)
{
    const char *k;
    json_t *v;
    pypi_form_hashes_begin(ix);
    json_object_foreach((json_t *)in, k, v)
    {
        if (json_is_string(v))
            pypi_form_hash_add(ix, k, strlen(k), json_string_value(v));
    }
    return pypi_form_hashes_end(ix);
}

/* One file of a JSON page (a value of its "files", parsed alone) into the canonical form. */
static int json_file(const json_t *f, const char *page_url, struct pypi_index *ix)
{
    const char *href = json_string_value(json_object_get(f, "url"));
    char *abs = href ? resolve_link(page_url, href) : NULL;
    struct pypi_file *o;
    int rc = pypi_form_add(ix, json_string_value(json_object_get(f, "filename")), abs, &o);
    free(abs);
    if (!o)
        return rc;
    uint32_t hashes = hashes_clean(ix, json_object_get(f, "hashes"));
    pypi_form_last(ix)->hashes = hashes;
    pypi_form_text(ix, PYPI_REQUIRES_PYTHON,
                   json_string_value(json_object_get(f, "requires-python")));
    json_t *y = json_object_get(f, "yanked");
    if (json_is_true(y) || (json_is_string(y) && !json_string_length(y)))
        pypi_form_last(ix)->yanked = PYPI_TRUE;
    else if (json_is_string(y))
        pypi_form_text(ix, PYPI_YANKED, json_string_value(y));
    json_t *cm = json_object_get(f, "core-metadata");
    if (!cm)
        cm = json_object_get(f, "dist-info-metadata");
    if (json_is_true(cm)) {
        pypi_form_last(ix)->core_metadata = PYPI_TRUE;
    } else if (json_is_object(cm)) {
        uint32_t list = hashes_clean(ix, cm);
        pypi_form_last(ix)->core_metadata = list;
    }
    json_t *size = json_object_get(f, "size");
    if (json_is_integer(size) && json_integer_value(size) >= 0)
        pypi_form_last(ix)->size = json_integer_value(size);
    pypi_form_text(ix, PYPI_UPLOAD_TIME, json_string_value(json_object_get(f, "upload-time")));
    return pypi_form_error(ix);
}

/*
 * A JSON page, read in place (include/upstreamfs/json_stream.h) as jansson would read it: the
 * page is checked whole, then each of its files is parsed alone, so no tree of the whole page
 * is ever built.
 */
static int parse_json(const char *body, size_t len, const char *page_url, struct pypi_index *ix)
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
        rc = f ? json_file(f, page_url, ix) : -ENOMEM;
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

/* A one-hash list of "<alg>=<hex>" at s (the value runs to its end); false when unusable. */
static bool hash_attr(struct pypi_index *ix, const char *s, uint32_t *list)
{
    const char *eq = strchr(s, '=');
    pypi_form_hashes_begin(ix);
    bool ok = eq && pypi_form_hash_add(ix, s, (size_t)(eq - s), eq + 1);
    *list = pypi_form_hashes_end(ix);
    return ok;
}

/* One anchor of an HTML page, from its start tag's attributes. */
static int html_link(const xmlChar **atts, const char *base, struct pypi_index *ix)
{
    const char *href = attr(atts, "href");
    char *abs = href ? resolve_link(base, href) : NULL;
    char *name = abs ? url_filename(abs) : NULL;
    struct pypi_file *o;
    uint32_t list;
    int rc = pypi_form_add(ix, name, abs, &o);
    free(name);
    free(abs);
    if (!o)
        return rc;
    const char *frag = strchr(href, '#');
    if (frag && hash_attr(ix, frag + 1, &list))
        pypi_form_last(ix)->hashes = list;
    const char *v = attr(atts, "data-requires-python");
    if (v)
        pypi_form_text(ix, PYPI_REQUIRES_PYTHON, v);
    if ((v = attr(atts, "data-yanked")) != NULL) {
        if (!v[0] || !pypi_form_text(ix, PYPI_YANKED, v))
            pypi_form_last(ix)->yanked = PYPI_TRUE;
    }
    v = attr(atts, "data-core-metadata");
    if (!v)
        v = attr(atts, "data-dist-info-metadata");
    if (v && !strcmp(v, "true"))
        pypi_form_last(ix)->core_metadata = PYPI_TRUE;
    else if (v && hash_attr(ix, v, &list))
        pypi_form_last(ix)->core_metadata = list;
    return pypi_form_error(ix);
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
    struct pypi_index *ix;
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
        h->rc = html_link(atts, h->base ? h->base : h->page_url, h->ix);
        if (h->rc < 0)
            xmlStopParser(c);
    }
}

/*
 * A parser of the page in place: what htmlCreateMemoryParserCtxt makes, but on a static buffer,
 * so the page is not copied first (the UTF-8 conversion below is its one copy).
 */
static htmlParserCtxtPtr html_parser(const char *body, size_t len)
{
    htmlParserCtxtPtr c = htmlNewParserCtxt();
    xmlParserInputBufferPtr buf =
        c ? xmlParserInputBufferCreateStatic(body, (int)len, XML_CHAR_ENCODING_NONE) : NULL;
    xmlParserInputPtr in = buf ? xmlNewIOInputStream(c, buf, XML_CHAR_ENCODING_NONE) : NULL;
    if (!in || inputPush(c, in) < 0) {
        if (in)
            xmlFreeInputStream(in);
        else if (buf)
            xmlFreeParserInputBuffer(buf);
        if (c)
            htmlFreeParserCtxt(c);
        return NULL;
    }
    return c;
}

/* One reading of the page by the SAX handler above. */
static int html_pass(const char *body, size_t len, struct html_read *h)
{
    htmlParserCtxtPtr c = html_parser(body, len);
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

static int parse_html(const char *body, size_t len, const char *page_url, struct pypi_index *ix)
{
    if (len > (size_t)INT32_MAX)
        return -EFBIG;
    if (!len)
        return 0;
    struct html_read h = {.page_url = page_url, .ix = ix};
    int rc = html_pass(body, len, &h);
    if (rc == 0 && h.restart) {
        pypi_form_reset(ix);
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
                     const char *name, struct pypi_index **out)
{
    struct pypi_index *ix;
    int rc = pypi_form_new(name, len, &ix);
    if (rc < 0)
        return rc;
    rc = is_json_type(content_type, body, len) ? parse_json(body, len, page_url, ix)
                                               : parse_html(body, len, page_url, ix);
    if (rc < 0) {
        pypi_index_free(ix);
        return rc;
    }
    pypi_form_done(ix);
    *out = ix;
    return 0;
}

/* ---- a registry's merge ---------------------------------------------------------------------- */

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

/*
 * A local distribution as an index entry, as the tree-based merge wrote it (url: the escaped
 * filename, as emit writes it; size before core-metadata).
 */
static void local_entry(struct json_out *o, const struct drv_local_file *f,
                        const struct drv_local_file *files, size_t n)
{
    char meta[PYPI_NAME_MAX + 300];
    char *esc = fetch_url_escape(f->name);
    if (!esc) {
        o->err = -ENOMEM;
        return;
    }
    const struct drv_local_file *m = NULL;
    if (snprintf(meta, sizeof(meta), "%s.metadata", f->name) < (int)sizeof(meta))
        m = local_find(files, n, meta);
    json_out_puts(o, "{\"filename\":");
    json_out_string(o, f->name);
    json_out_puts(o, ",\"url\":");
    json_out_string(o, esc);
    json_out_puts(o, ",\"hashes\":{\"sha256\":");
    json_out_string(o, f->sha256);
    json_out_puts(o, "}");
    free(esc);
    if (f->size >= 0) {
        char num[32];
        snprintf(num, sizeof(num), ",\"size\":%lld", (long long)f->size);
        json_out_puts(o, num);
    }
    if (m) {
        json_out_puts(o, ",\"core-metadata\":{\"sha256\":");
        json_out_string(o, m->sha256);
        json_out_puts(o, "}");
    }
    json_out_puts(o, "}");
}

/* A merge being written: its output, the names listed so far (malloc'd), how many files. */
struct merge {
    struct json_out o;
    struct strset seen;
    size_t listed;
};

/* Whether name is listed already; else it is now (a copy). -ENOMEM. */
static int merge_seen(struct merge *m, const char *name)
{
    if (strset_has(&m->seen, name))
        return 1;
    char *copy = strdup(name);
    if (!copy || strset_add(&m->seen, copy) < 0) {
        free(copy);
        return -ENOMEM;
    }
    return 0;
}

/* The local distributions of files, then the upstream's of the array at list in doc. */
static int merge_files(struct merge *m, const char *doc, size_t len, size_t list,
                       const struct drv_local_file *files, size_t n)
{
    json_out_put(&m->o, "[", 1);
    for (size_t i = 0; i < n; i++) {
        const struct drv_local_file *f = &files[i];
        if (f->name[0] == '.' || ends_with(f->name, ".metadata") || !pypi_filename_ok(f->name) ||
            !json_stream_utf8(f->name, strlen(f->name)))
            continue;
        int seen = merge_seen(m, f->name);
        if (seen < 0)
            return seen;
        if (seen)
            continue;
        json_out_puts(&m->o, m->listed++ ? "," : "");
        local_entry(&m->o, f, files, n);
    }
    size_t pos = list, start, end;
    while (doc && json_stream_element(doc, len, &pos, &start, &end)) {
        struct json_member fn;
        char *name = NULL;
        int seen = 0;
        if (doc[start] == '{' && json_stream_find(doc, len, start, "filename", &fn) &&
            (seen = json_stream_dup(doc, fn.value, fn.value_end, &name)) == 0 && name)
            seen = merge_seen(m, name);
        free(name);
        if (seen < 0)
            return seen;
        if (seen)
            continue;
        json_out_puts(&m->o, m->listed++ ? "," : "");
        json_out_value(&m->o, doc, start, end);
    }
    json_out_put(&m->o, "]", 1);
    return m->o.err;
}

int pypi_index_merge_local(const char *doc, size_t len, const char *name,
                           const struct drv_local_file *files, size_t n, char **out,
                           size_t *out_len)
{
    struct json_member list, mb;
    if (doc && (json_stream_check(doc, len) < 0 || !json_stream_find(doc, len, 0, "files", &list) ||
                doc[list.value] != '['))
        return -EIO;
    struct merge m = {.listed = 0};
    json_out_init(&m.o, (doc ? len : 0) + n * 300 + 256);
    int rc = 0;
    if (!doc) {
        json_out_puts(&m.o, "{\"meta\":{\"api-version\":\"1.0\"},\"name\":");
        json_out_string(&m.o, name);
        json_out_puts(&m.o, ",\"files\":");
        rc = merge_files(&m, NULL, 0, 0, files, n);
        json_out_puts(&m.o, "}");
    } else {
        /* the document's members as they are, its (last) "files" with the local ones first */
        size_t pos = 0;
        bool first = true;
        json_out_put(&m.o, "{", 1);
        while (rc == 0 && json_stream_member(doc, len, &pos, &mb)) {
            bool is_files = json_stream_key_is(doc, mb.key, mb.key_end, "files");
            if (is_files && mb.key != list.key)
                continue;
            json_out_puts(&m.o, first ? "" : ",");
            first = false;
            json_out_value(&m.o, doc, mb.key, mb.key_end);
            json_out_put(&m.o, ":", 1);
            if (is_files)
                rc = merge_files(&m, doc, len, mb.value, files, n);
            else
                json_out_value(&m.o, doc, mb.value, mb.value_end);
        }
        json_out_put(&m.o, "}", 1);
    }
    for (size_t i = 0; i < m.seen.nslots; i++)
        free((char *)m.seen.slots[i]);
    strset_free(&m.seen);
    if (rc == 0 && m.listed == 0)
        rc = -ENOENT;
    if (rc < 0) {
        free(m.o.buf);
        return rc;
    }
    return json_out_finish(&m.o, out, out_len);
}

/*
 * pypi_render: the document the pypi driver keeps (src/parsers/pypi_index.c) rendered for
 * the shim as PEP 691 JSON or PEP 503 HTML, every file URL resolved against the shim, and
 * the Accept header's choice between them (include/upstreamfs/pypi.h). Pure: no I/O.
 */
#include "upstreamfs/pypi.h"
#include "upstreamfs/accept.h"
#include "upstreamfs/fetch.h"
#include "upstreamfs/json_stream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PYPI_RENDER_MAX (256u << 20) /* a rendered page */
#define PYPI_HASH_HEX   128          /* sha512's hex */

/* ---- rendering for the shim --------------------------------------------------------------- */

/* A growable output buffer with a cap. */
struct obuf {
    char *data;
    size_t len, cap;
    int err;
};

static void ob_put(struct obuf *b, const char *s, size_t n)
{
    if (b->err)
        return;
    if (b->len + n + 1 > PYPI_RENDER_MAX) {
        b->err = -EFBIG;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->len + n + 1)
            nc *= 2;
        char *nd = realloc(b->data, nc);
        if (!nd) {
            b->err = -ENOMEM;
            return;
        }
        b->data = nd;
        b->cap = nc;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void ob_puts(struct obuf *b, const char *s)
{
    ob_put(b, s, strlen(s));
}

/* s with &, <, >, " and ' as entities. */
static void ob_escaped(struct obuf *b, const char *s)
{
    for (; *s; s++) {
        const char *e = *s == '&'    ? "&amp;"
                        : *s == '<'  ? "&lt;"
                        : *s == '>'  ? "&gt;"
                        : *s == '"'  ? "&quot;"
                        : *s == '\'' ? "&#39;"
                                     : NULL;
        if (e)
            ob_puts(b, e);
        else
            ob_put(b, s, 1);
    }
}

/* ' name="value"' with value escaped. */
static void ob_attr(struct obuf *b, const char *name, const char *value)
{
    ob_puts(b, " ");
    ob_puts(b, name);
    ob_puts(b, "=\"");
    ob_escaped(b, value);
    ob_puts(b, "\"");
}

/*
 * The document is read in place (include/upstreamfs/json_stream.h): the render holds the
 * document and its output, no tree. Documents are the ones src/parsers/pypi_index.c writes
 * (jansson's compact form), whose members are copied byte for byte; of a repeated key the last
 * one counts, as jansson reads it.
 */
struct page {
    const char *text;
    size_t len;
};

/* The string member key of the object at obj decoded (malloc'd *out, NULL: none); -ENOMEM. */
static int page_string(const struct page *pg, size_t obj, const char *key, char **out)
{
    struct json_member m;
    *out = NULL;
    return json_stream_find(pg->text, pg->len, obj, key, &m)
               ? json_stream_dup(pg->text, m.value, m.value_end, out)
               : 0;
}

/* "<alg>=<hex>" of the strongest hash of the object at obj (sha256 first, as PEP 503 says). */
static bool hash_fragment(const struct page *pg, size_t obj, char *buf, size_t len)
{
    struct json_member m;
    char alg[64], hex[PYPI_HASH_HEX + 1];
    if (json_stream_find(pg->text, pg->len, obj, "sha256", &m) && pg->text[m.value] == '"' &&
        json_stream_string(pg->text, m.value, m.value_end, hex, sizeof(hex)) == 0) {
        snprintf(buf, len, "sha256=%s", hex);
        return true;
    }
    size_t pos = obj;
    while (pg->text[obj] == '{' && json_stream_member(pg->text, pg->len, &pos, &m)) {
        if (pg->text[m.value] == '"' &&
            json_stream_string(pg->text, m.key, m.key_end, alg, sizeof(alg)) == 0 &&
            json_stream_string(pg->text, m.value, m.value_end, hex, sizeof(hex)) == 0) {
            snprintf(buf, len, "%s=%s", alg, hex);
            return true;
        }
    }
    return false;
}

/* The first byte of the value of member key of the object at obj ('\0' when there is none). */
static char page_kind(const struct page *pg, size_t obj, const char *key, struct json_member *m)
{
    return json_stream_find(pg->text, pg->len, obj, key, m) ? pg->text[m->value] : '\0';
}

/* One <a> of a PEP 503 page, for the file object at f. */
static int html_file(struct obuf *b, const struct page *pg, size_t f, const char *name,
                     const char *url)
{
    char frag[PYPI_HASH_HEX + 80];
    struct json_member m;
    char *s = NULL;
    ob_puts(b, "<a href=\"");
    ob_escaped(b, url);
    if (page_kind(pg, f, "hashes", &m) == '{' && hash_fragment(pg, m.value, frag, sizeof(frag))) {
        ob_puts(b, "#");
        ob_escaped(b, frag);
    }
    ob_puts(b, "\"");
    int rc = page_string(pg, f, "requires-python", &s);
    if (s)
        ob_attr(b, "data-requires-python", s);
    free(s);
    s = NULL;
    char y = page_kind(pg, f, "yanked", &m);
    if (rc == 0 && y == '"' && (rc = json_stream_dup(pg->text, m.value, m.value_end, &s)) == 0 && s)
        ob_attr(b, "data-yanked", s);
    else if (y == 't')
        ob_puts(b, " data-yanked");
    free(s);
    char cm = page_kind(pg, f, "core-metadata", &m);
    if (cm == 't' || cm == '{') {
        const char *v = "true";
        if (cm == '{' && hash_fragment(pg, m.value, frag, sizeof(frag)))
            v = frag;
        /*
         * PEP 714: JSON carries only "core-metadata" (pip 22.3 to 23.1 fail on the old key
         * there); HTML may carry the old attribute too, for the clients that know only it.
         */
        ob_attr(b, "data-core-metadata", v);
        ob_attr(b, "data-dist-info-metadata", v);
    }
    ob_puts(b, ">");
    ob_escaped(b, name);
    ob_puts(b, "</a><br>\n");
    return rc;
}

/* A file object at f of the JSON answer: its "url" member(s) replaced by url. */
static void json_file(struct json_out *o, const struct page *pg, size_t f, const char *url)
{
    struct json_member m;
    size_t pos = f;
    bool first = true;
    json_out_put(o, "{", 1);
    while (json_stream_member(pg->text, pg->len, &pos, &m)) {
        json_out_puts(o, first ? "" : ",");
        first = false;
        json_out_value(o, pg->text, m.key, m.key_end);
        json_out_put(o, ":", 1);
        if (json_stream_key_is(pg->text, m.key, m.key_end, "url"))
            json_out_string(o, url);
        else
            json_out_value(o, pg->text, m.value, m.value_end);
    }
    json_out_put(o, "}", 1);
}

/*
 * Each file of the array at files: the HTML <a> into b, or (o set up) the JSON object into o;
 * a file with no usable name or URL is left out of HTML and kept as it is in JSON.
 */
static int render_files(const struct page *pg, size_t files, const char *base, struct obuf *b,
                        struct json_out *o)
{
    size_t pos = files, f, f_end;
    bool first = true;
    int rc = 0;
    if (o)
        json_out_put(o, "[", 1);
    while (rc == 0 && !b->err && json_stream_element(pg->text, pg->len, &pos, &f, &f_end)) {
        char *url = NULL, *name = NULL, *abs = NULL;
        if (pg->text[f] == '{') {
            rc = page_string(pg, f, "url", &url);
            if (rc == 0)
                rc = page_string(pg, f, "filename", &name);
            abs = url && name ? fetch_url_resolve(base, url) : NULL;
        }
        if (rc == 0 && o) {
            json_out_puts(o, first ? "" : ",");
            if (abs)
                json_file(o, pg, f, abs);
            else
                json_out_value(o, pg->text, f, f_end);
        } else if (rc == 0 && abs) {
            rc = html_file(b, pg, f, name, abs);
        }
        first = false;
        free(url);
        free(name);
        free(abs);
    }
    if (o)
        json_out_put(o, "]", 1);
    return rc < 0 ? rc : b->err;
}

/* The JSON answer: the document with its files' URLs absolute, every other member as it is. */
static int render_json(const struct page *pg, const struct json_member *files, const char *base,
                       char **out, size_t *out_len)
{
    struct json_out o;
    struct obuf none = {0};
    struct json_member m;
    size_t pos = 0;
    bool first = true;
    int rc = 0;
    json_out_init(&o, pg->len + pg->len / 4);
    json_out_put(&o, "{", 1);
    while (rc == 0 && json_stream_member(pg->text, pg->len, &pos, &m)) {
        bool is_files = json_stream_key_is(pg->text, m.key, m.key_end, "files");
        if (is_files && m.key != files->key)
            continue; /* a repeated "files": the last one counts */
        json_out_puts(&o, first ? "" : ",");
        first = false;
        json_out_value(&o, pg->text, m.key, m.key_end);
        json_out_put(&o, ":", 1);
        if (is_files)
            rc = render_files(pg, m.value, base, &none, &o);
        else
            json_out_value(&o, pg->text, m.value, m.value_end);
    }
    json_out_put(&o, "}", 1);
    if (rc == 0 && o.len > PYPI_RENDER_MAX)
        rc = -EFBIG;
    if (rc < 0) {
        free(o.buf);
        return rc;
    }
    return json_out_finish(&o, out, out_len);
}

int pypi_index_render(const char *doc, size_t len, const char *base, enum pypi_variant v,
                      char **out, size_t *out_len, const char **ctype)
{
    struct page pg = {.text = doc, .len = len};
    struct json_member files, nm;
    struct obuf b = {0};
    char *name = NULL;
    if (json_stream_check(doc, len) < 0 || !json_stream_find(doc, len, 0, "files", &files) ||
        doc[files.value] != '[' || !json_stream_find(doc, len, 0, "name", &nm) ||
        doc[nm.value] != '"')
        return -EIO;
    int rc;
    if (v == PYPI_JSON) {
        rc = render_json(&pg, &files, base, &b.data, &b.len);
    } else if ((rc = json_stream_dup(doc, nm.value, nm.value_end, &name)) == 0 && name) {
        /* about what the page takes (each file's URL absolute): grown without a copy */
        b.cap = len + len / 2 + 4096;
        if (b.cap > PYPI_RENDER_MAX || !(b.data = malloc(b.cap)))
            b.cap = 0;
        ob_puts(&b, "<!DOCTYPE html>\n<html>\n<head>\n"
                    "<meta name=\"pypi:repository-version\" content=\"1.0\">\n<title>Links for ");
        ob_escaped(&b, name);
        ob_puts(&b, "</title>\n</head>\n<body>\n<h1>Links for ");
        ob_escaped(&b, name);
        ob_puts(&b, "</h1>\n");
        rc = render_files(&pg, files.value, base, &b, NULL);
        ob_puts(&b, "</body>\n</html>\n");
        rc = rc < 0 ? rc : b.err;
    } else if (rc == 0) {
        rc = -EIO; /* a name that does not decode */
    }
    free(name);
    if (rc < 0) {
        free(b.data);
        return rc;
    }
    *out = b.data;
    *out_len = b.len;
    *ctype = v == PYPI_JSON   ? "application/vnd.pypi.simple.v1+json"
             : v == PYPI_HTML ? "application/vnd.pypi.simple.v1+html"
                              : "text/html; charset=utf-8";
    return 0;
}

enum pypi_variant pypi_accept_variant(const char *accept)
{
    static const struct {
        const char *type;
        enum pypi_variant v;
        bool exact;
    } known[] = {
        {"application/vnd.pypi.simple.v1+json", PYPI_JSON, true},
        {"application/vnd.pypi.simple.latest+json", PYPI_JSON, true},
        {"application/vnd.pypi.simple.v1+html", PYPI_HTML, true},
        {"application/vnd.pypi.simple.latest+html", PYPI_HTML, true},
        {"text/html", PYPI_TEXT_HTML, true},
        {"text/*", PYPI_TEXT_HTML, false},
        {"*/*", PYPI_TEXT_HTML, false},
    };
    enum pypi_variant best = PYPI_TEXT_HTML;
    double best_q = -1.0;
    bool best_exact = false;
    struct accept_range r;
    for (const char *p = accept; accept_next(&p, &r);) {
        for (size_t i = 0; r.q > 0.0 && i < sizeof(known) / sizeof(known[0]); i++) {
            if (strlen(known[i].type) != r.len || strncasecmp(r.type, known[i].type, r.len) != 0)
                continue;
            /* Higher q wins; on a tie an exact type beats a wildcard, then JSON beats HTML. */
            if (r.q > best_q || (r.q == best_q && known[i].exact && !best_exact) ||
                (r.q == best_q && known[i].exact == best_exact && known[i].v < best)) {
                best = known[i].v;
                best_q = r.q;
                best_exact = known[i].exact;
            }
        }
    }
    return best;
}

/*
 * pypi_render: the document the pypi driver keeps (src/parsers/pypi_index.c) rendered for
 * the shim as PEP 691 JSON or PEP 503 HTML, every file URL resolved against the shim, and
 * the Accept header's choice between them (include/upstreamfs/pypi.h). Pure: no I/O.
 */
#include "upstreamfs/pypi.h"
#include "upstreamfs/accept.h"
#include "upstreamfs/fetch.h"

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

/* "<alg>=<hex>" of the strongest hash (sha256 first, as PEP 503 recommends) into buf. */
static bool hash_fragment(const json_t *hashes, char *buf, size_t len)
{
    const char *k;
    json_t *v;
    const char *sha = json_string_value(json_object_get(hashes, "sha256"));
    if (sha) {
        snprintf(buf, len, "sha256=%s", sha);
        return true;
    }
    json_object_foreach((json_t *)hashes, k, v)
    {
        if (json_is_string(v)) {
            snprintf(buf, len, "%s=%s", k, json_string_value(v));
            return true;
        }
    }
    return false;
}

/* One <a> of a PEP 503 page. */
static void html_file(struct obuf *b, const json_t *f, const char *url)
{
    char frag[PYPI_HASH_HEX + 20];
    const char *name = json_string_value(json_object_get(f, "filename"));
    ob_puts(b, "<a href=\"");
    ob_escaped(b, url);
    if (hash_fragment(json_object_get(f, "hashes"), frag, sizeof(frag))) {
        ob_puts(b, "#");
        ob_escaped(b, frag);
    }
    ob_puts(b, "\"");
    const char *rp = json_string_value(json_object_get(f, "requires-python"));
    if (rp)
        ob_attr(b, "data-requires-python", rp);
    json_t *y = json_object_get(f, "yanked");
    if (json_is_string(y))
        ob_attr(b, "data-yanked", json_string_value(y));
    else if (json_is_true(y))
        ob_puts(b, " data-yanked");
    json_t *cm = json_object_get(f, "core-metadata");
    if (json_is_true(cm) || json_is_object(cm)) {
        const char *v = "true";
        if (json_is_object(cm) && hash_fragment(cm, frag, sizeof(frag)))
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
}

int pypi_index_render(const char *doc, size_t len, const char *base, enum pypi_variant v,
                      char **out, size_t *out_len, const char **ctype)
{
    json_error_t jerr;
    size_t i;
    json_t *f;
    struct obuf b = {0};
    int rc = 0;
    json_t *root = json_loadb(doc, len, 0, &jerr);
    json_t *files = json_object_get(root, "files");
    const char *name = json_string_value(json_object_get(root, "name"));
    if (!json_is_object(root) || !json_is_array(files) || !name) {
        json_decref(root);
        return -EIO;
    }
    if (v != PYPI_JSON) {
        ob_puts(&b, "<!DOCTYPE html>\n<html>\n<head>\n"
                    "<meta name=\"pypi:repository-version\" content=\"1.0\">\n<title>Links for ");
        ob_escaped(&b, name);
        ob_puts(&b, "</title>\n</head>\n<body>\n<h1>Links for ");
        ob_escaped(&b, name);
        ob_puts(&b, "</h1>\n");
    }
    json_array_foreach(files, i, f)
    {
        const char *url = json_string_value(json_object_get(f, "url"));
        char *abs = url ? fetch_url_resolve(base, url) : NULL;
        if (!abs || !json_string_value(json_object_get(f, "filename"))) {
            free(abs);
            continue;
        }
        if (v == PYPI_JSON && json_object_set_new(f, "url", json_string(abs)) < 0)
            rc = -ENOMEM;
        else if (v != PYPI_JSON)
            html_file(&b, f, abs);
        free(abs);
        if (rc < 0 || b.err)
            break;
    }
    if (v == PYPI_JSON) {
        char *s = rc == 0 ? json_dumps(root, JSON_COMPACT) : NULL;
        b.data = s;
        b.len = s ? strlen(s) : 0;
        if (!s && rc == 0)
            rc = -ENOMEM;
    } else {
        ob_puts(&b, "</body>\n</html>\n");
        rc = rc < 0 ? rc : b.err;
    }
    json_decref(root);
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

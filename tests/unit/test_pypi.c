/*
 * test_pypi: the pypi driver's document handling — PEP 503 name
 * normalisation, HTML (PEP 503) and JSON (PEP 691) index pages read into one
 * form (relative and absolute URLs, <base href>, hash fragments, yanked,
 * requires-python, core metadata), hostile pages (unusable file names,
 * non-http links, garbage, deep nesting), what a file resolves to, the
 * document the mount keeps, its rendering for the shim as JSON and HTML,
 * a registry's local files merged into it, and Accept negotiation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "upstreamfs/driver.h"
#include "upstreamfs/hash.h"
#include "upstreamfs/pypi.h"

#include <errno.h>
#include <jansson.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define H1 "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
#define H2 "486ea46224d1bb4fb680f34f7c9ad96a8f24ec88be73ea8e5a6c65260e9cb8a7"

static const char page_html[] =
    "<!DOCTYPE html>\n<html><head><title>Links for Demo_Pkg</title></head><body>\n"
    "<h1>Links for demo-pkg</h1>\n"
    "<a href=\"../../packages/demo_pkg-1.0-py3-none-any.whl#sha256=" H1 "\" "
    "data-requires-python=\"&gt;=3.8\" data-core-metadata=\"sha256=" H2 "\">"
    "demo_pkg-1.0-py3-none-any.whl</a><br>\n"
    "<a href=\"https://files.example/p/demo_pkg-1.0.tar.gz#SHA256=" H1 "\" data-yanked=\"\">"
    "demo_pkg-1.0.tar.gz</a><br>\n"
    "<a href=\"demo_pkg-0.9.tar.gz#md5=0123456789abcdef0123456789abcdef\" "
    "data-yanked=\"broken &amp; &lt;bad&gt;\" data-dist-info-metadata=\"true\">x</a>\n"
    "<a href=\"../\">parent</a>\n"
    "<a href=\"javascript:alert(1)\">js</a>\n"
    "<a href=\"file:///etc/passwd\">passwd</a>\n"
    "<a href=\"%2e%2e\">dots</a>\n"
    "<a href=\".hidden-1.0.tar.gz\">hidden</a>\n"
    "<a href=\"a%2Fb-1.0.tar.gz\">escaped slash</a>\n"
    "<a href=\"nul%00x.tar.gz\">nul</a>\n"
    "<a>no href</a>\n"
    "<a href=\"https://other.example/demo_pkg-1.0.tar.gz\">duplicate</a>\n"
    "<a href=\"demo_pkg-0.8.tar.gz#sha256=nothex\">bad hash</a>\n"
    "</body></html>\n";

static json_t *file_named(json_t *index, const char *name)
{
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(index, "files"), i, f)
    {
        if (!strcmp(json_string_value(json_object_get(f, "filename")), name))
            return f;
    }
    return NULL;
}

static const char *str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* The canonical form as a tree to check: its document with absolute URLs, read by jansson. */
static json_t *tree_of(const struct pypi_index *ix)
{
    char *doc = NULL;
    size_t len = 0;
    json_error_t jerr;
    assert_int_equal(pypi_index_emit(ix, true, &doc, &len), 0);
    json_t *t = json_loadb(doc, len, 0, &jerr);
    assert_non_null(t);
    free(doc);
    return t;
}

/* pypi_index_parse, the result as tree_of makes it. */
static int parse_tree(const char *body, size_t len, const char *ctype, const char *page_url,
                      const char *name, json_t **out)
{
    struct pypi_index *ix = NULL;
    int rc = pypi_index_parse(body, len, ctype, page_url, name, &ix);
    if (rc == 0) {
        *out = tree_of(ix);
        pypi_index_free(ix);
    }
    return rc;
}

static void normalise(void **state)
{
    (void)state;
    char out[64];
    const struct {
        const char *in, *want;
    } good[] = {{"Foo_Bar", "foo-bar"},
                {"a..b--c__d", "a-b-c-d"},
                {"A", "a"},
                {"zope.interface", "zope-interface"},
                {"x-_.-y", "x-y"},
                {"Django", "django"},
                {"123", "123"}};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(pypi_normalise(good[i].in, out, sizeof(out)), 0);
        assert_string_equal(out, good[i].want);
    }
    const char *bad[] = {"",   "-a", "a-", "a b", "a/b", "\xc3\xa9",
                         ".a", "a.", "_",  "a\n", "%61", "a+b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(pypi_normalise(bad[i], out, sizeof(out)), -EINVAL);
    assert_int_equal(pypi_normalise("abcdef", out, 4), -ENAMETOOLONG);
}

static void html_page(void **state)
{
    (void)state;
    json_t *ix = NULL;
    assert_int_equal(parse_tree(page_html, strlen(page_html), "text/html; charset=utf-8",
                                "http://up.example/root/simple/demo-pkg/", "demo-pkg", &ix),
                     0);
    assert_string_equal(str(ix, "name"), "demo-pkg");
    assert_int_equal(json_array_size(json_object_get(ix, "files")), 4);

    json_t *whl = file_named(ix, "demo_pkg-1.0-py3-none-any.whl");
    assert_non_null(whl);
    assert_string_equal(str(whl, "url"),
                        "http://up.example/root/packages/demo_pkg-1.0-py3-none-any.whl");
    assert_string_equal(str(json_object_get(whl, "hashes"), "sha256"), H1);
    assert_string_equal(str(whl, "requires-python"), ">=3.8");
    assert_string_equal(str(json_object_get(whl, "core-metadata"), "sha256"), H2);
    assert_null(json_object_get(whl, "yanked"));

    json_t *sd = file_named(ix, "demo_pkg-1.0.tar.gz");
    assert_non_null(sd);
    assert_string_equal(str(sd, "url"), "https://files.example/p/demo_pkg-1.0.tar.gz");
    /* Hash names are lower case in the PEP; a shouting one is not one. */
    assert_int_equal(json_object_size(json_object_get(sd, "hashes")), 0);
    assert_true(json_is_true(json_object_get(sd, "yanked")));

    json_t *old = file_named(ix, "demo_pkg-0.9.tar.gz");
    assert_non_null(old);
    assert_string_equal(str(json_object_get(old, "hashes"), "md5"),
                        "0123456789abcdef0123456789abcdef");
    assert_string_equal(str(old, "yanked"), "broken & <bad>");
    assert_true(json_is_true(json_object_get(old, "core-metadata")));

    json_t *bad = file_named(ix, "demo_pkg-0.8.tar.gz");
    assert_non_null(bad);
    assert_int_equal(json_object_size(json_object_get(bad, "hashes")), 0);
    json_decref(ix);

    /* <base href> moves every relative link. */
    const char based[] = "<html><head><base href=\"https://cdn.example/files/\"></head>"
                         "<body><a href=\"x-1.0.tar.gz\">x-1.0.tar.gz</a></body></html>";
    assert_int_equal(parse_tree(based, strlen(based), "text/html", "http://up/simple/x/", "x", &ix),
                     0);
    assert_string_equal(str(file_named(ix, "x-1.0.tar.gz"), "url"),
                        "https://cdn.example/files/x-1.0.tar.gz");
    json_decref(ix);
}

static void json_page(void **state)
{
    (void)state;
    const char page[] =
        "{\"meta\":{\"api-version\":\"1.1\"},\"name\":\"demo-pkg\",\"versions\":[\"1.0\"],"
        "\"files\":["
        "{\"filename\":\"demo_pkg-1.0.tar.gz\",\"url\":\"../../p/demo_pkg-1.0.tar.gz\","
        "\"hashes\":{\"sha256\":\"" H1 "\",\"BAD\":\"00\",\"sha512\":\"zz\"},"
        "\"requires-python\":\">=3.7\",\"yanked\":\"oops\",\"size\":1234,"
        "\"upload-time\":\"2024-01-01T00:00:00.000000Z\","
        "\"dist-info-metadata\":{\"sha256\":\"" H2 "\"}},"
        "{\"filename\":\"../evil.tar.gz\",\"url\":\"http://x/evil.tar.gz\",\"hashes\":{}},"
        "{\"filename\":\"demo_pkg-2.0.tar.gz\",\"url\":\"ftp://x/a.tar.gz\",\"hashes\":{}},"
        "{\"filename\":\"demo_pkg-3.0.tar.gz\",\"hashes\":{}},"
        "{\"filename\":7,\"url\":\"http://x/7\"},"
        "\"not an object\","
        "{\"filename\":\"demo_pkg-4.0.tar.gz\",\"url\":\"http://x/4.tar.gz#sha256=00\","
        "\"hashes\":[],\"yanked\":false,\"size\":-5,\"core-metadata\":false}"
        "]}";
    json_t *ix = NULL;
    struct pypi_index *form = NULL;
    assert_int_equal(pypi_index_parse(page, strlen(page), "application/vnd.pypi.simple.v1+json",
                                      "https://up/simple/demo-pkg/", "demo-pkg", &form),
                     0);
    ix = tree_of(form);
    assert_int_equal(json_array_size(json_object_get(ix, "files")), 2);
    json_t *f = file_named(ix, "demo_pkg-1.0.tar.gz");
    assert_string_equal(str(f, "url"), "https://up/p/demo_pkg-1.0.tar.gz");
    assert_int_equal(json_object_size(json_object_get(f, "hashes")), 1);
    assert_string_equal(str(f, "yanked"), "oops");
    assert_int_equal(json_integer_value(json_object_get(f, "size")), 1234);
    assert_string_equal(str(json_object_get(f, "core-metadata"), "sha256"), H2);
    json_t *g = file_named(ix, "demo_pkg-4.0.tar.gz");
    assert_string_equal(str(g, "url"), "http://x/4.tar.gz");
    assert_null(json_object_get(g, "yanked"));
    assert_null(json_object_get(g, "size"));
    assert_null(json_object_get(g, "core-metadata"));

    char *url = NULL, *expect = NULL;
    int64_t size = 0;
    assert_int_equal(pypi_index_find(form, "demo_pkg-1.0.tar.gz", &url, &expect, &size), 0);
    assert_string_equal(url, "https://up/p/demo_pkg-1.0.tar.gz");
    assert_string_equal(expect, "sha256:" H1);
    assert_int_equal(size, 1234);
    free(url);
    free(expect);
    assert_int_equal(pypi_index_find(form, "demo_pkg-1.0.tar.gz.metadata", &url, &expect, &size),
                     0);
    assert_string_equal(url, "https://up/p/demo_pkg-1.0.tar.gz.metadata");
    assert_string_equal(expect, "sha256:" H2);
    assert_int_equal(size, -1);
    free(url);
    free(expect);
    assert_int_equal(pypi_index_find(form, "demo_pkg-4.0.tar.gz", &url, &expect, &size), 0);
    assert_null(expect);
    free(url);
    assert_int_equal(pypi_index_find(form, "demo_pkg-4.0.tar.gz.metadata", &url, &expect, &size),
                     -ENOENT);
    assert_int_equal(pypi_index_find(form, "../evil.tar.gz", &url, &expect, &size), -ENOENT);
    json_decref(ix);
    pypi_index_free(form);

    /* Without a content type, a body that starts with '{' is JSON. */
    assert_int_equal(
        parse_tree(page, strlen(page), NULL, "https://up/simple/demo-pkg/", "demo-pkg", &ix), 0);
    assert_int_equal(json_array_size(json_object_get(ix, "files")), 2);
    json_decref(ix);

    /* Another major version, or no file list, is not a page this reads. */
    const char *bad[] = {"{\"meta\":{\"api-version\":\"2.0\"},\"files\":[]}",
                         "{\"meta\":{}}",
                         "{\"files\":{}}",
                         "[]",
                         "{",
                         "{\"files\":[]}x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(
            parse_tree(bad[i], strlen(bad[i]), "application/json", "http://up/simple/x/", "x", &ix),
            -EIO);
}

static void hostile_html(void **state)
{
    (void)state;
    json_t *ix = NULL;
    /* Garbage parses (HTML is forgiving) to no files; it never crashes. */
    const char *junk[] = {"",
                          "<",
                          "\xff\xfe\x00\x01",
                          "<a href=",
                          "<a href=\"\">",
                          "<<<<>>>>",
                          "<a href=\"x\0y.tar.gz\">"};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        size_t len = i == 2 ? 4 : i == 6 ? 22 : strlen(junk[i]);
        int rc = parse_tree(junk[i], len, "text/html", "http://up/simple/x/", "x", &ix);
        assert_true(rc == 0 || rc == -EIO);
        if (rc == 0) {
            size_t k;
            json_t *f;
            json_array_foreach(json_object_get(ix, "files"), k, f)
            {
                assert_null(strchr(str(f, "filename"), '/'));
            }
            json_decref(ix);
        }
    }
    /* Deep nesting. */
    size_t depth = 50000;
    char *deep = malloc(depth * 5 + 100);
    assert_non_null(deep);
    size_t o = 0;
    for (size_t i = 0; i < depth; i++) {
        memcpy(deep + o, "<div>", 5);
        o += 5;
    }
    o += (size_t)sprintf(deep + o, "<a href=\"deep-1.0.tar.gz\">deep</a>");
    int rc = parse_tree(deep, o, "text/html", "http://up/simple/deep/", "deep", &ix);
    assert_true(rc == 0 || rc == -EIO);
    if (rc == 0)
        json_decref(ix);
    free(deep);
}

static void mount_document_and_render(void **state)
{
    (void)state;
    struct pypi_index *ix = NULL;
    char *doc = NULL, *out = NULL;
    size_t dl = 0, len = 0;
    const char *ctype = NULL;
    assert_int_equal(pypi_index_parse(page_html, strlen(page_html), "text/html",
                                      "http://up.example/root/simple/demo-pkg/", "demo-pkg", &ix),
                     0);
    assert_int_equal(pypi_index_emit(ix, false, &doc, &dl), 0);
    pypi_index_free(ix);
    /* The mount's document: relative URLs only; core metadata under its PEP 714 name only. */
    assert_null(strstr(doc, "up.example"));
    assert_null(strstr(doc, "files.example"));
    assert_non_null(strstr(doc, "\"url\":\"demo_pkg-1.0-py3-none-any.whl\""));
    assert_non_null(strstr(doc, "\"core-metadata\""));
    assert_null(strstr(doc, "\"dist-info-metadata\""));

    const char *base = "http://127.0.0.1:5000/py/demo-pkg/.simple.json";
    assert_int_equal(pypi_index_render(doc, dl, base, PYPI_JSON, &out, &len, &ctype), 0);
    assert_string_equal(ctype, "application/vnd.pypi.simple.v1+json");
    json_error_t jerr;
    json_t *j = json_loads(out, 0, &jerr);
    assert_non_null(j);
    assert_string_equal(str(file_named(j, "demo_pkg-1.0.tar.gz"), "url"),
                        "http://127.0.0.1:5000/py/demo-pkg/demo_pkg-1.0.tar.gz");
    assert_string_equal(
        str(json_object_get(file_named(j, "demo_pkg-1.0-py3-none-any.whl"), "hashes"), "sha256"),
        H1);
    json_decref(j);
    free(out);

    assert_int_equal(pypi_index_render(doc, dl, base, PYPI_HTML, &out, &len, &ctype), 0);
    assert_string_equal(ctype, "application/vnd.pypi.simple.v1+html");
    assert_non_null(strstr(out, "<a href=\"http://127.0.0.1:5000/py/demo-pkg/"
                                "demo_pkg-1.0-py3-none-any.whl#sha256=" H1 "\""));
    assert_non_null(strstr(out, "data-requires-python=\"&gt;=3.8\""));
    assert_non_null(strstr(out, "data-core-metadata=\"sha256=" H2 "\""));
    assert_non_null(strstr(out, "data-dist-info-metadata=\"sha256=" H2 "\""));
    assert_non_null(strstr(out, "data-yanked=\"broken &amp; &lt;bad&gt;\""));
    assert_non_null(strstr(out, "demo_pkg-0.9.tar.gz#md5=0123456789abcdef0123456789abcdef"));
    assert_null(strstr(out, "up.example"));
    free(out);
    assert_int_equal(pypi_index_render(doc, dl, base, PYPI_TEXT_HTML, &out, &len, &ctype), 0);
    assert_string_equal(ctype, "text/html; charset=utf-8");
    free(out);
    free(doc);

    const char *bad[] = {"", "{}", "{\"name\":\"x\"}", "{\"files\":[]}", "[1]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(
            pypi_index_render(bad[i], strlen(bad[i]), base, PYPI_HTML, &out, &len, &ctype), -EIO);
}

/*
 * The bytes of the mount's document and of both answers, as the tree-based code wrote them
 * before the page was read through SAX and rendered in place (src/parsers/pypi_index.c,
 * pypi_render.c): they must not change.
 */
static void same_bytes_as_before(void **state)
{
    (void)state;
    static const char page[] =
        "<html><head><base href=\"http://files.example/x/\"></head><body><a "
        "href=\"a-1.0.tar.gz#md5=0123456789ABCDEF0123456789abcdef\" data-yanked=\"\">a</a><a "
        "href=\"a-1.1.tar.gz#sha512=aa\" data-yanked=\"broken &amp; &lt;bad&gt;\" "
        "data-requires-python=\"&gt;=3.8\">a</a><a href=\"a%20b-1.2.whl#sha256=bb\" "
        "data-core-metadata=\"true\">x</a><a href=\"a-1.3.whl\" "
        "data-dist-info-metadata=\"sha1=cc\">x</a><a "
        "href=\"ftp://no/a-1.4.whl\">x</a></body></html>";
    static const char want_doc[] =
        "{\"meta\":{\"api-version\":\"1.0\"},\"name\":\"demo\",\"files\":[{\"filename\":\"a-1.0."
        "tar.gz\",\"url\":\"a-1.0.tar.gz\",\"hashes\":{\"md5\":"
        "\"0123456789abcdef0123456789abcdef\"},\"yanked\":true},{\"filename\":\"a-1.1.tar.gz\","
        "\"url\":\"a-1.1.tar.gz\",\"hashes\":{\"sha512\":\"aa\"},\"requires-python\":\">=3.8\","
        "\"yanked\":\"broken & <bad>\"},{\"filename\":\"a "
        "b-1.2.whl\",\"url\":\"a%20b-1.2.whl\",\"hashes\":{\"sha256\":\"bb\"},\"core-metadata\":"
        "true},{\"filename\":\"a-1.3.whl\",\"url\":\"a-1.3.whl\",\"hashes\":{},\"core-metadata\":{"
        "\"sha1\":\"cc\"}}]}";
    static const char want_json[] =
        "{\"meta\":{\"api-version\":\"1.0\"},\"name\":\"demo\",\"files\":[{\"filename\":\"a-1.0."
        "tar.gz\",\"url\":\"http://s:5/py/demo/"
        "a-1.0.tar.gz\",\"hashes\":{\"md5\":\"0123456789abcdef0123456789abcdef\"},\"yanked\":true},"
        "{\"filename\":\"a-1.1.tar.gz\",\"url\":\"http://s:5/py/demo/"
        "a-1.1.tar.gz\",\"hashes\":{\"sha512\":\"aa\"},\"requires-python\":\">=3.8\",\"yanked\":"
        "\"broken & <bad>\"},{\"filename\":\"a "
        "b-1.2.whl\",\"url\":\"http://s:5/py/demo/"
        "a%20b-1.2.whl\",\"hashes\":{\"sha256\":\"bb\"},\"core-metadata\":true},{\"filename\":\"a-"
        "1.3.whl\",\"url\":\"http://s:5/py/demo/"
        "a-1.3.whl\",\"hashes\":{},\"core-metadata\":{\"sha1\":\"cc\"}}]}";
    static const char want_html[] =
        "<!DOCTYPE html>\n"
        "<html>\n"
        "<head>\n"
        "<meta name=\"pypi:repository-version\" content=\"1.0\">\n"
        "<title>Links for demo</title>\n"
        "</head>\n"
        "<body>\n"
        "<h1>Links for demo</h1>\n"
        "<a href=\"http://s:5/py/demo/a-1.0.tar.gz#md5=0123456789abcdef0123456789abcdef\" "
        "data-yanked>a-1.0.tar.gz</a><br>\n"
        "<a href=\"http://s:5/py/demo/a-1.1.tar.gz#sha512=aa\" data-requires-python=\"&gt;=3.8\" "
        "data-yanked=\"broken &amp; &lt;bad&gt;\">a-1.1.tar.gz</a><br>\n"
        "<a href=\"http://s:5/py/demo/a%20b-1.2.whl#sha256=bb\" data-core-metadata=\"true\" "
        "data-dist-info-metadata=\"true\">a b-1.2.whl</a><br>\n"
        "<a href=\"http://s:5/py/demo/a-1.3.whl\" data-core-metadata=\"sha1=cc\" "
        "data-dist-info-metadata=\"sha1=cc\">a-1.3.whl</a><br>\n"
        "</body>\n"
        "</html>\n"
        "";
    struct pypi_index *ix = NULL;
    json_t *tree = NULL;
    char *doc = NULL, *out = NULL;
    size_t dl = 0, len = 0;
    const char *ctype = NULL;
    assert_int_equal(pypi_index_parse(page, strlen(page), "text/html",
                                      "http://up.example/simple/demo/", "demo", &ix),
                     0);
    assert_int_equal(pypi_index_emit(ix, false, &doc, &dl), 0);
    pypi_index_free(ix);
    assert_string_equal(doc, want_doc);
    const char *base = "http://s:5/py/demo/.simple.json";
    assert_int_equal(pypi_index_render(doc, dl, base, PYPI_JSON, &out, &len, &ctype), 0);
    assert_string_equal(out, want_json);
    assert_int_equal(len, strlen(want_json));
    free(out);
    assert_int_equal(pypi_index_render(doc, dl, base, PYPI_HTML, &out, &len, &ctype), 0);
    assert_string_equal(out, want_html);
    free(out);
    free(doc);
    /* the rendered JSON answer read back as a page: the same document */
    assert_int_equal(pypi_index_parse(want_json, strlen(want_json),
                                      "application/vnd.pypi.simple.v1+json", base, "demo", &ix),
                     0);
    assert_int_equal(pypi_index_emit(ix, false, &doc, &dl), 0);
    pypi_index_free(ix);
    assert_string_equal(doc, want_doc);
    free(doc);
    /* a <base> after the first links: every link resolves against it, read again */
    static const char late[] = "<a href=\"x-1.whl\">x</a><base href=\"http://f.example/d/\">"
                               "<a href=\"y-1.whl\">y</a>";
    assert_int_equal(parse_tree(late, strlen(late), "text/html", "http://up.example/simple/demo/",
                                "demo", &tree),
                     0);
    assert_int_equal(json_array_size(json_object_get(tree, "files")), 2);
    assert_string_equal(str(file_named(tree, "x-1.whl"), "url"), "http://f.example/d/x-1.whl");
    assert_string_equal(str(file_named(tree, "y-1.whl"), "url"), "http://f.example/d/y-1.whl");
    json_decref(tree);
}

static void accept_negotiation(void **state)
{
    (void)state;
    assert_int_equal(pypi_accept_variant("application/vnd.pypi.simple.v1+json, "
                                         "application/vnd.pypi.simple.v1+html; q=0.1, "
                                         "text/html; q=0.01"),
                     PYPI_JSON);
    assert_int_equal(pypi_accept_variant("text/html"), PYPI_TEXT_HTML);
    assert_int_equal(pypi_accept_variant("application/vnd.pypi.simple.v1+html"), PYPI_HTML);
    assert_int_equal(pypi_accept_variant("application/vnd.pypi.simple.latest+json"), PYPI_JSON);
    assert_int_equal(pypi_accept_variant("*/*"), PYPI_TEXT_HTML);
    assert_int_equal(pypi_accept_variant(NULL), PYPI_TEXT_HTML);
    assert_int_equal(pypi_accept_variant("image/png"), PYPI_TEXT_HTML);
    assert_int_equal(pypi_accept_variant("application/vnd.pypi.simple.v1+json;q=0, text/html"),
                     PYPI_TEXT_HTML);
    assert_int_equal(pypi_accept_variant("*/*, application/vnd.pypi.simple.v1+json"), PYPI_JSON);
    assert_int_equal(
        pypi_accept_variant("text/html;q=0.9, application/vnd.pypi.simple.v1+json;q=0.5"),
        PYPI_TEXT_HTML);
    assert_int_equal(pypi_accept_variant(";;,,;q=,"), PYPI_TEXT_HTML);
}

static void merge_local_files(void **state)
{
    (void)state;
    char *out = NULL, *up = NULL;
    size_t len = 0, ulen = 0;
    json_error_t jerr;
    struct drv_local_file files[] = {
        {.name = "demo_pkg-2.0-py3-none-any.whl", .size = 10, .sha256 = H1},
        {.name = "demo_pkg-2.0-py3-none-any.whl.metadata", .size = 3, .sha256 = H2},
        {.name = ".simple.json", .size = 5, .sha256 = H2},
        {.name = "demo_pkg-1.0-py3-none-any.whl", .size = 7, .sha256 = H2},
    };
    /* only local files: a document of its own; dotfiles and .metadata are no distributions */
    assert_int_equal(pypi_index_merge_local(NULL, 0, "demo-pkg", files, 1, &out, &len), 0);
    json_t *d = json_loadb(out, len, 0, &jerr);
    assert_string_equal(json_string_value(json_object_get(d, "name")), "demo-pkg");
    assert_int_equal(json_array_size(json_object_get(d, "files")), 1);
    json_t *f = json_array_get(json_object_get(d, "files"), 0);
    assert_string_equal(json_string_value(json_object_get(f, "url")),
                        "demo_pkg-2.0-py3-none-any.whl");
    assert_string_equal(json_string_value(json_object_get(json_object_get(f, "hashes"), "sha256")),
                        H1);
    assert_int_equal(json_integer_value(json_object_get(f, "size")), 10);
    assert_null(json_object_get(f, "core-metadata"));
    json_decref(d);
    free(out);
    /* with the upstream's document: local first, its own .metadata, a same-named upstream dropped
     */
    struct pypi_index *idx = NULL;
    assert_int_equal(pypi_index_parse(page_html, strlen(page_html), "text/html",
                                      "https://pypi.example/simple/demo-pkg/", "demo-pkg", &idx),
                     0);
    assert_int_equal(pypi_index_emit(idx, false, &up, &ulen), 0);
    size_t nup = pypi_index_count(idx);
    pypi_index_free(idx);
    assert_int_equal(pypi_index_merge_local(up, ulen, "demo-pkg", files, 4, &out, &len), 0);
    d = json_loadb(out, len, 0, &jerr);
    json_t *fl = json_object_get(d, "files");
    assert_int_equal(json_array_size(fl), nup + 1);
    f = json_array_get(fl, 0);
    assert_string_equal(json_string_value(json_object_get(f, "filename")),
                        "demo_pkg-2.0-py3-none-any.whl");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(f, "core-metadata"), "sha256")), H2);
    f = json_array_get(fl, 1);
    assert_string_equal(json_string_value(json_object_get(f, "filename")),
                        "demo_pkg-1.0-py3-none-any.whl");
    assert_int_equal(json_integer_value(json_object_get(f, "size")), 7); /* the local one */
    json_decref(d);
    free(out);
    /* nothing to list, and a document that is not one */
    assert_int_equal(pypi_index_merge_local(NULL, 0, "demo-pkg", files + 1, 2, &out, &len),
                     -ENOENT);
    assert_int_equal(pypi_index_merge_local("[1]", 3, "demo-pkg", files, 1, &out, &len), -EIO);
    free(up);
}

/*
 * A page of 60,000 files (tools/bench/mkdocs.py's): its canonical form takes at most 3/5 of the
 * page (the jansson tree it replaced took about 6 times the page), and every file and its core
 * metadata is found by name in bounded time (a hash lookup: a walk of the page per lookup,
 * as `ls -l` of the project makes one per entry, took minutes).
 */
static void large_page(void **state)
{
    (void)state;
    enum { FILES = 60000 };
    size_t cap = (size_t)FILES * 330 + 256, len = 0;
    char *page = malloc(cap), name[80], hex[65];
    assert_non_null(page);
    len += (size_t)snprintf(page, cap, "<html><body>\n");
    for (int i = 0; i < FILES; i++) {
        snprintf(name, sizeof(name), "huge_proj-%d.%d.%d-py3-none-any.whl", i / 300, (i / 10) % 30,
                 i % 10);
        hash_sha256_hex(name, strlen(name), hex);
        len += (size_t)snprintf(page + len, cap - len,
                                "<a href=\"../../packages/%s#sha256=%s\" data-requires-python="
                                "\"&gt;=3.8\" data-dist-info-metadata=\"sha256=%s\">%s</a><br/>\n",
                                name, hex, hex, name);
    }
    len += (size_t)snprintf(page + len, cap - len, "</body></html>\n");
    struct mallinfo2 before = mallinfo2();
    struct pypi_index *ix = NULL;
    assert_int_equal(
        pypi_index_parse(page, len, "text/html", "http://up/simple/huge-proj/", "huge-proj", &ix),
        0);
    struct mallinfo2 after = mallinfo2();
    assert_int_equal(pypi_index_count(ix), FILES);
    size_t held = pypi_index_bytes(ix);
    size_t allocated = (after.uordblks + after.hblkhd) - (before.uordblks + before.hblkhd);
    print_message("page %zu bytes, its form %zu (malloc: %zu more in use)\n", len, held, allocated);
    assert_true(held <= len * 3 / 5);
    if (after.uordblks + after.hblkhd) /* glibc's malloc (not a sanitizer's) */
        assert_true(allocated <= len * 3 / 5);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = FILES - 1; i >= 0; i--) {
        char file[100], want[200], *url = NULL, *expect = NULL;
        int64_t size = 0;
        snprintf(name, sizeof(name), "huge_proj-%d.%d.%d-py3-none-any.whl", i / 300, (i / 10) % 30,
                 i % 10);
        hash_sha256_hex(name, strlen(name), hex);
        for (int meta = 0; meta < 2; meta++) {
            snprintf(file, sizeof(file), "%s%s", name, meta ? ".metadata" : "");
            assert_int_equal(pypi_index_find(ix, file, &url, &expect, &size), 0);
            snprintf(want, sizeof(want), "http://up/packages/%s", file);
            assert_string_equal(url, want);
            snprintf(want, sizeof(want), "sha256:%s", hex);
            assert_string_equal(expect, want);
            assert_int_equal(size, -1);
            free(url);
            free(expect);
        }
        assert_int_equal(pypi_index_lookup(ix, name), i);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    print_message("%d lookups in %.3f s\n", 2 * FILES, secs);
    assert_true(secs < 10.0);
    assert_int_equal(pypi_index_lookup(ix, "huge_proj-9.9.9.tar.gz"), -1);
    pypi_index_free(ix);
    free(page);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(normalise),
        cmocka_unit_test(html_page),
        cmocka_unit_test(json_page),
        cmocka_unit_test(hostile_html),
        cmocka_unit_test(mount_document_and_render),
        cmocka_unit_test(same_bytes_as_before),
        cmocka_unit_test(merge_local_files),
        cmocka_unit_test(accept_negotiation),
        cmocka_unit_test(large_page),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

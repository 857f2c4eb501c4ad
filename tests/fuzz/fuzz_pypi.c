/*
 * fuzz_pypi: a PyPI simple-API project page, HTML (PEP 503) or JSON
 * (PEP 691), through everything the driver and the shim do with it:
 * pypi_index_parse, pypi_index_find, pypi_index_emit, pypi_index_render
 * in each variant, and pypi_index_merge_local (a registry's local files laid
 * over the page). The first input byte picks the Content-Type; the rest is
 * the page, and also a stored document rendered as it is (read in place). The same bytes also go
 * through pypi_normalise and pypi_accept_variant as strings.
 *
 * Properties: the canonical form lists unique file names usable as one file
 * name, each with an absolute http(s) URL and lower-case hex hashes, and
 * pypi_index_find and pypi_index_lookup (its table of names) find each; every variant renders,
 * every file URL a client sees is on the shim's own origin, and a rendered page parses back to the
 * same files (what pip reads from the shim is what the remote listed); a merged page renders and
 * lists the local files first.
 */
#include "fuzz.h"

#include "upstreamfs/driver.h"
#include "upstreamfs/pypi.h"

#include <errno.h>
#include <jansson.h>

static const char *const ctypes[] = {NULL, "application/vnd.pypi.simple.v1+json",
                                     "text/html; charset=utf-8",
                                     "application/vnd.pypi.simple.v1+html", "application/json"};
static const char page_url[] = "https://pypi.example.org/simple/requests/";
static const char base[] = "http://127.0.0.1:5000/pypi/requests/";
static const char shim_origin[] = "http://127.0.0.1:5000/";

/* The canonical form as jansson reads its document with absolute URLs. */
static json_t *tree_of(const struct pypi_index *index)
{
    char *doc = NULL;
    size_t len = 0;
    json_error_t jerr;
    FUZZ_CHECK(pypi_index_emit(index, true, &doc, &len) == 0);
    json_t *t = json_loadb(doc, len, 0, &jerr);
    FUZZ_CHECK(t != NULL);
    free(doc);
    return t;
}

static size_t check_index(const struct pypi_index *form, bool on_shim)
{
    json_t *index = tree_of(form);
    json_t *files = json_object_get(index, "files");
    FUZZ_CHECK(json_is_array(files));
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f)
    {
        const char *fn = json_string_value(json_object_get(f, "filename"));
        const char *url = json_string_value(json_object_get(f, "url"));
        FUZZ_CHECK(fn && fn[0] && fn[0] != '.' && strlen(fn) <= 255 && !strpbrk(fn, "/\\"));
        for (const unsigned char *c = (const unsigned char *)fn; *c; c++)
            FUZZ_CHECK(*c >= 0x20 && *c != 0x7f);
        FUZZ_CHECK(url && (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0));
        if (on_shim)
            FUZZ_CHECK(strncmp(url, shim_origin, sizeof(shim_origin) - 1) == 0);
        const char *k;
        json_t *h;
        json_object_foreach(json_object_get(f, "hashes"), k, h)
        {
            const char *hex = json_string_value(h);
            FUZZ_CHECK(hex && hex[0] && strspn(hex, "0123456789abcdef") == strlen(hex));
            FUZZ_CHECK(strspn(k, "abcdefghijklmnopqrstuvwxyz0123456789") == strlen(k));
        }
        for (size_t j = 0; j < i; j++)
            FUZZ_CHECK(
                strcmp(json_string_value(json_object_get(json_array_get(files, j), "filename")),
                       fn) != 0);
        char *furl = NULL, *expect = NULL;
        int64_t size = 0;
        FUZZ_CHECK(pypi_index_find(form, fn, &furl, &expect, &size) == 0);
        FUZZ_CHECK(pypi_index_lookup(form, fn) == (ptrdiff_t)i);
        free(furl);
        free(expect);
    }
    size_t n = json_array_size(files);
    FUZZ_CHECK(n == pypi_index_count(form));
    json_decref(index);
    return n;
}

/* The rendered page, read back as the shim's client reads it, lists the same files. */
static void check_round_trip(const struct pypi_index *form, const char *page, size_t len,
                             const char *ctype)
{
    struct pypi_index *back_form = NULL;
    int rc = pypi_index_parse(page, len, ctype, base, "requests", &back_form);
    FUZZ_CHECK(rc == 0);
    check_index(back_form, true);
    json_t *index = tree_of(form), *back = tree_of(back_form);
    json_t *a = json_object_get(index, "files"), *b = json_object_get(back, "files");
    if (json_array_size(a) != json_array_size(b))
        fprintf(stderr, "%s page lists %zu files, the index %zu:\n%.*s\n", ctype,
                json_array_size(b), json_array_size(a), (int)len, page);
    FUZZ_CHECK(json_array_size(a) == json_array_size(b));
    for (size_t i = 0; i < json_array_size(a); i++) {
        const char *x = json_string_value(json_object_get(json_array_get(a, i), "filename"));
        const char *y = json_string_value(json_object_get(json_array_get(b, i), "filename"));
        if (strcmp(x, y) != 0)
            fprintf(stderr, "file %zu: %s became %s\n", i, x, y);
        FUZZ_CHECK(strcmp(x, y) == 0);
    }
    json_decref(index);
    json_decref(back);
    pypi_index_free(back_form);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

/* A registry's local files over the page: they come first, and the result still renders. */
static void check_merge(const char *doc, size_t len)
{
    static const struct drv_local_file files[] = {
        {.name = (char *)"requests-9.0-py3-none-any.whl",
         .size = 1,
         .sha256 = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"},
        {.name = (char *)"requests-9.0-py3-none-any.whl.metadata",
         .size = 2,
         .sha256 = "486ea46224d1bb4fb680f34f7c9ad96a8f24ec88be73ea8e5a6c65260e9cb8a7"},
    };
    char *m = NULL, *page = NULL;
    size_t ml = 0, pl = 0;
    const char *ctype;
    json_error_t jerr;
    int rc = pypi_index_merge_local(doc, len, "requests", files, 2, &m, &ml);
    FUZZ_CHECK(rc == 0 || rc == -ENOMEM);
    if (rc < 0)
        return;
    json_t *d = json_loadb(m, ml, 0, &jerr);
    const char *first = json_string_value(
        json_object_get(json_array_get(json_object_get(d, "files"), 0), "filename"));
    FUZZ_CHECK(first && strcmp(first, files[0].name) == 0);
    json_decref(d);
    rc = pypi_index_render(m, ml, base, PYPI_JSON, &page, &pl, &ctype);
    FUZZ_CHECK(rc == 0 || rc == -ENOMEM);
    free(page);
    free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *ct = ctypes[fuzz_take_byte(&data, &size) % (sizeof(ctypes) / sizeof(ctypes[0]))];
    struct pypi_index *index = NULL;
    int rc = pypi_index_parse((const char *)data, size, ct, page_url, "requests", &index);
    FUZZ_CHECK(rc == 0 || rc == -EIO || rc == -EFBIG || rc == -ENOMEM);
    if (rc == 0) {
        check_index(index, false);
        char *doc = NULL;
        size_t doc_len = 0;
        FUZZ_CHECK(pypi_index_emit(index, false, &doc, &doc_len) == 0);
        static const enum pypi_variant variants[] = {PYPI_JSON, PYPI_HTML, PYPI_TEXT_HTML};
        for (size_t v = 0; v < 3; v++) {
            char *page = NULL;
            size_t page_len = 0;
            const char *ctype = NULL;
            int rrc = pypi_index_render(doc, doc_len, base, variants[v], &page, &page_len, &ctype);
            FUZZ_CHECK(rrc == 0 || rrc == -ENOMEM);
            if (rrc == 0) {
                FUZZ_CHECK(ctype != NULL);
                if (!fuzz_skip("pypi-round-trip"))
                    check_round_trip(index, page, page_len, ctype);
                free(page);
            }
        }
        check_merge(doc, doc_len);
        free(doc);
        pypi_index_free(index);
    }

    /* The input as a stored document (read in place): rendered or refused, never read past. */
    for (int v = PYPI_JSON; v <= PYPI_HTML; v++) {
        char *page = NULL;
        size_t page_len = 0;
        const char *ctype = NULL;
        int rrc = pypi_index_render((const char *)data, size, base, (enum pypi_variant)v, &page,
                                    &page_len, &ctype);
        FUZZ_CHECK(rrc == 0 || rrc == -EIO || rrc == -ENOMEM || rrc == -EFBIG);
        FUZZ_CHECK(rrc < 0 || (page && page_len == strlen(page)));
        free(page);
    }

    char *s = fuzz_cstr(data, size);
    char norm[PYPI_NAME_MAX + 1];
    if (pypi_normalise(s, norm, sizeof(norm)) == 0)
        FUZZ_CHECK(strspn(norm, "abcdefghijklmnopqrstuvwxyz0123456789-") == strlen(norm));
    enum pypi_variant av = pypi_accept_variant(s);
    FUZZ_CHECK(av == PYPI_JSON || av == PYPI_HTML || av == PYPI_TEXT_HTML);
    free(s);
    return 0;
}

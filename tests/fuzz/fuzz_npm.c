/*
 * fuzz_npm: an npm registry package document ("packument", full or
 * abbreviated) through everything the driver and the shim do with it:
 * npm_packument_tarballs, npm_packument_rewrite, its abbreviated form and
 * npm_packument_render (all read in place: src/parsers/json_stream.c), and
 * npm_packument_merge (the input as a registry's own document laid over its
 * rewrite); the first input byte picks the package name (plain or scoped),
 * the rest is the document. The same bytes also go through npm_name_valid and
 * npm_accept_abbreviated as strings.
 *
 * Properties: every tarball is "<name>-<version>.tgz" usable as one file
 * name, with an absolute http(s) URL and a parsable expectation; file names
 * are unique; after the rewrite and the render every tarball URL a client
 * sees is on the shim's own origin (a client is never pointed at the
 * remote), and every file served before the rewrite is still served after;
 * a merge keeps every version of the document laid over.
 */
#include "fuzz.h"

#include "upstreamfs/hash.h"
#include "upstreamfs/npm.h"

#include <errno.h>
#include <jansson.h>

static const char *const names[] = {"left-pad", "@types/node", "lodash.merge", "@a/b"};
static const char doc_url[] = "https://npm.example.org/";
static const char shim_origin[] = "http://127.0.0.1:5000/";

static const char *unscoped(const char *name)
{
    const char *slash = name[0] == '@' ? strchr(name, '/') : NULL;
    return slash ? slash + 1 : name;
}

static void check_tarballs(const struct npm_tarballs *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++) {
        const struct npm_tarball *b = &t->items[i];
        FUZZ_CHECK(b->file && b->url);
        FUZZ_CHECK(!strchr(b->file, '/') && b->file[0] != '.' && strlen(b->file) <= 255);
        FUZZ_CHECK(strncmp(b->file, unscoped(name), strlen(unscoped(name))) == 0);
        size_t fl = strlen(b->file);
        FUZZ_CHECK(fl > 4 && strcmp(b->file + fl - 4, ".tgz") == 0);
        FUZZ_CHECK(strncmp(b->url, "http://", 7) == 0 || strncmp(b->url, "https://", 8) == 0);
        if (b->expect) {
            struct hash_expect e;
            FUZZ_CHECK(hash_expect_parse(b->expect, &e) == 0);
        }
        for (size_t j = 0; j < i; j++)
            FUZZ_CHECK(strcmp(t->items[j].file, b->file) != 0);
        FUZZ_CHECK(npm_tarballs_find(t, b->file) == b);
    }
}

static bool has_file(const struct npm_tarballs *t, const char *file)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->items[i].file, file) == 0)
            return true;
    return false;
}

/* Every dist.tarball of a rendered document is on the shim's origin. */
/* The input laid over its own rewrite: an object with every version of the input. */
static void check_merge(const char *up, size_t up_len, const char *local, size_t local_len)
{
    char *m = NULL;
    size_t ml = 0;
    json_error_t jerr;
    int rc = npm_packument_merge(up, up_len, local, local_len, &m, &ml);
    FUZZ_CHECK(rc == 0 || rc == -ENOMEM);
    if (rc < 0)
        return;
    json_t *merged = json_loadb(m, ml, 0, &jerr), *over = json_loadb(local, local_len, 0, &jerr);
    FUZZ_CHECK(json_is_object(merged) && json_is_object(over));
    const char *ver;
    json_t *v;
    json_t *versions = json_object_get(over, "versions");
    json_object_foreach(json_is_object(versions) ? versions : NULL, ver, v)
        FUZZ_CHECK(json_object_get(json_object_get(merged, "versions"), ver) != NULL);
    json_decref(merged);
    json_decref(over);
    free(m);
}

static void check_rendered(const char *doc, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb(doc, len, 0, &jerr);
    FUZZ_CHECK(json_is_object(root));
    const char *ver;
    json_t *v;
    json_object_foreach(json_object_get(root, "versions"), ver, v)
    {
        const char *tb = json_string_value(json_object_get(json_object_get(v, "dist"), "tarball"));
        if (tb && strncmp(tb, shim_origin, sizeof(shim_origin) - 1) != 0) {
            fprintf(stderr, "version %s: tarball %s is not on the shim\n", ver, tb);
            FUZZ_CHECK(!"a rendered tarball URL leaves the shim");
        }
    }
    json_decref(root);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *name = names[fuzz_take_byte(&data, &size) % (sizeof(names) / sizeof(names[0]))];
    struct npm_tarballs before = {0}, after = {0};
    int rc = npm_packument_tarballs((const char *)data, size, name, doc_url, &before);
    FUZZ_CHECK(rc == 0 || rc == -EIO || rc == -ENOMEM);
    check_tarballs(&before, name);

    char *doc = NULL, *out = NULL;
    size_t doc_len = 0, out_len = 0;
    int wrc = npm_packument_rewrite((const char *)data, size, name, &doc, &doc_len);
    FUZZ_CHECK(wrc == 0 || wrc == -EIO || wrc == -ENOMEM);
    FUZZ_CHECK((rc == -EIO) == (wrc == -EIO));
    if (wrc == 0) {
        char base[128];
        snprintf(base, sizeof(base), "%snpm/%s", shim_origin, name);
        FUZZ_CHECK(npm_packument_tarballs(doc, doc_len, name, base, &after) == 0);
        check_tarballs(&after, name);
        for (size_t i = 0; i < before.n; i++)
            FUZZ_CHECK(has_file(&after, before.items[i].file));
        int rrc = npm_packument_render(doc, doc_len, base, &out, &out_len);
        FUZZ_CHECK(rrc == 0 || rrc == -ENOMEM);
        if (rrc == 0)
            check_rendered(out, out_len);
        check_merge(doc, doc_len, (const char *)data, size);
    }
    /* The abbreviated form: read alike, and it serves every file the full form serves. */
    char *ab = NULL;
    size_t ab_len = 0;
    struct npm_tarballs abt = {0};
    int arc = npm_packument_rewrite_abbreviated((const char *)data, size, name, &ab, &ab_len);
    FUZZ_CHECK(arc == 0 || arc == -EIO || arc == -ENOMEM);
    FUZZ_CHECK((arc == -EIO) == (wrc == -EIO));
    if (arc == 0 && wrc == 0) {
        FUZZ_CHECK(npm_packument_tarballs(ab, ab_len, name, doc_url, &abt) == 0);
        for (size_t i = 0; i < after.n; i++)
            FUZZ_CHECK(has_file(&abt, after.items[i].file));
    }
    free(ab);
    npm_tarballs_clear(&abt);
    free(out);
    free(doc);
    npm_tarballs_clear(&before);
    npm_tarballs_clear(&after);

    char *s = fuzz_cstr(data, size);
    npm_name_valid(s);
    npm_accept_abbreviated(s);
    free(s);
    return 0;
}

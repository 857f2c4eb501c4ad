/*
 * test_npm: the npm driver's document handling — package names (scoped and
 * not, hostile ones), the tarball table (file names built from name and
 * version, URLs resolved and limited to http(s), integrity chosen from SRI
 * or shasum), the rewrite for the mount (relative tarballs, unusable ones
 * removed, everything else kept), the render for the shim (tarballs back at
 * the shim's URL), hostile JSON, and the Accept header's abbreviated form.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "upstreamfs/npm.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHA512_HELLO_B64                                                                           \
    "m3HSJL1i83hdltRq0+o9czGb+8KJDKra4t/3JRlnPKcjI8PZm6XBHXx6zG4UuMXaDEZjR1wuXDre9G9zvN7AQw=="
#define SHA512_HELLO_HEX                                                                           \
    "9b71d224bd62f3785d96d46ad3ea3d73319bfbc2890caadae2dff72519673ca72323c3d99ba5c11d7c7acc6e1"    \
    "4b8c5da0c4663475c2e5c3adef46f73bcdec043"
#define SHA256_HELLO_B64 "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="
#define SHA256_HELLO_HEX "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
#define SHA1_HELLO_B64   "qvTGHdzF6KLavt4PO0gs2a6pQ00="
#define SHA1_HELLO_HEX   "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"

static const char packument[] =
    "{\"_id\":\"@acme/util\",\"name\":\"@acme/util\",\"dist-tags\":{\"latest\":\"1.1.0\"},"
    "\"readme\":\"tarball: https://elsewhere/x.tgz\","
    "\"versions\":{"
    "\"1.0.0\":{\"name\":\"@acme/util\",\"version\":\"1.0.0\",\"dist\":{"
    "\"tarball\":\"https://reg.example/@acme/util/-/util-1.0.0.tgz\","
    "\"shasum\":\"" SHA1_HELLO_HEX "\",\"integrity\":\"sha1-" SHA1_HELLO_B64
    " sha512-" SHA512_HELLO_B64 "\"}},"
    "\"1.1.0\":{\"dist\":{\"tarball\":\"../files/util-1.1.0.tgz\",\"shasum\":\"" SHA1_HELLO_HEX
    "\"}},"
    "\"1.2.0\":{\"dist\":{\"tarball\":\"http://cdn.example/u.tgz\","
    "\"integrity\":\"sha512-notbase64!! sha256-" SHA256_HELLO_B64 "\"}},"
    "\"1.3.0\":{\"dist\":{\"tarball\":\"http://cdn.example/u3.tgz\",\"integrity\":\"sha512-x\","
    "\"shasum\":\"nothex\"}},"
    "\"../../etc\":{\"dist\":{\"tarball\":\"http://evil/a.tgz\"}},"
    "\"1.0.0/../../x\":{\"dist\":{\"tarball\":\"http://evil/b.tgz\"}},"
    "\"2.0.0\":{\"dist\":{\"tarball\":\"file:///etc/passwd\"}},"
    "\"3.0.0\":{\"dist\":{\"tarball\":\"javascript:alert(1)\"}},"
    "\"4.0.0\":{\"dist\":{\"tarball\":42}},"
    "\"5.0.0\":{\"nodist\":true},"
    "\"6.0.0\":\"not an object\""
    "}}";

/* npm_tarballs_find, checked against a scan of the table. */
static const struct npm_tarball *find(const struct npm_tarballs *t, const char *file)
{
    const struct npm_tarball *found = npm_tarballs_find(t, file);
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->items[i].file, file)) {
            assert_ptr_equal(found, &t->items[i]);
            return found;
        }
    assert_null(found);
    return NULL;
}

static void names(void **state)
{
    (void)state;
    const char *good[] = {"lodash", "@acme/util", "a", "x.y-z_w~", "@s/n", "UPPER", "a!b*c'(d)"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(npm_name_valid(good[i]));
    char long_name[300];
    memset(long_name, 'a', 215);
    long_name[215] = '\0';
    const char *bad[] = {"",       "@acme",   "@/x",  "@acme/", ".hidden", "_private", "-", "a/b",
                         "@s/a/b", "..",      ".",    "a b",    "a%2fb",   "@s/.x",    "é", "a\nb",
                         "@@s/n",  long_name, "@s/-", "a?b",    "a#b",     "a\\b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (npm_name_valid(bad[i]))
            fail_msg("\"%s\" was accepted", bad[i]);
    }
}

static void tarball_table(void **state)
{
    (void)state;
    struct npm_tarballs t;
    assert_int_equal(npm_packument_tarballs(packument, strlen(packument), "@acme/util",
                                            "https://reg.example/npm/@acme%2futil", &t),
                     0);
    const struct npm_tarball *a = find(&t, "util-1.0.0.tgz");
    assert_non_null(a);
    assert_string_equal(a->url, "https://reg.example/@acme/util/-/util-1.0.0.tgz");
    assert_string_equal(a->expect, "sha512:" SHA512_HELLO_HEX); /* the strongest of two */
    const struct npm_tarball *b = find(&t, "util-1.1.0.tgz");
    assert_non_null(b);
    assert_string_equal(b->url, "https://reg.example/files/util-1.1.0.tgz"); /* resolved */
    assert_string_equal(b->expect, "sha1:" SHA1_HELLO_HEX);
    const struct npm_tarball *c = find(&t, "util-1.2.0.tgz");
    assert_non_null(c);
    assert_string_equal(c->expect, "sha256:" SHA256_HELLO_HEX); /* the usable one */
    const struct npm_tarball *d = find(&t, "util-1.3.0.tgz");
    assert_non_null(d);
    assert_null(d->expect); /* nothing usable: hashed while downloading */
    /* Unusable versions and URLs are not served. */
    assert_int_equal(t.n, 4);
    for (size_t i = 0; i < t.n; i++) {
        assert_null(strchr(t.items[i].file, '/'));
        assert_true(!strncmp(t.items[i].url, "http", 4));
    }
    npm_tarballs_clear(&t);

    /* Unscoped names keep their name in the file name. */
    const char doc[] = "{\"versions\":{\"1.0.0\":{\"dist\":{\"tarball\":\"/left-pad/-/x.tgz\"}}}}";
    assert_int_equal(
        npm_packument_tarballs(doc, strlen(doc), "left-pad", "http://r:8/npm/left-pad", &t), 0);
    assert_int_equal(t.n, 1);
    assert_string_equal(t.items[0].file, "left-pad-1.0.0.tgz");
    assert_string_equal(t.items[0].url, "http://r:8/left-pad/-/x.tgz");
    npm_tarballs_clear(&t);
}

/* The table is read as jansson reads the document: of repeated members the last one counts. */
static void tarball_table_repeats_and_times(void **state)
{
    (void)state;
    struct npm_tarballs t;
    static const char doc[] =
        "{\"versions\":{\"9.0.0\":{\"dist\":{\"tarball\":\"http://r/old.tgz\"}}},"
        "\"versions\":{\"1.0.0\":{\"dist\":{\"tarball\":\"http://r/a.tgz\"}},"
        "\"2.0.0\":{\"dist\":{\"tarball\":\"http://r/b.tgz\"},"
        "\"dist\":{\"tarball\":\"http://r/c.tgz\",\"tarball\":\"http://r/d.tgz\"}},"
        "\"1.0.0\":{\"dist\":{\"tarball\":\"http://r/e.tgz\"}}},"
        "\"time\":{\"1.0.0\":\"2020-01-01T00:00:00Z\",\"2.0.0\":\"2021-01-01T00:00:00.000Z\"},"
        "\"time\":{\"2.0.0\":\"2022-01-01T00:00:00.000Z\",\"2.0.0\":1}}";
    assert_int_equal(npm_packument_tarballs(doc, strlen(doc), "x", "http://r/x", &t), 0);
    assert_int_equal(t.n, 2);
    assert_string_equal(t.items[0].file, "x-1.0.0.tgz"); /* its first place, its last value */
    assert_string_equal(t.items[0].url, "http://r/e.tgz");
    assert_int_equal(t.items[0].published, -1); /* the last "time" has no 1.0.0 */
    assert_string_equal(t.items[1].file, "x-2.0.0.tgz");
    assert_string_equal(t.items[1].url, "http://r/d.tgz");
    assert_int_equal(t.items[1].published, -1); /* the last 2.0.0 is no string */
    npm_tarballs_clear(&t);

    /* Many versions: each once, in order, with its time (the table is built in linear time),
     * each found by its name. */
    size_t n = 20000, cap = n * 120 + 64, o = 0;
    char *big = malloc(cap);
    assert_non_null(big);
    o += (size_t)snprintf(big + o, cap - o, "{\"versions\":{");
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(big + o, cap - o,
                              "%s\"1.%zu.0\":{\"dist\":{\"tarball\":\"/x/-/x-1.%zu.0.tgz\"}}",
                              i ? "," : "", i, i);
    o += (size_t)snprintf(big + o, cap - o, "},\"time\":{\"1.7.0\":\"1970-01-02T00:00:00Z\"}}");
    assert_int_equal(npm_packument_tarballs(big, o, "x", "http://r/x", &t), 0);
    assert_int_equal(t.n, n);
    for (size_t i = 0; i < n; i++) {
        char want[64];
        snprintf(want, sizeof(want), "http://r/x/-/x-1.%zu.0.tgz", i);
        assert_string_equal(t.items[i].url, want);
        assert_int_equal(t.items[i].published, i == 7 ? 86400 : -1);
        snprintf(want, sizeof(want), "x-1.%zu.0.tgz", i); /* each found by its name's hash */
        assert_ptr_equal(npm_tarballs_find(&t, want), &t.items[i]);
    }
    assert_null(npm_tarballs_find(&t, "x-1.20000.0.tgz"));
    npm_tarballs_clear(&t);
    assert_null(npm_tarballs_find(&t, "x-1.0.0.tgz")); /* an empty table */
    free(big);
}

static void rewrite_for_mount(void **state)
{
    (void)state;
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(npm_packument_rewrite(packument, strlen(packument), "@acme/util", &out, &len),
                     0);
    assert_int_equal(strlen(out), len);
    json_error_t jerr;
    json_t *root = json_loads(out, 0, &jerr);
    assert_non_null(root);
    json_t *v = json_object_get(root, "versions");
#define TARBALL(ver)                                                                               \
    json_string_value(json_object_get(json_object_get(json_object_get(v, ver), "dist"), "tarbal"   \
                                                                                        "l"))
    assert_string_equal(TARBALL("1.0.0"), "-/util-1.0.0.tgz");
    assert_string_equal(TARBALL("1.1.0"), "-/util-1.1.0.tgz");
    assert_string_equal(TARBALL("2.0.0"), "-/util-2.0.0.tgz");
    assert_null(TARBALL("../../etc"));     /* removed: never point a client at the remote */
    assert_null(TARBALL("1.0.0/../../x")); /* removed */
    /* Everything else passes through. */
    assert_string_equal(json_string_value(json_object_get(root, "readme")),
                        "tarball: https://elsewhere/x.tgz");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(v, "1.0.0"), "dist"), "integrity")),
                        "sha1-" SHA1_HELLO_B64 " sha512-" SHA512_HELLO_B64);
    assert_non_null(json_object_get(json_object_get(v, "5.0.0"), "nodist"));
    json_decref(root);
    free(out);
}

/* The abbreviated document keeps only what an install reads, and is much smaller. */
static void abbreviated_for_install(void **state)
{
    (void)state;
    const char full[] =
        "{\"name\":\"x\",\"readme\":\"long text\",\"time\":{\"modified\":\"2024-05-01T00:00:00Z\"},"
        "\"dist-tags\":{\"latest\":\"1.0.0\"},\"maintainers\":[{\"name\":\"m\"}],"
        "\"versions\":{\"1.0.0\":{\"name\":\"x\",\"version\":\"1.0.0\",\"description\":\"d\","
        "\"scripts\":{\"postinstall\":\"node i.js\",\"test\":\"t\"},\"readme\":\"r\","
        "\"dependencies\":{\"y\":\"^1\"},\"peerDependenciesMeta\":{\"z\":{\"optional\":true}},"
        "\"bin\":{\"x\":\"b.js\"},\"engines\":{\"node\":\">=18\"},\"os\":[\"linux\"],"
        "\"deprecated\":\"old\",\"_npmUser\":{\"name\":\"u\"},"
        "\"dist\":{\"tarball\":\"http://r/x/-/x-1.0.0.tgz\",\"integrity\":\"sha512-AA==\"}}}}";
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(npm_packument_rewrite_abbreviated(full, strlen(full), "x", &out, &len), 0);
    json_error_t jerr;
    json_t *root = json_loads(out, 0, &jerr);
    assert_non_null(root);
    assert_int_equal(json_object_size(root), 4); /* name, modified, dist-tags, versions */
    assert_string_equal(json_string_value(json_object_get(root, "modified")),
                        "2024-05-01T00:00:00Z");
    json_t *v = json_object_get(json_object_get(root, "versions"), "1.0.0");
    const char *kept[] = {"name", "version",         "dependencies", "peerDependenciesMeta",
                          "bin",  "engines",         "os",           "deprecated",
                          "dist", "hasInstallScript"};
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
        assert_non_null(json_object_get(v, kept[i]));
    assert_int_equal(json_object_size(v), sizeof(kept) / sizeof(kept[0]));
    assert_true(json_is_true(json_object_get(v, "hasInstallScript")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(v, "dist"), "tarball")),
                        "-/x-1.0.0.tgz");
    assert_true(len < strlen(full) * 3 / 4);
    /* Already abbreviated: the same document again. */
    char *again = NULL;
    size_t alen = 0;
    assert_int_equal(npm_packument_rewrite_abbreviated(out, len, "x", &again, &alen), 0);
    assert_int_equal(alen, len);
    assert_memory_equal(again, out, len);
    free(again);
    json_decref(root);
    free(out);
}

static void render_for_shim(void **state)
{
    (void)state;
    char *mount = NULL, *out = NULL;
    size_t ml = 0, len = 0;
    assert_int_equal(npm_packument_rewrite(packument, strlen(packument), "@acme/util", &mount, &ml),
                     0);
    assert_int_equal(npm_packument_render(mount, ml,
                                          "http://127.0.0.1:5000/npm/@acme/util/.abbreviated.json",
                                          &out, &len),
                     0);
    assert_non_null(strstr(out, "\"http://127.0.0.1:5000/npm/@acme/util/-/util-1.0.0.tgz\""));
    assert_null(strstr(out, "reg.example"));
    assert_null(strstr(out, "cdn.example"));
    assert_null(strstr(out, "evil"));
    free(out);
    free(mount);
}

static void hostile_json(void **state)
{
    (void)state;
    char *out = NULL;
    size_t len = 0;
    struct npm_tarballs t;
    const char *bad[] = {
        "",        "null",           "[]",         "\"x\"",
        "{",       "{\"versions\":", "{\"a\":1}x", "{\"n\":123456789012345678901234567890}",
        "\xff\xfe"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(npm_packument_rewrite(bad[i], strlen(bad[i]), "x", &out, &len), -EIO);
        assert_int_equal(npm_packument_tarballs(bad[i], strlen(bad[i]), "x", "http://r/x", &t),
                         -EIO);
        assert_int_equal(
            npm_packument_render(bad[i], strlen(bad[i]), "http://s/k/x/package.json", &out, &len),
            -EIO);
    }
    /* Deep nesting is refused by the parser, not by the stack. */
    size_t depth = 100000;
    char *deep = malloc(depth * 2 + 20);
    assert_non_null(deep);
    strcpy(deep, "{\"versions\":");
    size_t o = strlen(deep);
    for (size_t i = 0; i < depth; i++)
        deep[o++] = '[';
    for (size_t i = 0; i < depth; i++)
        deep[o++] = ']';
    deep[o++] = '}';
    deep[o] = '\0';
    assert_int_equal(npm_packument_rewrite(deep, o, "x", &out, &len), -EIO);
    free(deep);
    /* Odd but valid shapes: no versions, versions of the wrong type, NUL in a string. */
    const char *odd[] = {"{}", "{\"versions\":[]}", "{\"versions\":{\"1\":null}}",
                         "{\"versions\":{\"1\":{\"dist\":[]}}}"};
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
        assert_int_equal(npm_packument_rewrite(odd[i], strlen(odd[i]), "x", &out, &len), 0);
        free(out);
        assert_int_equal(npm_packument_tarballs(odd[i], strlen(odd[i]), "x", "http://r/x", &t), 0);
        assert_int_equal(t.n, 0);
        npm_tarballs_clear(&t);
    }
    /* A huge version string cannot make a file name past NAME_MAX. */
    char big[600];
    char ver[400];
    memset(ver, '1', sizeof(ver) - 1);
    ver[sizeof(ver) - 1] = '\0';
    snprintf(big, sizeof(big), "{\"versions\":{\"%s\":{\"dist\":{\"tarball\":\"http://r/a\"}}}}",
             ver);
    assert_int_equal(npm_packument_tarballs(big, strlen(big), "x", "http://r/x", &t), 0);
    assert_int_equal(t.n, 0);
    npm_tarballs_clear(&t);
}

static void merge_registry_document(void **state)
{
    (void)state;
    static const char up[] =
        "{\"name\":\"p\",\"description\":\"upstream\",\"readme\":\"r\","
        "\"dist-tags\":{\"latest\":\"1.0.0\",\"beta\":\"1.1.0-b\"},"
        "\"versions\":{\"1.0.0\":{\"version\":\"1.0.0\",\"dist\":{\"tarball\":\"-/p-1.0.0.tgz\"}},"
        "\"1.1.0-b\":{\"version\":\"1.1.0-b\"}},\"time\":{\"1.0.0\":\"t1\"}}";
    static const char local[] =
        "{\"name\":\"p\",\"description\":\"ours\",\"dist-tags\":{\"latest\":\"2.0.0\"},"
        "\"versions\":{\"2.0.0\":{\"version\":\"2.0.0\"},\"1.0.0\":{\"version\":\"1.0.0\","
        "\"patched\":true}},\"time\":{\"2.0.0\":\"t2\"}}";
    char *out = NULL;
    size_t len = 0;
    json_error_t jerr;
    assert_int_equal(npm_packument_merge(up, strlen(up), local, strlen(local), &out, &len), 0);
    json_t *d = json_loadb(out, len, 0, &jerr);
    free(out);
    assert_non_null(d);
    json_t *v = json_object_get(d, "versions");
    assert_int_equal(json_object_size(v), 3);
    assert_true(json_is_true(json_object_get(json_object_get(v, "1.0.0"), "patched")));
    json_t *tags = json_object_get(d, "dist-tags");
    assert_string_equal(json_string_value(json_object_get(tags, "latest")), "2.0.0");
    assert_string_equal(json_string_value(json_object_get(tags, "beta")), "1.1.0-b");
    assert_int_equal(json_object_size(json_object_get(d, "time")), 2);
    assert_string_equal(json_string_value(json_object_get(d, "description")), "ours");
    assert_string_equal(json_string_value(json_object_get(d, "readme")), "r");
    json_decref(d);
    /* either alone passes through; neither, or a document that is not an object, is refused */
    assert_int_equal(npm_packument_merge(NULL, 0, local, strlen(local), &out, &len), 0);
    d = json_loadb(out, len, 0, &jerr);
    free(out);
    assert_int_equal(json_object_size(json_object_get(d, "versions")), 2);
    json_decref(d);
    assert_int_equal(npm_packument_merge(up, strlen(up), NULL, 0, &out, &len), 0);
    free(out);
    assert_int_equal(npm_packument_merge(NULL, 0, NULL, 0, &out, &len), -ENOENT);
    assert_int_equal(npm_packument_merge(up, strlen(up), "[]", 2, &out, &len), -EIO);
    assert_int_equal(npm_packument_merge("{", 1, local, strlen(local), &out, &len), -EIO);
}

static void accept_header(void **state)
{
    (void)state;
    assert_true(npm_accept_abbreviated(
        "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"));
    assert_true(npm_accept_abbreviated("application/vnd.npm.install-v1+json"));
    assert_true(npm_accept_abbreviated("text/plain, APPLICATION/VND.NPM.INSTALL-V1+JSON ;q=0.5"));
    assert_false(npm_accept_abbreviated("application/json"));
    assert_false(npm_accept_abbreviated("*/*"));
    assert_false(npm_accept_abbreviated(NULL));
    assert_false(npm_accept_abbreviated(""));
    assert_false(npm_accept_abbreviated("application/vnd.npm.install-v1+json;q=0"));
    assert_false(npm_accept_abbreviated("application/vnd.npm.install-v1+jsonx"));
    assert_false(npm_accept_abbreviated(";;;,,,;q="));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names),
        cmocka_unit_test(tarball_table),
        cmocka_unit_test(tarball_table_repeats_and_times),
        cmocka_unit_test(rewrite_for_mount),
        cmocka_unit_test(abbreviated_for_install),
        cmocka_unit_test(render_for_shim),
        cmocka_unit_test(hostile_json),
        cmocka_unit_test(merge_registry_document),
        cmocka_unit_test(accept_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_docker: the docker driver's pure parts (oci.h) — name, tag and
 * digest grammars, manifest and index parsing (and refusing malformed
 * ones with a reason), platform filters, Link pagination, Docker Hub's
 * library/ namespace, and how mount paths split into repository,
 * reference and layout part, including hostile names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "upstreamfs/oci.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEX_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEX_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define HEX_C "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

static void grammars(void **state)
{
    (void)state;
    assert_true(oci_name_valid("alpine"));
    assert_true(oci_name_valid("library/alpine"));
    assert_true(oci_name_valid("a/b.c/d_e/f__g/h--i/j-k"));
    assert_true(oci_name_valid("3.19"));
    assert_false(oci_name_valid(""));
    assert_false(oci_name_valid("Alpine"));
    assert_false(oci_name_valid("a//b"));
    assert_false(oci_name_valid("/a"));
    assert_false(oci_name_valid("a/"));
    assert_false(oci_name_valid("a..b"));
    assert_false(oci_name_valid(".."));
    assert_false(oci_name_valid("a___b"));
    assert_false(oci_name_valid("-a"));
    assert_false(oci_name_valid("a-"));
    assert_false(oci_name_valid("a b"));
    assert_false(oci_name_valid("a:b"));
    char longname[300];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_false(oci_name_valid(longname));

    assert_true(oci_tag_valid("latest"));
    assert_true(oci_tag_valid("3.19"));
    assert_true(oci_tag_valid("_x"));
    assert_true(oci_tag_valid("V1.0-rc_2"));
    assert_false(oci_tag_valid(""));
    assert_false(oci_tag_valid(".hidden"));
    assert_false(oci_tag_valid("-x"));
    assert_false(oci_tag_valid("a/b"));
    assert_false(oci_tag_valid("a:b"));
    char longtag[200];
    memset(longtag, 't', 129);
    longtag[129] = '\0';
    assert_false(oci_tag_valid(longtag));
    longtag[128] = '\0';
    assert_true(oci_tag_valid(longtag));

    assert_true(oci_digest_valid("sha256:" HEX_A));
    assert_false(oci_digest_valid("sha256:" HEX_A "a"));
    assert_false(oci_digest_valid(
        "sha256:AAAAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
    assert_false(oci_digest_valid("sha512:" HEX_A));
    assert_false(oci_digest_valid(HEX_A));
}

static void media_types(void **state)
{
    (void)state;
    char b[64];
    assert_true(oci_media_type_is_manifest(OCI_MT_OCI_MANIFEST));
    assert_true(oci_media_type_is_manifest("Application/Vnd.Docker.Distribution.Manifest.V2+JSON"));
    assert_true(oci_media_type_is_index(OCI_MT_DOCKER_LIST "; charset=utf-8"));
    assert_false(oci_media_type_is_index(OCI_MT_OCI_MANIFEST));
    assert_false(oci_media_type_is_manifest(NULL));
    oci_media_type_base("  text/plain ; q=1", b, sizeof(b));
    assert_string_equal(b, "text/plain");
    oci_media_type_base("application/vnd.oci.image.manifest.v1+json", b, 8);
    assert_string_equal(b, "applica");
}

static const char manifest_json[] =
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
    "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
    "\"digest\":\"sha256:" HEX_A "\",\"size\":123},"
    "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\","
    "\"digest\":\"sha256:" HEX_B "\",\"size\":4567},"
    "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\","
    "\"digest\":\"sha256:" HEX_C "\",\"size\":0}]}";

static const char index_json[] =
    "{\"schemaVersion\":2,\"mediaType\":\"application/"
    "vnd.docker.distribution.manifest.list.v2+json\","
    "\"manifests\":["
    "{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
    "\"digest\":\"sha256:" HEX_A "\",\"size\":528,"
    "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
    "{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
    "\"digest\":\"sha256:" HEX_B "\",\"size\":529,"
    "\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}},"
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
    "\"digest\":\"sha256:" HEX_C "\",\"size\":840,"
    "\"platform\":{\"architecture\":\"unknown\",\"os\":\"unknown\"}}]}";

static void parse_manifest(void **state)
{
    (void)state;
    struct oci_manifest m;
    char err[200];
    assert_int_equal(
        oci_manifest_parse(manifest_json, strlen(manifest_json), NULL, &m, err, sizeof(err)), 0);
    assert_int_equal(m.kind, OCI_KIND_MANIFEST);
    assert_string_equal(m.media_type, OCI_MT_OCI_MANIFEST);
    assert_string_equal(m.config.digest, "sha256:" HEX_A);
    assert_int_equal(m.config.size, 123);
    assert_int_equal(m.n_layers, 2);
    assert_string_equal(m.layers[0].digest, "sha256:" HEX_B);
    assert_int_equal(m.layers[0].size, 4567);
    assert_int_equal(m.layers[1].size, 0);
    oci_manifest_clear(&m);

    assert_int_equal(oci_manifest_parse(index_json, strlen(index_json), NULL, &m, err, sizeof(err)),
                     0);
    assert_int_equal(m.kind, OCI_KIND_INDEX);
    assert_string_equal(m.media_type, OCI_MT_DOCKER_LIST);
    assert_int_equal(m.n_manifests, 3);
    assert_true(m.manifests[1].has_platform);
    assert_string_equal(m.manifests[1].platform.arch, "arm64");
    assert_string_equal(m.manifests[1].platform.variant, "v8");
    assert_null(m.manifests[0].platform.variant);
    oci_manifest_clear(&m);

    /* No mediaType in the body: the Content-Type says, else the fields do. */
    const char *untyped = "{\"schemaVersion\":2,\"manifests\":[]}";
    assert_int_equal(oci_manifest_parse(untyped, strlen(untyped), NULL, &m, err, sizeof(err)), 0);
    assert_int_equal(m.kind, OCI_KIND_INDEX);
    assert_string_equal(m.media_type, OCI_MT_OCI_INDEX);
    oci_manifest_clear(&m);
    const char *docker = "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x/y\",\"digest\":"
                         "\"sha256:" HEX_A "\",\"size\":1},\"layers\":[]}";
    assert_int_equal(oci_manifest_parse(docker, strlen(docker),
                                        OCI_MT_DOCKER_MANIFEST "; charset=utf-8", &m, err,
                                        sizeof(err)),
                     0);
    assert_string_equal(m.media_type, OCI_MT_DOCKER_MANIFEST);
    oci_manifest_clear(&m);
}

static void parse_malformed(void **state)
{
    (void)state;
    struct oci_manifest m;
    char err[200];
    const char *bad[] = {
        "",
        "{",
        "null",
        "[]",
        "{\"schemaVersion\":1,\"fsLayers\":[]}",
        "{\"schemaVersion\":\"2\",\"manifests\":[]}",
        "{\"schemaVersion\":2}",
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.artifact.manifest.v1+json\"}",
        "{\"schemaVersion\":2,\"mediaType\":5,\"manifests\":[]}",
        "{\"schemaVersion\":2,\"manifests\":{}}",
        "{\"schemaVersion\":2,\"manifests\":[5]}",
        "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"sha256:" HEX_A "\"}]}",
        "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"sha256:" HEX_A "\",\"size\":-1}]}",
        "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"sha256:" HEX_A "\",\"size\":1.5}]}",
        "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"sha512:abc\",\"size\":1}]}",
        "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"sha256:../../etc\",\"size\":1}]}",
        "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"sha256:" HEX_A "\",\"size\":1,"
        "\"platform\":{\"os\":\"linux\"}}]}",
        "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"sha256:" HEX_A "\",\"size\":1,"
        "\"mediaType\":\"a\\nb\"}]}",
        "{\"schemaVersion\":2,\"config\":{\"digest\":\"sha256:" HEX_A "\",\"size\":1}}",
        "{\"schemaVersion\":2,\"schemaVersion\":2,\"manifests\":[]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        int rc = oci_manifest_parse(bad[i], strlen(bad[i]), NULL, &m, err, sizeof(err));
        if (rc != -EIO)
            fail_msg("document %zu: expected -EIO, got %d: %s", i, rc, bad[i]);
        assert_true(err[0] != '\0');
        assert_null(m.media_type);
        assert_int_equal(m.n_manifests, 0);
    }
    /* Not NUL-terminated, cut in the middle: still an error, never a read past the end. */
    char *cut = malloc(40);
    memcpy(cut, manifest_json, 40);
    assert_int_equal(oci_manifest_parse(cut, 40, NULL, &m, err, sizeof(err)), -EIO);
    free(cut);
    /* Deep nesting is refused by the JSON parser, not by the stack. */
    size_t depth = 100000;
    char *deep = malloc(depth * 2 + 1);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[depth * 2] = '\0';
    assert_int_equal(oci_manifest_parse(deep, depth * 2, NULL, &m, err, sizeof(err)), -EIO);
    free(deep);
}

static void platforms(void **state)
{
    (void)state;
    struct oci_platform amd = {.os = "linux", .arch = "amd64"};
    struct oci_platform arm = {.os = "linux", .arch = "arm64", .variant = "v8"};
    struct oci_platform win = {.os = "windows", .arch = "amd64"};
    assert_true(oci_platform_match(NULL, &amd));
    assert_true(oci_platform_match("", &amd));
    assert_true(oci_platform_match("linux/amd64", &amd));
    assert_false(oci_platform_match("linux/amd64", &arm));
    assert_false(oci_platform_match("linux/amd64", &win));
    assert_true(oci_platform_match("linux/arm64", &arm));
    assert_true(oci_platform_match("linux/arm64/v8", &arm));
    assert_false(oci_platform_match("linux/arm64/v7", &arm));
    assert_false(oci_platform_match("linux/arm", &arm));
    assert_true(oci_platform_match("linux/amd64:linux/arm64", &arm));
    assert_true(oci_platform_match("windows/amd64:linux/amd64", &amd));
    assert_false(oci_platform_match("linux/amd64/v2", &amd));
    assert_false(oci_platform_match("linux", &amd));
    assert_false(oci_platform_match(":::", &amd));
    assert_false(oci_platform_match("linux/amd64", NULL));
}

static void links(void **state)
{
    (void)state;
    char *n = NULL;
    assert_int_equal(oci_link_next("</v2/_catalog?last=test%2Fhello&n=1>; rel=\"next\"",
                                   "http://127.0.0.1:5000/v2/_catalog?n=1", &n),
                     0);
    assert_string_equal(n, "http://127.0.0.1:5000/v2/_catalog?last=test%2Fhello&n=1");
    free(n);
    assert_int_equal(oci_link_next("<http://example.com/v2/_catalog?n=20&last=b>; rel=\"next\"",
                                   "http://r/v2/_catalog", &n),
                     0);
    assert_string_equal(n, "http://example.com/v2/_catalog?n=20&last=b");
    free(n);
    /* Several links, rel lists, unquoted rel, commas inside the URL. */
    assert_int_equal(
        oci_link_next("<p?a=1,2>; rel=prev, <q?b=3,4>;title=\"x, y\"; rel=\"last next\"",
                      "https://r/v2/x/tags/list", &n),
        0);
    assert_string_equal(n, "https://r/v2/x/tags/q?b=3,4");
    free(n);
    assert_int_equal(oci_link_next("<p>; rel=\"prev\"", "http://r/", &n), -ENOENT);
    assert_int_equal(oci_link_next(NULL, "http://r/", &n), -ENOENT);
    assert_int_equal(oci_link_next("", "http://r/", &n), -ENOENT);
    const char *bad[] = {"<unterminated; rel=next", "no-angle; rel=next", "<a>; rel=\"next",
                         "<a> junk; rel=next",      "<>; rel=next",       "<a b>; rel=next",
                         "<a>; =x; rel=next"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        n = NULL;
        int rc = oci_link_next(bad[i], "http://r/", &n);
        if (rc != -EINVAL)
            fail_msg("link %zu: expected -EINVAL, got %d: %s", i, rc, bad[i]);
        assert_null(n);
    }
}

static void hub_library(void **state)
{
    (void)state;
    char b[OCI_NAME_MAX + 1];
    assert_int_equal(oci_hub_normalise("alpine", b, sizeof(b)), 0);
    assert_string_equal(b, "library/alpine");
    assert_int_equal(oci_hub_normalise("bitnami/redis", b, sizeof(b)), 0);
    assert_string_equal(b, "bitnami/redis");
    assert_int_equal(oci_hub_normalise("library/alpine", b, sizeof(b)), 0);
    assert_string_equal(b, "library/alpine");
    assert_int_equal(oci_hub_normalise("alpine", b, 10), -ENAMETOOLONG);

    struct oci_path p, q;
    /* MNT/<key>/alpine/3.19 is MNT/<key>/library/alpine/3.19 on Docker Hub. */
    assert_int_equal(oci_path_parse("alpine/3.19/index.json", true, &p), 0);
    assert_int_equal(oci_path_parse("library/alpine/3.19/index.json", true, &q), 0);
    assert_true(p.layout && q.layout);
    assert_string_equal(p.repo, "library/alpine");
    assert_string_equal(q.repo, "library/alpine");
    assert_string_equal(p.ref, "3.19");
    assert_int_equal(p.part, OCI_PART_INDEX_JSON);
    /* Elsewhere there is no implicit namespace. */
    assert_int_equal(oci_path_parse("alpine/3.19/index.json", false, &p), 0);
    assert_string_equal(p.repo, "alpine");
    /* On the Hub: alpine/3.19 is a tag dir of library/alpine, and "library" never a repository. */
    assert_int_equal(oci_path_parse("alpine/3.19", true, &p), 0);
    assert_true(p.tagdir);
    assert_string_equal(p.td_repo, "library/alpine");
    assert_int_equal(oci_path_parse("library/alpine", true, &p), 0);
    assert_false(p.tagdir);
    assert_true(p.nsdir && p.ns_repo);
    assert_string_equal(p.ns_name, "library/alpine");
    assert_int_equal(oci_path_parse("library", true, &p), 0);
    assert_true(p.nsdir);
    assert_false(p.ns_repo);
    assert_int_equal(oci_path_parse("alpine", true, &p), 0);
    assert_true(p.ns_repo);
    assert_string_equal(p.ns_name, "library/alpine");
    /* Hub repositories have at most two components. */
    assert_int_equal(oci_path_parse("library/alpine/3.19", true, &p), 0);
    assert_true(p.tagdir);
    assert_false(p.nsdir);
    assert_int_equal(oci_path_parse("a/b/c/d", true, &p), -ENOENT);
}

static void path_readings(void **state)
{
    (void)state;
    struct oci_path p;
    assert_int_equal(oci_path_parse("test/hello/v1/blobs/sha256/" HEX_A, false, &p), 0);
    assert_true(p.layout);
    assert_string_equal(p.repo, "test/hello");
    assert_string_equal(p.ref, "v1");
    assert_int_equal(p.part, OCI_PART_BLOB);
    assert_string_equal(p.hex, HEX_A);
    /* Also a tag named after the hex in a repository with blobs/sha256 in its name. */
    assert_true(p.tagdir);
    assert_string_equal(p.td_repo, "test/hello/v1/blobs/sha256");

    assert_int_equal(oci_path_parse("test/hello/sha256:" HEX_B "/blobs/sha256", false, &p), 0);
    assert_true(p.layout);
    assert_string_equal(p.ref, "sha256:" HEX_B);
    assert_int_equal(p.part, OCI_PART_BLOBS_SHA256);

    assert_int_equal(oci_path_parse("a/b/oci-layout", false, &p), 0);
    assert_int_equal(p.part, OCI_PART_OCI_LAYOUT);
    assert_string_equal(p.repo, "a");
    assert_string_equal(p.ref, "b");
    assert_int_equal(oci_path_parse("a/b/blobs", false, &p), 0);
    assert_int_equal(p.part, OCI_PART_BLOBS);

    /* A tag dir: repo + tag, and (all lower case) perhaps a namespace too. */
    assert_int_equal(oci_path_parse("test/hello/v1", false, &p), 0);
    assert_false(p.layout);
    assert_true(p.tagdir && p.nsdir);
    assert_string_equal(p.td_repo, "test/hello");
    assert_string_equal(p.td_ref, "v1");
    assert_int_equal(oci_path_parse("test/hello/Latest", false, &p), 0);
    assert_true(p.tagdir);
    assert_false(p.nsdir);
    assert_int_equal(oci_path_parse("test/hello/sha256:" HEX_A, false, &p), 0);
    assert_true(p.tagdir);
    assert_false(p.nsdir);
    /* One component: a namespace or repository only. */
    assert_int_equal(oci_path_parse("test", false, &p), 0);
    assert_true(p.nsdir && p.ns_repo);
    assert_false(p.tagdir || p.layout);
}

static void hostile_paths(void **state)
{
    (void)state;
    struct oci_path p;
    const char *bad[] = {
        "",
        "..",
        "a/..",
        "../a",
        "a/../b",
        ".",
        "a//b",
        "/a",
        "a/",
        "UPPER",
        "a/b/..%2f",
        "a\\b",
        "a b",
        "-a",
        "a/b/.x",
        "a/b/blobs/sha256/" HEX_A "/..",
        "a/b/blobs/sha256/..",
        "a/%2e%2e/index.json",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = oci_path_parse(bad[i], false, &p);
        if (rc != -ENOENT)
            fail_msg("path %zu accepted: \"%s\"", i, bad[i]);
    }
    /* Overlong: a repository over 255 bytes, a tag over 128, a path over the cap. */
    char buf[2100];
    memset(buf, 'a', 300);
    buf[300] = '\0';
    assert_int_equal(oci_path_parse(buf, false, &p), -ENOENT);
    strcpy(buf, "a/");
    memset(buf + 2, 't', 129);
    buf[131] = '\0';
    assert_int_equal(oci_path_parse(buf, false, &p), 0); /* still a namespace reading... */
    assert_false(p.tagdir);                              /* ...but never a tag */
    memset(buf + 2, 'T', 129);
    strcat(buf, "/index.json");
    assert_int_equal(oci_path_parse(buf, false, &p), -ENOENT);
    for (int i = 0; i < 2090; i++)
        buf[i] = i % 2 ? '/' : 'a';
    buf[2090] = '\0';
    assert_int_equal(oci_path_parse(buf, false, &p), -ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(grammars),       cmocka_unit_test(media_types),
        cmocka_unit_test(parse_manifest), cmocka_unit_test(parse_malformed),
        cmocka_unit_test(platforms),      cmocka_unit_test(links),
        cmocka_unit_test(hub_library),    cmocka_unit_test(path_readings),
        cmocka_unit_test(hostile_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

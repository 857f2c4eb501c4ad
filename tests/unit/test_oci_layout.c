/*
 * test_oci_layout: the OCI image layout's paths (include/upstreamfs/oci_layout.h), as the
 * docker driver, the shim's /v2 routes and "registry import" share them: each builder's
 * path splits back into what built it, the driver's mount-path parser (oci_path_parse)
 * reads the same repository, reference, part and blob, and overlong names are refused
 * rather than cut.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "upstreamfs/oci.h"
#include "upstreamfs/oci_layout.h"

#include <errno.h>
#include <string.h>

#define HEX "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static const enum oci_part parts[] = {OCI_PART_OCI_LAYOUT, OCI_PART_INDEX_JSON, OCI_PART_BLOBS,
                                      OCI_PART_BLOBS_SHA256, OCI_PART_BLOB};

static void exact_shape(void **state)
{
    (void)state;
    char dir[512], path[1024];
    assert_int_equal(oci_layout_dir("hub", "library/alpine", "3.19", dir, sizeof(dir)), 0);
    assert_string_equal(dir, "hub/library/alpine/3.19");
    assert_int_equal(oci_layout_path(dir, OCI_PART_BLOB, HEX, path, sizeof(path)), 0);
    assert_string_equal(path, "hub/library/alpine/3.19/blobs/sha256/" HEX);
    assert_int_equal(oci_layout_path(dir, OCI_PART_INDEX_JSON, NULL, path, sizeof(path)), 0);
    assert_string_equal(path, "hub/library/alpine/3.19/index.json");
    assert_int_equal(oci_layout_path(dir, OCI_PART_OCI_LAYOUT, NULL, path, sizeof(path)), 0);
    assert_string_equal(path, "hub/library/alpine/3.19/oci-layout");
    assert_int_equal(oci_layout_path(NULL, OCI_PART_BLOB, HEX, path, sizeof(path)), 0);
    assert_string_equal(path, "blobs/sha256/" HEX);
    assert_int_equal(oci_layout_path("", OCI_PART_BLOBS_SHA256, NULL, path, sizeof(path)), 0);
    assert_string_equal(path, "blobs/sha256");
    assert_int_equal(oci_layout_dir(NULL, "team/app", "sha256:" HEX, dir, sizeof(dir)), 0);
    assert_string_equal(dir, "team/app/sha256:" HEX);
    assert_string_equal(OCI_LAYOUT_FILE_BODY, "{\"imageLayoutVersion\":\"1.0.0\"}");
}

/* Every part of a layout, built then split, and read by the driver's parser. */
static void round_trip(void **state)
{
    (void)state;
    /* the last repository holds "blobs/sha256" in its name: only the tail is the layout's */
    static const char *const repos[] = {"library/alpine", "team/app", "a/blobs/sha256"};
    static const char *const refs[] = {"3.19", "latest", ("sha256:" HEX)};
    for (size_t r = 0; r < 3; r++) {
        for (size_t f = 0; f < 3; f++) {
            for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
                char dir[512], path[1024], back[512], hex[65];
                enum oci_part part;
                struct oci_path p;
                assert_int_equal(oci_layout_dir(NULL, repos[r], refs[f], dir, sizeof(dir)), 0);
                assert_int_equal(oci_layout_path(dir, parts[i], HEX, path, sizeof(path)), 0);
                assert_int_equal(oci_layout_split(path, back, sizeof(back), &part, hex), 0);
                assert_string_equal(back, dir);
                assert_int_equal(part, parts[i]);
                assert_string_equal(hex, parts[i] == OCI_PART_BLOB ? HEX : "");
                assert_int_equal(oci_path_parse(path, false, &p), 0);
                assert_true(p.layout);
                assert_string_equal(p.repo, repos[r]);
                assert_string_equal(p.ref, refs[f]);
                assert_int_equal(p.part, parts[i]);
                if (parts[i] == OCI_PART_BLOB)
                    assert_string_equal(p.hex, HEX);
            }
        }
    }
}

static void refused(void **state)
{
    (void)state;
    char small[16], dir[64], hex[65];
    enum oci_part part;
    assert_int_equal(oci_layout_dir("hub", "library/alpine", "3.19", small, sizeof(small)),
                     -ENAMETOOLONG);
    assert_string_equal(small, "");
    assert_int_equal(oci_layout_path("a/b", OCI_PART_BLOB, HEX, small, sizeof(small)),
                     -ENAMETOOLONG);
    assert_string_equal(small, "");
    assert_int_equal(oci_layout_path("a/b", OCI_PART_NONE, NULL, dir, sizeof(dir)), -EINVAL);
    assert_int_equal(oci_layout_path("a/b", OCI_PART_BLOB, "abc", dir, sizeof(dir)), -EINVAL);
    assert_int_equal(oci_layout_path("a/b", OCI_PART_BLOB, NULL, dir, sizeof(dir)), -EINVAL);
    static const char *const none[] = {"a/b/c",
                                       "a/b/xindex.json",
                                       ("a/b/blobs/sha256/abc"),
                                       "a/b/myblobs",
                                       "",
                                       ("a/b/blobs/sha256/" HEX "/x")};
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
        assert_int_equal(oci_layout_split(none[i], dir, sizeof(dir), &part, hex), -ENOENT);
    /* a part alone: the layout directory is "" (a path relative to the layout) */
    assert_int_equal(oci_layout_split("blobs/sha256/" HEX, dir, sizeof(dir), &part, hex), 0);
    assert_string_equal(dir, "");
    assert_int_equal(part, OCI_PART_BLOB);
    char longdir[200];
    memset(longdir, 'a', sizeof(longdir) - 1);
    longdir[sizeof(longdir) - 1] = '\0';
    char path[300];
    assert_int_equal(oci_layout_path(longdir, OCI_PART_INDEX_JSON, NULL, path, sizeof(path)), 0);
    assert_int_equal(oci_layout_split(path, dir, sizeof(dir), &part, hex), -ENAMETOOLONG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exact_shape),
        cmocka_unit_test(round_trip),
        cmocka_unit_test(refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

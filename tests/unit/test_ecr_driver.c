/*
 * test_ecr_driver: the pure parts of the docker driver's variant seam that
 * the ecr driver relies on (src/drivers/docker_i.h): limiting a proxy to
 * one repository (a console URL's scope) without a request, and putting a
 * registry namespace (ECR Public's alias) before every repository name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../src/drivers/docker_i.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define HEX_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

/* Parses path and limits it to only; returns dk_path_limit's answer. */
static int limited(const char *path, const char *only, struct oci_path *p)
{
    assert_int_equal(oci_path_parse(path, false, p), 0);
    return dk_path_limit(p, only);
}

static void limit_keeps_the_scope(void **state)
{
    (void)state;
    struct oci_path p;
    const char *only = "team/app";

    /* On the way to the repository: a namespace, not a repository. */
    assert_int_equal(limited("team", only, &p), 0);
    assert_true(p.nsdir);
    assert_false(p.ns_repo);
    /* The repository itself; not a tag "app" of a repository "team". */
    assert_int_equal(limited("team/app", only, &p), 0);
    assert_true(p.nsdir && p.ns_repo);
    assert_false(p.tagdir);
    assert_string_equal(p.ns_name, "team/app");
    /* A tag directory of it; not a namespace below it. */
    assert_int_equal(limited("team/app/v1", only, &p), 0);
    assert_true(p.tagdir);
    assert_false(p.nsdir);
    assert_string_equal(p.td_repo, "team/app");
    assert_string_equal(p.td_ref, "v1");
    /* Inside its layouts, by tag and by digest. */
    assert_int_equal(limited("team/app/v1/index.json", only, &p), 0);
    assert_true(p.layout);
    assert_int_equal(p.part, OCI_PART_INDEX_JSON);
    assert_int_equal(limited("team/app/v1/blobs/sha256/" HEX_A, only, &p), 0);
    assert_true(p.layout);
    assert_false(p.tagdir); /* not a tag of "team/app/v1/blobs/sha256" */
    assert_int_equal(p.part, OCI_PART_BLOB);
    assert_int_equal(limited("team/app/sha256:" HEX_A "/oci-layout", only, &p), 0);
    assert_true(p.layout);
}

static void limit_refuses_the_rest(void **state)
{
    (void)state;
    struct oci_path p;
    const char *only = "team/app";
    const char *refused[] = {
        "other",
        "tea",
        "teams",
        "team/other",
        "team/appx",
        "team/other/v1",
        "team/other/v1/index.json",
        "team/app/v1/x",
        "team/app/sub/v1",
        "other/team/app/v1/index.json",
        ("team/apps/v1/blobs/sha256/" HEX_A),
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(*refused); i++) {
        int rc = oci_path_parse(refused[i], false, &p);
        if (rc == 0)
            rc = dk_path_limit(&p, only);
        if (rc != -ENOENT)
            fail_msg("%s: not refused (layout %d tagdir %d nsdir %d)", refused[i], p.layout,
                     p.tagdir, p.nsdir);
    }
    /* A one-component scope. */
    assert_int_equal(limited("hello", "hello", &p), 0);
    assert_true(p.ns_repo);
    assert_int_equal(limited("hello/v1", "hello", &p), 0);
    assert_true(p.tagdir);
    assert_false(p.nsdir);
    assert_int_equal(limited("hell", "hello", &p), -ENOENT);
}

static void limit_without_scope(void **state)
{
    (void)state;
    struct oci_path p, q;
    assert_int_equal(oci_path_parse("a/b/c", false, &p), 0);
    q = p;
    assert_int_equal(dk_path_limit(&p, NULL), 0);
    assert_memory_equal(&p, &q, sizeof(p));
}

static void prefix_names(void **state)
{
    (void)state;
    struct oci_path p;
    assert_int_equal(oci_path_parse("library/alpine/3.19/index.json", false, &p), 0);
    assert_int_equal(dk_path_prefix(&p, "docker/"), 0);
    assert_true(p.layout);
    assert_string_equal(p.repo, "docker/library/alpine");
    assert_string_equal(p.ref, "3.19");

    assert_int_equal(oci_path_parse("hello/v1", false, &p), 0);
    assert_int_equal(dk_path_prefix(&p, "fakealias/"), 0);
    assert_true(p.tagdir && p.nsdir);
    assert_string_equal(p.td_repo, "fakealias/hello");
    assert_string_equal(p.ns_name, "fakealias/hello/v1");

    /* No prefix: nothing changes. */
    struct oci_path q;
    assert_int_equal(oci_path_parse("hello/v1", false, &p), 0);
    q = p;
    assert_int_equal(dk_path_prefix(&p, ""), 0);
    assert_int_equal(dk_path_prefix(&p, NULL), 0);
    assert_memory_equal(&p, &q, sizeof(p));

    /* A name that would outgrow OCI_NAME_MAX with the prefix loses that reading. */
    char name[OCI_NAME_MAX + 1];
    memset(name, 'a', OCI_NAME_MAX - 4);
    name[OCI_NAME_MAX - 4] = '\0';
    assert_int_equal(oci_path_parse(name, false, &p), 0);
    assert_true(p.nsdir);
    assert_int_equal(dk_path_prefix(&p, "abcd/"), -ENOENT);
    assert_int_equal(oci_path_parse(name, false, &p), 0);
    assert_int_equal(dk_path_prefix(&p, "abc/"), 0);
    assert_int_equal(strlen(p.ns_name), OCI_NAME_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(limit_keeps_the_scope),
        cmocka_unit_test(limit_refuses_the_rest),
        cmocka_unit_test(limit_without_scope),
        cmocka_unit_test(prefix_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

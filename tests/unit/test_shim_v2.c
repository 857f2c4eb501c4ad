/*
 * test_shim_v2: routing of /v2/ paths: the last route segment wins, the
 * first name component is the proxy or registry, --default catches names
 * whose first component is none; Accept lists as merged from several lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "upstreamfs/shim_v2.h"

#include <errno.h>
#include <string.h>

static bool known(void *arg, const char *name)
{
    (void)arg;
    return !strcmp(name, "hub") || !strcmp(name, "ecr");
}

static void parse_routes(void **state)
{
    (void)state;
    struct shim_v2_route r;
    assert_int_equal(shim_v2_route_parse("v2", NULL, known, NULL, &r), 0);
    assert_int_equal(r.kind, SHIM_V2_BASE);
    assert_int_equal(shim_v2_route_parse("v2/_catalog", NULL, known, NULL, &r), 0);
    assert_int_equal(r.kind, SHIM_V2_CATALOG);

    assert_int_equal(
        shim_v2_route_parse("v2/hub/library/alpine/manifests/3.19", NULL, known, NULL, &r), 0);
    assert_int_equal(r.kind, SHIM_V2_MANIFEST);
    assert_string_equal(r.key, "hub");
    assert_string_equal(r.repository, "library/alpine");
    assert_string_equal(r.reference, "3.19");

    /* A repository may contain the route words; the last segment decides. */
    assert_int_equal(
        shim_v2_route_parse("v2/hub/blobs/manifests/blobs/sha256:ab", NULL, known, NULL, &r), 0);
    assert_int_equal(r.kind, SHIM_V2_BLOB);
    assert_string_equal(r.repository, "blobs/manifests");
    assert_string_equal(r.reference, "sha256:ab");

    assert_int_equal(shim_v2_route_parse("v2/ecr/team/app/tags/list", NULL, known, NULL, &r), 0);
    assert_int_equal(r.kind, SHIM_V2_TAGS);
    assert_string_equal(r.key, "ecr");
    assert_string_equal(r.repository, "team/app");
    assert_string_equal(r.reference, "");

    assert_int_equal(shim_v2_route_parse("v2/hub/x/referrers/sha256:cd", NULL, known, NULL, &r), 0);
    assert_int_equal(r.kind, SHIM_V2_REFERRERS);
}

static void defaults_and_refusals(void **state)
{
    (void)state;
    struct shim_v2_route r;
    /* No known first component: the default proxy takes the whole name. */
    assert_int_equal(
        shim_v2_route_parse("v2/library/alpine/manifests/latest", "hub", known, NULL, &r), 0);
    assert_string_equal(r.key, "hub");
    assert_string_equal(r.repository, "library/alpine");
    assert_int_equal(shim_v2_route_parse("v2/alpine/manifests/latest", "hub", known, NULL, &r), 0);
    assert_string_equal(r.repository, "alpine");
    /* Without a default such names are unknown. */
    assert_int_equal(
        shim_v2_route_parse("v2/library/alpine/manifests/latest", NULL, known, NULL, &r), -ENOENT);
    /* A proxy key alone is no repository. */
    assert_int_equal(shim_v2_route_parse("v2/hub/manifests/latest", NULL, known, NULL, &r),
                     -ENOENT);
    static const char *const bad[] = {
        "v2x",
        "v3/hub/a/manifests/x",
        "v2/hub/a",
        "v2/hub/a/manifests",
        "v2/manifests/x",
        "v2/hub/a/blobs/",
        "v2/hub/a/tags/lists",
        "v2/tags/list",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (shim_v2_route_parse(bad[i], NULL, known, NULL, &r) != -ENOENT)
            fail_msg("\"%s\" should not route", bad[i]);
}

static void accept_lists(void **state)
{
    (void)state;
    const char *oci = "application/vnd.oci.image.manifest.v1+json";
    const char *docker = "application/vnd.docker.distribution.manifest.v2+json";
    const char *index = "application/vnd.oci.image.index.v1+json";
    /* No preference: anything goes. */
    assert_true(shim_v2_accepts(NULL, oci));
    assert_true(shim_v2_accepts("", oci));
    assert_true(shim_v2_accepts(" , ", oci));
    /* skopeo's six lines, merged. */
    const char *six = "application/vnd.oci.image.manifest.v1+json, "
                      "application/vnd.docker.distribution.manifest.v2+json, "
                      "application/vnd.docker.distribution.manifest.v1+prettyjws, "
                      "application/vnd.docker.distribution.manifest.v1+json, "
                      "application/vnd.docker.distribution.manifest.list.v2+json, "
                      "application/vnd.oci.image.index.v1+json";
    assert_true(shim_v2_accepts(six, oci));
    assert_true(shim_v2_accepts(six, docker));
    assert_true(shim_v2_accepts(six, index));
    assert_true(shim_v2_accepts(six, "application/vnd.oci.image.index.v1+json; charset=x"));
    /* A Docker-only client does not take OCI types. */
    assert_false(shim_v2_accepts(docker, oci));
    assert_false(
        shim_v2_accepts("application/vnd.docker.distribution.manifest.v2+json;q=0.5", index));
    assert_true(
        shim_v2_accepts("application/vnd.docker.distribution.manifest.v2+json;q=0.5", docker));
    /* Wildcards, case, parameters, q=0. */
    assert_true(shim_v2_accepts("text/html, */*;q=0.1", oci));
    assert_true(shim_v2_accepts("Application/*", oci));
    assert_true(shim_v2_accepts("APPLICATION/VND.OCI.IMAGE.MANIFEST.V1+JSON", oci));
    assert_false(shim_v2_accepts("application/vnd.oci.image.manifest.v1+json; q=0", oci));
    assert_false(shim_v2_accepts("application/vnd.oci.image.manifest.v1+json;q=0.000", oci));
    assert_true(shim_v2_accepts("application/vnd.oci.image.manifest.v1+json;q=0.01", oci));
    assert_false(shim_v2_accepts("application/json", oci));
    assert_false(shim_v2_accepts("application/vnd.oci.image.manifest.v1+jsonx", oci));
    assert_false(shim_v2_accepts("application/vnd.oci.image.manifest.v1", oci));
    assert_false(shim_v2_accepts(six, ""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_routes),
        cmocka_unit_test(defaults_and_refusals),
        cmocka_unit_test(accept_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_removals: the pure rules of upstream removals (include/upstreamfs/removals.h): the set
 * comparison a revalidated document's listing makes with what is cached, and the names
 * "cache purge KEY/NAME@VERSION" takes.
 */
#include "upstreamfs/removals.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void diff_marks_gone_and_unmarks_listed(void **state)
{
    (void)state;
    const char *cached[] = {"left-1.0.0.tgz", "left-1.1.0.tgz", "left-2.0.0.tgz"};
    const char *listed[] = {"left-1.1.0.tgz", "left-2.0.0.tgz", "left-3.0.0.tgz"};
    bool gone[3] = {false, true, true};
    assert_int_equal(removals_diff(cached, 3, listed, 3, gone), 0);
    assert_true(gone[0]);  /* unpublished: marked */
    assert_false(gone[1]); /* still listed: unmarked (it may have come back) */
    assert_false(gone[2]);
}

static void diff_empty_listing_marks_everything(void **state)
{
    (void)state;
    const char *cached[] = {"a-1.tar.gz", "a-1-py3-none-any.whl"};
    bool gone[2] = {false, false};
    assert_int_equal(removals_diff(cached, 2, NULL, 0, gone), 0);
    assert_true(gone[0]);
    assert_true(gone[1]);
}

static void diff_names_are_exact(void **state)
{
    (void)state;
    /* A prefix or a different case is another file. */
    const char *cached[] = {"pkg-1.0.tar.gz", "Pkg-1.0.tar.gz"};
    const char *listed[] = {"pkg-1.0.tar.gz.metadata", "pkg-1.0.tar.g", "pkg-1.0.tar.gz"};
    bool gone[2];
    assert_int_equal(removals_diff(cached, 2, listed, 3, gone), 0);
    assert_false(gone[0]);
    assert_true(gone[1]);
}

static void spec_matches_versions(void **state)
{
    (void)state;
    /* npm: <name>/-/<base>-<version>.tgz, scoped too */
    assert_true(removals_spec_matches("left/-/left-1.0.0.tgz", "left", "1.0.0"));
    assert_false(removals_spec_matches("left/-/left-1.0.0.tgz", "left", "1.0"));
    assert_false(removals_spec_matches("left/-/left-1.0.0.tgz", "lef", "1.0.0"));
    assert_false(removals_spec_matches("left-pad/-/left-pad-1.0.0.tgz", "left", "1.0.0"));
    assert_true(removals_spec_matches("@s/x/-/x-2.0.0-rc.1.tgz", "@s/x", "2.0.0-rc.1"));
    assert_false(removals_spec_matches("@s/x/-/x-2.0.0-rc.1.tgz", "@s/x", "2.0.0"));
    /* pypi: sdists and wheels, names with dashes */
    assert_true(removals_spec_matches("my-pkg/my-pkg-1.0.tar.gz", "my-pkg", "1.0"));
    assert_true(removals_spec_matches("my-pkg/my_pkg-1.0-py3-none-any.whl", "my-pkg", "1.0"));
    assert_false(removals_spec_matches("my-pkg/my_pkg-1.0.1-py3-none-any.whl", "my-pkg", "1.0"));
    assert_false(removals_spec_matches("my-pkg/my-pkg-1.0.1.tar.gz", "my-pkg", "1.0"));
    assert_true(removals_spec_matches("my-pkg/my-pkg-1.0.zip", "my-pkg", "1.0"));
    /* docker: <repository>/<tag> */
    assert_true(removals_spec_matches("library/alpine/3.19", "library/alpine", "3.19"));
    assert_false(removals_spec_matches("library/alpine/3.19", "library/alpine", "3.1"));
    /* no version: every marked entry of the package */
    assert_true(removals_spec_matches("left/-/left-1.0.0.tgz", "left", NULL));
    assert_false(removals_spec_matches("leftover/-/leftover-1.0.0.tgz", "left", NULL));
}

static void spec_split(void **state)
{
    (void)state;
    char a[] = "npm/left@1.0.0", b[] = "npm/@scope/x@2.0.0", c[] = "hub/library/alpine@3.19",
         d[] = "pypi/pkg", e[] = "npm", f[] = "npm/x@", g[] = "/x@1", h[] = "npm/@scope/x";
    char *k, *n, *v;
    assert_int_equal(removals_spec_split(a, &k, &n, &v), 0);
    assert_string_equal(k, "npm");
    assert_string_equal(n, "left");
    assert_string_equal(v, "1.0.0");
    assert_int_equal(removals_spec_split(b, &k, &n, &v), 0);
    assert_string_equal(n, "@scope/x");
    assert_string_equal(v, "2.0.0");
    assert_int_equal(removals_spec_split(c, &k, &n, &v), 0);
    assert_string_equal(k, "hub");
    assert_string_equal(n, "library/alpine");
    assert_string_equal(v, "3.19");
    assert_int_equal(removals_spec_split(d, &k, &n, &v), 0);
    assert_string_equal(n, "pkg");
    assert_null(v);
    assert_int_equal(removals_spec_split(h, &k, &n, &v), 0);
    assert_string_equal(n, "@scope/x");
    assert_null(v);
    assert_int_equal(removals_spec_split(e, &k, &n, &v), -EINVAL);
    assert_int_equal(removals_spec_split(f, &k, &n, &v), -EINVAL);
    assert_int_equal(removals_spec_split(g, &k, &n, &v), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(diff_marks_gone_and_unmarks_listed),
        cmocka_unit_test(diff_empty_listing_marks_everything),
        cmocka_unit_test(diff_names_are_exact),
        cmocka_unit_test(spec_matches_versions),
        cmocka_unit_test(spec_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_match: the --exclude/--include path rules (src/util/match.c) and the
 * string set registry listings deduplicate names with (src/util/strset.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "upstreamfs/hash.h"
#include "upstreamfs/match.h"
#include "upstreamfs/strset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void exclude_wins(void **state)
{
    (void)state;
    char *ex[] = {"*.sig", NULL};
    char *in[] = {"pool/*.deb", NULL};
    assert_false(match_path_allowed(ex, NULL, "a.sig"));
    assert_true(match_path_allowed(ex, NULL, "a.tgz"));
    assert_true(match_path_allowed(ex, in, "pool/a.deb"));
    assert_false(match_path_allowed(ex, in, "other/a.deb"));
    /* fnmatch without FNM_PATHNAME: "*" crosses '/' in a whole-path match */
    assert_false(match_path_allowed(ex, in, "pool/x.sig"));
    assert_true(match_path_allowed(ex, in, "")); /* the root always shows */
}

static void include_passes_its_directories(void **state)
{
    (void)state;
    char *in[] = {"org/example/*/lib-*.jar", NULL};
    assert_true(match_path_allowed(NULL, in, "org"));
    assert_true(match_path_allowed(NULL, in, "org/example/1.0"));
    assert_true(match_path_allowed(NULL, in, "org/example/1.0/lib-a.jar"));
    assert_false(match_path_allowed(NULL, in, "com"));
    assert_false(match_path_allowed(NULL, in, "org/example/1.0/other.jar"));
    char *deep[] = {"charts/**", NULL};
    assert_true(match_path_allowed(NULL, deep, "charts/a/b/c.tgz"));
    assert_false(match_path_allowed(NULL, deep, "images/a"));
}

static void strset_first_wins(void **state)
{
    (void)state;
    struct strset s = {0};
    char names[1000][16];
    assert_false(strset_has(&s, "x"));
    for (int i = 0; i < 1000; i++) { /* several growths */
        snprintf(names[i], sizeof(names[i]), "name-%d", i);
        assert_int_equal(strset_add(&s, names[i]), 1);
    }
    char again[16];
    snprintf(again, sizeof(again), "name-%d", 517); /* equal by value, not by pointer */
    assert_int_equal(strset_add(&s, again), 0);
    assert_true(strset_has(&s, again));
    assert_false(strset_has(&s, "name-1000"));
    assert_int_equal(s.n, 1000);
    strset_free(&s);
    assert_false(strset_has(&s, "name-1"));
}

static void fnv1a_vectors(void **state)
{
    (void)state;
    /* The published FNV-1a 64-bit test vectors. */
    assert_true(hash_fnv1a("", 0) == 0xcbf29ce484222325ULL);
    assert_true(hash_fnv1a("a", 1) == 0xaf63dc4c8601ec8cULL);
    assert_true(hash_fnv1a("foobar", 6) == 0x85944171f73967e8ULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exclude_wins),
        cmocka_unit_test(include_passes_its_directories),
        cmocka_unit_test(strset_first_wins),
        cmocka_unit_test(fnv1a_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

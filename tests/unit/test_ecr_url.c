/*
 * test_ecr_url: every accepted ECR URL form (docs/ecr.md) and
 * the ways each can be wrong. A table of cases: input, then either the
 * expected target or a fragment of the error message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "upstreamfs/ecr_url.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct good_case {
    const char *url;
    bool is_public;
    const char *host, *region, *account, *alias, *repository;
};

#define PRIV(acct, region) acct ".dkr.ecr." region ".amazonaws.com"

static const struct good_case good[] = {
    /* Registry form, with and without scheme, with and without a repository. */
    {PRIV("123456789012", "us-east-1"), false, PRIV("123456789012", "us-east-1"), "us-east-1",
     "123456789012", NULL, NULL},
    {"https://" PRIV("123456789012", "eu-west-1") "/", false, PRIV("123456789012", "eu-west-1"),
     "eu-west-1", "123456789012", NULL, NULL},
    {PRIV("123456789012", "us-east-1") "/team/app", false, PRIV("123456789012", "us-east-1"),
     "us-east-1", "123456789012", NULL, "team/app"},
    {"HTTPS://" PRIV("123456789012", "US-EAST-1") "/app/", false, PRIV("123456789012", "us-east-1"),
     "us-east-1", "123456789012", NULL, "app"},
    {PRIV("123456789012", "us-gov-west-1") "/a.b_c--d", false,
     PRIV("123456789012", "us-gov-west-1"), "us-gov-west-1", "123456789012", NULL, "a.b_c--d"},
    {"https://" PRIV("123456789012", "us-east-1") ":443/x1", false,
     PRIV("123456789012", "us-east-1"), "us-east-1", "123456789012", NULL, "x1"},

    /* Public registry form; the gallery has the same shape. */
    {"public.ecr.aws/docker", true, "public.ecr.aws", NULL, NULL, "docker", NULL},
    {"public.ecr.aws/docker/library/alpine", true, "public.ecr.aws", NULL, NULL, "docker",
     "library/alpine"},
    {"https://public.ecr.aws/docker/library%2Falpine/", true, "public.ecr.aws", NULL, NULL,
     "docker", "library/alpine"},
    {"https://gallery.ecr.aws/v9u5b3u6/demo", true, "public.ecr.aws", NULL, NULL, "v9u5b3u6",
     "demo"},

    /* Console form, private: region from the host or the query; %2F and '/' in names. */
    {"https://us-east-1.console.aws.amazon.com/ecr/repositories/private/123456789012/"
     "team%2Fapp?region=us-east-1",
     false, PRIV("123456789012", "us-east-1"), "us-east-1", "123456789012", NULL, "team/app"},
    {"https://eu-central-1.console.aws.amazon.com/ecr/repositories/private/216989112318/"
     "develeap/entry-tracker",
     false, PRIV("216989112318", "eu-central-1"), "eu-central-1", "216989112318", NULL,
     "develeap/entry-tracker"},
    {"https://console.aws.amazon.com/ecr/repositories/private/123456789012/app?region=ap-south-1",
     false, PRIV("123456789012", "ap-south-1"), "ap-south-1", "123456789012", NULL, "app"},
    {"us-west-2.console.aws.amazon.com/ecr/repositories/private/123456789012/a%2Fb%2Fc/"
     "?tab=images&region=us-west-2",
     false, PRIV("123456789012", "us-west-2"), "us-west-2", "123456789012", NULL, "a/b/c"},

    /* Console form, public: the id is an account; the region is arbitrary and dropped. */
    {"https://us-east-2.console.aws.amazon.com/ecr/repositories/public/463796021282/demo"
     "?region=us-east-2",
     true, "public.ecr.aws", NULL, "463796021282", NULL, "demo"},
    {"https://ap-south-1.console.aws.amazon.com/ecr/repositories/public/996091555539/"
     "team%2Fweb?region=ap-south-1",
     true, "public.ecr.aws", NULL, "996091555539", NULL, "team/web"},
};

struct bad_case {
    const char *url, *needle;
};

static const struct bad_case bad[] = {
    {"", "must not be empty"},
    {"http://" PRIV("123456789012", "us-east-1"), "https only"},
    {"ftp://" PRIV("123456789012", "us-east-1"), "http or https"},
    {"https://example.com/x", "not an ECR URL"},
    {"https://registry-1.docker.io/", "not an ECR URL"},
    {PRIV("12345678901", "us-east-1"), "12 digits"},
    {PRIV("1234567890123", "us-east-1"), "12 digits"},
    {PRIV("12345678901a", "us-east-1"), "12 digits"},
    {PRIV("123456789012", "useast1"), "AWS region"},
    {PRIV("123456789012", "us-east-1") ":5000/x", "no port"},
    {PRIV("123456789012", "us-east-1") "/x?tag=1", "no query"},
    {PRIV("123456789012", "us-east-1") "/x#frag", "no port or fragment"},
    {PRIV("123456789012", "us-east-1") "/Upper", "repository name"},
    {PRIV("123456789012", "us-east-1") "/a//b", "repository name"},
    {PRIV("123456789012", "us-east-1") "/a", "repository name"},
    {PRIV("123456789012", "us-east-1") "/-ab", "repository name"},
    {"https://user:pw@" PRIV("123456789012", "us-east-1"), "user name or password"},
    {"public.ecr.aws", "names the alias"},
    {"public.ecr.aws/", "names the alias"},
    {"public.ecr.aws/9lives/x", "alias"},
    {"public.ecr.aws/docker/Alpine", "repository name"},
    {"https://us-east-1.console.aws.amazon.com/ecr/repositories/private/123456789012",
     "names no repository"},
    {"https://us-east-1.console.aws.amazon.com/ecr/repositories/private/123456789012/",
     "names no repository"},
    {"https://us-east-1.console.aws.amazon.com/ecr/repositories/secret/123456789012/x1",
     "console URL looks like"},
    {"https://us-east-1.console.aws.amazon.com/ec2/home", "console URL looks like"},
    {"https://console.aws.amazon.com/ecr/repositories/private/123456789012/app", "names no region"},
    {"https://us-east-1.console.aws.amazon.com/ecr/repositories/private/123456789012/app"
     "?region=eu-west-1",
     "two regions"},
    {"https://us-east-1.console.aws.amazon.com/ecr/repositories/private/abc/app", "12 digits"},
    {"https://us-east-1.console.aws.amazon.com/ecr/repositories/private/123456789012/a%00b",
     "does not decode"},
};

static void expect_str(const char *got, const char *want, const char *what, const char *url)
{
    if ((got == NULL) != (want == NULL) || (got && strcmp(got, want) != 0))
        fail_msg("%s: %s is %s, want %s", url, what, got ? got : "NULL", want ? want : "NULL");
}

static void test_good(void **state)
{
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct ecr_target t = {0};
        struct config_error err = {0};
        int rc = ecr_url_parse(good[i].url, &t, &err);
        if (rc != 0)
            fail_msg("%s: refused: %s: %s", good[i].url, err.field, err.message);
        assert_int_equal(t.is_public, good[i].is_public);
        expect_str(t.host, good[i].host, "host", good[i].url);
        expect_str(t.region, good[i].region, "region", good[i].url);
        expect_str(t.account, good[i].account, "account", good[i].url);
        expect_str(t.alias, good[i].alias, "alias", good[i].url);
        expect_str(t.repository, good[i].repository, "repository", good[i].url);
        /* What parse produces, validate accepts; the canonical URL is https://host/. */
        assert_int_equal(ecr_target_validate(&t, &err), 0);
        char *canon = ecr_target_url(&t);
        assert_non_null(canon);
        assert_true(strncmp(canon, "https://", 8) == 0);
        assert_memory_equal(canon + 8, good[i].host, strlen(good[i].host));
        assert_string_equal(canon + 8 + strlen(good[i].host), "/");
        free(canon);
        ecr_target_clear(&t);
    }
}

static void test_bad(void **state)
{
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ecr_target t = {0};
        struct config_error err = {0};
        int rc = ecr_url_parse(bad[i].url, &t, &err);
        if (rc != -EINVAL || strcmp(err.field, "url") != 0 || !strstr(err.message, bad[i].needle))
            fail_msg("%s: rc=%d field=%s message=%s; wanted \"%s\"", bad[i].url, rc, err.field,
                     err.message, bad[i].needle);
        assert_null(t.host);
    }
}

/* A failed parse leaves the previous target alone; a good one replaces it. */
static void test_replace(void **state)
{
    struct ecr_target t = {0};
    struct config_error err = {0};
    assert_int_equal(ecr_url_parse("public.ecr.aws/docker/library/alpine", &t, &err), 0);
    assert_int_equal(ecr_url_parse("https://example.com/", &t, &err), -EINVAL);
    assert_string_equal(t.alias, "docker");
    assert_int_equal(ecr_url_parse(PRIV("123456789012", "us-east-1"), &t, &err), 0);
    assert_null(t.alias);
    assert_string_equal(t.account, "123456789012");

    struct ecr_target c;
    assert_int_equal(ecr_target_copy(&c, &t), 0);
    ecr_target_clear(&t);
    assert_string_equal(c.region, "us-east-1");
    ecr_target_clear(&c);
}

/* Targets read back from storage are checked for consistency. */
static void test_validate(void **state)
{
    struct config_error err = {0};
    struct ecr_target t = {
        .host = PRIV("123456789012", "us-east-1"),
        .region = "us-east-1",
        .account = "123456789012",
    };
    assert_int_equal(ecr_target_validate(&t, &err), 0);
    t.region = "eu-west-1";
    assert_int_equal(ecr_target_validate(&t, &err), -EINVAL);
    assert_non_null(strstr(err.message, "does not match"));
    t.region = NULL;
    assert_int_equal(ecr_target_validate(&t, &err), -EINVAL);

    struct ecr_target p = {.is_public = true, .host = "public.ecr.aws", .alias = "docker"};
    assert_int_equal(ecr_target_validate(&p, &err), 0);
    p.alias = NULL;
    assert_int_equal(ecr_target_validate(&p, &err), -EINVAL);
    p.account = "463796021282";
    assert_int_equal(ecr_target_validate(&p, &err), 0);
    p.host = "example.com";
    assert_int_equal(ecr_target_validate(&p, &err), -EINVAL);
    p.host = NULL;
    assert_int_equal(ecr_target_validate(&p, &err), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_bad),
        cmocka_unit_test(test_replace),
        cmocka_unit_test(test_validate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_policy: the package rules and the cooldown (include/upstreamfs/policy.h): npm semver
 * ranges (src/policy/semver.c), PEP 440 specifiers (src/policy/pep440.c), rules per
 * ecosystem and the paths they judge (src/policy/rules.c, subject.c), and the documents they
 * filter (src/policy/filter.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "upstreamfs/config.h"
#include "upstreamfs/helm.h"
#include "upstreamfs/policy.h"
#include "upstreamfs/pypi.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DAY 86400

static void semver_ranges(void **state)
{
    (void)state;
    static const struct {
        const char *range, *version;
        int want;
    } cases[] = {
        {"^1.2.3", "1.2.3", 1},
        {"^1.2.3", "1.9.0", 1},
        {"^1.2.3", "2.0.0", 0},
        {"^1.2.3", "1.2.2", 0},
        {"^0.2.3", "0.2.9", 1},
        {"^0.2.3", "0.3.0", 0},
        {"^0.0.3", "0.0.3", 1},
        {"^0.0.3", "0.0.4", 0},
        {"^0.0", "0.0.9", 1},
        {"^0.0", "0.1.0", 0},
        {"^1.x", "1.5.0", 1},
        {"^1.x", "2.0.0", 0},
        {"~1.2.3", "1.2.9", 1},
        {"~1.2.3", "1.3.0", 0},
        {"~1", "1.9.9", 1},
        {"~1", "2.0.0", 0},
        {"~>1.2", "1.2.5", 1},
        {">=1.2.0 <1.4.0", "1.3.0", 1},
        {">=1.2.0 <1.4.0", "1.4.0", 0},
        {">1.2", "1.2.9", 0},
        {">1.2", "1.3.0", 1},
        {"<=1.2", "1.2.9", 1},
        {"<=1.2", "1.3.0", 0},
        {"<1.2", "1.1.9", 1},
        {"<1.2", "1.2.0", 0},
        {"1.2.x", "1.2.7", 1},
        {"1.2.x", "1.3.0", 0},
        {"*", "9.9.9", 1},
        {"", "0.0.1", 1},
        {"1.2.3 - 2.3", "2.3.9", 1},
        {"1.2.3 - 2.3", "2.4.0", 0},
        {"1.2 - 2.3.4", "1.2.0", 1},
        {"1.2 - 2.3.4", "2.3.5", 0},
        {"3.3.6", "3.3.6", 1},
        {"3.3.6", "3.3.7", 0},
        {"=3.3.6", "3.3.6", 1},
        {"1.x || >=2.5.0", "2.6.0", 1},
        {"1.x || >=2.5.0", "2.1.0", 0},
        {"v1.2.3", "1.2.3", 1},
        /* prereleases: only where a comparator of the same tuple names one */
        {"^1.2.3", "1.3.0-beta.1", 0},
        {">=1.2.3-alpha.1", "1.2.3-alpha.7", 1},
        {">=1.2.3-alpha.1", "1.2.4-alpha.1", 0},
        {">=1.0.0-rc.1 <2", "1.0.0-rc.2", 1},
        {">*", "1.0.0", 0},
        {"<*", "1.0.0", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = semver_satisfies(cases[i].range, cases[i].version);
        if (got != cases[i].want)
            fail_msg("'%s' vs %s: %d, want %d", cases[i].range, cases[i].version, got,
                     cases[i].want);
    }
    assert_int_equal(semver_satisfies("^^1", "1.0.0"), -EINVAL);
    assert_int_equal(semver_satisfies("^1", "not-a-version"), -EINVAL);
    assert_false(semver_range_valid(">=1.2.3<2"));
    assert_false(semver_range_valid("1.2.3 -"));
    assert_true(semver_range_valid("1 || 2 || >=3.1.4-beta.2"));
    int err;
    assert_true(semver_compare("1.0.0-alpha", "1.0.0-alpha.1", &err) < 0 && err == 0);
    assert_true(semver_compare("1.0.0-alpha.beta", "1.0.0-beta", &err) < 0);
    assert_true(semver_compare("1.0.0-beta.2", "1.0.0-beta.11", &err) < 0);
    assert_true(semver_compare("1.0.0-rc.1", "1.0.0", &err) < 0);
    assert_true(semver_compare("1.0.0+build.5", "1.0.0", &err) == 0);
    assert_true(semver_compare("10.0.0", "9.99.99", &err) > 0);
    semver_compare("1.0", "1.0.0", &err);
    assert_int_equal(err, -EINVAL);
}

static void pep440_specifiers(void **state)
{
    (void)state;
    static const struct {
        const char *spec, *version;
        int want;
    } cases[] = {
        {"==1.0", "1.0.0", 1},        {"==1.0", "1.0.1", 0},       {"!=1.0", "1.0.1", 1},
        {">=2,<3", "2.31.0", 1},      {">=2,<3", "3.0", 0},        {">=2, <3", "1.9", 0},
        {"~=2.2", "2.9", 1},          {"~=2.2", "3.0", 0},         {"~=1.4.5", "1.4.9", 1},
        {"~=1.4.5", "1.5.0", 0},      {"==1.2.*", "1.2.7", 1},     {"==1.2.*", "1.3", 0},
        {"!=1.2.*", "1.3", 1},        {"<2.0", "2.0rc1", 0},       {"<2.0", "1.9", 1},
        {">1.0", "1.0.post1", 0},     {">1.0", "1.1", 1},          {"<=1.0", "1.0", 1},
        {"===1.0-foo", "1.0-FOO", 1}, {"===1.0", "1.0.0", 0},      {">=1.0a1", "1.0b2", 1},
        {"==1.0", "1.0+local.7", 1},  {"==2!1.0", "1.0", 0},       {">=1.0.dev0", "1.0a1", 1},
        {"<1.0", "1.0.dev3", 0},      {"==1.0.post2", "1.0-2", 1}, {"==1.0rc1", "1.0-c1", 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = pep440_satisfies(cases[i].spec, cases[i].version);
        if (got != cases[i].want)
            fail_msg("'%s' vs %s: %d, want %d", cases[i].spec, cases[i].version, got,
                     cases[i].want);
    }
    int err;
    assert_true(pep440_compare("1.0.dev1", "1.0a1", &err) < 0 && err == 0);
    assert_true(pep440_compare("1.0a1", "1.0b1", &err) < 0);
    assert_true(pep440_compare("1.0rc1", "1.0", &err) < 0);
    assert_true(pep440_compare("1.0", "1.0.post1", &err) < 0);
    assert_true(pep440_compare("1.0.post1.dev1", "1.0.post1", &err) < 0);
    assert_true(pep440_compare("v1.0", "1.0.0", &err) == 0);
    assert_true(pep440_compare("1!0.1", "2.0", &err) > 0);
    assert_false(pep440_spec_valid("~=1"));
    assert_false(pep440_spec_valid(">=1.*"));
    assert_false(pep440_spec_valid("=>1"));
    assert_true(pep440_spec_valid("==1.*, !=1.2.3"));
    assert_false(pep440_version_valid("one"));
    assert_false(pep440_spec_valid("==="));
    assert_int_equal(pep440_satisfies(">=1", "banana"), 0); /* no version: only === matches */
    assert_int_equal(pep440_satisfies("===banana", "Banana"), 1);
    assert_int_equal(pep440_satisfies("=>1", "banana"), -EINVAL);
}

static void rules_per_ecosystem(void **state)
{
    (void)state;
    char msg[256];
    assert_int_equal(policy_rule_check(POLICY_ECO_NPM, "event-stream@3.3.6", msg, sizeof(msg)), 0);
    assert_int_equal(policy_rule_check(POLICY_ECO_NPM, "@myorg/*", msg, sizeof(msg)), 0);
    assert_int_equal(policy_rule_check(POLICY_ECO_NPM, "@myorg/x@^1 || ^2", msg, sizeof(msg)), 0);
    assert_int_equal(policy_rule_check(POLICY_ECO_NPM, "x@>>1", msg, sizeof(msg)), -EINVAL);
    assert_string_equal(msg, "x@>>1 is not NAME[@RANGE] (an npm semver range)");
    assert_int_equal(policy_rule_check(POLICY_ECO_PYPI, "requests@>=2,<3", msg, sizeof(msg)), 0);
    assert_int_equal(policy_rule_check(POLICY_ECO_PYPI, "Requests>=2", msg, sizeof(msg)), 0);
    assert_int_equal(policy_rule_check(POLICY_ECO_PYPI, "x@=>2", msg, sizeof(msg)), -EINVAL);
    assert_int_equal(policy_rule_check(POLICY_ECO_MAVEN, "org.example:*", msg, sizeof(msg)), 0);
    assert_int_equal(policy_rule_check(POLICY_ECO_MAVEN, "org.example", msg, sizeof(msg)), -EINVAL);
    assert_int_equal(policy_rule_check(POLICY_ECO_IMAGE, "library/*:1.*", msg, sizeof(msg)), 0);
    assert_int_equal(policy_rule_check(POLICY_ECO_NONE, "x", msg, sizeof(msg)), -EINVAL);
    assert_int_equal(policy_rule_check(POLICY_ECO_NPM, "x\n", msg, sizeof(msg)), -EINVAL);

    assert_true(policy_rule_matches(POLICY_ECO_NPM, "event-stream@3.3.6", "event-stream", "3.3.6"));
    assert_false(
        policy_rule_matches(POLICY_ECO_NPM, "event-stream@3.3.6", "event-stream", "3.3.5"));
    assert_false(policy_rule_matches(POLICY_ECO_NPM, "event-stream@3.3.6", "event-stream", NULL));
    assert_true(policy_rule_matches(POLICY_ECO_NPM, "@myorg/*", "@myorg/util", NULL));
    assert_false(policy_rule_matches(POLICY_ECO_NPM, "@myorg/*", "@other/util", NULL));
    /* PyPI names compare normalised */
    assert_true(policy_rule_matches(POLICY_ECO_PYPI, "Foo_Bar@<2", "foo-bar", "1.5"));
    assert_false(policy_rule_matches(POLICY_ECO_PYPI, "Foo_Bar@<2", "foo-bar", "2.0"));
    assert_true(policy_rule_matches(POLICY_ECO_PYPI, "foo-bar@1.0", "foo-bar", "1.0.0"));
    assert_true(
        policy_rule_matches(POLICY_ECO_MAVEN, "org.example:lib:1.*", "org.example:lib", "1.4"));
    assert_false(
        policy_rule_matches(POLICY_ECO_MAVEN, "org.example:lib:1.*", "org.example:lib", "2.0"));
    assert_true(policy_rule_matches(POLICY_ECO_HELM, "nginx@>=15", "nginx", "15.1.0"));
}

static void init(struct proxy *p, enum proxy_type t)
{
    config_proxy_init(p, "k", t);
}

static char **strv(const char *a, const char *b)
{
    char **v = calloc(3, sizeof(*v));
    v[0] = a ? strdup(a) : NULL;
    v[1] = a && b ? strdup(b) : NULL;
    return v;
}

static void verdicts(void **state)
{
    (void)state;
    struct proxy p;
    init(&p, PROXY_NPM);
    p.deny = strv("event-stream@3.3.6", "evil-*");
    assert_int_equal(policy_name_verdict(&p, "event-stream", NULL, NULL), POLICY_PASS);
    assert_int_equal(policy_name_verdict(&p, "event-stream", "3.3.6", NULL), POLICY_DENIED);
    const char *rule = NULL;
    assert_int_equal(policy_name_verdict(&p, "evil-pkg", NULL, &rule), POLICY_DENIED);
    assert_string_equal(rule, "evil-*");
    /* allow: only what an allow rule matches; deny wins */
    p.allow = strv("lodash@^4", "evil-*");
    assert_int_equal(policy_name_verdict(&p, "react", NULL, &rule), POLICY_DENIED);
    assert_null(rule);
    assert_int_equal(policy_name_verdict(&p, "lodash", NULL, NULL), POLICY_PASS);
    assert_int_equal(policy_name_verdict(&p, "lodash", "4.17.21", NULL), POLICY_PASS);
    assert_int_equal(policy_name_verdict(&p, "lodash", "3.10.1", NULL), POLICY_DENIED);
    assert_int_equal(policy_name_verdict(&p, "evil-pkg", NULL, NULL), POLICY_DENIED);
    config_proxy_clear(&p);

    /* the cooldown */
    init(&p, PROXY_NPM);
    p.min_age = 7 * DAY;
    p.min_age_exempt = strv("@myorg/*", NULL);
    int64_t now = 1800000000, at = 0;
    assert_int_equal(policy_version_verdict(&p, "x", "1.0.0", now - 8 * DAY, now, &at),
                     POLICY_PASS);
    assert_int_equal(policy_version_verdict(&p, "x", "1.1.0", now - DAY, now, &at), POLICY_YOUNG);
    assert_int_equal(at, now + 6 * DAY);
    assert_int_equal(policy_version_verdict(&p, "x", "1.1.0", -1, now, &at), POLICY_YOUNG);
    assert_int_equal(at, INT64_MAX);
    assert_int_equal(policy_version_verdict(&p, "@myorg/x", "1.1.0", now - DAY, now, &at),
                     POLICY_PASS);
    p.min_age_unknown = MIN_AGE_UNKNOWN_ALLOW;
    assert_int_equal(policy_version_verdict(&p, "x", "1.1.0", -1, now, &at), POLICY_PASS);
    /* policy_same: what a reload compares */
    struct proxy q;
    assert_int_equal(config_proxy_copy(&q, &p), 0);
    assert_true(policy_same(&p, &q));
    assert_int_equal(config_strv_push(&q.min_age_exempt, "other"), 0);
    assert_false(policy_same(&p, &q));
    config_proxy_clear(&q);
    assert_int_equal(config_proxy_copy(&q, &p), 0);
    q.min_age = 0;
    assert_false(policy_same(&p, &q));
    config_proxy_clear(&q);
    config_proxy_clear(&p);
}

static void subjects(void **state)
{
    (void)state;
    char n[POLICY_NAME_MAX + 1], v[POLICY_VERSION_MAX + 1];
    assert_true(
        policy_subject(PROXY_NPM, "@upfs/util/-/util-1.1.0.tgz", n, sizeof(n), v, sizeof(v)));
    assert_string_equal(n, "@upfs/util");
    assert_string_equal(v, "1.1.0");
    assert_true(policy_subject(PROXY_NPM, "left-pad/package.json", n, sizeof(n), v, sizeof(v)));
    assert_string_equal(n, "left-pad");
    assert_string_equal(v, "");
    assert_false(policy_subject(PROXY_NPM, "@upfs", n, sizeof(n), v, sizeof(v)));
    assert_true(policy_subject(PROXY_PYPI, "foo-bar/foo_bar-1.2.3-py3-none-any.whl.metadata", n,
                               sizeof(n), v, sizeof(v)));
    assert_string_equal(n, "foo-bar");
    assert_string_equal(v, "1.2.3");
    assert_true(
        policy_subject(PROXY_PYPI, "foo-bar/foo-bar-0.9.tar.gz", n, sizeof(n), v, sizeof(v)));
    assert_string_equal(v, "0.9");
    assert_true(policy_subject(PROXY_PYPI, "foo-bar/.simple.json", n, sizeof(n), v, sizeof(v)));
    assert_string_equal(v, "");
    assert_true(policy_subject(PROXY_MAVEN, "org/example/lib/1.4/lib-1.4-sources.jar", n, sizeof(n),
                               v, sizeof(v)));
    assert_string_equal(n, "org.example:lib");
    assert_string_equal(v, "1.4");
    assert_true(policy_subject(PROXY_MAVEN, "org/example/lib/maven-metadata.xml", n, sizeof(n), v,
                               sizeof(v)));
    assert_string_equal(n, "org.example:lib");
    assert_string_equal(v, "");
    assert_false(policy_subject(PROXY_MAVEN, "org/example", n, sizeof(n), v, sizeof(v)));
    assert_true(policy_subject(PROXY_HELM, "charts/ingress-nginx-4.10.0-rc.1.tgz", n, sizeof(n), v,
                               sizeof(v)));
    assert_string_equal(n, "ingress-nginx");
    assert_string_equal(v, "4.10.0-rc.1");
    assert_false(policy_subject(PROXY_HELM, "index.yaml", n, sizeof(n), v, sizeof(v)));
}

static void path_verdicts(void **state)
{
    (void)state;
    struct proxy p;
    const char *rule;
    init(&p, PROXY_DOCKER);
    p.allow = strv("library/*", NULL);
    p.deny = strv("library/nginx:1.25*", NULL);
    assert_int_equal(policy_path_verdict(&p, "library", &rule), POLICY_PASS);
    assert_int_equal(policy_path_verdict(&p, "library/alpine/3.19/index.json", &rule), POLICY_PASS);
    assert_int_equal(policy_path_verdict(&p, "library/nginx/1.24", &rule), POLICY_PASS);
    assert_int_equal(policy_path_verdict(&p, "library/nginx/1.25.3/oci-layout", &rule),
                     POLICY_DENIED);
    assert_string_equal(rule, "library/nginx:1.25*");
    assert_int_equal(policy_path_verdict(&p, "bitnami/redis", &rule), POLICY_DENIED);
    assert_int_equal(policy_path_verdict(&p, "bitnami", &rule), POLICY_DENIED);
    config_proxy_clear(&p);

    init(&p, PROXY_NPM);
    p.deny = strv("upfs-evil", "upfs-demo@1.0.0");
    assert_int_equal(policy_path_verdict(&p, "upfs-evil", &rule), POLICY_DENIED);
    assert_int_equal(policy_path_verdict(&p, "upfs-evil/package.json", &rule), POLICY_DENIED);
    assert_int_equal(policy_path_verdict(&p, "upfs-demo/package.json", &rule), POLICY_PASS);
    assert_int_equal(policy_path_verdict(&p, "upfs-demo/-/upfs-demo-1.0.0.tgz", &rule),
                     POLICY_DENIED);
    assert_int_equal(policy_path_verdict(&p, "upfs-demo/-/upfs-demo-1.0.1.tgz", &rule),
                     POLICY_PASS);
    config_proxy_clear(&p);
}

static void npm_documents(void **state)
{
    (void)state;
    struct proxy p;
    init(&p, PROXY_NPM);
    p.min_age = 7 * DAY;
    int64_t now = 1800000000;
    char old[32], young[32];
    snprintf(old, sizeof(old), "%s", "2026-01-01T00:00:00.000Z");
    assert_int_equal(policy_parse_time(old), 1767225600);
    assert_int_equal(policy_parse_time("2026-01-01T01:00:00+01:00"), 1767225600);
    assert_int_equal(policy_parse_time("yesterday"), -1);
    time_t t = (time_t)(now - DAY);
    strftime(young, sizeof(young), "%Y-%m-%dT%H:%M:%S.000Z", gmtime(&t));
    json_t *doc =
        json_pack("{s:{s:s,s:s,s:s}, s:{s:{},s:{},s:{},s:{}}, s:{s:s,s:s,s:s,s:s}}", "dist-tags",
                  "latest", "1.1.0", "next", "2.0.0-beta.1", "gone", "0.0.1-x", "versions", "1.0.0",
                  "1.1.0", "2.0.0-beta.1", "0.9.0", "time", "1.0.0", old, "1.1.0", young,
                  "2.0.0-beta.1", young, "modified", young);
    assert_non_null(doc);
    struct policy_filtered f;
    assert_int_equal(policy_npm_filter(&p, "x", doc, now, &f), 0);
    /* 0.9.0 has no time: new (the default --min-age-unknown deny) */
    assert_int_equal(f.hidden, 3);
    assert_int_equal(f.next_visible, now + 6 * DAY);
    json_t *versions = json_object_get(doc, "versions");
    assert_int_equal(json_object_size(versions), 1);
    assert_non_null(json_object_get(versions, "1.0.0"));
    assert_null(json_object_get(json_object_get(doc, "time"), "1.1.0"));
    assert_non_null(json_object_get(json_object_get(doc, "time"), "modified"));
    json_t *tags = json_object_get(doc, "dist-tags");
    assert_string_equal(json_string_value(json_object_get(tags, "latest")), "1.0.0");
    assert_string_equal(json_string_value(json_object_get(tags, "next")), "1.0.0");
    assert_null(json_object_get(tags, "gone"));
    json_decref(doc);

    char fp1[32], fp2[32], fp3[32];
    policy_fingerprint(&p, now + DAY, fp1, sizeof(fp1));
    policy_fingerprint(&p, now + 2 * DAY, fp2, sizeof(fp2));
    assert_int_equal(strlen(fp1), 16);
    assert_string_not_equal(fp1, fp2);
    p.min_age = 0;
    policy_fingerprint(&p, INT64_MAX, fp3, sizeof(fp3));
    assert_string_equal(fp3, "");
    config_proxy_clear(&p);
}

static void pypi_documents(void **state)
{
    (void)state;
    struct proxy p;
    init(&p, PROXY_PYPI);
    p.min_age = 7 * DAY;
    p.deny = strv("demo@==0.5", NULL);
    int64_t now = 1800000000;
    static const char page[] =
        "{\"files\":[{\"filename\":\"demo-1.0.tar.gz\",\"url\":\"http://x/a\","
        "\"upload-time\":\"2020-01-01T00:00:00Z\"},{\"filename\":\"demo-2.0-py3-none-any.whl\","
        "\"url\":\"http://x/b\",\"upload-time\":\"2099-01-01T00:00:00Z\"},"
        "{\"filename\":\"demo-1.5.tar.gz\",\"url\":\"http://x/c\"},"
        "{\"filename\":\"demo-0.5.tar.gz\",\"url\":\"http://x/d\","
        "\"upload-time\":\"2020-01-01T00:00:00Z\"}]}";
    struct pypi_index *index = NULL, *out = NULL;
    assert_int_equal(pypi_index_parse(page, strlen(page), "application/json",
                                      "http://x/simple/demo/", "demo", &index),
                     0);
    struct policy_filtered f;
    assert_int_equal(policy_pypi_filter(&p, "demo", index, now, &out, &f), 0);
    assert_int_equal(f.hidden, 3);
    assert_int_equal(pypi_index_count(out), 1);
    assert_string_equal(pypi_index_filename(out, 0), "demo-1.0.tar.gz");
    assert_int_equal(pypi_index_count(index), 4); /* untouched */
    /* the subset finds its own files only */
    assert_int_equal(pypi_index_lookup(out, "demo-1.0.tar.gz"), 0);
    assert_int_equal(pypi_index_lookup(out, "demo-0.5.tar.gz"), -1);
    pypi_index_free(out);
    p.min_age = 0;
    free(p.deny[0]);
    p.deny[0] = NULL;
    assert_int_equal(policy_pypi_filter(&p, "demo", index, now, &out, &f), 0);
    assert_ptr_equal(out, index);
    pypi_index_free(out);
    pypi_index_free(index);
    config_proxy_clear(&p);
}

static bool hide_by_rules(void *arg, const char *name, const char *version)
{
    return policy_name_verdict(arg, name, version, NULL) == POLICY_DENIED;
}

static void helm_index(void **state)
{
    (void)state;
    static const char idx[] = "apiVersion: v1\n"
                              "entries:\n"
                              "  nginx:\n"
                              "  - name: nginx\n"
                              "    version: 15.0.0\n"
                              "    urls: [https://cdn/nginx-15.0.0.tgz]\n"
                              "  - name: nginx\n"
                              "    version: 14.1.0\n"
                              "    urls: [https://cdn/nginx-14.1.0.tgz]\n"
                              "  alpha:\n"
                              "  - name: alpha\n"
                              "    version: 0.1.0\n"
                              "    urls: [alpha-0.1.0.tgz]\n"
                              "generated: 2026-01-01T00:00:00Z\n";
    struct proxy p;
    init(&p, PROXY_HELM);
    p.deny = strv("nginx@>=15", "alpha");
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(
        helm_rewrite_index_filtered(idx, strlen(idx), "http://r/", hide_by_rules, &p, &out, &len),
        0);
    assert_null(strstr(out, "15.0.0"));
    assert_non_null(strstr(out, "charts/nginx-14.1.0.tgz"));
    assert_null(strstr(out, "alpha-0.1.0"));
    assert_non_null(strstr(out, "alpha:"));     /* an empty list: the chart, no versions */
    assert_non_null(strstr(out, "generated:")); /* the rest passes through */
    struct helm_charts c;
    assert_int_equal(helm_index_charts(out, len, "http://r/", &c), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.charts[0].version, "14.1.0");
    helm_charts_clear(&c);
    free(out);
    /* an anchor inside a hidden version: nothing is left out (an alias could name it) */
    static const char anchored[] = "entries:\n"
                                   "  nginx:\n"
                                   "  - name: nginx\n"
                                   "    version: 15.0.0\n"
                                   "    description: &d shared\n"
                                   "    urls: [nginx-15.0.0.tgz]\n"
                                   "  - name: nginx\n"
                                   "    version: 14.1.0\n"
                                   "    description: *d\n"
                                   "    urls: [nginx-14.1.0.tgz]\n";
    assert_int_equal(helm_rewrite_index_filtered(anchored, strlen(anchored), "http://r/",
                                                 hide_by_rules, &p, &out, &len),
                     0);
    assert_non_null(strstr(out, "charts/nginx-15.0.0.tgz"));
    free(out);
    config_proxy_clear(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(semver_ranges),
        cmocka_unit_test(pep440_specifiers),
        cmocka_unit_test(rules_per_ecosystem),
        cmocka_unit_test(verdicts),
        cmocka_unit_test(subjects),
        cmocka_unit_test(path_verdicts),
        cmocka_unit_test(npm_documents),
        cmocka_unit_test(pypi_documents),
        cmocka_unit_test(helm_index),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

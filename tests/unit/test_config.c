/*
 * test_config: the validation rules and the JSON schema
 * (docs/ARCHITECTURE.md, "Configuration model"), through config.h only (no database, no files).
 *
 * Each rule has a good and a bad case; a bad case checks the field named and
 * that the message states the rule, and that the proxy was left unchanged.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "upstreamfs/config.h"
#include "upstreamfs/defaults.h"
#include "upstreamfs/policy.h"
#include "upstreamfs/proxy_fields.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers --------------------------------------------------------------------------- */

static void expect_err(int rc, const struct config_error *err, const char *field,
                       const char *needle)
{
    if (rc != -EINVAL || strcmp(err->field, field) != 0 || !strstr(err->message, needle))
        fail_msg("rc=%d field=%s message=%s; wanted -EINVAL, %s, \"%s\"", rc, err->field,
                 err->message, field, needle);
    assert_null(strchr(err->message, '\n'));
}

/* A proxy of type t with url (may be NULL); validated with has_secret false. */
static int make(struct proxy *p, enum proxy_type t, const char *url, struct config_error *err)
{
    config_proxy_init(p, "p", t);
    if (url)
        assert_int_equal(config_proxy_set_url(p, url), 0);
    memset(err, 0, sizeof(*err));
    return config_proxy_validate(p, false, err);
}

static void check_key(const char *key, int want, const char *needle)
{
    struct config_error err = {0};
    int rc = config_key_validate("key", key, &err);
    if (want == 0) {
        if (rc != 0)
            fail_msg("key %s refused: %s", key, err.message);
        return;
    }
    expect_err(rc, &err, "key", needle);
}

/* ---- keys ------------------------------------------------------------------------------ */

static void test_key_rule(void **state)
{
    char k64[65], k65[66];
    memset(k64, 'a', 64);
    k64[64] = '\0';
    memset(k65, 'a', 65);
    k65[65] = '\0';

    check_key("a", 0, NULL);
    check_key("hub", 0, NULL);
    check_key("my-proxy_1.2", 0, NULL);
    check_key("v2x", 0, NULL);
    check_key("apis", 0, NULL);
    check_key(k64, 0, NULL);

    check_key(k65, -EINVAL, "at most 64 characters");
    check_key("", -EINVAL, "must not be empty");
    check_key(NULL, -EINVAL, "must not be empty");
    check_key("1abc", -EINVAL, "must start with a letter (got \"1abc\")");
    check_key("-abc", -EINVAL, "must start with a letter");
    check_key("_abc", -EINVAL, "must start with a letter");
    check_key(".abc", -EINVAL, "must start with a letter");
    check_key("Abc", -EINVAL, "only lowercase letters");
    check_key("aBc", -EINVAL, "only lowercase letters");
    check_key("a b", -EINVAL, "only lowercase letters");
    check_key("a/b", -EINVAL, "only lowercase letters");
    check_key("a:b", -EINVAL, "only lowercase letters");
    check_key("caf\xc3\xa9", -EINVAL, "only lowercase letters");
    check_key("a\nb", -EINVAL, "(got \"a\\x0ab\")");
    const char *reserved[] = {"v2", "api", "metrics", "healthz", "ui", "static"};
    for (size_t i = 0; i < 6; i++)
        check_key(reserved[i], -EINVAL, "is reserved");
}

static void test_names(void **state)
{
    struct config_error err = {0};
    enum proxy_type t;
    enum proxy_auth a;
    enum proxy_source s;
    const char *types[] = {"docker", "ecr", "helm", "maven", "npm", "pypi", "generic"};
    for (size_t i = 0; i < 7; i++) {
        assert_int_equal(config_type_parse(types[i], &t, &err), 0);
        assert_string_equal(config_type_name(t), types[i]);
    }
    expect_err(config_type_parse("rpm", &t, &err), &err, "type", "must be one of");
    expect_err(config_type_parse("Docker", &t, &err), &err, "type", "must be one of");
    assert_int_equal(config_type_lookup("npm", &t), 0);
    assert_int_equal(t, PROXY_NPM);

    assert_int_equal(config_auth_parse("access-key", &a, &err), 0);
    assert_int_equal(a, AUTH_ACCESS_KEY);
    assert_int_equal(config_auth_parse("aws-chain", &a, &err), 0);
    expect_err(config_auth_parse("basic", &a, &err), &err, "auth", "must be one of");
    assert_int_equal(config_source_parse("custom", &s, &err), 0);
    assert_int_equal(s, SOURCE_CUSTOM);
    expect_err(config_source_parse("none", &s, &err), &err, "source", "dockerhub, custom");
}

/* ---- URLs ------------------------------------------------------------------------------ */

static void test_url_rules(void **state)
{
    struct proxy p;
    struct config_error err;

    assert_int_equal(make(&p, PROXY_GENERIC, "https://example.com/files", &err), 0);
    assert_string_equal(p.url, "https://example.com/files/");
    config_proxy_clear(&p);

    /* Normalised: lower-case host and scheme, default port dropped, '/' added once. */
    assert_int_equal(make(&p, PROXY_MAVEN, "HTTPS://Repo.Example.COM:443/maven2/", &err), 0);
    assert_string_equal(p.url, "https://repo.example.com/maven2/");
    config_proxy_clear(&p);
    assert_int_equal(make(&p, PROXY_HELM, "http://127.0.0.1:8080", &err), 0);
    assert_string_equal(p.url, "http://127.0.0.1:8080/");
    config_proxy_clear(&p);
    assert_int_equal(make(&p, PROXY_HELM, "http://h/a/../b", &err), 0);
    assert_string_equal(p.url, "http://h/b/");
    /* Idempotent: a stored URL validates to itself. */
    assert_int_equal(config_proxy_validate(&p, false, &err), 0);
    assert_string_equal(p.url, "http://h/b/");
    config_proxy_clear(&p);

    expect_err(make(&p, PROXY_GENERIC, "ftp://example.com/", &err), &err, "url",
               "scheme must be http or https");
    config_proxy_clear(&p);
    expect_err(make(&p, PROXY_GENERIC, "file:///etc/", &err), &err, "url", "http or https");
    config_proxy_clear(&p);
    expect_err(make(&p, PROXY_GENERIC, "example.com/x", &err), &err, "url", "with its scheme");
    config_proxy_clear(&p);
    expect_err(make(&p, PROXY_GENERIC, "http://", &err), &err, "url", "not a valid URL");
    config_proxy_clear(&p);
    expect_err(make(&p, PROXY_GENERIC, "http://exa mple.com/", &err), &err, "url", "spaces");
    config_proxy_clear(&p);
    expect_err(make(&p, PROXY_GENERIC, "http://[::1/", &err), &err, "url", "not a valid URL");
    config_proxy_clear(&p);
    expect_err(make(&p, PROXY_GENERIC, "http://h:0/", &err), &err, "url", "port must be from 1");
    config_proxy_clear(&p);
    expect_err(make(&p, PROXY_GENERIC, "http://h:70000/", &err), &err, "url", "not a valid URL");
    config_proxy_clear(&p);
    expect_err(make(&p, PROXY_GENERIC, "http://h/?q=1", &err), &err, "url", "query or fragment");
    config_proxy_clear(&p);
    expect_err(make(&p, PROXY_GENERIC, "http://h/#x", &err), &err, "url", "query or fragment");
    config_proxy_clear(&p);
    /* A password in a URL is refused without being echoed back. */
    expect_err(make(&p, PROXY_GENERIC, "https://user:hunter2@h/", &err), &err, "url",
               "user name or password");
    assert_null(strstr(err.message, "hunter2"));
    config_proxy_clear(&p);
    expect_err(make(&p, PROXY_GENERIC, "", &err), &err, "url", "generic proxies need --url");
    config_proxy_clear(&p);

    /* Required where there is no default source. */
    expect_err(make(&p, PROXY_HELM, NULL, &err), &err, "url", "helm proxies need --url");
    config_proxy_clear(&p);
    expect_err(make(&p, PROXY_MAVEN, NULL, &err), &err, "url", "maven proxies need --url");
    config_proxy_clear(&p);
    expect_err(make(&p, PROXY_GENERIC, NULL, &err), &err, "url", "need --url");
    config_proxy_clear(&p);
    expect_err(make(&p, PROXY_ECR, NULL, &err), &err, "url", "ecr proxies need --url");
    config_proxy_clear(&p);
}

static void test_docker_source(void **state)
{
    struct proxy p;
    struct config_error err;

    /* Default: Docker Hub, its URL from the defaults table. */
    assert_int_equal(make(&p, PROXY_DOCKER, NULL, &err), 0);
    assert_int_equal(p.source, SOURCE_DOCKERHUB);
    assert_string_equal(p.url, upstream_defaults.dockerhub_registry);
    assert_string_equal(p.url, "https://registry-1.docker.io/");
    config_proxy_clear(&p);

    expect_err(make(&p, PROXY_DOCKER, "https://ghcr.io/", &err), &err, "url",
               "not used with --source dockerhub");
    config_proxy_clear(&p);

    config_proxy_init(&p, "p", PROXY_DOCKER);
    config_proxy_set_source(&p, SOURCE_CUSTOM);
    expect_err(config_proxy_validate(&p, false, &err), &err, "url", "--source custom needs --url");
    assert_int_equal(config_proxy_set_url(&p, "https://ghcr.io"), 0);
    assert_int_equal(config_proxy_validate(&p, false, &err), 0);
    assert_string_equal(p.url, "https://ghcr.io/");
    /* Back to Docker Hub: the custom URL goes with the old source. */
    config_proxy_set_source(&p, SOURCE_DOCKERHUB);
    assert_int_equal(config_proxy_validate(&p, false, &err), 0);
    assert_string_equal(p.url, "https://registry-1.docker.io/");
    config_proxy_clear(&p);

    /* --source on a non-docker type. */
    enum proxy_type others[] = {PROXY_ECR, PROXY_HELM, PROXY_MAVEN, PROXY_GENERIC};
    for (size_t i = 0; i < 4; i++) {
        config_proxy_init(&p, "p", others[i]);
        assert_int_equal(config_proxy_set_url(&p, "https://h/"), 0);
        config_proxy_set_source(&p, SOURCE_DOCKERHUB);
        expect_err(config_proxy_validate(&p, false, &err), &err, "source",
                   "only docker proxies take --source");
        config_proxy_clear(&p);
    }
}

/* ---- auth ------------------------------------------------------------------------------ */

static void test_auth_combinations(void **state)
{
    struct proxy p;
    struct config_error err = {0};

    config_proxy_init(&p, "p", PROXY_GENERIC);
    assert_int_equal(config_proxy_set_url(&p, "https://h/"), 0);

    /* anonymous: no key, no secret */
    assert_int_equal(config_proxy_validate(&p, false, &err), 0);
    expect_err(config_proxy_validate(&p, true, &err), &err, "secret_key",
               "anonymous auth takes no secret");
    assert_int_equal(config_set_string(&p.access_key, "user"), 0);
    expect_err(config_proxy_validate(&p, false, &err), &err, "access_key",
               "anonymous auth takes no access key");

    /* access-key: both parts */
    p.auth = AUTH_ACCESS_KEY;
    assert_int_equal(config_proxy_validate(&p, true, &err), 0);
    expect_err(config_proxy_validate(&p, false, &err), &err, "secret_key",
               "access-key auth needs a secret");
    assert_int_equal(config_set_string(&p.access_key, NULL), 0);
    expect_err(config_proxy_validate(&p, true, &err), &err, "access_key",
               "access-key auth needs --access-key");
    assert_int_equal(config_set_string(&p.access_key, "a:b"), 0);
    expect_err(config_proxy_validate(&p, true, &err), &err, "access_key", "must not contain ':'");
    assert_int_equal(config_set_string(&p.access_key, "a\tb"), 0);
    expect_err(config_proxy_validate(&p, true, &err), &err, "access_key", "control characters");

    /* Setting an auth that takes no key drops the key. */
    assert_int_equal(config_set_string(&p.access_key, "user"), 0);
    config_proxy_set_auth(&p, AUTH_ACCESS_KEY);
    assert_string_equal(p.access_key, "user");
    config_proxy_set_auth(&p, AUTH_ANONYMOUS);
    assert_null(p.access_key);

    /* aws-chain: ecr only */
    p.auth = AUTH_AWS_CHAIN;
    expect_err(config_proxy_validate(&p, false, &err), &err, "auth",
               "aws-chain is for ecr proxies only");
    config_proxy_clear(&p);

    config_proxy_init(&p, "p", PROXY_ECR);
    assert_int_equal(config_proxy_set_url(&p, "123456789012.dkr.ecr.us-east-1.amazonaws.com"), 0);
    p.auth = AUTH_AWS_CHAIN;
    assert_int_equal(config_proxy_validate(&p, false, &err), 0);
    expect_err(config_proxy_validate(&p, true, &err), &err, "secret_key",
               "aws-chain auth takes no secret");
    assert_int_equal(config_set_string(&p.access_key, "AKIA"), 0);
    expect_err(config_proxy_validate(&p, false, &err), &err, "access_key", "aws-chain");
    assert_int_equal(config_set_string(&p.access_key, NULL), 0);

    /* Private ECR needs credentials. */
    p.auth = AUTH_ANONYMOUS;
    expect_err(config_proxy_validate(&p, false, &err), &err, "auth",
               "private ECR registry needs credentials");
    p.auth = AUTH_ACCESS_KEY;
    assert_int_equal(config_set_string(&p.access_key, "AKIAEXAMPLE"), 0);
    assert_int_equal(config_proxy_validate(&p, true, &err), 0);
    config_proxy_clear(&p);
}

static void test_ecr_proxies(void **state)
{
    struct proxy p;
    struct config_error err;
    const char *pub_console = "https://eu-central-1.console.aws.amazon.com/ecr/repositories/"
                              "public/463796021282/demo?region=eu-central-1";

    /* Public registry form works anonymously. */
    assert_int_equal(make(&p, PROXY_ECR, "public.ecr.aws/docker/library/alpine", &err), 0);
    assert_string_equal(p.url, "https://public.ecr.aws/");
    assert_true(p.ecr.is_public);
    assert_string_equal(p.ecr.alias, "docker");
    assert_string_equal(p.ecr.repository, "library/alpine");
    /* Revalidating keeps the scope: the canonical URL alone does not carry it. */
    assert_int_equal(config_proxy_validate(&p, false, &err), 0);
    assert_string_equal(p.ecr.alias, "docker");
    assert_string_equal(p.ecr.repository, "library/alpine");
    /* A new url is parsed afresh. */
    assert_int_equal(config_proxy_set_url(&p, "public.ecr.aws/other"), 0);
    assert_int_equal(config_proxy_validate(&p, false, &err), 0);
    assert_string_equal(p.ecr.alias, "other");
    assert_null(p.ecr.repository);
    config_proxy_clear(&p);

    /* Public console URL: refused anonymously, with the form to use instead. */
    expect_err(make(&p, PROXY_ECR, pub_console, &err), &err, "url", "public.ecr.aws/<alias>");
    assert_null(p.ecr.host);
    /* ...and accepted with keys. */
    p.auth = AUTH_ACCESS_KEY;
    assert_int_equal(config_set_string(&p.access_key, "AKIAEXAMPLE"), 0);
    assert_int_equal(config_proxy_validate(&p, true, &err), 0);
    assert_true(p.ecr.is_public);
    assert_string_equal(p.ecr.account, "463796021282");
    assert_null(p.ecr.alias);
    assert_string_equal(p.ecr.repository, "demo");
    config_proxy_clear(&p);
    config_proxy_init(&p, "p", PROXY_ECR);
    assert_int_equal(config_proxy_set_url(&p, pub_console), 0);
    p.auth = AUTH_AWS_CHAIN;
    assert_int_equal(config_proxy_validate(&p, false, &err), 0);
    config_proxy_clear(&p);

    /* --aws-endpoint: ecr only, an http(s) URL. */
    config_proxy_init(&p, "p", PROXY_ECR);
    assert_int_equal(config_proxy_set_url(&p, "public.ecr.aws/a1"), 0);
    assert_int_equal(config_set_string(&p.aws_endpoint, "http://127.0.0.1:4566"), 0);
    assert_int_equal(config_proxy_validate(&p, false, &err), 0);
    assert_string_equal(p.aws_endpoint, "http://127.0.0.1:4566/");
    assert_int_equal(config_set_string(&p.aws_endpoint, "ftp://x"), 0);
    expect_err(config_proxy_validate(&p, false, &err), &err, "aws_endpoint", "http or https");
    config_proxy_clear(&p);
}

/* ---- other fields ---------------------------------------------------------------------- */

static void test_other_fields(void **state)
{
    struct proxy p;
    struct config_error err = {0};

    config_proxy_init(&p, "p", PROXY_GENERIC);
    assert_int_equal(p.metadata_ttl, CONFIG_DEFAULT_META_TTL);
    assert_int_equal(p.negative_ttl, CONFIG_DEFAULT_NEG_TTL);
    assert_int_equal(config_proxy_set_url(&p, "https://h/"), 0);

    p.metadata_ttl = 0;
    p.negative_ttl = 0;
    assert_int_equal(config_proxy_validate(&p, false, &err), 0);
    p.metadata_ttl = -1;
    expect_err(config_proxy_validate(&p, false, &err), &err, "metadata_ttl", "whole number");
    p.metadata_ttl = 5;
    p.negative_ttl = -5;
    expect_err(config_proxy_validate(&p, false, &err), &err, "negative_ttl", "whole number");
    p.negative_ttl = 5;

    assert_int_equal(config_strv_push(&p.include, "library/*"), 0);
    assert_int_equal(config_strv_push(&p.exclude, "*-rc*"), 0);
    assert_int_equal(config_proxy_validate(&p, false, &err), 0);
    assert_int_equal(config_strv_push(&p.include, ""), 0);
    expect_err(config_proxy_validate(&p, false, &err), &err, "include", "must not be empty");
    config_strv_free(p.include);
    p.include = NULL;
    assert_int_equal(config_strv_push(&p.exclude, ""), 0);
    expect_err(config_proxy_validate(&p, false, &err), &err, "exclude", "must not be empty");
    config_strv_free(p.exclude);
    p.exclude = NULL;

    assert_int_equal(config_set_string(&p.client_cert, "/c.pem"), 0);
    expect_err(config_proxy_validate(&p, false, &err), &err, "client_key", "go together");
    assert_int_equal(config_set_string(&p.client_key, "/k.pem"), 0);
    assert_int_equal(config_proxy_validate(&p, false, &err), 0);
    assert_int_equal(config_set_string(&p.client_cert, NULL), 0);
    expect_err(config_proxy_validate(&p, false, &err), &err, "client_cert", "go together");
    assert_int_equal(config_set_string(&p.client_key, NULL), 0);

    assert_int_equal(config_set_string(&p.http_proxy, "http://Proxy.Local:3128"), 0);
    assert_int_equal(config_proxy_validate(&p, false, &err), 0);
    assert_string_equal(p.http_proxy, "http://proxy.local:3128/");
    assert_int_equal(config_set_string(&p.http_proxy, "http://u:pw@proxy:3128"), 0);
    expect_err(config_proxy_validate(&p, false, &err), &err, "http_proxy", "password");
    config_proxy_clear(&p);
}

/* A failed validation leaves the proxy as it was (normalisation is all or nothing). */
static void test_validate_is_atomic(void **state)
{
    struct proxy p;
    struct config_error err = {0};
    config_proxy_init(&p, "p", PROXY_GENERIC);
    assert_int_equal(config_proxy_set_url(&p, "HTTPS://H/x"), 0);
    assert_int_equal(config_set_string(&p.http_proxy, "HTTP://P:1"), 0);
    p.negative_ttl = -1;
    expect_err(config_proxy_validate(&p, false, &err), &err, "negative_ttl", "whole number");
    assert_string_equal(p.url, "HTTPS://H/x");
    assert_string_equal(p.http_proxy, "HTTP://P:1");
    config_proxy_clear(&p);
}

static void test_secret_normalise(void **state)
{
    struct config_error err = {0};
    struct {
        const char *in;
        size_t len;
        const char *out;
    } good[] = {
        {"s3cret", 6, "s3cret"},       {"s3cret\n", 7, "s3cret"},   {"s3cret\r\n", 8, "s3cret"},
        {"s3cret\n\n", 8, "s3cret\n"}, {"s3cret\r", 7, "s3cret\r"}, {" x ", 3, " x "},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char buf[16];
        size_t len = good[i].len;
        memcpy(buf, good[i].in, len + 1);
        assert_int_equal(config_secret_normalise(buf, &len, &err), 0);
        assert_string_equal(buf, good[i].out);
        assert_int_equal(len, strlen(good[i].out));
    }
    const char *empty[] = {"", "\n", "\r\n"};
    for (size_t i = 0; i < 3; i++) {
        char buf[4];
        size_t len = strlen(empty[i]);
        memcpy(buf, empty[i], len + 1);
        expect_err(config_secret_normalise(buf, &len, &err), &err, "secret_key",
                   "must not be empty");
    }
    char nul[] = {'a', '\0', 'b', '\n', '\0'};
    size_t len = 4;
    expect_err(config_secret_normalise(nul, &len, &err), &err, "secret_key", "NUL");

    size_t big = CONFIG_SECRET_MAX + 1;
    char *buf = malloc(big + 1);
    assert_non_null(buf);
    memset(buf, 'x', big);
    buf[big] = '\0';
    len = big;
    expect_err(config_secret_normalise(buf, &len, &err), &err, "secret_key", "at most");
    /* Exactly the cap, plus a newline that is stripped: fine. */
    buf[big - 1] = '\n';
    len = big;
    assert_int_equal(config_secret_normalise(buf, &len, &err), 0);
    assert_int_equal(len, CONFIG_SECRET_MAX);
    free(buf);
}

/* ---- JSON ------------------------------------------------------------------------------ */

static const char *const json_members[] = {
    "key",
    "type",
    "source",
    "url",
    "mirrors",
    "auth",
    "access_key",
    "secret_set",
    "aws_endpoint",
    "metadata_ttl",
    "negative_ttl",
    "offline",
    "include",
    "exclude",
    "ca_file",
    "client_cert",
    "client_key",
    "http_proxy",
    "allow_host",
    "pass_credentials",
    "max_size",
    "ca_pem_set",
    "client_cert_pem_set",
    "client_key_pem_set",
    "connect_timeout",
    "metadata_timeout",
    "on_removed",
    "min_age",
    "min_age_unknown",
    "min_age_exempt",
    "allow",
    "deny",
};

static void test_proxy_json_shape(void **state)
{
    struct proxy p;
    struct config_error err = {0};
    config_proxy_init(&p, "priv", PROXY_GENERIC);
    assert_int_equal(config_proxy_set_url(&p, "https://h/"), 0);
    p.auth = AUTH_ACCESS_KEY;
    assert_int_equal(config_set_string(&p.access_key, "bob"), 0);
    assert_int_equal(config_strv_push(&p.include, "a/*"), 0);
    assert_int_equal(config_proxy_validate(&p, true, &err), 0);
    p.secret_set = true;

    json_t *j = config_proxy_to_json(&p);
    assert_non_null(j);
    for (size_t i = 0; i < sizeof(json_members) / sizeof(json_members[0]); i++)
        if (!json_object_get(j, json_members[i]))
            fail_msg("field %s missing", json_members[i]);
    assert_int_equal(json_object_size(j), sizeof(json_members) / sizeof(json_members[0]));
    assert_null(json_object_get(j, "secret_key"));
    assert_null(json_object_get(j, "ecr"));
    assert_true(json_is_true(json_object_get(j, "secret_set")));
    assert_true(json_is_null(json_object_get(j, "source")));
    assert_string_equal(json_string_value(json_object_get(j, "auth")), "access-key");
    assert_string_equal(json_string_value(json_object_get(j, "access_key")), "bob");
    assert_int_equal(json_integer_value(json_object_get(j, "metadata_ttl")), 600);
    assert_int_equal(json_array_size(json_object_get(j, "include")), 1);
    assert_int_equal(json_array_size(json_object_get(j, "exclude")), 0);
    json_decref(j);
    config_proxy_clear(&p);

    /* docker: source named; ecr: the ecr object. */
    assert_int_equal(make(&p, PROXY_DOCKER, NULL, &err), 0);
    j = config_proxy_to_json(&p);
    assert_string_equal(json_string_value(json_object_get(j, "source")), "dockerhub");
    json_decref(j);
    config_proxy_clear(&p);

    assert_int_equal(make(&p, PROXY_ECR, "public.ecr.aws/docker/library/alpine", &err), 0);
    j = config_proxy_to_json(&p);
    json_t *e = json_object_get(j, "ecr");
    assert_true(json_is_object(e));
    assert_string_equal(json_string_value(json_object_get(e, "host")), "public.ecr.aws");
    assert_string_equal(json_string_value(json_object_get(e, "alias")), "docker");
    assert_string_equal(json_string_value(json_object_get(e, "repository")), "library/alpine");
    assert_true(json_is_null(json_object_get(e, "region")));
    assert_true(json_is_null(json_object_get(e, "account")));
    assert_true(json_is_true(json_object_get(e, "public")));
    json_decref(j);
    config_proxy_clear(&p);
}

static void test_proxy_apply_json(void **state)
{
    struct proxy p = {0};
    struct config_error err = {0};
    char *secret = NULL;
    json_error_t jerr;

    json_t *o = json_loads("{\"key\":\"web\",\"type\":\"generic\",\"url\":\"http://h\","
                           "\"auth\":\"access-key\",\"access_key\":\"u\","
                           "\"secret_key\":\"pw\\n\",\"include\":[\"x\"],\"offline\":true,"
                           "\"metadata_ttl\":5,\"connect_timeout\":\"500ms\","
                           "\"metadata_timeout\":\"1s\"}",
                           0, &jerr);
    assert_non_null(o);
    assert_int_equal(config_proxy_apply_json(&p, o, true, &secret, &err), 0);
    assert_string_equal(p.key, "web");
    assert_int_equal(p.type, PROXY_GENERIC);
    assert_string_equal(secret, "pw");
    assert_true(p.offline);
    assert_int_equal(p.metadata_ttl, 5);
    assert_int_equal(p.connect_timeout, 500);
    assert_int_equal(p.metadata_timeout, 1000);
    assert_int_equal(config_proxy_validate(&p, secret != NULL, &err), 0);
    free(secret);
    json_decref(o);

    /* Update: auth anonymous drops the key; read-only members are accepted and ignored. */
    o = json_loads("{\"auth\":\"anonymous\",\"secret_set\":true,\"type\":\"generic\"}", 0, &jerr);
    assert_int_equal(config_proxy_apply_json(&p, o, false, &secret, &err), 0);
    assert_null(secret);
    assert_null(p.access_key);
    json_decref(o);

    const struct {
        const char *body, *field, *needle;
    } bad[] = {
        {"{\"type\":\"helm\"}", "type", "cannot be changed"},
        {"{\"key\":\"other\"}", "key", "cannot be changed"},
        {"{\"colour\":\"red\"}", "colour", "unknown field"},
        {"{\"metadata_ttl\":-1}", "metadata_ttl", "whole number"},
        {"{\"metadata_ttl\":\"5\"}", "metadata_ttl", "whole number"},
        {"{\"offline\":1}", "offline", "true or false"},
        {"{\"connect_timeout\":0}", "connect_timeout", "must be a duration from 100ms to 60s"},
        {"{\"connect_timeout\":\"abc\"}", "connect_timeout", "as 500ms or 5s"},
        {"{\"connect_timeout\":\"2m\"}", "connect_timeout", "(got \"2m\")"},
        {"{\"metadata_timeout\":\"5h\"}", "metadata_timeout", "to 300s"},
        {"{\"include\":[1]}", "include", "array of strings"},
        {"{\"url\":5}", "url", "string or null"},
        {"{\"secret_key\":\"\\n\"}", "secret_key", "must not be empty"},
        {"{\"auth\":\"none\"}", "auth", "must be one of"},
        {"{\"pass_credentials\":1}", "pass_credentials", "true or false"},
        {"{\"max_size\":0}", "max_size", "size in bytes from 1"},
        {"{\"max_size\":\"1X\"}", "max_size", "size in bytes from 1"},
        {"{\"allow_host\":\"h\"}", "allow_host", "array of strings"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        o = json_loads(bad[i].body, 0, &jerr);
        assert_non_null(o);
        expect_err(config_proxy_apply_json(&p, o, false, &secret, &err), &err, bad[i].field,
                   bad[i].needle);
        assert_null(secret);
        json_decref(o);
    }
    config_proxy_clear(&p);

    o = json_loads("{\"type\":\"generic\"}", 0, &jerr);
    expect_err(config_proxy_apply_json(&p, o, true, &secret, &err), &err, "key", "must be given");
    json_decref(o);
    o = json_loads("{\"key\":\"x\",\"type\":\"npm\"}", 0, &jerr);
    assert_int_equal(config_proxy_apply_json(&p, o, true, &secret, &err), 0);
    assert_int_equal(p.type, PROXY_NPM);
    expect_err(config_proxy_validate(&p, false, &err), &err, "url", "npm proxies need --url");
    json_decref(o);
    config_proxy_clear(&p);
}

/* The egress fields: JSON in and out, defaults, and allow_host's syntax (normalised to lower case).
 */
static void test_proxy_egress_fields(void **state)
{
    struct proxy p;
    struct config_error err = {0};
    char *secret = NULL;
    json_error_t jerr;
    (void)state;
    config_proxy_init(&p, "h", PROXY_HELM);
    assert_int_equal(p.max_size, CONFIG_DEFAULT_MAX_SIZE);
    assert_false(p.pass_credentials);
    json_t *o = json_loads("{\"url\":\"http://h\",\"allow_host\":[\"Mirror.LAN\",\"*.corp\","
                           "\"127.0.0.1\",\"::1\"],\"pass_credentials\":true,\"max_size\":1024}",
                           0, &jerr);
    assert_non_null(o);
    assert_int_equal(config_proxy_apply_json(&p, o, false, &secret, &err), 0);
    json_decref(o);
    assert_int_equal(config_proxy_validate(&p, false, &err), 0);
    assert_string_equal(p.allow_host[0], "mirror.lan");
    assert_string_equal(p.allow_host[1], "*.corp");
    assert_true(p.pass_credentials);
    assert_int_equal(p.max_size, 1024);
    json_t *j = config_proxy_to_json(&p);
    assert_int_equal(json_array_size(json_object_get(j, "allow_host")), 4);
    assert_true(json_is_true(json_object_get(j, "pass_credentials")));
    assert_int_equal(json_integer_value(json_object_get(j, "max_size")), 1024);
    json_decref(j);
    struct proxy c;
    assert_int_equal(config_proxy_copy(&c, &p), 0);
    assert_string_equal(c.allow_host[3], "::1");
    config_proxy_clear(&c);
    const char *bad[] = {"", "*.", "h/x", "a b", "http://h", "*"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        config_strv_free(p.allow_host);
        p.allow_host = NULL;
        assert_int_equal(config_strv_push(&p.allow_host, bad[i]), 0);
        expect_err(config_proxy_validate(&p, false, &err), &err, "allow_host", "not a host name");
    }
    config_proxy_clear(&p);
}

/* mirrors: the URLs after url, normalised as url is, in order; JSON in and out; its refusals. */
static void test_proxy_mirrors(void **state)
{
    struct proxy p;
    struct config_error err = {0};
    char *secret = NULL;
    (void)state;
    config_proxy_init(&p, "g", PROXY_GENERIC);
    json_t *o = json_pack("{s:s, s:[s, s]}", "url", "http://127.0.0.2:81/files", "mirrors",
                          "HTTP://127.0.0.3:80/files", "https://origin.example:443/a/b");
    assert_int_equal(config_proxy_apply_json(&p, o, false, &secret, &err), 0);
    json_decref(o);
    assert_int_equal(config_proxy_validate(&p, false, &err), 0);
    assert_string_equal(p.url, "http://127.0.0.2:81/files/");
    assert_int_equal(config_strv_len(p.mirrors), 2);
    assert_string_equal(p.mirrors[0], "http://127.0.0.3/files/");
    assert_string_equal(p.mirrors[1], "https://origin.example/a/b/");
    json_t *j = config_proxy_to_json(&p);
    json_t *want = json_pack("[s, s]", "http://127.0.0.3/files/", "https://origin.example/a/b/");
    assert_true(json_equal(json_object_get(j, "mirrors"), want));
    assert_string_equal(json_string_value(json_object_get(j, "url")),
                        "http://127.0.0.2:81/files/");
    json_decref(want);
    /* the JSON read back gives the same proxy */
    struct proxy q;
    config_proxy_init(&q, "g", PROXY_GENERIC);
    assert_int_equal(config_proxy_apply_json(&q, j, false, &secret, &err), 0);
    assert_int_equal(config_proxy_validate(&q, false, &err), 0);
    assert_string_equal(q.mirrors[1], "https://origin.example/a/b/");
    config_proxy_clear(&q);
    json_decref(j);
    struct proxy c;
    assert_int_equal(config_proxy_copy(&c, &p), 0);
    assert_string_equal(c.mirrors[0], "http://127.0.0.3/files/");
    config_proxy_clear(&c);

    static const struct {
        const char *mirror, *needle;
    } bad[] = {
        {"ftp://m/", "http"},
        {"http://u:pw@m/", "user name or password"},
        {"http://127.0.0.2:81/files/", "\"http://127.0.0.2:81/files/\" is listed twice"},
        {"http://m/?q=1", "query"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        config_strv_free(p.mirrors);
        p.mirrors = NULL;
        assert_int_equal(config_strv_push(&p.mirrors, bad[i].mirror), 0);
        expect_err(config_proxy_validate(&p, false, &err), &err, "mirrors", bad[i].needle);
    }
    config_strv_free(p.mirrors);
    p.mirrors = NULL;
    assert_int_equal(config_strv_push(&p.mirrors, "http://m/"), 0);
    assert_int_equal(config_strv_push(&p.mirrors, "http://M:80"), 0);
    expect_err(config_proxy_validate(&p, false, &err), &err, "mirrors",
               "\"http://m/\" is listed twice");
    for (int i = 0; i < CONFIG_MIRRORS_MAX; i++) {
        char u[32];
        snprintf(u, sizeof(u), "http://m%d/", i);
        assert_int_equal(config_strv_push(&p.mirrors, u), 0);
    }
    expect_err(config_proxy_validate(&p, false, &err), &err, "mirrors", "at most 7 entries");
    o = json_pack("{s:s}", "mirrors", "http://m/");
    expect_err(config_proxy_apply_json(&p, o, false, &secret, &err), &err, "mirrors",
               "array of strings");
    json_decref(o);
    config_proxy_clear(&p);

    /* Docker Hub has one URL; ECR one registry: neither takes mirrors. */
    config_proxy_init(&p, "d", PROXY_DOCKER);
    assert_int_equal(config_strv_push(&p.mirrors, "http://parent/hub"), 0);
    expect_err(config_proxy_validate(&p, false, &err), &err, "mirrors", "--source custom");
    p.source = SOURCE_CUSTOM;
    assert_int_equal(config_proxy_set_url(&p, "http://127.0.0.2:5000/hub"), 0);
    assert_int_equal(config_proxy_validate(&p, false, &err), 0);
    assert_string_equal(p.mirrors[0], "http://parent/hub/");
    config_proxy_set_source(&p, SOURCE_DOCKERHUB); /* a new source drops both URLs */
    assert_null(p.url);
    assert_null(p.mirrors);
    config_proxy_clear(&p);
    config_proxy_init(&p, "e", PROXY_ECR);
    assert_int_equal(config_proxy_set_url(&p, "public.ecr.aws/docker/library/alpine"), 0);
    assert_int_equal(config_strv_push(&p.mirrors, "http://parent/hub"), 0);
    expect_err(config_proxy_validate(&p, false, &err), &err, "mirrors", "docker proxy");
    config_proxy_clear(&p);
}

static void test_copy(void **state)
{
    struct proxy p, c;
    struct config_error err = {0};
    assert_int_equal(make(&p, PROXY_ECR, "public.ecr.aws/docker/library/alpine", &err), 0);
    assert_int_equal(config_strv_push(&p.include, "a"), 0);
    assert_int_equal(config_proxy_copy(&c, &p), 0);
    config_proxy_clear(&p);
    assert_string_equal(c.url, "https://public.ecr.aws/");
    assert_string_equal(c.include[0], "a");
    assert_string_equal(c.ecr.repository, "library/alpine");
    config_proxy_clear(&c);
}

/* ---- the field table ------------------------------------------------------------------- */

/* A value of row f's kind that is not its default, as the API would send it. */
static json_t *sample_value(const struct proxy_field *f)
{
    switch (f->kind) {
    case FIELD_STRING:
        return json_string("v-1");
    case FIELD_PATH:
        return json_string("/etc/hostname");
    case FIELD_URL:
        return json_string("https://h.example/x/");
    case FIELD_ENDPOINT:
        return json_string("http://e.example:8080/p");
    case FIELD_ENUM:
        return json_string(f->names[f->nnames - 1]);
    case FIELD_BOOL:
        return json_boolean(!f->def);
    case FIELD_SECONDS:
        return json_integer(42);
    case FIELD_MILLIS:
        return json_integer(1500);
    case FIELD_SIZE:
        return json_integer(4096);
    case FIELD_LIST:
        return json_pack("[s, s]", "a/*", "b");
    case FIELD_SECRET:
        return json_string("s3cret\n");
    case FIELD_PEM:
        return json_string("-----BEGIN CERTIFICATE-----\n");
    }
    return NULL;
}

/* Every row: JSON -> struct -> JSON gives the value back (a secret as NAME_set only). */
static void test_fields_json_round_trip(void **state)
{
    for (size_t i = 0; i < proxy_fields_count; i++) {
        const struct proxy_field *f = &proxy_fields[i];
        struct proxy p;
        struct config_error err = {0};
        char *secret = NULL;
        enum proxy_type t = 0;
        while (!proxy_field_applies(f, t))
            t++;
        if (f->flags & FIELD_IDENTITY)
            continue;
        config_proxy_init(&p, "p", t);
        json_t *v = sample_value(f), *body = json_object();
        json_object_set(body, f->name, v);
        if (config_proxy_apply_json(&p, body, false, &secret, &err) != 0)
            fail_msg("%s: %s: %s", f->name, err.field, err.message);
        if (f->flags & FIELD_SECRET_FILE) {
            assert_string_equal(secret, "s3cret");
            p.secret_set = true;
        }
        json_t *out = config_proxy_to_json(&p);
        if (f->kind == FIELD_SECRET || f->kind == FIELD_PEM) {
            char buf[64];
            const char *shown = proxy_field_out_name(f, buf, sizeof(buf));
            assert_true(json_is_true(json_object_get(out, shown)));
            assert_null(json_object_get(out, f->name)); /* write-only */
        } else if (!json_equal(json_object_get(out, f->name), v)) {
            fail_msg("%s: put %s, got %s", f->name, json_dumps(v, JSON_ENCODE_ANY),
                     json_dumps(json_object_get(out, f->name), JSON_ENCODE_ANY));
        }
        /* The object carries every row: no field is spelled out anywhere else. */
        assert_int_equal(json_object_size(out), proxy_fields_count + (t == PROXY_ECR));
        free(secret);
        json_decref(out);
        json_decref(body);
        json_decref(v);
        config_proxy_clear(&p);
    }
}

/* A type error names the field and the type it expects, for every kind. */
static void test_fields_type_errors(void **state)
{
    static const struct {
        enum field_kind kind;
        const char *needle;
    } want[] = {
        {FIELD_STRING, "must be a string or null"},
        {FIELD_PATH, "must be a string or null"},
        {FIELD_URL, "must be a string or null"},
        {FIELD_ENDPOINT, "must be a string or null"},
        {FIELD_ENUM, "must be one of"},
        {FIELD_BOOL, "must be true or false"},
        {FIELD_SECONDS, "whole number of seconds"},
        {FIELD_LIST, "array of strings"},
        {FIELD_SECRET, "must be a string"},
        {FIELD_PEM, "must be a string"},
    };
    for (size_t i = 0; i < proxy_fields_count; i++) {
        const struct proxy_field *f = &proxy_fields[i];
        struct proxy p;
        struct config_error err = {0};
        char *secret = NULL;
        if (f->flags & FIELD_IDENTITY)
            continue;
        config_proxy_init(&p, "p", PROXY_DOCKER);
        json_t *body = json_pack("{s:{}}", f->name);
        for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++)
            if (want[k].kind == f->kind)
                expect_err(config_proxy_apply_json(&p, body, false, &secret, &err), &err, f->name,
                           want[k].needle);
        json_decref(body);
        config_proxy_clear(&p);
    }
}

/* The kinds the next fields need exist and behave: a size with suffixes, a write-only text. */
static void test_fields_kinds(void **state)
{
    long long n;
    assert_int_equal(proxy_field_parse_size("10G", &n), 0);
    assert_int_equal(n, 10LL << 30);
    assert_int_equal(proxy_field_parse_size("512KiB", &n), 0);
    assert_int_equal(n, 512LL << 10);
    assert_int_equal(proxy_field_parse_size("7", &n), 0);
    assert_int_equal(n, 7);
    assert_int_equal(proxy_field_parse_size("1X", &n), -EINVAL);
    assert_int_equal(proxy_field_parse_size("-1", &n), -EINVAL);
    assert_int_equal(proxy_field_parse_size("99999999999T", &n), -EINVAL);
    /* A deadline: ms, s or m; a bare number is milliseconds. */
    assert_int_equal(proxy_field_parse_millis("500ms", &n), 0);
    assert_int_equal(n, 500);
    assert_int_equal(proxy_field_parse_millis("5s", &n), 0);
    assert_int_equal(n, 5000);
    assert_int_equal(proxy_field_parse_millis("1m", &n), 0);
    assert_int_equal(n, 60000);
    assert_int_equal(proxy_field_parse_millis("750", &n), 0);
    assert_int_equal(n, 750);
    assert_int_equal(proxy_field_parse_millis("abc", &n), -EINVAL);
    assert_int_equal(proxy_field_parse_millis("5h", &n), -EINVAL);
    assert_int_equal(proxy_field_parse_millis("-1s", &n), -EINVAL);
    assert_int_equal(proxy_field_parse_millis("99999999999999999999s", &n), -EINVAL);

    /* Dummy rows over fields of the right C type (int64_t is long on this ABI). */
    _Static_assert(sizeof(long) == sizeof(int64_t), "the size row below borrows a long");
    const struct proxy_field size = {.name = "max_size",
                                     .kind = FIELD_SIZE,
                                     .types = FIELD_TYPES_ALL,
                                     .offset = offsetof(struct proxy, metadata_ttl),
                                     .def = 10LL << 30,
                                     .max = 1LL << 50};
    const struct proxy_field pem = {.name = "client_key_pem",
                                    .kind = FIELD_SECRET,
                                    .types = FIELD_TYPES_ALL,
                                    .offset = offsetof(struct proxy, access_key),
                                    .max = 65536};
    struct proxy p;
    struct config_error err = {0};
    char *secret = NULL, *norm = NULL;
    config_proxy_init(&p, "p", PROXY_GENERIC);
    json_t *v = json_string("2M");
    assert_int_equal(proxy_field_set_json(&size, &p, v, &secret, &err), 0);
    json_decref(v);
    assert_int_equal(p.metadata_ttl, 2L << 20);
    v = json_string("lots");
    expect_err(proxy_field_set_json(&size, &p, v, &secret, &err), &err, "max_size",
               "must be a size in bytes");
    json_decref(v);
    v = json_string("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    assert_int_equal(proxy_field_set_json(&pem, &p, v, &secret, &err), 0);
    json_decref(v);
    assert_null(secret); /* kept in the struct, not in a secret file */
    assert_non_null(strstr(p.access_key, "BEGIN PRIVATE KEY"));
    assert_true(proxy_field_is_set(&pem, &p));
    json_t *out = proxy_field_get_json(&pem, &p);
    assert_true(json_is_true(out)); /* read back as NAME_set: true, never the text */
    json_decref(out);
    assert_int_equal(proxy_field_check(&pem, &p, &norm, &err), 0);
    assert_null(norm);
    v = json_string("");
    expect_err(proxy_field_set_json(&pem, &p, v, &secret, &err), &err, "client_key_pem",
               "must not be empty");
    json_decref(v);
    config_proxy_clear(&p);
    assert_string_equal(proxy_field_metavar(&size), "SIZE");
    assert_non_null(proxy_field_find_set("secret_set"));
    char buf[64];
    assert_string_equal(proxy_field_out_name(&pem, buf, sizeof(buf)), "client_key_pem_set");
}

/* ---- registries ------------------------------------------------------------------------ */

static void test_registry_rules(void **state)
{
    struct config_error err = {0};
    char *ups[] = {"hub", "ecr1", NULL};
    char *twice[] = {"hub", "ecr1", "hub", NULL};
    char *badkey[] = {"Hub", NULL};
    struct registry r = {.name = "all", .type = PROXY_DOCKER, .upstreams = ups};

    assert_int_equal(config_registry_validate(&r, &err), 0);
    r.upstreams = NULL;
    assert_int_equal(config_registry_validate(&r, &err), 0);
    r.upstreams = twice;
    expect_err(config_registry_validate(&r, &err), &err, "upstreams", "\"hub\" is listed twice");
    r.upstreams = badkey;
    expect_err(config_registry_validate(&r, &err), &err, "upstreams", "lowercase");
    r.upstreams = ups;
    strcpy(r.name, "api");
    expect_err(config_registry_validate(&r, &err), &err, "name", "reserved");
    strcpy(r.name, "9x");
    expect_err(config_registry_validate(&r, &err), &err, "name", "start with a letter");
    strcpy(r.name, "ok");
    r.type = PROXY_NPM;
    assert_int_equal(config_registry_validate(&r, &err), 0);
    r.type = PROXY_PYPI;
    assert_int_equal(config_registry_validate(&r, &err), 0);
    r.type = PROXY_ECR;
    expect_err(config_registry_validate(&r, &err), &err, "type", "no ecr registries");

    assert_true(config_registry_accepts(PROXY_DOCKER, PROXY_DOCKER));
    assert_true(config_registry_accepts(PROXY_DOCKER, PROXY_ECR));
    assert_false(config_registry_accepts(PROXY_DOCKER, PROXY_HELM));
    assert_true(config_registry_accepts(PROXY_HELM, PROXY_HELM));
    assert_false(config_registry_accepts(PROXY_HELM, PROXY_DOCKER));
    assert_true(config_registry_accepts(PROXY_MAVEN, PROXY_MAVEN));
    assert_false(config_registry_accepts(PROXY_MAVEN, PROXY_GENERIC));
    assert_true(config_registry_accepts(PROXY_GENERIC, PROXY_GENERIC));
    assert_true(config_registry_accepts(PROXY_NPM, PROXY_NPM));
    assert_true(config_registry_accepts(PROXY_PYPI, PROXY_PYPI));
    assert_false(config_registry_accepts(PROXY_ECR, PROXY_ECR));

    r.type = PROXY_DOCKER;
    json_t *j = config_registry_to_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "ok");
    assert_string_equal(json_string_value(json_object_get(j, "type")), "docker");
    json_t *u = json_object_get(j, "upstreams");
    assert_int_equal(json_array_size(u), 2);
    assert_string_equal(json_string_value(json_array_get(u, 0)), "hub");
    assert_string_equal(json_string_value(json_array_get(u, 1)), "ecr1");
    /* the package rules a docker registry takes (docs/policy.md), none set */
    assert_int_equal(json_array_size(json_object_get(j, "allow")), 0);
    assert_int_equal(json_array_size(json_object_get(j, "deny")), 0);
    assert_null(json_object_get(j, "min_age"));
    assert_int_equal(json_object_size(j), 5);
    json_decref(j);
}

/* A registry's package policy (docs/policy.md): the proxies' rows, checked for its type. */
static void test_registry_policy(void **state)
{
    (void)state;
    struct config_error err = {0};
    struct registry r = {.name = "safe", .type = PROXY_NPM};
    json_t *in = json_pack("{s:s, s:[s]}", "min_age", "7d", "deny", "evil@1");
    assert_int_equal(config_registry_policy_apply(&r, in, &err), 0);
    assert_int_equal(config_registry_validate(&r, &err), 0);
    assert_non_null(r.policy);
    assert_true(policy_cooldown_applies(r.policy, "left-pad"));
    json_t *j = config_registry_to_json(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "min_age")), 604800);
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "deny"), 0)), "evil@1");
    json_decref(j);
    json_decref(in);
    /* a rule in the wrong syntax, and a cooldown on a type without publish times */
    in = json_pack("{s:[s]}", "deny", "x@>>1");
    assert_int_equal(config_registry_policy_apply(&r, in, &err), 0);
    expect_err(config_registry_validate(&r, &err), &err, "deny", "is not NAME[@RANGE]");
    json_decref(in);
    config_registry_clear(&r);
    struct registry d = {.name = "hub", .type = PROXY_DOCKER};
    in = json_pack("{s:i}", "min_age", 60);
    assert_int_equal(config_registry_policy_apply(&d, in, &err), 0);
    expect_err(config_registry_validate(&d, &err), &err, "min_age", "only npm and pypi");
    json_decref(in);
    config_registry_clear(&d);
}

static void test_quote_and_defaults(void **state)
{
    char q[CONFIG_QUOTE_MAX], buf[128];
    char longs[300];
    assert_string_equal(config_quote(q, sizeof(q), "a\"b\\c\r\n\xff"),
                        "\"a\\\"b\\\\c\\x0d\\x0a\\xff\"");
    memset(longs, 'x', sizeof(longs) - 1);
    longs[sizeof(longs) - 1] = '\0';
    config_quote(q, sizeof(q), longs);
    assert_true(strlen(q) < sizeof(q));
    assert_non_null(strstr(q, "...\""));

    assert_int_equal(
        defaults_expand(upstream_defaults.ecr_api, "eu-west-1", NULL, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "https://api.ecr.eu-west-1.amazonaws.com");
    assert_int_equal(defaults_expand(upstream_defaults.ecr_private_host, "us-east-1",
                                     "123456789012", buf, sizeof(buf)),
                     0);
    assert_string_equal(buf, "123456789012.dkr.ecr.us-east-1.amazonaws.com");
    assert_int_equal(defaults_expand(upstream_defaults.ecr_api, NULL, NULL, buf, sizeof(buf)),
                     -EINVAL);
    assert_int_equal(defaults_expand(upstream_defaults.ecr_api, "r", NULL, buf, 8), -ENAMETOOLONG);

    char *region = NULL, *account = NULL;
    assert_int_equal(defaults_match(upstream_defaults.ecr_private_host,
                                    "123456789012.dkr.ecr.ap-south-1.amazonaws.com", &region,
                                    &account),
                     0);
    assert_string_equal(region, "ap-south-1");
    assert_string_equal(account, "123456789012");
    free(region);
    free(account);
    assert_int_equal(defaults_match(upstream_defaults.ecr_private_host, "example.com", NULL, NULL),
                     -ENOENT);
    assert_int_equal(defaults_match(upstream_defaults.ecr_private_host,
                                    ".dkr.ecr.us-east-1.amazonaws.com", NULL, NULL),
                     -ENOENT);
    assert_string_equal(upstream_defaults.dockerhub_token, "https://auth.docker.io/token");
    assert_string_equal(upstream_defaults.ecr_public_api,
                        "https://api.ecr-public.us-east-1.amazonaws.com");
    assert_string_equal(upstream_defaults.imds_endpoint, "http://169.254.169.254");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_rule),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_url_rules),
        cmocka_unit_test(test_docker_source),
        cmocka_unit_test(test_auth_combinations),
        cmocka_unit_test(test_ecr_proxies),
        cmocka_unit_test(test_other_fields),
        cmocka_unit_test(test_validate_is_atomic),
        cmocka_unit_test(test_secret_normalise),
        cmocka_unit_test(test_proxy_json_shape),
        cmocka_unit_test(test_proxy_apply_json),
        cmocka_unit_test(test_copy),
        cmocka_unit_test(test_registry_rules),
        cmocka_unit_test(test_registry_policy),
        cmocka_unit_test(test_quote_and_defaults),
        cmocka_unit_test(test_fields_json_round_trip),
        cmocka_unit_test(test_fields_type_errors),
        cmocka_unit_test(test_fields_kinds),
        cmocka_unit_test(test_proxy_egress_fields),
        cmocka_unit_test(test_proxy_mirrors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

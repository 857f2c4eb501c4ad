/*
 * test_ecr_auth: ECR tokens, from the parsers to a real signed exchange.
 *
 * Pure parts: GetAuthorizationToken answers (private array and public
 * object shapes, fractional expiresAt, missing fields, wrong types, bad
 * base64, garbage and huge JSON), AWS error answers and their errno, the
 * refresh margin min(5 min, 10 % of the lifetime), DescribeRegistries alias
 * choice, and the endpoint order (--aws-endpoint, AWS_ENDPOINT_URL_ECR,
 * AWS_ENDPOINT_URL, the defaults table).
 *
 * End to end: tests/integration/ecr/fake_ecr.py, started here through
 * /usr/bin/python3 on 127.0.0.1, verifies every signature with its own
 * secret. With the right secret a token arrives and is cached; an injected
 * clock moves into the refresh margin and a second token request is counted;
 * a failed refresh keeps the old token while it is valid; a wrong secret or
 * access key gives -EACCES at once, with AWS's message kept; concurrent
 * callers share one request; ECR Public gives a Bearer token and finds its
 * alias through paged DescribeRegistries; aws-chain reaches the fake's IMDSv2
 * emulation. The server's request counts (GET /_counts) are asserted, so no
 * test can pass by talking to anything else.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "upstreamfs/config.h"
#include "upstreamfs/defaults.h"
#include "upstreamfs/ecr_auth.h"
#include "upstreamfs/fetch.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PYTHON   "/usr/bin/python3"
#define AKID     "AKIDEXAMPLE"
#define SECRET   "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define PASSWORD "s3cr3t-registry-password"
#define ACCOUNT  "123456789012"

/* ---- helpers ---- */

static const char *const aws_vars[] = {"AWS_ACCESS_KEY_ID",
                                       "AWS_SECRET_ACCESS_KEY",
                                       "AWS_SESSION_TOKEN",
                                       "AWS_SECURITY_TOKEN",
                                       "AWS_PROFILE",
                                       "AWS_SHARED_CREDENTIALS_FILE",
                                       "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                                       "AWS_ENDPOINT_URL",
                                       "AWS_ENDPOINT_URL_ECR",
                                       "AWS_ENDPOINT_URL_ECR_PUBLIC",
                                       "AWS_CA_BUNDLE",
                                       NULL};

static int clean_env(void **state)
{
    (void)state;
    for (const char *const *v = aws_vars; *v; v++)
        unsetenv(*v);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws/credentials", 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    return 0;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A wall clock that a test can move forward. */
static int64_t clock_offset_ms;
static int64_t test_clock(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + clock_offset_ms;
}

struct fake {
    pid_t pid;
    int port;
    char url[64];
};

/* Starts fake_ecr.py with args (NULL-terminated); false when python3 is missing. */
static bool fake_start(struct fake *f, const char *const *args)
{
    const char *argv[32] = {PYTHON, FAKE_ECR_PY};
    int n = 2, p[2];
    char line[64] = "";
    size_t got = 0;
    if (access(PYTHON, X_OK) != 0)
        return false;
    for (; args && *args && n < 30; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    assert_int_equal(pipe(p), 0);
    f->pid = fork();
    assert_true(f->pid >= 0);
    if (f->pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execv(PYTHON, (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    int64_t deadline = mono_ms() + 10000;
    while (!strchr(line, '\n') && got + 1 < sizeof(line)) {
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        int64_t left = deadline - mono_ms();
        assert_true(left > 0);
        if (poll(&pfd, 1, (int)left) <= 0)
            continue;
        ssize_t r = read(p[0], line + got, sizeof(line) - 1 - got);
        assert_true(r > 0);
        got += (size_t)r;
        line[got] = '\0';
    }
    close(p[0]);
    f->port = atoi(line);
    assert_true(f->port > 0);
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d", f->port);
    return true;
}

static void fake_stop(struct fake *f)
{
    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        waitpid(f->pid, NULL, 0);
    }
    f->pid = 0;
}

/* One of the fake's request counters. */
static long fake_count(const struct fake *f, const char *name)
{
    struct fetch_response r;
    char url[128];
    long v = -1;
    snprintf(url, sizeof(url), "%s/_counts", f->url);
    assert_int_equal(fetch_get(url, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    json_t *doc = json_loads(r.body, 0, NULL);
    assert_non_null(doc);
    json_t *c = json_object_get(doc, name);
    v = c ? (long)json_integer_value(c) : 0;
    json_decref(doc);
    fetch_response_clear(&r);
    return v;
}

static void fake_set(const struct fake *f, const char *query)
{
    struct fetch_response r;
    char url[160];
    snprintf(url, sizeof(url), "%s/_set?%s", f->url, query);
    assert_int_equal(fetch_get(url, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    fetch_response_clear(&r);
}

/* An ecr proxy config; the private host is expanded from the defaults table. */
static void make_proxy(struct proxy *p, bool is_public, enum proxy_auth auth, const char *endpoint)
{
    char host[256];
    memset(p, 0, sizeof(*p));
    config_proxy_init(p, "ecrtest", PROXY_ECR);
    p->auth = auth;
    p->ecr.is_public = is_public;
    p->ecr.account = strdup(ACCOUNT);
    if (is_public) {
        p->ecr.host = strdup(upstream_defaults.ecr_public_host);
    } else {
        assert_int_equal(defaults_expand(upstream_defaults.ecr_private_host, "us-east-1", ACCOUNT,
                                         host, sizeof(host)),
                         0);
        p->ecr.host = strdup(host);
        p->ecr.region = strdup("us-east-1");
    }
    assert_true(asprintf(&p->url, "https://%s/", p->ecr.host) > 0);
    if (auth == AUTH_ACCESS_KEY)
        p->access_key = strdup(AKID);
    if (endpoint)
        p->aws_endpoint = strdup(endpoint);
}

static char *b64(const char *s)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(s), o = 0;
    char *out = malloc(n / 3 * 4 + 8);
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)s[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)s[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)s[i + 2];
        out[o++] = tbl[v >> 18 & 63];
        out[o++] = tbl[v >> 12 & 63];
        out[o++] = i + 1 < n ? tbl[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

/* ---- parsers ---- */

static void test_token_parse_private(void **state)
{
    (void)state;
    struct ecr_token t;
    const char *body = "{\"authorizationData\":[{\"authorizationToken\":"
                       "\"QVdTOjEyMzQ1Njc4OTAxMi1hdXRoLXRva2Vu\",\"expiresAt\":1764225600.5,"
                       "\"proxyEndpoint\":\"https://x.example\"}]}";
    assert_int_equal(ecr_token_parse(body, strlen(body), false, &t), 0);
    assert_string_equal(t.authorization_token, "QVdTOjEyMzQ1Njc4OTAxMi1hdXRoLXRva2Vu");
    assert_string_equal(t.username, "AWS");
    assert_string_equal(t.password, "123456789012-auth-token");
    assert_int_equal(t.expires_at_ms, 1764225600500LL);
    assert_string_equal(t.proxy_endpoint, "https://x.example");
    ecr_token_clear(&t);
    /* An integer expiresAt, no proxyEndpoint, and padding. */
    const char *b2 = "{\"authorizationData\":[{\"authorizationToken\":\"QVdTOnA=\","
                     "\"expiresAt\":1764225600}]}";
    assert_int_equal(ecr_token_parse(b2, strlen(b2), false, &t), 0);
    assert_string_equal(t.password, "p");
    assert_int_equal(t.expires_at_ms, 1764225600000LL);
    assert_null(t.proxy_endpoint);
    ecr_token_clear(&t);
}

static void test_token_parse_public(void **state)
{
    (void)state;
    struct ecr_token t;
    const char *body = "{\"authorizationData\":{\"authorizationToken\":\"QVdTOnB3\","
                       "\"expiresAt\":1764225600.25}}";
    assert_int_equal(ecr_token_parse(body, strlen(body), true, &t), 0);
    assert_string_equal(t.password, "pw");
    assert_int_equal(t.expires_at_ms, 1764225600250LL);
    ecr_token_clear(&t);
    /* Each shape only where it belongs. */
    assert_int_equal(ecr_token_parse(body, strlen(body), false, &t), -EIO);
    const char *arr = "{\"authorizationData\":[{\"authorizationToken\":\"QVdTOnB3\","
                      "\"expiresAt\":1}]}";
    assert_int_equal(ecr_token_parse(arr, strlen(arr), true, &t), -EIO);
}

static void test_token_parse_bad(void **state)
{
    (void)state;
    struct ecr_token t;
#define AD(x) "{\"authorizationData\":[" x "]}"
    static const char *const bad[] = {
        "",
        "null",
        "garbage",
        "{\"authorizationData\":[]}",
        "{\"authorizationData\":null}",
        "{\"authorizationData\":\"QVdTOnB3\"}",
        "{}",
        AD("{}"),
        AD("7"),
        AD("{\"expiresAt\":1}"),
        AD("{\"authorizationToken\":\"QVdTOnB3\"}"),
        AD("{\"authorizationToken\":\"QVdTOnB3\",\"expiresAt\":\"1764225600\"}"),
        AD("{\"authorizationToken\":5,\"expiresAt\":1}"),
        AD("{\"authorizationToken\":\"QVdTOnB3\",\"expiresAt\":-1}"),
        AD("{\"authorizationToken\":\"QVdTOnB3\",\"expiresAt\":0}"),
        AD("{\"authorizationToken\":\"QVdTOnB3\",\"expiresAt\":1e300}"),
        AD("{\"authorizationToken\":\"QVdTOnB3\",\"expiresAt\":1,\"proxyEndpoint\":5}"),
        AD("{\"authorizationToken\":\"QVdTOnB3\",\"expiresAt\":1,"
           "\"proxyEndpoint\":\"ftp://x\"}"),
        AD("{\"authorizationToken\":\"QVdTOnB3\",\"expiresAt\":1,"
           "\"proxyEndpoint\":\"https://x y\"}"),
        AD("{\"authorizationToken\":\"\",\"expiresAt\":1}"),
        AD("{\"authorizationToken\":\"QVdTOnB\",\"expiresAt\":1}"),      /* not a multiple of 4 */
        AD("{\"authorizationToken\":\"QVdT OnB3\",\"expiresAt\":1}"),    /* whitespace */
        AD("{\"authorizationToken\":\"QV=TOnB3\",\"expiresAt\":1}"),     /* '=' inside */
        AD("{\"authorizationToken\":\"QVdT\",\"expiresAt\":1}"),         /* "AWS": no ':' */
        AD("{\"authorizationToken\":\"OnB3\",\"expiresAt\":1}"),         /* ":pw": no user */
        AD("{\"authorizationToken\":\"QVdTOnAKcQ==\",\"expiresAt\":1}"), /* LF in password */
        AD("{\"authorizationToken\":\"QVdTOnAAcQ==\",\"expiresAt\":1}"), /* NUL in password */
        AD("{\"authorizationToken\":\"QVdTOnB3\",\"authorizationToken\":\"QVdTOnB3\","
           "\"expiresAt\":1}"),
    };
#undef AD
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (ecr_token_parse(bad[i], strlen(bad[i]), false, &t) != -EIO)
            fail_msg("accepted: %s", bad[i]);
        assert_null(t.authorization_token);
        assert_null(t.password);
    }
    assert_int_equal(ecr_token_parse(NULL, 0, false, &t), -EIO);
}

/* Deep nesting, a huge string and random bytes: an error, never a crash. */
static void test_token_parse_huge(void **state)
{
    (void)state;
    struct ecr_token t;
    size_t n = 200000;
    char *deep = malloc(2 * n + 1);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    deep[2 * n] = '\0';
    assert_int_equal(ecr_token_parse(deep, 2 * n, false, &t), -EIO);
    free(deep);
    size_t big = ECR_AUTH_TOKEN_MAX + 16;
    char *body = malloc(big + 128);
    int k = sprintf(body, "{\"authorizationData\":[{\"expiresAt\":1,\"authorizationToken\":\"");
    memset(body + k, 'A', big);
    strcpy(body + k + big, "\"}]}");
    assert_int_equal(ecr_token_parse(body, strlen(body), false, &t), -EIO);
    free(body);
    char buf[256];
    srand(7);
    for (int iter = 0; iter < 5000; iter++) {
        size_t len = (size_t)(rand() % (int)sizeof(buf));
        for (size_t i = 0; i < len; i++)
            buf[i] = (char)(rand() & 0xff);
        assert_int_equal(ecr_token_parse(buf, len, iter & 1, &t), -EIO);
    }
}

static void test_error_parse(void **state)
{
    (void)state;
    char msg[ECR_AUTH_ERROR_MAX];
    const char *sig = "{\"__type\":\"InvalidSignatureException\",\"message\":\"The request "
                      "signature we calculated does not match\"}";
    assert_int_equal(ecr_auth_error_parse(403, sig, strlen(sig), msg, sizeof(msg)), -EACCES);
    assert_string_equal(msg, "HTTP 403 InvalidSignatureException: The request signature we "
                             "calculated does not match");
    const char *ns = "{\"__type\":\"com.amazon.coral.service#UnrecognizedClientException\","
                     "\"Message\":\"The security token included in the request is invalid.\"}";
    assert_int_equal(ecr_auth_error_parse(400, ns, strlen(ns), msg, sizeof(msg)), -EACCES);
    assert_non_null(strstr(msg, "UnrecognizedClientException: The security token"));
    const char *deny = "{\"__type\":\"AccessDeniedException\",\"message\":\"no\"}";
    assert_int_equal(ecr_auth_error_parse(400, deny, strlen(deny), msg, sizeof(msg)), -EACCES);
    const char *srv = "{\"__type\":\"ServerException\",\"message\":\"boom\"}";
    assert_int_equal(ecr_auth_error_parse(500, srv, strlen(srv), msg, sizeof(msg)), -EREMOTEIO);
    const char *thr = "{\"__type\":\"ThrottlingException\"}";
    assert_int_equal(ecr_auth_error_parse(400, thr, strlen(thr), msg, sizeof(msg)), -EREMOTEIO);
    assert_string_equal(msg, "HTTP 400 ThrottlingException");
    assert_int_equal(ecr_auth_error_parse(429, "", 0, msg, sizeof(msg)), -EREMOTEIO);
    assert_int_equal(ecr_auth_error_parse(503, "<html>", 6, msg, sizeof(msg)), -EREMOTEIO);
    assert_int_equal(ecr_auth_error_parse(403, "<html>", 6, msg, sizeof(msg)), -EACCES);
    assert_string_equal(msg, "HTTP 403");
    const char *inv = "{\"__type\":\"InvalidParameterException\",\"message\":\"bad\"}";
    assert_int_equal(ecr_auth_error_parse(400, inv, strlen(inv), msg, sizeof(msg)), -EIO);
    /* The message is one printable line, however hostile, and cut to fit. */
    const char *ctl = "{\"__type\":\"X\",\"message\":\"a\\nb\\u0000c\\u00e9\"}";
    assert_int_equal(ecr_auth_error_parse(400, ctl, strlen(ctl), msg, sizeof(msg)), -EIO);
    for (const char *c = msg; *c; c++)
        assert_true(*c >= 0x20 && *c < 0x7f);
    char small[8];
    assert_int_equal(ecr_auth_error_parse(403, sig, strlen(sig), small, sizeof(small)), -EACCES);
    assert_int_equal(strlen(small), 7);
}

static void test_refresh_margin(void **state)
{
    (void)state;
    const int64_t H = 3600 * 1000, M = 60 * 1000, S = 1000;
    int64_t t0 = 1700000000000LL;
    assert_int_equal(ecr_auth_refresh_at(t0, t0 + 12 * H), t0 + 12 * H - 5 * M);
    assert_int_equal(ecr_auth_refresh_at(t0, t0 + 1 * H), t0 + H - 5 * M);       /* 10 % is 6 min */
    assert_int_equal(ecr_auth_refresh_at(t0, t0 + 50 * M), t0 + 50 * M - 5 * M); /* equal */
    assert_int_equal(ecr_auth_refresh_at(t0, t0 + 30 * M), t0 + 27 * M);         /* 10 % is 3 min */
    assert_int_equal(ecr_auth_refresh_at(t0, t0 + 10 * S), t0 + 9 * S);
    assert_int_equal(ecr_auth_refresh_at(t0, t0 + 5), t0 + 5); /* 10 % of 5 ms rounds to 0 */
    assert_int_equal(ecr_auth_refresh_at(t0, t0), t0);
    assert_int_equal(ecr_auth_refresh_at(t0, t0 - H), t0 - H);
}

static void test_describe_parse(void **state)
{
    (void)state;
    char *alias, *next;
    const char *body =
        "{\"registries\":[{\"registryId\":\"999999999999\",\"aliases\":[{\"name\":\"decoy\","
        "\"status\":\"ACTIVE\",\"primaryRegistryAlias\":true}]},"
        "{\"registryId\":\"" ACCOUNT "\",\"aliases\":["
        "{\"name\":\"pending1\",\"status\":\"PENDING\",\"primaryRegistryAlias\":true},"
        "{\"name\":\"plain1\",\"status\":\"ACTIVE\"},"
        "{\"name\":\"default1\",\"status\":\"ACTIVE\",\"defaultRegistryAlias\":true},"
        "{\"name\":\"Bad/Alias\",\"status\":\"ACTIVE\",\"primaryRegistryAlias\":true}]}],"
        "\"nextToken\":null}";
    assert_int_equal(ecr_auth_describe_parse(body, strlen(body), ACCOUNT, &alias, &next), 0);
    assert_string_equal(alias, "default1");
    assert_null(next);
    free(alias);
    const char *prim = "{\"registries\":[{\"registryId\":\"" ACCOUNT "\",\"aliases\":["
                       "{\"name\":\"a1\",\"status\":\"ACTIVE\",\"defaultRegistryAlias\":true},"
                       "{\"name\":\"pp-1.x_y\",\"status\":\"ACTIVE\","
                       "\"primaryRegistryAlias\":true}]}]}";
    assert_int_equal(ecr_auth_describe_parse(prim, strlen(prim), ACCOUNT, &alias, NULL), 0);
    assert_string_equal(alias, "pp-1.x_y");
    free(alias);
    const char *other = "{\"registries\":[{\"registryId\":\"1\",\"aliases\":[]}],"
                        "\"nextToken\":\"page2\"}";
    assert_int_equal(ecr_auth_describe_parse(other, strlen(other), ACCOUNT, &alias, &next),
                     -ENOENT);
    assert_string_equal(next, "page2");
    free(next);
    const char *pend = "{\"registries\":[{\"registryId\":\"" ACCOUNT "\",\"aliases\":["
                       "{\"name\":\"p1\",\"status\":\"PENDING\"}]}]}";
    assert_int_equal(ecr_auth_describe_parse(pend, strlen(pend), ACCOUNT, &alias, &next), -ENOENT);
    static const char *const bad[] = {"",
                                      "[]",
                                      "{}",
                                      "{\"registries\":{}}",
                                      "{\"registries\":[],\"nextToken\":5}",
                                      "{\"registries\":[{\"registryId\":\"" ACCOUNT
                                      "\",\"aliases\":\"x\"}]}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(ecr_auth_describe_parse(bad[i], strlen(bad[i]), ACCOUNT, &alias, &next),
                         -EIO);
}

static void test_new_checks_and_endpoints(void **state)
{
    (void)state;
    struct proxy p;
    struct ecr_auth *a;
    char want[512];

    make_proxy(&p, false, AUTH_ACCESS_KEY, NULL);
    errno = 0;
    assert_null(ecr_auth_new(&p, NULL)); /* access-key without its secret */
    assert_int_equal(errno, EINVAL);
    p.type = PROXY_DOCKER;
    assert_null(ecr_auth_new(&p, "s"));
    p.type = PROXY_ECR;

    /* Default: the defaults table's pattern, with a path. */
    a = ecr_auth_new(&p, "s");
    assert_non_null(a);
    assert_int_equal(
        defaults_expand(upstream_defaults.ecr_api, "us-east-1", NULL, want, sizeof(want) - 1), 0);
    strcat(want, "/");
    assert_string_equal(ecr_auth_endpoint(a), want);
    ecr_auth_free(a);

    setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1", 1);
    a = ecr_auth_new(&p, "s");
    assert_string_equal(ecr_auth_endpoint(a), "http://127.0.0.1:1/");
    ecr_auth_free(a);
    setenv("AWS_ENDPOINT_URL_ECR", "http://127.0.0.1:2/vpce/", 1);
    a = ecr_auth_new(&p, "s");
    assert_string_equal(ecr_auth_endpoint(a), "http://127.0.0.1:2/vpce/");
    ecr_auth_free(a);
    p.aws_endpoint = strdup("http://127.0.0.1:3");
    a = ecr_auth_new(&p, "s");
    assert_string_equal(ecr_auth_endpoint(a), "http://127.0.0.1:3/");
    ecr_auth_free(a);
    config_proxy_clear(&p);

    /* Public: its own variable and its own default. */
    make_proxy(&p, true, AUTH_ACCESS_KEY, NULL);
    a = ecr_auth_new(&p, "s");
    assert_string_equal(ecr_auth_endpoint(a), "http://127.0.0.1:1/"); /* AWS_ENDPOINT_URL */
    ecr_auth_free(a);
    setenv("AWS_ENDPOINT_URL_ECR_PUBLIC", "http://127.0.0.1:4", 1);
    a = ecr_auth_new(&p, "s");
    assert_string_equal(ecr_auth_endpoint(a), "http://127.0.0.1:4/");
    ecr_auth_free(a);
    unsetenv("AWS_ENDPOINT_URL_ECR_PUBLIC");
    unsetenv("AWS_ENDPOINT_URL");
    a = ecr_auth_new(&p, "s");
    snprintf(want, sizeof(want), "%s/", upstream_defaults.ecr_public_api);
    assert_string_equal(ecr_auth_endpoint(a), want);
    ecr_auth_free(a);
    /* A bad endpoint is refused at create. */
    p.aws_endpoint = strdup("ftp://127.0.0.1:3");
    errno = 0;
    assert_null(ecr_auth_new(&p, "s"));
    assert_int_equal(errno, EINVAL);
    config_proxy_clear(&p);

    /* Private without a region cannot be signed. */
    make_proxy(&p, false, AUTH_ACCESS_KEY, NULL);
    free(p.ecr.region);
    p.ecr.region = NULL;
    assert_null(ecr_auth_new(&p, "s"));
    config_proxy_clear(&p);
}

/* ---- end to end against fake_ecr.py ---- */

struct e2e {
    struct fake fake;
    bool have_python;
};

static int e2e_setup(void **state)
{
    static struct e2e e;
    clean_env(NULL);
    memset(&e, 0, sizeof(e));
    const char *args[] = {
        "--password",          PASSWORD,           "--ttl", "3600", "--proxy-endpoint",
        "http://127.0.0.1:9/", "--describe-pages", "2",     NULL};
    e.have_python = fake_start(&e.fake, args);
    clock_offset_ms = 0;
    *state = &e;
    return 0;
}

static int e2e_teardown(void **state)
{
    struct e2e *e = *state;
    fake_stop(&e->fake);
    return 0;
}

#define NEED_FAKE(e)                                                                               \
    do {                                                                                           \
        if (!(e)->have_python)                                                                     \
            skip();                                                                                \
    } while (0)

static struct ecr_auth *auth_for(const struct e2e *e, bool is_public, const char *secret)
{
    struct proxy p;
    make_proxy(&p, is_public, AUTH_ACCESS_KEY, e->fake.url);
    struct ecr_auth *a = ecr_auth_new(&p, secret);
    config_proxy_clear(&p);
    assert_non_null(a);
    ecr_auth_set_clock(a, test_clock, NULL);
    return a;
}

static void test_e2e_private_token_and_refresh(void **state)
{
    struct e2e *e = *state;
    NEED_FAKE(e);
    struct ecr_auth *a = auth_for(e, false, SECRET);
    char *hdr = NULL, *base = NULL, *want_tok = b64("AWS:" PASSWORD), want[512];
    snprintf(want, sizeof(want), "Basic %s", want_tok);

    assert_int_equal(ecr_auth_get(a, &hdr, &base), 0);
    assert_string_equal(hdr, want);
    assert_string_equal(base, "http://127.0.0.1:9/");
    assert_int_equal(fake_count(&e->fake, "ecr.GetAuthorizationToken"), 1);
    assert_int_equal(fake_count(&e->fake, "denied"), 0);
    ecr_auth_string_free(hdr);
    free(base);

    /* Cached: no second request. */
    assert_int_equal(ecr_auth_get(a, &hdr, NULL), 0);
    assert_string_equal(hdr, want);
    ecr_auth_string_free(hdr);
    assert_int_equal(fake_count(&e->fake, "ecr.GetAuthorizationToken"), 1);

    /* 1 h token: the margin is 5 min. At +54 min it is still fresh ... */
    clock_offset_ms = 54 * 60 * 1000;
    assert_int_equal(ecr_auth_get(a, &hdr, NULL), 0);
    ecr_auth_string_free(hdr);
    assert_int_equal(fake_count(&e->fake, "ecr.GetAuthorizationToken"), 1);
    /* ... at +56 min it is within the margin: refreshed. */
    clock_offset_ms = 56 * 60 * 1000;
    assert_int_equal(ecr_auth_get(a, &hdr, &base), 0);
    assert_string_equal(hdr, want);
    ecr_auth_string_free(hdr);
    free(base);
    assert_int_equal(fake_count(&e->fake, "ecr.GetAuthorizationToken"), 2);
    assert_int_equal(fake_count(&e->fake, "denied"), 0);

    /* The registry refused the token: dropped once, whoever else reports the same one. */
    ecr_auth_invalidate(a, want);
    ecr_auth_invalidate(a, want);
    assert_int_equal(ecr_auth_get(a, &hdr, NULL), 0);
    ecr_auth_string_free(hdr);
    assert_int_equal(fake_count(&e->fake, "ecr.GetAuthorizationToken"), 3);
    ecr_auth_invalidate(a, "Basic some-older-token");
    ecr_auth_invalidate(a, NULL);
    assert_int_equal(ecr_auth_get(a, &hdr, NULL), 0);
    ecr_auth_string_free(hdr);
    assert_int_equal(fake_count(&e->fake, "ecr.GetAuthorizationToken"), 3);
    ecr_auth_free(a);
    free(want_tok);
    clock_offset_ms = 0;
}

static void test_e2e_refresh_failure_keeps_token(void **state)
{
    struct e2e *e = *state;
    NEED_FAKE(e);
    struct ecr_auth *a = auth_for(e, false, SECRET);
    char *hdr = NULL, *first = NULL, err[ECR_AUTH_ERROR_MAX];
    long base_count = fake_count(&e->fake, "ecr.GetAuthorizationToken");

    assert_int_equal(ecr_auth_get(a, &first, NULL), 0);
    fake_set(&e->fake, "fail=500");
    /* In the margin, refresh fails, the old token is still good: the caller gets it. */
    clock_offset_ms = 58 * 60 * 1000;
    assert_int_equal(ecr_auth_get(a, &hdr, NULL), 0);
    assert_string_equal(hdr, first);
    ecr_auth_string_free(hdr);
    assert_int_equal(fake_count(&e->fake, "ecr.GetAuthorizationToken"), base_count + 2);
    ecr_auth_last_error(a, err, sizeof(err));
    assert_non_null(strstr(err, "ServerException"));
    /* The failed refresh is not retried at once. */
    assert_int_equal(ecr_auth_get(a, &hdr, NULL), 0);
    ecr_auth_string_free(hdr);
    assert_int_equal(fake_count(&e->fake, "ecr.GetAuthorizationToken"), base_count + 2);
    /* Past the expiry there is nothing to fall back on: the error shows. */
    clock_offset_ms = 61 * 60 * 1000;
    assert_int_equal(ecr_auth_get(a, &hdr, NULL), -EREMOTEIO);
    assert_null(hdr);
    assert_int_equal(fake_count(&e->fake, "ecr.GetAuthorizationToken"), base_count + 3);
    /* Healed: the next call gets a new token. */
    fake_set(&e->fake, "fail=0");
    assert_int_equal(ecr_auth_get(a, &hdr, NULL), 0);
    assert_string_equal(hdr, first);
    ecr_auth_string_free(hdr);
    ecr_auth_string_free(first);
    assert_int_equal(fake_count(&e->fake, "ecr.GetAuthorizationToken"), base_count + 4);
    ecr_auth_free(a);
    clock_offset_ms = 0;
}

static void test_e2e_wrong_secret(void **state)
{
    struct e2e *e = *state;
    NEED_FAKE(e);
    struct ecr_auth *a = auth_for(e, false, "not-the-secret");
    char *hdr = (char *)"x", *base = (char *)"x", err[ECR_AUTH_ERROR_MAX];
    long denied = fake_count(&e->fake, "denied");
    int64_t t0 = mono_ms();
    assert_int_equal(ecr_auth_get(a, &hdr, &base), -EACCES);
    assert_true(mono_ms() - t0 < 3000);
    assert_null(hdr);
    assert_null(base);
    assert_int_equal(fake_count(&e->fake, "denied"), denied + 1);
    ecr_auth_last_error(a, err, sizeof(err));
    assert_non_null(strstr(err, "InvalidSignatureException"));
    assert_non_null(strstr(err, "check the access key and secret"));
    assert_null(strstr(err, "not-the-secret"));
    /* Refused credentials are not retried on every call ... */
    assert_int_equal(ecr_auth_get(a, &hdr, NULL), -EACCES);
    assert_int_equal(fake_count(&e->fake, "denied"), denied + 1);
    /* ... but again after ECR_AUTH_RETRY_S. */
    clock_offset_ms = (ECR_AUTH_RETRY_S + 1) * 1000;
    assert_int_equal(ecr_auth_get(a, &hdr, NULL), -EACCES);
    assert_int_equal(fake_count(&e->fake, "denied"), denied + 2);
    clock_offset_ms = 0;
    ecr_auth_free(a);

    /* An unknown access key. */
    struct proxy p;
    make_proxy(&p, false, AUTH_ACCESS_KEY, e->fake.url);
    free(p.access_key);
    p.access_key = strdup("AKIDUNKNOWN");
    a = ecr_auth_new(&p, SECRET);
    config_proxy_clear(&p);
    assert_int_equal(ecr_auth_get(a, &hdr, NULL), -EACCES);
    ecr_auth_last_error(a, err, sizeof(err));
    assert_non_null(strstr(err, "UnrecognizedClientException"));
    ecr_auth_free(a);
}

struct racer {
    struct ecr_auth *a;
    int rc;
    char *hdr;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    r->rc = ecr_auth_get(r->a, &r->hdr, NULL);
    return NULL;
}

static void test_e2e_concurrent_single_request(void **state)
{
    struct e2e *e = *state;
    NEED_FAKE(e);
    struct ecr_auth *a = auth_for(e, false, SECRET);
    struct racer r[8];
    pthread_t th[8];
    long before = fake_count(&e->fake, "ecr.GetAuthorizationToken");
    for (int i = 0; i < 8; i++) {
        r[i] = (struct racer){.a = a};
        assert_int_equal(pthread_create(&th[i], NULL, race, &r[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(r[i].rc, 0);
        assert_non_null(r[i].hdr);
        assert_string_equal(r[i].hdr, r[0].hdr);
    }
    for (int i = 0; i < 8; i++)
        ecr_auth_string_free(r[i].hdr);
    assert_int_equal(fake_count(&e->fake, "ecr.GetAuthorizationToken"), before + 1);
    ecr_auth_free(a);
}

static void test_e2e_public(void **state)
{
    struct e2e *e = *state;
    NEED_FAKE(e);
    struct ecr_auth *a = auth_for(e, true, SECRET);
    char *hdr = NULL, *base = NULL, *alias = NULL, want[512], *tok = b64("AWS:" PASSWORD);
    snprintf(want, sizeof(want), "Bearer %s", tok);
    assert_int_equal(ecr_auth_get(a, &hdr, &base), 0);
    assert_string_equal(hdr, want);
    snprintf(want, sizeof(want), "https://%s/", upstream_defaults.ecr_public_host);
    assert_string_equal(base, want);
    assert_int_equal(fake_count(&e->fake, "ecr-public.GetAuthorizationToken"), 1);
    ecr_auth_string_free(hdr);
    free(base);
    free(tok);

    /* The alias: two pages of DescribeRegistries (the first names another account). */
    assert_int_equal(ecr_auth_public_alias(a, &alias), 0);
    assert_string_equal(alias, "fakealias");
    free(alias);
    assert_int_equal(fake_count(&e->fake, "ecr-public.DescribeRegistries"), 2);
    assert_int_equal(ecr_auth_public_alias(a, &alias), 0);
    free(alias);
    assert_int_equal(fake_count(&e->fake, "ecr-public.DescribeRegistries"), 2);
    ecr_auth_free(a);

    /* Private proxies have no alias; anonymous public ones cannot look it up. */
    a = auth_for(e, false, SECRET);
    assert_int_equal(ecr_auth_public_alias(a, &alias), -EINVAL);
    ecr_auth_free(a);
    struct proxy p;
    make_proxy(&p, true, AUTH_ANONYMOUS, e->fake.url);
    a = ecr_auth_new(&p, NULL);
    config_proxy_clear(&p);
    assert_int_equal(ecr_auth_public_alias(a, &alias), -EACCES);
    /* Anonymous: no header, the registry's own URL, no request. */
    long total = fake_count(&e->fake, "total");
    assert_int_equal(ecr_auth_get(a, &hdr, &base), 0);
    assert_null(hdr);
    assert_string_equal(base, want);
    free(base);
    assert_int_equal(fake_count(&e->fake, "total"), total);
    ecr_auth_free(a);
}

static void test_e2e_unreachable(void **state)
{
    struct e2e *e = *state;
    NEED_FAKE(e);
    struct proxy p;
    char *hdr;
    make_proxy(&p, false, AUTH_ACCESS_KEY, "http://127.0.0.1:1");
    struct ecr_auth *a = ecr_auth_new(&p, SECRET);
    config_proxy_clear(&p);
    int64_t t0 = mono_ms();
    assert_int_equal(ecr_auth_get(a, &hdr, NULL), -ECONNREFUSED);
    assert_true(mono_ms() - t0 < 3000);
    ecr_auth_free(a);
}

/* aws-chain through IMDSv2 with a session token, all from one fake. */
static void test_e2e_chain_imds(void **state)
{
    (void)state;
    struct fake f = {0};
    const char *args[] = {"--imds",     "--session-token", "IMDS-SESSION-TOKEN",
                          "--password", PASSWORD,          NULL};
    clean_env(NULL);
    if (!fake_start(&f, args))
        skip();
    struct proxy p;
    char *hdr = NULL, *base = NULL, err[ECR_AUTH_ERROR_MAX];
    unsetenv("AWS_EC2_METADATA_DISABLED");
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", f.url, 1);
    setenv("AWS_ENDPOINT_URL_ECR", f.url, 1);
    make_proxy(&p, false, AUTH_AWS_CHAIN, NULL);
    struct ecr_auth *a = ecr_auth_new(&p, NULL);
    config_proxy_clear(&p);
    assert_non_null(a);
    assert_int_equal(ecr_auth_get(a, &hdr, &base), 0);
    assert_non_null(hdr);
    assert_int_equal(strncmp(hdr, "Basic ", 6), 0);
    assert_int_equal(fake_count(&f, "imds.token"), 1);
    assert_int_equal(fake_count(&f, "imds.role"), 1);
    assert_int_equal(fake_count(&f, "imds.credentials"), 1);
    assert_int_equal(fake_count(&f, "ecr.GetAuthorizationToken"), 1);
    assert_int_equal(fake_count(&f, "denied"), 0);
    ecr_auth_string_free(hdr);
    free(base);
    ecr_auth_free(a);

    /* Environment keys come first: without the session token the fake refuses them. */
    setenv("AWS_ACCESS_KEY_ID", AKID, 1);
    setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
    make_proxy(&p, false, AUTH_AWS_CHAIN, NULL);
    a = ecr_auth_new(&p, NULL);
    config_proxy_clear(&p);
    assert_int_equal(ecr_auth_get(a, &hdr, NULL), -EACCES);
    assert_int_equal(fake_count(&f, "imds.token"), 1);
    ecr_auth_free(a);

    /* No source at all: an authentication error that says so. */
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    make_proxy(&p, false, AUTH_AWS_CHAIN, NULL);
    a = ecr_auth_new(&p, NULL);
    config_proxy_clear(&p);
    assert_int_equal(ecr_auth_get(a, &hdr, NULL), -EACCES);
    ecr_auth_last_error(a, err, sizeof(err));
    assert_non_null(strstr(err, "no usable AWS credentials"));
    assert_non_null(strstr(err, "instance metadata: disabled"));
    ecr_auth_free(a);
    assert_int_equal(fake_count(&f, "ecr.GetAuthorizationToken"), 2);
    fake_stop(&f);
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    return fetch_global_init();
}

static int group_teardown(void **state)
{
    (void)state;
    fetch_global_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_parse_private),
        cmocka_unit_test(test_token_parse_public),
        cmocka_unit_test(test_token_parse_bad),
        cmocka_unit_test(test_token_parse_huge),
        cmocka_unit_test(test_error_parse),
        cmocka_unit_test(test_refresh_margin),
        cmocka_unit_test(test_describe_parse),
        cmocka_unit_test_setup(test_new_checks_and_endpoints, clean_env),
        cmocka_unit_test_setup_teardown(test_e2e_private_token_and_refresh, e2e_setup,
                                        e2e_teardown),
        cmocka_unit_test_setup_teardown(test_e2e_refresh_failure_keeps_token, e2e_setup,
                                        e2e_teardown),
        cmocka_unit_test_setup_teardown(test_e2e_wrong_secret, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_e2e_concurrent_single_request, e2e_setup,
                                        e2e_teardown),
        cmocka_unit_test_setup_teardown(test_e2e_public, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup_teardown(test_e2e_unreachable, e2e_setup, e2e_teardown),
        cmocka_unit_test_setup(test_e2e_chain_imds, clean_env),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

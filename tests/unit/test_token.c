/*
 * test_token: the registry token flow's parsers — WWW-Authenticate
 * challenges (RFC 7235 auth-params, quoted strings, several challenges,
 * hostile input), token answers, the refresh margin and the token URL —
 * and the cache's reuse of a token within its lifetime, against a token
 * server on 127.0.0.1 made of one socket.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "upstreamfs/fetch.h"
#include "upstreamfs/token.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void bearer_hub_example(void **state)
{
    (void)state;
    struct token_challenge c;
    assert_int_equal(token_challenge_parse("Bearer realm=\"https://auth.docker.io/token\","
                                           "service=\"registry.docker.io\","
                                           "scope=\"repository:samalba/my-app:pull,push\"",
                                           &c),
                     0);
    assert_int_equal(c.scheme, TOKEN_SCHEME_BEARER);
    assert_string_equal(c.realm, "https://auth.docker.io/token");
    assert_string_equal(c.service, "registry.docker.io");
    assert_string_equal(c.scope, "repository:samalba/my-app:pull,push");
    assert_null(c.error);
    token_challenge_clear(&c);
}

static void bearer_params_in_any_form(void **state)
{
    (void)state;
    struct token_challenge c;
    /* Case-insensitive scheme and names, spaces around '=', token values, escapes, error. */
    assert_int_equal(token_challenge_parse("bEaReR   Realm = \"http://127.0.0.1:1/t\" , "
                                           "SERVICE=svc,scope=\"a b\\\"c\",error=invalid_token",
                                           &c),
                     0);
    assert_int_equal(c.scheme, TOKEN_SCHEME_BEARER);
    assert_string_equal(c.realm, "http://127.0.0.1:1/t");
    assert_string_equal(c.service, "svc");
    assert_string_equal(c.scope, "a b\"c");
    assert_string_equal(c.error, "invalid_token");
    token_challenge_clear(&c);
    /* A scope with a host:port and commas inside its quotes. */
    assert_int_equal(token_challenge_parse("Bearer realm=\"https://a/t\",scope=\"repository:"
                                           "localhost:5000/x:pull,push registry:catalog:*\"",
                                           &c),
                     0);
    assert_string_equal(c.scope, "repository:localhost:5000/x:pull,push registry:catalog:*");
    token_challenge_clear(&c);
}

static void several_challenges(void **state)
{
    (void)state;
    struct token_challenge c;
    /* Bearer wins over Basic, wherever it is; token68 and unknown schemes are skipped. */
    assert_int_equal(token_challenge_parse("Negotiate abc/def==, Basic realm=\"r\", "
                                           "Bearer realm=\"https://t/x\",service=\"s\"",
                                           &c),
                     0);
    assert_int_equal(c.scheme, TOKEN_SCHEME_BEARER);
    assert_string_equal(c.realm, "https://t/x");
    assert_string_equal(c.service, "s");
    token_challenge_clear(&c);
    assert_int_equal(token_challenge_parse("Basic realm=\"test-realm\"", &c), 0);
    assert_int_equal(c.scheme, TOKEN_SCHEME_BASIC);
    assert_string_equal(c.realm, "test-realm");
    token_challenge_clear(&c);
    assert_int_equal(token_challenge_parse("Basic", &c), 0);
    assert_int_equal(c.scheme, TOKEN_SCHEME_BASIC);
    token_challenge_clear(&c);
    assert_int_equal(token_challenge_parse("Digest realm=\"x\", nonce=\"y\"", &c), -ENOENT);
    assert_int_equal(token_challenge_parse("", &c), -ENOENT);
    assert_int_equal(token_challenge_parse(NULL, &c), -ENOENT);
}

static void hostile_challenges(void **state)
{
    (void)state;
    struct token_challenge c;
    const char *bad[] = {
        "Bearer realm=\"https://a/t",                  /* unterminated quote */
        "Bearer realm=\"https://a/t\\",                /* quote ends in an escape */
        "Bearer service=\"s\"",                        /* no realm */
        "Bearer realm=\"file:///etc/passwd\"",         /* not http(s) */
        "Bearer realm=\"javascript:x\"",               /* not http(s) */
        "Bearer realm=\"https://a/t x\"",              /* a space in the URL */
        "Bearer realm=\"https://a/\r\nX-Evil: 1\"",    /* header injection */
        "Bearer realm=",                               /* nothing after '=' ... */
        "Bearer realm=\"https://a/t\" junk",           /* garbage after a value */
        "Bearer realm=\"https://a/t\",=x",             /* a parameter without a name */
        "\"Bearer\"",                                  /* no scheme token */
        "Bearer realm=\"https://a/t\",scope=\"\x01\"", /* a control character */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = token_challenge_parse(bad[i], &c);
        if (rc == 0)
            fail_msg("accepted hostile challenge %zu: %s", i, bad[i]);
        assert_true(rc == -EINVAL || rc == -ENOENT);
    }
    /* A huge value: refused, not truncated or overflowed. */
    size_t n = TOKEN_PARAM_MAX + 100;
    char *big = malloc(n + 64);
    assert_non_null(big);
    strcpy(big, "Bearer realm=\"https://a/");
    size_t o = strlen(big);
    memset(big + o, 'a', n);
    strcpy(big + o + n, "\"");
    assert_int_equal(token_challenge_parse(big, &c), -EINVAL);
    /* A huge header: refused up front. */
    char *huge = malloc(TOKEN_HEADER_MAX + 100);
    assert_non_null(huge);
    memset(huge, ',', TOKEN_HEADER_MAX + 99);
    huge[TOKEN_HEADER_MAX + 99] = '\0';
    assert_int_equal(token_challenge_parse(huge, &c), -EINVAL);
    /* Only separators below the cap: no challenge, no crash. */
    huge[1000] = '\0';
    assert_int_equal(token_challenge_parse(huge, &c), -ENOENT);
    free(big);
    free(huge);
}

static void token_answers(void **state)
{
    (void)state;
    char *tok = NULL, err[128];
    int64_t life = 0;
    const char *a =
        "{\"token\":\"abc.def.ghi\",\"expires_in\":300,\"issued_at\":\"2026-01-01T00:00:00Z\"}";
    assert_int_equal(token_response_parse(a, strlen(a), &tok, &life, err, sizeof(err)), 0);
    assert_string_equal(tok, "abc.def.ghi");
    assert_int_equal(life, 300);
    free(tok);
    const char *b = "{\"access_token\":\"xyz\"}";
    assert_int_equal(token_response_parse(b, strlen(b), &tok, &life, err, sizeof(err)), 0);
    assert_string_equal(tok, "xyz");
    assert_int_equal(life, TOKEN_DEFAULT_LIFE_S);
    free(tok);
    const char *c = "{\"token\":\"\",\"access_token\":\"q\",\"expires_in\":-5}";
    assert_int_equal(token_response_parse(c, strlen(c), &tok, &life, err, sizeof(err)), 0);
    assert_string_equal(tok, "q");
    assert_int_equal(life, TOKEN_DEFAULT_LIFE_S);
    free(tok);
    const char *d = "{\"token\":\"t\",\"expires_in\":99999999999}";
    assert_int_equal(token_response_parse(d, strlen(d), &tok, &life, err, sizeof(err)), 0);
    assert_int_equal(life, TOKEN_MAX_LIFE_S);
    free(tok);
    const char *bad[] = {"",
                         "{",
                         "[]",
                         "{\"token\":5}",
                         "{\"expires_in\":5}",
                         "{\"token\":\"a\\r\\nX-Evil: 1\"}",
                         "{\"token\":\"a b\"}",
                         "null"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tok = NULL;
        assert_int_equal(
            token_response_parse(bad[i], strlen(bad[i]), &tok, &life, err, sizeof(err)), -EIO);
        assert_null(tok);
        assert_true(err[0] != '\0');
    }
}

static void refresh_margin(void **state)
{
    (void)state;
    assert_int_equal(token_refresh_margin_ms(60 * 1000), 6 * 1000);
    assert_int_equal(token_refresh_margin_ms(300 * 1000), 30 * 1000);
    assert_int_equal(token_refresh_margin_ms(12 * 3600 * 1000LL), 5 * 60 * 1000);
    assert_int_equal(token_refresh_margin_ms(0), 0);
}

static void request_url(void **state)
{
    (void)state;
    char *u = token_request_url("https://auth.example/token", "registry.example",
                                "repository:a/b:pull registry:catalog:*");
    assert_string_equal(u, "https://auth.example/token?service=registry.example"
                           "&scope=repository%3Aa%2Fb%3Apull&scope=registry%3Acatalog%3A%2A");
    free(u);
    u = token_request_url("https://auth.example/token?x=1", NULL, "s");
    assert_string_equal(u, "https://auth.example/token?x=1&scope=s");
    free(u);
    assert_null(token_request_url("ftp://x/", "s", "s"));
}

/* ---- a one-socket token server ------------------------------------------------------------- */

struct tsrv {
    int fd;
    int port;
    int served;
    int expires_in;
    int delay_ms; /* before each answer */
    pthread_t th;
};

static void *tsrv_main(void *arg)
{
    struct tsrv *s = arg;
    for (;;) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            return NULL;
        char buf[4096];
        ssize_t n = read(c, buf, sizeof(buf) - 1);
        if (n > 0) {
            char body[128], resp[512];
            usleep((useconds_t)s->delay_ms * 1000);
            s->served++;
            snprintf(body, sizeof(body), "{\"token\":\"tok%d\",\"expires_in\":%d}", s->served,
                     s->expires_in);
            snprintf(resp, sizeof(resp),
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     strlen(body), body);
            ssize_t w = write(c, resp, strlen(resp));
            (void)w;
        }
        close(c);
    }
}

static void tsrv_start(struct tsrv *s)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t al = sizeof(a);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->fd >= 0);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->fd, 16), 0);
    getsockname(s->fd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    pthread_create(&s->th, NULL, tsrv_main, s);
    assert_int_equal(fetch_global_init(), 0);
}

static void tsrv_stop(struct tsrv *s)
{
    shutdown(s->fd, SHUT_RDWR);
    close(s->fd);
    pthread_join(s->th, NULL);
    fetch_global_cleanup();
}

#define CALLERS 8

struct caller {
    struct token_cache *c;
    const char *realm;
    int rc;
    char *token;
};

static void *caller_main(void *arg)
{
    struct caller *k = arg;
    struct fetch_endpoint ep = {0};
    k->rc = token_get(k->c, &ep, k->realm, "svc", "repository:a:pull", &k->token);
    return NULL;
}

/* The single flight (src/util/single_flight.c): callers at once for one key make one request. */
static void concurrent_callers_share_one_request(void **state)
{
    (void)state;
    struct tsrv s = {.expires_in = 300, .delay_ms = 300};
    tsrv_start(&s);
    char realm[64];
    snprintf(realm, sizeof(realm), "http://127.0.0.1:%d/token", s.port);
    struct token_cache *c = token_cache_new();
    struct caller k[CALLERS];
    pthread_t th[CALLERS];
    for (int i = 0; i < CALLERS; i++) {
        k[i] = (struct caller){.c = c, .realm = realm};
        pthread_create(&th[i], NULL, caller_main, &k[i]);
    }
    for (int i = 0; i < CALLERS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(s.served, 1);
    for (int i = 0; i < CALLERS; i++) {
        assert_int_equal(k[i].rc, 0);
        assert_string_equal(k[i].token, "tok1");
        free(k[i].token);
    }
    token_cache_free(c);
    tsrv_stop(&s);
}

static void cache_reuses_and_refreshes(void **state)
{
    (void)state;
    struct tsrv s = {.expires_in = 300};
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t al = sizeof(a);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s.fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s.fd >= 0);
    assert_int_equal(bind(s.fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s.fd, 16), 0);
    getsockname(s.fd, (struct sockaddr *)&a, &al);
    s.port = ntohs(a.sin_port);
    pthread_create(&s.th, NULL, tsrv_main, &s);
    assert_int_equal(fetch_global_init(), 0);

    char realm[64];
    snprintf(realm, sizeof(realm), "http://127.0.0.1:%d/token", s.port);
    struct token_cache *c = token_cache_new();
    struct fetch_endpoint ep = {0};
    char *t1 = NULL, *t2 = NULL, *t3 = NULL;
    assert_int_equal(token_get(c, &ep, realm, "svc", "repository:a:pull", &t1), 0);
    assert_string_equal(t1, "tok1");
    /* Same key: cached. */
    assert_int_equal(token_get(c, &ep, realm, "svc", "repository:a:pull", &t2), 0);
    assert_string_equal(t2, "tok1");
    assert_int_equal(s.served, 1);
    /* Another scope: another token. */
    assert_int_equal(token_get(c, &ep, realm, "svc", "repository:b:pull", &t3), 0);
    assert_string_equal(t3, "tok2");
    free(t2);
    free(t3);
    /* A refused token is forgotten. */
    token_invalidate(c, realm, "svc", "repository:a:pull", t1);
    assert_int_equal(token_get(c, &ep, realm, "svc", "repository:a:pull", &t2), 0);
    assert_string_equal(t2, "tok3");
    free(t1);
    free(t2);
    /* A one-second token is past its refresh point (10 %) at once after 0.95 s. */
    s.expires_in = 1;
    assert_int_equal(token_get(c, &ep, realm, "svc", "repository:c:pull", &t1), 0);
    usleep(950 * 1000);
    assert_int_equal(token_get(c, &ep, realm, "svc", "repository:c:pull", &t2), 0);
    assert_string_not_equal(t1, t2);
    free(t1);
    free(t2);
    /* An unusable realm. */
    assert_int_equal(token_get(c, &ep, "gopher://x/", "svc", "s", &t1), -EINVAL);
    /* A dead token server: a remote failure. */
    assert_int_equal(token_get(c, &ep, "http://127.0.0.1:1/token", "svc", "s", &t1), -EREMOTEIO);
    token_cache_free(c);
    shutdown(s.fd, SHUT_RDWR);
    close(s.fd);
    pthread_join(s.th, NULL);
    fetch_global_cleanup();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bearer_hub_example), cmocka_unit_test(bearer_params_in_any_form),
        cmocka_unit_test(several_challenges), cmocka_unit_test(hostile_challenges),
        cmocka_unit_test(token_answers),      cmocka_unit_test(refresh_margin),
        cmocka_unit_test(concurrent_callers_share_one_request),
        cmocka_unit_test(request_url),        cmocka_unit_test(cache_reuses_and_refreshes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_shim_http: the shim's HTTP rules without a server: request-target
 * normalisation against hostile inputs, routing, Range, --listen parsing,
 * dates and escaping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "upstreamfs/shim_http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int norm(const char *target, char *out, bool *slash)
{
    return shim_http_path_normalise(target, out, SHIM_PATH_MAX + 1, slash);
}

static void normalise_plain(void **state)
{
    (void)state;
    char out[SHIM_PATH_MAX + 1];
    bool slash;
    assert_int_equal(norm("/", out, &slash), 0);
    assert_string_equal(out, "");
    assert_true(slash);
    assert_int_equal(norm("/key/a/b.txt", out, &slash), 0);
    assert_string_equal(out, "key/a/b.txt");
    assert_false(slash);
    assert_int_equal(norm("/key/dir/", out, &slash), 0);
    assert_string_equal(out, "key/dir");
    assert_true(slash);
    /* Empty components collapse. */
    assert_int_equal(norm("//key///a//b", out, &slash), 0);
    assert_string_equal(out, "key/a/b");
    /* Escapes decode, within one component. */
    assert_int_equal(norm("/key/with%20space%2Bplus.txt", out, &slash), 0);
    assert_string_equal(out, "key/with space+plus.txt");
    assert_int_equal(norm("/key/%40scope/pkg", out, &slash), 0);
    assert_string_equal(out, "key/@scope/pkg");
    /* Dots inside names are names. */
    assert_int_equal(norm("/key/...", out, &slash), 0);
    assert_string_equal(out, "key/...");
    assert_int_equal(norm("/key/..a/a..", out, &slash), 0);
    assert_string_equal(out, "key/..a/a..");
    /* UTF-8 passes through. */
    assert_int_equal(norm("/key/caf%C3%A9", out, &slash), 0);
    assert_string_equal(out, "key/caf\xc3\xa9");
}

static void normalise_hostile(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "/key/../../etc/passwd",
        "/key/..",
        "/..",
        "/../",
        "/key/./a",
        "/.",
        "/key/%2e%2e/%2e%2e/etc/passwd",
        "/key/%2E%2E/x",
        "/%2e%2e/",
        "/%2e%2e",
        "/key/.%2e/x",
        "/key/%2e./x",
        "/key/%2e/x",
        "/key/a%2fb",
        "/key/a%2Fb",
        "/key/..%2f..%2fetc%2fpasswd",
        "/key/%2f",
        "/key/a%00b",
        "/key/%00",
        "/key/a%0ab",
        "/key/a%0d%0aSet-Cookie:x",
        "/key/a%7fb",
        "/key/a\tb",
        "/key/a\x01",
        "/key/%",
        "/key/%2",
        "/key/%zz",
        "/key/%g0",
        "key/no-leading-slash",
        "http://example.com/key/a",
        "*",
        "",
    };
    char out[SHIM_PATH_MAX + 1];
    bool slash;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = norm(bad[i], out, &slash);
        if (rc != -EINVAL)
            fail_msg("\"%s\": expected -EINVAL, got %d (\"%s\")", bad[i], rc, out);
    }
    assert_int_equal(shim_http_path_normalise(NULL, out, sizeof(out), &slash), -EINVAL);
}

static void normalise_lengths(void **state)
{
    (void)state;
    char out[SHIM_PATH_MAX + 1], target[3 * SHIM_PATH_MAX];
    bool slash;
    /* A component of exactly 255 bytes passes; 256 does not, escaped or not. */
    memset(target, 0, sizeof(target));
    target[0] = '/';
    memset(target + 1, 'a', SHIM_COMPONENT_MAX);
    assert_int_equal(norm(target, out, &slash), 0);
    target[1 + SHIM_COMPONENT_MAX] = 'a';
    assert_int_equal(norm(target, out, &slash), -ENAMETOOLONG);
    char esc[1 + 3 * 256 + 1] = "/";
    for (int i = 0; i < 256; i++)
        strcat(esc, "%61");
    assert_int_equal(norm(esc, out, &slash), -ENAMETOOLONG);
    /* The whole path: 20 components of 250 bytes is over 4096. */
    size_t o = 0;
    for (int c = 0; c < 20; c++) {
        target[o++] = '/';
        memset(target + o, 'b', 250);
        o += 250;
    }
    target[o] = '\0';
    assert_int_equal(norm(target, out, &slash), -ENAMETOOLONG);
    /* A small output buffer is a limit too, never an overflow. */
    char small[8];
    assert_int_equal(shim_http_path_normalise("/abcdefgh", small, sizeof(small), &slash),
                     -ENAMETOOLONG);
    assert_int_equal(shim_http_path_normalise("/abc/def", small, sizeof(small), &slash), 0);
    assert_string_equal(small, "abc/def");
}

static void routes(void **state)
{
    (void)state;
    assert_int_equal(shim_http_route(""), SHIM_ROUTE_ROOT);
    assert_int_equal(shim_http_route("v2"), SHIM_ROUTE_V2);
    assert_int_equal(shim_http_route("v2/hub/alpine/manifests/3"), SHIM_ROUTE_V2);
    assert_int_equal(shim_http_route("api/v1/proxies"), SHIM_ROUTE_API);
    assert_int_equal(shim_http_route("metrics"), SHIM_ROUTE_METRICS);
    assert_int_equal(shim_http_route("metrics/x"), SHIM_ROUTE_OTHER);
    assert_int_equal(shim_http_route("healthz"), SHIM_ROUTE_HEALTHZ);
    assert_int_equal(shim_http_route("ui"), SHIM_ROUTE_OTHER);
    assert_int_equal(shim_http_route("static/app.js"), SHIM_ROUTE_OTHER);
    assert_int_equal(shim_http_route("gen/a/b"), SHIM_ROUTE_PATH);
    assert_int_equal(shim_http_route("v2x/a"), SHIM_ROUTE_PATH);
    assert_int_equal(shim_http_route("apix"), SHIM_ROUTE_PATH);
    assert_string_equal(shim_http_route_name(SHIM_ROUTE_PATH), "path");
    assert_string_equal(shim_http_route_name(SHIM_ROUTE_COUNT), "other");
}

static void range(void **state)
{
    (void)state;
    int64_t s = -1, l = -1;
    assert_int_equal(shim_http_range(NULL, 100, &s, &l), 0);
    assert_int_equal(shim_http_range("bytes=0-9", 100, &s, &l), 1);
    assert_true(s == 0 && l == 10);
    assert_int_equal(shim_http_range("bytes=90-", 100, &s, &l), 1);
    assert_true(s == 90 && l == 10);
    assert_int_equal(shim_http_range("bytes=-10", 100, &s, &l), 1);
    assert_true(s == 90 && l == 10);
    assert_int_equal(shim_http_range("bytes=-500", 100, &s, &l), 1);
    assert_true(s == 0 && l == 100);
    assert_int_equal(shim_http_range("bytes=50-5000", 100, &s, &l), 1);
    assert_true(s == 50 && l == 50);
    assert_int_equal(shim_http_range(" Bytes = 5-5 ", 100, &s, &l), 1);
    assert_true(s == 5 && l == 1);
    assert_int_equal(shim_http_range("bytes=99-99", 100, &s, &l), 1);
    assert_true(s == 99 && l == 1);
    /* Huge numbers saturate instead of overflowing. */
    assert_int_equal(shim_http_range("bytes=0-99999999999999999999999", 100, &s, &l), 1);
    assert_true(s == 0 && l == 100);
    assert_int_equal(shim_http_range("bytes=99999999999999999999999-", 100, &s, &l), -ERANGE);
    /* Unsatisfiable. */
    assert_int_equal(shim_http_range("bytes=100-", 100, &s, &l), -ERANGE);
    assert_int_equal(shim_http_range("bytes=100-200", 100, &s, &l), -ERANGE);
    assert_int_equal(shim_http_range("bytes=-0", 100, &s, &l), -ERANGE);
    assert_int_equal(shim_http_range("bytes=0-", 0, &s, &l), -ERANGE);
    assert_int_equal(shim_http_range("bytes=-5", 0, &s, &l), -ERANGE);
    /* Ignored: the whole representation is sent. */
    static const char *const ignored[] = {
        "items=0-9", "bytes",   "bytes=",     "bytes=a-b", "bytes=9-5",   "bytes=0-9,20-29",
        "bytes=--5", "bytes=5", "bytes=0-9x", "bytes=-",   "bytes=1-2-3", "bytes 0-9",
    };
    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
        if (shim_http_range(ignored[i], 100, &s, &l) != 0)
            fail_msg("\"%s\" should be ignored", ignored[i]);
    /* An unknown size (a download without Content-Length) ignores Range. */
    assert_int_equal(shim_http_range("bytes=0-9", -1, &s, &l), 0);
}

static void listen_parse(void **state)
{
    (void)state;
    char host[64], msg[128];
    unsigned port = 0;
    assert_int_equal(
        shim_http_listen_parse("127.0.0.1:5000", host, sizeof(host), &port, msg, sizeof(msg)), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 5000);
    assert_int_equal(
        shim_http_listen_parse("[::1]:8080", host, sizeof(host), &port, msg, sizeof(msg)), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 8080);
    assert_int_equal(
        shim_http_listen_parse("localhost:0", host, sizeof(host), &port, msg, sizeof(msg)), 0);
    assert_int_equal(port, 0);
    static const char *const bad[] = {"127.0.0.1", ":5000",    "127.0.0.1:", "::1:5000",
                                      "[::1]5000", "[::1",     "h:65536",    "h:-1",
                                      "h:5x",      "h:123456", "[]:80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (shim_http_listen_parse(bad[i], host, sizeof(host), &port, msg, sizeof(msg)) != -EINVAL)
            fail_msg("\"%s\" should be refused", bad[i]);
    char tiny[4];
    assert_int_equal(
        shim_http_listen_parse("longhost:1", tiny, sizeof(tiny), &port, msg, sizeof(msg)), -EINVAL);
}

static void escaping(void **state)
{
    (void)state;
    char buf[64];
    shim_http_date(784111777, buf, sizeof(buf));
    assert_string_equal(buf, "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_int_equal(shim_http_href_escape("a b/c?d#e%f~g-h_i.j", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "a%20b%2Fc%3Fd%23e%25f~g-h_i.j");
    assert_int_equal(shim_http_href_escape("abcdef", buf, 4), -ENAMETOOLONG);
    assert_int_equal(shim_http_html_escape("<a href=\"x\">&'", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    assert_int_equal(shim_http_html_escape("<<<<", buf, 8), -ENAMETOOLONG);
    shim_http_log_escape("/a\"b\\c\n\x01\xff", buf, sizeof(buf));
    assert_string_equal(buf, "/a\\x22b\\x5cc\\x0a\\x01\\xff");
    shim_http_log_escape("0123456789abcdef", buf, 12);
    assert_string_equal(buf, "01234567..."); /* 11 bytes and the NUL */
    assert_string_equal(shim_http_content_type("index.yaml"), "text/yaml");
    assert_string_equal(shim_http_content_type("demo-1.0.JAR"), "application/java-archive");
    assert_string_equal(shim_http_content_type("x.jar.sha1"), "text/plain");
    assert_string_equal(shim_http_content_type("blob"), "application/octet-stream");
}

/* The Host rule of docs/SECURITY.md: IP literals, localhost and --public-name values. */
static void host_rule(void **state)
{
    (void)state;
    static const char *const names[] = {"cache.example", "Mirror.Example"};
    static const char *const ok[] = {
        "127.0.0.1",     "127.0.0.1:5000",    "10.0.0.7:80",    "[::1]",
        "[::1]:5000",    "[fe80::1]:1",       "localhost",      "LOCALHOST:5000",
        "cache.example", "CACHE.example:443", "mirror.example",
    };
    static const char *const refused[] = {
        "",
        "evil.example",
        "evil.example:5000",
        "localhost.evil.example",
        "127.0.0.1.evil.example",
        "127.1",
        "localhost:",
        "localhost:5000x",
        "localhost:123456",
        "[::1",
        "[::1]x",
        "[evil]:80",
        "::1",
        "cache.example.",
        "xcache.example",
        "127.0.0.1:80:80",
        "localhost/x",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        assert_true(shim_http_host_allowed(ok[i], names, 2));
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        assert_false(shim_http_host_allowed(refused[i], names, 2));
    assert_false(shim_http_host_allowed(NULL, names, 2));
    assert_false(shim_http_host_allowed("cache.example", NULL, 0));
    /* Only DNS-name bytes match a name, whatever names were given. */
    static const char *const odd[] = {"bad\x05name", "a b", "a/b"};
    for (size_t i = 0; i < 3; i++)
        assert_false(shim_http_host_allowed(odd[i], odd, 3));
}

/* "//host/x" becomes "/host/x" (no network-path Location can be built from a target). */
static void target_collapse(void **state)
{
    (void)state;
    char a[] = "//evil.example/dir", b[] = "////x//y", c[] = "/a//b", d[] = "/", e[] = "//";
    shim_http_target_collapse(a);
    shim_http_target_collapse(b);
    shim_http_target_collapse(c);
    shim_http_target_collapse(d);
    shim_http_target_collapse(e);
    assert_string_equal(a, "/evil.example/dir");
    assert_string_equal(b, "/x//y");
    assert_string_equal(c, "/a//b");
    assert_string_equal(d, "/");
    assert_string_equal(e, "/");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(normalise_plain),
        cmocka_unit_test(normalise_hostile),
        cmocka_unit_test(normalise_lengths),
        cmocka_unit_test(routes),
        cmocka_unit_test(range),
        cmocka_unit_test(listen_parse),
        cmocka_unit_test(escaping),
        cmocka_unit_test(host_rule),
        cmocka_unit_test(target_collapse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_egress: the address rule's classifier (every range, IPv4-mapped,
 * IPv4-compatible, NAT64 and 6to4 forms), the allow_host matcher, and a
 * policy's configured origins (src/fetch/egress.c).
 */
#include "upstreamfs/egress.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

/* The refusal of an address in text form, through the sockaddr path as fetch.c's socket check sees it. */
static const char *refusal(const char *ip)
{
    struct sockaddr_in in = {.sin_family = AF_INET};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    bool is_ip = false;
    const char *text = egress_text_refusal(ip, &is_ip);
    assert_true(is_ip);
    const char *sock;
    if (inet_pton(AF_INET, ip, &in.sin_addr) == 1) {
        sock = egress_addr_refusal((struct sockaddr *)&in, sizeof(in));
    } else {
        assert_int_equal(inet_pton(AF_INET6, ip, &in6.sin6_addr), 1);
        sock = egress_addr_refusal((struct sockaddr *)&in6, sizeof(in6));
    }
    assert_true(text == sock); /* one classifier behind both */
    return text;
}

static void expect_refused(const char *ip, const char *rule)
{
    const char *why = refusal(ip);
    if (!why || !strstr(why, rule))
        fail_msg("%s: expected a refusal naming \"%s\", got %s", ip, rule, why ? why : "none");
}

static void expect_public(const char *ip)
{
    const char *why = refusal(ip);
    if (why)
        fail_msg("%s: expected public, refused as %s", ip, why);
}

static void test_ipv4_ranges(void **state)
{
    (void)state;
    expect_refused("127.0.0.1", "loopback");
    expect_refused("127.255.255.254", "loopback");
    expect_refused("0.0.0.0", "0.0.0.0/8");
    expect_refused("0.1.2.3", "0.0.0.0/8");
    expect_refused("169.254.169.254", "link-local");
    expect_refused("169.254.0.1", "link-local");
    expect_refused("10.0.0.1", "RFC 1918");
    expect_refused("10.255.255.255", "RFC 1918");
    expect_refused("172.16.0.1", "RFC 1918");
    expect_refused("172.31.255.255", "RFC 1918");
    expect_refused("192.168.1.1", "RFC 1918");
    expect_refused("100.64.0.1", "100.64.0.0/10");
    expect_refused("100.127.255.255", "100.64.0.0/10");
    expect_refused("224.0.0.1", "multicast");
    expect_refused("239.255.255.250", "multicast");
    expect_refused("255.255.255.255", "broadcast");
    /* The neighbours of each range are public. */
    expect_public("1.1.1.1");
    expect_public("8.8.8.8");
    expect_public("11.0.0.1");
    expect_public("126.255.255.255");
    expect_public("128.0.0.1");
    expect_public("169.253.255.255");
    expect_public("169.255.0.1");
    expect_public("172.15.255.255");
    expect_public("172.32.0.1");
    expect_public("192.167.255.255");
    expect_public("192.169.0.1");
    expect_public("100.63.255.255");
    expect_public("100.128.0.1");
    expect_public("223.255.255.255");
}

static void test_ipv6_ranges(void **state)
{
    (void)state;
    expect_refused("::1", "loopback");
    expect_refused("::", "unspecified");
    expect_refused("fe80::1", "link-local");
    expect_refused("febf::1", "link-local");
    expect_refused("fc00::1", "unique-local");
    expect_refused("fd12:3456::1", "unique-local");
    expect_refused("ff02::1", "multicast");
    expect_refused("fec0::1", "site-local");
    expect_public("2001:db8::1");
    expect_public("2606:4700::1111");
    expect_public("fbff::1");
    expect_public("fe00::1");
    expect_public("::2:0:0:1"); /* not the IPv4-compatible form: bytes 0..11 not all zero */
}

static void test_ipv4_in_ipv6(void **state)
{
    (void)state;
    /* IPv4-mapped. */
    expect_refused("::ffff:127.0.0.1", "loopback");
    expect_refused("::ffff:169.254.169.254", "link-local");
    expect_refused("::ffff:10.1.2.3", "RFC 1918");
    expect_refused("::ffff:100.64.1.1", "100.64.0.0/10");
    expect_refused("::ffff:0.0.0.0", "0.0.0.0/8");
    expect_refused("::ffff:224.0.0.1", "multicast");
    expect_public("::ffff:8.8.8.8");
    /* NAT64 (64:ff9b::/96). */
    expect_refused("64:ff9b::127.0.0.1", "loopback");
    expect_refused("64:ff9b::a9fe:a9fe", "link-local"); /* 169.254.169.254 */
    expect_refused("64:ff9b::192.168.0.1", "RFC 1918");
    expect_refused("64:ff9b::172.16.0.1", "RFC 1918");
    expect_public("64:ff9b::8.8.8.8");
    /* IPv4-compatible and 6to4. */
    expect_refused("::127.0.0.1", "loopback");
    expect_refused("::10.0.0.1", "RFC 1918");
    expect_refused("2002:7f00:1::", "loopback");
    expect_refused("2002:a9fe:a9fe::1", "link-local");
    expect_public("2002:808:808::1");
}

static void test_text_forms(void **state)
{
    bool is_ip = true;
    (void)state;
    assert_null(egress_text_refusal("example.com", &is_ip));
    assert_false(is_ip);
    assert_non_null(egress_text_refusal("[::1]", &is_ip)); /* a URL's host form */
    assert_true(is_ip);
    assert_null(egress_text_refusal("", &is_ip));
    assert_false(is_ip);
    struct sockaddr sa = {.sa_family = AF_UNIX};
    assert_non_null(egress_addr_refusal(&sa, sizeof(sa)));
}

static void test_host_match(void **state)
{
    (void)state;
    assert_true(egress_host_match("127.0.0.1", "127.0.0.1"));
    assert_false(egress_host_match("127.0.0.1", "127.0.0.2"));
    assert_true(egress_host_match("Mirror.LAN", "mirror.lan"));
    assert_true(egress_host_match("mirror.lan", "MIRROR.lan."));
    assert_false(egress_host_match("mirror.lan", "xmirror.lan"));
    assert_false(egress_host_match("mirror.lan", "a.mirror.lan"));
    assert_true(egress_host_match("*.corp", "a.corp"));
    assert_true(egress_host_match("*.corp", "x.y.corp"));
    assert_false(egress_host_match("*.corp", "corp"));
    assert_false(egress_host_match("*.corp", "acorp"));
    assert_false(egress_host_match("*.corp", "a.corp.evil"));
    assert_true(egress_host_match("::1", "[::1]"));
    assert_true(egress_host_match("[::1]", "[::1]"));
    assert_false(egress_host_match("localhost", "127.0.0.1")); /* names, not addresses */
    assert_false(egress_host_match("*.", "a."));
    assert_false(egress_host_match("*", "a"));
    assert_false(egress_host_match("", ""));
}

static void test_policy(void **state)
{
    (void)state;
    char *allow[] = {"localhost", "*.lan", NULL};
    struct egress_policy *p = egress_policy_new(allow, false);
    assert_non_null(p);
    assert_int_equal(egress_policy_trust(p, "http://Reg.Example:5000/v2/"), 0);
    assert_true(egress_origin_configured(p, "http://reg.example:5000/x"));
    assert_false(egress_origin_configured(p, "http://reg.example:5001/x"));
    assert_false(egress_origin_configured(p, "https://reg.example:5000/x"));
    assert_false(egress_origin_configured(p, "http://other:5000/x"));
    assert_true(egress_host_configured(p, "reg.example"));
    assert_false(egress_host_configured(p, "reg.example.evil"));
    assert_true(egress_host_allowed(p, "localhost"));
    assert_true(egress_host_allowed(p, "box.lan"));
    assert_false(egress_host_allowed(p, "127.0.0.1"));
    assert_false(egress_pass_credentials(p));
    assert_int_equal(egress_policy_trust(p, "not a url"), -EINVAL);
    /* The default port is the scheme's. */
    assert_int_equal(egress_policy_trust(p, "https://ecr.example/"), 0);
    assert_true(egress_origin_configured(p, "https://ecr.example:443/v2/"));
    assert_int_equal(egress_policy_trust(p, "http://[::1]:8080/"), 0);
    assert_true(egress_host_configured(p, "[::1]"));
    /* Many run-time origins: the first (the proxy's url) is kept. */
    for (int i = 0; i < 40; i++) {
        char u[64];
        snprintf(u, sizeof(u), "http://h%d.example/", i);
        assert_int_equal(egress_policy_trust(p, u), 0);
    }
    assert_true(egress_origin_configured(p, "http://reg.example:5000/"));
    assert_true(egress_origin_configured(p, "http://h39.example/"));
    struct egress_policy *r = egress_policy_ref(p);
    egress_policy_unref(p);
    assert_true(egress_origin_configured(r, "http://h39.example/"));
    egress_policy_unref(r);
    p = egress_policy_new(NULL, true);
    assert_true(egress_pass_credentials(p));
    assert_false(egress_host_allowed(p, "x"));
    egress_policy_unref(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4_ranges), cmocka_unit_test(test_ipv6_ranges),
        cmocka_unit_test(test_ipv4_in_ipv6), cmocka_unit_test(test_text_forms),
        cmocka_unit_test(test_host_match),  cmocka_unit_test(test_policy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

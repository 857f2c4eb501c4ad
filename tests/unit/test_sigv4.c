/*
 * test_sigv4: the AWS SigV4 test-suite vectors (the
 * original 2015 suite: AKIDEXAMPLE, us-east-1, service "service",
 * 20150830T123600Z), the three ECR vectors recomputed there, and the
 * canonicalisation rules one by one (path normalisation and encoding, query
 * ordering and encoding, header trimming, folding and sorting, the Host
 * value), plus the inputs the signer must refuse.
 *
 * Pinned signatures are exactly the reference's; the suite's other cases
 * (get-utf8, get-space, normalize-path/...) have no signature in the
 * reference, so their canonical URIs are checked instead.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "upstreamfs/sigv4.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#define AKID   "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define HOST   "https://example.amazonaws.com"
#define T_2015 ((time_t)1440938160) /* 20150830T123600Z */
#define STS_TOKEN                                                                                  \
    "AQoDYXdzEPT//////////"                                                                        \
    "wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwth" \
    "A"                                                                                            \
    "x7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvl" \
    "Rd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX" \
    "9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="

static struct sigv4_request suite_req(const char *method, const char *url)
{
    return (struct sigv4_request){.method = method,
                                  .url = url,
                                  .region = "us-east-1",
                                  .service = "service",
                                  .when = T_2015,
                                  .access_key_id = AKID,
                                  .secret_access_key = SECRET};
}

/* Signs req and checks SignedHeaders and Signature against the reference. */
static void expect_signature(const struct sigv4_request *req, const char *signed_headers,
                             const char *signature)
{
    struct sigv4_signature sig;
    char want[512];
    assert_int_equal(sigv4_sign(req, &sig), 0);
    snprintf(want, sizeof(want),
             "AWS4-HMAC-SHA256 Credential=%s/%.8s/%s/%s/aws4_request, SignedHeaders=%s, "
             "Signature=%s",
             req->access_key_id, sig.amz_date, req->region, req->service, signed_headers,
             signature);
    assert_string_equal(sig.signed_headers, signed_headers);
    assert_string_equal(sig.authorization, want);
    sigv4_signature_clear(&sig);
}

static void test_get_vanilla(void **state)
{
    (void)state;
    struct sigv4_request r = suite_req("GET", HOST "/");
    struct sigv4_signature sig;
    expect_signature(&r, "host;x-amz-date",
                     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    assert_int_equal(sigv4_sign(&r, &sig), 0);
    assert_string_equal(sig.amz_date, "20150830T123600Z");
    assert_string_equal(sig.host, "example.amazonaws.com");
    sigv4_signature_clear(&sig);
}

/* The .creq of get-vanilla, and its hash, the last line of the .sts. */
static void test_get_vanilla_canonical(void **state)
{
    (void)state;
    struct sigv4_request r = suite_req("GET", HOST "/");
    char *creq = NULL, *sh = NULL, hex[65];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    assert_int_equal(sigv4_canonical_request(&r, "20150830T123600Z", &creq, &sh), 0);
    assert_string_equal(creq, "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z"
                              "\n\nhost;x-amz-date\n"
                              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_string_equal(sh, "host;x-amz-date");
    assert_int_equal(EVP_Digest(creq, strlen(creq), md, &mdlen, EVP_sha256(), NULL), 1);
    for (unsigned i = 0; i < mdlen; i++)
        sprintf(hex + 2 * i, "%02x", md[i]);
    assert_string_equal(hex, "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
    free(creq);
    free(sh);
}

static void test_query_order_key_case(void **state)
{
    (void)state;
    struct sigv4_request r = suite_req("GET", HOST "/?Param2=value2&Param1=value1");
    expect_signature(&r, "host;x-amz-date",
                     "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

static void test_header_value_trim(void **state)
{
    (void)state;
    struct sigv4_header h[] = {{"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}};
    struct sigv4_request r = suite_req("GET", HOST "/");
    r.headers = h;
    r.n_headers = 2;
    expect_signature(&r, "host;my-header1;my-header2;x-amz-date",
                     "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736");
}

/* post-vanilla; post-sts-header-after is the same request with the token appended unsigned. */
static void test_post_vanilla(void **state)
{
    (void)state;
    struct sigv4_request r = suite_req("POST", HOST "/");
    expect_signature(&r, "host;x-amz-date",
                     "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}

static void test_post_form_urlencoded(void **state)
{
    (void)state;
    struct sigv4_header h[] = {{"Content-Type", "application/x-www-form-urlencoded"}};
    struct sigv4_request r = suite_req("POST", HOST "/");
    r.headers = h;
    r.n_headers = 1;
    r.payload = "Param1=value1";
    r.payload_len = 13;
    expect_signature(&r, "content-type;host;x-amz-date",
                     "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a");
}

/* post-sts-header-before: the session token is signed. */
static void test_post_sts_header_before(void **state)
{
    (void)state;
    struct sigv4_request r = suite_req("POST", HOST "/");
    r.session_token = STS_TOKEN;
    expect_signature(&r, "host;x-amz-date;x-amz-security-token",
                     "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead");
}

static struct sigv4_request ecr_req(const char *service, const char *region, time_t when,
                                    const struct sigv4_header *h)
{
    struct sigv4_request r = suite_req("POST", "http://127.0.0.1:18080/");
    r.service = service;
    r.region = region;
    r.when = when;
    r.headers = h;
    r.n_headers = 2;
    r.payload = "{}";
    r.payload_len = 2;
    return r;
}

/* ECR-specific vectors (20261127T060750Z is 1795759670). */
static void test_ecr_vectors(void **state)
{
    (void)state;
    struct sigv4_header priv[] = {
        {"Content-Type", "application/x-amz-json-1.1"},
        {"X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"}};
    struct sigv4_header pub[] = {{"Content-Type", "application/x-amz-json-1.1"},
                                 {"X-Amz-Target", "SpencerFrontendService.GetAuthorizationToken"}};
    struct sigv4_request r = ecr_req("ecr", "us-east-1", 1795759670, priv);
    char date[SIGV4_AMZ_DATE_LEN + 1];
    assert_int_equal(sigv4_amz_date(1795759670, date, sizeof(date)), 0);
    assert_string_equal(date, "20261127T060750Z");
    expect_signature(&r, "content-type;host;x-amz-date;x-amz-target",
                     "1198e22e18507deabaa09cfceccb63311bbc6733fbf3971c3b800579e61fd1ad");
    r = ecr_req("ecr", "eu-west-1", 1795759671, priv);
    expect_signature(&r, "content-type;host;x-amz-date;x-amz-target",
                     "589b8d14116079c734b832dbd58ff0701f4530726201f2e7a49b092d85305f25");
    r = ecr_req("ecr-public", "us-east-1", 1795759672, pub);
    r.session_token = "FAKESESSIONTOKEN";
    expect_signature(&r, "content-type;host;x-amz-date;x-amz-security-token;x-amz-target",
                     "d8e5673729023b892b1f02d03f8bf3d0fb1f5e9184aa995eff95617c0adcec71");
}

/* The second and third lines (URI and query) of the canonical request of url. */
static void canonical_lines(const char *url, char *uri, char *query, size_t n)
{
    struct sigv4_request r = suite_req("GET", url);
    char *creq = NULL, *sh = NULL;
    assert_int_equal(sigv4_canonical_request(&r, "20150830T123600Z", &creq, &sh), 0);
    char *l1 = strchr(creq, '\n') + 1, *l2 = strchr(l1, '\n') + 1, *l3 = strchr(l2, '\n');
    snprintf(uri, n, "%.*s", (int)(l2 - 1 - l1), l1);
    snprintf(query, n, "%.*s", (int)(l3 - l2), l2);
    free(creq);
    free(sh);
}

static void test_canonical_uri(void **state)
{
    (void)state;
    static const struct {
        const char *path, *want;
    } cases[] = {
        {"", "/"},
        {"/", "/"},
        {"//", "/"},                              /* normalize-path/get-slash */
        {"//example//", "/example/"},             /* get-slashes */
        {"/./", "/"},                             /* get-slash-dot-slash */
        {"/./example", "/example"},               /* get-slash-pointless-dot */
        {"/example/..", "/"},                     /* get-relative */
        {"/example1/example2/../..", "/"},        /* get-relative-relative */
        {"/../../x", "/x"},                       /* ".." never climbs above the root */
        {"/a/b/.", "/a/b/"},                      /* RFC 3986: a final "." leaves a '/' */
        {"/example space/", "/example%20space/"}, /* get-space */
        {"/\xe1\x88\xb4", "/%E1%88%B4"},          /* get-utf8 */
        {"/-._~0aZ", "/-._~0aZ"},                 /* get-unreserved */
        {"/a%20b", "/a%2520b"},                   /* non-S3: encoded again */
        {"/a:b@c!$&'()*+,;=", "/a%3Ab%40c%21%24%26%27%28%29%2A%2B%2C%3B%3D"},
    };
    char uri[512], query[512], url[512];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(url, sizeof(url), HOST "%s", cases[i].path);
        canonical_lines(url, uri, query, sizeof(uri));
        if (strcmp(uri, cases[i].want) != 0)
            fail_msg("path \"%s\": got \"%s\", want \"%s\"", cases[i].path, uri, cases[i].want);
        assert_string_equal(query, "");
    }
}

static void test_canonical_query(void **state)
{
    (void)state;
    static const struct {
        const char *query, *want;
    } cases[] = {
        {"Param1=value1", "Param1=value1"},
        {"Param2=value2&Param1=value1", "Param1=value1&Param2=value2"}, /* order-key */
        {"Param1=value2&Param1=Value1", "Param1=Value1&Param1=value2"}, /* order-value */
        {"a=1&B=2", "B=2&a=1"},                                         /* byte order */
        {"Param1", "Param1="},                                          /* no '=' */
        {"Param1=", "Param1="},
        {"a=1&&b=2&", "a=1&b=2"}, /* empty parts dropped */
        {"-._~0aZ=-._~0aZ", "-._~0aZ=-._~0aZ"},
        {"\xe1\x88\xb4=bar", "%E1%88%B4=bar"}, /* get-vanilla-utf8-query */
        {"%7e=%2a%2F", "~=%2A%2F"},            /* decoded, then encoded upper-case */
        {"a=b+c d", "a=b%2Bc%20d"},            /* '+' is a plus, space is %20 */
        {"a=%zz%4", "a=%25zz%254"},            /* a stray '%' stands for itself */
        {"x=1#frag", "x=1"},
    };
    char uri[512], query[512], url[512];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(url, sizeof(url), HOST "/?%s", cases[i].query);
        canonical_lines(url, uri, query, sizeof(uri));
        if (strcmp(query, cases[i].want) != 0)
            fail_msg("query \"%s\": got \"%s\", want \"%s\"", cases[i].query, query, cases[i].want);
        assert_string_equal(uri, "/");
    }
}

static char *canonical_of(const char *url, const struct sigv4_header *h, size_t n)
{
    struct sigv4_request r = suite_req("GET", url);
    char *creq = NULL, *sh = NULL;
    r.headers = h;
    r.n_headers = n;
    assert_int_equal(sigv4_canonical_request(&r, "20150830T123600Z", &creq, &sh), 0);
    free(sh);
    return creq;
}

static void test_canonical_headers(void **state)
{
    (void)state;
    /* get-header-key-duplicate: repeated names fold in the order given. */
    struct sigv4_header dup[] = {
        {"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}};
    char *c = canonical_of(HOST "/", dup, 3);
    assert_non_null(strstr(c, "\nmy-header1:value2,value2,value1\n"));
    free(c);
    /* get-header-value-order and case: values keep their case, names are lowered and sorted. */
    struct sigv4_header mixed[] = {
        {"ZZ", "Last"}, {"a-First", "\t x \t y  "}, {"My-Header1", "VALUE1"}};
    c = canonical_of(HOST "/", mixed, 3);
    assert_non_null(strstr(c, "\n\na-first:x y\nhost:example.amazonaws.com\nmy-header1:VALUE1\n"
                              "x-amz-date:20150830T123600Z\nzz:Last\n\n"
                              "a-first;host;my-header1;x-amz-date;zz\n"));
    free(c);
    /* An empty value stays an empty value. */
    struct sigv4_header empty[] = {{"X-Empty", "   "}};
    c = canonical_of(HOST "/", empty, 1);
    assert_non_null(strstr(c, "\nx-empty:\n"));
    free(c);
}

static void test_host_value(void **state)
{
    (void)state;
    static const struct {
        const char *url, *host;
    } cases[] = {
        {"https://Example.AmazonAWS.com:443/", "example.amazonaws.com"},
        {"http://example.amazonaws.com:80", "example.amazonaws.com"},
        {"https://example.amazonaws.com:80/", "example.amazonaws.com:80"},
        {"http://127.0.0.1:18080/", "127.0.0.1:18080"},
        {"http://[::1]:8080/x", "[::1]:8080"},
        {"http://[::1]/", "[::1]"},
        {"HTTP://h:/", "h"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sigv4_request r = suite_req("GET", cases[i].url);
        struct sigv4_signature sig;
        assert_int_equal(sigv4_sign(&r, &sig), 0);
        assert_string_equal(sig.host, cases[i].host);
        sigv4_signature_clear(&sig);
    }
}

/* The order in which the caller lists headers does not change the signature. */
static void test_header_order_irrelevant(void **state)
{
    (void)state;
    struct sigv4_header a[] = {{"My-Header2", " \"a   b   c\""}, {"my-header1", "value1 "}};
    struct sigv4_request r = suite_req("GET", HOST "/");
    r.headers = a;
    r.n_headers = 2;
    expect_signature(&r, "host;my-header1;my-header2;x-amz-date",
                     "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736");
}

static void test_refusals(void **state)
{
    (void)state;
    struct sigv4_signature sig;
    struct sigv4_request r;
    static const char *const bad_urls[] = {"ftp://example.amazonaws.com/",
                                           "example.amazonaws.com/",
                                           "https:///path",
                                           "https://user:pw@example.amazonaws.com/",
                                           "https://exa mple.com/",
                                           "https://example.com:12x/",
                                           "https://:443/"};
    for (size_t i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++) {
        r = suite_req("GET", bad_urls[i]);
        assert_int_equal(sigv4_sign(&r, &sig), -EINVAL);
    }
    static const struct sigv4_header bad_headers[][1] = {
        {{"Host", "evil.example"}},
        {{"X-Amz-Date", "20000101T000000Z"}},
        {{"Authorization", "x"}},
        {{"x-amz-security-token", "t"}},
        {{"My Header", "v"}},
        {{"My:Header", "v"}},
        {{"", "v"}},
        {{"X-Ok", "line1\r\nInjected: yes"}},
        {{"X-Ok", "line1\nmore"}},
        {{"X-Ok", NULL}},
    };
    for (size_t i = 0; i < sizeof(bad_headers) / sizeof(bad_headers[0]); i++) {
        r = suite_req("GET", HOST "/");
        r.headers = bad_headers[i];
        r.n_headers = 1;
        assert_int_equal(sigv4_sign(&r, &sig), -EINVAL);
    }
    r = suite_req("GET", HOST "/");
    r.region = "us-east-1/x";
    assert_int_equal(sigv4_sign(&r, &sig), -EINVAL);
    r = suite_req("GET", HOST "/");
    r.access_key_id = "AKID, Signature=x";
    assert_int_equal(sigv4_sign(&r, &sig), -EINVAL);
    r = suite_req("GET", HOST "/");
    r.session_token = "tok\r\nX: y";
    assert_int_equal(sigv4_sign(&r, &sig), -EINVAL);
    r = suite_req("GET", HOST "/");
    r.service = "";
    assert_int_equal(sigv4_sign(&r, &sig), -EINVAL);
    r = suite_req("G ET", HOST "/");
    assert_int_equal(sigv4_sign(&r, &sig), -EINVAL);
    r = suite_req("GET", HOST "/");
    r.payload_len = 3; /* a length without a payload */
    assert_int_equal(sigv4_sign(&r, &sig), -EINVAL);
}

/* A canonical request beyond the cap is refused, not grown without bound. */
static void test_canonical_cap(void **state)
{
    (void)state;
    size_t n = SIGV4_CANONICAL_MAX;
    char *url = malloc(n + 64);
    struct sigv4_signature sig;
    strcpy(url, HOST "/");
    memset(url + strlen(url), 'a', n);
    url[strlen(HOST) + 1 + n] = '\0';
    struct sigv4_request r = suite_req("GET", url);
    assert_int_equal(sigv4_sign(&r, &sig), -E2BIG);
    /* Encoding triples a byte: a third of the cap in spaces is too much as well. */
    memset(url + strlen(HOST) + 1, ' ', n / 3 + 10);
    url[strlen(HOST) + 1 + n / 3 + 10] = '\0';
    assert_int_equal(sigv4_sign(&r, &sig), -E2BIG);
    free(url);
}

static void test_sign_headers_list(void **state)
{
    (void)state;
    struct sigv4_header h[] = {{"Content-Type", "application/x-amz-json-1.1"},
                               {"X-Amz-Target", "T.Op"}};
    struct sigv4_request r = ecr_req("ecr", "us-east-1", 1795759670, h);
    r.session_token = "TOKEN";
    struct curl_slist *l = curl_slist_append(NULL, "Accept: */*");
    assert_int_equal(sigv4_sign_headers(&r, &l), 0);
    const char *want_prefix[] = {"Accept: */*",
                                 "Host: 127.0.0.1:18080",
                                 "Content-Type: application/x-amz-json-1.1",
                                 "X-Amz-Target: T.Op",
                                 "X-Amz-Date: 20261127T060750Z",
                                 "X-Amz-Security-Token: TOKEN",
                                 "Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261127/"
                                 "us-east-1/ecr/aws4_request, SignedHeaders=content-type;host;"
                                 "x-amz-date;x-amz-security-token;x-amz-target, Signature="};
    size_t i = 0;
    for (struct curl_slist *p = l; p; p = p->next, i++) {
        assert_true(i < sizeof(want_prefix) / sizeof(want_prefix[0]));
        assert_memory_equal(p->data, want_prefix[i], strlen(want_prefix[i]));
    }
    assert_int_equal(i, 7);
    /* A refused request leaves the list as it was. */
    r.region = "";
    assert_int_equal(sigv4_sign_headers(&r, &l), -EINVAL);
    i = 0;
    for (struct curl_slist *p = l; p; p = p->next)
        i++;
    assert_int_equal(i, 7);
    curl_slist_free_all(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_vanilla),
        cmocka_unit_test(test_get_vanilla_canonical),
        cmocka_unit_test(test_query_order_key_case),
        cmocka_unit_test(test_header_value_trim),
        cmocka_unit_test(test_post_vanilla),
        cmocka_unit_test(test_post_form_urlencoded),
        cmocka_unit_test(test_post_sts_header_before),
        cmocka_unit_test(test_ecr_vectors),
        cmocka_unit_test(test_canonical_uri),
        cmocka_unit_test(test_canonical_query),
        cmocka_unit_test(test_canonical_headers),
        cmocka_unit_test(test_host_value),
        cmocka_unit_test(test_header_order_irrelevant),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_canonical_cap),
        cmocka_unit_test(test_sign_headers_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

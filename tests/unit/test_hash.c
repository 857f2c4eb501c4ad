/*
 * test_hash: the checksum forms upstreams publish and streaming verification.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "upstreamfs/hash.h"

#include <errno.h>
#include <string.h>

/* sha256("abc"), sha1("abc"), sha512("abc") */
#define ABC256 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define ABC1   "a9993e364706816aba3e25717850c26c9cd0d89d"
#define ABC512_B64                                                                                 \
    "3a81oZNherrMQXNJriBBMRLm+k6JqX6iCp7u5ktV05ohkpkqJ0/BqDa6PCOj/uu9RU1EI2Q86A4qmslPpUyknw=="

#define ABC256_B64 "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="

/* RFC 9530 Repr-Digest: sha-256 preferred, sha-512 taken, anything else refused or ignored */
static void repr_digest(void **state)
{
    (void)state;
    struct hash_expect e;
    char buf[80];
    assert_int_equal(hash_repr_digest_parse("sha-256=:" ABC256_B64 ":", &e), 0);
    assert_int_equal(e.algo, HASH_SHA256);
    assert_string_equal(e.hex, ABC256);
    assert_int_equal(hash_repr_digest_parse("sha-512=:" ABC512_B64 ":, sha-256=:" ABC256_B64 ":",
                                            &e),
                     0);
    assert_int_equal(e.algo, HASH_SHA256);
    assert_int_equal(hash_repr_digest_parse("md5=:AAAA:, sha-512=:" ABC512_B64 ":", &e), 0);
    assert_int_equal(e.algo, HASH_SHA512);
    assert_int_equal(hash_repr_digest_parse("md5=:AAAA:, unixsum=42", &e), -ENOENT);
    assert_int_equal(hash_repr_digest_parse("sha-256=:AAAA:", &e), -EINVAL);
    assert_int_equal(hash_repr_digest_parse("sha-256=:" ABC256_B64, &e), -EINVAL);
    assert_int_equal(hash_repr_digest_format(ABC256, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "sha-256=:" ABC256_B64 ":");
    assert_int_equal(hash_repr_digest_format("xyz", buf, sizeof(buf)), -EINVAL);

    /* an expectation given after the start is checked at the end */
    struct hash_ctx *h = hash_begin(NULL);
    assert_non_null(h);
    assert_int_equal(hash_repr_digest_parse("sha-256=:" ABC256_B64 ":", &e), 0);
    assert_int_equal(hash_expect_late(h, &e), 0);
    assert_int_equal(hash_expect_late(h, &e), -EEXIST);
    hash_update(h, "abd", 3);
    assert_int_equal(hash_end(h, buf), -EBADMSG);
    h = hash_begin(NULL);
    assert_int_equal(hash_expect_late(h, &e), 0);
    hash_update(h, "abc", 3);
    assert_int_equal(hash_end(h, buf), 0);
}

static void parse_forms(void **state)
{
    (void)state;
    struct hash_expect e;
    assert_int_equal(hash_expect_parse("sha256:" ABC256, &e), 0);
    assert_int_equal(e.algo, HASH_SHA256);
    assert_string_equal(e.hex, ABC256);
    assert_int_equal(hash_expect_parse(ABC1 "  demo-1.0.jar\n", &e), 0);
    assert_int_equal(e.algo, HASH_SHA1);
    assert_int_equal(hash_expect_parse("sha512-" ABC512_B64, &e), 0);
    assert_int_equal(e.algo, HASH_SHA512);
    assert_int_equal(strncmp(e.hex, "ddaf35a193617aba", 16), 0);
    assert_int_equal(hash_expect_parse("sha256:xyz", &e), -EINVAL);
    assert_int_equal(hash_expect_parse("", &e), -EINVAL);
    assert_int_equal(hash_expect_parse("md5:abc", &e), -EINVAL);
    assert_int_equal(hash_expect_parse("sha512-!!!", &e), -EINVAL);
}

static void streaming_verify(void **state)
{
    (void)state;
    struct hash_expect e;
    char hex[65];
    assert_int_equal(hash_expect_parse(ABC1, &e), 0);
    struct hash_ctx *h = hash_begin(&e);
    hash_update(h, "a", 1);
    hash_update(h, "bc", 2);
    assert_int_equal(hash_end(h, hex), 0);
    assert_string_equal(hex, ABC256);
    h = hash_begin(&e);
    hash_update(h, "abd", 3);
    assert_int_equal(hash_end(h, hex), -EBADMSG);
    assert_true(hash_is_sha256_hex(ABC256));
    assert_false(hash_is_sha256_hex("ABC"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_forms),
        cmocka_unit_test(streaming_verify),
        cmocka_unit_test(repr_digest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

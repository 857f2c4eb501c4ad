/*
 * fuzz_hash_expect: hash_expect_parse on a published checksum (Maven .sha1
 * and .sha256 sidecars, Helm digests, npm SRI strings, OCI digests), and
 * hash_repr_digest_parse on the same text as a Repr-Digest header.
 *
 * Properties: an accepted expectation names an algorithm and exactly its
 * number of lower-case hex digits; formatting it and parsing that again
 * gives the same expectation; a hash context built from it finishes.
 */
#include "fuzz.h"

#include "upstreamfs/hash.h"

#include <errno.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size);
    struct hash_expect e;
    int rc = hash_expect_parse(s, &e);
    FUZZ_CHECK(rc == 0 || rc == -EINVAL);
    if (rc == 0) {
        size_t want = e.algo == HASH_SHA1 ? 40 : e.algo == HASH_SHA256 ? 64 : 128;
        FUZZ_CHECK(e.algo == HASH_SHA1 || e.algo == HASH_SHA256 || e.algo == HASH_SHA512);
        FUZZ_CHECK(strlen(e.hex) == want);
        FUZZ_CHECK(strspn(e.hex, "0123456789abcdef") == want);

        char buf[16 + HASH_HEX_MAX];
        struct hash_expect again;
        hash_expect_format(&e, buf, sizeof(buf));
        FUZZ_CHECK(hash_expect_parse(buf, &again) == 0);
        FUZZ_CHECK(again.algo == e.algo && strcmp(again.hex, e.hex) == 0);

        struct hash_ctx *h = hash_begin(&e);
        FUZZ_CHECK(h != NULL);
        hash_update(h, data, size);
        char hex[65];
        int end = hash_end(h, hex);
        FUZZ_CHECK(end == 0 || end == -EBADMSG);
        FUZZ_CHECK(hash_is_sha256_hex(hex));
    }
    /* the same text as a Repr-Digest header's value */
    rc = hash_repr_digest_parse(s, &e);
    FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOENT);
    if (rc == 0) {
        FUZZ_CHECK(e.algo == HASH_SHA256 || e.algo == HASH_SHA512);
        FUZZ_CHECK(strlen(e.hex) == (e.algo == HASH_SHA256 ? 64u : 128u));
        char again[80];
        if (e.algo == HASH_SHA256)
            FUZZ_CHECK(hash_repr_digest_format(e.hex, again, sizeof(again)) == 0);
    }
    free(s);
    return 0;
}

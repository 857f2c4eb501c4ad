/*
 * hash: streaming digests over OpenSSL's EVP interface, and the checksum
 * forms upstreams publish ("sha256:<hex>", bare hex, SRI "sha512-<base64>").
 *
 * A struct hash_ctx always computes sha256 (the store's address); it also
 * computes the algorithm of an expectation when that is another one, so a
 * download is verified in the same pass that addresses it.
 */
#ifndef UPSTREAMFS_HASH_H
#define UPSTREAMFS_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HASH_HEX_MAX 129 /* sha512 hex + NUL */

enum hash_algo { HASH_NONE, HASH_SHA1, HASH_SHA256, HASH_SHA512 };

/* An expected checksum: algorithm plus lower-case hex. */
struct hash_expect {
    enum hash_algo algo;
    char hex[HASH_HEX_MAX];
};

struct hash_ctx;

/* expect may be NULL or algo HASH_NONE. Returns NULL on allocation failure. */
struct hash_ctx *hash_begin(const struct hash_expect *expect);
void hash_update(struct hash_ctx *h, const void *data, size_t len);
/*
 * Finishes: writes the sha256 hex to sha256_hex (65 bytes) and returns 0 if
 * the expectation (if any) matched, -EBADMSG if not. Frees h.
 */
int hash_end(struct hash_ctx *h, char sha256_hex[65]);
void hash_abort(struct hash_ctx *h);

/* sha256 of a buffer, as hex. */
void hash_sha256_hex(const void *data, size_t len, char out[65]);

/*
 * Parses "sha256:<hex>", "sha1:<hex>", "sha512:<hex>", SRI "sha512-<b64>",
 * or bare hex whose length names the algorithm (40 sha1, 64 sha256, 128
 * sha512). Trailing text after whitespace (Maven's "<hex>  file.jar") is
 * ignored. Returns 0 or -EINVAL.
 */
int hash_expect_parse(const char *s, struct hash_expect *out);
/*
 * A Repr-Digest header's value (RFC 9530: "sha-256=:<base64>:", members separated by commas):
 * its sha-256, else its sha-512, as an expectation. 0; -ENOENT when it names neither;
 * -EINVAL for a malformed sha-256 or sha-512 member.
 */
int hash_repr_digest_parse(const char *value, struct hash_expect *out);
/* "sha-256=:<base64>:" of a sha256 given as hex, into out. 0, -EINVAL or -ENAMETOOLONG. */
int hash_repr_digest_format(const char *sha256_hex, char *out, size_t len);
/*
 * Gives h, which began with no expectation and has hashed nothing yet, the expectation
 * hash_end checks (a digest the response's headers stated). 0, -EEXIST when h has one
 * already, -ENOMEM.
 */
int hash_expect_late(struct hash_ctx *h, const struct hash_expect *expect);
/* Formats as "algo:hex" into buf. */
void hash_expect_format(const struct hash_expect *e, char *buf, size_t len);

/* Lower-case hex of n bytes into out (2n + 1 bytes). */
void hash_hex_encode(const unsigned char *in, size_t n, char *out);
/* The value of one hex digit (either case), or -1. */
int hash_hex_value(char c);

/* True for 64 lower-case hex characters. */
bool hash_is_sha256_hex(const char *s);

/* FNV-1a (64-bit) of len bytes: for hash tables and validators, never for security. */
uint64_t hash_fnv1a(const void *data, size_t len);

#endif

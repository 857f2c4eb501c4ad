/*
 * hash: EVP-based streaming digests. The sha256 context is always live; a
 * second context runs only when the expectation is another algorithm.
 */
#include "upstreamfs/hash.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hash_ctx {
    EVP_MD_CTX *sha256;
    EVP_MD_CTX *other; /* expectation's algorithm when not sha256 */
    struct hash_expect expect;
};

static const EVP_MD *algo_md(enum hash_algo a)
{
    switch (a) {
    case HASH_SHA1:
        return EVP_sha1();
    case HASH_SHA256:
        return EVP_sha256();
    case HASH_SHA512:
        return EVP_sha512();
    default:
        return NULL;
    }
}

void hash_hex_encode(const unsigned char *d, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[d[i] >> 4];
        out[2 * i + 1] = hx[d[i] & 15];
    }
    out[2 * n] = '\0';
}

int hash_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

struct hash_ctx *hash_begin(const struct hash_expect *expect)
{
    struct hash_ctx *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    if (expect)
        h->expect = *expect;
    h->sha256 = EVP_MD_CTX_new();
    if (!h->sha256 || !EVP_DigestInit_ex(h->sha256, EVP_sha256(), NULL))
        goto fail;
    if (h->expect.algo != HASH_NONE && h->expect.algo != HASH_SHA256) {
        h->other = EVP_MD_CTX_new();
        if (!h->other || !EVP_DigestInit_ex(h->other, algo_md(h->expect.algo), NULL))
            goto fail;
    }
    return h;
fail:
    hash_abort(h);
    return NULL;
}

void hash_update(struct hash_ctx *h, const void *data, size_t len)
{
    EVP_DigestUpdate(h->sha256, data, len);
    if (h->other)
        EVP_DigestUpdate(h->other, data, len);
}

int hash_end(struct hash_ctx *h, char sha256_hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    char hex[HASH_HEX_MAX];
    int rc = 0;
    EVP_DigestFinal_ex(h->sha256, md, &n);
    hash_hex_encode(md, n, sha256_hex);
    if (h->expect.algo == HASH_SHA256) {
        if (strcmp(sha256_hex, h->expect.hex) != 0)
            rc = -EBADMSG;
    } else if (h->other) {
        EVP_DigestFinal_ex(h->other, md, &n);
        hash_hex_encode(md, n, hex);
        if (strcmp(hex, h->expect.hex) != 0)
            rc = -EBADMSG;
    }
    hash_abort(h);
    return rc;
}

void hash_abort(struct hash_ctx *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->sha256);
    EVP_MD_CTX_free(h->other);
    free(h);
}

void hash_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    hash_hex_encode(md, n, out);
}

static bool all_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

static int set_hex(struct hash_expect *out, enum hash_algo a, const char *s, size_t n)
{
    size_t want = a == HASH_SHA1 ? 40 : a == HASH_SHA256 ? 64 : 128;
    if (n != want || !all_hex(s, n))
        return -EINVAL;
    out->algo = a;
    for (size_t i = 0; i < n; i++)
        out->hex[i] = (char)tolower((unsigned char)s[i]);
    out->hex[n] = '\0';
    return 0;
}

/* base64 of exactly `bytes` bytes (padding included) at s[0..n) into out as hex; 0 or -EINVAL. */
static int b64_digest(const char *s, size_t n, size_t bytes, char *out)
{
    unsigned char raw[80];
    if (n != (bytes + 2) / 3 * 4 || n > 88)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '+' && s[i] != '/' && s[i] != '=')
            return -EINVAL;
    /* EVP_DecodeBlock counts '=' padding as zero bytes: at least `bytes` came out. */
    if (EVP_DecodeBlock(raw, (const unsigned char *)s, (int)n) < (int)bytes)
        return -EINVAL;
    hash_hex_encode(raw, bytes, out);
    return 0;
}

int hash_repr_digest_parse(const char *value, struct hash_expect *out)
{
    struct hash_expect sha512 = {0};
    memset(out, 0, sizeof(*out));
    for (const char *p = value ? value : ""; *p;) {
        p += strspn(p, " \t,");
        size_t klen = strcspn(p, "=, \t");
        const char *v = p + klen;
        if (*v != '=' || v[1] != ':') { /* not a byte sequence: skip the member */
            p = v + strcspn(v, ",");
            continue;
        }
        const char *b = v + 2, *end = strchr(b, ':');
        if (!end)
            return -EINVAL;
        if (klen == 7 && !strncmp(p, "sha-256", 7)) {
            if (b64_digest(b, (size_t)(end - b), 32, out->hex) < 0)
                return -EINVAL;
            out->algo = HASH_SHA256; /* the store's own digest: preferred */
            return 0;
        }
        if (klen == 7 && !strncmp(p, "sha-512", 7) &&
            b64_digest(b, (size_t)(end - b), 64, sha512.hex) == 0)
            sha512.algo = HASH_SHA512;
        p = end + 1;
    }
    *out = sha512;
    return sha512.algo != HASH_NONE ? 0 : -ENOENT;
}

int hash_repr_digest_format(const char *sha256_hex, char *out, size_t len)
{
    unsigned char raw[32];
    char b64[48];
    if (!hash_is_sha256_hex(sha256_hex))
        return -EINVAL;
    for (size_t i = 0; i < 32; i++)
        raw[i] = (unsigned char)(hash_hex_value(sha256_hex[2 * i]) << 4 |
                                 hash_hex_value(sha256_hex[2 * i + 1]));
    EVP_EncodeBlock((unsigned char *)b64, raw, 32);
    int n = snprintf(out, len, "sha-256=:%s:", b64);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int hash_expect_late(struct hash_ctx *h, const struct hash_expect *expect)
{
    if (h->expect.algo != HASH_NONE)
        return -EEXIST;
    if (expect->algo != HASH_NONE && expect->algo != HASH_SHA256) {
        h->other = EVP_MD_CTX_new();
        if (!h->other || !EVP_DigestInit_ex(h->other, algo_md(expect->algo), NULL)) {
            EVP_MD_CTX_free(h->other);
            h->other = NULL;
            return -ENOMEM;
        }
    }
    h->expect = *expect;
    return 0;
}

int hash_expect_parse(const char *s, struct hash_expect *out)
{
    memset(out, 0, sizeof(*out));
    if (!s)
        return -EINVAL;
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strcspn(s, " \t\r\n");
    if (strncmp(s, "sha512-", 7) == 0) { /* SRI: a sha512 is 88 base64 characters */
        if (b64_digest(s + 7, n - 7, 64, out->hex) < 0)
            return -EINVAL;
        out->algo = HASH_SHA512;
        return 0;
    }
    static const struct {
        const char *prefix;
        enum hash_algo algo;
    } forms[] = {{"sha1:", HASH_SHA1}, {"sha256:", HASH_SHA256}, {"sha512:", HASH_SHA512}};
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        size_t pl = strlen(forms[i].prefix);
        if (strncmp(s, forms[i].prefix, pl) == 0)
            return set_hex(out, forms[i].algo, s + pl, n - pl);
    }
    if (n == 40)
        return set_hex(out, HASH_SHA1, s, n);
    if (n == 64)
        return set_hex(out, HASH_SHA256, s, n);
    if (n == 128)
        return set_hex(out, HASH_SHA512, s, n);
    return -EINVAL;
}

void hash_expect_format(const struct hash_expect *e, char *buf, size_t len)
{
    const char *name = e->algo == HASH_SHA1     ? "sha1"
                       : e->algo == HASH_SHA256 ? "sha256"
                       : e->algo == HASH_SHA512 ? "sha512"
                                                : "none";
    snprintf(buf, len, "%s:%s", name, e->hex);
}

bool hash_is_sha256_hex(const char *s)
{
    if (!s || strlen(s) != 64)
        return false;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

uint64_t hash_fnv1a(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 14695981039346656037ULL; /* the FNV-1a offset basis */
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

/*
 * ecr_parse: the ECR API's answers, parsed (the contracts are in include/upstreamfs/ecr_auth.h):
 * GetAuthorizationToken (ecr_token_parse, the base64 "user:password" it carries), the error
 * bodies and their errno (ecr_auth_error_parse) and DescribeRegistries' aliases
 * (ecr_auth_describe_parse). Pure functions of their input, fuzzed by tests/fuzz/fuzz_ecr_token.c
 * and fuzz_ecr_api.c; the token cache and the requests that get these answers are in ecr_auth.c.
 */
#include "ecr_auth_i.h"
#include "upstreamfs/ecr_auth.h"
#include "upstreamfs/failure.h"
#include "upstreamfs/secret.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

/* An absolute http(s) URL without spaces or control characters (ecr_auth_i.h). */
bool ecr__http_url_ok(const char *s)
{
    if (strncasecmp(s, "https://", 8) != 0 && strncasecmp(s, "http://", 7) != 0)
        return false;
    if (strlen(s) > ECR_ENDPOINT_MAX)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

/*
 * Strict base64 (the standard alphabet, padded, no whitespace) decoded by
 * OpenSSL. *out is NUL-terminated for convenience; *outlen excludes it.
 */
static int b64_decode(const char *in, size_t n, unsigned char **out, size_t *outlen)
{
    size_t pad = 0;
    *out = NULL;
    if (n == 0 || n % 4 != 0 || n > ECR_AUTH_TOKEN_MAX)
        return -EIO;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '=') {
            if (i < n - 2)
                return -EIO;
            pad++;
        } else if (pad || !(isalnum(c) || c == '+' || c == '/')) {
            return -EIO;
        }
    }
    unsigned char *buf = malloc(n / 4 * 3 + 1);
    if (!buf)
        return -ENOMEM;
    int r = EVP_DecodeBlock(buf, (const unsigned char *)in, (int)n);
    if (r < 0 || (size_t)r < pad) {
        secret_wipe(buf, n / 4 * 3);
        free(buf);
        return -EIO;
    }
    *outlen = (size_t)r - pad;
    buf[*outlen] = '\0';
    *out = buf;
    return 0;
}

void ecr_token_clear(struct ecr_token *t)
{
    secret_free(t->authorization_token);
    free(t->username);
    secret_free(t->password);
    free(t->proxy_endpoint);
    memset(t, 0, sizeof(*t));
}

/* Splits the decoded "user:password" into t. */
static int token_decode(struct ecr_token *t)
{
    unsigned char *dec = NULL;
    size_t n = 0;
    const char *tok = t->authorization_token;
    int rc = b64_decode(tok, strlen(tok), &dec, &n);
    if (rc < 0)
        return rc;
    char *colon = memchr(dec, ':', n);
    rc = -EIO;
    if (!colon || colon == (char *)dec || memchr(dec, '\0', n))
        goto out;
    for (size_t i = 0; i < n; i++)
        if (dec[i] == '\r' || dec[i] == '\n')
            goto out;
    t->username = strndup((char *)dec, (size_t)(colon - (char *)dec));
    t->password = strdup(colon + 1);
    rc = t->username && t->password ? 0 : -ENOMEM;
out:
    secret_wipe(dec, n);
    free(dec);
    return rc;
}

int ecr_token_parse(const char *body, size_t len, bool is_public, struct ecr_token *out)
{
    json_error_t jerr;
    int rc = -EIO;
    memset(out, 0, sizeof(*out));
    json_t *doc = body ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    json_t *ad = json_object_get(doc, "authorizationData"), *item;
    if (is_public)
        item = json_is_object(ad) ? ad : NULL;
    else
        item = json_is_array(ad) ? json_array_get(ad, 0) : NULL;
    if (!json_is_object(item))
        goto out;
    json_t *tok = json_object_get(item, "authorizationToken");
    json_t *exp = json_object_get(item, "expiresAt");
    json_t *pe = json_object_get(item, "proxyEndpoint");
    if (!json_is_string(tok) || !json_is_number(exp) || (pe && !json_is_string(pe)))
        goto out;
    double e = json_number_value(exp);
    /* Epoch seconds between 1970 and year ~5000: anything else is not a time. */
    if (!isfinite(e) || e <= 0 || e > 1e11)
        goto out;
    out->expires_at_ms = (int64_t)(e * 1000.0 + 0.5); /* e > 0: rounds; no libm needed */
    if (pe && !ecr__http_url_ok(json_string_value(pe)))
        goto out;
    out->authorization_token = strdup(json_string_value(tok));
    out->proxy_endpoint = pe ? strdup(json_string_value(pe)) : NULL;
    if (!out->authorization_token || (pe && !out->proxy_endpoint)) {
        rc = -ENOMEM;
        goto out;
    }
    rc = token_decode(out);
out:
    json_decref(doc);
    if (rc < 0)
        ecr_token_clear(out);
    return rc;
}

/* Copies s into buf with anything but printable ASCII replaced by '?'. */
void ecr__sanitise(char *buf, size_t n, const char *s)
{
    size_t i = 0;
    if (n == 0)
        return;
    for (; s && *s && i + 1 < n; s++, i++)
        buf[i] = (unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f ? *s : '?';
    buf[i] = '\0';
}

static bool type_in(const char *type, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(type, *list) == 0)
            return true;
    return false;
}

int ecr_auth_error_parse(long status, const char *body, size_t len, char *msg, size_t n)
{
    static const char *const auth_types[] = {"UnrecognizedClientException",
                                             "InvalidSignatureException",
                                             "IncompleteSignature",
                                             "IncompleteSignatureException",
                                             "InvalidClientTokenId",
                                             "MissingAuthenticationToken",
                                             "MissingAuthenticationTokenException",
                                             "SignatureDoesNotMatch",
                                             "ExpiredToken",
                                             "ExpiredTokenException",
                                             "AccessDenied",
                                             "AccessDeniedException",
                                             "AuthFailure",
                                             "NotAuthorized",
                                             "RequestExpired",
                                             NULL};
    static const char *const busy_types[] = {
        "ThrottlingException",  "ThrottledException", "TooManyRequestsException",
        "RequestLimitExceeded", "ServiceUnavailable", "ServiceUnavailableException",
        "ServerException",      "InternalFailure",    NULL};
    json_error_t jerr;
    char text[ECR_AUTH_ERROR_MAX];
    const char *type = NULL, *message = NULL;
    int rc;
    json_t *doc = body && len ? json_loadb(body, len, 0, &jerr) : NULL;
    json_t *t = json_object_get(doc, "__type");
    json_t *m = json_object_get(doc, "message");
    if (!m)
        m = json_object_get(doc, "Message");
    if (json_is_string(t)) {
        /* "com.amazonaws.ecr#InvalidParameterException" names the type after '#'. */
        type = json_string_value(t);
        const char *hash = strrchr(type, '#');
        if (hash)
            type = hash + 1;
    }
    if (json_is_string(m))
        message = json_string_value(m);

    if (type && type_in(type, auth_types))
        rc = -EACCES;
    else if ((type && type_in(type, busy_types)) || status == 429 || status >= 500)
        rc = -EREMOTEIO;
    else if ((rc = failure_status_errno(status)) == -ENOENT || rc == 0)
        rc = -EIO;
    struct failure f = {.cause = rc == -EACCES ? FAILURE_AUTH : FAILURE_HTTP, .status = status};
    snprintf(f.code, sizeof(f.code), "%s", type ? type : "");
    failure_note_set(NULL, &f, NULL, false);

    snprintf(text, sizeof(text), "HTTP %ld%s%s%s%s", status, type ? " " : "", type ? type : "",
             message ? ": " : "", message ? message : "");
    ecr__sanitise(msg, n, text);
    json_decref(doc);
    return rc;
}

/* A registry alias as the API defines it: [a-z][a-z0-9]+(?:[._-][a-z0-9]+)*, 2-50. */
static bool alias_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 2 || n > 50 || !islower((unsigned char)s[0]))
        return false;
    for (size_t i = 1; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool sep = c == '.' || c == '_' || c == '-';
        if (sep && (i + 1 == n || strchr("._-", s[i - 1]) || i == 1))
            return false;
        if (!sep && !islower(c) && !isdigit(c))
            return false;
    }
    return true;
}

int ecr_auth_describe_parse(const char *body, size_t len, const char *account, char **alias,
                            char **next_token)
{
    json_error_t jerr;
    int rc = -EIO;
    *alias = NULL;
    if (next_token)
        *next_token = NULL;
    json_t *doc = body ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    json_t *regs = json_object_get(doc, "registries"), *reg;
    json_t *next = json_object_get(doc, "nextToken");
    size_t i;
    if (!json_is_array(regs) || (next && !json_is_string(next) && !json_is_null(next)))
        goto out;
    rc = -ENOENT;
    json_array_foreach(regs, i, reg)
    {
        json_t *id = json_object_get(reg, "registryId");
        json_t *aliases = json_object_get(reg, "aliases"), *al;
        const char *best = NULL;
        int best_rank = 0;
        size_t k;
        if (!json_is_string(id) || !account || strcmp(json_string_value(id), account) != 0)
            continue;
        if (!json_is_array(aliases)) {
            rc = -EIO;
            goto out;
        }
        json_array_foreach(aliases, k, al)
        {
            json_t *name = json_object_get(al, "name"), *status = json_object_get(al, "status");
            if (!json_is_string(name) || !json_is_string(status) ||
                strcmp(json_string_value(status), "ACTIVE") != 0 ||
                !alias_ok(json_string_value(name)))
                continue;
            int rank = json_is_true(json_object_get(al, "primaryRegistryAlias"))   ? 3
                       : json_is_true(json_object_get(al, "defaultRegistryAlias")) ? 2
                                                                                   : 1;
            if (rank > best_rank) {
                best_rank = rank;
                best = json_string_value(name);
            }
        }
        if (best) {
            rc = (*alias = strdup(best)) ? 0 : -ENOMEM;
            goto out;
        }
    }
    if (next_token && json_is_string(next) && *json_string_value(next))
        if (!(*next_token = strdup(json_string_value(next))))
            rc = -ENOMEM;
out:
    json_decref(doc);
    return rc;
}

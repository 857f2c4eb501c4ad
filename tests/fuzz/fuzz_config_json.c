/*
 * fuzz_config_json: a proxy's JSON body as the /api takes it (json_loadb,
 * then config_proxy_apply_json, then config_proxy_validate).
 *
 * The first input byte chooses create or update (bit 0), whether a secret
 * is already stored (bit 1: access-key auth), and for an update the
 * existing proxy (bits 2-4) and, for ECR without a stored secret, whether
 * it uses aws-chain (bit 5; a private registry always does); the rest is
 * the body.
 *
 * Properties: every refusal names a field and says why; an applied and
 * validated proxy serialises, and its own JSON (a GET body) PUT back onto
 * it applies, validates and serialises to the same JSON. A secret is never
 * in the JSON.
 */
#include "fuzz.h"

#include "upstreamfs/config.h"

#include <errno.h>
#include <jansson.h>

struct base {
    enum proxy_type type;
    const char *url;
    bool needs_credentials; /* a private ECR registry */
};

static const struct base bases[] = {
    {PROXY_GENERIC, "https://mirror.example.org/pub/", false},
    {PROXY_MAVEN, "https://repo.maven.apache.org/maven2/", false},
    {PROXY_HELM, "https://charts.example.com/stable/", false},
    {PROXY_DOCKER, NULL, false},
    {PROXY_ECR, "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app", true},
    {PROXY_ECR, "public.ecr.aws/docker/library/alpine", false},
};

static void secret_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

/* Whether s is well-formed UTF-8: the API answers with it as JSON strings. */
static bool utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n = *p < 0x80             ? 0
                   : (*p & 0xe0) == 0xc0 ? 1
                   : (*p & 0xf0) == 0xe0 ? 2
                   : (*p & 0xf8) == 0xf0 ? 3
                                         : 9;
        if (n == 9)
            return false;
        p++;
        for (size_t i = 0; i < n; i++, p++)
            if ((*p & 0xc0) != 0x80)
                return false;
    }
    return true;
}

/* What the API needs of an error: a field to name (an empty one loses the message) and text. */
static bool has_text(const struct config_error *e)
{
    if (!e->field[0] || !e->message[0] || !utf8(e->field) || !utf8(e->message)) {
        fprintf(stderr, "unusable error: field \"%s\" message \"%s\"\n", e->field, e->message);
        return fuzz_skip("config-error-text");
    }
    return true;
}

/* The GET body of p, PUT back onto a copy of p, must change nothing. */
static void put_back(const struct proxy *p, bool has_secret)
{
    json_t *get = config_proxy_to_json(p);
    FUZZ_CHECK(get != NULL);
    FUZZ_CHECK(!json_object_get(get, "secret_key"));
    struct proxy q;
    FUZZ_CHECK(config_proxy_copy(&q, p) == 0);
    char *secret = NULL;
    struct config_error err = {{0}, {0}};
    int rc = config_proxy_apply_json(&q, get, false, &secret, &err);
    if (rc == 0)
        rc = config_proxy_validate(&q, has_secret, &err);
    if (rc != 0) {
        char *s = json_dumps(get, JSON_COMPACT);
        fprintf(stderr, "GET body does not PUT back: %d %s: %s\n%s\n", rc, err.field, err.message,
                s ? s : "");
        free(s);
    }
    FUZZ_CHECK(rc == 0);
    FUZZ_CHECK(secret == NULL);
    json_t *again = config_proxy_to_json(&q);
    FUZZ_CHECK(again != NULL);
    if (!json_equal(get, again)) {
        char *a = json_dumps(get, JSON_COMPACT | JSON_SORT_KEYS);
        char *b = json_dumps(again, JSON_COMPACT | JSON_SORT_KEYS);
        fprintf(stderr, "PUT of the GET body changed the proxy:\n%s\n%s\n", a, b);
        free(a);
        free(b);
    }
    FUZZ_CHECK(json_equal(get, again));
    json_decref(again);
    json_decref(get);
    config_proxy_clear(&q);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t sel = fuzz_take_byte(&data, &size);
    bool is_create = sel & 1;
    bool stored_secret = sel & 2;
    const struct base *b = &bases[(sel >> 2) % (sizeof(bases) / sizeof(bases[0]))];

    json_error_t jerr;
    json_t *obj = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (!obj)
        return 0;

    struct proxy p;
    struct config_error err = {{0}, {0}};
    memset(&p, 0, sizeof(p));
    if (!is_create) {
        config_proxy_init(&p, "existing", b->type);
        if (b->url)
            FUZZ_CHECK(config_proxy_set_url(&p, b->url) == 0);
        if (b->type == PROXY_ECR && !stored_secret && ((sel & 0x20) || b->needs_credentials)) {
            config_proxy_set_auth(&p, AUTH_AWS_CHAIN);
        } else if (stored_secret) {
            config_proxy_set_auth(&p, AUTH_ACCESS_KEY);
            FUZZ_CHECK(config_set_string(&p.access_key, "AKIDEXAMPLE") == 0);
        }
        int brc = config_proxy_validate(&p, stored_secret, &err);
        if (brc != 0)
            fprintf(stderr, "base proxy refused: %s: %s\n", err.field, err.message);
        FUZZ_CHECK(brc == 0);
        memset(&err, 0, sizeof(err));
    }

    char *secret = NULL;
    int rc = config_proxy_apply_json(&p, obj, is_create, &secret, &err);
    FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
    if (rc == -EINVAL)
        FUZZ_CHECK(has_text(&err) && secret == NULL);
    if (rc == 0) {
        bool has_secret = secret != NULL || (stored_secret && !is_create);
        if (secret)
            FUZZ_CHECK(secret[0] && strlen(secret) <= CONFIG_SECRET_MAX);
        rc = config_proxy_validate(&p, has_secret, &err);
        FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
        if (rc == -EINVAL)
            FUZZ_CHECK(has_text(&err));
        if (rc == 0) {
            /* NULL when a validated field is not UTF-8 (config-url-8bit skips that case). */
            json_t *j = config_proxy_to_json(&p);
            FUZZ_CHECK(j != NULL || fuzz_skip("config-url-8bit"));
            if (!j)
                goto out;
            FUZZ_CHECK(!json_object_get(j, "secret_key"));
            char *s = json_dumps(j, JSON_COMPACT);
            FUZZ_CHECK(s != NULL);
            free(s);
            json_decref(j);
            if (!(p.type == PROXY_ECR && fuzz_skip("ecr-put-back")))
                put_back(&p, has_secret);
        }
    }
out:
    secret_free(secret);
    config_proxy_clear(&p);
    json_decref(obj);
    return 0;
}

/*
 * proxy_field_json: a proxy field row to and from JSON (contracts in
 * include/upstreamfs/proxy_fields.h). The API, "proxy show --json" and the
 * config export read a proxy through proxy_field_get_json and write one
 * through proxy_field_set_json, so the JSON of a field is written once, here,
 * driven by its kind. A secret field is never read back: get gives only
 * whether it is set.
 */
#include "upstreamfs/proxy_fields.h"
#include "upstreamfs/secret.h"
#include "config_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- JSON ------------------------------------------------------------------------------ */

static json_t *string_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *proxy_field_get_json(const struct proxy_field *f, const struct proxy *p)
{
    switch (f->kind) {
    case FIELD_STRING:
        if (f->flags & FIELD_IDENTITY)
            return json_string(p->key);
        /* fall through */
    case FIELD_PATH:
    case FIELD_URL:
    case FIELD_ENDPOINT:
        return string_or_null(*CSLOT(char *, f, p));
    case FIELD_SECRET:
    case FIELD_PEM:
        return json_boolean(proxy_field_is_set(f, p));
    case FIELD_ENUM: {
        int v = *CSLOT(int, f, p);
        /* A field the type does not take reads as null (a helm proxy has no source). */
        if (!proxy_field_applies(f, p->type) || v < 0 || v >= f->nnames)
            return json_null();
        return json_string(f->names[v] ? f->names[v] : "?");
    }
    case FIELD_BOOL:
        return json_boolean(*CSLOT(bool, f, p));
    case FIELD_SECONDS:
    case FIELD_MILLIS:
        return json_integer((json_int_t)*CSLOT(long, f, p));
    case FIELD_SIZE:
        return json_integer((json_int_t)*CSLOT(int64_t, f, p));
    case FIELD_LIST:
        return config_strv_to_json(*LSLOT(f, p));
    }
    return json_null();
}

/* The value as it was given, for "(got ...)": a JSON text, cut by config_quote's rules. */
static const char *got(char *buf, size_t n, json_t *v)
{
    char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    if (json_is_string(v))
        config_quote(buf, n, json_string_value(v));
    else
        snprintf(buf, n, "%.*s", (int)(n > 4 ? n - 4 : 0), text ? text : "?");
    free(text);
    return buf;
}

static int set_text(const struct proxy_field *f, json_t *v, char **dst, struct config_error *err)
{
    if (json_is_null(v))
        return config_set_string(dst, NULL);
    if (!json_is_string(v)) {
        config_error_set(err, f->name, "must be a string or null");
        return -EINVAL;
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        config_error_set(err, f->name, "must not contain a NUL character");
        return -EINVAL;
    }
    return config_set_string(dst, json_string_value(v));
}

/* A whole number from 0 to max: an integer, or for a size a string with a suffix. */
static int set_number(const struct proxy_field *f, json_t *v, long long *out,
                      struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    long long n = -1;
    if (json_is_integer(v))
        n = json_integer_value(v);
    else if (f->kind == FIELD_SIZE && json_is_string(v) &&
             proxy_field_parse_size(json_string_value(v), &n) < 0)
        n = -1;
    else if (f->kind == FIELD_MILLIS && json_is_string(v) &&
             proxy_field_parse_millis(json_string_value(v), &n) < 0)
        n = -1;
    else if (f->kind == FIELD_SECONDS && (f->flags & FIELD_DURATION) && json_is_string(v) &&
             proxy_field_parse_seconds(json_string_value(v), &n) < 0)
        n = -1;
    if (n < f->min || n > f->max) {
        if (f->kind == FIELD_MILLIS)
            config_error_set(err, f->name,
                             "must be a duration from %lldms to %llds, as 500ms or 5s (a bare "
                             "number is milliseconds) (got %s)",
                             f->min, f->max / 1000, got(q, sizeof(q), v));
        else if (f->kind == FIELD_SECONDS && (f->flags & FIELD_DURATION))
            config_error_set(err, f->name,
                             "must be a whole number of seconds from %lld to %lld, or a "
                             "duration as 90s, 15m, 12h, 7d or 2w (got %s)",
                             f->min, f->max, got(q, sizeof(q), v));
        else if (f->kind == FIELD_SECONDS)
            config_error_set(err, f->name,
                             "must be a whole number of seconds from %lld to %lld (got %s)", f->min,
                             f->max, got(q, sizeof(q), v));
        else
            config_error_set(err, f->name,
                             "must be a size in bytes from %lld to %lld, optionally with K, M, G "
                             "or T (got %s)",
                             f->min, f->max, got(q, sizeof(q), v));
        return -EINVAL;
    }
    *out = n;
    return 0;
}

static int set_secret(const struct proxy_field *f, struct proxy *p, json_t *v, char **secret,
                      struct config_error *err)
{
    if (json_is_null(v))
        return 0; /* write-only: null (as in a GET body put back) keeps what is stored */
    if (!json_is_string(v)) {
        config_error_set(err, f->name, "must be a string");
        return -EINVAL;
    }
    size_t len = json_string_length(v);
    char *s = malloc(len + 1);
    if (!s)
        return -ENOMEM;
    memcpy(s, json_string_value(v), len + 1);
    int rc = config_secret_normalise(s, &len, err);
    if (rc == 0 && !(f->flags & FIELD_SECRET_FILE) && len > (size_t)f->max) {
        config_error_set(err, f->name, "must be at most %lld bytes", f->max);
        rc = -EINVAL;
    }
    if (rc == 0 && !(f->flags & FIELD_SECRET_FILE)) {
        /* config_secret_normalise names secret_key; the field is this one. */
        char **dst = SLOT(char *, f, p);
        if (*dst)
            secret_wipe(*dst, strlen(*dst));
        free(*dst);
        *dst = s;
        return 0;
    }
    if (rc < 0) {
        if (err && strcmp(err->field, f->name) != 0)
            snprintf(err->field, sizeof(err->field), "%s", f->name);
        secret_wipe(s, len);
        free(s);
        return rc;
    }
    if (*secret) {
        secret_wipe(*secret, strlen(*secret));
        free(*secret);
    }
    *secret = s;
    return 0;
}

/* A PEM field: null keeps what is stored, "" removes it, else the PEM text (checked later). */
static int set_pem(const struct proxy_field *f, struct proxy_pem *m, json_t *v,
                   struct config_error *err)
{
    if (json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        config_error_set(err, f->name, "must be a string (PEM text, or \"\" to remove it)");
        return -EINVAL;
    }
    size_t len = json_string_length(v);
    if (strlen(json_string_value(v)) != len || len > (size_t)f->max) {
        config_error_set(err, f->name, "must be PEM text of at most %lld bytes", f->max);
        return -EINVAL;
    }
    char *t = strdup(json_string_value(v));
    if (!t)
        return -ENOMEM;
    if (m->text)
        secret_wipe(m->text, strlen(m->text));
    free(m->text);
    m->text = t;
    return 0;
}

int proxy_field_set_json(const struct proxy_field *f, struct proxy *p, json_t *v, char **secret,
                         struct config_error *err)
{
    long long n;
    int rc, e;
    switch (f->kind) {
    case FIELD_STRING:
    case FIELD_PATH:
    case FIELD_ENDPOINT:
        return set_text(f, v, SLOT(char *, f, p), err);
    case FIELD_URL: {
        char *url = NULL;
        /* The URL it already has is no change: re-reading it would drop what was derived
         * from the URL given first (an ECR proxy's repository scope). */
        if ((rc = set_text(f, v, &url, err)) == 0 && !(url && p->url && !strcmp(url, p->url)))
            rc = config_proxy_set_url(p, url);
        free(url);
        return rc;
    }
    case FIELD_SECRET:
        return set_secret(f, p, v, secret, err);
    case FIELD_PEM:
        return set_pem(f, SLOT(struct proxy_pem, f, p), v, err);
    case FIELD_ENUM:
        if (json_is_null(v) && f->types != FIELD_TYPES_ALL)
            return 0; /* as output for a type without the field (a helm proxy's source) */
        if ((rc = config_enum_parse(f->name, f->names, f->nnames, json_string_value(v), &e, err)) <
            0)
            return rc;
        if (f->offset == offsetof(struct proxy, auth))
            config_proxy_set_auth(p, (enum proxy_auth)e);
        else if (f->offset == offsetof(struct proxy, source))
            config_proxy_set_source(p, (enum proxy_source)e);
        else
            *SLOT(int, f, p) = e;
        return 0;
    case FIELD_BOOL:
        if (!json_is_boolean(v)) {
            config_error_set(err, f->name, "must be true or false");
            return -EINVAL;
        }
        *SLOT(bool, f, p) = json_is_true(v);
        return 0;
    case FIELD_SECONDS:
    case FIELD_MILLIS:
        if ((rc = set_number(f, v, &n, err)) == 0)
            *SLOT(long, f, p) = (long)n;
        return rc;
    case FIELD_SIZE:
        if ((rc = set_number(f, v, &n, err)) == 0)
            *SLOT(int64_t, f, p) = (int64_t)n;
        return rc;
    case FIELD_LIST: {
        char **list = NULL;
        if ((rc = config_strv_from_json(f->name, v, &list, err)) == 0) {
            config_strv_free(*SLOT(char **, f, p));
            *SLOT(char **, f, p) = list;
        }
        return rc;
    }
    }
    return -EINVAL;
}


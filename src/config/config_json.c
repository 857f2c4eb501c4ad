/*
 * config_json: the JSON schema of proxies and registries, the one the CLI's
 * --json and the HTTP API share. A proxy's members come from the field table
 * (proxy_fields.c); key and type are its identity (required on create, never
 * changed), and read-only members (secret_set, NAME_set, ecr, health) are accepted
 * so that a GET body can be PUT back.
 */
#include "upstreamfs/config.h"
#include "upstreamfs/ecr_url.h"
#include "upstreamfs/proxy_fields.h"
#include "upstreamfs/secret.h"
#include "config_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *json_string_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *ecr_to_json(const struct ecr_target *t)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:b}", "host", json_string_or_null(t->host),
                     "region", json_string_or_null(t->region), "account",
                     json_string_or_null(t->account), "alias", json_string_or_null(t->alias),
                     "repository", json_string_or_null(t->repository), "public", t->is_public);
}

json_t *config_proxy_to_json(const struct proxy *p)
{
    /* Built field by field from the table; a secret reads as NAME_set only. */
    json_t *o = json_object();
    for (size_t i = 0; o && i < proxy_fields_count; i++) {
        const struct proxy_field *f = &proxy_fields[i];
        char buf[64];
        const char *name = proxy_field_out_name(f, buf, sizeof(buf));
        if (json_object_set_new(o, name, proxy_field_get_json(f, p)) < 0) {
            json_decref(o);
            return NULL;
        }
    }
    if (o && p->type == PROXY_ECR && json_object_set_new(o, "ecr", ecr_to_json(&p->ecr)) < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The proxy settings a registry takes too: its package rules and cooldown (docs/policy.md). */
static const char *const registry_policy_rows[] = {"min_age", "min_age_unknown", "min_age_exempt",
                                                   "allow", "deny"};

bool config_registry_policy_row(const char *member)
{
    for (size_t i = 0; i < sizeof(registry_policy_rows) / sizeof(registry_policy_rows[0]); i++)
        if (!strcmp(member, registry_policy_rows[i]))
            return true;
    return false;
}

/* The policy rows of p (a registry's type) that apply to it, into o. */
static int policy_members(json_t *o, const struct proxy *p)
{
    for (size_t i = 0; i < sizeof(registry_policy_rows) / sizeof(registry_policy_rows[0]); i++) {
        const struct proxy_field *f = proxy_field_find(registry_policy_rows[i]);
        if (f && proxy_field_applies(f, p->type) &&
            json_object_set_new(o, f->name, proxy_field_get_json(f, p)) < 0)
            return -ENOMEM;
    }
    return 0;
}

json_t *config_registry_policy_json(const struct registry *r)
{
    json_t *o = r->policy ? json_object() : NULL;
    if (o && policy_members(o, r->policy) < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int config_registry_policy_apply(struct registry *r, json_t *obj, struct config_error *err)
{
    const char *name;
    json_t *v;
    json_object_foreach(obj, name, v)
    {
        if (!config_registry_policy_row(name))
            continue;
        if (!r->policy) {
            if (!(r->policy = calloc(1, sizeof(*r->policy))))
                return -ENOMEM;
            config_proxy_init(r->policy, r->name, r->type);
        }
        int rc = proxy_field_set_json(proxy_field_find(name), r->policy, v, NULL, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

json_t *config_registry_to_json(const struct registry *r)
{
    json_t *o = json_pack("{s:s, s:s, s:o}", "name", r->name, "type", config_type_name(r->type),
                          "upstreams", config_strv_to_json(r->upstreams));
    struct proxy none;
    if (!r->policy)
        config_proxy_init(&none, r->name, r->type); /* the defaults: no rules */
    if (o && policy_members(o, r->policy ? r->policy : &none) < 0) {
        json_decref(o);
        o = NULL;
    }
    if (!r->policy)
        config_proxy_clear(&none);
    return o;
}

/* The "key" and "type" members: required on create, unchangeable on update. */
static int json_identity(struct proxy *p, json_t *obj, bool is_create, struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    json_t *k = json_object_get(obj, "key");
    json_t *t = json_object_get(obj, "type");
    enum proxy_type type;
    int rc;

    if (is_create) {
        if (!json_is_string(k)) {
            config_error_set(err, "key", "must be given as a string");
            return -EINVAL;
        }
        if ((rc = config_key_validate("key", json_string_value(k), err)) < 0)
            return rc;
        if (!json_is_string(t)) {
            config_error_set(err, "type", "must be given as a string");
            return -EINVAL;
        }
        if ((rc = config_type_parse(json_string_value(t), &type, err)) < 0)
            return rc;
        config_proxy_init(p, json_string_value(k), type);
        return 0;
    }
    if (k && (!json_is_string(k) || strcmp(json_string_value(k), p->key) != 0)) {
        config_error_set(err, "key", "cannot be changed (this is %s)",
                         config_quote(q, sizeof(q), p->key));
        return -EINVAL;
    }
    if (t &&
        (!json_is_string(t) || strcmp(json_string_value(t), config__type_names[p->type]) != 0)) {
        config_error_set(err, "type", "cannot be changed (this is a %s proxy)",
                         config__type_names[p->type]);
        return -EINVAL;
    }
    return 0;
}

/* The member's name is the field only when it reads as one (the API puts it in JSON as is):
 * an empty, long or non-ASCII name is reported as the body's. */
static int unknown_field(const char *name, struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    bool plain = name[0] && strlen(name) < sizeof(err->field);
    for (const char *c = name; plain && *c; c++)
        plain = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_';
    config_error_set(err, plain ? name : "body", "unknown field %s",
                     config_quote(q, sizeof(q), name));
    return -EINVAL;
}

int config_proxy_apply_json(struct proxy *p, json_t *obj, bool is_create, char **secret,
                            struct config_error *err)
{
    const char *name;
    json_t *v;
    int rc;

    *secret = NULL;
    if (!json_is_object(obj)) {
        config_error_set(err, "body", "must be a JSON object");
        return -EINVAL;
    }
    if ((rc = json_identity(p, obj, is_create, err)) < 0)
        return rc;

    /* Rows marked FIELD_FIRST (auth, source) first: they drop fields that others may set. */
    for (int pass = 0; pass < 2; pass++) {
        json_object_foreach(obj, name, v)
        {
            const struct proxy_field *f = proxy_field_find(name);
            if (!f) {
                /* Read-only members are accepted so a GET body can be PUT back. */
                if (!strcmp(name, "ecr") || !strcmp(name, "health") || proxy_field_find_set(name))
                    continue;
                if (pass == 0)
                    continue;
                rc = unknown_field(name, err);
                goto fail;
            }
            if ((f->flags & FIELD_IDENTITY) || (pass == 0) != !!(f->flags & FIELD_FIRST))
                continue;
            if ((rc = proxy_field_set_json(f, p, v, secret, err)) < 0)
                goto fail;
        }
    }
    return 0;
fail:
    if (*secret) {
        secret_wipe(*secret, strlen(*secret));
        free(*secret);
        *secret = NULL;
    }
    return rc;
}

int config_registry_apply_json(struct registry *g, json_t *obj, bool is_create, bool *has_upstreams,
                               struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    const char *name;
    json_t *v;
    int rc;
    *has_upstreams = false;
    json_object_foreach(obj, name, v)
    {
        if (!strcmp(name, "name")) {
            if (!json_is_string(v)) {
                config_error_set(err, "name", "must be given as a string");
                return -EINVAL;
            }
            if (is_create) {
                if ((rc = config_key_validate("name", json_string_value(v), err)) < 0)
                    return rc;
                snprintf(g->name, sizeof(g->name), "%s", json_string_value(v));
            } else if (strcmp(json_string_value(v), g->name) != 0) {
                config_error_set(err, "name", "cannot be changed (this is %s)",
                                 config_quote(q, sizeof(q), g->name));
                return -EINVAL;
            }
        } else if (!strcmp(name, "type")) {
            enum proxy_type t = PROXY_DOCKER;
            if (!json_is_string(v)) {
                config_error_set(err, "type", "must be given as a string");
                return -EINVAL;
            }
            if ((rc = config_type_parse(json_string_value(v), &t, err)) < 0)
                return rc;
            if (is_create) {
                g->type = t;
            } else if (t != g->type) {
                config_error_set(err, "type", "cannot be changed (this is a %s registry)",
                                 config_type_name(g->type));
                return -EINVAL;
            }
        } else if (!strcmp(name, "upstreams")) {
            char **ups = NULL;
            if (!json_is_null(v) && (rc = config_strv_from_json(name, v, &ups, err)) < 0)
                return rc;
            config_strv_free(g->upstreams);
            g->upstreams = ups;
            *has_upstreams = true;
        } else if (config_registry_policy_row(name)) {
            continue; /* once name and type are known, below */
        } else {
            config_error_set(err, name, "unknown field %s", config_quote(q, sizeof(q), name));
            return -EINVAL;
        }
    }
    if (is_create && !g->name[0]) {
        config_error_set(err, "name", "must be given as a string");
        return -EINVAL;
    }
    if (is_create && !json_is_string(json_object_get(obj, "type"))) {
        config_error_set(err, "type", "must be given as a string");
        return -EINVAL;
    }
    return config_registry_policy_apply(g, obj, err);
}

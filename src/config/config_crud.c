/*
 * config_crud: prepare (apply fields, validate) and commit (configdb) for
 * proxies and registries; see include/upstreamfs/config_crud.h.
 */
#include "upstreamfs/config_crud.h"
#include "upstreamfs/proxy_fields.h"
#include "upstreamfs/secret.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void crud_secret_free(char *secret)
{
    if (secret) {
        secret_wipe(secret, strlen(secret));
        free(secret);
    }
}

/* ---- proxies --------------------------------------------------------------------------- */

/*
 * A secret never silently follows a new destination: when a proxy with a
 * stored secret gets a change to where it connects (a FIELD_DESTINATION row:
 * url, mirrors, source, http_proxy, aws_endpoint, the TLS settings), the same change
 * must give the secret again or leave the access-key auth (configdb then
 * drops the secret). old is the stored proxy, p the validated result.
 */
static int check_destination(const struct proxy *old, const struct proxy *p, bool new_secret,
                             struct config_error *err)
{
    if (!old->secret_set || old->auth != AUTH_ACCESS_KEY || new_secret ||
        p->auth != AUTH_ACCESS_KEY)
        return 0;
    for (size_t i = 0; i < proxy_fields_count; i++) {
        const struct proxy_field *f = &proxy_fields[i];
        bool changed;
        if (!(f->flags & FIELD_DESTINATION))
            continue;
        if (f->kind == FIELD_PEM) {
            /* Any PEM given is a change; "" is one only when there is a file to remove. */
            const struct proxy_pem *m = (const struct proxy_pem *)((const char *)p + f->offset);
            changed = m->text && (*m->text || m->path);
        } else {
            json_t *a = proxy_field_get_json(f, old), *b = proxy_field_get_json(f, p);
            changed = !json_equal(a, b);
            json_decref(a);
            json_decref(b);
        }
        if (changed) {
            config_error_set(err, f->name,
                             "changing where a proxy with a stored secret connects needs the "
                             "secret again (--secret-key-file/-stdin) or --auth anonymous");
            return -EINVAL;
        }
    }
    return 0;
}

int crud_proxy_prepare(struct state *st, const char *key, json_t *fields, bool secret_coming,
                       struct proxy *out, char **secret, struct config_error *err)
{
    struct proxy old = {0};
    int rc;
    *secret = NULL;
    memset(out, 0, sizeof(*out));
    if (key && ((rc = configdb_proxy_get(st, key, out, err)) < 0 ||
                (rc = config_proxy_copy(&old, out)) < 0))
        return rc;
    if ((rc = config_proxy_apply_json(out, fields, key == NULL, secret, err)) < 0)
        goto out;
    /* A stored secret counts only while the auth still takes one (configdb drops it). */
    bool has_secret = *secret || secret_coming || (out->secret_set && out->auth == AUTH_ACCESS_KEY);
    if ((rc = config_proxy_validate(out, has_secret, err)) == 0 && key)
        rc = check_destination(&old, out, *secret || secret_coming, err);
out:
    if (rc < 0) {
        crud_secret_free(*secret);
        *secret = NULL;
    }
    config_proxy_clear(&old);
    return rc;
}

int crud_proxy_check_remote(json_t *fields, struct config_error *err)
{
    const char *name;
    json_t *v;
    json_object_foreach(fields, name, v)
    {
        const struct proxy_field *f = proxy_field_find(name);
        char pem[64];
        size_t n = strlen(name);
        if (!f || !(f->flags & FIELD_LOCAL) || json_is_null(v))
            continue;
        /* ca_file -> ca_pem, client_cert -> client_cert_pem */
        if (n > 5 && !strcmp(name + n - 5, "_file"))
            n -= 5;
        snprintf(pem, sizeof(pem), "%.*s_pem", (int)n, name);
        /* One answer whatever the value: nothing here opens or looks at the file. */
        config_error_set(err, name,
                         "a file name is taken only by the local command line, not by the "
                         "HTTP API; send the PEM text in %s",
                         pem);
        return -EINVAL;
    }
    return 0;
}

int crud_proxy_commit(struct state *st, bool create, struct proxy *p, const char *secret,
                      struct config_error *err)
{
    return create ? configdb_proxy_create(st, p, secret, err)
                  : configdb_proxy_update(st, p, secret, err);
}

static int proxy_write(struct state *st, const char *key, json_t *fields, struct proxy *out,
                       struct config_error *err)
{
    char *secret = NULL;
    int rc = crud_proxy_prepare(st, key, fields, false, out, &secret, err);
    if (rc == 0)
        rc = crud_proxy_commit(st, key == NULL, out, secret, err);
    crud_secret_free(secret);
    return rc;
}

int crud_proxy_create(struct state *st, json_t *fields, struct proxy *out, struct config_error *err)
{
    return proxy_write(st, NULL, fields, out, err);
}

int crud_proxy_update(struct state *st, const char *key, json_t *fields, struct proxy *out,
                      struct config_error *err)
{
    return proxy_write(st, key, fields, out, err);
}

int crud_proxy_dry_run(struct state *st, json_t *fields, struct proxy *out,
                       struct config_error *err)
{
    char *secret = NULL;
    /* Its one caller is the web page's check as you type: it answers what the API would. */
    int rc = crud_proxy_check_remote(fields, err);
    if (rc < 0) {
        memset(out, 0, sizeof(*out));
        return rc;
    }
    rc = crud_proxy_prepare(st, NULL, fields, false, out, &secret, err);
    crud_secret_free(secret);
    return rc == 0 ? configdb_name_free(st, "key", out->key, err) : rc;
}

int crud_proxy_delete(struct state *st, const char *key, struct config_error *err)
{
    return configdb_proxy_delete(st, key, err);
}

/* ---- registries ------------------------------------------------------------------------ */

int crud_registry_prepare(struct state *st, const char *name, json_t *fields, struct registry *out,
                          bool *has_upstreams, struct config_error *err)
{
    int rc;
    memset(out, 0, sizeof(*out));
    if (name && (rc = configdb_registry_get(st, name, out, err)) < 0)
        return rc;
    if ((rc = config_registry_apply_json(out, fields, name == NULL, has_upstreams, err)) < 0)
        return rc;
    return config_registry_validate(out, err);
}

int crud_registry_create(struct state *st, json_t *fields, struct registry *out,
                         struct config_error *err)
{
    bool ups;
    int rc = crud_registry_prepare(st, NULL, fields, out, &ups, err);
    return rc == 0 ? configdb_registry_create(st, out, err) : rc;
}

int crud_registry_update(struct state *st, const char *name, json_t *fields, struct registry *out,
                         bool *changed, struct config_error *err)
{
    int rc = crud_registry_prepare(st, name, fields, out, changed, err);
    bool policy = false;
    const char *member;
    json_t *v;
    json_object_foreach(fields, member, v)
        policy = policy || config_registry_policy_row(member);
    if (rc == 0 && *changed)
        rc = configdb_registry_set_upstreams(st, out->name, out->upstreams, err);
    if (rc == 0 && policy) {
        rc = configdb_registry_set_policy(st, out, err);
        *changed = rc == 0;
    }
    return rc;
}

int crud_registry_delete(struct state *st, const char *name, struct config_error *err)
{
    return configdb_registry_delete(st, name, err);
}

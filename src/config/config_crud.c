/*
 * config_crud: prepare (apply fields, validate) and commit (configdb) for
 * proxies and registries; see include/upstreamfs/config_crud.h.
 */
#include "upstreamfs/config_crud.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void crud_secret_free(char *secret)
{
    if (secret) {
        explicit_bzero(secret, strlen(secret));
        free(secret);
    }
}

/* ---- proxies --------------------------------------------------------------------------- */

int crud_proxy_prepare(struct state *st, const char *key, json_t *fields, bool secret_coming,
                       struct proxy *out, char **secret, struct config_error *err)
{
    int rc;
    *secret = NULL;
    memset(out, 0, sizeof(*out));
    if (key && (rc = configdb_proxy_get(st, key, out, err)) < 0)
        return rc;
    if ((rc = config_proxy_apply_json(out, fields, key == NULL, secret, err)) < 0)
        return rc;
    /* A stored secret counts only while the auth still takes one (configdb drops it). */
    bool has_secret = *secret || secret_coming || (out->secret_set && out->auth == AUTH_ACCESS_KEY);
    if ((rc = config_proxy_validate(out, has_secret, err)) < 0) {
        crud_secret_free(*secret);
        *secret = NULL;
    }
    return rc;
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
    int rc = crud_proxy_prepare(st, NULL, fields, false, out, &secret, err);
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
    if (rc == 0 && *changed)
        rc = configdb_registry_set_upstreams(st, out->name, out->upstreams, err);
    return rc;
}

int crud_registry_delete(struct state *st, const char *name, struct config_error *err)
{
    return configdb_registry_delete(st, name, err);
}

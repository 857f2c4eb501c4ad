/*
 * configdb_registry: the registry rows of the config store and their ordered
 * upstream lists (see configdb.h for the contract, configdb.c for the
 * transaction rule every write follows).
 *
 * A registry's upstreams are rows of registry_upstreams (registry, position,
 * proxy); each must name an existing proxy of a type the registry accepts
 * (config_registry_accepts), checked inside the write's transaction.
 */
#include "configdb_i.h"
#include "upstreamfs/log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- registries ------------------------------------------------------------------------ */

/*
 * Whether registries has the column policy_json (the registry's package policy as the JSON
 * members of config_registry_policy_json, NULL: none), added here to a state dir made before it
 * (as src/config/proxy_rows.c adds proxies' columns): false only when it cannot be added.
 */
static bool policy_column(struct state *st)
{
    sqlite3_stmt *s = NULL;
    bool have = false;
    if (sqlite3_prepare_v2(st->db,
                           "SELECT 1 FROM pragma_table_info('registries') WHERE name = 'policy_json'",
                           -1, &s, NULL) == SQLITE_OK)
        have = sqlite3_step(s) == SQLITE_ROW;
    sqlite3_finalize(s);
    if (!have &&
        sqlite3_exec(st->db, "ALTER TABLE registries ADD COLUMN policy_json TEXT", NULL, NULL,
                     NULL) == SQLITE_OK) {
        log_debug("configdb: added column policy_json to registries");
        have = true;
    }
    return have;
}

/* Binds r's policy (NULL: none) at parameter i. */
static int bind_policy(sqlite3_stmt *s, int i, const struct registry *r)
{
    json_t *o = config_registry_policy_json(r);
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(o);
    if (r->policy && !text)
        return -ENOMEM;
    int rc = configdb__bind_text(s, i, text);
    free(text);
    return rc;
}

/* Reads a stored policy onto r (name and type set): a text that does not read is -EIO. */
static int read_policy(struct registry *r, const char *text)
{
    struct config_error err = {0};
    json_t *o = text ? json_loads(text, 0, NULL) : NULL;
    int rc = !text ? 0 : !json_is_object(o) ? -EIO : config_registry_policy_apply(r, o, &err);
    json_decref(o);
    if (rc < 0)
        log_error("configdb: the policy of registry %s does not read: %s", r->name, err.message);
    return rc;
}

static int registry_not_found(const char *name, struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    config_error_set(err, "name", "no registry named %s", config_quote(q, sizeof(q), name));
    return -ENOENT;
}

/* Every upstream exists and is a proxy type that a registry of type rt takes. */
static int check_upstreams(struct state *st, enum proxy_type rt, char *const *ups,
                           struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    for (size_t i = 0; ups && ups[i]; i++) {
        char *type = NULL;
        enum proxy_type pt;
        int rc = configdb__select_text(st, "SELECT type FROM proxies WHERE key = ?1", ups[i], &type);
        if (rc < 0)
            return rc;
        if (!type) {
            config_error_set(err, "upstreams", "no proxy named %s",
                             config_quote(q, sizeof(q), ups[i]));
            return -EINVAL;
        }
        rc = config_type_lookup(type, &pt);
        free(type);
        if (rc < 0)
            return -EIO;
        if (!config_registry_accepts(rt, pt)) {
            config_error_set(err, "upstreams", "%s is a %s proxy; a %s registry takes %s",
                             config_quote(q, sizeof(q), ups[i]), config_type_name(pt),
                             config_type_name(rt),
                             rt == PROXY_DOCKER ? "docker and ecr proxies" : "only its own type");
            return -EINVAL;
        }
    }
    return 0;
}

static int insert_upstreams(struct state *st, const char *name, char *const *ups)
{
    sqlite3_stmt *s = NULL;
    int rc = configdb__prepare(
        st, "INSERT INTO registry_upstreams (registry, position, proxy) VALUES (?1, ?2, ?3)", &s);
    for (size_t i = 0; rc == 0 && ups && ups[i]; i++) {
        sqlite3_reset(s);
        sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)i);
        sqlite3_bind_text(s, 3, ups[i], -1, SQLITE_STATIC);
        rc = configdb__step_done(st, s);
    }
    sqlite3_finalize(s);
    return rc;
}

int configdb_registry_create(struct state *st, struct registry *r, struct config_error *err)
{
    sqlite3_stmt *s = NULL;
    int rc;

    if ((rc = config_registry_validate(r, err)) < 0)
        return rc;
    if ((rc = state_begin(st->db)) < 0)
        return rc;
    if ((rc = configdb_name_free(st, "name", r->name, err)) < 0 ||
        (rc = check_upstreams(st, r->type, r->upstreams, err)) < 0)
        goto fail;
    if (r->policy && !policy_column(st)) {
        rc = -EIO;
        goto fail;
    }
    if ((rc = configdb__prepare(st,
                                r->policy ? "INSERT INTO registries (name, type, policy_json) "
                                            "VALUES (?1, ?2, ?3)"
                                          : "INSERT INTO registries (name, type) VALUES (?1, ?2)",
                                &s)) < 0)
        goto fail;
    sqlite3_bind_text(s, 1, r->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, config_type_name(r->type), -1, SQLITE_STATIC);
    if (r->policy && (rc = bind_policy(s, 3, r)) < 0)
        goto fail;
    if ((rc = configdb__step_done(st, s)) < 0 || (rc = insert_upstreams(st, r->name, r->upstreams)) < 0 ||
        (rc = state_commit(st->db)) < 0)
        goto fail;
    sqlite3_finalize(s);
    log_info("config: registry %s (%s) created", r->name, config_type_name(r->type));
    return 0;
fail:
    sqlite3_finalize(s);
    state_rollback(st->db);
    return rc;
}

int configdb_registry_set_upstreams(struct state *st, const char *name, char **upstreams,
                                    struct config_error *err)
{
    sqlite3_stmt *s = NULL;
    char *type = NULL;
    struct registry r = {.upstreams = upstreams};
    int rc;

    if ((rc = config_key_validate("name", name, err)) < 0)
        return rc;
    if ((rc = state_begin(st->db)) < 0)
        return rc;
    if ((rc = configdb__select_text(st, "SELECT type FROM registries WHERE name = ?1", name, &type)) < 0)
        goto fail;
    if (!type) {
        rc = registry_not_found(name, err);
        goto fail;
    }
    snprintf(r.name, sizeof(r.name), "%s", name);
    if (config_type_lookup(type, &r.type) < 0) {
        rc = -EIO;
        goto fail;
    }
    if ((rc = config_registry_validate(&r, err)) < 0 ||
        (rc = check_upstreams(st, r.type, upstreams, err)) < 0)
        goto fail;
    if ((rc = configdb__prepare(st, "DELETE FROM registry_upstreams WHERE registry = ?1", &s)) < 0)
        goto fail;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    if ((rc = configdb__step_done(st, s)) < 0 || (rc = insert_upstreams(st, name, upstreams)) < 0 ||
        (rc = state_commit(st->db)) < 0)
        goto fail;
    log_info("config: registry %s (%s) upstreams set", name, type);
    rc = 0;
    goto out;
fail:
    state_rollback(st->db);
out:
    sqlite3_finalize(s);
    free(type);
    return rc;
}

int configdb_registry_set_policy(struct state *st, const struct registry *r,
                                 struct config_error *err)
{
    sqlite3_stmt *s = NULL;
    int rc;
    if ((rc = config_registry_validate(r, err)) < 0)
        return rc;
    if (!policy_column(st))
        return -EIO;
    if ((rc = configdb__prepare(st, "UPDATE registries SET policy_json = ?2 WHERE name = ?1", &s)) <
        0)
        return rc;
    sqlite3_bind_text(s, 1, r->name, -1, SQLITE_STATIC);
    if ((rc = bind_policy(s, 2, r)) == 0 && (rc = configdb__step_done(st, s)) == 0)
        rc = sqlite3_changes(st->db) == 1 ? 0 : registry_not_found(r->name, err);
    sqlite3_finalize(s);
    if (rc == 0)
        log_info("config: registry %s (%s) policy set", r->name, config_type_name(r->type));
    return rc;
}

int configdb_registry_delete(struct state *st, const char *name, struct config_error *err)
{
    sqlite3_stmt *s = NULL;
    char *type = NULL;
    int rc;

    if ((rc = config_key_validate("name", name, err)) < 0)
        return rc;
    if ((rc = state_begin(st->db)) < 0)
        return rc;
    if ((rc = configdb__select_text(st, "SELECT type FROM registries WHERE name = ?1", name, &type)) < 0)
        goto fail;
    if (!type) {
        rc = registry_not_found(name, err);
        goto fail;
    }
    if ((rc = configdb__prepare(st, "DELETE FROM registries WHERE name = ?1", &s)) < 0)
        goto fail;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    if ((rc = configdb__step_done(st, s)) < 0 || (rc = state_commit(st->db)) < 0)
        goto fail;
    log_info("config: registry %s (%s) deleted", name, type);
    rc = 0;
    goto out;
fail:
    state_rollback(st->db);
out:
    sqlite3_finalize(s);
    free(type);
    return rc;
}

/*
 * Reads registries with their upstreams in one statement (one snapshot):
 * rows come ordered by name, then position; a registry without upstreams
 * comes as one row with a NULL proxy. name NULL reads all.
 */
static int registry_read(struct state *st, const char *name, struct registry **out, size_t *n)
{
    sqlite3_stmt *s = NULL;
    struct registry *list = NULL;
    size_t len = 0;
    int rc = configdb__prepare(st,
                     policy_column(st)
                         ? "SELECT r.name, r.type, u.proxy, r.policy_json FROM registries r "
                           "LEFT JOIN registry_upstreams u ON u.registry = r.name "
                           "WHERE ?1 IS NULL OR r.name = ?1 ORDER BY r.name, u.position"
                         : "SELECT r.name, r.type, u.proxy, NULL FROM registries r "
                           "LEFT JOIN registry_upstreams u ON u.registry = r.name "
                           "WHERE ?1 IS NULL OR r.name = ?1 ORDER BY r.name, u.position",
                     &s);
    *out = NULL;
    *n = 0;
    if (rc < 0)
        return rc;
    configdb__bind_text(s, 1, name);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *rname = (const char *)sqlite3_column_text(s, 0);
        const char *proxy = (const char *)sqlite3_column_text(s, 2);
        if (!rname) {
            rc = -EIO;
            goto fail;
        }
        if (!len || strcmp(list[len - 1].name, rname) != 0) {
            struct registry *nl = realloc(list, (len + 1) * sizeof(*nl));
            if (!nl) {
                rc = -ENOMEM;
                goto fail;
            }
            list = nl;
            memset(&list[len], 0, sizeof(list[len]));
            snprintf(list[len].name, sizeof(list[len].name), "%s", rname);
            len++;
            if (config_type_lookup((const char *)sqlite3_column_text(s, 1), &list[len - 1].type) <
                0) {
                rc = -EIO;
                goto fail;
            }
            if ((rc = read_policy(&list[len - 1], (const char *)sqlite3_column_text(s, 3))) < 0)
                goto fail;
        }
        if (proxy && config_strv_push(&list[len - 1].upstreams, proxy) < 0) {
            rc = -ENOMEM;
            goto fail;
        }
    }
    if (rc != SQLITE_DONE) {
        rc = state_sqlite_errno(rc);
        goto fail;
    }
    sqlite3_finalize(s);
    *out = list;
    *n = len;
    return 0;
fail:
    sqlite3_finalize(s);
    configdb_registry_list_free(list, len);
    return rc;
}

int configdb_registry_get(struct state *st, const char *name, struct registry *out,
                          struct config_error *err)
{
    struct registry *list = NULL;
    size_t n = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = config_key_validate("name", name, err)) < 0)
        return rc;
    if ((rc = registry_read(st, name, &list, &n)) < 0)
        return rc;
    if (n == 0)
        return registry_not_found(name, err);
    *out = list[0];
    free(list);
    return 0;
}

int configdb_registry_list(struct state *st, struct registry **out, size_t *n)
{
    return registry_read(st, NULL, out, n);
}

void configdb_registry_list_free(struct registry *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        config_registry_clear(&list[i]);
    free(list);
}


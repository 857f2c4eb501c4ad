/*
 * configdb_proxy: the proxy rows of the config store (see configdb.h for the
 * contract and configdb.c for the transaction rule every write follows).
 *
 * A proxy is validated (config.c), its file fields are made absolute and
 * checked readable, then its row, TLS files and secret file are written in
 * one BEGIN IMMEDIATE transaction; a failure rolls the row back and removes
 * what this write created.
 */
#include "configdb_i.h"
#include "upstreamfs/log.h"
#include "upstreamfs/proxy_fields.h"
#include "proxy_rows.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- files named by a proxy ------------------------------------------------------------ */

/*
 * Makes a path absolute (against the caller's working directory, since the
 * daemon that later reads it runs elsewhere) and checks that it names a
 * readable regular file. Symlinks are kept, not resolved, so that a
 * rotated certificate behind a stable link keeps working.
 */
static int check_file(const char *field, char **path, struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    char *abs = NULL;
    struct stat sb;
    if (!*path)
        return 0;
    if ((*path)[0] != '/') {
        char *cwd = getcwd(NULL, 0);
        if (!cwd)
            return -errno;
        int n = asprintf(&abs, "%s/%s", cwd, *path);
        free(cwd);
        if (n < 0)
            return -ENOMEM;
    } else if (!(abs = strdup(*path))) {
        return -ENOMEM;
    }
    /* O_NONBLOCK: a FIFO must not hang the command; it fails the regular-file test below. */
    int fd = open(abs, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    const char *why = NULL;
    if (fd < 0 || fstat(fd, &sb) < 0)
        why = strerror(errno);
    else if (S_ISDIR(sb.st_mode))
        why = "is a directory";
    else if (!S_ISREG(sb.st_mode))
        why = "not a regular file";
    if (why) {
        config_error_set(err, field, "cannot read %s: %s", config_quote(q, sizeof(q), abs), why);
        if (fd >= 0)
            close(fd);
        free(abs);
        return -EINVAL;
    }
    close(fd);
    free(*path);
    *path = abs;
    return 0;
}

/* Every FIELD_PATH of the table names a readable file. */
static int check_files(struct proxy *p, struct config_error *err)
{
    for (size_t i = 0; i < proxy_fields_count; i++) {
        const struct proxy_field *f = &proxy_fields[i];
        int rc;
        if (f->kind == FIELD_PATH &&
            (rc = check_file(f->name, (char **)((char *)p + f->offset), err)) < 0)
            return rc;
    }
    return 0;
}

/* Reads a proxy row and whether its secret file exists. */
static int row_to_proxy(struct state *st, sqlite3_stmt *s, struct proxy *p)
{
    int rc = proxy_rows_read(s, p);
    if (rc < 0 || (rc = configdb__tls_load(st, p)) < 0 || (rc = configdb__secret_exists(st, p->key)) < 0)
        return rc;
    p->secret_set = rc == 1;
    return 0;
}

static int proxy_not_found(const char *key, struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    config_error_set(err, "key", "no proxy named %s", config_quote(q, sizeof(q), key));
    return -ENOENT;
}

/* ---- proxies --------------------------------------------------------------------------- */

int configdb_proxy_create(struct state *st, struct proxy *p, const char *secret,
                          struct config_error *err)
{
    sqlite3_stmt *s = NULL;
    int rc;

    if ((rc = config_proxy_validate(p, secret != NULL, err)) < 0 || (rc = check_files(p, err)) < 0)
        return rc;
    if ((rc = state_begin(st->db)) < 0)
        return rc;
    if ((rc = configdb_name_free(st, "key", p->key, err)) < 0)
        goto fail;
    if ((rc = proxy_rows_prepare(st->db, 'I', NULL, &s)) < 0 || (rc = proxy_rows_bind(s, p)) < 0 ||
        (rc = configdb__step_done(st, s)) < 0)
        goto fail;
    /* No row had this key, so a secret or TLS file under it is a leftover: never inherit it. */
    if ((rc = secret ? configdb__secret_write(st, p->key, secret) : configdb__secret_remove(st, p->key)) < 0 ||
        (rc = configdb__tls_remove(st, p->key)) < 0 || (rc = configdb__tls_store(st, p)) < 0)
        goto fail_files;
    if ((rc = state_commit(st->db)) < 0)
        goto fail_files;
    sqlite3_finalize(s);
    p->secret_set = secret != NULL;
    log_info("config: proxy %s (%s) created", p->key, config_type_name(p->type));
    return 0;
fail_files:
    configdb__secret_remove(st, p->key);
    configdb__tls_remove(st, p->key);
fail:
    sqlite3_finalize(s);
    state_rollback(st->db);
    return rc;
}

int configdb_proxy_update(struct state *st, struct proxy *p, const char *secret,
                          struct config_error *err)
{
    sqlite3_stmt *s = NULL;
    char *type = NULL;
    int rc;

    if ((rc = config_key_validate("key", p->key, err)) < 0)
        return rc;
    if ((rc = state_begin(st->db)) < 0)
        return rc;
    if ((rc = configdb__select_text(st, "SELECT type FROM proxies WHERE key = ?1", p->key, &type)) < 0)
        goto fail;
    if (!type) {
        rc = proxy_not_found(p->key, err);
        goto fail;
    }
    if (strcmp(type, config_type_name(p->type)) != 0) {
        config_error_set(err, "type", "cannot be changed (this is a %s proxy)", type);
        rc = -EINVAL;
        goto fail;
    }
    /* An old secret carries over only while the auth still uses one. */
    int old = configdb__secret_exists(st, p->key);
    if (old < 0) {
        rc = old;
        goto fail;
    }
    bool keep = old == 1 && p->auth == AUTH_ACCESS_KEY;
    if ((rc = config_proxy_validate(p, secret != NULL || keep, err)) < 0 ||
        (rc = check_files(p, err)) < 0)
        goto fail;
    if ((rc = proxy_rows_prepare(st->db, 'U', NULL, &s)) < 0 || (rc = proxy_rows_bind(s, p)) < 0 ||
        (rc = configdb__step_done(st, s)) < 0)
        goto fail;
    if (secret)
        rc = configdb__secret_write(st, p->key, secret);
    else if (old == 1 && !keep)
        rc = configdb__secret_remove(st, p->key);
    if (rc < 0 || (rc = configdb__tls_store(st, p)) < 0 || (rc = state_commit(st->db)) < 0)
        goto fail;
    sqlite3_finalize(s);
    free(type);
    p->secret_set = secret != NULL || keep;
    log_info("config: proxy %s (%s) updated", p->key, config_type_name(p->type));
    return 0;
fail:
    sqlite3_finalize(s);
    free(type);
    state_rollback(st->db);
    return rc;
}

int configdb_proxy_delete(struct state *st, const char *key, struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    char *type = NULL, *users = NULL;
    sqlite3_stmt *s = NULL;
    int rc;

    if ((rc = config_key_validate("key", key, err)) < 0)
        return rc;
    if ((rc = state_begin(st->db)) < 0)
        return rc;
    if ((rc = configdb__select_text(st, "SELECT type FROM proxies WHERE key = ?1", key, &type)) < 0)
        goto fail;
    if (!type) {
        rc = proxy_not_found(key, err);
        goto fail;
    }
    if ((rc = configdb__select_text(st,
                          "SELECT group_concat(registry, ', ') FROM (SELECT DISTINCT registry "
                          "FROM registry_upstreams WHERE proxy = ?1 ORDER BY registry)",
                          key, &users)) < 0)
        goto fail;
    if (users) {
        config_error_set(err, "key", "proxy %s is an upstream of %s %s; remove it there first",
                         config_quote(q, sizeof(q), key),
                         strchr(users, ',') ? "registries" : "registry", users);
        rc = -EBUSY;
        goto fail;
    }
    if ((rc = configdb__prepare(st, "DELETE FROM proxies WHERE key = ?1", &s)) < 0)
        goto fail;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    if ((rc = configdb__step_done(st, s)) < 0 || (rc = configdb__secret_remove(st, key)) < 0 ||
        (rc = configdb__tls_remove(st, key)) < 0 || (rc = state_commit(st->db)) < 0)
        goto fail;
    log_info("config: proxy %s (%s) deleted", key, type);
    rc = 0;
    goto out;
fail:
    state_rollback(st->db);
out:
    sqlite3_finalize(s);
    free(type);
    free(users);
    return rc;
}

int configdb_proxy_get(struct state *st, const char *key, struct proxy *out,
                       struct config_error *err)
{
    sqlite3_stmt *s = NULL;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = config_key_validate("key", key, err)) < 0)
        return rc;
    if ((rc = proxy_rows_prepare(st->db, 'S', "WHERE key = ?1", &s)) < 0)
        return rc;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        rc = row_to_proxy(st, s, out);
    else if (rc == SQLITE_DONE)
        rc = proxy_not_found(key, err);
    else
        rc = state_sqlite_errno(rc);
    sqlite3_finalize(s);
    if (rc < 0)
        config_proxy_clear(out);
    return rc;
}

int configdb_proxy_list(struct state *st, struct proxy **out, size_t *n)
{
    sqlite3_stmt *s = NULL;
    struct proxy *list = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    *n = 0;
    if ((rc = proxy_rows_prepare(st->db, 'S', "ORDER BY key", &s)) < 0)
        return rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct proxy *nl = realloc(list, (len + 1) * sizeof(*nl));
        if (!nl) {
            rc = -ENOMEM;
            goto fail;
        }
        list = nl;
        rc = row_to_proxy(st, s, &list[len]);
        len++;
        if (rc < 0)
            goto fail;
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
    configdb_proxy_list_free(list, len);
    return rc;
}

void configdb_proxy_list_free(struct proxy *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        config_proxy_clear(&list[i]);
    free(list);
}


/*
 * configdb: proxies and registries in the state database, secrets in files
 * beside it (see configdb.h for the contract).
 *
 * Every write is: validate what can be validated without the database
 * (config.c), then BEGIN IMMEDIATE, then the checks that need the database
 * (name taken, upstream exists and fits), then the rows, then the secret
 * file, then COMMIT. Doing the secret file inside the transaction means two
 * writers of one key are serialised by SQLite's write lock, and a failure
 * before COMMIT rolls the rows back and removes a new secret, so invalid
 * input never leaves anything behind. (A COMMIT that fails after an update
 * replaced a secret leaves the new secret with the old row: the one case not
 * undone, and COMMIT failing after BEGIN IMMEDIATE took the lock needs a
 * failing disk.)
 *
 * This file holds the statement helpers, the secret files and the TLS files
 * (configdb_i.h); the proxy rows are in configdb_proxy.c, the registry rows
 * in configdb_registry.c.
 *
 * Secret files are named after the key, which config_key_validate has
 * confined to [a-z0-9_.-] with a leading letter: a key can never name a path
 * outside secrets/, nor collide with the ".<key>.tmp.<pid>" temporaries.
 */
#include "configdb_i.h"
#include "upstreamfs/log.h"
#include "upstreamfs/proxy_fields.h"
#include "upstreamfs/file_read.h"
#include "upstreamfs/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- statements ------------------------------------------------------------------------ */

int configdb__prepare(struct state *st, const char *sql, sqlite3_stmt **out)
{
    int rc = sqlite3_prepare_v2(st->db, sql, -1, out, NULL);
    if (rc != SQLITE_OK) {
        log_error("configdb: %s: %s", sql, sqlite3_errmsg(st->db));
        return state_sqlite_errno(rc);
    }
    return 0;
}

/* Steps a statement that returns no rows. */
int configdb__step_done(struct state *st, sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE)
        return 0;
    log_error("configdb: %s", sqlite3_errmsg(st->db));
    return state_sqlite_errno(rc);
}

int configdb__bind_text(sqlite3_stmt *s, int i, const char *v)
{
    return v ? sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(s, i);
}

static char *configdb__column_dup(sqlite3_stmt *s, int i)
{
    const unsigned char *v = sqlite3_column_text(s, i);
    return v ? strdup((const char *)v) : NULL;
}

/* Runs "SELECT ... WHERE x = ?1" and copies column 0 of the first row; NULL if no row or NULL. */
int configdb__select_text(struct state *st, const char *sql, const char *arg, char **out)
{
    sqlite3_stmt *s = NULL;
    int rc = configdb__prepare(st, sql, &s);
    *out = NULL;
    if (rc < 0)
        return rc;
    sqlite3_bind_text(s, 1, arg, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        bool null = sqlite3_column_type(s, 0) == SQLITE_NULL;
        rc = null || (*out = configdb__column_dup(s, 0)) ? 0 : -ENOMEM;
    } else if (rc == SQLITE_DONE) {
        rc = 0;
    } else {
        log_error("configdb: %s", sqlite3_errmsg(st->db));
        rc = state_sqlite_errno(rc);
    }
    sqlite3_finalize(s);
    return rc;
}

int configdb_name_free(struct state *st, const char *field, const char *name,
                       struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    char *hit = NULL;
    int rc = configdb__select_text(st,
                         "SELECT 'proxy' FROM proxies WHERE key = ?1 "
                         "UNION ALL SELECT 'registry' FROM registries WHERE name = ?1",
                         name, &hit);
    if (rc < 0)
        return rc;
    if (hit) {
        config_error_set(err, field, "a %s named %s already exists", hit,
                         config_quote(q, sizeof(q), name));
        free(hit);
        return -EEXIST;
    }
    return 0;
}

/* ---- secrets --------------------------------------------------------------------------- */

static int secret_path(struct state *st, const char *key, char **out)
{
    if (config_key_validate("key", key, NULL) < 0)
        return -EINVAL;
    char *rel = NULL;
    if (asprintf(&rel, "secrets/%s", key) < 0)
        return -ENOMEM;
    *out = state_path(st, rel);
    free(rel);
    return *out ? 0 : -ENOMEM;
}

/* 1 if the proxy has a secret file, 0 if not, or a negative errno. */
int configdb__secret_exists(struct state *st, const char *key)
{
    char *path = NULL;
    struct stat sb;
    int rc = secret_path(st, key, &path);
    if (rc < 0)
        return rc;
    rc = lstat(path, &sb) == 0 ? 1 : errno == ENOENT ? 0 : -errno;
    free(path);
    return rc;
}

int configdb__secret_remove(struct state *st, const char *key)
{
    char *path = NULL;
    int rc = secret_path(st, key, &path);
    if (rc < 0)
        return rc;
    rc = unlink(path) == 0 || errno == ENOENT ? 0 : -errno;
    free(path);
    return rc;
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/*
 * Writes secret to the state dir's file reldir/name through a 0600 temporary
 * and rename, so a reader sees the old content or the new one, never a part,
 * and no moment exists where the file is readable by others.
 */
static int private_file_write(struct state *st, const char *reldir, const char *name,
                              const char *secret)
{
    char *path = NULL, *tmp = NULL, *dir = NULL;
    int fd = -1, rc = 0;

    if (!(dir = state_path(st, reldir)) || asprintf(&path, "%s/%s", dir, name) < 0 ||
        asprintf(&tmp, "%s/.%s.tmp.%ld", dir, name, (long)getpid()) < 0) {
        tmp = NULL;
        rc = -ENOMEM;
        goto out;
    }
    for (int attempt = 0; fd < 0; attempt++) {
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        /* A leftover of a crashed process that had our pid: ours to remove. */
        if (fd < 0 && (errno != EEXIST || attempt > 0 || unlink(tmp) < 0)) {
            rc = -errno;
            goto out;
        }
    }
    if (fchmod(fd, 0600) < 0 || (rc = write_all(fd, secret, strlen(secret))) < 0 || fsync(fd) < 0) {
        rc = rc < 0 ? rc : -errno;
        goto fail;
    }
    if (close(fd) < 0) {
        fd = -1;
        rc = -errno;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        rc = -errno;
        goto fail;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    rc = 0;
    goto out;
fail:
    log_error("configdb: cannot write %s/%s: %s", reldir, name, strerror(-rc));
    if (fd >= 0)
        close(fd);
    unlink(tmp);
out:
    free(path);
    free(tmp);
    free(dir);
    return rc;
}

int configdb__secret_write(struct state *st, const char *key, const char *secret)
{
    char *path = NULL;
    int rc = secret_path(st, key, &path); /* checks the key */
    free(path);
    return rc < 0 ? rc : private_file_write(st, "secrets", key, secret);
}

/* ---- TLS files ------------------------------------------------------------------------- */

/* STATEDIR/tls/KEY, or with field STATEDIR/tls/KEY/FIELD; NULL on ENOMEM. */
static char *tls_path(struct state *st, const char *key, const char *field)
{
    char *rel = NULL, *out;
    if (asprintf(&rel, field ? "tls/%s/%s" : "tls/%s", key, field) < 0)
        return NULL;
    out = state_path(st, rel);
    free(rel);
    return out;
}

/* Fills each PEM row's path with its stored file (NULL when there is none). */
int configdb__tls_load(struct state *st, struct proxy *p)
{
    struct stat sb;
    for (size_t i = 0; i < proxy_fields_count; i++) {
        const struct proxy_field *f = &proxy_fields[i];
        if (f->kind != FIELD_PEM)
            continue;
        struct proxy_pem *m = (struct proxy_pem *)((char *)p + f->offset);
        char *path = tls_path(st, p->key, f->name);
        if (!path)
            return -ENOMEM;
        free(m->path);
        m->path = NULL;
        if (lstat(path, &sb) == 0)
            m->path = path;
        else
            free(path);
    }
    return 0;
}

/* Stores (text), removes ("") or keeps (NULL) each PEM row's file, then reloads the paths. */
int configdb__tls_store(struct state *st, struct proxy *p)
{
    char *dir = tls_path(st, p->key, NULL), *top = state_path(st, "tls"), *rel = NULL;
    int rc = 0;
    if (!dir || !top || asprintf(&rel, "tls/%s", p->key) < 0) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; rc == 0 && i < proxy_fields_count; i++) {
        const struct proxy_field *f = &proxy_fields[i];
        struct proxy_pem *m = (struct proxy_pem *)((char *)p + f->offset);
        if (f->kind != FIELD_PEM || !m->text)
            continue;
        if (!*m->text) {
            char *path = tls_path(st, p->key, f->name);
            rc = !path ? -ENOMEM : unlink(path) == 0 || errno == ENOENT ? 0 : -errno;
            free(path);
            continue;
        }
        if ((mkdir(top, 0700) < 0 && errno != EEXIST) || (mkdir(dir, 0700) < 0 && errno != EEXIST))
            rc = -errno;
        else
            rc = private_file_write(st, rel, f->name, m->text);
    }
    rmdir(dir); /* when no file is left */
    if (rc == 0)
        rc = configdb__tls_load(st, p);
out:
    free(dir);
    free(top);
    free(rel);
    return rc;
}

/* Removes STATEDIR/tls/KEY and what is in it. */
int configdb__tls_remove(struct state *st, const char *key)
{
    int rc = 0;
    for (size_t i = 0; i < proxy_fields_count; i++) {
        if (proxy_fields[i].kind != FIELD_PEM)
            continue;
        char *path = tls_path(st, key, proxy_fields[i].name);
        if (!path)
            return -ENOMEM;
        if (unlink(path) < 0 && errno != ENOENT)
            rc = -errno;
        free(path);
    }
    char *dir = tls_path(st, key, NULL);
    if (dir && rmdir(dir) < 0 && errno != ENOENT && rc == 0)
        rc = -errno;
    free(dir);
    return rc;
}

int configdb_secret_read(struct state *st, const char *key, char **out)
{
    char *path = NULL;
    size_t len;
    int rc;

    *out = NULL;
    if ((rc = secret_path(st, key, &path)) < 0)
        return rc;
    rc = file_read_bounded(path, CONFIG_SECRET_MAX, FILE_READ_NOFOLLOW, out, &len, NULL);
    if (rc == -ENOENT)
        rc = 0; /* no secret */
    else if (rc == -EINVAL)
        rc = -EFBIG; /* not a regular file */
    free(path);
    return rc;
}

int configdb_generation(struct state *st, long long *out)
{
    sqlite3_stmt *s = NULL;
    int rc = configdb__prepare(st, "SELECT value FROM config_generation WHERE id = 1", &s);
    if (rc < 0)
        return rc;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(s, 0);
        rc = 0;
    } else {
        rc = rc == SQLITE_DONE ? -EIO : state_sqlite_errno(rc);
    }
    sqlite3_finalize(s);
    return rc;
}

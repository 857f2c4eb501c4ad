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
 * Secret files are named after the key, which config_key_validate has
 * confined to [a-z0-9_.-] with a leading letter: a key can never name a path
 * outside secrets/, nor collide with the ".<key>.tmp.<pid>" temporaries.
 */
#include "upstreamfs/configdb.h"
#include "upstreamfs/log.h"
#include "upstreamfs/proxy_fields.h"
#include "upstreamfs/secret.h"
#include "upstreamfs/file_read.h"
#include "proxy_rows.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- statements ------------------------------------------------------------------------ */

static int prepare(struct state *st, const char *sql, sqlite3_stmt **out)
{
    int rc = sqlite3_prepare_v2(st->db, sql, -1, out, NULL);
    if (rc != SQLITE_OK) {
        log_error("configdb: %s: %s", sql, sqlite3_errmsg(st->db));
        return state_sqlite_errno(rc);
    }
    return 0;
}

/* Steps a statement that returns no rows. */
static int step_done(struct state *st, sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE)
        return 0;
    log_error("configdb: %s", sqlite3_errmsg(st->db));
    return state_sqlite_errno(rc);
}

static int bind_text(sqlite3_stmt *s, int i, const char *v)
{
    return v ? sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(s, i);
}

static char *column_dup(sqlite3_stmt *s, int i)
{
    const unsigned char *v = sqlite3_column_text(s, i);
    return v ? strdup((const char *)v) : NULL;
}

/* Runs "SELECT ... WHERE x = ?1" and copies column 0 of the first row; NULL if no row or NULL. */
static int select_text(struct state *st, const char *sql, const char *arg, char **out)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st, sql, &s);
    *out = NULL;
    if (rc < 0)
        return rc;
    sqlite3_bind_text(s, 1, arg, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        bool null = sqlite3_column_type(s, 0) == SQLITE_NULL;
        rc = null || (*out = column_dup(s, 0)) ? 0 : -ENOMEM;
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
    int rc = select_text(st,
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
static int secret_exists(struct state *st, const char *key)
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

static int secret_remove(struct state *st, const char *key)
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

static int secret_write(struct state *st, const char *key, const char *secret)
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
static int tls_load(struct state *st, struct proxy *p)
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
static int tls_store(struct state *st, struct proxy *p)
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
        rc = tls_load(st, p);
out:
    free(dir);
    free(top);
    free(rel);
    return rc;
}

/* Removes STATEDIR/tls/KEY and what is in it. */
static int tls_remove(struct state *st, const char *key)
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
    if (rc < 0 || (rc = tls_load(st, p)) < 0 || (rc = secret_exists(st, p->key)) < 0)
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
        (rc = step_done(st, s)) < 0)
        goto fail;
    /* No row had this key, so a secret or TLS file under it is a leftover: never inherit it. */
    if ((rc = secret ? secret_write(st, p->key, secret) : secret_remove(st, p->key)) < 0 ||
        (rc = tls_remove(st, p->key)) < 0 || (rc = tls_store(st, p)) < 0)
        goto fail_files;
    if ((rc = state_commit(st->db)) < 0)
        goto fail_files;
    sqlite3_finalize(s);
    p->secret_set = secret != NULL;
    log_info("config: proxy %s (%s) created", p->key, config_type_name(p->type));
    return 0;
fail_files:
    secret_remove(st, p->key);
    tls_remove(st, p->key);
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
    if ((rc = select_text(st, "SELECT type FROM proxies WHERE key = ?1", p->key, &type)) < 0)
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
    int old = secret_exists(st, p->key);
    if (old < 0) {
        rc = old;
        goto fail;
    }
    bool keep = old == 1 && p->auth == AUTH_ACCESS_KEY;
    if ((rc = config_proxy_validate(p, secret != NULL || keep, err)) < 0 ||
        (rc = check_files(p, err)) < 0)
        goto fail;
    if ((rc = proxy_rows_prepare(st->db, 'U', NULL, &s)) < 0 || (rc = proxy_rows_bind(s, p)) < 0 ||
        (rc = step_done(st, s)) < 0)
        goto fail;
    if (secret)
        rc = secret_write(st, p->key, secret);
    else if (old == 1 && !keep)
        rc = secret_remove(st, p->key);
    if (rc < 0 || (rc = tls_store(st, p)) < 0 || (rc = state_commit(st->db)) < 0)
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
    if ((rc = select_text(st, "SELECT type FROM proxies WHERE key = ?1", key, &type)) < 0)
        goto fail;
    if (!type) {
        rc = proxy_not_found(key, err);
        goto fail;
    }
    if ((rc = select_text(st,
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
    if ((rc = prepare(st, "DELETE FROM proxies WHERE key = ?1", &s)) < 0)
        goto fail;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    if ((rc = step_done(st, s)) < 0 || (rc = secret_remove(st, key)) < 0 ||
        (rc = tls_remove(st, key)) < 0 || (rc = state_commit(st->db)) < 0)
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

/* ---- registries ------------------------------------------------------------------------ */

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
        int rc = select_text(st, "SELECT type FROM proxies WHERE key = ?1", ups[i], &type);
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
    int rc = prepare(
        st, "INSERT INTO registry_upstreams (registry, position, proxy) VALUES (?1, ?2, ?3)", &s);
    for (size_t i = 0; rc == 0 && ups && ups[i]; i++) {
        sqlite3_reset(s);
        sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)i);
        sqlite3_bind_text(s, 3, ups[i], -1, SQLITE_STATIC);
        rc = step_done(st, s);
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
    if ((rc = prepare(st, "INSERT INTO registries (name, type) VALUES (?1, ?2)", &s)) < 0)
        goto fail;
    sqlite3_bind_text(s, 1, r->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, config_type_name(r->type), -1, SQLITE_STATIC);
    if ((rc = step_done(st, s)) < 0 || (rc = insert_upstreams(st, r->name, r->upstreams)) < 0 ||
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
    if ((rc = select_text(st, "SELECT type FROM registries WHERE name = ?1", name, &type)) < 0)
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
    if ((rc = prepare(st, "DELETE FROM registry_upstreams WHERE registry = ?1", &s)) < 0)
        goto fail;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    if ((rc = step_done(st, s)) < 0 || (rc = insert_upstreams(st, name, upstreams)) < 0 ||
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

int configdb_registry_delete(struct state *st, const char *name, struct config_error *err)
{
    sqlite3_stmt *s = NULL;
    char *type = NULL;
    int rc;

    if ((rc = config_key_validate("name", name, err)) < 0)
        return rc;
    if ((rc = state_begin(st->db)) < 0)
        return rc;
    if ((rc = select_text(st, "SELECT type FROM registries WHERE name = ?1", name, &type)) < 0)
        goto fail;
    if (!type) {
        rc = registry_not_found(name, err);
        goto fail;
    }
    if ((rc = prepare(st, "DELETE FROM registries WHERE name = ?1", &s)) < 0)
        goto fail;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    if ((rc = step_done(st, s)) < 0 || (rc = state_commit(st->db)) < 0)
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
    int rc = prepare(st,
                     "SELECT r.name, r.type, u.proxy FROM registries r "
                     "LEFT JOIN registry_upstreams u ON u.registry = r.name "
                     "WHERE ?1 IS NULL OR r.name = ?1 ORDER BY r.name, u.position",
                     &s);
    *out = NULL;
    *n = 0;
    if (rc < 0)
        return rc;
    bind_text(s, 1, name);
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

int configdb_generation(struct state *st, long long *out)
{
    sqlite3_stmt *s = NULL;
    int rc = prepare(st, "SELECT value FROM config_generation WHERE id = 1", &s);
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

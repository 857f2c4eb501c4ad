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

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROXY_COLUMNS                                                                              \
    "key, type, source, url, auth, access_key, aws_endpoint, ca_file, client_cert, client_key, "   \
    "http_proxy, metadata_ttl, negative_ttl, offline, include_json, exclude_json, ecr_host, "      \
    "ecr_region, ecr_account, ecr_alias, ecr_repository, ecr_public, allow_host_json, "           \
    "pass_credentials, max_size"

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
 * Writes secret to secrets/<key> through a 0600 temporary and rename, so a
 * reader sees the old secret or the new one, never a part, and no moment
 * exists where the file is readable by others.
 */
static int secret_write(struct state *st, const char *key, const char *secret)
{
    char *path = NULL, *tmp = NULL, *dir = NULL;
    int fd = -1, rc;

    if ((rc = secret_path(st, key, &path)) < 0)
        return rc;
    if (!(dir = state_path(st, "secrets")) ||
        asprintf(&tmp, "%s/.%s.tmp.%ld", dir, key, (long)getpid()) < 0) {
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
    log_error("configdb: cannot write the secret of %s: %s", key, strerror(-rc));
    if (fd >= 0)
        close(fd);
    unlink(tmp);
out:
    free(path);
    free(tmp);
    free(dir);
    return rc;
}

int configdb_secret_read(struct state *st, const char *key, char **out)
{
    char *path = NULL, *buf = NULL;
    struct stat sb;
    size_t len = 0;
    int fd = -1, rc;

    *out = NULL;
    if ((rc = secret_path(st, key, &path)) < 0)
        return rc;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        rc = errno == ENOENT ? 0 : -errno;
        goto out;
    }
    if (fstat(fd, &sb) < 0) {
        rc = -errno;
        goto out;
    }
    if (!S_ISREG(sb.st_mode) || sb.st_size > CONFIG_SECRET_MAX) {
        rc = -EFBIG;
        goto out;
    }
    if (!(buf = malloc((size_t)sb.st_size + 1))) {
        rc = -ENOMEM;
        goto out;
    }
    while (len < (size_t)sb.st_size) {
        ssize_t n = read(fd, buf + len, (size_t)sb.st_size - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : -EIO;
            goto out;
        }
        len += (size_t)n;
    }
    buf[len] = '\0';
    *out = buf;
    buf = NULL;
    rc = 0;
out:
    if (buf) {
        explicit_bzero(buf, (size_t)sb.st_size + 1);
        free(buf);
    }
    if (fd >= 0)
        close(fd);
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

static int check_files(struct proxy *p, struct config_error *err)
{
    int rc;
    if ((rc = check_file("ca_file", &p->ca_file, err)) < 0 ||
        (rc = check_file("client_cert", &p->client_cert, err)) < 0 ||
        (rc = check_file("client_key", &p->client_key, err)) < 0)
        return rc;
    return 0;
}

/* ---- proxy rows ------------------------------------------------------------------------ */

/* Binds p to ?1..?25 in PROXY_COLUMNS order. */
static int bind_proxy(sqlite3_stmt *s, const struct proxy *p)
{
    char *inc = NULL, *exc = NULL, *alw = NULL;
    json_t *ji = config_strv_to_json(p->include), *je = config_strv_to_json(p->exclude);
    json_t *ja = config_strv_to_json(p->allow_host);
    int rc = -ENOMEM;
    if (!ji || !je || !ja || !(inc = json_dumps(ji, JSON_COMPACT)) ||
        !(exc = json_dumps(je, JSON_COMPACT)) || !(alw = json_dumps(ja, JSON_COMPACT)))
        goto out;
    bind_text(s, 1, p->key);
    bind_text(s, 2, config_type_name(p->type));
    bind_text(s, 3, p->type == PROXY_DOCKER ? config_source_name(p->source) : NULL);
    bind_text(s, 4, p->url);
    bind_text(s, 5, config_auth_name(p->auth));
    bind_text(s, 6, p->access_key);
    bind_text(s, 7, p->aws_endpoint);
    bind_text(s, 8, p->ca_file);
    bind_text(s, 9, p->client_cert);
    bind_text(s, 10, p->client_key);
    bind_text(s, 11, p->http_proxy);
    sqlite3_bind_int64(s, 12, p->metadata_ttl);
    sqlite3_bind_int64(s, 13, p->negative_ttl);
    sqlite3_bind_int(s, 14, p->offline);
    bind_text(s, 15, inc);
    bind_text(s, 16, exc);
    bind_text(s, 17, p->ecr.host);
    bind_text(s, 18, p->ecr.region);
    bind_text(s, 19, p->ecr.account);
    bind_text(s, 20, p->ecr.alias);
    bind_text(s, 21, p->ecr.repository);
    sqlite3_bind_int(s, 22, p->ecr.is_public);
    bind_text(s, 23, alw);
    sqlite3_bind_int(s, 24, p->pass_credentials);
    sqlite3_bind_int64(s, 25, p->max_size);
    rc = 0;
out:
    free(inc);
    free(exc);
    free(alw);
    json_decref(ji);
    json_decref(je);
    json_decref(ja);
    return rc;
}

static int column_strv(sqlite3_stmt *s, int i, char ***out)
{
    const char *text = (const char *)sqlite3_column_text(s, i);
    json_t *arr = text ? json_loads(text, 0, NULL) : NULL;
    int rc = arr ? config_strv_from_json("list", arr, out, NULL) : -EIO;
    json_decref(arr);
    return rc == -ENOMEM ? rc : rc < 0 ? -EIO : 0;
}

/* Fills *p from a row of "SELECT PROXY_COLUMNS". Stored names that do not parse are -EIO. */
static int row_to_proxy(struct state *st, sqlite3_stmt *s, struct proxy *p)
{
    enum proxy_type type;
    const char *source = (const char *)sqlite3_column_text(s, 2);
    const char *auth = (const char *)sqlite3_column_text(s, 4);
    int rc = config_type_lookup((const char *)sqlite3_column_text(s, 1), &type);

    if (rc < 0)
        return -EIO;
    config_proxy_init(p, (const char *)sqlite3_column_text(s, 0), type);
    if (source && config_source_parse(source, &p->source, NULL) < 0)
        return -EIO;
    if (!source)
        p->source = SOURCE_NONE;
    if (config_auth_parse(auth, &p->auth, NULL) < 0)
        return -EIO;
    struct {
        char **dst;
        int col;
    } cols[] = {
        {&p->url, 3},          {&p->access_key, 5},  {&p->aws_endpoint, 6},
        {&p->ca_file, 7},      {&p->client_cert, 8}, {&p->client_key, 9},
        {&p->http_proxy, 10},  {&p->ecr.host, 16},   {&p->ecr.region, 17},
        {&p->ecr.account, 18}, {&p->ecr.alias, 19},  {&p->ecr.repository, 20},
    };
    for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
        if (sqlite3_column_type(s, cols[i].col) != SQLITE_NULL &&
            !(*cols[i].dst = column_dup(s, cols[i].col)))
            return -ENOMEM;
    }
    p->metadata_ttl = (long)sqlite3_column_int64(s, 11);
    p->negative_ttl = (long)sqlite3_column_int64(s, 12);
    p->offline = sqlite3_column_int(s, 13) != 0;
    p->ecr.is_public = sqlite3_column_int(s, 21) != 0;
    p->pass_credentials = sqlite3_column_int(s, 23) != 0;
    p->max_size = sqlite3_column_int64(s, 24);
    if ((rc = column_strv(s, 14, &p->include)) < 0 || (rc = column_strv(s, 15, &p->exclude)) < 0 ||
        (rc = column_strv(s, 22, &p->allow_host)) < 0)
        return rc;
    rc = secret_exists(st, p->key);
    if (rc < 0)
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
    if ((rc = prepare(st,
                      "INSERT INTO proxies (" PROXY_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
                      "?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, "
                      "?22, ?23, ?24, ?25)",
                      &s)) < 0 ||
        (rc = bind_proxy(s, p)) < 0 || (rc = step_done(st, s)) < 0)
        goto fail;
    /* No row had this key, so a secret file under it is a leftover: never inherit it. */
    if ((rc = secret ? secret_write(st, p->key, secret) : secret_remove(st, p->key)) < 0)
        goto fail;
    if ((rc = state_commit(st->db)) < 0) {
        if (secret)
            secret_remove(st, p->key);
        goto fail;
    }
    sqlite3_finalize(s);
    p->secret_set = secret != NULL;
    log_info("config: proxy %s (%s) created", p->key, config_type_name(p->type));
    return 0;
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
    if ((rc = prepare(st,
                      "UPDATE proxies SET (" PROXY_COLUMNS ") = (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
                      "?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, "
                      "?25) "
                      "WHERE key = ?1",
                      &s)) < 0 ||
        (rc = bind_proxy(s, p)) < 0 || (rc = step_done(st, s)) < 0)
        goto fail;
    if (secret)
        rc = secret_write(st, p->key, secret);
    else if (old == 1 && !keep)
        rc = secret_remove(st, p->key);
    if (rc < 0 || (rc = state_commit(st->db)) < 0)
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
        (rc = state_commit(st->db)) < 0)
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
    if ((rc = prepare(st, "SELECT " PROXY_COLUMNS " FROM proxies WHERE key = ?1", &s)) < 0)
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
    if ((rc = prepare(st, "SELECT " PROXY_COLUMNS " FROM proxies ORDER BY key", &s)) < 0)
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

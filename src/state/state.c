/*
 * state: the state directory's layout and the database connection policy.
 *
 * Layout (created on open, never removed here):
 *   DIR/            0700: it holds secrets/ and the cached content of
 *                   private registries, so no other user may list it
 *   DIR/index.db    SQLite, WAL; schema from schema.c
 *   DIR/secrets/    0700, one 0600 file per proxy secret (configdb)
 *   DIR/blobs/sha256/, DIR/tmp/, DIR/local/   the store (store/)
 *
 * Every connection gets the same pragmas (busy_timeout 10 s, WAL,
 * synchronous=NORMAL, foreign_keys=ON), so processes sharing one state dir
 * wait for each other rather than fail. Migrations run forward from
 * PRAGMA user_version in one BEGIN IMMEDIATE transaction, and the version is
 * re-read inside it: of several processes opening a fresh dir at once, one
 * migrates and the others find the work done.
 */
#include "upstreamfs/clock.h"
#include "upstreamfs/state.h"
#include "upstreamfs/log.h"
#include "upstreamfs/schema.h"

#include <errno.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STATE_BUSY_TIMEOUT_MS 10000
/* How long state_begin keeps retrying after SQLite's own busy wait gave up. */
#define STATE_BEGIN_DEADLINE_MS 30000

static const char *const state_subdirs[] = {"secrets", "blobs", "blobs/sha256", "tmp", "local"};

int state_sqlite_errno(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return 0;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return -EACCES;
    case SQLITE_CANTOPEN:
        return -ENOENT;
    case SQLITE_CONSTRAINT:
        return -EEXIST;
    case SQLITE_TOOBIG:
        return -E2BIG;
    case SQLITE_INTERRUPT:
        return -EINTR;
    default:
        return -EIO;
    }
}

/* path as given when absolute, else against the working directory: a daemon may chdir("/"). */
static char *absolute(const char *path)
{
    char *cwd, *s = NULL;
    if (path[0] == '/')
        return strdup(path);
    if (!(cwd = getcwd(NULL, 0)))
        return NULL;
    if (asprintf(&s, "%s/%s", cwd, path) < 0)
        s = NULL;
    free(cwd);
    return s;
}

char *state_default_dir(const char *opt)
{
    char *s = NULL;
    const char *env = getenv("UPSTREAMFS_STATE");
    if (opt && *opt)
        return absolute(opt);
    if (env && *env)
        return absolute(env);
    if (geteuid() == 0)
        return strdup("/var/lib/upstreamfs");
    /* XDG: a relative XDG_DATA_HOME is invalid and must be ignored. */
    const char *xdg = getenv("XDG_DATA_HOME");
    if (xdg && xdg[0] == '/')
        return asprintf(&s, "%s/upstreamfs", xdg) < 0 ? NULL : s;
    const char *home = getenv("HOME");
    if (!home || !*home) {
        struct passwd *pw = getpwuid(geteuid());
        home = pw ? pw->pw_dir : NULL;
    }
    if (!home || !*home)
        return NULL;
    return asprintf(&s, "%s/.local/share/upstreamfs", home) < 0 ? NULL : s;
}

char *state_path(const struct state *st, const char *rel)
{
    char *s = NULL;
    return asprintf(&s, "%s/%s", st->dir, rel) < 0 ? NULL : s;
}

/* mkdir -p with mode for every directory it creates. */
static int mkdir_p(const char *path, mode_t mode)
{
    char *p = strdup(path);
    int rc = 0;
    if (!p)
        return -ENOMEM;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, mode) < 0 && errno != EEXIST) {
            rc = -errno;
            break;
        }
        *s = c;
        if (!c)
            break;
    }
    free(p);
    return rc;
}

/*
 * Makes dir exist as a directory of ours with no access for others. A
 * directory we own but find looser is tightened: it holds secrets.
 */
static int ensure_private_dir(const char *dir)
{
    struct stat sb;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return -errno;
    if (stat(dir, &sb) < 0)
        return -errno;
    if (!S_ISDIR(sb.st_mode))
        return -ENOTDIR;
    if ((sb.st_mode & 077) && sb.st_uid == geteuid()) {
        log_warn("state: %s was accessible by other users; setting mode 0700", dir);
        if (chmod(dir, 0700) < 0)
            return -errno;
    }
    return 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Runs sql (no results wanted), retrying SQLITE_BUSY until STATE_BEGIN_DEADLINE_MS. */
static int exec_retry(sqlite3 *db, const char *sql)
{
    long long deadline = clock_mono_ms() + STATE_BEGIN_DEADLINE_MS;
    for (;;) {
        int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            return 0;
        if ((rc & 0xff) != SQLITE_BUSY || clock_mono_ms() >= deadline) {
            if ((rc & 0xff) == SQLITE_BUSY)
                return -ETIMEDOUT;
            log_debug("state: %s: %s", sql, sqlite3_errmsg(db));
            return state_sqlite_errno(rc);
        }
        sleep_ms(20);
    }
}

int state_begin(sqlite3 *db)
{
    return exec_retry(db, "BEGIN IMMEDIATE");
}

int state_commit(sqlite3 *db)
{
    return exec_retry(db, "COMMIT");
}

void state_rollback(sqlite3 *db)
{
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

int state_schema_version(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
        rc = sqlite3_column_int(st, 0);
    else
        rc = state_sqlite_errno(rc);
    sqlite3_finalize(st);
    return rc;
}

/*
 * WAL mode is persistent in the file, but switching to it needs a lock that
 * a concurrent opener may hold; the busy handler does not cover this pragma
 * in every case, so retry until it reports "wal".
 */
static int set_wal(sqlite3 *db)
{
    long long deadline = clock_mono_ms() + STATE_BEGIN_DEADLINE_MS;
    for (;;) {
        sqlite3_stmt *st = NULL;
        bool wal = false;
        int rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
        if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            const unsigned char *mode = sqlite3_column_text(st, 0);
            wal = mode && strcmp((const char *)mode, "wal") == 0;
            rc = SQLITE_OK;
        }
        sqlite3_finalize(st);
        if (wal)
            return 0;
        if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY)
            return state_sqlite_errno(rc);
        if (clock_mono_ms() >= deadline)
            return -ETIMEDOUT;
        sleep_ms(20);
    }
}

int state_db_open(const char *dir, sqlite3 **out)
{
    sqlite3 *db = NULL;
    char *path = NULL;
    int rc;

    *out = NULL;
    if (asprintf(&path, "%s/index.db", dir) < 0)
        return -ENOMEM;
    rc = sqlite3_open_v2(path, &db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        log_error("state: cannot open %s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        rc = db ? state_sqlite_errno(rc) : -ENOMEM;
        goto out;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, STATE_BUSY_TIMEOUT_MS);
    if ((rc = set_wal(db)) < 0) {
        log_error("state: cannot switch %s to WAL: %s", path, sqlite3_errmsg(db));
        goto out;
    }
    rc = sqlite3_exec(db, "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        log_error("state: %s: %s", path, sqlite3_errmsg(db));
        rc = state_sqlite_errno(rc);
        goto out;
    }
    *out = db;
    db = NULL;
    rc = 0;
out:
    sqlite3_close(db);
    free(path);
    return rc;
}

/* Brings the schema to state_migration_count (see the file comment). */
static int migrate(sqlite3 *db)
{
    int v = state_schema_version(db);
    if (v < 0)
        return v;
    if (v == state_migration_count)
        return 0;
    int rc = state_begin(db);
    if (rc < 0)
        return rc;
    if ((v = state_schema_version(db)) < 0) {
        rc = v;
        goto fail;
    }
    if (v > state_migration_count) {
        log_error("state: the database has schema version %d; this program knows up to %d", v,
                  state_migration_count);
        rc = -EPROTO;
        goto fail;
    }
    for (; v < state_migration_count; v++) {
        char *msg = NULL;
        rc = sqlite3_exec(db, state_migrations[v], NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
            log_error("state: migration to version %d failed: %s", v + 1, msg ? msg : "?");
            sqlite3_free(msg);
            rc = state_sqlite_errno(rc);
            goto fail;
        }
        log_debug("state: migrated schema to version %d", v + 1);
    }
    char pragma[48];
    snprintf(pragma, sizeof(pragma), "PRAGMA user_version=%d", state_migration_count);
    if ((rc = sqlite3_exec(db, pragma, NULL, NULL, NULL)) != SQLITE_OK) {
        rc = state_sqlite_errno(rc);
        goto fail;
    }
    return state_commit(db);
fail:
    state_rollback(db);
    return rc;
}

int state_open(const char *dir, struct state **out)
{
    struct state *st = NULL;
    char *sub = NULL;
    int rc;

    *out = NULL;
    if (!dir || !*dir)
        return -EINVAL;
    /* Parents are made private too: the XDG default's ~/.local/share may not exist yet. */
    /* Failures to create are the caller's to report: the errno says it all. */
    if ((rc = mkdir_p(dir, 0700)) < 0 || (rc = ensure_private_dir(dir)) < 0)
        return rc;
    if (!(st = calloc(1, sizeof(*st))) || !(st->dir = strdup(dir))) {
        rc = -ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < sizeof(state_subdirs) / sizeof(state_subdirs[0]); i++) {
        if (!(sub = state_path(st, state_subdirs[i]))) {
            rc = -ENOMEM;
            goto fail;
        }
        if ((rc = ensure_private_dir(sub)) < 0)
            goto fail;
        free(sub);
        sub = NULL;
    }
    if ((rc = state_db_open(dir, &st->db)) < 0)
        goto fail;
    if ((rc = migrate(st->db)) < 0)
        goto fail;
    *out = st;
    return 0;
fail:
    free(sub);
    state_close(st);
    return rc;
}

void state_close(struct state *st)
{
    if (!st)
        return;
    sqlite3_close(st->db);
    free(st->dir);
    free(st);
}

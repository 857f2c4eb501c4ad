/*
 * test_state: the state dir layout and modes, the connection pragmas, and
 * the migrations (from empty, from a partial version, idempotent reopen,
 * refusing a newer database, many processes opening a fresh dir at once).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "upstreamfs/schema.h"
#include "upstreamfs/state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *tmp_root(void)
{
    char tmpl[] = "/tmp/upfs-test-state.XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static void rm_rf(const char *path)
{
    char *cmd = NULL;
    assert_true(asprintf(&cmd, "rm -rf '%s'", path) > 0);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

static int mode_of(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) < 0)
        return -1;
    return (int)(sb.st_mode & 07777);
}

static long long pragma_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    long long v = -1;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

static char *pragma_text(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    char *v = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    if (sqlite3_step(s) == SQLITE_ROW)
        v = strdup((const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    return v;
}

static void test_layout_and_pragmas(void **state)
{
    char *root = tmp_root(), *dir = NULL;
    struct state *st = NULL;
    assert_true(asprintf(&dir, "%s/a/b/state", root) > 0);

    assert_int_equal(state_open(dir, &st), 0);
    assert_int_equal(mode_of(dir), 0700);
    const char *subs[] = {"secrets", "blobs", "blobs/sha256", "tmp", "local"};
    for (size_t i = 0; i < 5; i++) {
        char *p = state_path(st, subs[i]);
        assert_non_null(p);
        if (mode_of(p) != 0700)
            fail_msg("%s has mode %o", p, mode_of(p));
        free(p);
    }
    char *db = state_path(st, "index.db");
    assert_int_equal(access(db, F_OK), 0);
    free(db);

    assert_int_equal(state_schema_version(st->db), state_migration_count);
    assert_true(state_migration_count >= 1);
    char *mode = pragma_text(st->db, "PRAGMA journal_mode");
    assert_string_equal(mode, "wal");
    free(mode);
    assert_int_equal(pragma_int(st->db, "PRAGMA foreign_keys"), 1);
    assert_int_equal(pragma_int(st->db, "PRAGMA busy_timeout"), 10000);
    assert_int_equal(pragma_int(st->db, "PRAGMA synchronous"), 1); /* NORMAL */

    /* A second connection gets the same policy. */
    sqlite3 *db2 = NULL;
    assert_int_equal(state_db_open(dir, &db2), 0);
    assert_int_equal(pragma_int(db2, "PRAGMA foreign_keys"), 1);
    assert_int_equal(pragma_int(db2, "PRAGMA busy_timeout"), 10000);
    sqlite3_close(db2);

    /* Transactions. */
    assert_int_equal(state_begin(st->db), 0);
    assert_int_equal(sqlite3_get_autocommit(st->db), 0);
    state_rollback(st->db);
    assert_int_equal(sqlite3_get_autocommit(st->db), 1);
    assert_int_equal(state_begin(st->db), 0);
    assert_int_equal(state_commit(st->db), 0);

    state_close(st);
    free(dir);
    rm_rf(root);
    free(root);
}

static void test_reopen_is_idempotent(void **state)
{
    char *root = tmp_root();
    struct state *st = NULL;
    assert_int_equal(state_open(root, &st), 0);
    long long objects = pragma_int(st->db, "SELECT count(*) FROM sqlite_master");
    assert_true(objects > 0);
    assert_int_equal(sqlite3_exec(st->db,
                                  "INSERT INTO registries (name, type) VALUES ('keep', 'helm')",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    state_close(st);

    for (int i = 0; i < 3; i++) {
        assert_int_equal(state_open(root, &st), 0);
        assert_int_equal(state_schema_version(st->db), state_migration_count);
        assert_int_equal(pragma_int(st->db, "SELECT count(*) FROM sqlite_master"), objects);
        assert_int_equal(pragma_int(st->db, "SELECT count(*) FROM registries"), 1);
        state_close(st);
    }
    rm_rf(root);
    free(root);
}

/* A database at version 1 is brought forward; one newer than the program is refused. */
static void test_forward_and_newer(void **state)
{
    char *root = tmp_root(), *path = NULL;
    sqlite3 *db = NULL;
    struct state *st = NULL;
    assert_true(asprintf(&path, "%s/index.db", root) > 0);

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, state_migrations[0], NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=1", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(state_open(root, &st), 0);
    assert_int_equal(state_schema_version(st->db), state_migration_count);
    state_close(st);

    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", state_migration_count + 1);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(state_open(root, &st), -EPROTO);
    assert_null(st);

    free(path);
    rm_rf(root);
    free(root);
}

static void test_tightens_mode(void **state)
{
    char *root = tmp_root();
    struct state *st = NULL;
    assert_int_equal(chmod(root, 0755), 0);
    assert_int_equal(state_open(root, &st), 0);
    assert_int_equal(mode_of(root), 0700);
    state_close(st);

    /* A file where the dir should be is an error, not a crash. */
    char *file = NULL;
    assert_true(asprintf(&file, "%s/file", root) > 0);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(state_open(file, &st), -ENOTDIR);
    assert_int_equal(state_open("", &st), -EINVAL);
    free(file);
    rm_rf(root);
    free(root);
}

/* Many processes opening one fresh dir: one migrates, none fails. */
static void test_concurrent_open(void **state)
{
    enum { N = 8 };
    char *root = tmp_root(), *dir = NULL;
    pid_t pids[N];
    assert_true(asprintf(&dir, "%s/fresh", root) > 0);
    for (int i = 0; i < N; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            struct state *st = NULL;
            int rc = state_open(dir, &st);
            int ok = rc == 0 && state_schema_version(st->db) == state_migration_count;
            state_close(st);
            _exit(ok ? 0 : 1);
        }
    }
    for (int i = 0; i < N; i++) {
        int status = 0;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    struct state *st = NULL;
    assert_int_equal(state_open(dir, &st), 0);
    char *ok = pragma_text(st->db, "PRAGMA integrity_check");
    assert_string_equal(ok, "ok");
    free(ok);
    state_close(st);
    free(dir);
    rm_rf(root);
    free(root);
}

static void test_default_dir(void **state)
{
    char *d = state_default_dir("/opt/x");
    assert_string_equal(d, "/opt/x");
    free(d);
    char cwd[4096], *want = NULL;
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_true(asprintf(&want, "%s/rel/dir", cwd) > 0);
    d = state_default_dir("rel/dir");
    assert_string_equal(d, want);
    free(d);
    free(want);

    setenv("UPSTREAMFS_STATE", "/srv/upfs", 1);
    d = state_default_dir(NULL);
    assert_string_equal(d, "/srv/upfs");
    free(d);
    d = state_default_dir("/opt/x");
    assert_string_equal(d, "/opt/x");
    free(d);
    unsetenv("UPSTREAMFS_STATE");

    setenv("XDG_DATA_HOME", "/home/u/.data", 1);
    setenv("HOME", "/home/u", 1);
    d = state_default_dir(NULL);
    if (geteuid() == 0) {
        assert_string_equal(d, "/var/lib/upstreamfs");
    } else {
        assert_string_equal(d, "/home/u/.data/upstreamfs");
        free(d);
        unsetenv("XDG_DATA_HOME");
        d = state_default_dir(NULL);
        assert_string_equal(d, "/home/u/.local/share/upstreamfs");
    }
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_and_pragmas), cmocka_unit_test(test_reopen_is_idempotent),
        cmocka_unit_test(test_forward_and_newer),  cmocka_unit_test(test_tightens_mode),
        cmocka_unit_test(test_concurrent_open),    cmocka_unit_test(test_default_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

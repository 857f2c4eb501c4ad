/*
 * test_store_index: the content-addressed store (commit, dedup, verify,
 * tmp cleanup) and the index rows (nodes by parent/name and path, subtree
 * removal, moves, objects in LRU order, totals that leave local content out).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "upstreamfs/hash.h"
#include "upstreamfs/index.h"
#include "upstreamfs/schema.h"
#include "upstreamfs/state.h"
#include "upstreamfs/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/upfs-test-store.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd);
}

static void store_roundtrip(void **state)
{
    (void)state;
    struct store s;
    char hex[65], hex2[65], p[512];
    struct stat st;
    assert_int_equal(store_init(&s, dir), 0);
    assert_int_equal(store_put_bytes(&s, "hello", 5, hex), 0);
    assert_string_equal(hex, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
    assert_int_equal(store_blob_size(&s, hex), 5);
    store_blob_path(&s, hex, p, sizeof(p));
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0444);
    /* Identical content is stored once; the second temp file disappears. */
    assert_int_equal(store_put_bytes(&s, "hello", 5, hex2), 0);
    assert_string_equal(hex, hex2);
    assert_int_equal(store_verify(&s, hex), 0);
    assert_int_equal(store_commit(&s, "/nonexistent", "zz"), -EINVAL);
    int fd;
    char *tmp;
    assert_int_equal(store_tmp_create(&s, &fd, &tmp), 0);
    close(fd);
    assert_int_equal(store_clean_tmp(&s), 1);
    assert_int_equal(access(tmp, F_OK), -1);
    free(tmp);
    assert_int_equal(store_remove(&s, hex), 0);
    assert_int_equal(store_open_blob(&s, hex), -ENOENT);
    store_fini(&s);
}

static void verify_detects_corruption(void **state)
{
    (void)state;
    struct store s;
    char hex[65], p[512];
    assert_int_equal(store_init(&s, dir), 0);
    assert_int_equal(store_put_bytes(&s, "payload", 7, hex), 0);
    store_blob_path(&s, hex, p, sizeof(p));
    chmod(p, 0644);
    FILE *f = fopen(p, "w");
    fputs("tampered", f);
    fclose(f);
    assert_int_equal(store_verify(&s, hex), -EBADMSG);
    store_fini(&s);
}

static struct node mk(int64_t parent, const char *name, const char *top, const char *path,
                      int kind)
{
    struct node n = {0};
    n.parent = parent;
    n.name = (char *)name;
    n.top = (char *)top;
    n.path = (char *)path;
    n.kind = kind;
    n.size = -1;
    return n;
}

static void index_nodes(void **state)
{
    (void)state;
    struct state *st;
    struct index *ix;
    struct node got;
    assert_int_equal(state_open(dir, &st), 0);
    assert_int_equal(index_open(st->db, &ix), 0);
    assert_int_equal(index_get(ix, INDEX_ROOT_INO, &got), 0);
    assert_int_equal(got.kind, NODE_DIR);
    node_clear(&got);

    struct node top = mk(INDEX_ROOT_INO, "p", "p", "", NODE_DIR);
    assert_int_equal(index_put(ix, &top), 0);
    struct node a = mk(top.ino, "a", "p", "a", NODE_DIR);
    assert_int_equal(index_put(ix, &a), 0);
    struct node f = mk(a.ino, "f.txt", "p", "a/f.txt", NODE_FILE);
    f.size = 3;
    f.url = (char *)"http://x/a/f.txt";
    assert_int_equal(index_put(ix, &f), 0);
    int64_t fino = f.ino;
    /* An upsert of the same (parent, name) keeps the inode number. */
    struct node f2 = mk(a.ino, "f.txt", "p", "a/f.txt", NODE_FILE);
    f2.size = 4;
    assert_int_equal(index_put(ix, &f2), 0);
    assert_int_equal(f2.ino, fino);
    assert_int_equal(index_find(ix, "p", "a/f.txt", &got), 0);
    assert_int_equal(got.size, 4);
    node_clear(&got);

    struct node *kids;
    size_t n;
    struct node absent = mk(a.ino, "gone", "p", "a/gone", NODE_ABSENT);
    assert_int_equal(index_put(ix, &absent), 0);
    assert_int_equal(index_children(ix, a.ino, &kids, &n), 0);
    assert_int_equal(n, 1); /* absences are not listed */
    index_nodes_free(kids, n);

    struct node b = mk(top.ino, "b", "p", "b", NODE_DIR);
    assert_int_equal(index_put(ix, &b), 0);
    assert_int_equal(index_move(ix, a.ino, b.ino, "a2", "b/a2"), 0);
    assert_int_equal(index_find(ix, "p", "b/a2/f.txt", &got), 0);
    assert_int_equal(got.ino, fino);
    node_clear(&got);

    assert_int_equal(index_remove(ix, b.ino), 0);
    assert_int_equal(index_get(ix, fino, &got), -ENOENT);
    assert_int_equal(index_remove_top(ix, "p", false), 0);
    assert_int_equal(index_child(ix, INDEX_ROOT_INO, "p", &got), -ENOENT);
    index_close(ix);
    state_close(st);
}

static void index_objects(void **state)
{
    (void)state;
    struct state *st;
    struct index *ix;
    const char *d1 = "1111111111111111111111111111111111111111111111111111111111111111";
    const char *d2 = "2222222222222222222222222222222222222222222222222222222222222222";
    const char *d3 = "3333333333333333333333333333333333333333333333333333333333333333";
    assert_int_equal(state_open(dir, &st), 0);
    assert_int_equal(index_open(st->db, &ix), 0);
    assert_int_equal(index_object_put(ix, d1, 100, false), 0);
    assert_int_equal(index_object_put(ix, d2, 200, false), 0);
    assert_int_equal(index_object_put(ix, d3, 300, true), 0);
    assert_int_equal(index_object_touch(ix, d1, 50), 0);
    assert_int_equal(index_object_touch(ix, d2, 10), 0);
    int64_t bytes, count;
    assert_int_equal(index_object_totals(ix, &bytes, &count), 0);
    assert_int_equal(bytes, 300);
    assert_int_equal(count, 2);
    assert_int_equal(index_local_totals(ix, &bytes, &count), 0);
    assert_int_equal(bytes, 300);
    struct object_info *lru;
    size_t n;
    assert_int_equal(index_object_lru(ix, &lru, &n, 10), 0);
    assert_int_equal(n, 2);
    assert_string_equal(lru[0].digest, d2); /* least recently used first */
    free(lru);
    assert_int_equal(index_object_pin(ix, d2, true), 0);
    assert_int_equal(index_object_lru(ix, &lru, &n, 10), 0);
    assert_int_equal(n, 1);
    assert_string_equal(lru[0].digest, d1);
    free(lru);
    assert_int_equal(index_object_pin(ix, "4444444444444444444444444444444444444444444444444444444444444444", true), -ENOENT);
    index_close(ix);
    state_close(st);
}

/* What the running totals must equal: the sums over the rows. */
static void totals_match_rows(sqlite3 *db, struct index *ix)
{
    for (int local = 0; local <= 1; local++) {
        sqlite3_stmt *s;
        assert_int_equal(sqlite3_prepare_v2(db,
                                            "SELECT COALESCE(SUM(size), 0), COUNT(*) FROM object "
                                            "WHERE (local != 0) = ?1",
                                            -1, &s, NULL),
                         SQLITE_OK);
        sqlite3_bind_int(s, 1, local);
        assert_int_equal(sqlite3_step(s), SQLITE_ROW);
        int64_t bytes, count;
        assert_int_equal(local ? index_local_totals(ix, &bytes, &count)
                               : index_object_totals(ix, &bytes, &count),
                         0);
        assert_int_equal(bytes, sqlite3_column_int64(s, 0));
        assert_int_equal(count, sqlite3_column_int64(s, 1));
        sqlite3_finalize(s);
    }
}

/* The totals follow every insert, re-put (new size, promotion to local), delete and rollback. */
static void index_running_totals(void **state)
{
    (void)state;
    struct state *st;
    struct index *ix;
    const char *d1 = "1111111111111111111111111111111111111111111111111111111111111111";
    const char *d2 = "2222222222222222222222222222222222222222222222222222222222222222";
    assert_int_equal(state_open(dir, &st), 0);
    assert_int_equal(index_open(st->db, &ix), 0);
    int64_t bytes, count;
    assert_int_equal(index_object_totals(ix, &bytes, &count), 0);
    assert_int_equal(bytes, 0);
    assert_int_equal(count, 0);
    assert_int_equal(index_object_put(ix, d1, 100, false), 0);
    assert_int_equal(index_object_put(ix, d2, 200, false), 0);
    assert_int_equal(index_object_put(ix, d1, 150, false), 0); /* same digest again */
    assert_int_equal(index_object_totals(ix, &bytes, &count), 0);
    assert_int_equal(bytes, 350);
    assert_int_equal(count, 2);
    totals_match_rows(st->db, ix);
    assert_int_equal(index_object_put(ix, d2, 200, true), 0); /* now local content */
    assert_int_equal(index_object_totals(ix, &bytes, &count), 0);
    assert_int_equal(bytes, 150);
    assert_int_equal(count, 1);
    assert_int_equal(index_local_totals(ix, &bytes, &count), 0);
    assert_int_equal(bytes, 200);
    assert_int_equal(count, 1);
    /* A transaction that is rolled back (a crash before commit) leaves them as they were. */
    assert_int_equal(state_begin(st->db), 0);
    assert_int_equal(index_object_delete(ix, d1), 0);
    state_rollback(st->db);
    assert_int_equal(index_object_totals(ix, &bytes, &count), 0);
    assert_int_equal(bytes, 150);
    assert_int_equal(index_object_delete(ix, d1), 0);
    assert_int_equal(index_object_totals(ix, &bytes, &count), 0);
    assert_int_equal(bytes, 0);
    assert_int_equal(count, 0);
    totals_match_rows(st->db, ix);
    index_close(ix);
    state_close(st);
}

/* A state dir of schema version 3 (objects, no totals) gets totals that match its rows. */
static void index_totals_migration(void **state)
{
    (void)state;
    struct state *st;
    struct index *ix;
    assert_int_equal(state_open(dir, &st), 0);
    assert_int_equal(sqlite3_exec(st->db,
                                  "DROP TRIGGER object_totals_i; DROP TRIGGER object_totals_u;"
                                  "DROP TRIGGER object_totals_d; DROP TABLE object_totals;"
                                  "DROP TRIGGER object_scope_gone; DROP TABLE object_scope;"
                                  "DROP TRIGGER removed_upstream_gone;"
                                  "DROP TABLE removed_upstream; DROP TABLE partial;"
                                  "INSERT INTO object(digest, size, local) VALUES"
                                  " ('aa', 10, 0), ('bb', 20, 0), ('cc', 5, 1);"
                                  "PRAGMA user_version = 3;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    state_close(st);
    assert_int_equal(state_open(dir, &st), 0);
    assert_int_equal(state_schema_version(st->db), state_migration_count);
    assert_int_equal(index_open(st->db, &ix), 0);
    int64_t bytes, count;
    assert_int_equal(index_object_totals(ix, &bytes, &count), 0);
    assert_int_equal(bytes, 30);
    assert_int_equal(count, 2);
    assert_int_equal(index_local_totals(ix, &bytes, &count), 0);
    assert_int_equal(bytes, 5);
    assert_int_equal(count, 1);
    totals_match_rows(st->db, ix);
    index_close(ix);
    state_close(st);
}

/* A deleted node's inode number is never given to another node, not even after a restart. */
static void index_inodes_not_reused(void **state)
{
    (void)state;
    struct state *st;
    struct index *ix;
    struct node got;
    assert_int_equal(state_open(dir, &st), 0);
    assert_int_equal(index_open(st->db, &ix), 0);
    struct node a = mk(INDEX_ROOT_INO, "a", "a", "", NODE_DIR);
    assert_int_equal(index_put(ix, &a), 0);
    assert_int_equal(index_remove(ix, a.ino), 0);
    struct node b = mk(INDEX_ROOT_INO, "b", "b", "", NODE_DIR);
    assert_int_equal(index_put(ix, &b), 0);
    assert_true(b.ino > a.ino);
    assert_int_equal(index_get(ix, a.ino, &got), -ENOENT);
    assert_int_equal(index_remove_top(ix, "b", false), 0);
    index_close(ix);
    state_close(st);
    assert_int_equal(state_open(dir, &st), 0);
    assert_int_equal(index_open(st->db, &ix), 0);
    struct node c = mk(INDEX_ROOT_INO, "c", "c", "", NODE_DIR);
    assert_int_equal(index_put(ix, &c), 0);
    assert_true(c.ino > b.ino);
    index_close(ix);
    state_close(st);
}

/* A full database is ENOSPC (a full disk), not a generic I/O error. */
static void index_full_is_enospc(void **state)
{
    (void)state;
    struct state *st;
    struct index *ix;
    assert_int_equal(state_open(dir, &st), 0);
    assert_int_equal(index_open(st->db, &ix), 0);
    assert_int_equal(sqlite3_exec(st->db, "PRAGMA max_page_count = 1", NULL, NULL, NULL),
                     SQLITE_OK);
    int rc = 0;
    char digest[65];
    for (int i = 0; rc == 0 && i < 100000; i++) {
        snprintf(digest, sizeof(digest), "%064d", i);
        rc = index_object_put(ix, digest, i, false);
    }
    assert_int_equal(rc, -ENOSPC);
    /* max_page_count: the database cannot grow, as on a full disk. */
    rc = 0;
    for (int i = 0; rc == 0 && i < 100000; i++) {
        struct node n = mk(INDEX_ROOT_INO, digest, "x", "", NODE_DIR);
        snprintf(digest, sizeof(digest), "name-%d", i);
        rc = index_put(ix, &n);
    }
    assert_int_equal(rc, -ENOSPC);
    index_close(ix);
    state_close(st);
}

/*
 * Marks of versions removed upstream (index_removed.c): marked and unmarked in one sync, read
 * back, counted per top in the cache report, and gone with their node (the trigger).
 */
static void index_removed_marks(void **state)
{
    (void)state;
    struct state *st;
    struct index *ix;
    assert_int_equal(state_open(dir, &st), 0);
    assert_int_equal(index_open(st->db, &ix), 0);
    struct node top = mk(INDEX_ROOT_INO, "js", "js", "", NODE_DIR);
    assert_int_equal(index_put(ix, &top), 0);
    struct node d = mk(top.ino, "-", "js", "-", NODE_DIR);
    assert_int_equal(index_put(ix, &d), 0);
    struct node f1 = mk(d.ino, "a-1.tgz", "js", "-/a-1.tgz", NODE_FILE);
    struct node f2 = mk(d.ino, "a-2.tgz", "js", "-/a-2.tgz", NODE_FILE);
    assert_int_equal(index_put(ix, &f1), 0);
    assert_int_equal(index_put(ix, &f2), 0);

    char *both[] = {"-/a-1.tgz", "-/a-2.tgz"}, *one[] = {"-/a-1.tgz"}, *two[] = {"-/a-2.tgz"};
    assert_int_equal(index_removed_sync(ix, "js", both, 2, NULL, 0, 1000), 0);
    /* marked again later: the first time stays */
    assert_int_equal(index_removed_sync(ix, "js", one, 1, two, 1, 2000), 0);
    int64_t since = 0, count = -1;
    assert_int_equal(index_removed_get(ix, "js", "-/a-1.tgz", &since), 1);
    assert_int_equal(since, 1000);
    assert_int_equal(index_removed_get(ix, "js", "-/a-2.tgz", NULL), 0); /* unmarked: it is back */
    assert_int_equal(index_removed_get(ix, "other", "-/a-1.tgz", NULL), 0);
    assert_int_equal(index_removed_count(ix, &count), 0);
    assert_int_equal(count, 1);
    struct index_removed *list = NULL;
    size_t n = 0;
    assert_int_equal(index_removed_list(ix, "js", &list, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].path, "-/a-1.tgz");
    index_removed_free(list, n);
    struct index_usage u = {.top = "js"};
    assert_int_equal(index_usage(ix, &u, 1), 0);
    assert_int_equal(u.removed, 1);

    /* The node goes (purge, a proxy deleted): its mark with it. */
    assert_int_equal(index_remove(ix, d.ino), 0);
    assert_int_equal(index_removed_get(ix, "js", "-/a-1.tgz", NULL), 0);
    assert_int_equal(index_removed_count(ix, &count), 0);
    assert_int_equal(count, 0);
    index_close(ix);
    state_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(store_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(verify_detects_corruption, setup, teardown),
        cmocka_unit_test_setup_teardown(index_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(index_objects, setup, teardown),
        cmocka_unit_test_setup_teardown(index_running_totals, setup, teardown),
        cmocka_unit_test_setup_teardown(index_totals_migration, setup, teardown),
        cmocka_unit_test_setup_teardown(index_inodes_not_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(index_full_is_enospc, setup, teardown),
        cmocka_unit_test_setup_teardown(index_removed_marks, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

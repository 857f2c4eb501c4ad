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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(store_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(verify_detects_corruption, setup, teardown),
        cmocka_unit_test_setup_teardown(index_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(index_objects, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

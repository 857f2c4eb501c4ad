/*
 * test_published: the one mechanism behind STATEDIR/health/KEY.json and
 * STATEDIR/counters/PID (src/util/published.c): a write creates the area
 * and the whole file; the stale-file rule says current only while the
 * writer's pid lives and an engine holds STATEDIR/engine.lock; a removal
 * of a missing file is no error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "upstreamfs/published.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[] = "/tmp/test_published.XXXXXX";

static void writes_whole_files_into_their_area(void **state)
{
    (void)state;
    char path[256], buf[64] = "";
    assert_int_equal(published_write(dir, "counters", 0700, "123", "1 2 3\n"), 0);
    published_path(dir, "counters", "123", path, sizeof(path));
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof(buf), f));
    fclose(f);
    assert_string_equal(buf, "1 2 3\n");
    struct stat st;
    published_path(dir, "counters", NULL, path, sizeof(path));
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(published_remove(dir, "counters", "123"), 0);
    assert_int_equal(published_remove(dir, "counters", "123"), 0); /* gone already: fine */
}

static void current_only_while_its_writer_publishes(void **state)
{
    (void)state;
    /* No engine holds STATEDIR/engine.lock: even a live pid's file is stale. */
    assert_false(published_current(dir, (long)getpid()));
    char lock[256];
    snprintf(lock, sizeof(lock), "%s/engine.lock", dir);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_SH), 0); /* as an open engine does */
    assert_true(published_current(dir, (long)getpid()));
    /* A dead writer's file is stale. */
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    assert_true(child > 0);
    assert_int_equal(waitpid(child, NULL, 0), child);
    assert_false(published_current(dir, (long)child));
    assert_false(published_current(dir, 0));
    assert_false(published_current(dir, -1));
    close(fd);
    assert_false(published_current(dir, (long)getpid()));
}

int main(void)
{
    assert_non_null(mkdtemp(dir));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(writes_whole_files_into_their_area),
        cmocka_unit_test(current_only_while_its_writer_publishes),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    return rc;
}

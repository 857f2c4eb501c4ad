/*
 * test_file_read: the one bounded whole-file read (src/util/file_read.c):
 * the bytes of a file within the cap; -EFBIG one byte over it (nothing
 * allocated); a FIFO is refused at once (-EINVAL, no blocking open); a
 * symbolic link is refused with FILE_READ_NOFOLLOW and followed without it;
 * a missing file is -ENOENT.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "upstreamfs/file_read.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/test_file_read.XXXXXX";

static void put(const char *name, const char *text)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int rd(const char *name, size_t max, unsigned flags, char **out, size_t *len)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    return file_read_bounded(p, max, flags, out, len, NULL);
}

static void reads_within_the_cap(void **state)
{
    (void)state;
    char *buf;
    size_t len;
    put("a", "hello\n");
    assert_int_equal(rd("a", 6, 0, &buf, &len), 0);
    assert_int_equal(len, 6);
    assert_string_equal(buf, "hello\n");
    free(buf);
    assert_int_equal(rd("a", 5, 0, &buf, &len), -EFBIG);
    assert_null(buf);
    put("empty", "");
    assert_int_equal(rd("empty", 0, 0, &buf, &len), 0);
    assert_int_equal(len, 0);
    assert_string_equal(buf, "");
    free(buf);
    assert_int_equal(rd("missing", 10, 0, &buf, &len), -ENOENT);
}

static void refuses_fifos_and_links_when_asked(void **state)
{
    (void)state;
    char p[256], l[256], *buf;
    size_t len;
    snprintf(p, sizeof(p), "%s/fifo", dir);
    assert_int_equal(mkfifo(p, 0600), 0);
    assert_int_equal(rd("fifo", 10, 0, &buf, &len), -EINVAL); /* at once: no writer needed */
    put("target", "x");
    snprintf(p, sizeof(p), "%s/target", dir);
    snprintf(l, sizeof(l), "%s/link", dir);
    assert_int_equal(symlink(p, l), 0);
    assert_int_equal(rd("link", 10, FILE_READ_NOFOLLOW, &buf, &len), -ELOOP);
    assert_int_equal(rd("link", 10, 0, &buf, &len), 0);
    assert_string_equal(buf, "x");
    free(buf);
}

int main(void)
{
    assert_non_null(mkdtemp(dir));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_within_the_cap),
        cmocka_unit_test(refuses_fifos_and_links_when_asked),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    return rc;
}

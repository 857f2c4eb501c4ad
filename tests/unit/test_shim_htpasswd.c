/*
 * test_shim_htpasswd: Basic-auth users from htpasswd text. The hashes are
 * made here with the system's crypt(3) itself (bcrypt $2b$ and $2y$,
 * SHA-crypt $5$ and $6$), so the test checks exactly what a real htpasswd
 * file would hold.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "upstreamfs/shim_htpasswd.h"

#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A hash of password with the given crypt prefix ("$2b$", "$6$", ...), malloc'd. */
static char *make_hash(const char *prefix, const char *password)
{
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data *cd = calloc(1, sizeof(*cd));
    assert_non_null(cd);
    /* Low bcrypt cost keeps the test fast; the check does not depend on it. */
    unsigned long count = !strncmp(prefix, "$2", 2) ? 4 : 0;
    assert_non_null(crypt_gensalt_rn(prefix, count, NULL, 0, salt, sizeof(salt)));
    const char *h = crypt_rn(password, salt, cd, sizeof(*cd));
    assert_non_null(h);
    assert_true(h[0] == '$');
    char *out = strdup(h);
    free(cd);
    return out;
}

static struct shim_htpasswd *parse(const char *text, int want, const char *want_msg)
{
    struct shim_htpasswd *h = NULL;
    char msg[256] = "";
    int rc = shim_htpasswd_parse(text, strlen(text), &h, msg, sizeof(msg));
    if (rc != want)
        fail_msg("parse: expected %d, got %d (%s) for:\n%s", want, rc, msg, text);
    if (want_msg && !strstr(msg, want_msg))
        fail_msg("message \"%s\" lacks \"%s\"", msg, want_msg);
    return h;
}

static void check_all_schemes(void **state)
{
    (void)state;
    char *b2b = make_hash("$2b$", "alice-pw");
    char *b2y = make_hash("$2y$", "bob pw:with colon");
    char *s5 = make_hash("$5$", "carol-pw");
    char *s6 = make_hash("$6$", "dave-pw");
    char text[4096];
    snprintf(text, sizeof(text), "# users\n\nalice:%s\r\nbob:%s\n  \ncarol:%s\ndave:%s\nalice:%s",
             b2b, b2y, s5, s6, s6);
    struct shim_htpasswd *h = parse(text, 0, NULL);
    assert_true(shim_htpasswd_check(h, "alice", "alice-pw"));
    assert_true(shim_htpasswd_check(h, "bob", "bob pw:with colon"));
    assert_true(shim_htpasswd_check(h, "carol", "carol-pw"));
    assert_true(shim_htpasswd_check(h, "dave", "dave-pw"));
    /* Remembered successes still need the same password. */
    assert_true(shim_htpasswd_check(h, "alice", "alice-pw"));
    assert_false(shim_htpasswd_check(h, "alice", "alice-pw "));
    assert_false(shim_htpasswd_check(h, "alice", "ALICE-PW"));
    assert_false(shim_htpasswd_check(h, "alice", ""));
    /* The first line for a user wins (the later alice line holds dave's hash). */
    assert_false(shim_htpasswd_check(h, "alice", "dave-pw"));
    /* Passwords of one user do not open another, nor unknown names. */
    assert_false(shim_htpasswd_check(h, "carol", "dave-pw"));
    assert_false(shim_htpasswd_check(h, "eve", "alice-pw"));
    assert_false(shim_htpasswd_check(h, "", "alice-pw"));
    assert_false(shim_htpasswd_check(h, NULL, "alice-pw"));
    assert_false(shim_htpasswd_check(h, "alice", NULL));
    assert_false(shim_htpasswd_check(NULL, "alice", "alice-pw"));
    shim_htpasswd_free(h);
    free(b2b);
    free(b2y);
    free(s5);
    free(s6);
}

static void refuses_weak_or_bad_files(void **state)
{
    (void)state;
    /* MD5-apr1, SHA1 and plain text are refused, naming the line. */
    parse("ok:$6$abc$def\nweak:$apr1$xyz$abcdefghijklmnopqrstuv\n", -EINVAL, "line 2");
    parse("weak:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n", -EINVAL, "line 1");
    parse("plain:secret\n", -EINVAL, "bcrypt");
    parse("des:abJnggxhB/yWI\n", -EINVAL, "line 1");
    parse("nocolon\n", -EINVAL, "USER:HASH");
    parse(":$6$abc$def\n", -EINVAL, "USER:HASH");
    parse("", -EINVAL, "no users");
    parse("# only comments\n\n", -EINVAL, "no users");
    char big[5000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    parse(big, -EINVAL, "longer than");
    /* A NUL inside a line. */
    struct shim_htpasswd *h = NULL;
    char msg[128];
    static const char nul[] = "a:$6$x$y\0z\n";
    assert_int_equal(shim_htpasswd_parse(nul, sizeof(nul) - 1, &h, msg, sizeof(msg)), -EINVAL);
    assert_null(h);
}

static void load_file(void **state)
{
    (void)state;
    char path[] = "/tmp/upfs-test-htpasswd.XXXXXX";
    char msg[256];
    struct shim_htpasswd *h = NULL;
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    char *hash = make_hash("$2b$", "pw");
    char line[256];
    int n = snprintf(line, sizeof(line), "user:%s\n", hash);
    assert_int_equal(write(fd, line, (size_t)n), n);
    close(fd);
    assert_int_equal(shim_htpasswd_load(path, &h, msg, sizeof(msg)), 0);
    assert_true(shim_htpasswd_check(h, "user", "pw"));
    assert_false(shim_htpasswd_check(h, "user", "pW"));
    shim_htpasswd_free(h);
    unlink(path);
    assert_true(shim_htpasswd_load(path, &h, msg, sizeof(msg)) == -ENOENT);
    assert_non_null(strstr(msg, "cannot read"));
    assert_int_equal(shim_htpasswd_load("/tmp", &h, msg, sizeof(msg)), -EINVAL);
    free(hash);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(check_all_schemes),
        cmocka_unit_test(refuses_weak_or_bad_files),
        cmocka_unit_test(load_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_aws_credentials: the SDK credential chain without AWS.
 *
 * The credentials-file parser gets profiles, comments, whitespace, CRLF,
 * a BOM, continuation lines, missing and partial keys, and hostile input
 * (NUL bytes, control characters, oversized values, malformed headers,
 * random bytes). The file reader gets missing files, directories, FIFOs and
 * oversized files. The chain gets its precedence (environment over file over
 * instance metadata), AWS_PROFILE and AWS_SHARED_CREDENTIALS_FILE, and IMDS
 * disabled, refused and silent (a listener that never answers: the deadline
 * must end it). The IMDS happy path runs against fake_ecr.py in
 * test_ecr_auth. Every test starts from an environment without AWS_*
 * variables and with a private HOME, so the machine's own keys never leak in.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "upstreamfs/aws_credentials.h"
#include "upstreamfs/fetch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/test_aws_credentials.XXXXXX";

static const char *const aws_vars[] = {"AWS_ACCESS_KEY_ID",
                                       "AWS_SECRET_ACCESS_KEY",
                                       "AWS_SESSION_TOKEN",
                                       "AWS_SECURITY_TOKEN",
                                       "AWS_PROFILE",
                                       "AWS_SHARED_CREDENTIALS_FILE",
                                       "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                                       "AWS_EC2_METADATA_DISABLED",
                                       NULL};

static int clean_env(void **state)
{
    (void)state;
    for (const char *const *v = aws_vars; *v; v++)
        unsetenv(*v);
    setenv("HOME", tmpdir, 1);
    /* Never ask the real metadata address from a test. */
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    return 0;
}

static char *write_file(const char *name, const char *text, size_t len)
{
    char *path = NULL;
    assert_true(asprintf(&path, "%s/%s", tmpdir, name) > 0);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    fclose(f);
    return path;
}

static int parse(const char *text, const char *profile, struct aws_credentials *c)
{
    return aws_credentials_parse_ini(text, strlen(text), profile, c);
}

static void test_ini_basic(void **state)
{
    (void)state;
    struct aws_credentials c = {0};
    const char *text = "# leading comment\n"
                       "; another\n"
                       "[default]\n"
                       "aws_access_key_id = AKIDDEFAULT\n"
                       "aws_secret_access_key=secretdefault\n"
                       "\n"
                       "[prod]\n"
                       "  AWS_ACCESS_KEY_ID\t=  AKIDPROD  \n"
                       "aws_secret_access_key: secret/prod+x==\n"
                       "aws_session_token = tok\n";
    assert_int_equal(parse(text, "default", &c), 0);
    assert_string_equal(c.access_key_id, "AKIDDEFAULT");
    assert_string_equal(c.secret_access_key, "secretdefault");
    assert_null(c.session_token);
    assert_int_equal(c.source, AWS_CREDS_FILE);
    assert_int_equal(c.expires_at, 0);
    assert_int_equal(parse(text, "prod", &c), 0);
    assert_string_equal(c.access_key_id, "AKIDPROD");
    assert_string_equal(c.secret_access_key, "secret/prod+x==");
    assert_string_equal(c.session_token, "tok");
    aws_credentials_clear(&c);
    assert_null(c.access_key_id);
    assert_null(c.secret_access_key);
}

static void test_ini_crlf_bom_and_spacing(void **state)
{
    (void)state;
    struct aws_credentials c = {0};
    const char *text = "\xEF\xBB\xBF[ default ]\r\n"
                       "aws_access_key_id=A1\r\n"
                       "\taws_secret_access_key = S1 \r\n";
    /* The indented secret line follows a key, so it is that key's continuation. */
    assert_int_equal(parse(text, "default", &c), -EINVAL);
    const char *text2 = "\xEF\xBB\xBF[ default ]\r\n"
                        "aws_access_key_id=A1\r\n"
                        "aws_secret_access_key = S1 \r\n";
    assert_int_equal(parse(text2, "default", &c), 0);
    assert_string_equal(c.access_key_id, "A1");
    assert_string_equal(c.secret_access_key, "S1");
    /* No trailing newline at all. */
    assert_int_equal(
        parse("[default]\naws_access_key_id=A\naws_secret_access_key=S", "default", &c), 0);
    assert_string_equal(c.secret_access_key, "S");
    aws_credentials_clear(&c);
}

static void test_ini_missing_and_partial(void **state)
{
    (void)state;
    struct aws_credentials c = {0};
    assert_int_equal(parse("", "default", &c), -ENOENT);
    assert_int_equal(
        parse("[other]\naws_access_key_id=A\naws_secret_access_key=S\n", "default", &c), -ENOENT);
    assert_int_equal(parse("[default]\nregion = us-east-1\n", "default", &c), -ENOENT);
    assert_int_equal(parse("[default]\naws_access_key_id=A\n", "default", &c), -EINVAL);
    assert_int_equal(parse("[default]\naws_secret_access_key=S\n", "default", &c), -EINVAL);
    assert_int_equal(
        parse("[default]\naws_access_key_id=\naws_secret_access_key=\n", "default", &c), -ENOENT);
    /* A longer or shorter name is another profile. */
    assert_int_equal(
        parse("[default2]\naws_access_key_id=A\naws_secret_access_key=S\n", "default", &c),
        -ENOENT);
    assert_int_equal(
        parse("[Default]\naws_access_key_id=A\naws_secret_access_key=S\n", "default", &c), -ENOENT);
    assert_int_equal(parse("[default]\n", "", &c), -EINVAL);
    assert_null(c.access_key_id);
}

static void test_ini_merge_and_last_wins(void **state)
{
    (void)state;
    struct aws_credentials c = {0};
    const char *text = "[p]\naws_access_key_id=OLD\n"
                       "[q]\naws_access_key_id=Q\naws_secret_access_key=QS\n"
                       "[p]\naws_secret_access_key=S\naws_access_key_id=NEW\n"
                       "aws_security_token=LEGACY\n";
    assert_int_equal(parse(text, "p", &c), 0);
    assert_string_equal(c.access_key_id, "NEW");
    assert_string_equal(c.secret_access_key, "S");
    assert_string_equal(c.session_token, "LEGACY");
    /* aws_session_token wins over the legacy name. */
    assert_int_equal(parse("[p]\naws_access_key_id=A\naws_secret_access_key=S\n"
                           "aws_security_token=L\naws_session_token=T\n",
                           "p", &c),
                     0);
    assert_string_equal(c.session_token, "T");
    aws_credentials_clear(&c);
}

/* Nested settings ("s3 =" then indented lines) set nothing, even with our key names. */
static void test_ini_continuation(void **state)
{
    (void)state;
    struct aws_credentials c = {0};
    const char *text = "[default]\n"
                       "aws_access_key_id = GOOD\n"
                       "s3 =\n"
                       "    aws_access_key_id = EVIL\n"
                       "    max_concurrent_requests = 20\n"
                       "aws_secret_access_key = S\n";
    assert_int_equal(parse(text, "default", &c), 0);
    assert_string_equal(c.access_key_id, "GOOD");
    aws_credentials_clear(&c);
}

static void test_ini_hostile(void **state)
{
    (void)state;
    struct aws_credentials c = {0};
    /* A malformed header: the keys after it belong to no profile. */
    assert_int_equal(parse("[default]\naws_access_key_id=A\naws_secret_access_key=S\n"
                           "[evil\naws_access_key_id=EVIL\n",
                           "default", &c),
                     0);
    assert_string_equal(c.access_key_id, "A");
    assert_int_equal(
        parse("[default\naws_access_key_id=A\naws_secret_access_key=S\n", "default", &c), -ENOENT);
    assert_int_equal(parse("[]\naws_access_key_id=A\naws_secret_access_key=S\n", "", &c), -EINVAL);
    /* Keys before any section belong to none. */
    assert_int_equal(
        parse("aws_access_key_id=A\naws_secret_access_key=S\n[default]\n", "default", &c), -ENOENT);
    /* Lines without a delimiter, and delimiters without a key, are ignored. */
    assert_int_equal(parse("[default]\ngarbage line\n=value\n:x\n"
                           "aws_access_key_id=A\naws_secret_access_key=S\n",
                           "default", &c),
                     0);
    /* A NUL byte anywhere: not a text file. */
    static const char nul[] = "[default]\naws_access_key_id=A\0\naws_secret_access_key=S\n";
    assert_int_equal(aws_credentials_parse_ini(nul, sizeof(nul) - 1, "default", &c), -EINVAL);
    /* Values that could inject a header, or that no AWS key looks like. */
    assert_int_equal(
        parse("[default]\naws_access_key_id=A\x01\naws_secret_access_key=S\n", "default", &c),
        -EINVAL);
    assert_int_equal(
        parse("[default]\naws_access_key_id=A\raws_secret_access_key=S\n", "default", &c), -EINVAL);
    assert_int_equal(
        parse("[default]\naws_access_key_id=A B\naws_secret_access_key=S\n", "default", &c),
        -EINVAL);
    assert_int_equal(
        parse("[default]\naws_access_key_id=A\naws_secret_access_key=S\xc3\xa9\n", "default", &c),
        -EINVAL);
    /* An oversized value. */
    size_t big = AWS_CREDENTIALS_VALUE_MAX + 1;
    char *text = malloc(big + 128);
    int n = sprintf(text, "[default]\naws_access_key_id=A\naws_secret_access_key=");
    memset(text + n, 'x', big);
    text[n + big] = '\0';
    assert_int_equal(parse(text, "default", &c), -EINVAL);
    free(text);
    assert_null(c.access_key_id);
}

/* Random bytes and random lines of INI punctuation: an answer, never a crash. */
static void test_ini_random(void **state)
{
    (void)state;
    static const char alphabet[] = "[]=:#; \t\r\naAsS_\x00\xff";
    struct aws_credentials c = {0};
    char buf[512];
    srand(12345);
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = (size_t)(rand() % (int)sizeof(buf));
        for (size_t i = 0; i < n; i++)
            buf[i] =
                iter % 2 ? (char)(rand() & 0xff) : alphabet[rand() % (int)(sizeof(alphabet) - 1)];
        int rc = aws_credentials_parse_ini(buf, n, iter % 3 ? "default" : "a", &c);
        assert_true(rc == 0 || rc == -ENOENT || rc == -EINVAL);
        aws_credentials_clear(&c);
    }
}

static void test_file_reader(void **state)
{
    (void)state;
    struct aws_credentials c = {0};
    char path[256];
    snprintf(path, sizeof(path), "%s/absent", tmpdir);
    assert_int_equal(aws_credentials_from_file(path, "default", &c), -ENOENT);
    assert_int_equal(aws_credentials_from_file(tmpdir, "default", &c), -EINVAL);
    /* A FIFO must neither block the open nor be read. */
    snprintf(path, sizeof(path), "%s/fifo", tmpdir);
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_int_equal(aws_credentials_from_file(path, "default", &c), -EINVAL);
    unlink(path);
    /* Oversized. */
    size_t big = AWS_CREDENTIALS_FILE_MAX + 1;
    char *text = calloc(1, big);
    memset(text, '#', big);
    char *p = write_file("big", text, big);
    assert_int_equal(aws_credentials_from_file(p, "default", &c), -EFBIG);
    unlink(p);
    free(p);
    free(text);
    const char good[] = "[default]\naws_access_key_id=FA\naws_secret_access_key=FS\n";
    p = write_file("good", good, sizeof(good) - 1);
    assert_int_equal(aws_credentials_from_file(p, "default", &c), 0);
    assert_string_equal(c.access_key_id, "FA");
    aws_credentials_clear(&c);
    unlink(p);
    free(p);
}

static void test_file_location(void **state)
{
    (void)state;
    char *path = NULL, want[256];
    const char *profile = NULL;
    assert_int_equal(aws_credentials_file_location(&path, &profile), 0);
    snprintf(want, sizeof(want), "%s/.aws/credentials", tmpdir);
    assert_string_equal(path, want);
    assert_string_equal(profile, "default");
    free(path);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "~/creds", 1);
    setenv("AWS_PROFILE", "prod", 1);
    assert_int_equal(aws_credentials_file_location(&path, &profile), 0);
    snprintf(want, sizeof(want), "%s/creds", tmpdir);
    assert_string_equal(path, want);
    assert_string_equal(profile, "prod");
    free(path);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/etc/elsewhere", 1);
    assert_int_equal(aws_credentials_file_location(&path, &profile), 0);
    assert_string_equal(path, "/etc/elsewhere");
    free(path);
}

static void test_env(void **state)
{
    (void)state;
    struct aws_credentials c = {0};
    assert_int_equal(aws_credentials_from_env(&c), -ENOENT);
    setenv("AWS_ACCESS_KEY_ID", "ENVA", 1);
    assert_int_equal(aws_credentials_from_env(&c), -EINVAL);
    setenv("AWS_SECRET_ACCESS_KEY", "", 1); /* empty counts as unset */
    assert_int_equal(aws_credentials_from_env(&c), -EINVAL);
    setenv("AWS_SECRET_ACCESS_KEY", "ENVS", 1);
    assert_int_equal(aws_credentials_from_env(&c), 0);
    assert_string_equal(c.access_key_id, "ENVA");
    assert_string_equal(c.secret_access_key, "ENVS");
    assert_null(c.session_token);
    assert_int_equal(c.source, AWS_CREDS_ENV);
    setenv("AWS_SESSION_TOKEN", "ENVT", 1);
    assert_int_equal(aws_credentials_from_env(&c), 0);
    assert_string_equal(c.session_token, "ENVT");
    unsetenv("AWS_ACCESS_KEY_ID");
    assert_int_equal(aws_credentials_from_env(&c), -EINVAL);
    aws_credentials_clear(&c);
}

static void test_chain_precedence(void **state)
{
    (void)state;
    struct aws_credentials c = {0};
    char why[512];
    const char text[] = "[default]\naws_access_key_id=FILEA\naws_secret_access_key=FILES\n"
                        "[prod]\naws_access_key_id=PRODA\naws_secret_access_key=PRODS\n";
    char *p = write_file("credentials", text, sizeof(text) - 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", p, 1);

    /* Nothing in the environment: the file's default profile. */
    assert_int_equal(aws_credentials_resolve(&c, why, sizeof(why)), 0);
    assert_string_equal(c.access_key_id, "FILEA");
    assert_int_equal(c.source, AWS_CREDS_FILE);
    setenv("AWS_PROFILE", "prod", 1);
    assert_int_equal(aws_credentials_resolve(&c, why, sizeof(why)), 0);
    assert_string_equal(c.access_key_id, "PRODA");

    /* The environment wins over the file. */
    setenv("AWS_ACCESS_KEY_ID", "ENVA", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "ENVS", 1);
    assert_int_equal(aws_credentials_resolve(&c, why, sizeof(why)), 0);
    assert_string_equal(c.access_key_id, "ENVA");
    assert_int_equal(c.source, AWS_CREDS_ENV);

    /* Half a pair in the environment stops the chain: the user meant it. */
    unsetenv("AWS_SECRET_ACCESS_KEY");
    assert_int_equal(aws_credentials_resolve(&c, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "environment"));
    assert_null(c.access_key_id);
    unsetenv("AWS_ACCESS_KEY_ID");

    /* A missing profile falls through to IMDS, which is disabled here. */
    setenv("AWS_PROFILE", "nosuch", 1);
    assert_int_equal(aws_credentials_resolve(&c, why, sizeof(why)), -ENOENT);
    assert_non_null(strstr(why, "no credentials for profile nosuch"));
    assert_non_null(strstr(why, "instance metadata: disabled"));
    unlink(p);
    free(p);
    assert_int_equal(aws_credentials_resolve(&c, why, sizeof(why)), -ENOENT);
    assert_non_null(strstr(why, "not found"));
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A TCP listener on 127.0.0.1 that accepts connections into its backlog and never answers. */
static int silent_listener(int *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static void test_imds_deadlines(void **state)
{
    (void)state;
    struct aws_credentials c = {0};
    char why[512], ep[64];
    int port, fd = silent_listener(&port);
    snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", port);

    int64_t t0 = now_ms();
    int rc = aws_credentials_from_imds(ep, &c);
    int64_t took = now_ms() - t0;
    assert_int_equal(rc, -ETIMEDOUT);
    assert_true(took < AWS_IMDS_TIMEOUT_MS + 1500);

    /* Through the chain: IMDS enabled, pointed at the silent listener (trailing '/' is fine). */
    unsetenv("AWS_EC2_METADATA_DISABLED");
    snprintf(ep, sizeof(ep), "http://127.0.0.1:%d/", port);
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", ep, 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
    t0 = now_ms();
    assert_int_equal(aws_credentials_resolve(&c, why, sizeof(why)), -ENOENT);
    assert_true(now_ms() - t0 < AWS_IMDS_TIMEOUT_MS + 1500);
    assert_non_null(strstr(why, "instance metadata"));
    close(fd);

    /* Nobody listening at all: refused, at once. */
    fd = silent_listener(&port);
    close(fd);
    snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", port);
    assert_int_equal(aws_credentials_from_imds(ep, &c), -ECONNREFUSED);
}

static void test_imds_document(void **state)
{
    (void)state;
    struct aws_credentials c = {0};
    const char *good = "{\"Code\":\"Success\",\"LastUpdated\":\"2026-11-27T06:00:00Z\","
                       "\"Type\":\"AWS-HMAC\",\"AccessKeyId\":\"ASIAX\",\"SecretAccessKey\":"
                       "\"sec/ret+\",\"Token\":\"tok==\",\"Expiration\":\"2026-11-27T12:00:00Z\"}";
    assert_int_equal(aws_credentials_parse_imds(good, strlen(good), &c), 0);
    assert_string_equal(c.access_key_id, "ASIAX");
    assert_string_equal(c.secret_access_key, "sec/ret+");
    assert_string_equal(c.session_token, "tok==");
    assert_int_equal(c.expires_at, 1795780800); /* 2026-11-27T12:00:00Z */
    assert_int_equal(c.source, AWS_CREDS_IMDS);
    const char *frac = "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\","
                       "\"Expiration\":\"2026-11-27T12:00:00.123Z\"}";
    assert_int_equal(aws_credentials_parse_imds(frac, strlen(frac), &c), 0);
    assert_int_equal(c.expires_at, 1795780800);
    assert_null(c.session_token);
    static const char *const bad[] = {
        "",
        "not json",
        "[]",
        "{\"Code\":\"Failure\",\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\"}",
        "{\"Code\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\"}",
        "{\"AccessKeyId\":\"A\"}",
        "{\"AccessKeyId\":5,\"SecretAccessKey\":\"S\"}",
        "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\",\"Token\":7}",
        "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\",\"Expiration\":\"tomorrow\"}",
        "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\",\"Expiration\":\"2026-13-01T00:00:00Z\"}",
        "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\",\"Expiration\":\"2026-11-27T12:00:00\"}",
        "{\"AccessKeyId\":\"A\\r\\nX: y\",\"SecretAccessKey\":\"S\"}",
        "{\"AccessKeyId\":\"A\",\"AccessKeyId\":\"B\",\"SecretAccessKey\":\"S\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (aws_credentials_parse_imds(bad[i], strlen(bad[i]), &c) != -EIO)
            fail_msg("accepted: %s", bad[i]);
        assert_null(c.access_key_id);
    }
}

static void test_set_checks(void **state)
{
    (void)state;
    struct aws_credentials c = {0};
    assert_int_equal(aws_credentials_set(&c, "A", "S", NULL, 5, AWS_CREDS_STATIC), 0);
    assert_int_equal(c.expires_at, 5);
    assert_string_equal(aws_credentials_source_name(c.source), "static");
    assert_int_equal(aws_credentials_set(&c, "", "S", NULL, 0, AWS_CREDS_STATIC), -EINVAL);
    assert_int_equal(aws_credentials_set(&c, "A", NULL, NULL, 0, AWS_CREDS_STATIC), -EINVAL);
    assert_int_equal(aws_credentials_set(&c, "A", "S", "", 0, AWS_CREDS_STATIC), -EINVAL);
    assert_int_equal(aws_credentials_set(&c, "A", "S\n", NULL, 0, AWS_CREDS_STATIC), -EINVAL);
    assert_null(c.access_key_id);
}

static int group_setup(void **state)
{
    (void)state;
    if (!mkdtemp(tmpdir))
        return -1;
    return fetch_global_init();
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    fetch_global_cleanup();
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_ini_basic, clean_env),
        cmocka_unit_test_setup(test_ini_crlf_bom_and_spacing, clean_env),
        cmocka_unit_test_setup(test_ini_missing_and_partial, clean_env),
        cmocka_unit_test_setup(test_ini_merge_and_last_wins, clean_env),
        cmocka_unit_test_setup(test_ini_continuation, clean_env),
        cmocka_unit_test_setup(test_ini_hostile, clean_env),
        cmocka_unit_test_setup(test_ini_random, clean_env),
        cmocka_unit_test_setup(test_file_reader, clean_env),
        cmocka_unit_test_setup(test_file_location, clean_env),
        cmocka_unit_test_setup(test_env, clean_env),
        cmocka_unit_test_setup(test_chain_precedence, clean_env),
        cmocka_unit_test_setup(test_imds_deadlines, clean_env),
        cmocka_unit_test_setup(test_imds_document, clean_env),
        cmocka_unit_test_setup(test_set_checks, clean_env),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

/*
 * test_health: a proxy's health as src/engine/upstream.c keeps it, without a
 * mount or a network: failures by cause, the back-off rule (only failures of
 * the remote count), recovery, the one-line-a-minute log per cause, the
 * outcome rule of a response (401 left to the caller until final), the
 * remote's quota, and STATEDIR/health/<key>.json: written only by a daemon's
 * engine, read by the CLI only while its writer and an engine are alive,
 * removed when a reload drops the proxy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../src/engine/engine_i.h"
#include "upstreamfs/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

struct fx {
    char dir[64];
    char logpath[96];
    struct engine *e;
    struct upstream *u;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_health.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->logpath, sizeof(f->logpath), "%s/log", f->dir);
    assert_int_equal(log_open_file(f->logpath), 0);
    f->e = calloc(1, sizeof(*f->e));
    f->e->state_dir = f->dir;
    f->e->publish_health = true; /* a mount's or serve's engine */
    struct proxy p;
    memset(&p, 0, sizeof(p));
    config_proxy_init(&p, "hub", PROXY_GENERIC);
    p.url = "http://127.0.0.1:1/";
    f->u = upstream_new(f->e, &p, NULL);
    assert_non_null(f->u);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];
    log_open_file(NULL);
    upstream_unref(f->u);
    free(f->e);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Lines of the log that contain s. */
static int log_lines(struct fx *f, const char *s)
{
    char line[2048];
    int n = 0;
    FILE *fp = fopen(f->logpath, "r");
    if (!fp)
        return 0;
    while (fgets(line, sizeof(line), fp))
        n += strstr(line, s) != NULL;
    fclose(fp);
    return n;
}

static char *health_file(struct fx *f)
{
    char path[128], *buf = calloc(1, 4096);
    snprintf(path, sizeof(path), "%s/health/hub.json", f->dir);
    FILE *fp = fopen(path, "r");
    if (fp) {
        size_t n = fread(buf, 1, 4095, fp);
        buf[n] = '\0';
        fclose(fp);
    }
    return buf;
}

static void t_auth_fails_without_backoff(void **state)
{
    struct fx *f = *state;
    struct failure a = {.cause = FAILURE_AUTH, .status = 401};
    struct health_snapshot h;
    for (int i = 0; i < 5; i++)
        upstream_note_failure(f->u, &a, "http://user:pw@127.0.0.1:1/x?token=secret");
    upstream_health(f->u, &h);
    assert_int_equal(h.state, HEALTH_FAILING);
    assert_int_equal(h.cause, FAILURE_AUTH);
    assert_int_equal(h.status, 401);
    assert_int_equal(h.consecutive_failures, 5);
    assert_int_equal(h.errors[FAILURE_AUTH], 5);
    assert_string_equal(h.url, "http://127.0.0.1:1/x");
    /* a refusal is an answer: the remote is alive, no back-off */
    assert_false(upstream_backing_off(f->u));
    /* one line for five failures of one cause within the minute, without the secrets */
    assert_int_equal(log_lines(f, "proxy hub: auth failure, status 401: http://127.0.0.1:1/x"), 1);
    assert_int_equal(log_lines(f, "secret"), 0);
    assert_int_equal(log_lines(f, "pw"), 0);
    char *j = health_file(f);
    assert_non_null(strstr(j, "\"state\":\"failing\""));
    assert_non_null(strstr(j, "\"cause\":\"auth\""));
    free(j);
    /* another cause has its own line */
    struct failure c = {.cause = FAILURE_CONNECT};
    upstream_note_failure(f->u, &c, "http://127.0.0.1:1/y");
    assert_int_equal(log_lines(f, "proxy hub: connect failure, status -: http://127.0.0.1:1/y"), 1);
}

/* Wrong bytes are an answer: digest failures never back off, and they break a streak of
 * transport failures (the remote is alive), so a reader never gets the back-off's errno. */
static void t_digest_fails_without_backoff(void **state)
{
    struct fx *f = *state;
    struct failure d = {.cause = FAILURE_DIGEST, .status = 200};
    struct failure c = {.cause = FAILURE_CONNECT};
    struct failure last;
    for (int i = 0; i < 3 * UPSTREAM_FAILS_BEFORE_OFFLINE; i++)
        upstream_note_failure(f->u, &d, "http://127.0.0.1:1/a.jar");
    assert_false(upstream_backing_off(f->u));
    assert_true(upstream_last_failure(f->u, &last));
    assert_int_equal(last.cause, FAILURE_DIGEST);
    assert_int_equal(failure_errno(&last), -EIO);
    for (int i = 0; i < 3 * UPSTREAM_FAILS_BEFORE_OFFLINE; i++) {
        if (i % (UPSTREAM_FAILS_BEFORE_OFFLINE - 1) == 0)
            upstream_note_failure(f->u, &d, "http://127.0.0.1:1/a.jar");
        else
            upstream_note_failure(f->u, &c, "http://127.0.0.1:1/");
    }
    assert_false(upstream_backing_off(f->u));
}

static void t_backoff_and_recovery(void **state)
{
    struct fx *f = *state;
    struct failure c = {.cause = FAILURE_CONNECT};
    struct health_snapshot h;
    struct failure last;
    for (int i = 0; i < UPSTREAM_FAILS_BEFORE_OFFLINE; i++)
        upstream_note_failure(f->u, &c, "http://127.0.0.1:1/");
    assert_true(upstream_backing_off(f->u));
    upstream_health(f->u, &h);
    assert_int_equal(h.state, HEALTH_BACKING_OFF);
    assert_true(h.retry_at >= (int64_t)time(NULL));
    char buf[80];
    health_describe(&h, buf, sizeof(buf));
    assert_int_equal(strncmp(buf, "backing-off until ", 18), 0);
    assert_true(upstream_last_failure(f->u, &last));
    assert_int_equal(last.cause, FAILURE_CONNECT);
    upstream_note_success(f->u);
    assert_false(upstream_backing_off(f->u));
    upstream_health(f->u, &h);
    assert_int_equal(h.state, HEALTH_OK);
    assert_int_equal(h.consecutive_failures, 0);
    assert_true(h.last_success > 0);
    assert_false(upstream_last_failure(f->u, &last));
    assert_int_equal(log_lines(f, "proxy hub: recovered"), 1);
    char *j = health_file(f);
    assert_non_null(strstr(j, "\"state\":\"ok\""));
    free(j);
}

static void t_outcome(void **state)
{
    struct fx *f = *state;
    struct fetch_response r;
    struct health_snapshot h;
    struct failure_note note;
    memset(&r, 0, sizeof(r));
    r.ratelimit_remaining = r.ratelimit_limit = -1;
    /* a challenge the driver answers: noted, not counted */
    r.status = 401;
    failure_note_clear();
    assert_true(upstream_outcome(f->u, 0, &r, "http://127.0.0.1:1/v2/", false));
    upstream_health(f->u, &h);
    assert_int_equal(h.state, HEALTH_OK);
    assert_int_equal(h.errors[FAILURE_AUTH], 0);
    assert_true(failure_note_get(&note));
    assert_false(note.recorded);
    /* a 500: counted, http */
    r.status = 500;
    assert_true(upstream_outcome(f->u, 0, &r, "http://127.0.0.1:1/a", true));
    upstream_health(f->u, &h);
    assert_int_equal(h.state, HEALTH_FAILING);
    assert_int_equal(h.cause, FAILURE_HTTP);
    assert_int_equal(h.errors[FAILURE_HTTP], 1);
    /* cancelled by us: no verdict */
    memset(&r, 0, sizeof(r));
    assert_false(upstream_outcome(f->u, -ECANCELED, &r, "http://127.0.0.1:1/a", true));
    upstream_health(f->u, &h);
    assert_int_equal(h.state, HEALTH_FAILING);
    /* a 304 with the remote's quota: success, quota kept */
    r.status = 304;
    r.ratelimit_remaining = 76;
    r.ratelimit_limit = 100;
    assert_false(upstream_outcome(f->u, 0, &r, "http://127.0.0.1:1/a", true));
    upstream_health(f->u, &h);
    assert_int_equal(h.state, HEALTH_OK);
    assert_int_equal(h.ratelimit_remaining, 76);
    assert_int_equal(h.ratelimit_limit, 100);
    /* a transport failure with its cause from fetch */
    memset(&r, 0, sizeof(r));
    r.cause = FAILURE_DNS;
    assert_true(upstream_outcome(f->u, -EHOSTUNREACH, &r, "http://x.invalid/", true));
    upstream_health(f->u, &h);
    assert_int_equal(h.cause, FAILURE_DNS);
    assert_int_equal(h.status, 0);
}

/* The CLI's view: current only while the writer lives and an engine holds engine.lock. */
static void t_file_read(void **state)
{
    struct fx *f = *state;
    struct failure fl = {.cause = FAILURE_HTTP, .status = 500};
    struct health_snapshot h;
    char path[128];
    upstream_note_failure(f->u, &fl, "http://127.0.0.1:1/x");
    upstream_health(f->u, &h);
    assert_null(health_file_read(f->dir, "hub")); /* no engine.lock: no engine runs */
    snprintf(path, sizeof(path), "%s/engine.lock", f->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_SH), 0);
    json_t *j = health_file_read(f->dir, "hub");
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "failing");
    assert_string_equal(json_string_value(json_object_get(j, "cause")), "http");
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 500);
    assert_null(json_object_get(j, "pid")); /* the file's own members stay there */
    json_decref(j);
    /* a file whose writer is gone (pid 2^22 + 1 is beyond Linux's pid_max) */
    snprintf(path, sizeof(path), "%s/health/hub.json", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("{\"state\":\"failing\",\"pid\":4194305}", fp);
    fclose(fp);
    assert_null(health_file_read(f->dir, "hub"));
    close(fd);
    /* a reload that dropped the proxy removes its file, and the old object writes no more */
    upstream_health(f->u, &h);
    upstream_retire(f->u, NULL, 0);
    assert_int_equal(access(path, F_OK), -1);
    upstream_note_failure(f->u, &fl, "http://127.0.0.1:1/x");
    upstream_health(f->u, &h);
    assert_int_equal(access(path, F_OK), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(t_auth_fails_without_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(t_digest_fails_without_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(t_backoff_and_recovery, setup, teardown),
        cmocka_unit_test_setup_teardown(t_outcome, setup, teardown),
        cmocka_unit_test_setup_teardown(t_file_read, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

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

/* A proxy of type t with url and mirrors m1, m2 (NULL: fewer), on f's engine. */
static struct upstream *with_mirrors(struct fx *f, enum proxy_type t, const char *url,
                                     const char *m1, const char *m2)
{
    struct proxy p;
    char *mirrors[] = {(char *)m1, (char *)m2, NULL};
    memset(&p, 0, sizeof(p));
    config_proxy_init(&p, "hub", t);
    p.url = (char *)url;
    p.mirrors = mirrors;
    struct upstream *u = upstream_new(f->e, &p, NULL);
    assert_non_null(u);
    return u;
}

/*
 * Several URLs (src/engine/origins.c): a request goes on to the next URL after a failure of the
 * remote, each failing URL backs off on its own, the proxy only when all do; a URL is moved to
 * another by its root (a registry's repositories' and API roots too).
 */
static void t_urls_in_order(void **state)
{
    struct fx *f = *state;
    struct upstream *u =
        with_mirrors(f, PROXY_GENERIC, "http://127.0.0.1:1/a/", "http://127.0.0.1:2/b/", NULL);
    struct health_snapshot h;
    upstream_health(u, &h);
    assert_int_equal(h.n_urls, 2);
    assert_string_equal(h.urls[1].url, "http://127.0.0.1:2/b/");
    assert_int_equal(h.urls[0].state, HEALTH_OK);

    /* both refuse: the request was asked of each, in order; both back off, so does the proxy */
    struct fetch_response r;
    assert_int_equal(upstream_request(u, "http://127.0.0.1:1/a/x/y.bin", false, 0, &r), -EREMOTEIO);
    fetch_response_clear(&r);
    upstream_health(u, &h);
    assert_int_equal(h.urls[0].state, HEALTH_BACKING_OFF);
    assert_int_equal(h.urls[1].state, HEALTH_BACKING_OFF);
    assert_int_equal(h.urls[0].cause, FAILURE_CONNECT);
    assert_int_equal(h.urls[0].requests, 1);
    assert_int_equal(h.urls[1].failures, 1);
    assert_int_equal(h.requests_get, 2);
    assert_true(upstream_backing_off(u));
    assert_int_equal(h.state, HEALTH_BACKING_OFF);
    assert_true(h.retry_at >= (int64_t)time(NULL));
    assert_int_equal(log_lines(f, "http://127.0.0.1:2/b/ backs off"), 1);
    /* the JSON lists each URL with its state */
    json_t *o = health_object(&h);
    json_t *urls = json_object_get(o, "urls");
    assert_int_equal(json_array_size(urls), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(urls, 1), "state")),
                        "backing-off");
    assert_string_equal(json_string_value(json_object_get(json_array_get(urls, 0), "cause")),
                        "connect");
    json_decref(o);

    /* a download's next URL: the same place on the second; a 404 is an answer (none) */
    struct fetch_response cut = {.status = 200, .cause = FAILURE_HTTP};
    char *next = upstream_next_url(u, "http://127.0.0.1:1/a/x/y.bin", -EIO, &cut);
    assert_null(next); /* the second backs off too */
    upstream_note_url_success(u, "http://127.0.0.1:2/b/q");
    next = upstream_next_url(u, "http://127.0.0.1:1/a/x/y.bin", -EIO, &cut);
    assert_non_null(next);
    assert_string_equal(next, "http://127.0.0.1:2/b/x/y.bin");
    free(next);
    struct fetch_response absent = {.status = 404};
    assert_null(upstream_next_url(u, "http://127.0.0.1:1/a/x/y.bin", 0, &absent));
    next = upstream_pick_url(u, "http://127.0.0.1:1/a/z");
    assert_string_equal(next, "http://127.0.0.1:2/b/z"); /* the first still backs off */
    free(next);
    next = upstream_pick_url(u, "http://elsewhere.example/a/z");
    assert_string_equal(next, "http://elsewhere.example/a/z"); /* not below a URL of the proxy */
    free(next);
    upstream_unref(u);

    /* a registry: its repositories' root and its API root move to the other URL's */
    u = with_mirrors(f, PROXY_DOCKER, "http://127.0.0.1:1/hub/", "http://127.0.0.1:2/", NULL);
    next = upstream_next_url(u, "http://127.0.0.1:1/v2/hub/lib/a/manifests/1", -ECONNREFUSED,
                             &(struct fetch_response){.cause = FAILURE_CONNECT});
    assert_string_equal(next, "http://127.0.0.1:2/v2/lib/a/manifests/1");
    free(next);
    upstream_note_url_success(u, "http://127.0.0.1:2/v2/");
    struct upstream *u2 =
        with_mirrors(f, PROXY_DOCKER, "http://127.0.0.1:2/", "http://127.0.0.1:1/hub/", NULL);
    next = upstream_next_url(u2, "http://127.0.0.1:2/v2/", -ECONNREFUSED,
                             &(struct fetch_response){.cause = FAILURE_CONNECT});
    assert_string_equal(next, "http://127.0.0.1:1/v2/");
    free(next);
    upstream_unref(u2);
    upstream_unref(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(t_auth_fails_without_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(t_digest_fails_without_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(t_backoff_and_recovery, setup, teardown),
        cmocka_unit_test_setup_teardown(t_outcome, setup, teardown),
        cmocka_unit_test_setup_teardown(t_file_read, setup, teardown),
        cmocka_unit_test_setup_teardown(t_urls_in_order, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_single_flight: the one in-process single-flight primitive
 * (src/util/single_flight.c): N threads asking for one key make one leader
 * run the work and all get its result; a leader's failure reaches every
 * waiter and the next caller leads afresh; a waiter's deadline ends its wait
 * with -ETIMEDOUT while the leader goes on; data lives as long as the last
 * reference, also after the group is gone; a closed group refuses joins.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "upstreamfs/clock.h"
#include "upstreamfs/single_flight.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#define THREADS 16

struct shared {
    struct sf_group *g;
    atomic_int runs;    /* times the work ran */
    atomic_int leaders; /* callers that led */
    atomic_int arrived; /* callers that have joined */
    int result;         /* what the work returns */
    long work_ms;
};

struct answer {
    struct shared *s;
    int rc;
    unsigned flags;
};

/* One caller: join "k"; the leader runs the work once everyone joined (or 2 s), others wait. */
static void *caller(void *arg)
{
    struct answer *a = arg;
    struct shared *s = a->s;
    struct sf_call *c;
    int role = sf_join(s->g, "k", NULL, NULL, NULL, &c);
    atomic_fetch_add(&s->arrived, 1);
    if (role == SF_LEADER) {
        atomic_fetch_add(&s->leaders, 1);
        int64_t until = clock_mono_ms() + 2000;
        while (atomic_load(&s->arrived) < THREADS && clock_mono_ms() < until)
            usleep(1000);
        atomic_fetch_add(&s->runs, 1);
        usleep((useconds_t)s->work_ms * 1000);
        sf_finish(s->g, c, s->result, 7u);
        a->rc = s->result;
        a->flags = 7u;
    } else {
        assert_int_equal(role, SF_JOINED);
        assert_int_equal(sf_wait(c, clock_mono_ms() + 10000, &a->rc, &a->flags), 0);
    }
    sf_release(c);
    return NULL;
}

static void run_callers(struct shared *s, struct answer *ans)
{
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        ans[i].s = s;
        ans[i].rc = 12345;
        assert_int_equal(pthread_create(&th[i], NULL, caller, &ans[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
}

static void one_leader_runs_and_all_get_its_result(void **state)
{
    (void)state;
    struct shared s = {.g = sf_group_new(), .result = 42, .work_ms = 50};
    struct answer ans[THREADS];
    assert_non_null(s.g);
    run_callers(&s, ans);
    assert_int_equal(atomic_load(&s.runs), 1);
    assert_int_equal(atomic_load(&s.leaders), 1);
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(ans[i].rc, 42);
        assert_int_equal(ans[i].flags, 7u);
    }
    assert_int_equal(sf_group_active(s.g), 0);
    sf_group_free(s.g);
}

static void leader_failure_reaches_every_waiter(void **state)
{
    (void)state;
    struct shared s = {.g = sf_group_new(), .result = -EREMOTEIO, .work_ms = 50};
    struct answer ans[THREADS];
    run_callers(&s, ans);
    assert_int_equal(atomic_load(&s.runs), 1);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(ans[i].rc, -EREMOTEIO);
    /* The failed call left the table: the next caller leads a fresh one. */
    struct sf_call *c;
    assert_int_equal(sf_join(s.g, "k", NULL, NULL, NULL, &c), SF_LEADER);
    assert_false(sf_done(c, NULL, NULL));
    sf_finish(s.g, c, 0, 0);
    sf_release(c);
    sf_group_free(s.g);
}

static void waiter_deadline_ends_its_wait(void **state)
{
    (void)state;
    struct sf_group *g = sf_group_new();
    struct sf_call *lead, *wait;
    assert_int_equal(sf_join(g, "slow", NULL, NULL, NULL, &lead), SF_LEADER);
    assert_int_equal(sf_join(g, "slow", NULL, NULL, NULL, &wait), SF_JOINED);
    assert_ptr_equal(lead, wait);
    /* Another key is another call. */
    struct sf_call *other;
    assert_int_equal(sf_join(g, "other", NULL, NULL, NULL, &other), SF_LEADER);
    assert_int_equal(sf_group_active(g), 2);
    int rc = 99;
    int64_t t0 = clock_mono_ms();
    assert_int_equal(sf_wait(wait, t0 + 200, &rc, NULL), -ETIMEDOUT);
    int64_t took = clock_mono_ms() - t0;
    assert_true(took >= 200 && took < 2000);
    assert_int_equal(rc, 99); /* left alone on a timeout */
    /* The leader goes on and finishes; a later wait gets the outcome at once. */
    sf_finish(g, lead, -EACCES, 0);
    assert_int_equal(sf_wait(wait, t0, &rc, NULL), 0);
    assert_int_equal(rc, -EACCES);
    assert_null(sf_find(g, "slow"));
    struct sf_call *found = sf_find(g, "other");
    assert_ptr_equal(found, other);
    sf_release(found);
    sf_finish(g, other, 0, 0);
    sf_release(other);
    sf_release(wait);
    sf_release(lead);
    sf_group_free(g);
}

static int freed;

static int make_int(void *arg, struct sf_call *c, void **data)
{
    (void)c;
    if (!arg)
        return -EINVAL;
    int *p = malloc(sizeof(*p));
    if (!p)
        return -ENOMEM;
    *p = *(int *)arg;
    *data = p;
    return 0;
}

static void free_int(void *p)
{
    freed++;
    free(p);
}

static void data_lives_with_the_last_reference(void **state)
{
    (void)state;
    struct sf_group *g = sf_group_new();
    struct sf_call *c, *j;
    int v = 5;
    freed = 0;
    /* make's failure joins nothing. */
    assert_int_equal(sf_join(g, "d", make_int, NULL, free_int, &c), -EINVAL);
    assert_null(c);
    assert_int_equal(sf_group_active(g), 0);
    assert_int_equal(sf_join(g, "d", make_int, &v, free_int, &c), SF_LEADER);
    assert_int_equal(sf_join(g, "d", make_int, NULL, free_int, &j), SF_JOINED);
    assert_int_equal(*(int *)sf_data(j), 5);
    assert_string_equal(sf_key(j), "d");
    assert_true(sf_started_ms(j) <= clock_mono_ms());
    sf_finish(g, c, 0, 0);
    sf_release(c);
    sf_group_free(g); /* the call outlives its group */
    assert_int_equal(freed, 0);
    assert_int_equal(*(int *)sf_data(j), 5);
    sf_release(j);
    assert_int_equal(freed, 1);
}

static void closed_group_refuses_joins(void **state)
{
    (void)state;
    struct sf_group *g = sf_group_new();
    struct sf_call *c;
    assert_false(sf_group_closing(g));
    sf_group_close(g);
    assert_true(sf_group_closing(g));
    assert_int_equal(sf_join(g, "k", NULL, NULL, NULL, &c), -ESHUTDOWN);
    sf_group_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_leader_runs_and_all_get_its_result),
        cmocka_unit_test(leader_failure_reaches_every_waiter),
        cmocka_unit_test(waiter_deadline_ends_its_wait),
        cmocka_unit_test(data_lives_with_the_last_reference),
        cmocka_unit_test(closed_group_refuses_joins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

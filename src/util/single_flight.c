/*
 * single_flight: see include/upstreamfs/single_flight.h for the contract.
 *
 * The table is a list under the group's mutex (the number of keys in flight
 * at once is small: one per download, document or token being fetched).
 * Each call has its own mutex and condition variable (CLOCK_MONOTONIC, the
 * clock of clock_mono_ms), so waiting and releasing never touch the group.
 */
#include "upstreamfs/single_flight.h"
#include "upstreamfs/clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct sf_call {
    struct sf_call *next; /* the group's table, under its mu */
    char *key;
    int refs; /* atomic */
    int64_t started_ms;
    void *data;
    void (*free_data)(void *);

    pthread_mutex_t mu; /* done, rc, flags */
    pthread_cond_t cv;
    bool done;
    int rc;
    unsigned flags;
};

struct sf_group {
    pthread_mutex_t mu;
    pthread_cond_t idle; /* active reached 0 */
    struct sf_call *list;
    int active;
    bool closing; /* atomic: read without mu */
};

struct sf_group *sf_group_new(void)
{
    struct sf_group *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->idle, NULL);
    return g;
}

void sf_group_close(struct sf_group *g)
{
    pthread_mutex_lock(&g->mu);
    __atomic_store_n(&g->closing, true, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&g->mu);
}

bool sf_group_closing(const struct sf_group *g)
{
    return __atomic_load_n(&g->closing, __ATOMIC_RELAXED);
}

void sf_group_free(struct sf_group *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->mu);
    __atomic_store_n(&g->closing, true, __ATOMIC_RELAXED);
    while (g->active > 0)
        pthread_cond_wait(&g->idle, &g->mu);
    pthread_mutex_unlock(&g->mu);
    pthread_cond_destroy(&g->idle);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

int sf_group_active(struct sf_group *g)
{
    pthread_mutex_lock(&g->mu);
    int n = g->active;
    pthread_mutex_unlock(&g->mu);
    return n;
}

/* With g->mu held: the call for key in the table, or NULL. */
static struct sf_call *lookup(struct sf_group *g, const char *key)
{
    for (struct sf_call *c = g->list; c; c = c->next)
        if (strcmp(c->key, key) == 0)
            return c;
    return NULL;
}

/* A call for key holding one reference, or NULL without memory. */
static struct sf_call *call_new(const char *key)
{
    struct sf_call *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->key = strdup(key);
    if (!c->key) {
        free(c);
        return NULL;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&c->mu, NULL);
    c->refs = 1;
    c->started_ms = clock_mono_ms();
    return c;
}

int sf_join(struct sf_group *g, const char *key, sf_make_fn make, void *arg,
            void (*free_data)(void *data), struct sf_call **out)
{
    *out = NULL;
    pthread_mutex_lock(&g->mu);
    if (g->closing) {
        pthread_mutex_unlock(&g->mu);
        return -ESHUTDOWN;
    }
    struct sf_call *c = lookup(g, key);
    if (c) {
        sf_ref(c);
        pthread_mutex_unlock(&g->mu);
        *out = c;
        return SF_JOINED;
    }
    c = call_new(key);
    int rc = c ? 0 : -ENOMEM;
    if (rc == 0 && make)
        rc = make(arg, c, &c->data);
    if (rc < 0) {
        pthread_mutex_unlock(&g->mu);
        sf_release(c); /* data is NULL: make cleans up after itself */
        return rc;
    }
    c->free_data = free_data;
    c->next = g->list;
    g->list = c;
    g->active++;
    pthread_mutex_unlock(&g->mu);
    *out = c;
    return SF_LEADER;
}

struct sf_call *sf_find(struct sf_group *g, const char *key)
{
    pthread_mutex_lock(&g->mu);
    struct sf_call *c = lookup(g, key);
    if (c)
        sf_ref(c);
    pthread_mutex_unlock(&g->mu);
    return c;
}

void sf_finish(struct sf_group *g, struct sf_call *c, int rc, unsigned flags)
{
    pthread_mutex_lock(&c->mu);
    c->done = true;
    c->rc = rc;
    c->flags = flags;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_lock(&g->mu);
    for (struct sf_call **pp = &g->list; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    c->next = NULL;
    if (--g->active == 0)
        pthread_cond_broadcast(&g->idle);
    /* g may be freed as soon as this unlock lets sf_group_free see active == 0 */
    pthread_mutex_unlock(&g->mu);
}

/* With c->mu held: copies the outcome out. */
static void outcome(const struct sf_call *c, int *rc, unsigned *flags)
{
    if (rc)
        *rc = c->rc;
    if (flags)
        *flags = c->flags;
}

int sf_wait(struct sf_call *c, int64_t deadline_ms, int *rc, unsigned *flags)
{
    pthread_mutex_lock(&c->mu);
    while (!c->done) {
        if (deadline_ms == INT64_MAX) {
            pthread_cond_wait(&c->cv, &c->mu);
            continue;
        }
        if (clock_mono_ms() >= deadline_ms)
            break;
        struct timespec ts = {.tv_sec = (time_t)(deadline_ms / 1000),
                              .tv_nsec = (long)(deadline_ms % 1000) * 1000000L};
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    bool done = c->done;
    if (done)
        outcome(c, rc, flags);
    pthread_mutex_unlock(&c->mu);
    return done ? 0 : -ETIMEDOUT;
}

bool sf_done(struct sf_call *c, int *rc, unsigned *flags)
{
    pthread_mutex_lock(&c->mu);
    bool done = c->done;
    if (done)
        outcome(c, rc, flags);
    pthread_mutex_unlock(&c->mu);
    return done;
}

void sf_ref(struct sf_call *c)
{
    __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
}

void sf_release(struct sf_call *c)
{
    if (!c || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    if (c->free_data)
        c->free_data(c->data);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c->key);
    free(c);
}

void *sf_data(const struct sf_call *c)
{
    return c->data;
}

const char *sf_key(const struct sf_call *c)
{
    return c->key;
}

int64_t sf_started_ms(const struct sf_call *c)
{
    return c->started_ms;
}

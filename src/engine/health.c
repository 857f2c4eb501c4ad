/*
 * health: a proxy's health snapshot as words, JSON and a file in the state
 * dir (include/upstreamfs/health.h). The state itself is kept by
 * src/engine/upstream.c.
 */
#include "upstreamfs/health.h"
#include "upstreamfs/log.h"
#include "upstreamfs/published.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <unistd.h>

static const char *const state_names[] = {"ok", "stale", "failing", "backing-off", "offline"};

const char *health_state_name(enum health_state s)
{
    return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "ok";
}

void health_describe(const struct health_snapshot *h, char *buf, size_t n)
{
    char t[32];
    switch (h->state) {
    case HEALTH_FAILING:
        snprintf(buf, n, "failing: %s", failure_cause_name(h->cause));
        break;
    case HEALTH_BACKING_OFF:
        failure_time_rfc3339(h->retry_at, t, sizeof(t));
        snprintf(buf, n, "backing-off until %s", t);
        break;
    default:
        snprintf(buf, n, "%s", health_state_name(h->state));
        break;
    }
}

static json_t *time_or_null(int64_t t)
{
    char buf[32];
    if (t <= 0)
        return json_null();
    failure_time_rfc3339(t, buf, sizeof(buf));
    return json_string(buf);
}

/* The proxy's URLs in order, each with its own state (health.h). */
static json_t *urls_array(const struct health_snapshot *h)
{
    json_t *a = json_array();
    for (int i = 0; a && i < h->n_urls && i < HEALTH_URLS_MAX; i++) {
        const struct health_url *x = &h->urls[i];
        json_array_append_new(
            a, json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:i, s:I, s:I}", "url", x->url,
                         "state", health_state_name(x->state), "cause",
                         x->cause ? json_string(failure_cause_name(x->cause)) : json_null(),
                         "status", x->status > 0 ? json_integer(x->status) : json_null(), "since",
                         time_or_null(x->since), "last_success", time_or_null(x->last_success),
                         "retry_at", time_or_null(x->retry_at), "consecutive_failures",
                         x->consecutive_failures, "requests", (json_int_t)x->requests,
                         "failures", (json_int_t)x->failures));
    }
    return a ? a : json_array();
}

json_t *health_object(const struct health_snapshot *h)
{
    json_t *errors = json_object();
    for (int c = 1; errors && c < FAILURE_CAUSE_COUNT; c++)
        if (h->errors[c])
            json_object_set_new(errors, failure_cause_name((enum failure_cause)c),
                                json_integer((json_int_t)h->errors[c]));
    return json_pack(
        "{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:i, s:o, s:o, s:o, s:o, s:o}", "state",
        health_state_name(h->state), "cause",
        h->cause ? json_string(failure_cause_name(h->cause)) : json_null(), "status",
        h->status > 0 ? json_integer(h->status) : json_null(), "code",
        h->code[0] ? json_string(h->code) : json_null(), "url",
        h->url[0] ? json_string(h->url) : json_null(), "since", time_or_null(h->since),
        "last_success", time_or_null(h->last_success), "consecutive_failures",
        h->consecutive_failures, "retry_at", time_or_null(h->retry_at), "ratelimit_remaining",
        h->ratelimit_remaining >= 0 ? json_integer(h->ratelimit_remaining) : json_null(),
        "ratelimit_limit", h->ratelimit_limit >= 0 ? json_integer(h->ratelimit_limit) : json_null(),
        "errors", errors ? errors : json_object(), "urls", urls_array(h));
}

char *health_json(const struct health_snapshot *h)
{
    json_t *o = health_object(h);
    if (!o)
        return NULL;
    /* The writer, so a reader can tell a live daemon's file from one left behind. */
    json_object_set_new(o, "proxy", json_string(h->key));
    json_object_set_new(o, "pid", json_integer((json_int_t)getpid()));
    char *s = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(o);
    return s;
}

int health_write(const char *state_dir, const struct health_snapshot *h, char **last)
{
    char *text = health_json(h);
    if (!text)
        return -ENOMEM;
    if (*last && strcmp(*last, text) == 0) {
        free(text);
        return 0;
    }
    char name[80];
    snprintf(name, sizeof(name), "%s.json", h->key);
    int rc = published_write(state_dir, "health", 0755, name, text);
    if (rc < 0) {
        log_debug("health of %s: %s", h->key, strerror(-rc));
        free(text);
        return rc;
    }
    free(*last);
    *last = text;
    return 0;
}

void health_file_remove(const char *state_dir, const char *key)
{
    char name[80];
    snprintf(name, sizeof(name), "%s.json", key);
    int rc = published_remove(state_dir, "health", name);
    if (rc < 0)
        log_debug("health of %s: %s", key, strerror(-rc));
}

json_t *health_file_read(const char *state_dir, const char *key)
{
    char path[4400], name[80];
    snprintf(name, sizeof(name), "%s.json", key);
    published_path(state_dir, "health", name, path, sizeof(path));
    json_t *o = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
    json_t *pid = o ? json_object_get(o, "pid") : NULL;
    json_int_t p = json_is_integer(pid) ? json_integer_value(pid) : 0;
    /* A stale file stays: the next daemon rewrites it (a deleted proxy's is removed). */
    if (!o || !json_is_object(o) || !published_current(state_dir, (long)p)) {
        json_decref(o);
        return NULL;
    }
    json_object_del(o, "pid");
    json_object_del(o, "proxy");
    return o;
}

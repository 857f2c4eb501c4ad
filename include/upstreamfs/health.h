/*
 * health: what a proxy's remote has been doing lately, kept per proxy in
 * struct upstream (src/engine/upstream.c) and fed by every request's outcome
 * (the policy is include/upstreamfs/failure.h).
 *
 * The snapshot is what the mount's user.upstreamfs.health xattr, /metrics
 * and STATEDIR/health/<key>.json (written by the running daemon) show.
 */
#ifndef UPSTREAMFS_HEALTH_H
#define UPSTREAMFS_HEALTH_H

#include "upstreamfs/failure.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

enum health_state {
    HEALTH_OK = 0,
    HEALTH_STALE,       /* failing, and cached copies were served in its place */
    HEALTH_FAILING,     /* the last request failed */
    HEALTH_BACKING_OFF, /* not contacting the remote until retry_at */
    HEALTH_OFFLINE      /* the proxy is configured offline */
};

/*
 * One of a proxy's URLs (its url, then its mirrors; src/engine/origins.c): how it has been
 * answering. With one URL it is the proxy's own state.
 */
struct health_url {
    char url[512]; /* without credentials or query */
    enum health_state state;
    enum failure_cause cause; /* of its last failure */
    long status;
    int64_t since;
    int64_t last_success;
    int64_t retry_at; /* while backing off */
    int consecutive_failures;
    unsigned long long requests, failures;
};

#define HEALTH_URLS_MAX 8 /* url + CONFIG_MIRRORS_MAX mirrors */

/* A copy of one proxy's health at one moment. Times are Unix seconds, 0 for never. */
struct health_snapshot {
    char key[72];
    enum health_state state;
    enum failure_cause cause; /* of the last failure, FAILURE_NONE when none yet */
    long status;              /* the remote's HTTP status of the last failure, 0 for none */
    char code[40];            /* the registry's error code of the last failure, or "" */
    char url[512];            /* the last failing URL without credentials or query */
    int64_t since;            /* when the current state began */
    int64_t last_success;
    int64_t last_failure;
    int consecutive_failures;
    int64_t retry_at;         /* while backing off */
    long ratelimit_remaining; /* the remote's quota, -1 unknown */
    long ratelimit_limit;
    unsigned long long errors[FAILURE_CAUSE_COUNT]; /* failures by cause */
    unsigned long long requests_get, requests_head, requests_other;
    int n_urls; /* the proxy's URLs, in the order they are tried */
    struct health_url urls[HEALTH_URLS_MAX];
};

/* "ok", "stale", "failing", "backing-off", "offline". */
const char *health_state_name(enum health_state s);

/* The xattr's value: "ok", "stale", "failing: <cause>", "backing-off until <time>", "offline". */
void health_describe(const struct health_snapshot *h, char *buf, size_t n);

/*
 * The snapshot as the object the CLI's --json, /api/v1/proxies and the page
 * show: {state, cause, status, code, url, since, last_success,
 * consecutive_failures, retry_at, ratelimit_remaining, ratelimit_limit,
 * errors, urls}; times RFC 3339 UTC, unknown values null. urls lists each URL
 * in order: {url, state, cause, status, since, last_success, retry_at,
 * consecutive_failures, requests, failures}.
 */
json_t *health_object(const struct health_snapshot *h);

/* The file's text (malloc'd): health_object with the proxy's key and the writer's pid. */
char *health_json(const struct health_snapshot *h);

/*
 * Writes STATEDIR/health/<key>.json atomically (temporary file, rename) when
 * its text differs from what *last holds (malloc'd; replaced on write).
 */
int health_write(const char *state_dir, const struct health_snapshot *h, char **last);

/*
 * The health a running daemon wrote for key (health_object's form), or NULL
 * when there is none or it is not current: no file, or its writer is gone
 * (its pid is dead, or no engine holds STATEDIR/engine.lock). For the CLI,
 * which has no engine of its own to ask.
 */
json_t *health_file_read(const char *state_dir, const char *key);

/* Removes STATEDIR/health/<key>.json (the proxy was deleted). */
void health_file_remove(const char *state_dir, const char *key);

#endif

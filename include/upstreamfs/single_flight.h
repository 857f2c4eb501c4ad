/*
 * single_flight: at most one piece of work per key at a time, in one process.
 *
 * A group is a table of calls in progress, keyed by string. The first caller
 * for a key leads: it does the work and publishes its outcome (sf_finish);
 * every caller for the same key while the call is in the table joins it and
 * may wait for that outcome with a deadline (sf_wait). A finished call
 * leaves the table at once, so the next caller for the key leads a fresh one.
 *
 * Calls are reference counted: sf_join hands the caller one reference, and
 * a call (with its data) is freed when the last one is released. Releasing
 * never needs the group, so a call may outlive its group (a thread that
 * finished its work drops its reference after the group was freed).
 *
 * Users: downloads (src/fetch/flight.c, with the cross-process lock file on
 * top), documents (src/engine/documents.c), registry tokens
 * (src/auth/token.c), ECR tokens (src/auth/ecr_auth.c).
 *
 * Lock order: the group's lock is innermost. It is never held while waiting
 * or while running a caller's callback other than sf_join's make. A call's
 * own lock is taken without the group's.
 */
#ifndef UPSTREAMFS_SINGLE_FLIGHT_H
#define UPSTREAMFS_SINGLE_FLIGHT_H

#include <stdbool.h>
#include <stdint.h>

struct sf_group;
struct sf_call;

#define SF_JOINED 0
#define SF_LEADER 1

/* Makes a new call's data (sf_join): 0 with *data set, or -errno having freed what it made. */
typedef int (*sf_make_fn)(void *arg, struct sf_call *c, void **data);

/* A new empty group, or NULL without memory. */
struct sf_group *sf_group_new(void);

/*
 * Refuses joins from now on (sf_join: -ESHUTDOWN) and makes sf_group_closing
 * true; calls in progress go on. Idempotent.
 */
void sf_group_close(struct sf_group *g);

/* Whether sf_group_close was called. Lock-free: a leader's work may poll it to stop early. */
bool sf_group_closing(const struct sf_group *g);

/*
 * Closes g, waits until every call in its table is finished, then frees it.
 * References to calls stay valid. NULL is ignored.
 */
void sf_group_free(struct sf_group *g);

/* The number of calls in the table (started, not finished). */
int sf_group_active(struct sf_group *g);

/*
 * Joins the call for key, or leads a new one. A new call's data is made by
 * make(arg, c, &data) under the group's lock (so joiners always see it; c is
 * the new call, which the data may keep to release itself); make returns 0
 * or -errno, and may be NULL (data NULL). free_data(data) runs when
 * the call is freed; it may be NULL. *out gets a referenced call.
 * Returns SF_LEADER (the caller must sf_finish the call), SF_JOINED, or
 * -ESHUTDOWN (group closed), -ENOMEM, make's error (nothing joined).
 */
int sf_join(struct sf_group *g, const char *key, sf_make_fn make, void *arg,
            void (*free_data)(void *data), struct sf_call **out);

/* A referenced call for key still in the table (not finished), or NULL. */
struct sf_call *sf_find(struct sf_group *g, const char *key);

/*
 * The leader's outcome: rc and flags (caller-defined bits) are published,
 * the call leaves g's table, and its waiters wake. The caller keeps its
 * reference. After this returns the caller may not touch g if another
 * thread may be freeing it. Calling it twice on one call is a bug.
 */
void sf_finish(struct sf_group *g, struct sf_call *c, int rc, unsigned flags);

/*
 * Waits until c is finished or deadline_ms (clock_mono_ms, src/util/clock.c;
 * INT64_MAX: no deadline) passes. Returns 0 with *rc and *flags (either may
 * be NULL) the leader's outcome, or -ETIMEDOUT (they are left alone).
 */
int sf_wait(struct sf_call *c, int64_t deadline_ms, int *rc, unsigned *flags);

/* Whether c is finished (no wait); with *rc and *flags as sf_wait when it is. */
bool sf_done(struct sf_call *c, int *rc, unsigned *flags);

/* Another reference to c (a thread that takes over the lead). */
void sf_ref(struct sf_call *c);

/* Drops a reference; the last one frees c and its data. NULL is ignored. Group not needed. */
void sf_release(struct sf_call *c);

/* c's data (made by sf_join's make), its key, and when it was started (clock_mono_ms). */
void *sf_data(const struct sf_call *c);
const char *sf_key(const struct sf_call *c);
int64_t sf_started_ms(const struct sf_call *c);

#endif

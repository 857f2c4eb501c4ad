/*
 * published: the files a daemon publishes in its state dir for the other
 * processes on it (the CLI, other mounts): STATEDIR/health/KEY.json
 * (src/engine/health.c) and STATEDIR/counters/PID (src/engine/counters.c).
 *
 * One mechanism for both: a file is written whole (file_atomic.h: temporary
 * file and rename) into STATEDIR/AREA, names its writer's pid (in its name
 * or its text), and is current only while that writer publishes; the one
 * stale-file rule is published_current. Readers skip a stale file (and may
 * remove it); a writer removes its own files when it stops.
 */
#ifndef UPSTREAMFS_PUBLISHED_H
#define UPSTREAMFS_PUBLISHED_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* STATEDIR/AREA/NAME, or STATEDIR/AREA when name is NULL, into buf (n bytes). */
void published_path(const char *state_dir, const char *area, const char *name, char *buf,
                    size_t n);

/*
 * Writes text as STATEDIR/AREA/NAME, whole, creating STATEDIR/AREA with
 * dir_mode first when missing. 0 or a negative errno.
 */
int published_write(const char *state_dir, const char *area, mode_t dir_mode, const char *name,
                    const char *text);

/* Removes STATEDIR/AREA/NAME; 0, or a negative errno other than -ENOENT. */
int published_remove(const char *state_dir, const char *area, const char *name);

/*
 * The stale-file rule: a file written by pid is current while that process
 * lives (kill(pid, 0); without permission to signal it, it counts as alive)
 * and an engine is open on the state dir (each holds a shared flock on
 * STATEDIR/engine.lock, src/engine/engine.c, so an exclusive one fails;
 * without permission to look, the pid alone decides). pid <= 0: stale.
 */
bool published_current(const char *state_dir, long pid);

#endif

/*
 * counters: the engine's counters (hits, misses, upstream requests and bytes,
 * evictions, stale serves) as the other processes on a state dir see them.
 *
 * Each engine counts in memory (engine_i.h). Its watcher thread calls
 * engine__counters_publish every tick; on the first and whenever a counter
 * moved, the engine writes them to STATEDIR/counters/PID (a temp file renamed over it), and
 * engine_close removes that file. `upstreamfs cache stats` adds up the files
 * of the processes still alive (engine_counters_running); a file left by a
 * killed process is removed there. Writing, removing and the stale-file rule
 * are those of every published file (src/util/published.c).
 */
#include "engine_i.h"
#include "upstreamfs/published.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { NCOUNTERS = 6 };

static void snapshot(struct engine *e, int64_t v[NCOUNTERS])
{
    v[0] = atomic_load(&e->hits);
    v[1] = atomic_load(&e->misses);
    v[2] = atomic_load(&e->upstream_requests);
    v[3] = atomic_load(&e->upstream_bytes);
    v[4] = atomic_load(&e->evictions);
    v[5] = atomic_load(&e->stale_serves);
}

void engine__counters_publish(struct engine *e)
{
    int64_t v[NCOUNTERS];
    snapshot(e, v);
    if (e->counters_written && memcmp(v, e->published, sizeof(v)) == 0)
        return;
    char name[32], text[160];
    snprintf(name, sizeof(name), "%ld", (long)getpid());
    snprintf(text, sizeof(text), "%lld %lld %lld %lld %lld %lld\n", (long long)v[0],
             (long long)v[1], (long long)v[2], (long long)v[3], (long long)v[4], (long long)v[5]);
    if (published_write(e->state_dir, "counters", 0700, name, text) == 0) {
        memcpy(e->published, v, sizeof(v));
        e->counters_written = true;
    }
}

void engine__counters_unpublish(struct engine *e)
{
    char name[32];
    snprintf(name, sizeof(name), "%ld", (long)getpid());
    published_remove(e->state_dir, "counters", name);
}

int engine_counters_running(const char *state_dir, struct engine_stats *sum, int *procs)
{
    char dir[4200];
    *procs = 0;
    published_path(state_dir, "counters", NULL, dir, sizeof(dir));
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    struct dirent *de;
    while ((de = readdir(d))) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (pid <= 0 || *end || pid == (long)getpid())
            continue; /* the caller's own engine is counted by engine_stats */
        if (!published_current(state_dir, pid)) {
            published_remove(state_dir, "counters", de->d_name); /* its writer was killed */
            continue;
        }
        char path[4300];
        published_path(state_dir, "counters", de->d_name, path, sizeof(path));
        long long v[NCOUNTERS];
        FILE *f = fopen(path, "re");
        int got =
            f ? fscanf(f, "%lld %lld %lld %lld %lld %lld", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5])
              : 0;
        if (f)
            fclose(f);
        if (got != NCOUNTERS)
            continue;
        sum->hits += v[0];
        sum->misses += v[1];
        sum->upstream_requests += v[2];
        sum->upstream_bytes += v[3];
        sum->evictions += v[4];
        sum->stale_serves += v[5];
        (*procs)++;
    }
    closedir(d);
    return 0;
}

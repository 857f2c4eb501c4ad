/*
 * counters: the engine's counters (hits, misses, upstream requests and bytes,
 * evictions, stale serves) as the other processes on a state dir see them.
 *
 * Each engine counts in memory (engine_i.h). Its watcher thread calls
 * engine__counters_publish every tick; on the first and whenever a counter
 * moved, the engine writes them to STATEDIR/counters/PID (a temp file renamed over it), and
 * engine_close removes that file. `upstreamfs cache stats` adds up the files
 * of the processes still alive (engine_counters_running); a file left by a
 * killed process is removed there.
 */
#include "engine_i.h"
#include "upstreamfs/file_atomic.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

static void counters_path(const char *state_dir, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/counters%s%s", state_dir, name ? "/" : "", name ? name : "");
}

void engine__counters_publish(struct engine *e)
{
    int64_t v[NCOUNTERS];
    snapshot(e, v);
    if (e->counters_written && memcmp(v, e->published, sizeof(v)) == 0)
        return;
    char dir[4200], name[32], text[160];
    counters_path(e->state_dir, NULL, dir, sizeof(dir));
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return;
    snprintf(name, sizeof(name), "%ld", (long)getpid());
    snprintf(text, sizeof(text), "%lld %lld %lld %lld %lld %lld\n", (long long)v[0],
             (long long)v[1], (long long)v[2], (long long)v[3], (long long)v[4], (long long)v[5]);
    if (file_write_atomic(dir, name, text) == 0) {
        memcpy(e->published, v, sizeof(v));
        e->counters_written = true;
    }
}

void engine__counters_unpublish(struct engine *e)
{
    char path[4300], name[32];
    snprintf(name, sizeof(name), "%ld", (long)getpid());
    counters_path(e->state_dir, name, path, sizeof(path));
    unlink(path);
}

int engine_counters_running(const char *state_dir, struct engine_stats *sum, int *procs)
{
    char dir[4200];
    *procs = 0;
    counters_path(state_dir, NULL, dir, sizeof(dir));
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    struct dirent *de;
    while ((de = readdir(d))) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (pid <= 0 || *end || pid == (long)getpid())
            continue; /* the caller's own engine is counted by engine_stats */
        char path[4300];
        counters_path(state_dir, de->d_name, path, sizeof(path));
        if (kill((pid_t)pid, 0) < 0 && errno == ESRCH) {
            unlink(path); /* left by a process that was killed */
            continue;
        }
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

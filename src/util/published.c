/* published: see include/upstreamfs/published.h. */
#include "upstreamfs/published.h"
#include "upstreamfs/file_atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

void published_path(const char *state_dir, const char *area, const char *name, char *buf,
                    size_t n)
{
    snprintf(buf, n, "%s/%s%s%s", state_dir, area, name ? "/" : "", name ? name : "");
}

int published_write(const char *state_dir, const char *area, mode_t dir_mode, const char *name,
                    const char *text)
{
    char dir[4200];
    published_path(state_dir, area, NULL, dir, sizeof(dir));
    if (mkdir(dir, dir_mode) < 0 && errno != EEXIST)
        return -errno;
    return file_write_atomic(dir, name, text);
}

int published_remove(const char *state_dir, const char *area, const char *name)
{
    char path[4400];
    published_path(state_dir, area, name, path, sizeof(path));
    return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

/* Whether an engine is open on the state dir (published_current). */
static bool engine_running(const char *state_dir)
{
    char path[4400];
    snprintf(path, sizeof(path), "%s/engine.lock", state_dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == EACCES;
    bool held = flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK;
    close(fd); /* releases a lock it got */
    return held;
}

bool published_current(const char *state_dir, long pid)
{
    if (pid <= 0 || pid > INT32_MAX)
        return false;
    if (kill((pid_t)pid, 0) < 0 && errno != EPERM)
        return false;
    return engine_running(state_dir);
}

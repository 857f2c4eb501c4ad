/* file_read: see include/upstreamfs/file_read.h. */
#include "upstreamfs/file_read.h"
#include "upstreamfs/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

/* Reads exactly size bytes of fd into buf; 0 or a negative errno (-EIO: the file ended first). */
static int read_all(int fd, char *buf, size_t size)
{
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        got += (size_t)n;
    }
    return 0;
}

int file_read_bounded(const char *path, size_t max, unsigned flags, char **out, size_t *len,
                      struct stat *st)
{
    struct stat sb;
    char *buf = NULL;
    int rc;
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY |
                            (flags & FILE_READ_NOFOLLOW ? O_NOFOLLOW : 0));
    if (fd < 0)
        return -errno;
    if (fstat(fd, &sb) < 0)
        rc = -errno;
    else if (!S_ISREG(sb.st_mode))
        rc = -EINVAL;
    else if ((uintmax_t)sb.st_size > (uintmax_t)max)
        rc = -EFBIG;
    else if (!(buf = malloc((size_t)sb.st_size + 1)))
        rc = -ENOMEM;
    else /* The file may grow while read; what is past its size at fstat is ignored. */
        rc = read_all(fd, buf, (size_t)sb.st_size);
    close(fd);
    if (rc < 0) {
        if (buf) {
            secret_wipe(buf, (size_t)sb.st_size);
            free(buf);
        }
        return rc;
    }
    buf[sb.st_size] = '\0';
    *out = buf;
    *len = (size_t)sb.st_size;
    if (st)
        *st = sb;
    return 0;
}

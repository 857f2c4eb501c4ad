/*
 * file_read: reading a whole small file with a size cap (secrets, credentials, htpasswd, tokens,
 * PEM files). The one bounded read in the tree: the cap is checked against fstat before any
 * allocation, a FIFO or device at the path never blocks (O_NONBLOCK, then "not a regular file"),
 * and the buffer is wiped before it is freed on failure, since it may hold a secret.
 */
#ifndef UPSTREAMFS_FILE_READ_H
#define UPSTREAMFS_FILE_READ_H

#include <stddef.h>
#include <sys/stat.h>

#define FILE_READ_NOFOLLOW 1u /* refuse a symbolic link at the path (-ELOOP) */

/*
 * Reads the regular file at path, of at most max bytes, into *out (malloc'd,
 * NUL-terminated; wipe it with secret_free when it held a secret) with its
 * length in *len. st, when not NULL, gets the file's fstat. Returns 0, or
 * open's -errno (-ENOENT, -EACCES, -ELOOP...), -EINVAL (not a regular
 * file), -EFBIG (over max), -EIO (the file shrank while read), -ENOMEM.
 */
int file_read_bounded(const char *path, size_t max, unsigned flags, char **out, size_t *len,
                      struct stat *st);

#endif

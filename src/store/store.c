/*
 * store: content-addressed files. Writers fill a temp file in tmp/ (same
 * filesystem as blobs/, so rename is atomic), and only store_commit moves a
 * verified file to its final name. Objects are made read-only so a bug that
 * opens one for writing fails loudly instead of corrupting the cache.
 */
#include "upstreamfs/store.h"
#include "upstreamfs/hash.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int store_init(struct store *s, const char *state_dir)
{
    char p[PATH_MAX];
    s->dir = strdup(state_dir);
    if (!s->dir)
        return -ENOMEM;
    const char *subs[] = {"blobs", "blobs/sha256", "tmp"};
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", state_dir, subs[i]);
        if (mkdir(p, 0700) < 0 && errno != EEXIST)
            return -errno;
    }
    return 0;
}

void store_fini(struct store *s)
{
    free(s->dir);
    s->dir = NULL;
}

int store_tmp_create(struct store *s, int *fd, char **path)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/tmp/dl.XXXXXX", s->dir);
    int f = mkostemp(p, O_CLOEXEC);
    if (f < 0)
        return -errno;
    *path = strdup(p);
    if (!*path) {
        close(f);
        unlink(p);
        return -ENOMEM;
    }
    *fd = f;
    return 0;
}

void store_blob_path(const struct store *s, const char *hex, char *buf, size_t len)
{
    snprintf(buf, len, "%s/blobs/sha256/%.2s/%s", s->dir, hex, hex);
}

int store_commit(struct store *s, const char *tmp_path, const char *hex)
{
    char dst[PATH_MAX], dir[PATH_MAX];
    struct stat st;
    if (!hash_is_sha256_hex(hex))
        return -EINVAL;
    store_blob_path(s, hex, dst, sizeof(dst));
    if (stat(dst, &st) == 0) {
        unlink(tmp_path);
        return 0;
    }
    snprintf(dir, sizeof(dir), "%s/blobs/sha256/%.2s", s->dir, hex);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return -errno;
    if (chmod(tmp_path, 0444) < 0)
        return -errno;
    if (rename(tmp_path, dst) < 0)
        return -errno;
    return 0;
}

int store_put_bytes(struct store *s, const void *data, size_t len, char hex[65])
{
    int fd = -1, rc = 0;
    char *path = NULL;
    hash_sha256_hex(data, len, hex);
    rc = store_tmp_create(s, &fd, &path);
    if (rc < 0)
        return rc;
    const char *p = data;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, p + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            goto out;
        }
        off += (size_t)w;
    }
    rc = store_commit(s, path, hex);
out:
    close(fd);
    if (rc < 0)
        unlink(path);
    free(path);
    return rc;
}

int store_open_blob(const struct store *s, const char *hex)
{
    char p[PATH_MAX];
    if (!hash_is_sha256_hex(hex))
        return -EINVAL;
    store_blob_path(s, hex, p, sizeof(p));
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int64_t store_blob_size(const struct store *s, const char *hex)
{
    char p[PATH_MAX];
    struct stat st;
    store_blob_path(s, hex, p, sizeof(p));
    if (stat(p, &st) < 0)
        return -errno;
    return st.st_size;
}

int store_remove(struct store *s, const char *hex)
{
    char p[PATH_MAX];
    if (!hash_is_sha256_hex(hex))
        return -EINVAL;
    store_blob_path(s, hex, p, sizeof(p));
    if (unlink(p) < 0 && errno != ENOENT)
        return -errno;
    return 0;
}

int store_clean_tmp(struct store *s)
{
    char p[PATH_MAX];
    int n = 0;
    snprintf(p, sizeof(p), "%s/tmp", s->dir);
    DIR *d = opendir(p);
    if (!d)
        return -errno;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (unlinkat(dirfd(d), de->d_name, 0) == 0)
            n++;
    }
    closedir(d);
    return n;
}

int store_verify(const struct store *s, const char *hex)
{
    char buf[1 << 16], got[65];
    int fd = store_open_blob(s, hex);
    if (fd < 0)
        return fd;
    struct hash_ctx *h = hash_begin(NULL);
    if (!h) {
        close(fd);
        return -ENOMEM;
    }
    ssize_t r;
    while ((r = read(fd, buf, sizeof(buf))) > 0)
        hash_update(h, buf, (size_t)r);
    int err = r < 0 ? -errno : 0;
    close(fd);
    hash_end(h, got);
    if (err)
        return err;
    return strcmp(got, hex) == 0 ? 0 : -EBADMSG;
}

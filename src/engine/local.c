/*
 * local: a registry's own content (docs/registries.md). Files are written to a temp
 * file and stored (hashed, then renamed into the store) when closed, so the
 * store never holds a half-written object and readers see the last closed
 * version. A local node shadows whatever an upstream provides under the same
 * name; removing it lets the upstream's show through again. Local objects
 * are never evicted and are not counted against the quota: they may be the
 * only copy.
 */
#include "engine_i.h"
#include "upstreamfs/hash.h"
#include "upstreamfs/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The parent must be a directory inside a registry. */
static int registry_dir(struct engine *e, int64_t parent, struct node *out)
{
    int rc = engine__node_get(e, parent, out);
    if (rc < 0)
        return rc;
    if (out->kind != NODE_DIR) {
        node_clear(out);
        return -ENOTDIR;
    }
    if (parent == INDEX_ROOT_INO || !engine__is_registry(e, out->top)) {
        node_clear(out);
        return -EROFS;
    }
    return 0;
}

static int new_writer(struct engine *e, int64_t ino, struct engine_file **out)
{
    struct engine_file *f = engine__file_new(e);
    if (!f)
        return -ENOMEM;
    int rc = store_tmp_create(&e->store, &f->fd, &f->tmp_path);
    if (rc < 0) {
        free(f);
        return rc;
    }
    f->writable = true;
    f->ino = ino;
    *out = f;
    return 0;
}

int engine_create(struct engine *e, int64_t parent, const char *name, struct engine_file **out,
                  struct engine_attr *attr)
{
    struct node p, n = {0};
    int rc = registry_dir(e, parent, &p);
    if (rc < 0)
        return rc;
    if (strlen(name) > 255 || !name[0] || strchr(name, '/')) {
        node_clear(&p);
        return -EINVAL;
    }
    pthread_mutex_lock(&e->mu);
    if (index_child(e->ix, parent, name, &n) < 0)
        memset(&n, 0, sizeof(n));
    free(n.name);
    n.name = strdup(name);
    free(n.top);
    n.top = strdup(p.top);
    free(n.path);
    n.path = engine__join(p.path, name);
    n.parent = parent;
    n.kind = NODE_FILE;
    n.size = 0;
    n.mtime = engine__now();
    n.local = true;
    n.digest[0] = '\0';
    free(n.via);
    n.via = NULL;
    free(n.url);
    n.url = NULL;
    rc = index_put(e->ix, &n);
    pthread_mutex_unlock(&e->mu);
    if (rc == 0)
        rc = new_writer(e, n.ino, out);
    if (rc == 0) {
        (*out)->dirty = true; /* an empty new file is stored on close too */
        engine__attr_from_node(e, &n, attr);
    }
    node_clear(&n);
    node_clear(&p);
    return rc;
}

/* Copies len bytes of src (an open reader) into the writer's temp file. */
static int copy_in(struct engine_file *dst, struct engine_file *src)
{
    char buf[1 << 16];
    off_t off = 0;
    for (;;) {
        ssize_t r = engine_file_read(src, buf, sizeof(buf), off, NULL);
        if (r < 0)
            return (int)r;
        if (r == 0)
            return 0;
        if (pwrite(dst->fd, buf, (size_t)r, off) != r)
            return -errno;
        off += r;
    }
}

int engine_file_open_write(struct engine *e, int64_t ino, bool truncate, struct engine_file **out)
{
    struct node n;
    int rc = engine__node_get(e, ino, &n);
    if (rc < 0)
        return rc;
    if (n.kind != NODE_FILE || !engine__is_registry(e, n.top)) {
        rc = n.kind == NODE_DIR ? -EISDIR : -EROFS;
        node_clear(&n);
        return rc;
    }
    rc = new_writer(e, ino, out);
    if (rc == 0 && !truncate) {
        /* Writing into an existing file starts from its current content (local or upstream). */
        struct engine_file *src = NULL;
        bool keep, changed;
        rc = engine_file_open(e, ino, NULL, &src, &keep, &changed);
        if (rc == 0)
            rc = copy_in(*out, src);
        engine_file_close(src);
        if (rc < 0) {
            unlink((*out)->tmp_path);
            (*out)->writable = false;
            engine_file_close(*out);
            *out = NULL;
        }
    }
    if (rc == 0)
        (*out)->dirty = truncate;
    node_clear(&n);
    return rc;
}

/* After a flush the temp file is also the stored object; writing again needs a private copy. */
static int file_unshare(struct engine_file *f)
{
    if (!f->shared)
        return 0;
    int fd = -1;
    char *path = NULL;
    char buf[1 << 16];
    int rc = store_tmp_create(&f->e->store, &fd, &path);
    if (rc < 0)
        return rc;
    off_t off = 0;
    ssize_t r;
    while ((r = pread(f->fd, buf, sizeof(buf), off)) > 0) {
        if (pwrite(fd, buf, (size_t)r, off) != r) {
            r = -1;
            break;
        }
        off += r;
    }
    if (r < 0) {
        rc = -errno;
        close(fd);
        unlink(path);
        free(path);
        return rc;
    }
    close(f->fd);
    unlink(f->tmp_path);
    free(f->tmp_path);
    f->fd = fd;
    f->tmp_path = path;
    f->shared = false;
    return 0;
}

ssize_t engine_file_write(struct engine_file *f, const void *buf, size_t len, off_t off)
{
    if (!f->writable)
        return -EBADF;
    int rc = file_unshare(f);
    if (rc < 0)
        return rc;
    ssize_t w = pwrite(f->fd, buf, len, off);
    if (w < 0)
        return -errno;
    f->dirty = true;
    return w;
}

/*
 * Stores the temp file's content as the node's object. With keep, the temp
 * file stays writable: a hard link of it is committed instead, and the next
 * write copies first (unshare).
 */
static int commit(struct engine_file *f, bool keep)
{
    struct engine *e = f->e;
    char buf[1 << 16], hex[65];
    char *linkp = NULL;
    int rc = 0;
    if (!f->dirty)
        return 0;
    struct hash_ctx *h = hash_begin(NULL);
    if (!h)
        return -ENOMEM;
    off_t off = 0;
    ssize_t r;
    while ((r = pread(f->fd, buf, sizeof(buf), off)) > 0) {
        hash_update(h, buf, (size_t)r);
        off += r;
    }
    if (r < 0) {
        rc = -errno;
        hash_abort(h);
        goto out;
    }
    hash_end(h, hex);
    if (keep) {
        size_t n = strlen(f->tmp_path) + 8;
        linkp = malloc(n);
        if (!linkp) {
            rc = -ENOMEM;
            goto out;
        }
        snprintf(linkp, n, "%s.flush", f->tmp_path);
        unlink(linkp);
        if (link(f->tmp_path, linkp) < 0) {
            rc = -errno;
            goto out;
        }
    }
    rc = store_commit(&e->store, keep ? linkp : f->tmp_path, hex);
    if (rc < 0)
        goto out;
    f->dirty = false;
    f->shared = keep;
    engine__object_added(e, hex, off, true);
    struct node n;
    pthread_mutex_lock(&e->mu);
    if (index_get(e->ix, f->ino, &n) == 0) {
        snprintf(n.digest, sizeof(n.digest), "%s", hex);
        n.size = off;
        n.mtime = engine__now();
        n.local = true;
        free(n.via);
        n.via = NULL;
        free(n.url);
        n.url = NULL;
        n.kind = NODE_FILE;
        rc = index_put(e->ix, &n);
        node_clear(&n);
    }
    pthread_mutex_unlock(&e->mu);
out:
    if (rc < 0) {
        log_error("storing local file (inode %lld) failed: %s", (long long)f->ino, strerror(-rc));
        if (linkp)
            unlink(linkp);
    }
    free(linkp);
    return rc;
}

int engine_file_flush(struct engine_file *f)
{
    if (!f || !f->writable)
        return 0;
    return commit(f, true);
}

int engine__local_commit(struct engine_file *f)
{
    int rc = commit(f, false);
    f->writable = false;
    unlink(f->tmp_path); /* gone already after a commit; a leftover otherwise */
    return rc;
}

struct engine_file *engine__local_open_read(struct engine *e, const struct node *n, int *err)
{
    struct engine_file *f = engine__file_new(e);
    if (!f) {
        *err = -ENOMEM;
        return NULL;
    }
    if (!n->digest[0]) {
        /* Created but not yet closed by its writer: it is empty so far. */
        char hex[65];
        *err = store_put_bytes(&e->store, "", 0, hex);
        if (*err == 0)
            f->fd = store_open_blob(&e->store, hex);
    } else {
        f->fd = store_open_blob(&e->store, n->digest);
        snprintf(f->digest, sizeof(f->digest), "%s", n->digest);
        engine__obj_open(e, n->digest);
    }
    if (f->fd < 0) {
        *err = f->fd;
        engine_file_close(f);
        return NULL;
    }
    f->size = lseek(f->fd, 0, SEEK_END);
    *err = 0;
    return f;
}

int engine_truncate(struct engine *e, int64_t ino, int64_t size, struct engine_file *f)
{
    if (f && f->writable) {
        int rc = file_unshare(f);
        if (rc < 0)
            return rc;
        if (ftruncate(f->fd, size) < 0)
            return -errno;
        f->dirty = true;
        return 0;
    }
    struct engine_file *w = NULL;
    int rc = engine_file_open_write(e, ino, size == 0, &w);
    if (rc < 0)
        return rc;
    if (ftruncate(w->fd, size) < 0)
        rc = -errno;
    w->dirty = true;
    int crc = engine_file_close(w);
    return rc < 0 ? rc : crc;
}

int engine_mkdir(struct engine *e, int64_t parent, const char *name, struct engine_attr *attr)
{
    struct node p, n = {0};
    int rc = registry_dir(e, parent, &p);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&e->mu);
    if (index_child(e->ix, parent, name, &n) == 0 && n.kind != NODE_ABSENT) {
        rc = -EEXIST;
    } else {
        node_clear(&n);
        memset(&n, 0, sizeof(n));
        n.parent = parent;
        n.name = strdup(name);
        n.top = strdup(p.top);
        n.path = engine__join(p.path, name);
        n.kind = NODE_DIR;
        n.mtime = engine__now();
        n.local = true;
        rc = index_put(e->ix, &n);
    }
    pthread_mutex_unlock(&e->mu);
    if (rc == 0)
        engine__attr_from_node(e, &n, attr);
    node_clear(&n);
    node_clear(&p);
    return rc;
}

int engine_unlink(struct engine *e, int64_t parent, const char *name)
{
    struct node p, n;
    int rc = registry_dir(e, parent, &p);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&e->mu);
    rc = index_child(e->ix, parent, name, &n);
    if (rc == 0) {
        if (n.kind == NODE_DIR)
            rc = -EISDIR;
        else if (!n.local)
            rc = n.kind == NODE_ABSENT ? -ENOENT : -EROFS;
        else
            rc = index_remove(e->ix, n.ino); /* the upstream's copy, if any, shows again */
        node_clear(&n);
    }
    pthread_mutex_unlock(&e->mu);
    node_clear(&p);
    return rc;
}

int engine_rmdir(struct engine *e, int64_t parent, const char *name)
{
    struct node p, n;
    int rc = registry_dir(e, parent, &p);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&e->mu);
    rc = index_child(e->ix, parent, name, &n);
    if (rc == 0) {
        struct node *kids = NULL;
        size_t nk = 0;
        if (n.kind != NODE_DIR)
            rc = -ENOTDIR;
        else if (!n.local)
            rc = -EROFS;
        else if (index_children(e->ix, n.ino, &kids, &nk) == 0 && nk > 0) {
            bool any_local = false;
            for (size_t i = 0; i < nk; i++)
                any_local |= kids[i].local;
            rc = any_local ? -ENOTEMPTY : index_remove(e->ix, n.ino);
        } else {
            rc = index_remove(e->ix, n.ino);
        }
        index_nodes_free(kids, nk);
        node_clear(&n);
    }
    pthread_mutex_unlock(&e->mu);
    node_clear(&p);
    return rc;
}

int engine_rename(struct engine *e, int64_t parent, const char *name, int64_t newparent,
                  const char *newname)
{
    struct node p, np, n;
    int rc = registry_dir(e, parent, &p);
    if (rc < 0)
        return rc;
    rc = registry_dir(e, newparent, &np);
    if (rc < 0) {
        node_clear(&p);
        return rc;
    }
    if (strcmp(p.top, np.top) != 0) {
        rc = -EXDEV;
        goto out;
    }
    pthread_mutex_lock(&e->mu);
    rc = index_child(e->ix, parent, name, &n);
    if (rc == 0) {
        if (!n.local) {
            rc = n.kind == NODE_ABSENT ? -ENOENT : -EROFS;
        } else {
            char *newpath = engine__join(np.path, newname);
            rc = newpath ? index_move(e->ix, n.ino, newparent, newname, newpath) : -ENOMEM;
            free(newpath);
        }
        node_clear(&n);
    }
    pthread_mutex_unlock(&e->mu);
out:
    node_clear(&p);
    node_clear(&np);
    return rc;
}

/* Finds or creates (as local directories) each component of path below a registry directory. */
static int ensure_dirs(struct engine *e, const char *path, int64_t *ino)
{
    char buf[4096];
    struct engine_attr a;
    if (strlen(path) >= sizeof(buf))
        return -ENAMETOOLONG;
    snprintf(buf, sizeof(buf), "%s", path);
    char *save = NULL, *c = strtok_r(buf, "/", &save);
    if (!c || !engine__is_registry(e, c))
        return c ? -EROFS : -EINVAL;
    int rc = engine_lookup(e, INDEX_ROOT_INO, c, &a);
    while (rc == 0 && (c = strtok_r(NULL, "/", &save)) != NULL) {
        int64_t parent = a.ino;
        rc = engine_lookup(e, parent, c, &a);
        if (rc == -ENOENT)
            rc = engine_mkdir(e, parent, c, &a);
        if (rc == 0 && a.kind != NODE_DIR)
            rc = -ENOTDIR;
    }
    if (rc == 0)
        *ino = a.ino;
    return rc;
}

static int import_file(struct engine *e, int64_t parent, const char *name, int fd, int64_t *bytes)
{
    struct engine_file *f = NULL;
    struct engine_attr a;
    char buf[1 << 16];
    int rc = engine_create(e, parent, name, &f, &a);
    off_t off = 0;
    ssize_t r;
    while (rc == 0 && (r = read(fd, buf, sizeof(buf))) != 0) {
        if (r < 0) {
            rc = errno == EINTR ? 0 : -errno;
            continue;
        }
        ssize_t w = engine_file_write(f, buf, (size_t)r, off);
        rc = w == r ? 0 : (w < 0 ? (int)w : -EIO);
        off += r;
    }
    int crc = f ? engine_file_close(f) : 0;
    if (rc == 0 && crc == 0)
        *bytes += off;
    return rc < 0 ? rc : crc;
}

static int import_dir(struct engine *e, int64_t ino, int dir_fd, int depth, int64_t *files,
                      int64_t *bytes)
{
    if (depth > 64) {
        close(dir_fd);
        return -ELOOP;
    }
    DIR *d = fdopendir(dir_fd);
    if (!d) {
        close(dir_fd);
        return -errno;
    }
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        struct stat st;
        /* Symbolic links are not followed: a copied tree holds files and directories. */
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            rc = -errno;
            break;
        }
        int fd = S_ISDIR(st.st_mode) || S_ISREG(st.st_mode)
                     ? openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
                     : -2;
        if (fd == -2)
            continue;
        if (fd < 0) {
            rc = -errno;
            break;
        }
        struct engine_attr a;
        if (S_ISDIR(st.st_mode)) {
            rc = engine_lookup(e, ino, de->d_name, &a);
            if (rc == -ENOENT)
                rc = engine_mkdir(e, ino, de->d_name, &a);
            if (rc == 0)
                rc = import_dir(e, a.ino, fd, depth + 1, files, bytes);
            else
                close(fd);
        } else {
            rc = import_file(e, ino, de->d_name, fd, bytes);
            close(fd);
            if (rc == 0)
                (*files)++;
        }
    }
    closedir(d);
    return rc;
}

int engine_import(struct engine *e, const char *dest, const char *src_dir, int64_t *files,
                  int64_t *bytes)
{
    int64_t ino;
    *files = *bytes = 0;
    int fd = open(src_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = ensure_dirs(e, dest, &ino);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return import_dir(e, ino, fd, 0, files, bytes);
}

int engine_import_file(struct engine *e, const char *dest, const char *name, int fd,
                       int64_t *bytes)
{
    int64_t ino;
    int rc = ensure_dirs(e, dest, &ino);
    return rc < 0 ? rc : import_file(e, ino, name, fd, bytes);
}

int engine_local_files(struct engine *e, const char *dir, struct drv_local_file **out, size_t *n)
{
    char *copy = strdup(dir), *save = NULL;
    struct node *kids = NULL;
    size_t nk = 0;
    int64_t ino = INDEX_ROOT_INO;
    int rc = copy ? 0 : -ENOMEM;
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&e->mu);
    for (char *c = copy ? strtok_r(copy, "/", &save) : NULL; rc == 0 && c;
         c = strtok_r(NULL, "/", &save)) {
        struct node d;
        rc = index_child(e->ix, ino, c, &d);
        if (rc == 0 && d.kind != NODE_DIR)
            rc = -ENOTDIR;
        if (rc == 0)
            ino = d.ino;
        if (rc == 0 || rc == -ENOTDIR)
            node_clear(&d);
    }
    if (rc == 0 && ino != INDEX_ROOT_INO)
        rc = index_children(e->ix, ino, &kids, &nk);
    pthread_mutex_unlock(&e->mu);
    free(copy);
    struct drv_local_file *files = nk ? calloc(nk, sizeof(*files)) : NULL;
    size_t got = 0;
    for (size_t i = 0; files && i < nk; i++) {
        if (!kids[i].local || kids[i].kind != NODE_FILE || !kids[i].digest[0])
            continue;
        if (!(files[got].name = strdup(kids[i].name)))
            break;
        files[got].size = kids[i].size;
        memcpy(files[got].sha256, kids[i].digest, sizeof(files[got].sha256));
        got++;
    }
    index_nodes_free(kids, nk);
    if (rc < 0 || (nk && !files)) {
        free(files);
        return rc == -ENOENT || rc == -ENOTDIR ? 0 : rc < 0 ? rc : -ENOMEM;
    }
    *out = files;
    *n = got;
    return 0;
}

void engine_local_files_free(struct drv_local_file *files, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(files[i].name);
    free(files);
}

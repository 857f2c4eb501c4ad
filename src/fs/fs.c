/*
 * fs: FUSE low-level handlers over the engine (see fs.h).
 *
 * Kernel caching (docs/ARCHITECTURE.md, "A read, end to end"): entries and attributes carry the
 * engine's timeouts (a day for immutable files, no more than the TTL for
 * mutable ones, 1 s for directories); files open with keep_cache unless the
 * open found new content, in which case the open uses direct I/O and the
 * inode is invalidated from a separate thread (libfuse's notify calls must
 * not run inside a handler that holds kernel locks). Reads of stored content
 * are spliced from the cache file (SPLICE_WRITE with max_read at most
 * FS_MAX_READ, so every reply fits libfuse's pipe), and so are the bytes of a
 * download in progress once written (engine_file_read_fd); reads where splicing
 * is off go through a reused per-thread buffer and fuse_reply_buf. Never fd-backed fuse_reply_data
 * without splice: on libfuse 3.14 that path is an order of magnitude slower.
 */
#include "upstreamfs/fs.h"
#include "upstreamfs/engine.h"
#include "upstreamfs/index.h"
#include "upstreamfs/log.h"

#include <errno.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FS_READ_BUF    (1u << 20)
#define FS_NEG_TIMEOUT 1.0

/* The session this process serves; notify calls need it and requests do not carry it. */
static struct fuse_session *fs_current;
/* The max_read mount option, and whether replies from stored content are spliced (set in init). */
static unsigned fs_max_read;
static bool fs_splice;

struct fs_dir {
    struct engine_dirent *ents;
    size_t n;
};

static struct engine *eng(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

/* A wait ends when its caller gave up, or when the mount is going away (unmount, SIGTERM). */
static bool req_cancelled(void *arg)
{
    return fuse_req_interrupted((fuse_req_t)arg) || (fs_current && fuse_session_exited(fs_current));
}

static void to_stat(const struct engine_attr *a, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_ino = (ino_t)a->ino;
    if (a->kind == NODE_DIR) {
        st->st_mode = S_IFDIR | (a->writable ? 0755 : 0555);
        st->st_nlink = 2;
        st->st_size = 4096;
    } else {
        st->st_mode = S_IFREG | (a->writable ? 0644 : 0444);
        st->st_nlink = 1;
        st->st_size = a->size;
    }
    st->st_blksize = 4096;
    st->st_blocks = (st->st_size + 511) / 512;
    st->st_mtime = st->st_ctime = st->st_atime = (time_t)a->mtime;
    st->st_uid = getuid();
    st->st_gid = getgid();
}

static void to_entry(const struct engine_attr *a, struct fuse_entry_param *ep)
{
    memset(ep, 0, sizeof(*ep));
    ep->ino = (fuse_ino_t)a->ino;
    ep->generation = 1;
    to_stat(a, &ep->attr);
    ep->attr_timeout = a->timeout;
    ep->entry_timeout = a->timeout;
}

static void reply_entry_or_err(fuse_req_t req, int rc, const struct engine_attr *a)
{
    struct fuse_entry_param ep;
    if (rc == -ENOENT) {
        /* A negative entry the kernel may keep briefly, so repeated misses stay local. */
        memset(&ep, 0, sizeof(ep));
        ep.entry_timeout = FS_NEG_TIMEOUT;
        fuse_reply_entry(req, &ep);
        return;
    }
    if (rc < 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    to_entry(a, &ep);
    fuse_reply_entry(req, &ep);
}

static void fs_init(void *userdata, struct fuse_conn_info *conn)
{
    (void)userdata;
    if (conn->capable & FUSE_CAP_EXPORT_SUPPORT)
        conn->want |= FUSE_CAP_EXPORT_SUPPORT;
    /* The engine decides page-cache reuse per open (keep_cache); mtime changes must not. */
    conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
    conn->max_readahead = conn->max_readahead < (1u << 20) ? conn->max_readahead : (1u << 20);
    conn->max_read = fs_max_read;
    if (fs_max_read && fs_max_read <= FS_MAX_READ && (conn->capable & FUSE_CAP_SPLICE_WRITE)) {
        conn->want |= FUSE_CAP_SPLICE_WRITE;
        fs_splice = true;
    }
}

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct engine_attr a;
    int rc = engine_lookup(eng(req), (int64_t)parent, name, &a);
    reply_entry_or_err(req, rc, &a);
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)fi;
    struct engine_attr a;
    struct stat st;
    int rc = engine_getattr(eng(req), (int64_t)ino, &a);
    if (rc < 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    to_stat(&a, &st);
    fuse_reply_attr(req, &st, a.timeout);
}

static void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
    struct engine_attr a;
    struct stat st;
    int rc = engine_getattr(eng(req), (int64_t)ino, &a);
    if (rc == 0 && !a.writable)
        rc = -EROFS;
    if (rc == 0 && (to_set & FUSE_SET_ATTR_SIZE)) {
        struct engine_file *f = fi ? (struct engine_file *)(uintptr_t)fi->fh : NULL;
        rc = engine_truncate(eng(req), (int64_t)ino, attr->st_size, f);
        if (rc == 0)
            rc = engine_getattr(eng(req), (int64_t)ino, &a);
        if (rc == 0)
            a.size = attr->st_size;
    }
    /* Modes, owners and times of local content are not stored; accepting them keeps cp -p working.
     */
    if (rc < 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    to_stat(&a, &st);
    fuse_reply_attr(req, &st, a.timeout);
}

static void fs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct fs_dir *d = calloc(1, sizeof(*d));
    if (!d) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    int rc = engine_readdir(eng(req), (int64_t)ino, &d->ents, &d->n);
    if (rc < 0) {
        free(d);
        fuse_reply_err(req, -rc);
        return;
    }
    fi->fh = (uint64_t)(uintptr_t)d;
    if (fuse_reply_open(req, fi) != 0) {
        /* The kernel did not take the handle (the opener went away): no releasedir comes. */
        engine_dirents_free(d->ents, d->n);
        free(d);
    }
}

static void dir_reply(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                      struct fuse_file_info *fi, bool plus)
{
    struct fs_dir *d = (struct fs_dir *)(uintptr_t)fi->fh;
    char *buf = malloc(size);
    size_t used = 0;
    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    /* Offsets: 0 ".", 1 "..", then entry i at i + 2. */
    for (off_t i = off; i < (off_t)d->n + 2; i++) {
        struct stat st;
        struct fuse_entry_param ep;
        const char *name;
        memset(&st, 0, sizeof(st));
        memset(&ep, 0, sizeof(ep));
        if (i < 2) {
            name = i == 0 ? "." : "..";
            st.st_ino = i == 0 ? ino : FUSE_ROOT_ID;
            st.st_mode = S_IFDIR;
            ep.attr = st;
        } else {
            const struct engine_dirent *de = &d->ents[i - 2];
            name = de->name;
            to_entry(&de->attr, &ep);
            st = ep.attr;
            if (!de->attr.ino)
                st.st_ino = ep.attr.st_ino = (ino_t)-1; /* listed, not yet resolvable */
        }
        size_t need;
        if (plus && i >= 2)
            need = fuse_add_direntry_plus(req, buf + used, size - used, name, &ep, i + 1);
        else if (plus)
            need = fuse_add_direntry_plus(req, buf + used, size - used, name, &ep, i + 1);
        else
            need = fuse_add_direntry(req, buf + used, size - used, name, &st, i + 1);
        if (need > size - used)
            break;
        used += need;
    }
    fuse_reply_buf(req, buf, used);
    free(buf);
}

static void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    dir_reply(req, ino, size, off, fi, false);
}

static void fs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi)
{
    dir_reply(req, ino, size, off, fi, true);
}

static void fs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    struct fs_dir *d = (struct fs_dir *)(uintptr_t)fi->fh;
    if (d) {
        engine_dirents_free(d->ents, d->n);
        free(d);
    }
    fuse_reply_err(req, 0);
}

struct inval {
    struct fuse_session *se;
    fuse_ino_t ino;
};

/*
 * The invalidation threads use the session: fs_session_end waits for them
 * before the session is unmounted and destroyed, and refuses new ones.
 */
static pthread_mutex_t inval_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t inval_cv = PTHREAD_COND_INITIALIZER;
static unsigned inval_running;
static bool inval_closed;

static void *inval_main(void *arg)
{
    struct inval *iv = arg;
    fuse_lowlevel_notify_inval_inode(iv->se, iv->ino, 0, 0);
    free(iv);
    pthread_mutex_lock(&inval_mu);
    inval_running--; /* the session is not used past this point */
    pthread_cond_broadcast(&inval_cv);
    pthread_mutex_unlock(&inval_mu);
    return NULL;
}

/* Drops the kernel's pages and attributes of an inode whose content changed, off this thread. */
static void invalidate_later(fuse_req_t req, fuse_ino_t ino)
{
    struct inval *iv = malloc(sizeof(*iv));
    pthread_t th;
    if (!iv)
        return;
    (void)req;
    iv->se = fs_current;
    iv->ino = ino;
    pthread_mutex_lock(&inval_mu);
    bool closed = inval_closed;
    if (!closed)
        inval_running++;
    pthread_mutex_unlock(&inval_mu);
    if (closed) {
        free(iv);
        return;
    }
    if (pthread_create(&th, NULL, inval_main, iv) == 0) {
        pthread_detach(th);
        return;
    }
    free(iv);
    pthread_mutex_lock(&inval_mu);
    inval_running--;
    pthread_cond_broadcast(&inval_cv);
    pthread_mutex_unlock(&inval_mu);
}

int fs_session_end(int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&inval_mu);
    inval_closed = true;
    while (inval_running > 0 && pthread_cond_timedwait(&inval_cv, &inval_mu, &until) == 0)
        ;
    int left = (int)inval_running;
    pthread_mutex_unlock(&inval_mu);
    if (left > 0)
        log_warn("unmount: %d kernel cache invalidation(s) still running after %d ms", left,
                 timeout_ms);
    return left;
}

/*
 * Inodes whose kernel pages may hold bytes of a download that did not verify:
 * a read of it failed, or a handle reading it while it streamed was released
 * before the download ended. Their next open drops the pages (no keep_cache),
 * even when the engine then finds the content stored and verified, so bytes a
 * verification rejected are never served from the page cache. A full table
 * forgets its oldest inode, whose pages are then dropped from another thread.
 */
#define FS_TAINT_MAX 1024
static pthread_mutex_t taint_mu = PTHREAD_MUTEX_INITIALIZER;
static fuse_ino_t taint[FS_TAINT_MAX];
static size_t n_taint;

static void taint_add(fuse_req_t req, fuse_ino_t ino)
{
    fuse_ino_t dropped = 0;
    pthread_mutex_lock(&taint_mu);
    size_t i = 0;
    while (i < n_taint && taint[i] != ino)
        i++;
    if (i == n_taint) {
        if (n_taint == FS_TAINT_MAX) {
            dropped = taint[0];
            memmove(taint, taint + 1, (FS_TAINT_MAX - 1) * sizeof(taint[0]));
            n_taint--;
        }
        taint[n_taint++] = ino;
    }
    pthread_mutex_unlock(&taint_mu);
    if (dropped)
        invalidate_later(req, dropped);
}

/* Whether ino was tainted; it is not any more (the caller's open drops its pages). */
static bool taint_take(fuse_ino_t ino)
{
    bool found = false;
    pthread_mutex_lock(&taint_mu);
    for (size_t i = 0; i < n_taint && !found; i++) {
        if (taint[i] == ino) {
            taint[i] = taint[--n_taint];
            found = true;
        }
    }
    pthread_mutex_unlock(&taint_mu);
    return found;
}

static void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct engine_file *f = NULL;
    /* where the reader starts is told by its first read (engine.h) */
    struct engine_wait w = {.cancelled = req_cancelled, .arg = req, .first_offset = -1};
    bool keep = false, changed = false;
    int rc;
    if ((fi->flags & O_ACCMODE) != O_RDONLY) {
        rc = engine_file_open_write(eng(req), (int64_t)ino, (fi->flags & O_TRUNC) != 0, &f);
    } else {
        rc = engine_file_open(eng(req), (int64_t)ino, &w, &f, &keep, &changed);
    }
    if (rc < 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    if (taint_take(ino))
        keep = false;
    fi->fh = (uint64_t)(uintptr_t)f;
    fi->keep_cache = keep;
    fi->direct_io = changed;
    if (fuse_reply_open(req, fi) == -ENOENT) {
        engine_file_close(f); /* the opener went away before the reply */
        return;
    }
    if (changed)
        invalidate_later(req, ino);
}

static void fs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
    (void)mode;
    struct engine_file *f = NULL;
    struct engine_attr a;
    struct fuse_entry_param ep;
    int rc = engine_create(eng(req), (int64_t)parent, name, &f, &a);
    if (rc < 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    to_entry(&a, &ep);
    fi->fh = (uint64_t)(uintptr_t)f;
    if (fuse_reply_create(req, &ep, fi) == -ENOENT)
        engine_file_close(f);
}

/* One reply buffer per worker thread, freed when the thread ends. */
static pthread_key_t read_buf_key;
static pthread_once_t read_buf_once = PTHREAD_ONCE_INIT;

static void read_buf_key_init(void)
{
    pthread_key_create(&read_buf_key, free);
}

static char *thread_read_buf(void)
{
    pthread_once(&read_buf_once, read_buf_key_init);
    char *b = pthread_getspecific(read_buf_key);
    if (!b && (b = malloc(FS_READ_BUF)) != NULL && pthread_setspecific(read_buf_key, b) != 0) {
        free(b);
        b = NULL;
    }
    return b;
}

static void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    (void)ino;
    struct engine_file *f = (struct engine_file *)(uintptr_t)fi->fh;
    struct engine_wait w = {.cancelled = req_cancelled, .arg = req};
    int64_t fsize;
    int fd = fs_splice ? engine_file_blob(f, &fsize) : -EAGAIN;
    ssize_t n = -EAGAIN; /* -EAGAIN: not answered yet */
    void *held = NULL;
    if (fd < 0 && fs_splice) { /* a download in progress: what is written is spliced as well */
        n = engine_file_read_fd(f, size, off, &w, &fd, &held);
        fsize = off + (n > 0 ? n : 0);
    }
    if (fd >= 0 && (n == -EAGAIN || n > 0) && off < fsize) {
        /* page-cache pages of the file go to the kernel through a pipe, no copy here */
        if ((int64_t)size > fsize - off)
            size = (size_t)(fsize - off);
        struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);
        bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
        bv.buf[0].fd = fd;
        bv.buf[0].pos = off;
        fuse_reply_data(req, &bv, 0); /* it replies with the error itself when reading fails */
        if (n > 0) /* a download's: it may end now (f may be released as soon as we replied) */
            engine_read_fd_done(held);
        return;
    }
    char *read_buf = NULL;
    if (n == -EAGAIN) {
        if (!(read_buf = thread_read_buf())) {
            fuse_reply_err(req, ENOMEM);
            return;
        }
        if (size > FS_READ_BUF)
            size = FS_READ_BUF;
        n = engine_file_read(f, read_buf, size, off, &w);
    }
    if (n < 0 && n != -EINTR)
        taint_add(req, ino); /* before the reader learns of it: its next open must not see pages */
    if (n < 0)
        fuse_reply_err(req, (int)-n);
    else
        fuse_reply_buf(req, read_buf, (size_t)n);
}

static void fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    (void)ino;
    struct engine_file *f = (struct engine_file *)(uintptr_t)fi->fh;
    ssize_t n = engine_file_write(f, buf, size, off);
    if (n < 0)
        fuse_reply_err(req, (int)-n);
    else
        fuse_reply_write(req, (size_t)n);
}

static void fs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    /* close() waits for FLUSH, not RELEASE: store written content now, so it is visible on return.
     */
    int rc = engine_file_flush((struct engine_file *)(uintptr_t)fi->fh);
    fuse_reply_err(req, rc < 0 ? -rc : 0);
}

static void fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct engine_file *f = (struct engine_file *)(uintptr_t)fi->fh;
    if (engine_file_fd(f) == -EAGAIN)
        taint_add(req, ino); /* read while downloading, and the download is not verified yet */
    int rc = engine_file_close(f);
    fuse_reply_err(req, rc < 0 ? -rc : 0);
}

static void fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    (void)mode;
    struct engine_attr a;
    int rc = engine_mkdir(eng(req), (int64_t)parent, name, &a);
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        reply_entry_or_err(req, 0, &a);
}

static void fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    fuse_reply_err(req, -engine_unlink(eng(req), (int64_t)parent, name));
}

static void fs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    fuse_reply_err(req, -engine_rmdir(eng(req), (int64_t)parent, name));
}

static void fs_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
    if (flags) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    fuse_reply_err(req,
                   -engine_rename(eng(req), (int64_t)parent, name, (int64_t)newparent, newname));
}

static void fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
    (void)ino;
    struct engine_stats s;
    struct statvfs sv;
    memset(&sv, 0, sizeof(sv));
    if (engine_stats(eng(req), &s) == 0) {
        uint64_t bs = 4096;
        uint64_t total = (uint64_t)(s.quota_bytes + s.local_bytes) / bs;
        uint64_t used = (uint64_t)(s.cache_bytes + s.local_bytes) / bs;
        sv.f_bsize = sv.f_frsize = bs;
        sv.f_blocks = total;
        sv.f_bfree = sv.f_bavail = used < total ? total - used : 0;
        sv.f_files = (fsfilcnt_t)(s.cache_objects + s.local_objects);
        sv.f_namemax = 255;
    }
    fuse_reply_statfs(req, &sv);
}

/* Replies to a getxattr/listxattr whose engine answer (n bytes, or -errno) is in buf. */
static void reply_xattr(fuse_req_t req, int n, const char *buf, size_t size)
{
    if (n < 0)
        fuse_reply_err(req, -n);
    else if (size == 0)
        fuse_reply_xattr(req, (size_t)n);
    else if ((size_t)n > size)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, buf, (size_t)n);
}

static void fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    char buf[4300];
    reply_xattr(req, engine_getxattr(eng(req), (int64_t)ino, name, buf, size ? sizeof(buf) : 0),
                buf, size);
}

static void fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    char buf[256];
    reply_xattr(req, engine_listxattr(eng(req), (int64_t)ino, buf, size ? sizeof(buf) : 0), buf,
                size);
}

static const struct fuse_lowlevel_ops fs_ops = {
    .init = fs_init,
    .lookup = fs_lookup,
    .getattr = fs_getattr,
    .setattr = fs_setattr,
    .opendir = fs_opendir,
    .readdir = fs_readdir,
    .readdirplus = fs_readdirplus,
    .releasedir = fs_releasedir,
    .open = fs_open,
    .create = fs_create,
    .read = fs_read,
    .write = fs_write,
    .flush = fs_flush,
    .release = fs_release,
    .mkdir = fs_mkdir,
    .unlink = fs_unlink,
    .rmdir = fs_rmdir,
    .rename = fs_rename,
    .statfs = fs_statfs,
    .getxattr = fs_getxattr,
    .listxattr = fs_listxattr,
};

/*
 * A top-level name whose tree the config changed (engine_on_reload; include/exclude, a new
 * URL): the kernel forgets its entry and every entry cached below it, so names cached for a
 * day are looked up again under the new rules. Runs on the engine's watcher thread, which
 * holds no lock a FUSE handler waits for.
 */
static void tree_changed(void *arg, const char *name)
{
    struct fuse_session *se = arg;
    int rc = fuse_lowlevel_notify_inval_entry(se, FUSE_ROOT_ID, name, strlen(name));
    if (rc < 0 && rc != -ENOENT)
        log_debug("invalidating %s in the kernel: %s", name, strerror(-rc));
}

struct fuse_session *fs_session_new(struct fuse_args *args, struct engine *e, unsigned max_read)
{
    fs_max_read = max_read;
    fs_current = fuse_session_new(args, &fs_ops, sizeof(fs_ops), e);
    if (fs_current)
        engine_on_reload(e, tree_changed, fs_current);
    return fs_current;
}

int fs_session_loop(struct fuse_session *se, int max_threads)
{
    struct fuse_loop_config *cfg = fuse_loop_cfg_create();
    if (!cfg)
        return -ENOMEM;
    fuse_loop_cfg_set_max_threads(cfg, (unsigned)max_threads);
    fuse_loop_cfg_set_clone_fd(cfg, 0);
    int rc = fuse_session_loop_mt(se, cfg);
    fuse_loop_cfg_destroy(cfg);
    return rc < 0 ? rc : 0;
}

/*
 * test_fs: the FUSE front door's handlers (src/fs/fs.c) without a mount. The
 * linker's --wrap stands in for libfuse: fuse_session_new hands the test the
 * handler table, fuse_req_userdata the engine (on a temporary state dir with
 * the scriptable driver of tests/unit/test_driver.c), and the reply and notify
 * calls are recorded or made to fail.
 *   opendir_reply_failure_frees   a listing whose fuse_reply_open fails is freed
 *                                 (no releasedir will come); one that succeeds
 *                                 is freed by releasedir, once
 *   session_end_waits_for_inval   fs_session_end waits for a running kernel
 *                                 invalidation thread before the session may be
 *                                 destroyed, then refuses new ones
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "test_driver.h"

#include "upstreamfs/engine.h"
#include "upstreamfs/fetch.h"
#include "upstreamfs/fs.h"
#include "upstreamfs/state.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct fuse_session *__wrap_fuse_session_new(struct fuse_args *args,
                                             const struct fuse_lowlevel_ops *op, size_t op_size,
                                             void *userdata);
void *__wrap_fuse_req_userdata(fuse_req_t req);
int __wrap_fuse_req_interrupted(fuse_req_t req);
int __wrap_fuse_session_exited(struct fuse_session *se);
int __wrap_fuse_reply_open(fuse_req_t req, const struct fuse_file_info *fi);
int __wrap_fuse_reply_err(fuse_req_t req, int err);
int __wrap_fuse_lowlevel_notify_inval_inode(struct fuse_session *se, fuse_ino_t ino, off_t off,
                                            off_t len);
void __real_engine_dirents_free(struct engine_dirent *list, size_t n);
void __wrap_engine_dirents_free(struct engine_dirent *list, size_t n);

static struct fuse_lowlevel_ops ops;
static struct engine *engine;
static char session_dummy;
static int reply_open_rc;        /* what fuse_reply_open returns */
static atomic_int dirents_freed; /* engine_dirents_free calls */
static atomic_int notifies;      /* fuse_lowlevel_notify_inval_inode calls begun */
static pthread_mutex_t notify_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t notify_cv = PTHREAD_COND_INITIALIZER;
static bool notify_open = true;

struct fuse_session *__wrap_fuse_session_new(struct fuse_args *args,
                                             const struct fuse_lowlevel_ops *op, size_t op_size,
                                             void *userdata)
{
    (void)args, (void)userdata;
    memcpy(&ops, op, op_size < sizeof(ops) ? op_size : sizeof(ops));
    return (struct fuse_session *)&session_dummy;
}

void *__wrap_fuse_req_userdata(fuse_req_t req)
{
    (void)req;
    return engine;
}

int __wrap_fuse_req_interrupted(fuse_req_t req)
{
    (void)req;
    return 0;
}

int __wrap_fuse_session_exited(struct fuse_session *se)
{
    (void)se;
    return 0;
}

int __wrap_fuse_reply_open(fuse_req_t req, const struct fuse_file_info *fi)
{
    (void)req, (void)fi;
    return reply_open_rc;
}

int __wrap_fuse_reply_err(fuse_req_t req, int err)
{
    (void)req, (void)err;
    return 0;
}

/* Blocks while the test holds notifications back, as a kernel busy with the inode would. */
int __wrap_fuse_lowlevel_notify_inval_inode(struct fuse_session *se, fuse_ino_t ino, off_t off,
                                            off_t len)
{
    (void)se, (void)ino, (void)off, (void)len;
    atomic_fetch_add(&notifies, 1);
    pthread_mutex_lock(&notify_mu);
    while (!notify_open)
        pthread_cond_wait(&notify_cv, &notify_mu);
    pthread_mutex_unlock(&notify_mu);
    return 0;
}

void __wrap_engine_dirents_free(struct engine_dirent *list, size_t n)
{
    atomic_fetch_add(&dirents_freed, 1);
    __real_engine_dirents_free(list, n);
}

static void hold_notifications(bool hold)
{
    pthread_mutex_lock(&notify_mu);
    notify_open = !hold;
    pthread_cond_broadcast(&notify_cv);
    pthread_mutex_unlock(&notify_mu);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static char dir[64];

static int setup(void **state)
{
    (void)state;
    struct state *st = NULL;
    snprintf(dir, sizeof(dir), "/tmp/upfs-test-fs.XXXXXX");
    if (!mkdtemp(dir) || fetch_global_init() < 0 || td_start() < 0 || state_open(dir, &st) < 0)
        return -1;
    int rc = td_proxy_create(st, "p", 1);
    state_close(st);
    struct engine_opts o = {.state_dir = dir, .driver_override = &td_driver};
    if (rc < 0 || engine_open(&o, &engine) < 0)
        return -1;
    return fs_session_new(NULL, engine, FS_MAX_READ) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    hold_notifications(false);
    engine_on_reload(engine, NULL, NULL);
    engine_close(engine);
    td_stop();
    fetch_global_cleanup();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void opendir_reply_failure_frees(void **state)
{
    (void)state;
    struct fuse_file_info fi;
    atomic_store(&dirents_freed, 0);

    memset(&fi, 0, sizeof(fi));
    reply_open_rc = -ENOENT; /* the opener went away: the kernel never sees the handle */
    ops.opendir(NULL, FUSE_ROOT_ID, &fi);
    assert_int_not_equal(fi.fh, 0);                   /* a listing was made... */
    assert_int_equal(atomic_load(&dirents_freed), 1); /* ...and freed */

    memset(&fi, 0, sizeof(fi));
    reply_open_rc = 0;
    ops.opendir(NULL, FUSE_ROOT_ID, &fi);
    assert_int_equal(atomic_load(&dirents_freed), 1); /* held for readdir */
    ops.releasedir(NULL, FUSE_ROOT_ID, &fi);
    assert_int_equal(atomic_load(&dirents_freed), 2);
}

/* Opens p/m.txt through the handler, as the kernel would, and releases it. */
static void open_release(fuse_ino_t ino)
{
    struct fuse_file_info fi;
    memset(&fi, 0, sizeof(fi));
    fi.flags = O_RDONLY;
    reply_open_rc = 0;
    ops.open(NULL, ino, &fi);
    assert_int_not_equal(fi.fh, 0);
    assert_int_equal(engine_file_wait((struct engine_file *)(uintptr_t)fi.fh, NULL), 0);
    ops.release(NULL, ino, &fi);
}

struct ender {
    int left;
    atomic_bool done;
};

static void *end_main(void *arg)
{
    struct ender *en = arg;
    en->left = fs_session_end(5000);
    atomic_store(&en->done, true);
    return NULL;
}

static void session_end_waits_for_inval(void **state)
{
    (void)state;
    struct engine_attr a;
    td_file("p", "m.txt", "first", 5, true);
    assert_int_equal(engine_resolve(engine, "p/m.txt", &a), 0);
    open_release((fuse_ino_t)a.ino); /* cached */
    assert_int_equal(atomic_load(&notifies), 0);

    /* Past the TTL the content changed: the open invalidates the inode from a thread. */
    td_file("p", "m.txt", "second", 6, true);
    sleep_ms(2100);
    hold_notifications(true);
    open_release((fuse_ino_t)a.ino);
    for (int i = 0; i < 100 && atomic_load(&notifies) == 0; i++)
        sleep_ms(20);
    assert_int_equal(atomic_load(&notifies), 1);

    /* The end of the session waits for it... */
    struct ender en = {.left = -1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, end_main, &en), 0);
    sleep_ms(300);
    assert_false(atomic_load(&en.done));
    hold_notifications(false);
    pthread_join(th, NULL);
    assert_int_equal(en.left, 0); /* ...and returns once it ended */

    /* After the end no invalidation starts, whatever an open finds. */
    td_file("p", "m.txt", "third!", 6, true);
    sleep_ms(2100);
    open_release((fuse_ino_t)a.ino);
    sleep_ms(200);
    assert_int_equal(atomic_load(&notifies), 1);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(opendir_reply_failure_frees),
        cmocka_unit_test(session_end_waits_for_inval),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, setup, teardown);
}

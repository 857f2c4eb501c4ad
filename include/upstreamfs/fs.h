/*
 * fs: the FUSE front door (libfuse low-level API, multi-threaded).
 *
 * Each handler turns one kernel request into one engine call and replies
 * exactly once. Handlers know no remote protocol. Inode numbers are the
 * index's row ids, so lookup counts need no bookkeeping (forget is a no-op)
 * and inodes survive a remount.
 */
#ifndef UPSTREAMFS_FS_H
#define UPSTREAMFS_FS_H

#include <stdbool.h>

struct engine;
struct fuse_args;
struct fuse_session;

/* Creates a session on the engine (fuse_session_new with upstreamfs's handlers). */
struct fuse_session *fs_session_new(struct fuse_args *args, struct engine *e);

/* Runs the multi-threaded loop until unmount or a signal; returns 0 or a negative errno. */
int fs_session_loop(struct fuse_session *se, int max_threads);

#endif

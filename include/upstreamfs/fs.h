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

/*
 * The default and largest max_read: 252 pages, so that a reply and its header fit the 1 MiB
 * pipe libfuse splices through (fuse-and-caching.md 4.2).
 */
#define FS_MAX_READ 1032192u

/*
 * Creates a session on the engine (fuse_session_new with upstreamfs's handlers). max_read
 * must be the max_read= mount option in args (libfuse refuses the mount when they differ);
 * replies from stored content are spliced from the cache file when it is at most FS_MAX_READ.
 * The session registers itself with engine_on_reload (a changed proxy's entries are
 * invalidated in the kernel): call engine_on_reload(e, NULL, NULL) before destroying it.
 */
struct fuse_session *fs_session_new(struct fuse_args *args, struct engine *e, unsigned max_read);

/* Runs the multi-threaded loop until unmount or a signal; returns 0 or a negative errno. */
int fs_session_loop(struct fuse_session *se, int max_threads);
/*
 * Ends the session's invalidation threads (src/fs/fs.c): refuses new ones and
 * waits up to timeout_ms for those running, so none uses the session after it
 * is unmounted and destroyed. Call after fs_session_loop returns. Returns how
 * many still run (0: all ended); a notification the kernel holds (a read
 * waiting for a reply that will not come) must not hang the unmount.
 */
int fs_session_end(int timeout_ms);

#endif

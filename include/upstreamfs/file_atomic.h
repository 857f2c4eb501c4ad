/*
 * file_atomic: writing a small state file that other processes read while it changes
 * (STATEDIR/health/KEY.json, STATEDIR/counters/PID): through a temporary file in the same
 * directory (".NAME.PID.tmp", so no reader takes it for a file of its own) and rename, so a
 * reader sees the old text or the new, never a part. Not for secrets: those need 0600, fsync
 * and O_NOFOLLOW (configdb.c's private_file_write).
 */
#ifndef UPSTREAMFS_FILE_ATOMIC_H
#define UPSTREAMFS_FILE_ATOMIC_H

/* Writes text to dir/name (mode 0644 when created); 0 or a negative errno. */
int file_write_atomic(const char *dir, const char *name, const char *text);

#endif

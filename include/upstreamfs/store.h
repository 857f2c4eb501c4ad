/*
 * store: the content-addressed blob store under STATEDIR.
 *
 *   blobs/sha256/<ab>/<hex>   complete, verified objects, 0444
 *   tmp/                      downloads and local writes in progress
 *
 * Invariant: a name under blobs/ only ever points at a complete file whose
 * sha256 is its name. Files reach it only through store_commit, which renames
 * a finished temp file into place; a crash leaves at most a temp file, which
 * store_clean_tmp removes at the next start.
 */
#ifndef UPSTREAMFS_STORE_H
#define UPSTREAMFS_STORE_H

#include <stddef.h>
#include <stdint.h>

struct store {
    char *dir; /* the state dir */
};

int store_init(struct store *s, const char *state_dir);
void store_fini(struct store *s);

/* Creates an unlinked-on-failure temp file; returns an O_RDWR fd and its path (malloc'd). */
int store_tmp_create(struct store *s, int *fd, char **path);

/*
 * Renames tmp_path into blobs/sha256/<ab>/<hex> (0444). If the object already
 * exists the temp file is removed instead: identical content is stored once.
 */
int store_commit(struct store *s, const char *tmp_path, const char *hex);

/* Writes a whole buffer as an object; hex receives its sha256. */
int store_put_bytes(struct store *s, const void *data, size_t len, char hex[65]);

/* The path of an object (whether or not it exists) into buf. */
void store_blob_path(const struct store *s, const char *hex, char *buf, size_t len);

/* Opens an object read-only; -ENOENT if it is not in the store. */
int store_open_blob(const struct store *s, const char *hex);

/* Size of an object, or -ENOENT. */
int64_t store_blob_size(const struct store *s, const char *hex);

int store_remove(struct store *s, const char *hex);

/* Removes leftovers in tmp/ (call when no download is running). Returns the count. */
int store_clean_tmp(struct store *s);

/* Re-hashes an object; 0 if its content matches its name, -EBADMSG if not. */
int store_verify(const struct store *s, const char *hex);

#endif

/*
 * state: the state directory and its SQLite database.
 *
 * A state dir (0700) holds index.db (WAL, PRAGMA user_version with forward
 * migrations), secrets/ (one 0600 file per proxy), blobs/sha256/ (the
 * content-addressed store), tmp/ (downloads in progress) and local/
 * (registries' local content being written). state_open creates what is
 * missing and migrates the schema; it never touches the network.
 *
 * One struct state owns one sqlite3 connection; a connection is used by one
 * thread at a time. Other threads open their own with state_db_open.
 */
#ifndef UPSTREAMFS_STATE_H
#define UPSTREAMFS_STATE_H

#include <sqlite3.h>

struct state {
    char *dir;
    sqlite3 *db;
};

/*
 * The state dir from --state, $UPSTREAMFS_STATE, or the default (README.md).
 * Malloc'd; a relative path is made absolute against the working directory.
 */
char *state_default_dir(const char *opt);

int state_open(const char *dir, struct state **out);
void state_close(struct state *st);

/* A further connection to the same database (busy timeout, WAL, foreign keys). */
int state_db_open(const char *dir, sqlite3 **out);

/* Path helper: dir + "/" + rel, malloc'd. */
char *state_path(const struct state *st, const char *rel);

/* Schema version after migrations. */
int state_schema_version(sqlite3 *db);

/* Runs BEGIN IMMEDIATE / COMMIT / ROLLBACK, retrying on SQLITE_BUSY until a deadline. */
int state_begin(sqlite3 *db);
int state_commit(sqlite3 *db);
void state_rollback(sqlite3 *db);

/*
 * Additions beyond the first draft of this header.
 */

/*
 * A SQLite result code as a negative errno (0 for OK/ROW/DONE): BUSY and
 * LOCKED -EBUSY, FULL -ENOSPC, CONSTRAINT -EEXIST, NOMEM -ENOMEM, READONLY
 * -EROFS, anything unexpected -EIO. state_begin and state_commit return
 * -ETIMEDOUT when the database stayed locked past their deadline.
 */
int state_sqlite_errno(int rc);

#endif

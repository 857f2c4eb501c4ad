/*
 * configdb_i: helpers shared by the files of the config store only
 * (configdb.c: statements, secret and TLS files; configdb_proxy.c: proxy
 * rows; configdb_registry.c: registry rows). Not part of any public header;
 * the contract of the store is include/upstreamfs/configdb.h.
 *
 * Every function returns 0 (or the count it documents) or a negative errno;
 * SQLite failures are logged and mapped by state_sqlite_errno.
 */
#ifndef UPSTREAMFS_CONFIGDB_I_H
#define UPSTREAMFS_CONFIGDB_I_H

#include "upstreamfs/configdb.h"

#include <sqlite3.h>

/* ---- statements (configdb.c) ---- */

/* Prepares sql on the state database; logs and maps a failure. */
int configdb__prepare(struct state *st, const char *sql, sqlite3_stmt **out);
/* Steps a statement that returns no rows: 0 on SQLITE_DONE, else logged and mapped. */
int configdb__step_done(struct state *st, sqlite3_stmt *s);
/* Binds v as text, or NULL when v is NULL (the SQLite return code). */
int configdb__bind_text(sqlite3_stmt *s, int i, const char *v);
/* Runs "SELECT ... WHERE x = ?1" with arg and copies column 0 of the first row into *out
 * (malloc'd); *out is NULL when there is no row or the value is NULL. */
int configdb__select_text(struct state *st, const char *sql, const char *arg, char **out);

/* ---- secret files: STATEDIR/secrets/KEY (configdb.c) ---- */

/* 1 if the proxy has a secret file, 0 if not, or a negative errno. */
int configdb__secret_exists(struct state *st, const char *key);
/* Removes the proxy's secret file; 0 when there was none. */
int configdb__secret_remove(struct state *st, const char *key);
/* Writes the secret file (0600, temp file and rename) for a validated key. */
int configdb__secret_write(struct state *st, const char *key, const char *secret);

/* ---- TLS files: STATEDIR/tls/KEY/FIELD (configdb.c) ---- */

/* Fills each PEM row's path with its stored file (NULL when there is none). */
int configdb__tls_load(struct state *st, struct proxy *p);
/* Stores (text), removes ("") or keeps (NULL) each PEM row's file, then reloads the paths. */
int configdb__tls_store(struct state *st, struct proxy *p);
/* Removes STATEDIR/tls/KEY and what is in it. */
int configdb__tls_remove(struct state *st, const char *key);

#endif

/*
 * proxy_rows: how a struct proxy maps onto a row of the proxies table, from
 * the field table (see proxy_rows.c). Internal to src/config.
 */
#ifndef UPSTREAMFS_PROXY_ROWS_H
#define UPSTREAMFS_PROXY_ROWS_H

#include "upstreamfs/config.h"

#include <sqlite3.h>

/*
 * Prepares the proxies table's statement: 'S' "SELECT cols FROM proxies
 * TAIL", 'I' the INSERT of every column, 'U' the UPDATE of every column
 * "WHERE key = ?1". A column the table lacks is added first. 0 or -errno.
 */
int proxy_rows_prepare(sqlite3 *db, char what, const char *tail, sqlite3_stmt **s);
/* Binds p to ?1..?n of an 'I' or 'U' statement; 0 or -ENOMEM. */
int proxy_rows_bind(sqlite3_stmt *s, const struct proxy *p);
/* Fills p from a row of an 'S' statement (not secret_set); -EIO for a name that does not parse. */
int proxy_rows_read(sqlite3_stmt *s, struct proxy *p);

#endif

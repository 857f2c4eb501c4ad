/*
 * schema: the state database's migrations, one SQL script per version.
 *
 * state_migrations[v] takes a database from user_version v to v + 1;
 * state_migration_count is the version of a fully migrated database. Scripts
 * are only ever appended: a released script never changes, because databases
 * out there already ran it.
 */
#ifndef UPSTREAMFS_SCHEMA_H
#define UPSTREAMFS_SCHEMA_H

extern const char *const state_migrations[];
extern const int state_migration_count;

#endif

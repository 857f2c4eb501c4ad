/*
 * index_i.h: what the index's files share (index.c, index_objects.c,
 * index_stats.c, index_partial.c...): the one connection and its statements, whose SQL is the
 * table in index.c, prepared once at index_open and kept until index_close.
 */
#ifndef UPSTREAMFS_INDEX_I_H
#define UPSTREAMFS_INDEX_I_H

#include "upstreamfs/index.h"

enum index_stmt {
    /* nodes (index.c) */
    S_GET,
    S_CHILD,
    S_CHILDREN,
    S_FIND,
    S_INSERT,
    S_UPDATE,
    S_REMOVE,
    S_MOVE_PATHS,
    S_REMOVE_TOP,
    S_REMOVE_BELOW_TOP,
    S_TOPS,
    S_REFERENCED,
    S_DIGESTS_UNDER,
    S_FIND_BELOW,
    /* objects and settings (index_objects.c) */
    S_OBJ_PUT,
    S_OBJ_GET,
    S_OBJ_TOUCH,
    S_OBJ_PIN,
    S_OBJ_DELETE,
    S_OBJ_TOTALS,
    S_LOCAL_USAGE,
    /* scopes (index_scope.c) */
    S_SCOPE_ADD,
    S_SCOPE_HAS,
    S_OBJ_LRU,
    S_OBJ_ALL,
    S_SETTING_GET,
    S_SETTING_SET,
    /* reports (index_stats.c) */
    S_USE_OBJECTS,
    S_USE_STALE,
    S_LARGEST,
    S_PINNED,
    /* upstream removals (index_removed.c) */
    S_RM_MARK,
    S_RM_UNMARK,
    S_RM_GET,
    S_RM_LIST,
    S_RM_COUNT,
    S_USE_REMOVED,
    /* partial objects (index_partial.c) */
    S_PART_SAVE,
    S_PART_GET,
    S_PART_DELETE,
    S_PART_TOTALS,
    S_PART_LIST,
    S_COUNT
};

struct index {
    sqlite3 *db;
    sqlite3_stmt *st[S_COUNT];
};

/* The statement, reset and unbound, ready for binding. */
sqlite3_stmt *index__stmt(struct index *ix, enum index_stmt which);
/* Resets s after use; returns rc mapped to 0/-errno (SQLITE_ROW and DONE are 0). */
int index__done(sqlite3_stmt *s, int rc);
char *index__col_dup(sqlite3_stmt *s, int i);

#endif

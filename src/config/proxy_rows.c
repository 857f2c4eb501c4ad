/*
 * proxy_rows: the proxies table's rows, from the field table
 * (include/upstreamfs/proxy_fields.h): the column list of every statement,
 * binding a proxy to one, reading one back, and adding the column of a row
 * that an older state dir's table lacks. configdb_proxy.c runs the statements;
 * this file knows only how a struct proxy maps onto a row.
 */
#include "proxy_rows.h"
#include "upstreamfs/log.h"
#include "upstreamfs/proxy_fields.h"
#include "upstreamfs/state.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What validation derives from an ECR url, stored after the table's columns. */
#define ECR_COLUMNS  "ecr_host, ecr_region, ecr_account, ecr_alias, ecr_repository, ecr_public"
#define ECR_NCOLUMNS 6

static int bind_text(sqlite3_stmt *s, int i, const char *v)
{
    return v ? sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(s, i);
}

static char *column_dup(sqlite3_stmt *s, int i)
{
    const unsigned char *v = sqlite3_column_text(s, i);
    return v ? strdup((const char *)v) : NULL;
}

/*
 * The proxies table's SQL, from the field table: "SELECT cols FROM proxies "
 * plus tail (what == 'S'), "INSERT ..." ('I') or "UPDATE ... WHERE key = ?1"
 * ('U'). The columns are the table's stored rows in its order, then the ECR
 * ones; *n their count. malloc'd.
 */
static char *proxy_sql(char what, const char *tail, int *n)
{
    char cols[1024] = "", params[512] = "";
    size_t oc = 0, op = 0;
    int k = 0;
    for (size_t i = 0; i < proxy_fields_count; i++) {
        const char *c = proxy_field_column(&proxy_fields[i]);
        if (!c)
            continue;
        k++;
        oc += (size_t)snprintf(cols + oc, sizeof(cols) - oc, "%s, ", c);
    }
    snprintf(cols + oc, sizeof(cols) - oc, "%s", ECR_COLUMNS);
    k += ECR_NCOLUMNS;
    for (int i = 1; i <= k; i++)
        op += (size_t)snprintf(params + op, sizeof(params) - op, "%s?%d", i > 1 ? ", " : "", i);
    *n = k;
    char *sql = NULL;
    int rc = what == 'S' ? asprintf(&sql, "SELECT %s FROM proxies %s", cols, tail)
             : what == 'I'
                 ? asprintf(&sql, "INSERT INTO proxies (%s) VALUES (%s)", cols, params)
                 : asprintf(&sql, "UPDATE proxies SET (%s) = (%s) WHERE key = ?1", cols, params);
    return rc < 0 ? NULL : sql;
}

/* The column definition ALTER TABLE gives a stored row that the table lacks. */
static char *column_def(const struct proxy_field *f)
{
    char *def = NULL;
    const char *col = proxy_field_column(f);
    int rc;
    switch (f->kind) {
    case FIELD_BOOL:
    case FIELD_SECONDS:
    case FIELD_MILLIS:
    case FIELD_SIZE:
        rc = asprintf(&def, "%s INTEGER NOT NULL DEFAULT %lld", col, f->def);
        break;
    case FIELD_LIST:
        rc = asprintf(&def, "%s TEXT NOT NULL DEFAULT '[]'", col);
        break;
    default:
        rc = asprintf(&def, "%s TEXT", col);
        break;
    }
    return rc < 0 ? NULL : def;
}

/*
 * Adds the columns of rows that the proxies table lacks (a state dir made
 * before a row was added), with the row's default: so a new field is a row
 * in the table and nothing in src/state/schema.c. Another process adding
 * the same column at the same time is no error (the caller prepares again).
 */
static void add_missing_columns(sqlite3 *db)
{
    for (size_t i = 0; i < proxy_fields_count; i++) {
        const char *col = proxy_field_column(&proxy_fields[i]);
        sqlite3_stmt *s = NULL;
        bool have = false;
        if (!col || sqlite3_prepare_v2(db,
                                       "SELECT 1 FROM pragma_table_info('proxies') "
                                       "WHERE name = ?1",
                                       -1, &s, NULL) != SQLITE_OK) {
            sqlite3_finalize(s);
            continue;
        }
        sqlite3_bind_text(s, 1, col, -1, SQLITE_STATIC);
        have = sqlite3_step(s) == SQLITE_ROW;
        sqlite3_finalize(s);
        char *def = have ? NULL : column_def(&proxy_fields[i]), *sql = NULL;
        if (def && asprintf(&sql, "ALTER TABLE proxies ADD COLUMN %s", def) >= 0) {
            if (sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK)
                log_info("configdb: added column %s to proxies", col);
            free(sql);
        }
        free(def);
    }
}

int proxy_rows_prepare(sqlite3 *db, char what, const char *tail, sqlite3_stmt **s)
{
    int n;
    char *sql = proxy_sql(what, tail, &n);
    if (!sql)
        return -ENOMEM;
    /* A column missing is the one failure expected here: add it and prepare again. */
    int rc = sqlite3_prepare_v2(db, sql, -1, s, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(*s);
        *s = NULL;
        add_missing_columns(db);
        if ((rc = sqlite3_prepare_v2(db, sql, -1, s, NULL)) != SQLITE_OK)
            log_error("configdb: %s: %s", sql, sqlite3_errmsg(db));
    }
    free(sql);
    return rc == SQLITE_OK ? 0 : state_sqlite_errno(rc);
}

/* Binds one row's value of p at parameter i. */
static int bind_field(sqlite3_stmt *s, int i, const struct proxy_field *f, const struct proxy *p)
{
    const void *at = (const char *)p + f->offset;
    switch (f->kind) {
    case FIELD_STRING:
        return bind_text(s, i, f->flags & FIELD_IDENTITY ? p->key : *(char *const *)at);
    case FIELD_PATH:
    case FIELD_URL:
    case FIELD_ENDPOINT:
    case FIELD_SECRET:
        return bind_text(s, i, *(char *const *)at);
    case FIELD_ENUM: {
        int v = *(const int *)at;
        bool named = proxy_field_applies(f, p->type) && v >= 0 && v < f->nnames && f->names[v];
        return bind_text(s, i, named ? f->names[v] : NULL);
    }
    case FIELD_BOOL:
        return sqlite3_bind_int(s, i, *(const bool *)at);
    case FIELD_SECONDS:
    case FIELD_MILLIS:
        return sqlite3_bind_int64(s, i, *(const long *)at);
    case FIELD_SIZE:
        return sqlite3_bind_int64(s, i, *(const int64_t *)at);
    case FIELD_PEM: /* never a column (db ""): a file in STATEDIR/tls (configdb.c) */
        break;
    case FIELD_LIST: {
        json_t *j = config_strv_to_json(*(char **const *)at);
        char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (!text)
            return SQLITE_NOMEM;
        return sqlite3_bind_text(s, i, text, -1, free);
    }
    }
    return SQLITE_MISUSE;
}

/* Binds p to ?1..?n in proxy_sql's column order. */
int proxy_rows_bind(sqlite3_stmt *s, const struct proxy *p)
{
    int i = 1;
    for (size_t k = 0; k < proxy_fields_count; k++) {
        if (!proxy_field_column(&proxy_fields[k]))
            continue;
        if (bind_field(s, i++, &proxy_fields[k], p) != SQLITE_OK)
            return -ENOMEM;
    }
    bind_text(s, i++, p->ecr.host);
    bind_text(s, i++, p->ecr.region);
    bind_text(s, i++, p->ecr.account);
    bind_text(s, i++, p->ecr.alias);
    bind_text(s, i++, p->ecr.repository);
    sqlite3_bind_int(s, i, p->ecr.is_public);
    return 0;
}

static int column_strv(sqlite3_stmt *s, int i, char ***out)
{
    const char *text = (const char *)sqlite3_column_text(s, i);
    json_t *arr = text ? json_loads(text, 0, NULL) : NULL;
    int rc = arr ? config_strv_from_json("list", arr, out, NULL) : -EIO;
    json_decref(arr);
    return rc == -ENOMEM ? rc : rc < 0 ? -EIO : 0;
}

/* Reads column i into one row's place in p. Stored names that do not parse are -EIO. */
static int column_field(sqlite3_stmt *s, int i, const struct proxy_field *f, struct proxy *p)
{
    void *at = (char *)p + f->offset;
    bool null = sqlite3_column_type(s, i) == SQLITE_NULL;
    int v;
    switch (f->kind) {
    case FIELD_STRING:
    case FIELD_PATH:
    case FIELD_URL:
    case FIELD_ENDPOINT:
    case FIELD_SECRET:
        return null || (*(char **)at = column_dup(s, i)) ? 0 : -ENOMEM;
    case FIELD_ENUM:
        if (null) {
            *(int *)at = 0;
            return 0;
        }
        if (config_enum_parse(f->name, f->names, f->nnames, (const char *)sqlite3_column_text(s, i),
                              &v, NULL) < 0)
            return -EIO;
        *(int *)at = v;
        return 0;
    case FIELD_BOOL:
        *(bool *)at = sqlite3_column_int(s, i) != 0;
        return 0;
    case FIELD_SECONDS:
    case FIELD_MILLIS:
        *(long *)at = (long)sqlite3_column_int64(s, i);
        return 0;
    case FIELD_SIZE:
        *(int64_t *)at = (int64_t)sqlite3_column_int64(s, i);
        return 0;
    case FIELD_LIST:
        return column_strv(s, i, (char ***)at);
    case FIELD_PEM: /* never a column */
        break;
    }
    return -EIO;
}

/* Fills *p from a row of proxy_rows_prepare('S'): key and type first, then the rest by the table.
 */
int proxy_rows_read(sqlite3_stmt *s, struct proxy *p)
{
    enum proxy_type type;
    int rc = config_type_lookup((const char *)sqlite3_column_text(s, 1), &type);

    if (rc < 0)
        return -EIO;
    config_proxy_init(p, (const char *)sqlite3_column_text(s, 0), type);
    int i = 0;
    for (size_t k = 0; k < proxy_fields_count; k++) {
        const struct proxy_field *f = &proxy_fields[k];
        if (!proxy_field_column(f))
            continue;
        if (!(f->flags & FIELD_IDENTITY) && (rc = column_field(s, i, f, p)) < 0)
            return rc;
        i++;
    }
    struct {
        char **dst;
        int col;
    } ecr[] = {
        {&p->ecr.host, i},      {&p->ecr.region, i + 1},     {&p->ecr.account, i + 2},
        {&p->ecr.alias, i + 3}, {&p->ecr.repository, i + 4},
    };
    for (size_t k = 0; k < sizeof(ecr) / sizeof(ecr[0]); k++) {
        if (sqlite3_column_type(s, ecr[k].col) != SQLITE_NULL &&
            !(*ecr[k].dst = column_dup(s, ecr[k].col)))
            return -ENOMEM;
    }
    p->ecr.is_public = sqlite3_column_int(s, i + 5) != 0;
    return 0;
}

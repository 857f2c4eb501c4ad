/*
 * proxy_fields: the one table of a proxy's settings.
 *
 * Each row names a field once: its JSON member and database column, its
 * command-line option, its kind (which fixes how it is parsed, checked,
 * printed and stored), the proxy types it applies to, its default, its
 * limit and where it lives in struct proxy. Everything that lists proxy
 * fields is derived from the table:
 *  - config_proxy_to_json and config_proxy_apply_json (config.c), so the
 *    JSON schema, the unknown-field error and the type errors come from it;
 *  - the per-field part of config_proxy_validate (applies-to, text, limits);
 *  - the SQL columns configdb reads and writes (configdb.c);
 *  - the options of "proxy create|update", their --help lines, and "proxy
 *    show" (cli_proxy.c).
 * Rules that join fields (auth and its key/secret, source and url, the ECR
 * URL forms, the client certificate pair) stay explicit code in
 * config_proxy_validate.
 *
 * Adding a field is adding a member to struct proxy and one row here: a
 * stored row's column is added to an existing state dir's proxies table
 * when configdb first finds it missing (configdb.c, add_missing_columns).
 */
#ifndef UPSTREAMFS_PROXY_FIELDS_H
#define UPSTREAMFS_PROXY_FIELDS_H

#include "upstreamfs/config.h"

#include <stddef.h>
#include <stdint.h>

#define FIELD_MILLIS_MIN 100 /* the shortest deadline a FIELD_MILLIS row takes (ms) */

enum field_kind {
    FIELD_STRING,   /* text (char *); "" or null clears */
    FIELD_PATH,     /* a file name (char *): configdb makes it absolute and checks it is there */
    FIELD_URL,      /* the remote (char *): a URL treated as a directory */
    FIELD_ENDPOINT, /* an endpoint URL (char *): normalised, path kept */
    FIELD_ENUM,     /* one of names[] (int-sized enum) */
    FIELD_BOOL,     /* bool; the CLI has --NAME and --no-NAME */
    FIELD_SECONDS,  /* a duration in whole seconds (long) */
    FIELD_MILLIS,   /* a deadline in milliseconds (long), from 100 ms to max: an integer (ms) or
                       a text with ms, s or m ("500ms", "5s"); a bare number is milliseconds */
    FIELD_SIZE,     /* a byte count (int64_t); 1024-based K, M, G, T suffixes accepted */
    FIELD_LIST,     /* strings (char **, NULL-terminated); the option repeats, --no-NAME clears */
    FIELD_SECRET,   /* write-only text: read back as NAME_set (bool) only */
    FIELD_PEM,      /* write-only PEM (struct proxy_pem), a file in STATEDIR/tls/KEY/; NAME_set */
};

/* Flags of a row. */
enum {
    FIELD_IDENTITY = 1 << 0,    /* key, type: given on create, never changed */
    FIELD_FIRST = 1 << 1,       /* applied before the others (it drops fields they may set) */
    FIELD_SECRET_FILE = 1 << 2, /* a FIELD_SECRET kept in STATEDIR/secrets, not in the struct */
    FIELD_UPDATE_HELP = 1 << 3, /* --no-NAME is documented as an update option */
    FIELD_DESTINATION = 1 << 4, /* where the proxy connects: a stored secret must be given again */
    FIELD_LOCAL = 1 << 5,       /* a local file name: the CLI takes it, the HTTP API refuses it */
    FIELD_DURATION = 1 << 6,    /* a SECONDS row that also takes "12h", "7d" (parse_seconds) */
};

/* Proxy types as a bit set (FIELD_TYPES_ALL: every type). */
#define FIELD_TYPE(t)   (1u << (t))
#define FIELD_TYPES_ALL ((1u << PROXY_TYPE_COUNT) - 1)

struct proxy_field {
    const char *name;    /* JSON member, database column (unless db says otherwise), error field */
    const char *db;      /* column when it differs from name; "" when not stored in a column */
    const char *cli;     /* long option without "--"; NULL: not an option */
    const char *metavar; /* the option's value in --help (the kind's default when NULL) */
    enum field_kind kind;
    unsigned types; /* FIELD_TYPE bits of the proxy types that take it */
    unsigned flags;
    size_t offset;            /* into struct proxy (not used for FIELD_SECRET_FILE) */
    const char *const *names; /* FIELD_ENUM: names by value; NULL entries do not parse */
    int nnames;               /* FIELD_ENUM: entries in names */
    long long def;            /* default of BOOL, SECONDS, SIZE */
    long long min;            /* SECONDS/SIZE/MILLIS: smallest value */
    long long max;            /* SECONDS/SIZE/MILLIS: largest value; text: most bytes; LIST: entries */
    size_t item_max;          /* LIST: most bytes per entry */
    const char *help;         /* --help text; '\n' continues on the next line */
    const char *read_as;      /* FIELD_SECRET: the read-only member; NULL: NAME_set */
    /* LIST: the syntax of one entry, checked before the text rules; it may normalise the entry
     * in place (allow_host lower-cases). PEM: what the text must hold. -EINVAL with err. */
    int (*item_check)(const char *field, char *item, struct config_error *err);
};

/* What PEM rows hold (tls_pem.c): certificates, one certificate, a private key. */
int config_pem_check_certs(const char *field, char *pem, struct config_error *err);
int config_pem_check_cert(const char *field, char *pem, struct config_error *err);
int config_pem_check_key(const char *field, char *pem, struct config_error *err);

/* Rows in the table, at most (for arrays indexed by row). */
#define PROXY_FIELDS_MAX 48

extern const struct proxy_field proxy_fields[];
extern const size_t proxy_fields_count;

/* The row named name (JSON member or field), or NULL. */
const struct proxy_field *proxy_field_find(const char *name);

/* The member a row is read as: name, or for a FIELD_SECRET its read_as or NAME_set. */
const char *proxy_field_out_name(const struct proxy_field *f, char *buf, size_t len);

/* The FIELD_SECRET row read as member (NULL if none). */
const struct proxy_field *proxy_field_find_set(const char *member);

/* The column a row is stored in, or NULL when it has none. */
const char *proxy_field_column(const struct proxy_field *f);

/* Whether a proxy of type t takes the field. */
bool proxy_field_applies(const struct proxy_field *f, enum proxy_type t);

/* Whether p has the field set to something other than "nothing" (NULL, empty list). */
bool proxy_field_is_set(const struct proxy_field *f, const struct proxy *p);

/* The kind's word for help and messages ("URL", "SECONDS", ...), or the row's metavar. */
const char *proxy_field_metavar(const struct proxy_field *f);

/* The field's current value as JSON (new reference; null for none), for output. */
json_t *proxy_field_get_json(const struct proxy_field *f, const struct proxy *p);

/*
 * Sets the field from a JSON value (API body, or the CLI's options turned into
 * one): -EINVAL with err naming the field and the expected type. A
 * FIELD_SECRET_FILE value goes to *secret (malloc'd, wiped by the caller).
 */
int proxy_field_set_json(const struct proxy_field *f, struct proxy *p, json_t *v, char **secret,
                         struct config_error *err);

/*
 * Checks the field's own rules on a proxy of p's type (applies-to, text,
 * limits). An FIELD_ENDPOINT value is normalised into *norm (malloc'd, NULL
 * when unset) for the caller to commit.
 */
int proxy_field_check(const struct proxy_field *f, const struct proxy *p, char **norm,
                      struct config_error *err);

/* Default values of every row onto p (config_proxy_init). */
void proxy_fields_defaults(struct proxy *p);
/* Frees every heap value of the rows and sets it to NULL. */
void proxy_fields_free(struct proxy *p);
/* Deep-copies every heap value of the rows from src into dst (whose pointers are not freed). */
int proxy_fields_copy(struct proxy *dst, const struct proxy *src);

/* Parses a size: digits with an optional K, M, G or T, any case (1024-based, optional "iB"/"B"). */
/* A deadline "500ms", "5s", "1m" or "750" (milliseconds) into *out (ms); -EINVAL otherwise. */
int proxy_field_parse_millis(const char *s, long long *out);
int proxy_field_parse_size(const char *s, long long *out);
/* A duration "90", "90s", "15m", "12h", "7d" or "2w" into *out (seconds); -EINVAL otherwise. */
int proxy_field_parse_seconds(const char *s, long long *out);

/* Joins the parseable names of an enum row with sep into buf (for help and messages). */
const char *proxy_field_enum_list(const char *const *names, int n, const char *sep, char *buf,
                                  size_t len);
/* Looks s up in names: the value, or -EINVAL with "must be one of ... (got s)" on field. */
int config_enum_parse(const char *field, const char *const *names, int n, const char *s, int *out,
                      struct config_error *err);

#endif

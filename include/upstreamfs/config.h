/*
 * config: the validated model of proxies and registries.
 *
 * This module holds the rules (key syntax, URL forms, auth combinations,
 * type compatibility) and the one JSON schema that the CLI's --json output
 * and the HTTP API share. It does no I/O: persistence is configdb's job, so
 * the same validation serves the CLI now and the API later.
 *
 * Every validation failure fills a struct config_error with the field name
 * (the CLI's long option name, snake_case in JSON) and a message that states
 * the rule, and returns -EINVAL. Strings in the structs are heap-owned and
 * released with config_proxy_clear / config_registry_clear.
 */
#ifndef UPSTREAMFS_CONFIG_H
#define UPSTREAMFS_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_KEY_MAX          64
#define CONFIG_DEFAULT_META_TTL 600
#define CONFIG_DEFAULT_CONNECT_TIMEOUT_MS  5000  /* FETCH_CONNECT_TIMEOUT_S */
#define CONFIG_DEFAULT_METADATA_TIMEOUT_MS 10000 /* FETCH_META_TIMEOUT_MS */
#define CONFIG_CONNECT_TIMEOUT_MAX_MS      60000
#define CONFIG_METADATA_TIMEOUT_MAX_MS     300000
#define CONFIG_DEFAULT_NEG_TTL  300
#define CONFIG_DEFAULT_MAX_SIZE (10LL << 30) /* bytes: a body of unknown length */
#define CONFIG_MAX_SIZE_MAX     (1LL << 50)
#define CONFIG_ALLOW_HOST_MAX   64 /* entries of allow_host */
#define CONFIG_SECRET_MAX       (64 * 1024)

enum proxy_type {
    PROXY_DOCKER,
    PROXY_ECR,
    PROXY_HELM,
    PROXY_MAVEN,
    PROXY_NPM,
    PROXY_PYPI,
    PROXY_GENERIC,
    PROXY_TYPE_COUNT
};

/* --min-age-unknown: whether a version whose upstream gives no publish time is old enough. */
enum proxy_min_age_unknown { MIN_AGE_UNKNOWN_DENY, MIN_AGE_UNKNOWN_ALLOW };

enum proxy_auth { AUTH_ANONYMOUS, AUTH_ACCESS_KEY, AUTH_AWS_CHAIN };

/* docker only: where the registry is. */
enum proxy_source { SOURCE_NONE, SOURCE_DOCKERHUB, SOURCE_CUSTOM };

/*
 * What a cached version its upstream removed becomes (src/engine/removals.c): default is
 * hide for npm and pypi, keep for images (config_proxy_hides_removed).
 */
enum proxy_on_removed { ON_REMOVED_DEFAULT, ON_REMOVED_KEEP, ON_REMOVED_HIDE };

/* What an ECR url normalises to (docs/ecr.md). */
struct ecr_target {
    bool is_public;
    char *host;       /* "<acct>.dkr.ecr.<region>.amazonaws.com" or "public.ecr.aws" */
    char *region;     /* private: from host or console; public: NULL */
    char *account;    /* private: 12 digits; public console form: the account id */
    char *alias;      /* public registry form: the registry alias; NULL if unknown */
    char *repository; /* scope: the one repository the proxy serves, or NULL for all */
};

struct config_error {
    char field[32];
    char message[256];
};

/*
 * A PEM field: kept as a file in STATEDIR/tls/KEY/ (configdb.c), never in the
 * database. text is what a change gives: NULL keeps what is stored, "" removes
 * it, else the PEM to store. path is the stored file, filled when configdb
 * reads the proxy (what the fetch endpoint is pointed at).
 */
struct proxy_pem {
    char *text;
    char *path;
};

#define CONFIG_PEM_MAX (256 * 1024) /* bytes of one PEM field */

struct proxy {
    char key[CONFIG_KEY_MAX + 1];
    enum proxy_type type;
    enum proxy_source source;
    char *url; /* normalised; ends with '/'; for ecr the canonical registry URL */
    /* More URLs of the same content, tried in order after url (normalised as url; not ecr,
     * not docker --source dockerhub); NULL-terminated, may be NULL (src/engine/origins.c). */
    char **mirrors;
    enum proxy_auth auth;
    char *access_key;
    bool secret_set; /* read-only: a secret file exists */
    char *aws_endpoint;
    char *ca_file;
    char *client_cert;
    char *client_key;
    char *http_proxy;
    long metadata_ttl; /* seconds */
    long negative_ttl; /* seconds */
    long connect_timeout;  /* ms: the deadline to connect to the remote */
    long metadata_timeout; /* ms: the deadline of a metadata request (lookups, documents) */
    bool offline;
    char **include; /* NULL-terminated globs; may be NULL */
    char **exclude;
    /* Hosts learned from remote content that may be private addresses ("*.suffix" allowed). */
    char **allow_host;
    bool pass_credentials; /* credentials also go to other origins an index names */
    int64_t max_size;      /* cap on a body of unknown length, bytes */
    enum proxy_on_removed on_removed; /* a cached version its upstream removed */
    /* Package policy (include/upstreamfs/policy.h, docs/policy.md). */
    long min_age;          /* seconds: versions published less long ago are hidden */
    char **min_age_exempt; /* name globs the cooldown does not hold back */
    char **allow;          /* NAME[@RANGE]: with any, only what one matches is served */
    char **deny;           /* NAME[@RANGE]: never served (wins over allow) */
    /* Whether a version the upstream gives no publish time is old enough. */
    enum proxy_min_age_unknown min_age_unknown;
    /* TLS material given as PEM text (the API's ca_pem, client_cert_pem, client_key_pem). */
    struct proxy_pem ca_pem, client_cert_pem, client_key_pem;
    struct ecr_target ecr; /* filled by validation for type ecr */
};

struct registry {
    char name[CONFIG_KEY_MAX + 1];
    enum proxy_type type;
    char **upstreams; /* ordered proxy keys, NULL-terminated; may be NULL */
    /*
     * The package rules and cooldown the registry applies to what its upstreams serve, on top
     * of each upstream's own (docs/policy.md): the rows config_registry_policy_row names, held
     * in a proxy of the registry's name and type so src/policy reads them as a proxy's. NULL:
     * none set.
     */
    struct proxy *policy;
};

const char *config_type_name(enum proxy_type t);
const char *config_auth_name(enum proxy_auth a);
const char *config_source_name(enum proxy_source s);
/* Parse names; -EINVAL with a message in err for unknown or not-yet-supported ones. */
int config_type_parse(const char *s, enum proxy_type *out, struct config_error *err);
int config_auth_parse(const char *s, enum proxy_auth *out, struct config_error *err);
int config_source_parse(const char *s, enum proxy_source *out, struct config_error *err);

/* The key rule (syntax and reserved names; uniqueness is configdb's). */
int config_key_validate(const char *field, const char *key, struct config_error *err);

/* Whether versions the upstream removed are hidden (on_removed, or the type's default). */
bool config_proxy_hides_removed(const struct proxy *p);

/* Fills defaults (TTLs) for a new proxy of this key and type. */
void config_proxy_init(struct proxy *p, const char *key, enum proxy_type type);

/*
 * Checks every field and normalises url (and derives ecr). has_secret says
 * whether a secret will exist after the operation (new one given, or kept).
 */
int config_proxy_validate(struct proxy *p, bool has_secret, struct config_error *err);

/* Registry: key rule, type, each upstream's type compatible (proxies looked up by caller). */
int config_registry_validate(const struct registry *r, struct config_error *err);
/* Whether a proxy of type pt may be an upstream of a registry of type rt. */
bool config_registry_accepts(enum proxy_type rt, enum proxy_type pt);

/* One schema for --json and /api (docs/ARCHITECTURE.md, "Configuration model"). Never contains a secret. */
json_t *config_proxy_to_json(const struct proxy *p);
json_t *config_registry_to_json(const struct registry *r);
/* Whether member is one of the proxy settings a registry takes too (its package policy). */
bool config_registry_policy_row(const char *member);
/* The registry's policy members as stored (a new object; NULL when none is set). */
json_t *config_registry_policy_json(const struct registry *r);
/* Sets the policy members of obj (others ignored) on r, whose name and type are set. */
int config_registry_policy_apply(struct registry *r, json_t *obj, struct config_error *err);

/*
 * Applies the fields of a JSON object (API create/PUT) onto p. Unknown fields
 * are an error. *secret receives a malloc'd secret_key if one was given.
 * On create, p must be empty: key and type come from obj (both required).
 */
int config_proxy_apply_json(struct proxy *p, json_t *obj, bool is_create, char **secret,
                            struct config_error *err);

/*
 * Applies a registry object's members onto g. On create, name and type are
 * required; on update they may be given but must not change (so a GET body
 * can be PUT back). *has_upstreams says whether "upstreams" was given.
 */
int config_registry_apply_json(struct registry *g, json_t *obj, bool is_create, bool *has_upstreams,
                               struct config_error *err);

/*
 * Strips one trailing LF or CRLF in place; -EINVAL if the result is empty.
 * secret must have room for *len + 1 bytes (a NUL is written at the end).
 */
int config_secret_normalise(char *secret, size_t *len, struct config_error *err);

void config_proxy_clear(struct proxy *p);
void config_registry_clear(struct registry *r);
int config_proxy_copy(struct proxy *dst, const struct proxy *src);

void config_error_set(struct config_error *err, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Additions beyond the first draft of this header.
 */

#define CONFIG_URL_MAX        2048 /* any URL field */
#define CONFIG_GLOB_MAX       1024 /* one include/exclude pattern */
#define CONFIG_GLOBS_MAX      256  /* patterns per list */
#define CONFIG_MIRRORS_MAX    7    /* URLs after the first (url + mirrors: at most 8) */
#define CONFIG_ACCESS_KEY_MAX 256
#define CONFIG_UPSTREAMS_MAX  64 /* upstreams per registry */
#define CONFIG_TTL_MAX        2147483647L
#define CONFIG_QUOTE_MAX      96 /* buffer for config_quote */

/* Type lookup without the "not supported yet" gate, for names read back from storage. */
int config_type_lookup(const char *s, enum proxy_type *out);

/*
 * Field setters shared by the CLI and config_proxy_apply_json, so that both
 * front doors give an update the same meaning:
 *  - set_auth: an auth that takes no access key drops the stored one (the
 *    secret file follows in configdb);
 *  - set_source: a different source drops the url (the old one belonged to
 *    the old source) and the derived ecr target;
 *  - set_url: a new url drops the derived ecr target, so validation parses it
 *    (returns 0 or -ENOMEM).
 */
void config_proxy_set_auth(struct proxy *p, enum proxy_auth a);
void config_proxy_set_source(struct proxy *p, enum proxy_source s);
int config_proxy_set_url(struct proxy *p, const char *url);
/* Replaces *field with a copy of value (NULL or "" clears). 0 or -ENOMEM. */
int config_set_string(char **field, const char *value);

/*
 * Normalises a URL that is always treated as a directory: http(s) only, no
 * credentials, query or fragment, host in lower case, default port dropped,
 * path ending with '/'. *out is malloc'd.
 */
int config_url_normalise_dir(const char *field, const char *url, char **out,
                             struct config_error *err);
/* The same for an endpoint (aws_endpoint, http_proxy): the path is kept as given. */
int config_url_normalise_endpoint(const char *field, const char *url, char **out,
                                  struct config_error *err);

/*
 * Writes s into buf as a double-quoted string for an error message: control
 * and non-ASCII bytes escaped as \xNN (so a message stays one line of valid
 * UTF-8), long input cut with "...". Returns buf.
 */
const char *config_quote(char *buf, size_t n, const char *s);

/* NULL-terminated string vectors (include, exclude, upstreams). */
size_t config_strv_len(char *const *v);
int config_strv_push(char ***v, const char *s);
int config_strv_dup(char ***dst, char *const *src);
void config_strv_free(char **v);
/* JSON array of strings <-> vector; from_json: -EINVAL (err filled) on a non-string. */
json_t *config_strv_to_json(char *const *v);
int config_strv_from_json(const char *field, json_t *arr, char ***out, struct config_error *err);

#endif

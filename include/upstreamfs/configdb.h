/*
 * configdb: proxies and registries persisted in the state database, plus
 * the secret files beside it.
 *
 * Every write runs in one BEGIN IMMEDIATE transaction so concurrent CLI
 * invocations (and the API) serialise and never see a half-written object.
 * Uniqueness of a name across proxies and registries is checked inside that
 * transaction. A secret is written to STATEDIR/secrets/<key> (0600, through a
 * temp file and rename) and never stored in SQLite, whose WAL and free pages
 * would keep copies.
 *
 * Return values: 0, -EINVAL (invalid input; err filled), -EEXIST (duplicate;
 * err filled), -ENOENT (unknown; err filled), -EBUSY (in use, e.g. a proxy
 * held by registries; err names them), other negative errno on I/O failure.
 */
#ifndef UPSTREAMFS_CONFIGDB_H
#define UPSTREAMFS_CONFIGDB_H

#include "upstreamfs/config.h"
#include "upstreamfs/state.h"

/* Validates and inserts p; secret may be NULL (anonymous). */
int configdb_proxy_create(struct state *st, struct proxy *p, const char *secret,
                          struct config_error *err);
/* Validates and replaces the stored proxy of the same key; secret NULL keeps the old one. */
int configdb_proxy_update(struct state *st, struct proxy *p, const char *secret,
                          struct config_error *err);
int configdb_proxy_delete(struct state *st, const char *key, struct config_error *err);
int configdb_proxy_get(struct state *st, const char *key, struct proxy *out,
                       struct config_error *err);
/* All proxies ordered by key; free with configdb_proxy_list_free. */
int configdb_proxy_list(struct state *st, struct proxy **out, size_t *n);
void configdb_proxy_list_free(struct proxy *list, size_t n);

/* Reads the proxy's secret into a malloc'd, NUL-terminated buffer (*out NULL if none). */
int configdb_secret_read(struct state *st, const char *key, char **out);

/*
 * 0 when name is used by neither a proxy nor a registry (proxies and registries share one name space),
 * else -EEXIST with the rule's message on field. Read-only: create checks it again.
 */
int configdb_name_free(struct state *st, const char *field, const char *name,
                       struct config_error *err);

int configdb_registry_create(struct state *st, struct registry *r, struct config_error *err);
int configdb_registry_set_upstreams(struct state *st, const char *name, char **upstreams,
                                    struct config_error *err);
int configdb_registry_delete(struct state *st, const char *name, struct config_error *err);
/* Stores r's package policy (r->policy; NULL: none), validated first. */
int configdb_registry_set_policy(struct state *st, const struct registry *r,
                                 struct config_error *err);
int configdb_registry_get(struct state *st, const char *name, struct registry *out,
                          struct config_error *err);
int configdb_registry_list(struct state *st, struct registry **out, size_t *n);
void configdb_registry_list_free(struct registry *list, size_t n);

/* A number that changes whenever proxies or registries change (any process). */
int configdb_generation(struct state *st, long long *out);

#endif

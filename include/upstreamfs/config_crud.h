/*
 * config_crud: the one path by which proxies and registries are created,
 * changed and deleted. The CLI (cli_proxy.c, cli_registry.c, cli_wizard.c),
 * the HTTP API (shim/api.c) and the web page's dry run (shim/ui_api.c) all
 * call it, so one input gets one answer, field and message alike, whichever
 * door it came through.
 *
 * A change is a JSON object of fields, the API's body (the CLI turns its
 * options into one, see cli_proxy.c). Each operation is:
 *   prepare  - build the result in memory: a new object from the fields, or
 *              the stored one with the fields applied (config_*_apply_json),
 *              then validate it as a whole (config_*_validate); no I/O but
 *              reading the stored object;
 *   commit   - configdb writes it under its write lock, checking again what
 *              needs the database (name taken, upstreams exist, files
 *              readable) and storing the secret (see configdb.h).
 * The one-call forms (create, update, dry_run) do both for a caller that has
 * everything at hand; the CLI calls the two steps itself, because it checks
 * the input before it reads a secret from standard input and before it
 * creates the state dir.
 *
 * Results are configdb's: 0, -EINVAL, -EEXIST, -ENOENT, -EBUSY (err filled)
 * or another negative errno.
 */
#ifndef UPSTREAMFS_CONFIG_CRUD_H
#define UPSTREAMFS_CONFIG_CRUD_H

#include "upstreamfs/config.h"
#include "upstreamfs/configdb.h"

#include <jansson.h>

/*
 * Prepares a proxy: key NULL creates one from fields (key and type in them);
 * otherwise the stored proxy key (st needed) gets the fields. A secret_key
 * member lands in *secret (malloc'd; wipe with crud_secret_free).
 * secret_coming says the caller will supply a secret of its own at commit.
 * An update that changes where a proxy with a stored secret connects (url,
 * source, http_proxy, aws_endpoint, the TLS settings) is refused (-EINVAL)
 * unless it gives the secret again or leaves the access-key auth.
 * out is validated on success and must be cleared by the caller either way.
 */
int crud_proxy_prepare(struct state *st, const char *key, json_t *fields, bool secret_coming,
                       struct proxy *out, char **secret, struct config_error *err);
/*
 * The fields a remote caller (the HTTP API) may not give: the local file
 * names (ca_file, client_cert, client_key; rows flagged FIELD_LOCAL), which
 * the daemon would open as root. -EINVAL naming the field and its PEM
 * counterpart, the same answer whatever the value (no file-existence
 * oracle); null is accepted (it clears the field).
 */
int crud_proxy_check_remote(json_t *fields, struct config_error *err);
/* Stores a prepared proxy (create or update); secret NULL keeps (update) or has none. */
int crud_proxy_commit(struct state *st, bool create, struct proxy *p, const char *secret,
                      struct config_error *err);
/* prepare + commit. */
int crud_proxy_create(struct state *st, json_t *fields, struct proxy *out,
                      struct config_error *err);
int crud_proxy_update(struct state *st, const char *key, json_t *fields, struct proxy *out,
                      struct config_error *err);
/* For the HTTP API's dry run: crud_proxy_check_remote, prepare (create) and the name's
 * uniqueness: what a create through the API would say, writing nothing. */
int crud_proxy_dry_run(struct state *st, json_t *fields, struct proxy *out,
                       struct config_error *err);
int crud_proxy_delete(struct state *st, const char *key, struct config_error *err);

/*
 * Prepares a registry: name NULL creates one from fields (name and type
 * required); otherwise the stored registry gets them (name and type may be
 * given unchanged). *has_upstreams says whether "upstreams" was given.
 */
int crud_registry_prepare(struct state *st, const char *name, json_t *fields, struct registry *out,
                          bool *has_upstreams, struct config_error *err);
int crud_registry_create(struct state *st, json_t *fields, struct registry *out,
                         struct config_error *err);
/* "upstreams" and the policy members change a registry; *changed says whether anything was
 * written. */
int crud_registry_update(struct state *st, const char *name, json_t *fields, struct registry *out,
                         bool *changed, struct config_error *err);
int crud_registry_delete(struct state *st, const char *name, struct config_error *err);

/* Wipes and frees a secret (NULL is fine). */
void crud_secret_free(char *secret);

#endif

/*
 * api: /api/v1/proxies[/KEY] and /api/v1/registries[/NAME] (README.md; docs/ARCHITECTURE.md, "The CRUD path").
 *
 * The objects are exactly the CLI's --json objects (config_proxy_to_json,
 * config_registry_to_json), and every change goes through config_crud, the
 * path the CLI's commands take too. So the API accepts what the CLI accepts
 * and refuses what it refuses, with the same field and message; this file
 * only maps results to statuses:
 * -EINVAL 400, -ENOENT 404, -EEXIST and -EBUSY (a proxy still used by a
 * registry; the message names them) 409. A secret_key is accepted on
 * create and update and never returned (objects carry secret_set); secrets
 * are wiped from memory once configdb has written them. One exception to
 * "what the CLI accepts": the file-name fields (ca_file, client_cert,
 * client_key) are refused before anything looks at them
 * (crud_proxy_check_remote); the API takes their PEM content instead.
 *
 * One sqlite connection serves the API, under a mutex held only while the
 * request's body is already in memory, so no client I/O happens under it.
 * After a change the engine reloads at once, so the change shows in the
 * mount and on the path routes of this shim immediately.
 */
#include "shim_i.h"
#include "upstreamfs/config_crud.h"
#include "upstreamfs/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum api_kind { API_PROXIES, API_REGISTRIES };

enum MHD_Result shim__api_json(struct shim_req *r, unsigned status, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (!text)
        return shim__reply_text(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot encode the answer");
    size_t len = strlen(text);
    char *body = realloc(text, len + 2);
    if (!body) {
        free(text);
        return MHD_NO;
    }
    memcpy(body + len, "\n", 2);
    enum MHD_Result ok = shim__reply_data(r, status, "application/json", body, len + 1);
    free(body);
    return ok;
}

enum MHD_Result shim__api_error(struct shim_req *r, unsigned status, const char *field,
                                const char *message)
{
    return shim__api_json(r, status,
                          json_pack("{s:{s:s, s:s}}", "error", "field", field, "message", message));
}

/* A config/configdb result (rc < 0) as the API's error answer. */
enum MHD_Result shim__api_config_error(struct shim_req *r, int rc, const struct config_error *err)
{
    unsigned status = rc == -EINVAL                   ? MHD_HTTP_BAD_REQUEST
                      : rc == -ENOENT                 ? MHD_HTTP_NOT_FOUND
                      : rc == -EEXIST || rc == -EBUSY ? MHD_HTTP_CONFLICT
                                                      : MHD_HTTP_INTERNAL_SERVER_ERROR;
    if (err && err->field[0])
        return shim__api_error(r, status, err->field, err->message);
    if (rc == -EBUSY)
        status = MHD_HTTP_SERVICE_UNAVAILABLE; /* the database stayed locked */
    return shim__api_error(r, status, "state", strerror(-rc));
}

bool shim__api_guard(struct shim_req *r, bool needs_json, enum MHD_Result *reply)
{
    const char *ct = shim__header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (needs_json && (!ct || strncasecmp(ct, "application/json", 16) != 0 ||
                       (ct[16] && ct[16] != ';' && ct[16] != ' '))) {
        *reply = shim__api_error(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "content_type",
                                 "must be application/json");
        return false;
    }
    /* The Origin rule is the shim's, checked for every route first (src/shim/access.c). */
    return true;
}

/* Parses the request body as one JSON object; replies (and returns NULL) if it is not one. */
json_t *shim__api_body(struct shim_req *r, enum MHD_Result *reply)
{
    json_error_t je;
    char msg[300];
    json_t *j =
        json_loadb(r->body.data ? r->body.data : "", r->body.len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        snprintf(msg, sizeof(msg), "is not valid JSON: %s (line %d, column %d)", je.text, je.line,
                 je.column);
        *reply = shim__api_error(r, MHD_HTTP_BAD_REQUEST, "body", msg);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        *reply = shim__api_error(r, MHD_HTTP_BAD_REQUEST, "body", "must be a JSON object");
        return NULL;
    }
    return j;
}

static void changed(struct shim_req *r, const char *what)
{
    int rc = engine_reload(r->s->e);
    if (rc < 0)
        log_warn("shim: api: %s saved, but the engine did not reload: %s", what, strerror(-rc));
}

/* ---- proxies ---------------------------------------------------------------------------- */

/* The proxy's object with its health from the engine's memory (null before the engine knows it). */
static json_t *proxy_json(struct shim_req *r, const struct proxy *p)
{
    json_t *j = config_proxy_to_json(p);
    struct health_snapshot h;
    json_t *hj = engine_proxy_health(r->s->e, p->key, &h) == 0 ? health_object(&h) : NULL;
    if (j)
        json_object_set_new(j, "health", hj ? hj : json_null());
    else
        json_decref(hj);
    return j;
}

static enum MHD_Result proxy_reply(struct shim_req *r, unsigned status, const char *key)
{
    struct config_error err = {0};
    struct proxy p = {0};
    int rc = configdb_proxy_get(r->s->st, key, &p, &err);
    enum MHD_Result ok = rc < 0 ? shim__api_config_error(r, rc, &err)
                                : shim__api_json(r, status, proxy_json(r, &p));
    config_proxy_clear(&p);
    return ok;
}

static enum MHD_Result proxies_list(struct shim_req *r)
{
    struct proxy *list = NULL;
    size_t n = 0;
    int rc = configdb_proxy_list(r->s->st, &list, &n);
    if (rc < 0)
        return shim__api_config_error(r, rc, NULL);
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        if (json_array_append_new(arr, proxy_json(r, &list[i])) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    configdb_proxy_list_free(list, n);
    return shim__api_json(r, MHD_HTTP_OK, arr);
}

static enum MHD_Result proxy_create(struct shim_req *r)
{
    struct config_error err = {0};
    struct proxy p = {0};
    enum MHD_Result ok;
    json_t *obj = shim__api_body(r, &ok);
    if (!obj)
        return ok;
    int rc = crud_proxy_check_remote(obj, &err);
    if (rc == 0)
        rc = crud_proxy_create(r->s->st, obj, &p, &err);
    json_decref(obj);
    if (rc < 0) {
        ok = shim__api_config_error(r, rc, &err);
    } else {
        log_info("shim: api: created proxy %s (%s)", p.key, config_type_name(p.type));
        changed(r, "proxy");
        ok = proxy_reply(r, MHD_HTTP_CREATED, p.key);
    }
    config_proxy_clear(&p);
    return ok;
}

static enum MHD_Result proxy_update(struct shim_req *r, const char *key)
{
    struct config_error err = {0};
    struct proxy p = {0};
    enum MHD_Result ok;
    json_t *obj = shim__api_body(r, &ok);
    if (!obj)
        return ok;
    int rc = crud_proxy_check_remote(obj, &err);
    if (rc == 0)
        rc = crud_proxy_update(r->s->st, key, obj, &p, &err);
    json_decref(obj);
    if (rc < 0) {
        ok = shim__api_config_error(r, rc, &err);
    } else {
        log_info("shim: api: updated proxy %s", p.key);
        changed(r, "proxy");
        ok = proxy_reply(r, MHD_HTTP_OK, p.key);
    }
    config_proxy_clear(&p);
    return ok;
}

static enum MHD_Result proxy_delete(struct shim_req *r, const char *key)
{
    struct config_error err = {0};
    int rc = crud_proxy_delete(r->s->st, key, &err);
    if (rc < 0)
        return shim__api_config_error(r, rc, &err);
    log_info("shim: api: deleted proxy %s", key);
    changed(r, "proxy");
    return shim__reply(r, MHD_HTTP_NO_CONTENT,
                       MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT));
}

/* ---- registries ------------------------------------------------------------------------- */

static enum MHD_Result registry_reply(struct shim_req *r, unsigned status, const char *name)
{
    struct config_error err = {0};
    struct registry g = {0};
    int rc = configdb_registry_get(r->s->st, name, &g, &err);
    enum MHD_Result ok = rc < 0 ? shim__api_config_error(r, rc, &err)
                                : shim__api_json(r, status, config_registry_to_json(&g));
    config_registry_clear(&g);
    return ok;
}

static enum MHD_Result registries_list(struct shim_req *r)
{
    struct registry *list = NULL;
    size_t n = 0;
    int rc = configdb_registry_list(r->s->st, &list, &n);
    if (rc < 0)
        return shim__api_config_error(r, rc, NULL);
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        if (json_array_append_new(arr, config_registry_to_json(&list[i])) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    configdb_registry_list_free(list, n);
    return shim__api_json(r, MHD_HTTP_OK, arr);
}

static enum MHD_Result registry_create(struct shim_req *r)
{
    struct config_error err = {0};
    struct registry g = {0};
    enum MHD_Result ok;
    json_t *obj = shim__api_body(r, &ok);
    if (!obj)
        return ok;
    int rc = crud_registry_create(r->s->st, obj, &g, &err);
    json_decref(obj);
    if (rc < 0) {
        ok = shim__api_config_error(r, rc, &err);
    } else {
        log_info("shim: api: created registry %s (%s)", g.name, config_type_name(g.type));
        changed(r, "registry");
        ok = registry_reply(r, MHD_HTTP_CREATED, g.name);
    }
    config_registry_clear(&g);
    return ok;
}

static enum MHD_Result registry_update(struct shim_req *r, const char *name)
{
    struct config_error err = {0};
    struct registry g = {0};
    bool has_ups = false;
    enum MHD_Result ok;
    json_t *obj = shim__api_body(r, &ok);
    if (!obj)
        return ok;
    int rc = crud_registry_update(r->s->st, name, obj, &g, &has_ups, &err);
    json_decref(obj);
    if (rc < 0) {
        ok = shim__api_config_error(r, rc, &err);
    } else {
        if (has_ups) {
            log_info("shim: api: updated registry %s", g.name);
            changed(r, "registry");
        }
        ok = registry_reply(r, MHD_HTTP_OK, g.name);
    }
    config_registry_clear(&g);
    return ok;
}

static enum MHD_Result registry_delete(struct shim_req *r, const char *name)
{
    struct config_error err = {0};
    int rc = crud_registry_delete(r->s->st, name, &err);
    if (rc < 0)
        return shim__api_config_error(r, rc, &err);
    log_info("shim: api: deleted registry %s", name);
    changed(r, "registry");
    return shim__reply(r, MHD_HTTP_NO_CONTENT,
                       MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT));
}

/* ---- routing ---------------------------------------------------------------------------- */

static enum MHD_Result collection(struct shim_req *r, enum api_kind kind)
{
    bool get = !strcmp(r->method, "GET") || r->head, post = !strcmp(r->method, "POST");
    enum MHD_Result refused;
    if (post && !shim__api_guard(r, true, &refused))
        return refused;
    if (get)
        return kind == API_PROXIES ? proxies_list(r) : registries_list(r);
    if (post)
        return kind == API_PROXIES ? proxy_create(r) : registry_create(r);
    return shim__reply_method(r, "GET, HEAD, POST");
}

static enum MHD_Result member(struct shim_req *r, enum api_kind kind, const char *id)
{
    struct config_error err = {0};
    /* The CLI checks a KEY or NAME argument against the key rule before anything else. */
    if (config_key_validate(kind == API_PROXIES ? "key" : "name", id, &err) < 0)
        return shim__api_config_error(r, -EINVAL, &err);
    if (!strcmp(r->method, "GET") || r->head)
        return kind == API_PROXIES ? proxy_reply(r, MHD_HTTP_OK, id)
                                   : registry_reply(r, MHD_HTTP_OK, id);
    enum MHD_Result refused;
    if (!shim__api_guard(r, !strcmp(r->method, "PUT"), &refused))
        return refused;
    if (!strcmp(r->method, "PUT"))
        return kind == API_PROXIES ? proxy_update(r, id) : registry_update(r, id);
    if (!strcmp(r->method, "DELETE"))
        return kind == API_PROXIES ? proxy_delete(r, id) : registry_delete(r, id);
    return shim__reply_method(r, "GET, HEAD, PUT, DELETE");
}

enum MHD_Result shim__api(struct shim_req *r)
{
    char parts[4][SHIM_COMPONENT_MAX + 1];
    size_t n = 0;
    const char *p = r->path;
    /* "api/v1/<collection>[/<id>]": split into at most four components. */
    while (*p && n < 4) {
        size_t len = strcspn(p, "/");
        memcpy(parts[n], p, len);
        parts[n++][len] = '\0';
        p += len + (p[len] == '/');
    }
    enum api_kind kind;
    if (*p || n < 3 || strcmp(parts[1], "v1") != 0)
        return shim__api_error(r, MHD_HTTP_NOT_FOUND, "path",
                               "no such API route (see /api/v1/proxies and /api/v1/registries)");
    if (!strcmp(parts[2], "proxies"))
        kind = API_PROXIES;
    else if (!strcmp(parts[2], "registries"))
        kind = API_REGISTRIES;
    else
        return shim__api_error(r, MHD_HTTP_NOT_FOUND, "path",
                               "no such API route (see /api/v1/proxies and /api/v1/registries)");
    pthread_mutex_lock(&r->s->st_mu);
    enum MHD_Result ok = n == 3 ? collection(r, kind) : member(r, kind, parts[3]);
    pthread_mutex_unlock(&r->s->st_mu);
    return ok;
}

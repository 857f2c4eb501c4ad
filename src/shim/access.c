/*
 * access: who may do what, checked by shim.c on the first call for a
 * request, before any handler or body (docs/SECURITY.md has the rules and
 * the tests that prove them).
 *
 *   Host      an IP literal, localhost or a --public-name, else 421 (a page
 *             whose name was made to resolve here, DNS rebinding, still sends
 *             its own name); /healthz answers any Host (probes use the pod IP)
 *   Origin    a state-changing request that names one must come from
 *             http(s)://<its own Host>, else 403
 *   /api/v1   an admin: the admin token as "Authorization: Bearer" or an
 *             htpasswd user named by --admin; 401 (saying how to get the
 *             token) or 403 for a user who is no admin
 *   the rest  with --htpasswd any user (or the token), else anyone
 *
 * The API and its page additions (api.c, ui_api.c) therefore never see a
 * request that did not pass here.
 */
#include "shim_i.h"
#include "upstreamfs/log.h"
#include "upstreamfs/secret.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Who sent a request: nobody known, an htpasswd user, or an admin. */
enum who { WHO_NOBODY, WHO_USER, WHO_ADMIN };

/*
 * "Authorization: Bearer TOKEN" with the admin token is an admin; Basic
 * credentials of the htpasswd file are a user, an admin when --admin names
 * them. user receives the name of a Basic user (for the 403's message).
 */
static enum who who_is(struct shim_req *r, char *user_out, size_t user_len)
{
    const char *h = shim__header(r, MHD_HTTP_HEADER_AUTHORIZATION);
    if (h && !strncasecmp(h, "Bearer ", 7)) {
        const char *t = h + 7;
        while (*t == ' ')
            t++;
        size_t n = strlen(t);
        while (n && t[n - 1] == ' ')
            n--;
        return shim_admin_token_equal(r->s->admin_token, t, n) ? WHO_ADMIN : WHO_NOBODY;
    }
    if (!r->s->auth)
        return WHO_NOBODY;
    char *pass = NULL;
    char *user = MHD_basic_auth_get_username_password(r->c, &pass);
    enum who w = WHO_NOBODY;
    if (user && pass && shim_htpasswd_check(r->s->auth, user, pass)) {
        w = WHO_USER;
        for (size_t i = 0; i < r->s->n_admins; i++)
            if (!strcmp(user, r->s->admins[i]))
                w = WHO_ADMIN;
        snprintf(user_out, user_len, "%s", user);
    }
    if (pass) {
        secret_wipe(pass, strlen(pass));
        MHD_free(pass);
    }
    if (user)
        MHD_free(user);
    return w;
}

/* A reply made here and queued by MHD itself (the Basic challenge) gets the common headers too. */
static enum MHD_Result queue_challenge(struct shim_req *r, struct MHD_Response *resp, size_t len)
{
    enum MHD_Result q;
    shim__common_headers(r, resp);
    if (r->s->auth) {
        q = MHD_queue_basic_auth_fail_response(r->c, "upstreamfs", resp);
    } else {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"upstreamfs admin API\"");
        q = MHD_queue_response(r->c, MHD_HTTP_UNAUTHORIZED, resp);
    }
    MHD_destroy_response(resp);
    if (q == MHD_YES) {
        r->replied = true;
        r->status = MHD_HTTP_UNAUTHORIZED;
        r->bytes = r->head ? 0 : len;
    }
    return q;
}

/*
 * 401: with --htpasswd the Basic challenge (WWW-Authenticate: Basic
 * realm="upstreamfs"), else a Bearer one (only /api/v1 asks then). Under
 * /v2 the body is the registry's (JSON UNAUTHORIZED, the API version
 * header); under /api/v1 the API's error, saying how to get the token.
 */
static enum MHD_Result reply_unauthorised(struct shim_req *r)
{
    static const char text[] = "authentication required\n";
    static const char v2json[] = "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":"
                                 "\"authentication required\",\"detail\":null}]}";
    char msg[PATH_MAX + 1024], q[CONFIG_QUOTE_MAX * 4];
    char *body = NULL;
    /* Checked by then: an IP literal, localhost or a --public-name, at most 255 bytes. */
    const char *host = shim__header(r, MHD_HTTP_HEADER_HOST);
    const char *type = "text/plain; charset=utf-8";
    if (r->route == SHIM_ROUTE_API) {
        snprintf(msg, sizeof(msg),
                 "the admin API needs the admin token: send \"Authorization: Bearer TOKEN\" "
                 "with the token in %s (readable by its owner only), or open the web page at "
                 "the address serve and mount print, %s://%s/ui/#token=TOKEN%s",
                 config_quote(q, sizeof(q), r->s->token_path), r->s->tls_cert ? "https" : "http",
                 host, r->s->n_admins ? "; or send the Basic credentials of an --admin user" : "");
        json_t *j = json_pack("{s:{s:s,s:s}}", "error", "field", "authorization", "message", msg);
        body = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (!body)
            return MHD_NO;
        type = "application/json";
    }
    const char *b = body ? body : r->route == SHIM_ROUTE_V2 ? v2json : text;
    size_t len = strlen(b);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)b, MHD_RESPMEM_MUST_COPY);
    free(body);
    if (!resp)
        return MHD_NO;
    if (r->route == SHIM_ROUTE_V2) {
        type = "application/json";
        MHD_add_response_header(resp, "Docker-Distribution-Api-Version", "registry/2.0");
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    return queue_challenge(r, resp, len);
}

/* A state-changing request that names an Origin must come from this server's. */
static bool origin_ok(struct shim_req *r)
{
    char want[300];
    if (!strcmp(r->method, "GET") || r->head || !strcmp(r->method, "OPTIONS"))
        return true;
    const char *origin = shim__header(r, "Origin");
    if (!origin)
        return true; /* not a browser's cross-site request: those always name their origin */
    const char *host = shim__header(r, MHD_HTTP_HEADER_HOST);
    snprintf(want, sizeof(want), "%s://%s", r->s->tls_cert ? "https" : "http", host ? host : "");
    return strcasecmp(origin, want) == 0;
}

/*
 * The Host rule, the Origin rule, then the credentials each route needs:
 * /api/v1 an admin; with --htpasswd every other route a user; without, none.
 * True when the request may go on; else *reply holds the answer.
 */
bool shim__admitted(struct shim_req *r, enum MHD_Result *reply)
{
    char q[CONFIG_QUOTE_MAX], user[256] = "";
    const char *host = shim__header(r, MHD_HTTP_HEADER_HOST);
    if (!shim_http_host_allowed(host, (const char *const *)r->s->public_names,
                                r->s->n_public_names)) {
        *reply = shim__reply_text(r, MHD_HTTP_MISDIRECTED_REQUEST,
                                  "misdirected request: this server answers Host names that are "
                                  "IP addresses, localhost or given with --public-name (got %s)",
                                  host ? config_quote(q, sizeof(q), host) : "none");
        return false;
    }
    if (!origin_ok(r)) {
        const char *origin = shim__header(r, "Origin");
        char msg[200];
        snprintf(msg, sizeof(msg), "cross-origin requests are refused (got %s)",
                 config_quote(q, sizeof(q), origin));
        *reply = r->route == SHIM_ROUTE_API ? shim__api_error(r, MHD_HTTP_FORBIDDEN, "origin", msg)
                                            : shim__reply_text(r, MHD_HTTP_FORBIDDEN, "%s", msg);
        return false;
    }
    enum who w = who_is(r, user, sizeof(user));
    if (r->route == SHIM_ROUTE_API && w != WHO_ADMIN) {
        char msg[400];
        if (w == WHO_NOBODY) {
            *reply = reply_unauthorised(r);
            return false;
        }
        snprintf(msg, sizeof(msg),
                 "user %s may pull but not use the admin API: it needs a user named by "
                 "--admin, or the admin token",
                 config_quote(q, sizeof(q), user));
        *reply = shim__api_error(r, MHD_HTTP_FORBIDDEN, "authorization", msg);
        return false;
    }
    if (r->s->auth && w == WHO_NOBODY) {
        *reply = reply_unauthorised(r);
        return false;
    }
    return true;
}

/*
 * ui: the web page (docs/web-ui.md), "GET /" and the pages below /ui/.
 *
 *   /, /ui/                proxies and registries with their state and cache use, and links
 *                          to browse each tree (rendered here, so they work without script)
 *   /ui/proxies/new        the guided create-proxy form
 *   /ui/registries/new     create a registry and order its upstreams
 *   /ui/registries/NAME/order   reorder an existing registry's upstreams
 *   /ui/cache              hit rate, bytes, largest artifacts, pin and evict
 *   /ui/app.js, style.css  the one script and stylesheet (ui_assets.h)
 *
 * The page is a thin client of the API: every change goes through
 * /api/v1/proxies and /api/v1/registries, so it is checked by the same
 * config and configdb rules as the CLI, and its errors are the CLI's. What
 * the page needs to know of those rules up front (which types exist and
 * which are not supported yet, which proxy types a registry type takes, the
 * ECR URL forms) is asked of the config module when the page is served and
 * handed over as a JSON block, so it cannot drift from the code.
 *
 * Pages and assets go out with a Content-Security-Policy that allows only
 * this origin's script and style and no inline code, no framing, and no
 * referrer (and so no inline script: everything is in /ui/app.js). The
 * pages themselves hold nothing secret and follow the pull rule; what they
 * show comes from /api/v1, which needs an admin (access.c): the script
 * sends the admin token it was opened with (/ui/#token=TOKEN, kept in the
 * tab's sessionStorage) as a Bearer header, or the browser sends an --admin
 * user's Basic credentials. "/ui/" serves the overview, so the token URL
 * opens it directly.
 */
#include "ui.h"
#include "ui_assets.h"
#include "upstreamfs/config.h"
#include "upstreamfs/defaults.h"
#include "upstreamfs/hash.h"
#include "upstreamfs/index.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UI_PAGE_MAX (4 * 1024 * 1024) /* one rendered page, browse list included */

static const char csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; "
                          "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
                          "form-action 'self'; frame-ancestors 'none'";

/*
 * How the page names each type, and what its URL field is called and asks for; the list of
 * types and their rules come from config (page_config), so a new type shows once it has a row.
 */
static const struct {
    const char *label, *note, *url_label, *url_hint;
} type_text[PROXY_TYPE_COUNT] = {
    [PROXY_DOCKER] = {"Docker", "Docker Hub or any Docker/OCI registry", "Registry URL",
                      "The registry's base URL, e.g. https://registry.example.com/ (the /v2/ API "
                      "is found below it)."},
    [PROXY_ECR] = {"Amazon ECR", "A private or public ECR registry", "ECR URL", NULL},
    [PROXY_HELM] = {"Helm", "A chart repository (index.yaml)", "Chart repository URL",
                    "The directory that holds index.yaml, e.g. https://charts.example.com/stable/"},
    [PROXY_MAVEN] = {"Maven", "A Maven repository", "Maven repository URL",
                     "The repository root, e.g. https://repo.example.com/maven2/"},
    [PROXY_NPM] = {"npm", "An npm registry", "Registry URL", "The npm registry's base URL."},
    [PROXY_PYPI] = {"PyPI", "A Python package index", "Index URL", "The simple index's base URL."},
    [PROXY_GENERIC] = {"Generic", "Any HTTP file tree", "Base URL",
                       "Any HTTP or HTTPS directory; paths below it become paths in the proxy."},
};

enum ui_page { PAGE_OVERVIEW, PAGE_PROXY, PAGE_REGISTRY, PAGE_CACHE };

static const struct {
    const char *name;  /* body[data-page], which the script dispatches on */
    const char *title; /* after "upstreamfs · " */
    const char *nav;   /* the nav link marked current */
} pages[] = {
    [PAGE_OVERVIEW] = {"overview", "Proxies and registries", "/"},
    [PAGE_PROXY] = {"proxy", "Create proxy", "/ui/proxies/new"},
    [PAGE_REGISTRY] = {"registry", "Registry", "/ui/registries/new"},
    [PAGE_CACHE] = {"cache", "Cache", "/ui/cache"},
};

static const struct {
    const char *href, *label;
} nav[] = {
    {"/", "Proxies &amp; registries"},
    {"/ui/proxies/new", "Create proxy"},
    {"/ui/registries/new", "Create registry"},
    {"/ui/cache", "Cache"},
};

bool shim__ui_owns(const char *path)
{
    return !*path || !strcmp(path, "ui") || !strncmp(path, "ui/", 3);
}

/* One type as the page shows it; supported and message are config_type_parse's verdict. */
static json_t *type_json(enum proxy_type t)
{
    struct config_error err = {0};
    enum proxy_type parsed;
    bool ok = config_type_parse(config_type_name(t), &parsed, &err) == 0;
    return json_pack("{s:s, s:s, s:s, s:s, s:s?, s:b, s:o}", "name", config_type_name(t), "label",
                     type_text[t].label, "note", type_text[t].note, "url_label",
                     type_text[t].url_label, "url_hint", type_text[t].url_hint, "supported", ok,
                     "message", ok ? json_null() : json_string(err.message));
}

/* What the script needs of the rules, asked of config now (see the file comment). */
static json_t *page_config(const struct shim_req *r)
{
    char forms[3][256];
    json_t *types = json_array(), *rtypes = json_array(), *accepts = json_object();
    json_t *cfg = NULL;
    if (!types || !rtypes || !accepts)
        goto out;
    for (int t = 0; t < PROXY_TYPE_COUNT; t++) {
        json_t *list = json_array();
        if (!list || json_array_append_new(types, type_json((enum proxy_type)t)) < 0)
            goto fail_list;
        for (int pt = 0; pt < PROXY_TYPE_COUNT; pt++)
            if (config_registry_accepts((enum proxy_type)t, (enum proxy_type)pt) &&
                json_array_append_new(list, json_string(config_type_name((enum proxy_type)pt))) < 0)
                goto fail_list;
        /* A type no registry can take proxies under (ecr: docker registries take those) is no
         * registry type. */
        if (json_array_size(list) == 0) {
            json_decref(list);
            continue;
        }
        if (json_array_append_new(rtypes, type_json((enum proxy_type)t)) < 0 ||
            json_object_set_new(accepts, config_type_name((enum proxy_type)t), list) < 0)
            goto out;
        continue;
    fail_list:
        json_decref(list);
        goto out;
    }
    snprintf(forms[0], sizeof(forms[0]), "https://%s[/REPOSITORY]",
             upstream_defaults.ecr_private_host);
    snprintf(forms[1], sizeof(forms[1]), "https://%s/ALIAS[/REPOSITORY]",
             upstream_defaults.ecr_public_host);
    snprintf(forms[2], sizeof(forms[2]),
             "https://{region}.%s/ecr/repositories/{private|public}/{account}/REPOSITORY"
             "?region={region}",
             upstream_defaults.ecr_console_host);
    cfg = json_pack("{s:O, s:O, s:O, s:[s,s,s], s:s, s:b}", "types", types, "registry_types",
                    rtypes, "accepts", accepts, "ecr_forms", forms[0], forms[1], forms[2],
                    "dockerhub", upstream_defaults.dockerhub_registry, "auth", r->s->auth != NULL);
out:
    json_decref(types);
    json_decref(rtypes);
    json_decref(accepts);
    return cfg;
}

/* The links of the Browse section: every top-level name, as the mount's root lists it. */
static int browse_list(struct shim_req *r, struct shim_buf *b)
{
    struct engine_dirent *ents = NULL;
    size_t n = 0;
    char href[SHIM_COMPONENT_MAX * 3 + 1], label[SHIM_COMPONENT_MAX * 6 + 1];
    int rc = engine_readdir(r->s->e, INDEX_ROOT_INO, &ents, &n);
    if (rc < 0)
        return shim_buf_puts(b, "<p class=\"form-error\">the names cannot be listed now</p>\n");
    rc = shim_buf_puts(b, n ? "<ul class=\"browse\">\n"
                            : "<p class=\"muted\">Nothing to browse yet.</p>\n");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (shim_http_href_escape(ents[i].name, href, sizeof(href)) < 0 ||
            shim_http_html_escape(ents[i].name, label, sizeof(label)) < 0)
            continue;
        rc = shim_buf_printf(b, "<li><a href=\"%s/\">%s/</a></li>\n", href, label);
    }
    if (rc == 0 && n)
        rc = shim_buf_puts(b, "</ul>\n");
    engine_dirents_free(ents, n);
    return rc;
}

/* Headers every page and asset carries. */
static void page_headers(struct MHD_Response *resp, const char *type, const char *cache)
{
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, cache);
    MHD_add_response_header(resp, "Content-Security-Policy", csp);
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
}

static enum MHD_Result send_page(struct shim_req *r, enum ui_page which)
{
    struct shim_buf b;
    char *cfg_text = NULL, *text = NULL;
    size_t len = 0;
    int rc = -ENOMEM;
    json_t *cfg = page_config(r);

    shim_buf_init(&b, UI_PAGE_MAX);
    /* ESCAPE_SLASH: no "</script>" can appear inside the JSON block. */
    if (!cfg || !(cfg_text = json_dumps(cfg, JSON_COMPACT | JSON_ESCAPE_SLASH)))
        goto out;
    if ((rc = shim_buf_printf(&b,
                              "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta "
                              "charset=\"utf-8\">\n<meta name=\"viewport\" "
                              "content=\"width=device-width, initial-scale=1\">\n"
                              "<title>upstreamfs &middot; %s</title>\n"
                              "<link rel=\"icon\" href=\"data:,\">\n"
                              "<link rel=\"stylesheet\" href=\"/ui/style.css\">\n"
                              "<script src=\"/ui/app.js\" defer></script>\n</head>\n"
                              "<body data-page=\"%s\">\n<header class=\"top\"><div "
                              "class=\"bar\"><a class=\"brand\" href=\"/\">upstreamfs</a>"
                              "<nav aria-label=\"Main\">\n",
                              pages[which].title, pages[which].name)) < 0)
        goto out;
    for (size_t i = 0; i < sizeof(nav) / sizeof(nav[0]); i++)
        if ((rc = shim_buf_printf(&b, "<a href=\"%s\"%s>%s</a>\n", nav[i].href,
                                  !strcmp(nav[i].href, pages[which].nav) ? " aria-current=\"page\""
                                                                         : "",
                                  nav[i].label)) < 0)
            goto out;
    if ((rc = shim_buf_puts(&b, "</nav></div></header>\n<main>\n")) < 0)
        goto out;
    switch (which) {
    case PAGE_OVERVIEW:
        if ((rc = shim_buf_puts(&b, ui_overview_head)) < 0 || (rc = browse_list(r, &b)) < 0 ||
            (rc = shim_buf_puts(&b, ui_overview_tail)) < 0)
            goto out;
        break;
    case PAGE_PROXY:
        rc = shim_buf_puts(&b, ui_proxy_new);
        break;
    case PAGE_REGISTRY:
        rc = shim_buf_puts(&b, ui_registry);
        break;
    case PAGE_CACHE:
        rc = shim_buf_puts(&b, ui_cache);
        break;
    }
    if (rc < 0 || (rc = shim_buf_printf(&b,
                                        "</main>\n<script type=\"application/json\" "
                                        "id=\"upfs-config\">%s</script>\n</body>\n</html>\n",
                                        cfg_text)) < 0)
        goto out;
    text = shim_buf_steal(&b, &len);
out:
    free(cfg_text);
    json_decref(cfg);
    shim_buf_free(&b);
    if (!text)
        return shim__reply_errno(r, rc < 0 ? rc : -ENOMEM, "page");
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    /* Pages carry the current lists: never from a cache. */
    page_headers(resp, "text/html; charset=utf-8", "no-store");
    if (!r->head)
        r->bytes += len;
    return shim__reply(r, MHD_HTTP_OK, resp);
}

/*
 * A static asset with a validator, so a browser revalidates cheaply and a
 * new binary's page is never mixed with an old cached script.
 */
static enum MHD_Result send_asset(struct shim_req *r, const char *body, const char *type)
{
    char etag[24];
    size_t len = strlen(body);
    uint64_t h = hash_fnv1a(body, len); /* a validator, not a security measure */
    snprintf(etag, sizeof(etag), "\"%016llx\"", (unsigned long long)h);
    const char *inm = shim__header(r, MHD_HTTP_HEADER_IF_NONE_MATCH);
    bool fresh = inm && strstr(inm, etag);
    struct MHD_Response *resp =
        fresh ? MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT)
              : MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    page_headers(resp, type, "no-cache");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    if (!fresh && !r->head)
        r->bytes += len;
    return shim__reply(r, fresh ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK, resp);
}

static enum MHD_Result redirect_home(struct shim_req *r)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, "/");
    return shim__reply(r, MHD_HTTP_FOUND, resp);
}

enum MHD_Result shim__ui(struct shim_req *r)
{
    if (strcmp(r->method, "GET") != 0 && !r->head)
        return shim__reply_method(r, "GET, HEAD");
    const char *p = r->path;
    if (!*p)
        return send_page(r, PAGE_OVERVIEW);
    if (!strcmp(p, "ui")) /* "/ui/" serves the overview: the token URL opens it (see app.js) */
        return r->slash ? send_page(r, PAGE_OVERVIEW) : redirect_home(r);
    p += 3; /* "ui/" */
    if (!strcmp(p, "app.js"))
        return send_asset(r, ui_app_js, "text/javascript; charset=utf-8");
    if (!strcmp(p, "style.css"))
        return send_asset(r, ui_style_css, "text/css; charset=utf-8");
    if (!strcmp(p, "proxies/new"))
        return send_page(r, PAGE_PROXY);
    if (!strcmp(p, "cache"))
        return send_page(r, PAGE_CACHE);
    if (!strcmp(p, "registries/new"))
        return send_page(r, PAGE_REGISTRY);
    /* "registries/NAME/order": NAME may be any valid name, "new" included. */
    size_t n = strlen(p);
    if (!strncmp(p, "registries/", 11) && n > 17 && !strcmp(p + n - 6, "/order")) {
        char name[CONFIG_KEY_MAX + 1];
        size_t nl = n - 17;
        if (nl <= CONFIG_KEY_MAX) {
            memcpy(name, p + 11, nl);
            name[nl] = '\0';
            if (config_key_validate("name", name, NULL) == 0)
                return send_page(r, PAGE_REGISTRY);
        }
    }
    return shim__reply_errno(r, -ENOENT, r->path);
}

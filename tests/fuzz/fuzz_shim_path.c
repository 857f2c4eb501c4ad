/*
 * fuzz_shim_path: the shim's request-target handling, as one request goes
 * through it: shim_http_path_normalise (into a full and a small buffer),
 * shim_http_route, shim_v2_route_parse for /v2/ paths (with and without
 * --default), and the escapes index pages and log lines apply.
 *
 * Properties: the containment guarantee of shim_http.h - a normalised path
 * is relative, made of non-empty components within SHIM_COMPONENT_MAX, none
 * "." or "..", with no control byte; a smaller buffer gives the same answer
 * or -ENAMETOOLONG; a v2 route names a known proxy or the default, a
 * repository without empty or dot components, and a reference; escapes
 * always terminate within their buffers and never let '<', '"' or a
 * control byte through.
 */
#include "fuzz.h"

#include "upstreamfs/shim_http.h"
#include "upstreamfs/shim_v2.h"

#include <errno.h>

static bool is_top(void *arg, const char *name)
{
    return strcmp(name, "hub") == 0 || strcmp(name, "ecr") == 0 || strcmp(name, "charts") == 0;
}

static void check_relative(const char *p, bool allow_empty)
{
    FUZZ_CHECK(allow_empty || p[0]);
    if (!p[0])
        return;
    FUZZ_CHECK(p[0] != '/' && p[strlen(p) - 1] != '/' && !strstr(p, "//"));
    for (const char *c = p;;) {
        size_t n = strcspn(c, "/");
        FUZZ_CHECK(n > 0 && n <= SHIM_COMPONENT_MAX);
        FUZZ_CHECK(!(n == 1 && c[0] == '.') && !(n == 2 && c[0] == '.' && c[1] == '.'));
        c += n;
        if (!*c)
            break;
        c++;
    }
    for (const unsigned char *c = (const unsigned char *)p; *c; c++)
        FUZZ_CHECK(*c >= 0x20 && *c != 0x7f);
}

static void check_escapes(const char *s)
{
    char small[24], big[3 * SHIM_COMPONENT_MAX + 1];
    memset(small, 'X', sizeof(small));
    shim_http_log_escape(s, small, 16);
    FUZZ_CHECK(memchr(small, '\0', 16) && small[16] == 'X');
    FUZZ_CHECK(fuzz_printable(small) && !strchr(small, '"'));

    if (shim_http_html_escape(s, big, sizeof(big)) == 0)
        FUZZ_CHECK(!strpbrk(big, "<>\"'"));
    memset(small, 'X', sizeof(small));
    if (shim_http_html_escape(s, small, 16) == 0)
        FUZZ_CHECK(strlen(small) < 16);
    FUZZ_CHECK(small[16] == 'X');

    if (shim_http_href_escape(s, big, sizeof(big)) == 0)
        FUZZ_CHECK(
            strspn(big, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%") ==
            strlen(big));
    memset(small, 'X', sizeof(small));
    if (shim_http_href_escape(s, small, 16) == 0)
        FUZZ_CHECK(strlen(small) < 16);
    FUZZ_CHECK(small[16] == 'X');
    FUZZ_CHECK(shim_http_content_type(s) != NULL);
}

static void check_v2(const char *path, const char *default_name)
{
    struct shim_v2_route r;
    int rc = shim_v2_route_parse(path, default_name, is_top, NULL, &r);
    FUZZ_CHECK(rc == 0 || rc == -ENOENT);
    if (rc != 0)
        return;
    switch (r.kind) {
    case SHIM_V2_BASE:
    case SHIM_V2_CATALOG:
        return;
    case SHIM_V2_TAGS:
        FUZZ_CHECK(r.reference[0] == '\0');
        break;
    case SHIM_V2_MANIFEST:
    case SHIM_V2_BLOB:
    case SHIM_V2_REFERRERS:
        check_relative(r.reference, false);
        FUZZ_CHECK(!strchr(r.reference, '/'));
        break;
    default:
        FUZZ_CHECK(!"unknown v2 route kind");
    }
    FUZZ_CHECK(is_top(NULL, r.key) || (default_name && strcmp(r.key, default_name) == 0));
    check_relative(r.repository, false);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *target = fuzz_cstr(data, size);
    char out[SHIM_PATH_MAX + 1], small[64];
    bool slash = false, small_slash = false;
    int rc = shim_http_path_normalise(target, out, sizeof(out), &slash);
    FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENAMETOOLONG);
    int src = shim_http_path_normalise(target, small, sizeof(small), &small_slash);
    /* A smaller buffer may run out before a later bad byte is seen, never the reverse. */
    FUZZ_CHECK(src == rc || src == -ENAMETOOLONG);
    if (src == 0)
        FUZZ_CHECK(rc == 0 && strcmp(small, out) == 0 && small_slash == slash);
    if (rc == 0) {
        check_relative(out, true);
        enum shim_route route = shim_http_route(out);
        FUZZ_CHECK(route >= SHIM_ROUTE_ROOT && route < SHIM_ROUTE_COUNT);
        FUZZ_CHECK(shim_http_route_name(route) != NULL);
        FUZZ_CHECK((route == SHIM_ROUTE_ROOT) == (out[0] == '\0'));
        if (route == SHIM_ROUTE_V2) {
            check_v2(out, NULL);
            check_v2(out, "hub");
        }
        check_escapes(out);
    }
    check_escapes(target);
    free(target);
    return 0;
}

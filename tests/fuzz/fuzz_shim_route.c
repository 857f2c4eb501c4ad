/*
 * fuzz_shim_route: the protocols' own shim routes (shim_protocol.route, npm
 * and PyPI today) on a request path as shim_http_path_normalise leaves it.
 * Input: a flags byte (bit 0: the target ended with '/', bit 1: it held an
 * escaped '/', bits 2-7: which driver), a line with the Accept header, and
 * the request target.
 *
 * Properties: a route is 0, -ENOTSUP, -ENOENT or -EINVAL; a route's engine
 * path is relative, NUL-terminated within SHIM_PROTOCOL_PATH_MAX, and free of
 * empty, "." and ".." components (it goes on to the engine as a path).
 */
#include "fuzz.h"

#include "upstreamfs/config.h"
#include "upstreamfs/shim_protocol.h"
#include "upstreamfs/shim_http.h"

#include <errno.h>

static const int types[] = {PROXY_NPM, PROXY_PYPI, PROXY_GENERIC, PROXY_DOCKER};

static void check_engine_path(const char *p)
{
    FUZZ_CHECK(memchr(p, '\0', SHIM_PROTOCOL_PATH_MAX));
    if (!p[0])
        return;
    FUZZ_CHECK(p[0] != '/' && !strstr(p, "//"));
    for (const char *c = p;;) {
        size_t n = strcspn(c, "/");
        FUZZ_CHECK(!(n == 1 && c[0] == '.') && !(n == 2 && c[0] == '.' && c[1] == '.'));
        c += n;
        if (!*c)
            break;
        c++;
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t flags = fuzz_take_byte(&data, &size);
    const struct shim_protocol *d =
        shim_protocol_for_type(types[(flags >> 2) % (sizeof(types) / sizeof(types[0]))]);
    char *accept = fuzz_take_line(&data, &size);
    char *target = fuzz_cstr(data, size);
    char path[SHIM_PATH_MAX + 1];
    bool slash = false;
    /* The shim hands drivers normalised paths only; an escaped '/' arrives as a separator. */
    if (d && d->route && shim_http_path_normalise(target, path, sizeof(path), &slash) == 0) {
        struct shim_protocol_route r;
        int rc = d->route(path, (flags & 1) || slash, flags & 2, accept[0] ? accept : NULL, &r);
        FUZZ_CHECK(rc == 0 || rc == -ENOTSUP || rc == -ENOENT || rc == -EINVAL);
        if (rc == 0)
            check_engine_path(r.path);
    }
    free(target);
    free(accept);
    return 0;
}

/*
 * fuzz_shim_range: shim_http_range on a client's Range header, for a
 * representation size taken from the first 8 input bytes (any int64,
 * negative meaning unknown); the same bytes also go through
 * shim_http_listen_parse as a --listen value.
 *
 * Properties: a satisfiable range lies inside the representation and is
 * not empty; an unknown size never yields a range; --listen gives a
 * non-empty host that fits its buffer and a port <= 65535.
 */
#include "fuzz.h"

#include "upstreamfs/shim_http.h"

#include <errno.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = u << 8 | fuzz_take_byte(&data, &size);
    int64_t rep = (int64_t)u;
    char *header = fuzz_cstr(data, size);

    int64_t start = -7, len = -7;
    int rc = shim_http_range(header, rep, &start, &len);
    FUZZ_CHECK(rc == 1 || rc == 0 || rc == -ERANGE);
    if (rep < 0)
        FUZZ_CHECK(rc == 0);
    if (rc == 1) {
        FUZZ_CHECK(start >= 0 && len > 0);
        FUZZ_CHECK(start < rep && len <= rep - start);
    } else {
        FUZZ_CHECK(start == -7 && len == -7);
    }
    /* Small representations, where off-by-one errors live. */
    for (int64_t sz = 0; sz < 3; sz++) {
        start = len = -7;
        rc = shim_http_range(header, sz, &start, &len);
        FUZZ_CHECK(rc == 1 || rc == 0 || rc == -ERANGE);
        if (rc == 1)
            FUZZ_CHECK(start >= 0 && len > 0 && start + len <= sz);
    }

    char host[64], msg[128] = "";
    unsigned port = 70000;
    memset(host, 'X', sizeof(host));
    rc = shim_http_listen_parse(header, host, 16, &port, msg, sizeof(msg));
    FUZZ_CHECK(rc == 0 || rc == -EINVAL);
    if (rc == 0) {
        FUZZ_CHECK(host[0] && memchr(host, '\0', 16) && port <= 65535);
    } else {
        FUZZ_CHECK(msg[0]);
    }
    FUZZ_CHECK(host[16] == 'X');
    free(header);
    return 0;
}

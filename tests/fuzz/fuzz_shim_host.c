/*
 * fuzz_shim_host: the Host rule (shim_http_host_allowed) and the collapse of
 * leading slashes of request targets (shim_http_target_collapse), both fed
 * by request headers (docs/SECURITY.md).
 * Input: a line with one --public-name, a line with the Host header, and a
 * request target.
 *
 * Properties: an allowed Host is made of name, address and port bytes only
 * (no '/', '@', space or control byte), its port (after the last ']' or the
 * only ':') is 1 to 5 digits, and unless it is an address or localhost its
 * name equals the public name (case aside); a collapsed target never starts
 * with "//" and is the input without its extra leading slashes.
 */
#include "fuzz.h"

#include "upstreamfs/shim_http.h"

#include <arpa/inet.h>
#include <strings.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

static void check_host(const char *host, const char *name)
{
    const char *names[] = {name};
    if (!shim_http_host_allowed(host, names, 1))
        return;
    size_t n = strlen(host);
    FUZZ_CHECK(n > 0);
    FUZZ_CHECK(
        strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") == n);
    const char *end = host[0] == '[' ? strchr(host, ']') + 1 : host + strcspn(host, ":");
    size_t hl = (size_t)(end - host);
    if (*end) {
        FUZZ_CHECK(*end == ':');
        size_t d = strspn(end + 1, "0123456789");
        FUZZ_CHECK(d >= 1 && d <= 5 && !end[1 + d]);
    }
    char h[300];
    unsigned char addr[16];
    FUZZ_CHECK(hl < sizeof(h));
    memcpy(h, host, hl);
    h[hl] = '\0';
    if (h[0] == '[') {
        h[hl - 1] = '\0';
        FUZZ_CHECK(inet_pton(AF_INET6, h + 1, addr) == 1);
    } else if (inet_pton(AF_INET, h, addr) != 1 && strcasecmp(h, "localhost") != 0) {
        FUZZ_CHECK(strcasecmp(h, name) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *name = fuzz_take_line(&data, &size);
    char *host = fuzz_take_line(&data, &size);
    char *target = fuzz_cstr(data, size);
    check_host(host, name);
    size_t lead = strspn(target, "/");
    char *before = strdup(target);
    if (!before)
        abort();
    shim_http_target_collapse(target);
    FUZZ_CHECK(strncmp(target, "//", 2) != 0);
    FUZZ_CHECK(!strcmp(target + (lead ? 1 : 0), before + lead));
    free(before);
    free(target);
    free(host);
    free(name);
    return 0;
}

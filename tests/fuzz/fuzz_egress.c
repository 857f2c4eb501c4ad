/*
 * fuzz_egress: the egress rule's parsers of remote-controlled text
 * (src/fetch/egress.c): a host of a URL an index or a redirect named, as
 * the address classifier and the allow_host matcher see it, and the origin
 * of such a URL.
 *
 * Input: "PATTERN\nHOST". Properties: the classifier answers for every
 * string, and an IP literal is refused exactly when its sockaddr form is;
 * a host always matches itself as a pattern when it is a plain name; a
 * "*.suffix" pattern never matches the bare suffix; a policy that trusts a
 * URL reports that URL's origin as configured.
 */
#include "fuzz.h"

#include "upstreamfs/egress.h"
#include "upstreamfs/fetch.h"

#include <arpa/inet.h>
#include <netinet/in.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size);
    char *nl = strchr(s, '\n');
    const char *pattern = s, *host = nl ? nl + 1 : s;
    if (nl)
        *nl = '\0';
    bool is_ip = false;
    const char *why = egress_text_refusal(host, &is_ip);
    FUZZ_CHECK(is_ip || !why);
    struct sockaddr_in in = {.sin_family = AF_INET};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    if (inet_pton(AF_INET, host, &in.sin_addr) == 1)
        FUZZ_CHECK(egress_addr_refusal((struct sockaddr *)&in, sizeof(in)) == why);
    else if (inet_pton(AF_INET6, host, &in6.sin6_addr) == 1)
        FUZZ_CHECK(egress_addr_refusal((struct sockaddr *)&in6, sizeof(in6)) == why);

    bool m = egress_host_match(pattern, host);
    size_t hl = strlen(host);
    if (hl > 0 && hl < 200 && strspn(host, "abcdefghijklmnopqrstuvwxyz0123456789-") == hl)
        FUZZ_CHECK(egress_host_match(host, host));
    if (pattern[0] == '*' && pattern[1] == '.')
        FUZZ_CHECK(!egress_host_match(pattern, pattern + 2));
    (void)m;

    struct egress_policy *p = egress_policy_new(NULL, false);
    FUZZ_CHECK(p != NULL);
    if (egress_policy_trust(p, host) == 0)
        FUZZ_CHECK(egress_origin_configured(p, host));
    egress_policy_unref(p);
    free(s);
    return 0;
}

/*
 * fuzz_token_challenge: token_challenge_parse on a registry's
 * WWW-Authenticate value, then the token request URL built from it.
 *
 * Properties: a Bearer challenge always has an http(s) realm without
 * spaces or control characters (it becomes a URL); Basic carries no
 * service or scope; the request URL is built for any accepted challenge.
 */
#include "fuzz.h"

#include "upstreamfs/token.h"

#include <errno.h>
#include <strings.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *header = fuzz_cstr(data, size);
    struct token_challenge c;
    int rc = token_challenge_parse(header, &c);
    FUZZ_CHECK(rc == 0 || rc == -ENOENT || rc == -EINVAL || rc == -ENOMEM);
    if (rc == 0) {
        FUZZ_CHECK(c.scheme == TOKEN_SCHEME_BEARER || c.scheme == TOKEN_SCHEME_BASIC);
        if (c.scheme == TOKEN_SCHEME_BEARER) {
            FUZZ_CHECK(c.realm != NULL);
            FUZZ_CHECK(strncasecmp(c.realm, "http://", 7) == 0 ||
                       strncasecmp(c.realm, "https://", 8) == 0);
            FUZZ_CHECK(fuzz_printable(c.realm) && !strchr(c.realm, ' '));
            FUZZ_CHECK(strlen(c.realm) <= TOKEN_PARAM_MAX);
            char *url = token_request_url(c.realm, c.service, c.scope);
            FUZZ_CHECK(url != NULL);
            FUZZ_CHECK(strncmp(url, c.realm, strlen(c.realm)) == 0);
            FUZZ_CHECK(fuzz_printable(url) && !strchr(url, ' '));
            free(url);
        } else {
            FUZZ_CHECK(!c.service && !c.scope && !c.error);
        }
        const char *params[] = {c.service, c.scope, c.error};
        for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++)
            FUZZ_CHECK(!params[i] || strlen(params[i]) <= TOKEN_PARAM_MAX);
        token_challenge_clear(&c);
    } else {
        FUZZ_CHECK(!c.realm && !c.service && !c.scope && !c.error);
    }
    free(header);
    return 0;
}

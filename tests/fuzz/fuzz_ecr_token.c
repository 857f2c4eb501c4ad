/*
 * fuzz_ecr_token: ecr_token_parse on a GetAuthorizationToken answer. The
 * first input byte's low bit selects the ECR Public shape.
 *
 * Properties: an accepted token decodes to "user:password" with a non-empty
 * user and no CR, LF or NUL (it becomes a header), expires at a time >= 0
 * (a past one is accepted: install() warns about clock skew), and has an http(s) proxyEndpoint when
 * it has one; a refusal leaves the struct empty.
 */
#include "fuzz.h"

#include "upstreamfs/ecr_auth.h"

#include <errno.h>
#include <strings.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool is_public = fuzz_take_byte(&data, &size) & 1;
    struct ecr_token t;
    int rc = ecr_token_parse((const char *)data, size, is_public, &t);
    FUZZ_CHECK(rc == 0 || rc == -EIO || rc == -ENOMEM);
    if (rc == 0) {
        FUZZ_CHECK(t.authorization_token && t.username && t.password);
        FUZZ_CHECK(t.username[0] && !strchr(t.username, ':'));
        FUZZ_CHECK(!strpbrk(t.username, "\r\n") && !strpbrk(t.password, "\r\n"));
        /* A time in the past is accepted (install() warns about clock skew); a negative one not. */
        FUZZ_CHECK(t.expires_at_ms >= 0);
        if (t.proxy_endpoint)
            FUZZ_CHECK(strncasecmp(t.proxy_endpoint, "http://", 7) == 0 ||
                       strncasecmp(t.proxy_endpoint, "https://", 8) == 0);
        ecr_token_clear(&t);
    } else {
        FUZZ_CHECK(!t.authorization_token && !t.username && !t.password && !t.proxy_endpoint);
    }
    return 0;
}

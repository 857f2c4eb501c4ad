/*
 * fuzz_aws_imds: aws_credentials_parse_imds on the instance metadata
 * service's role credentials document.
 *
 * Properties: accepted credentials are printable ASCII without spaces and
 * marked as from IMDS; a refusal is -EIO and leaves the struct empty.
 */
#include "fuzz.h"

#include "upstreamfs/aws_credentials.h"

#include <errno.h>

static void check(const char *s)
{
    FUZZ_CHECK(s && s[0] && strlen(s) <= AWS_CREDENTIALS_VALUE_MAX);
    for (; *s; s++)
        FUZZ_CHECK((unsigned char)*s > 0x20 && (unsigned char)*s < 0x7f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct aws_credentials c = {0};
    int rc = aws_credentials_parse_imds((const char *)data, size, &c);
    FUZZ_CHECK(rc == 0 || rc == -EIO || rc == -ENOMEM);
    if (rc == 0) {
        check(c.access_key_id);
        check(c.secret_access_key);
        if (c.session_token)
            check(c.session_token);
        FUZZ_CHECK(c.source == AWS_CREDS_IMDS);
    } else {
        FUZZ_CHECK(!c.access_key_id && !c.secret_access_key && !c.session_token);
    }
    aws_credentials_clear(&c);
    return 0;
}

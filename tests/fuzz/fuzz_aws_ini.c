/*
 * fuzz_aws_ini: aws_credentials_parse_ini on a shared credentials file
 * (~/.aws/credentials), for the profiles "default" and "prod".
 *
 * Properties: found credentials are printable ASCII without spaces, within
 * AWS_CREDENTIALS_VALUE_MAX, and come from the file; anything else leaves
 * the struct empty.
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

static void parse(const uint8_t *data, size_t size, const char *profile)
{
    struct aws_credentials c = {0};
    int rc = aws_credentials_parse_ini((const char *)data, size, profile, &c);
    FUZZ_CHECK(rc == 0 || rc == -ENOENT || rc == -EINVAL || rc == -ENOMEM);
    if (rc == 0) {
        check(c.access_key_id);
        check(c.secret_access_key);
        if (c.session_token)
            check(c.session_token);
        FUZZ_CHECK(c.source == AWS_CREDS_FILE && c.expires_at == 0);
        FUZZ_CHECK(memmem(data, size, c.access_key_id, strlen(c.access_key_id)));
    } else {
        FUZZ_CHECK(!c.access_key_id && !c.secret_access_key && !c.session_token);
    }
    aws_credentials_clear(&c);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /*
     * Exactly the input bytes, no terminator: the parser is given a length.
     * (aws-ini-unterminated adds one, as aws_credentials_from_file does, so
     * a run can look past an over-read that is already known.)
     */
    bool nul = fuzz_skip("aws-ini-unterminated");
    uint8_t *copy = malloc((size + nul) ? size + nul : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    if (nul)
        copy[size] = '\0';
    parse(copy, size, "default");
    parse(copy, size, "prod");
    free(copy);
    return 0;
}

/*
 * fuzz_ecr_api: the other ECR API answers: ecr_auth_error_parse (an error
 * body with the HTTP status chosen by the first input byte) and
 * ecr_auth_describe_parse (a DescribeRegistries page) on the same body.
 *
 * Properties: an error always maps to -EACCES, -EREMOTEIO or -EIO with a
 * one-line printable message that fits its buffer; a describe answer yields
 * an alias (a lower-case registry alias), or a refusal and perhaps a page
 * token, never both.
 */
#include "fuzz.h"

#include "upstreamfs/ecr_auth.h"

#include <errno.h>

static const long statuses[] = {200, 400, 401, 403, 404, 429, 500, 503};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t sel = fuzz_take_byte(&data, &size);
    long status = statuses[sel % (sizeof(statuses) / sizeof(statuses[0]))];
    size_t msglen = (sel >> 3) % 2 ? 17 : ECR_AUTH_ERROR_MAX;
    char msg[ECR_AUTH_ERROR_MAX];
    memset(msg, 'X', sizeof(msg));
    int rc = ecr_auth_error_parse(status, (const char *)data, size, msg, msglen);
    FUZZ_CHECK(rc == -EACCES || rc == -EREMOTEIO || rc == -EIO);
    FUZZ_CHECK(memchr(msg, '\0', msglen) != NULL);
    FUZZ_CHECK(fuzz_printable(msg));
    for (size_t i = msglen; i < sizeof(msg); i++)
        FUZZ_CHECK(msg[i] == 'X');

    char *alias = NULL, *next = NULL;
    rc = ecr_auth_describe_parse((const char *)data, size, "123456789012", &alias, &next);
    FUZZ_CHECK(rc == 0 || rc == -ENOENT || rc == -EIO || rc == -ENOMEM);
    if (rc == 0) {
        FUZZ_CHECK(alias && alias[0] >= 'a' && alias[0] <= 'z');
        FUZZ_CHECK(strlen(alias) >= 2 && strlen(alias) <= 50);
        FUZZ_CHECK(strspn(alias, "abcdefghijklmnopqrstuvwxyz0123456789._-") == strlen(alias));
    } else {
        FUZZ_CHECK(alias == NULL);
    }
    FUZZ_CHECK(!(alias && next));
    free(alias);
    free(next);
    return 0;
}

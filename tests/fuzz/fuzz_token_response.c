/*
 * fuzz_token_response: token_response_parse on a token server's answer.
 *
 * Properties: an accepted token can go on a header line (printable ASCII,
 * no spaces, at most TOKEN_MAX bytes) and its lifetime is within
 * [1, TOKEN_MAX_LIFE_S]; a refusal says why.
 */
#include "fuzz.h"

#include "upstreamfs/token.h"

#include <errno.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *token = NULL;
    int64_t life = -1;
    char err[256] = "";
    int rc = token_response_parse((const char *)data, size, &token, &life, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || rc == -EIO || rc == -ENOMEM);
    if (rc == 0) {
        FUZZ_CHECK(token && token[0]);
        FUZZ_CHECK(strlen(token) <= TOKEN_MAX);
        FUZZ_CHECK(fuzz_printable(token) && !strchr(token, ' '));
        FUZZ_CHECK(life >= 1 && life <= TOKEN_MAX_LIFE_S);
        int64_t margin = token_refresh_margin_ms(life * 1000);
        FUZZ_CHECK(margin >= 0 && margin <= TOKEN_MARGIN_MAX_MS && margin < life * 1000);
        free(token);
    } else {
        FUZZ_CHECK(token == NULL);
        FUZZ_CHECK(rc != -EIO || err[0]);
    }
    return 0;
}

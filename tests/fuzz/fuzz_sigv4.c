/*
 * fuzz_sigv4: the SigV4 canonicaliser and signer on a hostile request.
 * Input: a flags byte (bit 0: temporary credentials), then lines
 *   METHOD
 *   URL
 *   Name: value        (up to 32 headers)
 *   <empty line>
 *   payload...
 *
 * Properties: a canonical request is built or refused with -EINVAL/-E2BIG,
 * never more than SIGV4_CANONICAL_MAX; it has the six lines AWS defines,
 * its signed-header list is sorted, lower case and always holds host and
 * x-amz-date; signing the same request agrees with it and yields the
 * Authorization shape AWS expects.
 */
#include "fuzz.h"

#include "upstreamfs/sigv4.h"

#include <curl/curl.h>
#include <errno.h>

#define MAX_HEADERS 32

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

static void check_signed_headers(const char *sh)
{
    FUZZ_CHECK(sh[0]);
    char prev[256] = "";
    bool host = false, date = false;
    for (const char *p = sh; *p;) {
        size_t n = strcspn(p, ";");
        FUZZ_CHECK(n > 0);
        char name[256];
        if (n < sizeof(name)) {
            memcpy(name, p, n);
            name[n] = '\0';
            FUZZ_CHECK(strcmp(prev, name) < 0); /* sorted, each name once */
            memcpy(prev, name, n + 1);
            host |= strcmp(name, "host") == 0;
            date |= strcmp(name, "x-amz-date") == 0;
        }
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK(!(p[i] >= 'A' && p[i] <= 'Z'));
        p += n;
        if (*p == ';')
            p++;
    }
    FUZZ_CHECK(host && date);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t flags = fuzz_take_byte(&data, &size);
    char *method = fuzz_take_line(&data, &size);
    char *url = fuzz_take_line(&data, &size);
    char *lines[MAX_HEADERS];
    struct sigv4_header hs[MAX_HEADERS];
    size_t nh = 0;
    while (nh < MAX_HEADERS && size > 0) {
        char *line = fuzz_take_line(&data, &size);
        if (!line[0]) {
            free(line);
            break;
        }
        lines[nh] = line;
        char *colon = strchr(line, ':');
        if (colon)
            *colon = '\0';
        hs[nh].name = line;
        hs[nh].value = colon ? colon + 1 : "";
        nh++;
    }
    struct sigv4_request req = {
        .method = method,
        .url = url,
        .headers = hs,
        .n_headers = nh,
        .payload = size ? data : NULL,
        .payload_len = size,
        .region = "us-east-1",
        .service = "ecr",
        .when = 1440938160, /* 2015-08-30T12:36:00Z, the AWS test suite's time */
        .access_key_id = "AKIDEXAMPLE",
        .secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        .session_token = (flags & 1)
                             ? "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQW"
                             : NULL,
    };

    char *creq = NULL, *sh = NULL;
    int rc = sigv4_canonical_request(&req, "20150830T123600Z", &creq, &sh);
    FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -E2BIG || rc == -ENOMEM);
    if (rc == 0) {
        FUZZ_CHECK(strlen(creq) < SIGV4_CANONICAL_MAX);
        FUZZ_CHECK(strncmp(creq, method, strlen(method)) == 0 && creq[strlen(method)] == '\n');
        FUZZ_CHECK(creq[strlen(method) + 1] == '/'); /* the canonical URI is absolute */
        check_signed_headers(sh);
        /* The last two lines: the signed-header list, then the payload hash. */
        const char *last = strrchr(creq, '\n');
        FUZZ_CHECK(last && strlen(last + 1) == 64);
        FUZZ_CHECK(last - creq >= (ptrdiff_t)strlen(sh) &&
                   strncmp(last - strlen(sh), sh, strlen(sh)) == 0);

        struct sigv4_signature sig;
        int src = sigv4_sign(&req, &sig);
        FUZZ_CHECK(src == 0 || src == -ENOMEM);
        if (src == 0) {
            FUZZ_CHECK(strcmp(sig.signed_headers, sh) == 0);
            FUZZ_CHECK(strncmp(sig.authorization, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/", 40) ==
                       0);
            FUZZ_CHECK(!strpbrk(sig.authorization, "\r\n") && !strpbrk(sig.host, "\r\n "));
            sigv4_signature_clear(&sig);
        }
        struct curl_slist *list = NULL;
        int hrc = sigv4_sign_headers(&req, &list);
        FUZZ_CHECK(hrc == 0 || hrc == -ENOMEM);
        for (const struct curl_slist *l = list; l; l = l->next)
            FUZZ_CHECK(!strpbrk(l->data, "\r\n"));
        curl_slist_free_all(list);
        free(creq);
        free(sh);
    } else {
        FUZZ_CHECK(!creq && !sh);
    }
    for (size_t i = 0; i < nh; i++)
        free(lines[i]);
    free(method);
    free(url);
    return 0;
}

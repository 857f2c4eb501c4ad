/*
 * fuzz_ecr_url: ecr_url_parse on what a user pastes as an ECR proxy's URL
 * (and what the API accepts from the network).
 *
 * Properties: an accepted target passes ecr_target_validate (the check
 * applied to targets read back from the database), copies faithfully, and
 * its canonical form - https://{host}/[{alias}/]{repository} - parses back
 * to the same target.
 */
#include "fuzz.h"

#include "upstreamfs/ecr_url.h"

#include <errno.h>

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool same_target(const struct ecr_target *a, const struct ecr_target *b)
{
    return a->is_public == b->is_public && same_str(a->host, b->host) &&
           same_str(a->region, b->region) && same_str(a->account, b->account) &&
           same_str(a->alias, b->alias) && same_str(a->repository, b->repository);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *url = fuzz_cstr(data, size);
    struct ecr_target t = {0};
    struct config_error err = {{0}, {0}};
    int rc = ecr_url_parse(url, &t, &err);
    FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
    if (rc == 0) {
        struct config_error verr = {{0}, {0}};
        int vrc = ecr_target_validate(&t, &verr);
        if (vrc != 0)
            fprintf(stderr, "validate refused a parsed target: %s: %s\n", verr.field, verr.message);
        FUZZ_CHECK(vrc == 0);

        struct ecr_target c = {0};
        FUZZ_CHECK(ecr_target_copy(&c, &t) == 0 && same_target(&c, &t));
        ecr_target_clear(&c);

        char *base = ecr_target_url(&t);
        FUZZ_CHECK(base && strncmp(base, "https://", 8) == 0);
        if (!(t.is_public && !t.alias)) { /* a console URL's account has no registry form */
            char *canon = NULL;
            FUZZ_CHECK(asprintf(&canon, "%s%s%s%s", base, t.alias ? t.alias : "",
                                t.alias && t.repository ? "/" : "",
                                t.repository ? t.repository : "") > 0);
            struct ecr_target r = {0};
            struct config_error rerr = {{0}, {0}};
            int rrc = ecr_url_parse(canon, &r, &rerr);
            if (rrc != 0 || !same_target(&r, &t))
                fprintf(stderr, "canonical form %s does not parse back (%d: %s)\n", canon, rrc,
                        rerr.message);
            FUZZ_CHECK(rrc == 0 && same_target(&r, &t));
            ecr_target_clear(&r);
            free(canon);
        }
        free(base);
        ecr_target_clear(&t);
    } else {
        FUZZ_CHECK(!t.host && !t.repository);
        FUZZ_CHECK(rc != -EINVAL || err.message[0]);
    }
    free(url);
    return 0;
}

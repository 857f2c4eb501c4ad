/*
 * defaults: every product host name and endpoint the program knows by heart.
 *
 * This is the one table of such constants: no other file spells a Docker Hub,
 * AWS or metadata-service host. Callers that need an ECR host for an account
 * and region expand the patterns here, so a new partition (China, GovCloud)
 * or a changed endpoint is a change to this table alone.
 *
 * Patterns use "{region}" and "{account}" placeholders and are expanded with
 * defaults_expand.
 */
#ifndef UPSTREAMFS_DEFAULTS_H
#define UPSTREAMFS_DEFAULTS_H

#include <stddef.h>

struct upstream_defaults {
    const char *dockerhub_registry; /* registry URL for --source dockerhub (ends with '/') */
    const char *dockerhub_token;    /* Docker Hub's token service */
    const char *ecr_api;            /* ECR API endpoint pattern, {region} */
    const char *ecr_public_api;     /* ECR Public API endpoint (us-east-1 only) */
    const char *ecr_public_host;    /* ECR Public registry host */
    const char *ecr_gallery_host;   /* ECR Public Gallery host: same path shape as the registry */
    const char *ecr_private_host;   /* private registry host pattern, {account} and {region} */
    const char *ecr_console_host;   /* AWS console host suffix; a region may be prepended */
    const char *imds_endpoint;      /* EC2 instance metadata service (IMDSv2) */
};

extern const struct upstream_defaults upstream_defaults;

/*
 * Expands {region} and {account} in pattern into buf (size n). Either value
 * may be NULL when the pattern does not use it. Returns 0, -EINVAL when a
 * placeholder has no value, or -ENAMETOOLONG when buf is too small.
 */
int defaults_expand(const char *pattern, const char *region, const char *account, char *buf,
                    size_t n);

/*
 * The reverse: matches s against pattern, capturing what stands for
 * {region} and {account} into malloc'd strings (pass NULL for a capture not
 * wanted). A placeholder matches one or more characters up to the literal
 * that follows it. Returns 0, -ENOENT when s does not match, or -ENOMEM.
 */
int defaults_match(const char *pattern, const char *s, char **region, char **account);

#endif

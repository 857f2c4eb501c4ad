/*
 * ecr_url: what an ECR source URL means (docs/ecr.md,
 * 2.6), as a struct ecr_target.
 *
 * Accepted forms, with or without "https://" (plain http is refused: ECR
 * answers only https):
 *   https://{region}.console.aws.amazon.com/ecr/repositories/private/{account}/{repo}?region={region}
 *   https://{region}.console.aws.amazon.com/ecr/repositories/public/{account}/{repo}?region={region}
 *   {account}.dkr.ecr.{region}.amazonaws.com[/{repo}]
 *   public.ecr.aws/{alias}[/{repo}]   (and gallery.ecr.aws/{alias}[/{repo}], the same shape)
 * {repo} may contain '/' or "%2F". The console region comes from the host or
 * the region= query (they must agree when both are present).
 *
 * The result's repository is the scope without the public alias: the v2
 * name of a public repository is "{alias}/{repository}". A public console URL
 * names the account, not the alias, so its target has account set and alias
 * NULL; whether that is usable (only with credentials, which let the driver
 * look the alias up) is config_proxy_validate's decision, not this parser's.
 *
 * Pure: no network, no files. Errors fill err with field "url" and return
 * -EINVAL; -ENOMEM on allocation failure.
 */
#ifndef UPSTREAMFS_ECR_URL_H
#define UPSTREAMFS_ECR_URL_H

#include "upstreamfs/config.h"

/* Parses url into *out (whose previous contents are released first). */
int ecr_url_parse(const char *url, struct ecr_target *out, struct config_error *err);

/* The canonical proxy URL of a target, "https://{host}/"; malloc'd, NULL on ENOMEM. */
char *ecr_target_url(const struct ecr_target *t);

/*
 * Checks the fields of a target that did not come from ecr_url_parse (read
 * back from the database or kept across an update): host consistent with
 * account, region and publicness; names well-formed.
 */
int ecr_target_validate(const struct ecr_target *t, struct config_error *err);

void ecr_target_clear(struct ecr_target *t);
int ecr_target_copy(struct ecr_target *dst, const struct ecr_target *src);

#endif

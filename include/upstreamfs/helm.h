/*
 * helm: the Helm index rewrite, exposed for tests and fuzzing. The driver
 * itself is driver_helm (driver.h).
 */
#ifndef UPSTREAMFS_HELM_H
#define UPSTREAMFS_HELM_H

#include <stddef.h>

/*
 * Rewrites an upstream index.yaml so that every chart's urls point at
 * charts/<name>-<version>.tgz; everything else passes through. Returns 0 and
 * a malloc'd body, or -EIO for input that is not a Helm index, -EFBIG past
 * the size cap.
 */
int helm_rewrite_index(const char *body, size_t len, const char *repo_url, char **out,
                       size_t *out_len);

#endif

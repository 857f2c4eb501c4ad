/*
 * helm: a Helm repository's index.yaml, read (the chart table) and rewritten
 * (src/parsers/helm_index.c, pure). The driver is driver_helm (driver.h).
 */
#ifndef UPSTREAMFS_HELM_H
#define UPSTREAMFS_HELM_H

#include <stddef.h>

#define HELM_INDEX_OUT_MAX (128u << 20) /* a rewritten index.yaml */

/* One chart version of an index. */
struct helm_chart {
    char *file;   /* <name>-<version>.tgz, or NULL when the version cannot be served */
    char *url;    /* absolute upstream URL */
    char *digest; /* hex sha256 or NULL */
};

struct helm_charts {
    struct helm_chart *charts; /* one per version, in the index's order */
    size_t n;
};

/*
 * The chart versions of an upstream index.yaml, their URLs resolved against repo_url.
 * 0, -EIO for input that is not a Helm index, -ENOMEM.
 */
int helm_index_charts(const char *body, size_t len, const char *repo_url, struct helm_charts *out);
void helm_charts_clear(struct helm_charts *c);

/*
 * Rewrites an upstream index.yaml so that every chart's urls point at
 * charts/<name>-<version>.tgz; everything else passes through. Returns 0 and
 * a malloc'd body, or -EIO for input that is not a Helm index, -EFBIG past
 * the size cap.
 */
int helm_rewrite_index(const char *body, size_t len, const char *repo_url, char **out,
                       size_t *out_len);

#endif

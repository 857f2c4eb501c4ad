/*
 * helm: a Helm repository's index.yaml, read (the chart table) and rewritten
 * (src/parsers/helm_index.c, pure). The driver is driver_helm (driver.h).
 */
#ifndef UPSTREAMFS_HELM_H
#define UPSTREAMFS_HELM_H

#include <stdbool.h>
#include <stddef.h>

#define HELM_INDEX_OUT_MAX (128u << 20) /* a rewritten index.yaml */

/* One chart version of an index. */
struct helm_chart {
    char *file;   /* <name>-<version>.tgz, or NULL when the version cannot be served */
    char *url;    /* absolute upstream URL */
    char *digest; /* hex sha256 or NULL */
    char *name, *version; /* as the index says them, or NULL */
    bool hidden;          /* left out of the rewritten index (helm_rewrite_index_filtered) */
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

/*
 * The same, leaving out every chart version hide(arg, name, version) is true for (a proxy's
 * package rules, include/upstreamfs/policy.h); a chart whose versions are all hidden keeps an
 * empty list. hide NULL: helm_rewrite_index. An index whose hidden part defines a YAML anchor
 * is rewritten without leaving anything out (an alias elsewhere could name it): the chart
 * files stay refused by the engine all the same.
 */
int helm_rewrite_index_filtered(const char *body, size_t len, const char *repo_url,
                                bool (*hide)(void *arg, const char *name, const char *version),
                                void *arg, char **out, size_t *out_len);

#endif

/*
 * strset: a set of strings by value (open addressing, FNV-1a, grown at half
 * full). The set borrows its strings: each must outlive its membership.
 * A zeroed struct strset is an empty set.
 */
#ifndef UPSTREAMFS_STRSET_H
#define UPSTREAMFS_STRSET_H

#include <stdbool.h>
#include <stddef.h>

struct strset {
    const char **slots; /* NULL: free */
    size_t nslots;      /* 0 or a power of two */
    size_t n;
};

/* Adds s: 1 when added, 0 when an equal string is in the set already, -ENOMEM. */
int strset_add(struct strset *set, const char *s);
/* Whether an equal string is in the set. */
bool strset_has(const struct strset *set, const char *s);
/* Frees the table (not the strings); the set is empty again. */
void strset_free(struct strset *set);

#endif

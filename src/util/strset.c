/* strset: see include/upstreamfs/strset.h. */
#include "upstreamfs/strset.h"
#include "upstreamfs/hash.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The slot holding s, or the free one where it goes; the table has a free slot. */
static const char **slot_of(const char **slots, size_t nslots, const char *s)
{
    size_t i = (size_t)hash_fnv1a(s, strlen(s)) & (nslots - 1);
    while (slots[i] && strcmp(slots[i], s) != 0)
        i = (i + 1) & (nslots - 1);
    return &slots[i];
}

static int grow(struct strset *set)
{
    size_t nslots = set->nslots ? set->nslots * 2 : 64;
    const char **slots = calloc(nslots, sizeof(*slots));
    if (!slots)
        return -ENOMEM;
    for (size_t i = 0; i < set->nslots; i++)
        if (set->slots[i])
            *slot_of(slots, nslots, set->slots[i]) = set->slots[i];
    free(set->slots);
    set->slots = slots;
    set->nslots = nslots;
    return 0;
}

int strset_add(struct strset *set, const char *s)
{
    if ((set->n + 1) * 2 > set->nslots && grow(set) < 0)
        return -ENOMEM;
    const char **slot = slot_of(set->slots, set->nslots, s);
    if (*slot)
        return 0;
    *slot = s;
    set->n++;
    return 1;
}

bool strset_has(const struct strset *set, const char *s)
{
    return set->nslots && *slot_of(set->slots, set->nslots, s);
}

void strset_free(struct strset *set)
{
    free(set->slots);
    memset(set, 0, sizeof(*set));
}

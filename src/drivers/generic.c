/*
 * generic: a plain HTTP file tree. Every file may change on the remote, so
 * every file is revalidated after the proxy's --metadata-ttl (a conditional
 * GET that usually answers 304); its bytes stay in the store and the
 * kernel's page cache between revalidations.
 */
#include "upstreamfs/driver.h"
#include "upstreamfs/httptree.h"

static int generic_lookup(struct upstream *u, const char *path, struct drv_entry *out)
{
    return httptree_lookup(u, path, true, out);
}

const struct driver_ops driver_generic = {
    .type = "generic",
    .lookup = generic_lookup,
    .list = httptree_list,
};

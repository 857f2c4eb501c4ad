/*
 * proxy_type: what the engine serves under a top-level key, from the
 * configuration it holds in memory (engine_proxy_type, engine.h), so the
 * shim learns a route's protocol without a query of the config store.
 */
#include "engine_i.h"

#include <errno.h>
#include <string.h>

int engine_proxy_type(struct engine *e, const char *key, enum proxy_type *type,
                      enum proxy_source *source, bool *is_registry)
{
    int rc = -ENOENT;
    pthread_rwlock_rdlock(&e->cfg_lock);
    for (size_t i = 0; i < e->n_ups && rc < 0; i++) {
        const struct proxy *p = &e->ups[i]->cfg;
        if (strcmp(p->key, key) != 0)
            continue;
        *type = p->type;
        if (source)
            *source = p->source;
        *is_registry = false;
        rc = 0;
    }
    for (size_t i = 0; i < e->n_regs && rc < 0; i++) {
        if (strcmp(e->regs[i].name, key) != 0)
            continue;
        *type = e->regs[i].type;
        if (source)
            *source = SOURCE_NONE;
        *is_registry = true;
        rc = 0;
    }
    pthread_rwlock_unlock(&e->cfg_lock);
    return rc;
}

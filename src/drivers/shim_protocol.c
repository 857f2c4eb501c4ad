/*
 * shim_protocol: the table of the shim protocols (include/upstreamfs/shim_protocol.h), by
 * proxy type; each protocol is defined beside its driver.
 */
#include "upstreamfs/shim_protocol.h"
#include "upstreamfs/config.h"

#include <stddef.h>

const struct shim_protocol *shim_protocol_for_type(int proxy_type)
{
    switch (proxy_type) {
    case PROXY_NPM:
        return &shim_protocol_npm;
    case PROXY_PYPI:
        return &shim_protocol_pypi;
    default:
        return NULL;
    }
}

/* test_httpd: see test_httpd.h. */
#include "test_httpd.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>

struct MHD_Daemon *test_httpd_start(MHD_AccessHandlerCallback handler, void *cls, char *base,
                                    size_t len)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL,
                         NULL, handler, cls, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_END);
    if (!d)
        return NULL;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    if (!info) {
        MHD_stop_daemon(d);
        return NULL;
    }
    snprintf(base, len, "http://127.0.0.1:%u", info->port);
    return d;
}

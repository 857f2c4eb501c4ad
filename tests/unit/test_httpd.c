/* test_httpd: see test_httpd.h. */
#include "test_httpd.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>

/* libmicrohttpd calls once with the headers and again for the body: the second call answers. */
static enum MHD_Result answer_once(void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *version, const char *upload,
                                   size_t *upload_size, void **ctx)
{
    (void)version, (void)upload, (void)upload_size;
    if (*ctx == NULL) {
        *ctx = c;
        return MHD_YES;
    }
    return (*(const test_httpd_handler *)cls)(c, url, method);
}

struct MHD_Daemon *test_httpd_start(test_httpd_handler handler, char *base, size_t len)
{
    /* Where each server's handler is kept for answer_once (a test starts one or two). */
    static test_httpd_handler slots[8];
    static size_t n_slots;
    if (n_slots == sizeof(slots) / sizeof(slots[0]))
        return NULL;
    test_httpd_handler *slot = &slots[n_slots++];
    *slot = handler;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL,
                         NULL, answer_once, slot, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_END);
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

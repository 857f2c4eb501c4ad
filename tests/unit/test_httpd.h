/*
 * test_httpd: the in-process HTTP server of the unit tests (libmicrohttpd on
 * 127.0.0.1, a port the kernel picks, one thread per connection), shared by
 * test_flight.c, test_fetch_header.c and test_driver.c. Compiled only into
 * tests.
 */
#ifndef UPSTREAMFS_TEST_HTTPD_H
#define UPSTREAMFS_TEST_HTTPD_H

#include <microhttpd.h>
#include <stddef.h>

/* Answers one request, called once its headers are in (the tests send no bodies). */
typedef enum MHD_Result (*test_httpd_handler)(struct MHD_Connection *c, const char *url,
                                              const char *method);

/*
 * Starts a server answering with handler and writes "http://127.0.0.1:PORT" to base. Returns
 * the daemon (stop it with MHD_stop_daemon), or NULL.
 */
struct MHD_Daemon *test_httpd_start(test_httpd_handler handler, char *base, size_t len);

#endif

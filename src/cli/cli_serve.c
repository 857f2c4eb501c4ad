/*
 * cli_serve: "upstreamfs serve", the HTTP shim in the foreground on its own
 * engine (the mount runs the same shim with -o listen=).
 *
 * Options are checked (address, exposure rule, files) before the engine
 * opens, so bad usage exits 2 without touching the state. SIGINT, SIGTERM
 * and SIGHUP are blocked before any thread exists, so every thread the
 * engine and libmicrohttpd start inherits the mask and the main thread alone
 * receives them, in sigwait; it then stops the shim (ending waits of
 * requests in flight) and closes the engine. SIGPIPE is ignored: a client
 * that hangs up mid-reply is an error on that connection, not the process.
 */
#include "upstreamfs/cli.h"
#include "upstreamfs/engine.h"
#include "upstreamfs/fetch.h"
#include "upstreamfs/log.h"
#include "upstreamfs/shim.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

static const char usage[] =
    "Usage: upstreamfs serve [--listen HOST:PORT] [--default NAME]\n"
    "                        [--tls-cert FILE --tls-key FILE] [--htpasswd FILE | --open]\n"
    "                        [--admin USER]... [--public-name NAME]... [--cache-public]\n"
    "\n"
    "Serves the cache over HTTP in the foreground (logs, one line per request, to stderr)\n"
    "until SIGINT or SIGTERM. It shares the state dir, and every download, with mounts\n"
    "and other servers on it. Routes:\n"
    "  GET|HEAD /KEY/PATH             a proxy's or registry's files as the mount shows\n"
    "                                 them (Range, ETag); directories as HTML index pages;\n"
    "                                 a Helm index.yaml's chart URLs lead back here\n"
    "  /api/v1/proxies[/KEY]          GET, POST, PUT, DELETE: the objects of\n"
    "  /api/v1/registries[/NAME]      \"proxy show --json\" and \"registry show --json\";\n"
    "                                 admins only (see Access below)\n"
    "  GET /metrics                   Prometheus text\n"
    "  GET /healthz                   200 when the engine answers (never needs credentials)\n"
    "  /v2/KEY/REPO/manifests|blobs|tags/list|referrers/...\n"
    "                                 the registry API (pull side) for docker and ecr\n"
    "                                 proxies and docker registries\n"
    "  GET /, /ui/...                 the web page: proxies, registries, the cache\n"
    "\n"
    "Access: the web page and /api/v1 need an admin: the admin token, which the first\n"
    "serve makes in STATEDIR/admin-token (mode 0600; API clients send \"Authorization:\n"
    "Bearer TOKEN\"), or an --admin user. Open the web page once at the address serve\n"
    "prints on a terminal at start, http://HOST:PORT/ui/#token=TOKEN; the page keeps the\n"
    "token for the tab. Pulls (/KEY/..., /v2, /metrics) are open, or need any --htpasswd\n"
    "user. Requests whose Host is not an IP address, localhost or a --public-name are\n"
    "answered 421 (but /healthz); state-changing requests from another Origin 403.\n"
    "Served files carry \"Content-Security-Policy: sandbox\": their scripts never run.\n"
    "Answers say how long HTTP caches (Squid, nginx proxy_cache) may keep them:\n"
    "digest-addressed and released files a year (immutable), mutable documents what\n"
    "is left of their freshness, listings and rendered documents until revalidated\n"
    "(ETag, Last-Modified; conditional requests are answered 304), errors not at all.\n"
    "A file whose sha256 is known carries it in Repr-Digest; one streamed before it is\n"
    "known carries it in a trailer to clients that send \"TE: trailers\" (edges do).\n"
    "\n"
    "Options:\n"
    "  --listen HOST:PORT   address to serve; default " SHIM_DEFAULT_LISTEN " ([ADDR]:PORT\n"
    "                       for IPv6). An address that is not loopback needs --tls-cert,\n"
    "                       --tls-key and --htpasswd, or --open\n"
    "  --default NAME       the proxy or registry for /v2/REPO paths whose first component\n"
    "                       is none (what Docker registry-mirrors send)\n"
    "  --tls-cert FILE      serve HTTPS with this PEM certificate (chain) ...\n"
    "  --tls-key FILE       ... and this PEM private key\n"
    "  --htpasswd FILE      require HTTP Basic authentication for every route but /healthz;\n"
    "                       FILE holds USER:HASH lines with bcrypt ($2y$, $2b$; htpasswd -B)\n"
    "                       or SHA-crypt ($5$, $6$) hashes\n"
    "  --open               serve a non-loopback address without TLS and authentication:\n"
    "                       anyone who can reach it can read the cache (changes still need\n"
    "                       the admin token)\n"
    "  --admin USER         this --htpasswd user may use /api/v1 and the web page with\n"
    "                       its password (repeatable); other users may only pull\n"
    "  --public-name NAME   also answer requests for Host NAME (repeatable): the DNS name\n"
    "                       clients use for this server, e.g. behind a load balancer\n"
    "  --cache-public       with --htpasswd: shared caches may keep the answers too\n"
    "                       (Cache-Control public); without it they are private\n"
    "  -h, --help           show this help\n";

enum {
    OPT_LISTEN = 256,
    OPT_DEFAULT,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_HTPASSWD,
    OPT_OPEN,
    OPT_ADMIN,
    OPT_PUBLIC_NAME,
    OPT_CACHE_PUBLIC /* the last: parse_serve_args takes OPT_LISTEN..OPT_CACHE_PUBLIC */
};

static const struct option opts[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"default", required_argument, NULL, OPT_DEFAULT},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"htpasswd", required_argument, NULL, OPT_HTPASSWD},
    {"open", no_argument, NULL, OPT_OPEN},
    {"admin", required_argument, NULL, OPT_ADMIN},
    {"public-name", required_argument, NULL, OPT_PUBLIC_NAME},
    {"cache-public", no_argument, NULL, OPT_CACHE_PUBLIC},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Records one option of the table in so (admins and names have room for every argument). */
static void take_serve_option(int c, struct shim_opts *so, const char **admins, const char **names)
{
    switch (c) {
    case OPT_LISTEN:
        so->listen = optarg;
        break;
    case OPT_DEFAULT:
        so->default_name = optarg;
        break;
    case OPT_TLS_CERT:
        so->tls_cert = optarg;
        break;
    case OPT_TLS_KEY:
        so->tls_key = optarg;
        break;
    case OPT_HTPASSWD:
        so->htpasswd = optarg;
        break;
    case OPT_OPEN:
        so->open = true;
        break;
    case OPT_ADMIN:
        admins[so->n_admins++] = optarg;
        break;
    case OPT_CACHE_PUBLIC:
        so->cache_public = true;
        break;
    default: /* OPT_PUBLIC_NAME */
        names[so->n_public_names++] = optarg;
        break;
    }
}

/*
 * Parses the options into so and checks them (address, exposure rule, files) before anything
 * opens. -1 to serve, else the exit status after printing the help or what is wrong.
 */
static int parse_serve_args(int argc, char **argv, struct shim_opts *so, const char **admins,
                            const char **names)
{
    struct config_error err = {0};
    int c, crc, rc = -1;
    opterr = 0;
    optind = 0;
    while (rc < 0 && (c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(usage, stdout);
            rc = CLI_EXIT_OK;
        } else if (c < OPT_LISTEN || c > OPT_CACHE_PUBLIC) {
            rc = cli_bad_option("serve", c, argv);
        } else {
            take_serve_option(c, so, admins, names);
        }
    }
    if (rc < 0 && optind != argc) {
        cli_errorf("serve: takes no arguments (see upstreamfs serve --help)");
        rc = CLI_EXIT_USAGE;
    }
    if (rc < 0 && (crc = shim_opts_check(so, &err)) < 0)
        rc = cli_report("serve", crc, &err);
    return rc;
}

/*
 * Serves until SIGINT, SIGTERM or SIGHUP: blocks them before any thread exists (the threads
 * inherit the mask, the main thread alone takes them in sigwait), opens the engine, starts the
 * shim, and stops both in order. The exit status.
 */
static int serve(struct cli_globals *g, const struct shim_opts *so)
{
    struct config_error err = {0};
    struct engine *e = NULL;
    struct shim *s = NULL;
    sigset_t sigs;
    int rc, sig = 0;

    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct engine_opts eo = {.state_dir = g->state_dir, .publish_health = true};
    /* A core file of the server would hold the proxies' credentials. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if ((rc = fetch_global_init()) < 0 || (rc = engine_open(&eo, &e)) < 0) {
        char q[CONFIG_QUOTE_MAX];
        cli_errorf("serve: state dir %s: %s", config_quote(q, sizeof(q), g->state_dir),
                   strerror(-rc));
        rc = CLI_EXIT_FAIL;
    } else if ((rc = shim_start(e, g->state_dir, so, &s, &err)) < 0) {
        rc = cli_report("serve", rc, &err); /* -EINVAL exits 2; a failed bind 1 */
    } else {
        shim_print_page(s, stdout);
        while (sigwait(&sigs, &sig) != 0)
            ;
        log_info("serve: %s, stopping", strsignal(sig));
        rc = CLI_EXIT_OK;
    }
    shim_stop(s);
    engine_close(e);
    fetch_global_cleanup();
    return rc;
}

int cli_serve_main(struct cli_globals *g, int argc, char **argv)
{
    struct shim_opts so = {0};
    /* At most argc of each: every value is one argument. */
    const char **admins = calloc((size_t)argc + 1, sizeof(*admins));
    const char **names = calloc((size_t)argc + 1, sizeof(*names));
    int rc = CLI_EXIT_FAIL;

    if (!admins || !names) {
        cli_errorf("serve: out of memory");
    } else {
        so.admins = admins;
        so.public_names = names;
        rc = parse_serve_args(argc, argv, &so, admins, names);
        if (rc < 0)
            rc = serve(g, &so);
    }
    free(admins);
    free(names);
    return rc;
}

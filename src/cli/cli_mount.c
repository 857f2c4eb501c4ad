/*
 * cli_mount: "upstreamfs mount MOUNTPOINT [-f] [-o OPT[,OPT]...]" and the
 * mount.fuse3 form "upstreamfs STATEDIR MOUNTPOINT -o OPTS".
 *
 * Without -f the command returns only once the mount is live: the parent
 * forks before any thread exists, and the child reports through a pipe
 * either "mounted" or the one-line reason it could not mount. A mount
 * point left dead by a crashed daemon ("Transport endpoint is not
 * connected") is detached first, so a restart after kill -9 just works.
 */
#include "upstreamfs/cli.h"
#include "upstreamfs/engine.h"
#include "upstreamfs/fetch.h"
#include "upstreamfs/flight.h"
#include "upstreamfs/fs.h"
#include "upstreamfs/index.h"
#include "upstreamfs/log.h"
#include "upstreamfs/proxy_fields.h"
#include "upstreamfs/shim.h"
#include "upstreamfs/shim_admin.h"
#include "upstreamfs/shim_http.h"
#include "upstreamfs/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define MOUNT_THREADS   64
#define MOUNT_INVAL_WAIT_MS 5000 /* fs_session_end: at most this for kernel cache invalidations */
#define MOUNT_NAMES_MAX 16 /* admin= and public_name= options, each */

struct mount_opts {
    const char *state_dir;
    const char *mountpoint;
    bool foreground;
    char *log_path;
    char *listen;
    char *default_name; /* default=NAME: the shim's --default */
    char *htpasswd;     /* htpasswd=FILE: the shim's --htpasswd */
    char *admins[MOUNT_NAMES_MAX], *public_names[MOUNT_NAMES_MAX]; /* admin=, public_name= */
    size_t n_admins, n_public_names;
    bool cache_public; /* cache_public: the shim's --cache-public */
    char *platform;
    int64_t quota;
    int fill;           /* fill=auto|never|eager: enum flight_fill */
    int streams;        /* streams=N */
    int64_t streams_min; /* streams_min=SIZE */
    int64_t lazy_min;    /* lazy_min=SIZE; 0 given: -1 (off) */
    bool private_mount; /* do not add allow_other/default_permissions as root */
    unsigned max_read;  /* max_read=N (also passed to FUSE), 0: FS_MAX_READ */
    char fuse_opts[4096];
};

/* Undoes mountinfo's octal escapes (\040 for a space, ...) in place. */
static void unescape_octal(char *s)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
            p[3] >= '0' && p[3] <= '7') {
            *o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
            p += 3;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
}

/*
 * The file system type mounted at mnt (a realpath) according to
 * /proc/self/mountinfo, into type; 1 when something is mounted there, else 0.
 */
static int mounted_at(const char *mnt, char *type, size_t len)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    char line[8192];
    int found = 0;
    while (f && fgets(line, sizeof(line), f)) {
        char *save = NULL, *point = NULL, *tok = strtok_r(line, " ", &save);
        for (int i = 0; tok && i < 4; i++) /* id parent major:minor root, then the point */
            tok = strtok_r(NULL, " ", &save);
        point = tok;
        while (tok && strcmp(tok, "-") != 0)
            tok = strtok_r(NULL, " ", &save);
        char *fstype = tok ? strtok_r(NULL, " ", &save) : NULL;
        if (!point || !fstype)
            continue;
        unescape_octal(point);
        if (strcmp(point, mnt) == 0) {
            snprintf(type, len, "%s", fstype);
            found = 1; /* the last one listed is the one on top */
        }
    }
    if (f)
        fclose(f);
    return found;
}

/*
 * Every mount of a state dir holds STATEDIR/mount.lock shared for its life.
 * One that cannot take it alone joins running mounts: allowed when it shows
 * the same platforms as they do (the "platforms" setting the engine records
 * for the mount that owns the quota, engine.c engine_open); a different
 * filter would rebuild their docker layouts under them, so it is refused.
 * Returns the lock's descriptor (kept open, inherited by the daemon), or -1
 * after printing why not.
 */
static int join_state_mounts(const struct mount_opts *mo)
{
    char lockp[PATH_MAX], running[1024] = "";
    snprintf(lockp, sizeof(lockp), "%s/mount.lock", mo->state_dir);
    int fd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        cli_errorf("mount: %s: %s", lockp, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
        flock(fd, LOCK_SH);
        return fd;
    }
    struct state *st = NULL;
    struct index *ix = NULL;
    if (state_open(mo->state_dir, &st) == 0 && index_open(st->db, &ix) == 0)
        index_setting_get(ix, "platforms", running, sizeof(running));
    index_close(ix);
    state_close(st);
    const char *mine = mo->platform ? mo->platform : "";
    if (strcmp(running, mine) != 0) {
        char q[CONFIG_QUOTE_MAX], want[1100] = "no platform=";
        if (running[0])
            snprintf(want, sizeof(want), "-o platform=%s", running);
        cli_errorf("mount: platform: state dir %s is mounted with %s%s already; a second mount "
                   "of it must show the same platforms (give %s, or unmount the other)",
                   config_quote(q, sizeof(q), mo->state_dir), running[0] ? "platform=" : "",
                   running[0] ? running : "every platform", want);
        close(fd);
        return -1;
    }
    flock(fd, LOCK_SH);
    return fd;
}

static const char usage[] =
    "usage: upstreamfs mount MOUNTPOINT [-f] [-o OPT[,OPT]...]\n"
    "\n"
    "Mounts every proxy and registry as a directory of MOUNTPOINT. Returns once the mount\n"
    "is live; the daemon logs to STATEDIR/upstreamfs.log.\n"
    "\n"
    "  -f, --foreground   stay in the foreground and log to stderr\n"
    "  -o OPT[,OPT]...    options:\n"
    "       log=PATH            log file of the daemon\n"
    "       quota=SIZE          cache size limit (bytes, or with K, M, G); default the smaller\n"
    "                           of 10G and half the free space of the state dir's filesystem\n"
    "       lazy_min=SIZE       files of SIZE or more (default 16M; 0: none) are fetched by\n"
    "                           the 128 KiB chunks read (Range); edges behind a caching proxy\n"
    "                           (Squid: it caches whole answers, not ranges) want 0\n"
    "       fill=auto|never|eager  the rest of such a file (lazy_min) follows in order:\n"
    "                           auto (the default) once a reader reads sequentially, never,\n"
    "                           or eager (from the open)\n"
    "       streams=N           the fill of a large file uses up to N (1 to 16, default 4)\n"
    "                           concurrent ranged requests\n"
    "       streams_min=SIZE    ... for files of SIZE or more (default 64M)\n"
    "       private             as root, do not turn on allow_other and default_permissions\n"
    "       listen=HOST:PORT    also serve the HTTP shim there, on this mount's engine\n"
    "                           (see upstreamfs serve --help; loopback addresses only)\n"
    "       default=NAME        with listen=: the proxy or registry for /v2/REPO paths whose\n"
    "                           first component is none (registry mirrors; serve --default)\n"
    "       htpasswd=FILE       with listen=: Basic authentication (serve --htpasswd)\n"
    "       admin=USER          with htpasswd=: a user who may use the admin API and the\n"
    "                           web page (serve --admin; repeatable, up to 16)\n"
    "       public_name=NAME    with listen=: also answer Host NAME (serve --public-name;\n"
    "                           repeatable, up to 16)\n"
    "       cache_public        with htpasswd=: shared HTTP caches may keep the answers\n"
    "                           (serve --cache-public)\n"
    "       platform=OS/ARCH[:OS/ARCH...]  docker and ecr proxies: show only these platforms\n"
    "       max_read=N          largest read request in bytes (4096 to 1032192, the default,\n"
    "                           which lets replies from the cache be spliced)\n"
    "       any FUSE mount option (allow_other, default_permissions, ro, ...)\n"
    "\n"
    "With listen=, mount prints the web page's address, http://HOST:PORT/ui/#token=TOKEN,\n"
    "when its stdout is a terminal; the admin token is in STATEDIR/admin-token (see\n"
    "upstreamfs serve --help).\n"
    "\n"
    "Unmount with: fusermount3 -u MOUNTPOINT (or umount as root).\n"
    "fstab: STATEDIR MOUNTPOINT fuse.upstreamfs defaults 0 0\n";

static void add_fuse_opt(struct mount_opts *mo, const char *o)
{
    size_t n = strlen(mo->fuse_opts);
    snprintf(mo->fuse_opts + n, sizeof(mo->fuse_opts) - n, "%s%s", n ? "," : "", o);
}

/* A SIZE option's value v: 1 with *q, or -EINVAL (said on stderr). */
static int opt_size(const char *name, const char *v, long long *q)
{
    if (proxy_field_parse_size(v, q) == 0 && *q >= 0)
        return 1;
    cli_errorf("mount: %s: must be a size in bytes, optionally with K, M or G (got \"%s\")", name,
               v);
    return -EINVAL;
}

/*
 * The partial-object options (src/fetch/lazy.c): fill=, streams=, lazy_min=, streams_min=.
 * 1 when o is one of them and valid, -EINVAL when invalid, 0 when o is not one of them.
 */
static int take_lazy_opt(struct mount_opts *mo, const char *o)
{
    int rc = 1;
    long long q;
    if (strncmp(o, "fill=", 5) == 0) {
        const char *v = o + 5;
        mo->fill = !strcmp(v, "auto")    ? FLIGHT_FILL_AUTO
                   : !strcmp(v, "never") ? FLIGHT_FILL_NEVER
                   : !strcmp(v, "eager") ? FLIGHT_FILL_EAGER
                                         : -1;
        if (mo->fill < 0) {
            cli_errorf("mount: fill: must be auto, never or eager (got \"%s\")", v);
            rc = -EINVAL;
        }
    } else if (strncmp(o, "streams=", 8) == 0) {
        char *end;
        long v = strtol(o + 8, &end, 10);
        if (end == o + 8 || *end || v < 1 || v > FLIGHT_STREAMS_MAX) {
            cli_errorf("mount: streams: must be a number from 1 to %d (got \"%s\")",
                       FLIGHT_STREAMS_MAX, o + 8);
            rc = -EINVAL;
        } else {
            mo->streams = (int)v;
        }
    } else if (strncmp(o, "lazy_min=", 9) == 0) {
        if ((rc = opt_size("lazy_min", o + 9, &q)) == 1)
            mo->lazy_min = q == 0 ? -1 : q;
    } else if (strncmp(o, "streams_min=", 12) == 0) {
        if ((rc = opt_size("streams_min", o + 12, &q)) == 1)
            mo->streams_min = q > 0 ? q : 1;
    } else {
        rc = 0;
    }
    return rc;
}

/* Splits -o lists: the program's own options are taken out, the rest goes to FUSE. */
static int take_opts(struct mount_opts *mo, const char *list)
{
    char *copy = strdup(list), *save = NULL;
    int rc = 0, lr;
    if (!copy)
        return -ENOMEM;
    for (char *o = strtok_r(copy, ",", &save); o && rc == 0; o = strtok_r(NULL, ",", &save)) {
        if (strncmp(o, "log=", 4) == 0) {
            free(mo->log_path);
            mo->log_path = strdup(o + 4);
        } else if (strncmp(o, "listen=", 7) == 0) {
            free(mo->listen);
            mo->listen = strdup(o + 7);
        } else if (strncmp(o, "default=", 8) == 0) {
            free(mo->default_name);
            mo->default_name = strdup(o + 8);
        } else if (strncmp(o, "htpasswd=", 9) == 0) {
            free(mo->htpasswd);
            mo->htpasswd = strdup(o + 9);
        } else if (strncmp(o, "admin=", 6) == 0 || strncmp(o, "public_name=", 12) == 0) {
            bool admin = o[0] == 'a';
            size_t *n = admin ? &mo->n_admins : &mo->n_public_names;
            if (*n >= MOUNT_NAMES_MAX) {
                cli_errorf("mount: %s: at most %d", admin ? "admin" : "public_name",
                           MOUNT_NAMES_MAX);
                rc = -EINVAL;
            } else {
                (admin ? mo->admins : mo->public_names)[(*n)++] = strdup(strchr(o, '=') + 1);
            }
        } else if (strcmp(o, "cache_public") == 0) {
            mo->cache_public = true;
        } else if (strncmp(o, "platform=", 9) == 0) {
            free(mo->platform);
            mo->platform = strdup(o + 9);
        } else if ((lr = take_lazy_opt(mo, o)) != 0) {
            rc = lr < 0 ? lr : 0;
        } else if (strncmp(o, "quota=", 6) == 0) {
            long long q;
            if (proxy_field_parse_size(o + 6, &q) < 0) {
                cli_errorf("mount: quota: must be a size in bytes, optionally with K, M or G "
                           "(got \"%s\")",
                           o + 6);
                rc = -EINVAL;
            } else {
                mo->quota = q;
            }
        } else if (strncmp(o, "max_read=", 9) == 0) {
            char *end;
            errno = 0;
            unsigned long v = strtoul(o + 9, &end, 10);
            if (errno || end == o + 9 || *end || v < 4096 || v > FS_MAX_READ) {
                cli_errorf("mount: max_read: must be a byte count from 4096 to %u (got \"%s\")",
                           FS_MAX_READ, o + 9);
                rc = -EINVAL;
            } else {
                mo->max_read = (unsigned)v;
                add_fuse_opt(mo, o);
            }
        } else if (strcmp(o, "private") == 0) {
            mo->private_mount = true;
        } else if (strcmp(o, "rw") == 0 || strcmp(o, "defaults") == 0) {
            /* mount(8) adds these; the mount is as writable as its registries allow anyway */
        } else {
            add_fuse_opt(mo, o);
        }
    }
    free(copy);
    return rc;
}

/* Detaches a mount point whose daemon died; leaves healthy ones alone. */
static int clean_stale_mount(const char *mnt)
{
    /*
     * statfs always reaches the file system's daemon, while stat may be
     * answered from the kernel's cached attributes of a dead mount's root.
     */
    struct statfs sf;
    if (statfs(mnt, &sf) == 0 || errno != ENOTCONN)
        return 0;
    log_warn("%s: the previous daemon is gone (transport endpoint not connected); detaching", mnt);
    if (geteuid() == 0 && umount2(mnt, MNT_DETACH) == 0)
        return 0;
    pid_t pid = fork();
    if (pid == 0) {
        execlp("fusermount3", "fusermount3", "-uz", mnt, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (pid > 0)
        waitpid(pid, &status, 0);
    return pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EBUSY;
}

/* Child side of the startup pipe: one line, empty when mounted. */
static void report(int fd, const char *msg)
{
    if (fd < 0)
        return;
    ssize_t w = write(fd, msg, strlen(msg) + 1);
    (void)w;
    close(fd);
}

/* The web page's address, on this process's stdout (the terminal; never the log). */
static void print_page(const struct mount_opts *mo, const char *token)
{
    char host[256], why[160];
    unsigned port;
    if (mo->listen &&
        shim_http_listen_parse(mo->listen, host, sizeof(host), &port, why, sizeof(why)) == 0)
        shim_admin_print(stdout, host, port, false, token, mo->state_dir);
}

static void mount_opts_free(struct mount_opts *mo)
{
    free(mo->log_path);
    free(mo->listen);
    free(mo->default_name);
    free(mo->platform);
    free(mo->htpasswd);
    for (size_t i = 0; i < mo->n_admins; i++)
        free(mo->admins[i]);
    for (size_t i = 0; i < mo->n_public_names; i++)
        free(mo->public_names[i]);
}

/*
 * The checks made before the fork, so that what is wrong reaches the terminal: the shim's
 * options, a stale mount in the way (detached), the mount point (its realpath into mnt, a
 * directory, nothing mounted there), the state dir; then joins the state dir's mounts
 * (*lock_fd) and makes the shim's admin token (token). 0, or an exit status after printing why.
 */
static int prepare_mount(const struct mount_opts *mo, const struct shim_opts *so, char *mnt,
                         char *token, int *lock_fd)
{
    struct config_error serr = {0};
    struct state *check = NULL;
    struct stat st;
    char fstype[256];
    if (mo->listen && shim_opts_check(so, &serr) < 0)
        return cli_report("mount", -EINVAL, &serr);
    if (mo->default_name && !mo->listen) {
        cli_errorf("mount: default: needs listen=HOST:PORT (it is the shim's --default)");
        return CLI_EXIT_USAGE;
    }
    if ((mo->htpasswd || mo->n_admins || mo->n_public_names || mo->cache_public) &&
        !mo->listen) {
        cli_errorf("mount: htpasswd, admin, public_name and cache_public: need listen=HOST:PORT "
                   "(they are the shim's)");
        return CLI_EXIT_USAGE;
    }
    /*
     * A daemon killed just now may still answer the stale check and be gone by the stat that
     * follows (its connection is aborted as it exits): then the check runs once more.
     */
    int rrc = -ENOTCONN;
    for (int attempt = 0; attempt < 2 && rrc == -ENOTCONN; attempt++) {
        if (clean_stale_mount(mo->mountpoint) < 0) {
            cli_errorf("mount: %s: a stale mount is in the way and could not be detached",
                       mo->mountpoint);
            return CLI_EXIT_FAIL;
        }
        rrc = realpath(mo->mountpoint, mnt) && stat(mnt, &st) == 0 ? 0 : -errno;
    }
    if (rrc < 0) {
        cli_errorf("mount: %s: %s", mo->mountpoint, strerror(-rrc));
        return CLI_EXIT_FAIL;
    }
    if (!S_ISDIR(st.st_mode)) {
        cli_errorf("mount: %s: not a directory", mo->mountpoint);
        return CLI_EXIT_USAGE;
    }
    if (mounted_at(mnt, fstype, sizeof(fstype))) {
        cli_errorf("mount: %s is already mounted (%s); unmount it first (fusermount3 -u %s)", mnt,
                   fstype, mnt);
        return CLI_EXIT_FAIL;
    }
    int src = state_open(mo->state_dir, &check);
    if (src < 0) {
        cli_errorf("mount: state dir %s: %s", mo->state_dir, strerror(-src));
        return CLI_EXIT_FAIL;
    }
    state_close(check);
    if ((*lock_fd = join_state_mounts(mo)) < 0)
        return CLI_EXIT_FAIL;
    /* The shim's admin token, made now so this process can print the page's address. */
    if (mo->listen && shim_admin_token(mo->state_dir, token, &serr) < 0)
        return cli_report("mount", -EIO, &serr);
    return CLI_EXIT_OK;
}

/*
 * Without -f, the command returns only once the mount is live: forks; the parent waits for the
 * child's one line on the startup pipe and returns the command's exit status (printing the web
 * page's address when mounted). The child detaches (setsid), logs to the log file and returns -1
 * with *report_fd its end of the pipe. Also returns an exit status if pipe or fork fail.
 */
static int daemonize(const struct mount_opts *mo, const char *token, int *report_fd)
{
    int pipefd[2];
    char buf[600] = {0}, logp[PATH_MAX], msg[PATH_MAX + 64];
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        cli_errorf("mount: pipe: %s", strerror(errno));
        return CLI_EXIT_FAIL;
    }
    pid_t pid = fork();
    if (pid < 0) {
        cli_errorf("mount: fork: %s", strerror(errno));
        return CLI_EXIT_FAIL;
    }
    if (pid > 0) {
        size_t got = 0;
        ssize_t r;
        close(pipefd[1]);
        while (got < sizeof(buf) - 1 && (r = read(pipefd[0], buf + got, sizeof(buf) - 1 - got)) > 0)
            got += (size_t)r;
        close(pipefd[0]);
        if (got > 0 && buf[0] == '\0') {
            print_page(mo, token);
            return CLI_EXIT_OK;
        }
        cli_errorf("mount: %s", got > 0 ? buf : "the daemon exited before mounting");
        return CLI_EXIT_FAIL;
    }
    close(pipefd[0]);
    setsid();
    snprintf(logp, sizeof(logp), "%s/upstreamfs.log", mo->state_dir);
    if (log_open_file(mo->log_path ? mo->log_path : logp) < 0) {
        snprintf(msg, sizeof(msg), "log: cannot open %s: %s", mo->log_path ? mo->log_path : logp,
                 strerror(errno));
        report(pipefd[1], msg);
        _exit(CLI_EXIT_FAIL);
    }
    *report_fd = pipefd[1];
    return -1;
}

/* The FUSE options the daemon adds to the user's: allow_other for root, max_read, the names. */
static void finish_fuse_opts(struct mount_opts *mo)
{
    if (geteuid() == 0 && !mo->private_mount) {
        /* Builds running as other users must be able to read a root-made mount. */
        if (!strstr(mo->fuse_opts, "allow_other"))
            add_fuse_opt(mo, "allow_other");
        if (!strstr(mo->fuse_opts, "default_permissions"))
            add_fuse_opt(mo, "default_permissions");
    }
    if (!mo->max_read) {
        char o[32];
        mo->max_read = FS_MAX_READ;
        snprintf(o, sizeof(o), "max_read=%u", mo->max_read);
        add_fuse_opt(mo, o);
    }
    add_fuse_opt(mo, "fsname=upstreamfs");
    add_fuse_opt(mo, "subtype=upstreamfs");
}

/* What a running mount holds, started by mount_start and stopped by mount_stop. */
struct mount_run {
    struct engine *e;
    struct shim *shim;
    struct fuse_session *se;
    char *fargv[4];
    struct fuse_args args; /* libfuse may copy it: freed by mount_stop */
    bool mounted;
};

/*
 * Opens the engine, starts the shim (listen=: it serves this engine, so FUSE readers and HTTP
 * clients share every download) and mounts FUSE on mnt. 0, or -1 with the reason in msg.
 */
static int mount_start(struct mount_opts *mo, const struct shim_opts *so, const char *mnt,
                       struct mount_run *m, char *msg, size_t n)
{
    struct config_error serr = {0};
    /* A core file of the daemon would hold the proxies' credentials. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    int frc = fetch_global_init();
    struct engine_opts eo = {.state_dir = mo->state_dir,
                             .quota_bytes = mo->quota,
                             .fill = mo->fill,
                             .streams = mo->streams,
                             .streams_min = mo->streams_min,
                             .lazy_min = mo->lazy_min,
                             .platforms = mo->platform,
                             .owns_quota = true,
                             .publish_health = true};
    int erc = frc < 0 ? frc : engine_open(&eo, &m->e);
    int rc = -1;
    if (erc < 0) {
        snprintf(msg, n, "engine: %s", strerror(-erc));
    } else if (mo->listen && shim_start(m->e, mo->state_dir, so, &m->shim, &serr) < 0) {
        snprintf(msg, n, "%s: %s", serr.field, serr.message);
    } else {
        finish_fuse_opts(mo);
        m->fargv[0] = (char *)"upstreamfs";
        m->fargv[1] = (char *)"-o";
        m->fargv[2] = mo->fuse_opts;
        m->args = (struct fuse_args)FUSE_ARGS_INIT(3, m->fargv);
        m->se = fs_session_new(&m->args, m->e, mo->max_read);
        if (!m->se)
            snprintf(msg, n, "FUSE: invalid options \"%s\"", mo->fuse_opts);
        else if (fuse_set_signal_handlers(m->se) < 0 || fuse_session_mount(m->se, mnt) < 0)
            snprintf(msg, n, "%s: could not mount (is /dev/fuse available?)", mnt);
        else
            rc = 0;
        m->mounted = rc == 0;
    }
    return rc;
}

/* Stops what mount_start started, whatever it reached. */
static void mount_stop(struct mount_run *m)
{
    shim_stop(m->shim); /* before the engine closes; ends the waits of requests in flight */
    if (m->se) {
        fs_session_end(MOUNT_INVAL_WAIT_MS); /* its threads use se: before unmount and destroy */
        if (m->mounted)
            fuse_session_unmount(m->se);
        engine_on_reload(m->e, NULL, NULL); /* fs_session_new's invalidations end with it */
        fuse_remove_signal_handlers(m->se);
        fuse_session_destroy(m->se);
    }
    fuse_opt_free_args(&m->args);
    engine_close(m->e);
    fetch_global_cleanup();
}

/* Points stdin, stdout and stderr at /dev/null and leaves the mount point's directory. */
static void detach_stdio(void)
{
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
        close(devnull);
    }
    if (chdir("/") < 0)
        log_warn("chdir /: %s", strerror(errno));
}

static int run_mount(struct mount_opts *mo)
{
    char mnt[PATH_MAX], msg[PATH_MAX + 700];
    char token[SHIM_ADMIN_TOKEN_HEX + 1] = "";
    struct shim_opts so = {.listen = mo->listen,
                           .default_name = mo->default_name,
                           .htpasswd = mo->htpasswd,
                           .admins = (const char *const *)mo->admins,
                           .n_admins = mo->n_admins,
                           .public_names = (const char *const *)mo->public_names,
                           .n_public_names = mo->n_public_names,
                           .cache_public = mo->cache_public};
    struct mount_run m = {.args = FUSE_ARGS_INIT(0, NULL)};
    int report_fd = -1, lock_fd = -1;
    int rc = prepare_mount(mo, &so, mnt, token, &lock_fd);
    if (rc == CLI_EXIT_OK) /* -1: this process mounts (-f, or the daemon after the fork) */
        rc = mo->foreground ? -1 : daemonize(mo, token, &report_fd);
    if (rc >= 0) /* a failed check, or the parent: the daemon goes on alone */
        return rc;
    if (mount_start(mo, &so, mnt, &m, msg, sizeof(msg)) == 0) {
        log_info("mounted %s (state %s)", mnt, mo->state_dir);
        if (mo->foreground)
            print_page(mo, token);
        secret_wipe(token, sizeof(token));
        if (report_fd >= 0) {
            detach_stdio();
            report(report_fd, "");
        }
        rc = fs_session_loop(m.se, MOUNT_THREADS) < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
        log_info("unmounting %s", mnt);
    } else {
        log_error("mount: %s", msg);
        if (report_fd >= 0)
            report(report_fd, msg);
        else
            cli_errorf("mount: %s", msg);
        rc = CLI_EXIT_FAIL;
    }
    mount_stop(&m);
    close(lock_fd);
    return rc;
}

int cli_mount_main(struct cli_globals *g, int argc, char **argv)
{
    struct mount_opts mo = {.state_dir = g->state_dir};
    static const struct option longopts[] = {{"foreground", no_argument, NULL, 'f'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int c, rc;
    optind = 0; /* 0 re-initialises getopt: cli_main scanned in REQUIRE_ORDER ("+") */
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":fho:", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            mo.foreground = true;
            break;
        case 'o':
            if (take_opts(&mo, optarg) < 0)
                return CLI_EXIT_USAGE;
            break;
        case 'h':
            fputs(usage, stdout);
            return CLI_EXIT_OK;
        default:
            return cli_bad_option("mount", c, argv);
        }
    }
    if (optind != argc - 1) {
        cli_errorf("mount: MOUNTPOINT: exactly one mount point is required (see upstreamfs "
                   "mount --help)");
        return CLI_EXIT_USAGE;
    }
    mo.mountpoint = argv[optind];
    rc = run_mount(&mo);
    mount_opts_free(&mo);
    return rc;
}

int cli_mount_fstab_main(struct cli_globals *g, int argc, char **argv)
{
    struct mount_opts mo = {.state_dir = argv[0]};
    (void)g;
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
            if (take_opts(&mo, argv[++i]) < 0)
                return CLI_EXIT_USAGE;
        } else if (strncmp(argv[i], "-o", 2) == 0 && argv[i][2]) {
            if (take_opts(&mo, argv[i] + 2) < 0)
                return CLI_EXIT_USAGE;
        } else if (strcmp(argv[i], "-f") == 0) {
            mo.foreground = true;
        } else if (!mo.mountpoint && argv[i][0] != '-') {
            mo.mountpoint = argv[i];
        } else {
            cli_errorf("mount: unexpected argument \"%s\" (usage: upstreamfs STATEDIR MOUNTPOINT "
                       "[-o OPTS])",
                       argv[i]);
            return CLI_EXIT_USAGE;
        }
    }
    if (!mo.mountpoint) {
        cli_errorf("mount: MOUNTPOINT: required (usage: upstreamfs STATEDIR MOUNTPOINT [-o OPTS])");
        return CLI_EXIT_USAGE;
    }
    int rc = run_mount(&mo);
    mount_opts_free(&mo);
    return rc;
}

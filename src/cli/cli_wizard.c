/*
 * cli_wizard: the guided "upstreamfs proxy create" (see cli_wizard.h).
 *
 * It asks the questions of the product's create-proxy flow, in its order,
 * and nothing else: type, key, source (docker only), URL (where the source
 * has none built in), authentication, access key and secret (access-key
 * only). Every other setting keeps the default that "proxy create" gives it.
 *
 * Each answer goes through the functions the command-line options go
 * through (config_type_parse, config_key_validate, config_source_parse,
 * config_auth_parse, config_proxy_validate, config_secret_normalise), so an
 * answer is refused exactly when the option would be, with the same
 * message, and the question is asked again. After every answer the proxy so
 * far is validated as a whole: an error about a question not yet asked is
 * left for that question, and an error about one already answered asks that
 * one again (private ECR with anonymous auth asks for the auth again; an
 * ECR console URL that only works with credentials goes back to the URL).
 * Until the auth is answered, validation assumes the auth that asks least
 * of the URL (aws-chain for ecr, else anonymous), so a URL is never refused
 * for a reason the auth question can still settle.
 *
 * Input is read with read(2) from fd 0 a byte at a time, never through
 * stdio's buffer, so answers typed ahead stay queued in the terminal for the
 * questions they answer, the secret's included. Echo is turned off with
 * TCSANOW (TCSAFLUSH would discard typed-ahead input) and turned back on
 * before any other output, on every way out, and from a handler for the
 * signals that end the process. Nothing is written until the last answer:
 * the state dir is only read (for the name's uniqueness) before that; the
 * proxy is then stored by config_crud's commit, as "proxy create" stores it.
 */
#include "cli_wizard.h"
#include "upstreamfs/config_crud.h"
#include "upstreamfs/defaults.h"
#include "upstreamfs/secret.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#define ANSWER_MAX 4096 /* a terminal's line holds 4095 bytes */
#define SECRET_CAP (CONFIG_SECRET_MAX + 3)

enum step { S_TYPE, S_KEY, S_SOURCE, S_URL, S_AUTH, S_ACCESS, S_SECRET, S_DONE };

/* What a question's reader returns besides 0. */
enum { ASK_EOF = -1000 };

struct wizard {
    struct cli_globals *g;
    struct proxy p;    /* the answers so far; key "" until answered */
    unsigned answered; /* bit per enum step */
    char *url;         /* the URL as typed, for the equivalent command */
    char *secret;      /* SECRET_CAP + 1 bytes, wiped before it is freed */
    struct state *st;  /* read for uniqueness; NULL while the state dir does not exist */
};

/* ---- terminal ------------------------------------------------------------------------------ */

static struct termios saved_tio;
static volatile sig_atomic_t echo_is_off;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fflush(stderr);
}

static void complain(const struct config_error *err)
{
    say("  ! %s: %s\n", err->field, err->message);
}

static void echo_on(void)
{
    if (echo_is_off) {
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
        echo_is_off = 0;
    }
}

/* Puts the terminal back and lets the signal do what it would have done. */
static void on_signal(int sig)
{
    if (echo_is_off)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio); /* async-signal-safe */
    signal(sig, SIG_DFL);
    raise(sig);
}

static const int end_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

static int echo_off(struct sigaction *old)
{
    struct termios quiet;
    struct sigaction sa = {.sa_handler = on_signal};
    if (tcgetattr(STDIN_FILENO, &saved_tio) < 0)
        return -errno;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(end_signals) / sizeof(end_signals[0]); i++)
        sigaction(end_signals[i], &sa, &old[i]);
    quiet = saved_tio;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    quiet.c_lflag |= ECHONL;
    echo_is_off = 1;
    /* TCSANOW, never TCSAFLUSH: that would drop what was typed ahead. */
    if (tcsetattr(STDIN_FILENO, TCSANOW, &quiet) < 0) {
        int rc = -errno;
        echo_is_off = 0;
        return rc;
    }
    return 0;
}

static void echo_restore(const struct sigaction *old)
{
    echo_on();
    for (size_t i = 0; i < sizeof(end_signals) / sizeof(end_signals[0]); i++)
        sigaction(end_signals[i], &old[i], NULL);
}

/*
 * Reads one line from fd 0 into buf (NUL-terminated, without the newline).
 * 0; ASK_EOF when input ends before any byte of it; -E2BIG for a line longer
 * than n - 1 (read to its end and dropped); another negative errno.
 */
static int read_line(char *buf, size_t n, size_t *len)
{
    size_t got = 0;
    bool over = false;
    for (;;) {
        char c;
        ssize_t r = read(STDIN_FILENO, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0) {
            if (got == 0 && !over)
                return ASK_EOF;
            break;
        }
        if (c == '\n')
            break;
        if (got + 1 < n)
            buf[got++] = c;
        else
            over = true;
    }
    buf[got] = '\0';
    *len = got;
    return over ? -E2BIG : 0;
}

/* Asks prompt and reads an answer with surrounding blanks removed. */
static int ask_line(const char *prompt, char *buf, size_t n)
{
    size_t len;
    for (;;) {
        say("%s", prompt);
        int rc = read_line(buf, n, &len);
        if (rc == -E2BIG) {
            say("  ! answer: must be at most %zu bytes\n", n - 1);
            continue;
        }
        if (rc < 0)
            return rc;
        while (len && isspace((unsigned char)buf[len - 1]))
            buf[--len] = '\0';
        size_t lead = strspn(buf, " \t\r\v\f");
        memmove(buf, buf + lead, len - lead + 1);
        return 0;
    }
}

/* ---- menus ----------------------------------------------------------------------------------- */

struct row {
    const char *value; /* the option's value word, as --type/--source/--auth take it */
    const char *text;
};

/*
 * Shows a numbered menu and reads a choice: a number, a value word (any
 * case; ' ' and '_' for '-'), or nothing for def (when def is non-NULL).
 * The value word, unchecked otherwise, is left in out: the caller's parser
 * judges it.
 */
static int ask_menu(const char *title, const struct row *rows, size_t n, const char *def, char *out,
                    size_t outlen)
{
    char prompt[160];
    say("\n%s:\n", title);
    for (size_t i = 0; i < n; i++)
        say("  %zu) %-11s %s\n", i + 1, rows[i].value, rows[i].text);
    snprintf(prompt, sizeof(prompt), "%s (1-%zu or a name)%s%s%s: ", title, n, def ? " [" : "",
             def ? def : "", def ? "]" : "");
    for (;;) {
        int rc = ask_line(prompt, out, outlen);
        if (rc < 0)
            return rc;
        if (!*out) {
            if (def) {
                snprintf(out, outlen, "%s", def);
                return 0;
            }
            say("  ! choose one of 1-%zu, or type a name\n", n);
            continue;
        }
        char *end;
        long k = strtol(out, &end, 10);
        if (!*end && isdigit((unsigned char)out[0])) {
            if (k >= 1 && (size_t)k <= n) {
                snprintf(out, outlen, "%s", rows[k - 1].value);
                return 0;
            }
            say("  ! choose one of 1-%zu, or type a name\n", n);
            continue;
        }
        for (char *p = out; *p; p++)
            *p = *p == ' ' || *p == '_' ? '-' : (char)tolower((unsigned char)*p);
        if (!strcmp(out, "docker-hub") || !strcmp(out, "hub"))
            snprintf(out, outlen, "dockerhub");
        return 0;
    }
}

/* ---- validation of the answers so far ---------------------------------------------------- */

static enum step step_of_field(const char *field)
{
    static const struct {
        const char *field;
        enum step step;
    } map[] = {
        {"type", S_TYPE}, {"key", S_KEY},           {"source", S_SOURCE},     {"url", S_URL},
        {"auth", S_AUTH}, {"access_key", S_ACCESS}, {"secret_key", S_SECRET},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (!strcmp(field, map[i].field))
            return map[i].step;
    return S_DONE;
}

static bool has(const struct wizard *w, enum step s)
{
    return w->answered & (1u << s);
}

/* Validates the proxy so far (see the file comment); 0 or -EINVAL with err. */
static int check_so_far(struct wizard *w, struct config_error *err)
{
    struct proxy c;
    int rc = config_proxy_copy(&c, &w->p);
    if (rc < 0)
        return rc;
    if (!has(w, S_AUTH))
        config_proxy_set_auth(&c, c.type == PROXY_ECR ? AUTH_AWS_CHAIN : AUTH_ANONYMOUS);
    rc = config_proxy_validate(&c, has(w, S_SECRET), err);
    config_proxy_clear(&c);
    return rc;
}

/* The question after s, skipping those that do not apply to the answers. */
static enum step next_step(const struct wizard *w, enum step s)
{
    switch (s) {
    case S_TYPE:
        return S_KEY;
    case S_KEY:
        return w->p.type == PROXY_DOCKER ? S_SOURCE : S_URL;
    case S_SOURCE:
        return w->p.source == SOURCE_CUSTOM ? S_URL : S_AUTH;
    case S_URL:
        return S_AUTH;
    case S_AUTH:
        return w->p.auth == AUTH_ACCESS_KEY ? S_ACCESS : S_DONE;
    case S_ACCESS:
        return S_SECRET;
    default:
        return S_DONE;
    }
}

/* ---- the questions --------------------------------------------------------------------------- */

static const char *const type_text[PROXY_TYPE_COUNT] = {
    [PROXY_DOCKER] = "Docker Hub or any Docker/OCI registry",
    [PROXY_ECR] = "Amazon ECR, private or public",
    [PROXY_HELM] = "a Helm chart repository",
    [PROXY_MAVEN] = "a Maven repository",
    [PROXY_NPM] = "an npm registry",
    [PROXY_PYPI] = "a Python package index",
    [PROXY_GENERIC] = "any HTTP file tree",
};

static int ask_type(struct wizard *w)
{
    char text[PROXY_TYPE_COUNT][96], answer[ANSWER_MAX];
    struct row rows[PROXY_TYPE_COUNT];
    struct config_error err = {0};
    enum proxy_type t;
    for (int i = 0; i < PROXY_TYPE_COUNT; i++) {
        bool ok = config_type_parse(config_type_name((enum proxy_type)i), &t, NULL) == 0;
        snprintf(text[i], sizeof(text[i]), "%s%s", type_text[i], ok ? "" : " (not supported yet)");
        rows[i] = (struct row){config_type_name((enum proxy_type)i), text[i]};
    }
    for (;;) {
        int rc = ask_menu("Registry type", rows, PROXY_TYPE_COUNT, NULL, answer, sizeof(answer));
        if (rc < 0)
            return rc;
        if (config_type_parse(answer, &t, &err) == 0)
            break;
        complain(&err);
    }
    config_proxy_init(&w->p, "", t);
    w->answered = 0;
    free(w->url);
    w->url = NULL;
    return 0;
}

static int ask_key(struct wizard *w)
{
    char answer[ANSWER_MAX];
    struct config_error err = {0};
    say("\nKey: the proxy's name, and its directory in the mount. It starts with a letter;\n"
        "only lowercase letters, digits, '_', '.' and '-'; at most %d characters; unique among\n"
        "proxies and registries; not v2, api, metrics, healthz, ui or static.\n",
        CONFIG_KEY_MAX);
    for (;;) {
        int rc = ask_line("Key: ", answer, sizeof(answer));
        if (rc < 0)
            return rc;
        if ((rc = config_key_validate("key", answer, &err)) == 0 &&
            (!w->st || (rc = configdb_name_free(w->st, "key", answer, &err)) == 0))
            break;
        if (rc != -EINVAL && rc != -EEXIST)
            return rc;
        complain(&err);
    }
    /* config_key_validate held it to CONFIG_KEY_MAX bytes. */
    memcpy(w->p.key, answer, strlen(answer) + 1);
    return 0;
}

static int ask_source(struct wizard *w)
{
    static const struct row rows[] = {
        {"dockerhub", "Docker Hub"},
        {"custom", "another Docker/OCI registry, by URL"},
    };
    char answer[ANSWER_MAX];
    struct config_error err = {0};
    enum proxy_source s;
    for (;;) {
        int rc = ask_menu("Source", rows, 2, "dockerhub", answer, sizeof(answer));
        if (rc < 0)
            return rc;
        if (config_source_parse(answer, &s, &err) == 0)
            break;
        complain(&err);
    }
    config_proxy_set_source(&w->p, s);
    return 0;
}

static int ask_url(struct wizard *w)
{
    char answer[ANSWER_MAX];
    const char *prompt;
    switch (w->p.type) {
    case PROXY_DOCKER:
        say("\nRegistry URL: the registry's base URL (its /v2/ API is found below it).\n");
        prompt = "Registry URL: ";
        break;
    case PROXY_ECR:
        say("\nECR URL, one of:\n  https://%s[/REPOSITORY]\n  https://%s/ALIAS[/REPOSITORY]\n"
            "  https://{region}.%s/ecr/repositories/{private|public}/{account}/REPOSITORY"
            "?region={region}\n",
            upstream_defaults.ecr_private_host, upstream_defaults.ecr_public_host,
            upstream_defaults.ecr_console_host);
        prompt = "ECR URL: ";
        break;
    case PROXY_HELM:
        say("\nChart repository URL: the directory that holds index.yaml.\n");
        prompt = "Chart repository URL: ";
        break;
    case PROXY_MAVEN:
        say("\nMaven repository URL: the repository's root.\n");
        prompt = "Maven repository URL: ";
        break;
    default:
        say("\nURL: the remote's base URL; paths below it become paths in the proxy.\n");
        prompt = "URL: ";
        break;
    }
    int rc = ask_line(prompt, answer, sizeof(answer));
    if (rc < 0)
        return rc;
    free(w->url);
    if (!(w->url = strdup(answer)) || config_proxy_set_url(&w->p, answer) < 0)
        return -ENOMEM;
    return 0;
}

static int ask_auth(struct wizard *w)
{
    static const struct row rows[] = {
        {"anonymous", "for public sources"},
        {"access-key", "Access Key and Secret Key, for private sources"},
        {"aws-chain", "the AWS credential chain: environment, shared credentials file,"
                      " instance metadata"},
    };
    char answer[ANSWER_MAX];
    struct config_error err = {0};
    enum proxy_auth a;
    for (;;) {
        int rc = ask_menu("Authentication", rows, w->p.type == PROXY_ECR ? 3 : 2, "anonymous",
                          answer, sizeof(answer));
        if (rc < 0)
            return rc;
        if (config_auth_parse(answer, &a, &err) == 0)
            break;
        complain(&err);
    }
    config_proxy_set_auth(&w->p, a);
    return 0;
}

static int ask_access_key(struct wizard *w)
{
    char answer[ANSWER_MAX];
    say("\n");
    int rc = ask_line(w->p.type == PROXY_ECR ? "Access key (AWS access key ID): "
                                             : "Access key (user name): ",
                      answer, sizeof(answer));
    if (rc < 0)
        return rc;
    return config_set_string(&w->p.access_key, answer);
}

static int ask_secret(struct wizard *w)
{
    struct config_error err = {0};
    struct sigaction old[sizeof(end_signals) / sizeof(end_signals[0])];
    size_t len = 0;
    if (!w->secret && !(w->secret = calloc(1, SECRET_CAP + 1)))
        return -ENOMEM;
    for (;;) {
        int rc = echo_off(old);
        if (rc < 0) {
            cli_errorf("secret_key: cannot turn off the terminal's echo: %s", strerror(-rc));
            return rc;
        }
        /* The prompt comes after echo is off, so whatever is typed after it is not shown. */
        say("%s", w->p.type == PROXY_ECR ? "Secret key (AWS secret access key, not shown): "
                                         : "Secret key (not shown): ");
        rc = read_line(w->secret, SECRET_CAP + 1, &len);
        echo_restore(old);
        if (rc == -E2BIG) {
            config_error_set(&err, "secret_key", "must be at most %d bytes", CONFIG_SECRET_MAX);
            complain(&err);
            continue;
        }
        if (rc < 0)
            return rc;
        if (config_secret_normalise(w->secret, &len, &err) == 0)
            return 0;
        complain(&err);
    }
}

/* ---- the result ------------------------------------------------------------------------------ */

/* Prints s as one word for a POSIX shell: as it is when that is safe, else single-quoted. */
static void put_word(const char *s)
{
    bool plain = *s != '\0';
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("_@%+=:,./-", *p))
            plain = false;
    putchar(' ');
    if (plain) {
        fputs(s, stdout);
        return;
    }
    putchar('\'');
    for (const char *p = s; *p; p++) {
        if (*p == '\'')
            fputs("'\\''", stdout);
        else
            putchar(*p);
    }
    putchar('\'');
}

/* The command that creates the same proxy; the secret is read from stdin, never shown. */
static void print_equivalent(const struct wizard *w)
{
    char *def = state_default_dir(NULL);
    fputs("\nThe same with options:\n  upstreamfs", stdout);
    if (!def || strcmp(def, w->g->state_dir) != 0) {
        put_word("--state");
        put_word(w->g->state_dir);
    }
    free(def);
    fputs(" proxy create", stdout);
    put_word(w->p.key);
    put_word("--type");
    put_word(config_type_name(w->p.type));
    if (w->p.type == PROXY_DOCKER && w->p.source == SOURCE_CUSTOM) {
        put_word("--source");
        put_word("custom");
    }
    if (w->url) {
        put_word("--url");
        put_word(w->url);
    }
    if (w->p.auth != AUTH_ANONYMOUS) {
        put_word("--auth");
        put_word(config_auth_name(w->p.auth));
    }
    if (w->p.access_key) {
        put_word("--access-key");
        put_word(w->p.access_key);
    }
    if (w->secret)
        put_word("--secret-key-stdin");
    putchar('\n');
}

/* Opens the state dir for the uniqueness checks only if it exists: asking writes nothing. */
static int open_state_if_there(struct wizard *w)
{
    struct stat sb;
    if (stat(w->g->state_dir, &sb) < 0)
        return errno == ENOENT ? 0 : -errno;
    return state_open(w->g->state_dir, &w->st);
}

static void wizard_clear(struct wizard *w)
{
    if (w->secret) {
        secret_wipe(w->secret, SECRET_CAP + 1);
        free(w->secret);
    }
    free(w->url);
    config_proxy_clear(&w->p);
    state_close(w->st);
}

/* Asks step s's question: 0, ASK_EOF, or a negative errno. */
static int ask_step(struct wizard *w, enum step s)
{
    switch (s) {
    case S_TYPE:
        return ask_type(w);
    case S_KEY:
        return ask_key(w);
    case S_SOURCE:
        return ask_source(w);
    case S_URL:
        return ask_url(w);
    case S_AUTH:
        return ask_auth(w);
    case S_ACCESS:
        return ask_access_key(w);
    default:
        return ask_secret(w);
    }
}

/*
 * Asks the questions in turn until the last is answered. After each answer the settings so far
 * are checked: a refused answer at or before this step is asked again (with the reason), later
 * ones wait their turn. 0, or an exit status after printing why (input ended, a failure, a rule
 * no question can mend).
 */
static int ask_all(struct wizard *w, struct config_error *err)
{
    enum step s = S_TYPE;
    int rc = 0;
    while (s != S_DONE && rc == 0) {
        rc = ask_step(w, s);
        if (rc == ASK_EOF) {
            say("\n");
            cli_errorf("proxy create: cancelled: input ended before the last answer; nothing "
                       "was created");
            rc = CLI_EXIT_USAGE;
        } else if (rc < 0) {
            rc = cli_report("proxy create", rc, NULL);
        } else {
            /* Answers after s are asked again: an earlier answer may change what they mean. */
            w->answered = (w->answered | (1u << s)) & ((2u << s) - 1);
            enum step next = next_step(w, s);
            if (check_so_far(w, err) < 0) {
                enum step bad = step_of_field(err->field);
                if (bad == S_DONE) {
                    rc = cli_report("proxy create", -EINVAL, err);
                } else if (bad <= s) {
                    complain(err);
                    next = bad;
                }
            }
            s = next;
        }
    }
    return rc;
}

int cli_proxy_wizard(struct cli_globals *g)
{
    struct wizard w = {.g = g};
    struct config_error err = {0};
    int rc;

    cli_quiet_logs(g);
    if ((rc = open_state_if_there(&w)) < 0) {
        char q[CONFIG_QUOTE_MAX];
        cli_errorf("state: cannot open %s: %s", config_quote(q, sizeof(q), g->state_dir),
                   strerror(-rc));
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    say("Creating an upstream proxy. Each answer is checked as you go; Ctrl-D or Ctrl-C\n"
        "cancels, and nothing is written before the last answer. Other settings take their\n"
        "defaults (see \"upstreamfs proxy update --help\" to change them later).\n");
    if ((rc = ask_all(&w, &err)) != 0)
        goto out;
    if (!w.st && (rc = cli_create_state(g, &w.st)) != 0)
        goto out;
    if ((rc = crud_proxy_commit(w.st, true, &w.p, w.secret, &err)) < 0) {
        rc = cli_report("proxy create", rc, &err);
        goto out;
    }
    printf("created proxy %s (%s)\n", w.p.key, config_type_name(w.p.type));
    print_equivalent(&w);
    rc = CLI_EXIT_OK;
out:
    echo_on();
    wizard_clear(&w);
    return rc;
}

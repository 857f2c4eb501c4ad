/*
 * log: one line per event, with a level, to stderr (foreground) or to a file
 * (daemonized). The logger takes only format strings and values that callers
 * choose; no code path formats a secret, so none can reach the log.
 *
 * Thread-safe: each line is written with a single write(2) on an O_APPEND fd.
 */
#ifndef UPSTREAMFS_LOG_H
#define UPSTREAMFS_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* Parses "error|warn|info|debug"; returns 0 and sets *out, or -EINVAL. */
int log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level level);

void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Sends lines to PATH (created 0600, appended); NULL returns to stderr. */
int log_open_file(const char *path);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_get_level() >= LOG_DEBUG)                                                          \
            log_msg(LOG_DEBUG, __VA_ARGS__);                                                       \
    } while (0)

#endif

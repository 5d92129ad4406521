/* log.h - one line per event, with level and timestamp.
 *
 * Foreground processes log to stderr (with sd-daemon "<N>" priorities instead of
 * timestamps when stderr is journald); a daemonised mount switches to syslog with
 * log_use_syslog(), or to a file with log_use_file() (-o log_file).  Every layer (store, cache, fuse, tools) logs through here, so
 * an error always reads "LEVEL file: what happened (what to do)".
 * Thread-safe: each call writes one line with one write(2).
 */
#ifndef FAISSFS_UTIL_LOG_H
#define FAISSFS_UTIL_LOG_H

#include <stdbool.h>

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN = 1,
	LOG_LVL_INFO = 2,
	LOG_LVL_DEBUG = 3,
};

/* Messages above @level are dropped.  Default LOG_LVL_INFO. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Parses "error", "warn", "info", "debug".  Returns 0 or -EINVAL. */
int log_parse_level(const char *s, enum log_level *out);

/* From now on, send lines to syslog(3) with @ident instead of stderr (unless a
 * log file was set with log_use_file()). */
void log_use_syslog(const char *ident);

/* From now on, append lines (timestamp, PID, level) to the file @path, created
 * 0640 if missing, reopened by name once it was moved away (log rotation).
 * Returns 0 or -errno of open(2). */
int log_use_file(const char *path);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
	do {                                                                                       \
		if (log_get_level() >= LOG_LVL_DEBUG)                                              \
			log_msg(LOG_LVL_DEBUG, __VA_ARGS__);                                       \
	} while (0)

#endif

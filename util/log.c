/* log.c - see log.h.
 *
 * Where a line goes: syslog after log_use_syslog(); the file of log_use_file()
 * (reopened by name when it was moved away, as logrotate does, checked at most
 * once a second); else stderr.  On stderr connected to journald ($JOURNAL_STREAM
 * names its device and inode) each line starts with its sd-daemon priority ("<3>")
 * instead of a timestamp, so the journal keeps the levels and adds the time.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static _Atomic int log_level = LOG_LVL_INFO;
static _Atomic int log_syslog;
static _Atomic int log_journal = -1; /* -1: not checked yet */

static pthread_mutex_t file_lock = PTHREAD_MUTEX_INITIALIZER;
static char *file_path; /* protected by file_lock */
static int file_fd = -1; /* protected by file_lock */
static time_t file_checked; /* protected by file_lock */

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level log_get_level(void)
{
	return (enum log_level)log_level;
}

int log_parse_level(const char *s, enum log_level *out)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

void log_use_syslog(const char *ident)
{
	if (file_fd >= 0)
		return; /* -o log_file wins */
	openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	log_syslog = 1;
}

static int open_log(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
}

int log_use_file(const char *path)
{
	int fd = open_log(path), old;
	char *p;

	if (fd < 0)
		return -errno;
	p = strdup(path);
	if (!p) {
		close(fd);
		return -ENOMEM;
	}
	pthread_mutex_lock(&file_lock);
	old = file_fd;
	free(file_path);
	file_path = p;
	file_fd = fd;
	pthread_mutex_unlock(&file_lock);
	if (old >= 0)
		close(old);
	log_syslog = 0;
	return 0;
}

/* True if stderr is a journald stream ($JOURNAL_STREAM is "DEV:INO" of it). */
static bool stderr_is_journal(void)
{
	int j = log_journal;
	const char *e;
	struct stat st;
	unsigned long long dev, ino;

	if (j >= 0)
		return j;
	e = getenv("JOURNAL_STREAM");
	j = e && sscanf(e, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
	    (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
	log_journal = j;
	return j;
}

/* Writes @len bytes to the log file, reopening it if it was moved away. */
static void write_file(const char *line, size_t len)
{
	struct stat a, b;
	time_t now = time(NULL);

	pthread_mutex_lock(&file_lock);
	if (now != file_checked) {
		file_checked = now;
		if (stat(file_path, &a) < 0 || fstat(file_fd, &b) < 0 || a.st_ino != b.st_ino ||
		    a.st_dev != b.st_dev) {
			int fd = open_log(file_path);

			if (fd >= 0) {
				close(file_fd);
				file_fd = fd;
			}
		}
	}
	if (write(file_fd, line, len) < 0) {
		/* nowhere left to report it */
	}
	pthread_mutex_unlock(&file_lock);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	char line[2048];
	int saved = errno;
	bool to_file;
	va_list ap;
	int n = 0;

	if ((int)level > log_level)
		return;
	to_file = file_fd >= 0;
	if (!log_syslog && !to_file && stderr_is_journal()) {
		n = snprintf(line, sizeof(line), "<%d>faissfs %s: ", prio[level], level_names[level]);
	} else if (!log_syslog) {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = (int)strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
		n += snprintf(line + n, sizeof(line) - (size_t)n, ".%03ldZ faissfs%s %s: ",
			      ts.tv_nsec / 1000000, to_file ? "[pid]" : "", level_names[level]);
		if (to_file) {
			/* "[pid]" -> "[1234]": which daemon wrote it */
			char pid[24];
			char *at = strstr(line, "[pid]");
			int pl = snprintf(pid, sizeof(pid), "[%d]", (int)getpid());

			memmove(at + pl, at + 5, strlen(at + 5) + 1);
			memcpy(at, pid, (size_t)pl);
			n = (int)strlen(line);
		}
	}
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);

	if (log_syslog) {
		syslog(prio[level], "%s", line);
	} else {
		size_t len = strlen(line);

		if (len + 1 >= sizeof(line))
			len = sizeof(line) - 2;
		line[len++] = '\n';
		if (to_file)
			write_file(line, len);
		else if (write(STDERR_FILENO, line, len) < 0) {
			/* nowhere left to report it */
		}
	}
	errno = saved;
}

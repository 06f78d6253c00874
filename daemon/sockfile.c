/* The control socket's file (SPEC 7: the daemon deletes no file it did not
 * create). Only a socket a stopped telecared left behind is replaced: a
 * path that holds anything else, or that is the database, is an error, and
 * on exit the file is removed only if it is still the socket this process
 * bound (same device and inode). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "telecared.h"

int control_check_path(const struct config *cfg, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	struct stat st;
	static const char *const db_files[] = { "", "-wal", "-shm", "-journal" };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "[control] socket %s: the path is longer than %zu bytes", path,
		         sizeof(sa.sun_path) - 1);
		return -1;
	}
	for (size_t i = 0; i < sizeof(db_files) / sizeof(*db_files); i++) {
		size_t n = strlen(cfg->store_path);
		if (!strncmp(path, cfg->store_path, n) && !strcmp(path + n, db_files[i])) {
			snprintf(err, errlen, "[control] socket %s is the database%s ([store] path)", path,
			         i ? "'s journal" : "");
			return -1;
		}
	}
	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "[control] socket %s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "[control] socket %s exists and is not a socket; telecared "
		         "replaces only a socket a stopped telecared left (remove the file or choose "
		         "another path)", path);
		return -1;
	}
	return 0;
}

int sockfile_listen(const struct config *cfg, const char *path, int *fd_out, dev_t *dev,
                    ino_t *ino)
{
	char err[512];
	struct stat st;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (control_check_path(cfg, path, err, sizeof(err)) < 0) {
		log_error("control: %s", err);
		return -EEXIST;
	}
	strcpy(sa.sun_path, path);
	if (lstat(path, &st) == 0) {
		/* A socket a killed daemon left: replaced only if nobody answers. */
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (probe < 0)
			return -errno;
		int r = connect(probe, (struct sockaddr *)&sa, sizeof(sa));
		int e = errno;
		close(probe);
		if (r == 0 || e == EAGAIN) {   /* EAGAIN: a listener whose backlog is full */
			log_error("control: %s is in use: another telecared is running", path);
			return -EADDRINUSE;
		}
		if (e != ECONNREFUSED) {
			log_error("control: cannot check %s: %s", path, strerror(e));
			return -e;
		}
		if (unlink(path) < 0 && errno != ENOENT) {
			log_error("control: cannot remove the stale socket %s: %s", path, strerror(errno));
			return -errno;
		}
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* srw-rw-rw-: anyone may connect; the peer's credentials decide what
	 * they may do (peercred.c), and a refusal says why. */
	mode_t old = umask(0111);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0) {
		int e = errno;
		log_error("control: cannot bind %s: %s", path, strerror(e));
		close(fd);
		return -e;
	}
	if (lstat(path, &st) < 0 || listen(fd, SOMAXCONN) < 0) {
		int e = errno;
		log_error("control: cannot listen on %s: %s", path, strerror(e));
		unlink(path);   /* ours: we just made it */
		close(fd);
		return -e;
	}
	*dev = st.st_dev;
	*ino = st.st_ino;
	*fd_out = fd;
	return 0;
}

void sockfile_remove(const char *path, dev_t dev, ino_t ino)
{
	struct stat st;
	/* Not one another telecared made since, not a file someone put there. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == dev && st.st_ino == ino)
		unlink(path);
}

uint64_t fd_limit_raise(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 0;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t old = rl.rlim_cur;
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
			log_warning("cannot raise the open files limit from %llu to %llu: %s",
			            (unsigned long long)old, (unsigned long long)rl.rlim_max, strerror(errno));
			rl.rlim_cur = old;
		}
	}
	return rl.rlim_cur == RLIM_INFINITY ? 0 : (uint64_t)rl.rlim_cur;
}

/* Password hashes (yescrypt through libcrypt) off the event loop.
 *
 * One yescrypt hash at libxcrypt's default cost takes about 12 ms of CPU on
 * the reference machine, more on a loaded one or under sanitizers, and a
 * burst of logins or a password-guessing client would queue them back to
 * back on the one loop that also delivers alarms. So each hash runs in a
 * short-lived child process (fork, crypt, write the result to a pipe,
 * _exit): the pipe is an io source, the loop never waits for the CPU work.
 * At most HASH_RUNNING children run at once and at most HASH_QUEUED wait:
 * past that a request is refused at once, so a flood of logins costs a
 * bounded amount of CPU and memory (yescrypt uses 16 MiB per hash).
 *
 * The child only computes: it touches no descriptor but its pipe, and
 * leaves with _exit() so nothing of the parent's (stdio, atexit, sqlite) is
 * flushed or closed twice. No threads (DESIGN.md): a child shares nothing. */
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "telecared.h"

#define HASH_RUNNING   2            /* children at once: the machine's cores, not more */
#define HASH_QUEUED    32
#define HASH_TIMEOUT_US (10 * 1000000ULL)   /* a child this slow is killed */
#define HASH_PREFIX    "$y$"        /* yescrypt */

struct hash_job {
	struct hash_job *next;
	struct manager *m;
	char *password;              /* until the child is started, then wiped */
	char *setting;               /* a new salt, or the stored hash to check against */
	pid_t pid;
	int fd;
	sd_event_source *io, *timer;
	char out[CRYPT_OUTPUT_SIZE];
	size_t len;
	hash_done_fn fn;             /* NULL once cancelled */
	void *data;
};

struct hashes {
	struct hash_job *running, *queue;
	size_t n_running, n_queued;
};

static struct hashes *hashes(struct manager *m)
{
	if (!m->hashes)
		m->hashes = calloc(1, sizeof(*m->hashes));
	return m->hashes;
}

static void wipe_free(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

static void unlink_job(struct hash_job **list, struct hash_job *j)
{
	while (*list && *list != j)
		list = &(*list)->next;
	if (*list)
		*list = j->next;
}

static void job_free(struct hash_job *j)
{
	sd_event_source_disable_unref(j->io);
	sd_event_source_disable_unref(j->timer);
	if (j->fd >= 0)
		close(j->fd);
	if (j->pid > 0) {
		/* Normally reaped already; only at shutdown is one still running. */
		kill(j->pid, SIGKILL);
		waitpid(j->pid, NULL, 0);
	}
	wipe_free(j->password);
	free(j->setting);
	explicit_bzero(j->out, sizeof(j->out));
	free(j);
}

static void start_queued(struct manager *m);

/* The child is done (or gone): report, then start the next one. */
static void finish(struct hash_job *j, const char *error)
{
	struct manager *m = j->m;
	struct hashes *h = m->hashes;
	int status = 0;
	if (j->pid > 0 && waitpid(j->pid, &status, 0) == j->pid)
		j->pid = 0;
	unlink_job(&h->running, j);
	h->n_running--;
	const char *hash = NULL;
	if (!error) {
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || j->len == 0 ||
		    j->out[j->len - 1] != '\n')
			error = "the hashing process failed";
		else {
			j->out[j->len - 1] = '\0';
			hash = j->out;
		}
	}
	if (j->fn)
		j->fn(m, j->data, hash, hash ? NULL : error);
	job_free(j);
	start_queued(m);
}

static int on_output(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct hash_job *j = userdata;
	(void)s;
	(void)revents;
	for (;;) {
		if (j->len == sizeof(j->out)) {
			finish(j, "the hashing process said too much");
			return 0;
		}
		ssize_t n = read(fd, j->out + j->len, sizeof(j->out) - j->len);
		if (n > 0) {
			j->len += (size_t)n;
			continue;
		}
		if (n == 0) {
			finish(j, NULL);
		} else if (errno != EAGAIN && errno != EINTR) {
			finish(j, strerror(errno));
		}
		return 0;
	}
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct hash_job *j = userdata;
	(void)s;
	(void)usec;
	log_error("a password hash took over %llu s; its process is killed",
	          (unsigned long long)(HASH_TIMEOUT_US / 1000000));
	if (j->pid > 0)
		kill(j->pid, SIGKILL);   /* its pipe closes: on_output finishes it */
	return 0;
}

static void child(int fd, const char *password, const char *setting)
{
	struct crypt_data cd;
	memset(&cd, 0, sizeof(cd));
	const char *h = crypt_rn(password, setting, &cd, (int)sizeof(cd));
	if (!h || h[0] == '*')
		_exit(1);
	size_t n = strlen(h);
	char line[CRYPT_OUTPUT_SIZE + 1];
	memcpy(line, h, n);
	line[n] = '\n';
	/* at most CRYPT_OUTPUT_SIZE bytes: one write to a pipe, atomic */
	_exit(write(fd, line, n + 1) == (ssize_t)(n + 1) ? 0 : 1);
}

static int start(struct hash_job *j)
{
	struct manager *m = j->m;
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return -e;
	}
	if (pid == 0) {
		close(p[0]);
		child(p[1], j->password, j->setting);
	}
	close(p[1]);
	j->pid = pid;
	j->fd = p[0];
	wipe_free(j->password);
	j->password = NULL;
	int r = fcntl(j->fd, F_SETFL, O_NONBLOCK) < 0 ? -errno : 0;
	if (r == 0)
		r = sd_event_add_io(m->event, &j->io, j->fd, EPOLLIN, on_output, j);
	if (r == 0)
		r = sd_event_add_time_relative(m->event, &j->timer, CLOCK_MONOTONIC, HASH_TIMEOUT_US, 0,
		                               on_timeout, j);
	return r;
}

static void start_queued(struct manager *m)
{
	struct hashes *h = m->hashes;
	while (h->queue && h->n_running < HASH_RUNNING) {
		struct hash_job *j = h->queue;
		h->queue = j->next;
		h->n_queued--;
		j->next = h->running;
		h->running = j;
		h->n_running++;
		int r = start(j);
		if (r < 0) {
			log_error("cannot start a password hash: %s", strerror(-r));
			unlink_job(&h->running, j);
			h->n_running--;
			if (j->fn)
				j->fn(m, j->data, NULL, strerror(-r));
			job_free(j);
		}
	}
}

static struct hash_job *submit(struct manager *m, const char *password, const char *setting,
                               hash_done_fn fn, void *data)
{
	struct hashes *h = hashes(m);
	if (!h || h->n_queued >= HASH_QUEUED)
		return NULL;
	struct hash_job *j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->m = m;
	j->fd = -1;
	j->fn = fn;
	j->data = data;
	j->password = strdup(password);
	j->setting = strdup(setting);
	if (!j->password || !j->setting) {
		job_free(j);
		return NULL;
	}
	struct hash_job **tail = &h->queue;
	while (*tail)
		tail = &(*tail)->next;
	*tail = j;
	h->n_queued++;
	/* Started from the loop, never inside the caller: fn is never called
	 * before hash_password() has returned the job. */
	return j;
}

static int on_start(sd_event_source *s, void *userdata)
{
	(void)s;
	start_queued(userdata);
	return 0;
}

static void kick(struct manager *m)
{
	sd_event_source *s = NULL;
	if (sd_event_add_defer(m->event, &s, on_start, m) >= 0)
		sd_event_source_set_floating(s, true);   /* freed after it ran once */
	sd_event_source_unref(s);
}

struct hash_job *hash_password(struct manager *m, const char *password, hash_done_fn fn,
                               void *data)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	/* count 0: libxcrypt's default cost for yescrypt; random bytes from the kernel */
	if (!password || !crypt_gensalt_rn(HASH_PREFIX, 0, NULL, 0, salt, sizeof(salt)))
		return NULL;
	struct hash_job *j = submit(m, password, salt, fn, data);
	if (j)
		kick(m);
	return j;
}

struct hash_job *hash_check(struct manager *m, const char *password, const char *stored,
                            hash_done_fn fn, void *data)
{
	struct hash_job *j = submit(m, password, stored, fn, data);
	if (j)
		kick(m);
	return j;
}

void hash_job_cancel(struct hash_job *j)
{
	if (!j)
		return;
	struct hashes *h = j->m->hashes;
	j->fn = NULL;
	for (struct hash_job *q = h->queue; q; q = q->next) {
		if (q == j) {
			unlink_job(&h->queue, j);
			h->n_queued--;
			job_free(j);
			return;
		}
	}
	/* running: its child finishes on its own, and nobody is told */
}

void hash_free(struct manager *m)
{
	struct hashes *h = m->hashes;
	if (!h)
		return;
	while (h->queue) {
		struct hash_job *j = h->queue;
		h->queue = j->next;
		if (j->fn)
			j->fn(m, j->data, NULL, "telecared is stopping");
		job_free(j);
	}
	while (h->running) {
		struct hash_job *j = h->running;
		h->running = j->next;
		if (j->fn)
			j->fn(m, j->data, NULL, "telecared is stopping");
		job_free(j);
	}
	free(h);
	m->hashes = NULL;
}

size_t hash_jobs(const struct manager *m)
{
	return m->hashes ? m->hashes->n_running + m->hashes->n_queued : 0;
}

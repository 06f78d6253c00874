/* device import FILE.csv: the file, read here through the CSV reader
 * (csv.c), becomes the rows of one device.import request. All or nothing:
 * any bad line (named FILE:LINE) and nothing is sent. */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "telecare/timefmt.h"
#include "telecare/device_csv.h"
#include "telecarectl.h"

#define IMPORT_FILE_MAX ((size_t)256 << 20)  /* bytes in one file */

/* The whole file in memory (NUL-terminated), or NULL with errno set. */
static char *read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		errno = EISDIR;
		return NULL;
	}
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap + 1);
	while (buf) {
		if (n == cap) {
			char *nb = cap < IMPORT_FILE_MAX ? realloc(buf, cap * 2 + 1) : NULL;
			if (!nb) {
				free(buf);
				buf = NULL;
				errno = cap < IMPORT_FILE_MAX ? ENOMEM : EFBIG;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t got = read(fd, buf + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			int e = errno;
			free(buf);
			buf = NULL;
			errno = e;
			break;
		}
		if (got == 0) {
			buf[n] = '\0';
			*len = n;
			break;
		}
		n += (size_t)got;
	}
	int e = errno;
	close(fd);
	errno = e;
	return buf;
}

/* "FILE:LINE: message", or "telecarectl: FILE: message" about the whole
 * file; the message may quote the file, so it is cleaned like the name. */
static void put_csv_error(const char *path, const struct csv_error *e)
{
	if (e->line <= 0)
		fputs(PROG ": ", stderr);
	put_clean(stderr, path, strlen(path));
	if (e->line > 0)
		fprintf(stderr, ":%ld", e->line);
	fputs(": ", stderr);
	if (e->msg)
		put_clean(stderr, e->msg, e->len);
	else
		fputs("out of memory", stderr);
	fputc('\n', stderr);
}

int build_device_import(struct call *c)
{
	static const struct param pos[] = { { "CSV file", NULL, P_PATH, true }, { 0 } };
	int rc = parse_params(c, pos, NULL);
	if (rc != PARSE_OK)
		return rc;

	size_t len = 0;
	char *text = read_file(c->path, &len);
	if (!text) {
		fputs(PROG ": cannot read ", stderr);
		put_clean(stderr, c->path, strlen(c->path));
		fprintf(stderr, ": %s\n", errno == EFBIG ? "larger than 256 MiB" : strerror(errno));
		return PARSE_USAGE;
	}
	struct csv_table t;
	int r = device_csv_read(text, len, &t);
	free(text);
	if (r < 0) {
		for (size_t i = 0; i < t.nkept; i++)
			put_csv_error(c->path, &t.errors[i]);
		if (t.nerrors > t.nkept)
			fprintf(stderr, PROG ": ... and %zu more bad lines\n", t.nerrors - t.nkept);
		fputs(PROG ": nothing imported, nothing sent to telecared\n", stderr);
		csv_table_free(&t);
		return PARSE_USAGE;
	}
	json_t *rows = device_csv_rows(&t);
	csv_table_free(&t);
	if (!rows || json_object_set_new(c->args, TC_ARG_ROWS, rows) < 0) {
		fputs(PROG ": out of memory\n", stderr);
		return PARSE_USAGE;
	}
	return PARSE_OK;
}

/* backup FILE: a consistent copy of the live database, made here. */

#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "telecarectl.h"

/* backup FILE: the request is `status`, which says where the database is. */
int build_backup(struct call *c)
{
	static const struct param pos[] = { { "backup file", NULL, P_PATH, true }, { 0 } };
	int rc = parse_params(c, pos, NULL);
	if (rc != PARSE_OK)
		return rc;
	if (access(c->path, F_OK) == 0) {
		fputs(PROG ": ", stderr);
		put_clean(stderr, c->path, strlen(c->path));
		fputs(" exists; a backup never overwrites a file\n", stderr);
		return PARSE_USAGE;
	}
	c->backup = true;
	return PARSE_OK;
}

void print_backup(const struct call *c, const json_t *d)
{
	(void)c;
	(void)d;   /* do_backup() prints */
}

/* SQLite's online backup API over a read-only connection: one read
 * transaction, so the copy is one consistent moment of the live database
 * while telecared goes on writing (WAL readers do not block the writer). */
int do_backup(const struct options *o, const struct call *c, const json_t *status)
{
	const char *src_path = json_string_value(json_object_get(json_object_get(status, "store"), "path"));
	sqlite3 *src = NULL, *dst = NULL;
	int rc = TC_EXIT_REFUSED, pages = 0;
	struct timespec t0, t1;
	char integrity[64] = "";

	if (!src_path) {
		fputs(PROG ": telecared did not say where its database is\n", stderr);
		return TC_EXIT_REFUSED;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (sqlite3_open_v2(src_path, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_open_v2(c->path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
		fprintf(stderr, PROG ": backup: %s\n", sqlite3_errmsg(dst ? dst : src));
		goto out;
	}
	sqlite3_busy_timeout(src, 5000);
	sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
	if (!b) {
		fprintf(stderr, PROG ": backup: %s\n", sqlite3_errmsg(dst));
		goto out;
	}
	int step = sqlite3_backup_step(b, -1);   /* all pages, one snapshot */
	pages = sqlite3_backup_pagecount(b);
	sqlite3_backup_finish(b);
	if (step != SQLITE_DONE) {
		fprintf(stderr, PROG ": backup of %s failed: %s\n", src_path, sqlite3_errstr(step));
		goto out;
	}
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(dst, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			snprintf(integrity, sizeof(integrity), "%s", sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
	}
	if (strcmp(integrity, "ok")) {
		fprintf(stderr, PROG ": the copy failed its integrity check: %s\n", integrity);
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	struct stat sb;
	long long size = stat(c->path, &sb) == 0 ? (long long)sb.st_size : -1;
	if (o->json) {
		json_t *j = json_pack("{s:s, s:s, s:i, s:I, s:f, s:s}", "database", src_path, "file",
		                      c->path, "pages", pages, "bytes", (json_int_t)size, "seconds", secs,
		                      "integrity", integrity);
		print_json(j, JSON_INDENT(2));
		json_decref(j);
	} else {
		printf("backup of %s written to ", src_path);
		put_clean(stdout, c->path, strlen(c->path));
		printf(" (%d pages, %lld bytes) in %.2f s; integrity check ok\n", pages, size, secs);
	}
	rc = TC_EXIT_OK;
out:
	sqlite3_close(src);
	sqlite3_close(dst);
	if (rc != TC_EXIT_OK)
		unlink(c->path);   /* no half copy that looks like a backup */
	return rc;
}

/* libFuzzer harness for telecarectl's CSV reader (common/csv.c): any bytes as
 * a device import file. Beyond not crashing, leaking or invoking undefined
 * behaviour, the reader must keep its promises:
 *   - 0 with rows and no errors, or -1 with errors and no rows;
 *   - errors in the order of the file, within its lines, at most the kept
 *     number kept, every message's bytes readable;
 *   - rows in the order of the file, every required cell present, every
 *     checked cell good, every other cell UTF-8, NUL-terminated at its len;
 *   - rows written back as CSV (every cell quoted) read back the same. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "telecare/event.h"
#include "telecare/timefmt.h"
#include "telecare/csv.h"

static bool duration_ok(const char *s, size_t len)
{
	int64_t ms;
	return strlen(s) == len && tc_duration_parse(s, &ms) == 0;
}

enum { NCOLS = 6 };
static const struct csv_column columns[NCOLS] = {
	{ "id", true, NULL, NULL },
	{ "resident", true, NULL, NULL },
	{ "kind", false, NULL, NULL },
	{ "heartbeat", false, duration_ok, "(a duration: 30s, 15m, 1h, 1d)" },
	{ "source", false, NULL, NULL },
	{ "address", false, NULL, NULL },
};
/* a small row limit, so inputs reach it */
static const struct csv_spec spec = {
	.columns = columns, .ncolumns = NCOLS, .noun = "devices", .max_rows = 40, .max_errors = 10,
};

#define CHECK(cond)                                                                         \
	do {                                                                                \
		if (!(cond)) {                                                              \
			fprintf(stderr, "fuzz_csv: broken promise: %s (line %d)\n", #cond, __LINE__); \
			abort();                                                            \
		}                                                                           \
	} while (0)

static void check_table(const struct csv_table *t, int rc, const uint8_t *data, size_t size)
{
	long lines = 1;
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';

	CHECK(t->ncolumns == NCOLS);
	CHECK(rc == 0 || rc == -1);
	CHECK((rc == 0) == (t->nerrors == 0));
	CHECK(rc == -1 || t->nrows > 0);
	CHECK(rc == 0 || (t->nrows == 0 && t->rows == NULL));
	CHECK(t->nkept <= t->nerrors && t->nkept <= CSV_ERRORS_KEPT && t->nkept <= spec.max_errors);
	CHECK(t->nerrors == 0 || t->nkept > 0);
	CHECK(t->nrows <= spec.max_rows);

	long last = 0;
	for (size_t i = 0; i < t->nkept; i++) {
		const struct csv_error *e = &t->errors[i];
		CHECK(e->line >= 0 && e->line <= lines);
		CHECK(e->line >= last);
		last = e->line;
		if (e->line == 0)
			CHECK(t->nerrors == 1);   /* about the whole file: the only error */
		if (e->msg) {
			volatile char sum = 0;
			for (size_t k = 0; k < e->len; k++)   /* every byte readable */
				sum ^= e->msg[k];
			(void)sum;
			CHECK(e->len > 0);
		}
	}

	last = 1;   /* the header's line at least */
	for (size_t r = 0; r < t->nrows; r++) {
		const struct csv_row *row = &t->rows[r];
		CHECK(row->line > last && row->line <= lines);
		last = row->line;
		for (size_t k = 0; k < NCOLS; k++) {
			const struct csv_cell *c = &row->cells[k];
			if (columns[k].required)
				CHECK(c->s != NULL);
			if (!c->s)
				continue;
			CHECK(c->s[c->len] == '\0');
			if (!columns[k].required)
				CHECK(c->len > 0);
			if (columns[k].check)
				CHECK(columns[k].check(c->s, c->len));
			else
				CHECK(tc_utf8_valid(c->s, c->len));
		}
	}
}

/* The rows as CSV again: a header of every column, every cell quoted. */
static char *write_back(const struct csv_table *t, size_t *len)
{
	char *out = NULL;
	FILE *f = open_memstream(&out, len);
	if (!f)
		return NULL;
	for (size_t k = 0; k < NCOLS; k++)
		fprintf(f, "%s%s", k ? "," : "", columns[k].name);
	fputs("\r\n", f);
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t k = 0; k < NCOLS; k++) {
			const struct csv_cell *c = &t->rows[r].cells[k];
			fputs(k ? ",\"" : "\"", f);
			for (size_t i = 0; c->s && i < c->len; i++) {
				if (c->s[i] == '"')
					fputc('"', f);
				fputc(c->s[i], f);
			}
			fputc('"', f);
		}
		fputc('\n', f);
	}
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a copy of exactly size bytes, so reading past the end is caught */
	char *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);

	struct csv_table t;
	int rc = csv_read(buf, size, &spec, &t);
	check_table(&t, rc, data, size);

	if (rc == 0) {
		size_t len = 0;
		char *again = write_back(&t, &len);
		if (again) {
			struct csv_table u;
			CHECK(csv_read(again, len, &spec, &u) == 0);
			CHECK(u.nrows == t.nrows);
			for (size_t r = 0; r < t.nrows; r++) {
				for (size_t k = 0; k < NCOLS; k++) {
					const struct csv_cell *a = &t.rows[r].cells[k], *b = &u.rows[r].cells[k];
					CHECK((a->s == NULL) == (b->s == NULL));
					CHECK(a->len == b->len);
					CHECK(!a->s || memcmp(a->s, b->s, a->len) == 0);
				}
			}
			csv_table_free(&u);
			free(again);
		}
	}
	csv_table_free(&t);
	free(buf);
	return 0;
}

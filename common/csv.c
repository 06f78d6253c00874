/* The CSV reader of device import (csv.h). */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "telecare/event.h"
#include "telecare/csv.h"

struct reader {
	const struct csv_spec *spec;
	struct csv_table *out;
	const char *p, *end;   /* what is left of the file */
	long line;             /* the line p is on, from 1 */
	long start;            /* the line the last record started on */
	char *all;             /* "id, resident, kind": every column, for messages */
	char *shape;           /* "id,resident[,kind]": the header's shape, for messages */
};

struct field {
	char *s;               /* NUL-terminated; owned until a row takes it */
	size_t len;
};

struct record {
	struct field *f;
	size_t n, cap;
};

enum { REC_OK, REC_END, REC_BAD };

/* ---- errors */

static void keep_error(struct reader *r, long line, char *msg, size_t len)
{
	struct csv_table *t = r->out;
	size_t max = r->spec->max_errors < CSV_ERRORS_KEPT ? r->spec->max_errors : CSV_ERRORS_KEPT;
	if (t->nerrors++ >= max) {
		free(msg);
		return;
	}
	t->errors[t->nkept++] = (struct csv_error){ .line = line, .msg = msg, .len = msg ? len : 0 };
}

static void fail(struct reader *r, long line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail(struct reader *r, long line, const char *fmt, ...)
{
	char *msg = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	keep_error(r, line, n < 0 ? NULL : msg, n < 0 ? 0 : (size_t)n);
}

/* A message that quotes a cell of the file: before CELL after, the cell's
 * bytes as they are (NULs too). before or after NULL: out of memory. */
static void fail_cell(struct reader *r, long line, const char *before, const char *cell,
                      size_t cell_len, const char *after)
{
	if (!before || !after) {
		keep_error(r, line, NULL, 0);
		return;
	}
	size_t b = strlen(before), a = strlen(after);
	char *msg = malloc(b + cell_len + a + 1);
	if (msg) {
		memcpy(msg, before, b);
		memcpy(msg + b, cell, cell_len);
		memcpy(msg + b + cell_len, after, a + 1);
	}
	keep_error(r, line, msg, b + cell_len + a);
}

/* ---- records */

static bool blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* At the end of a line: LF, CRLF, or a CR that ends the file. A CR
 * elsewhere is data. */
static size_t eol(const struct reader *r, const char *p)
{
	if (p < r->end && *p == '\n')
		return 1;
	if (p < r->end && *p == '\r' && (p + 1 == r->end || p[1] == '\n'))
		return p + 1 == r->end ? 1 : 2;
	return 0;
}

struct buf {
	char *s;
	size_t len, cap;
	bool failed;
};

static void buf_put(struct buf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 32;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *ns = realloc(b->s, cap);
		if (!ns) {
			b->failed = true;
			return;
		}
		b->s = ns;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void record_clear(struct record *rec)
{
	for (size_t i = 0; i < rec->n; i++)
		free(rec->f[i].s);
	rec->n = 0;
}

static bool record_add(struct record *rec, struct buf *b)
{
	if (rec->n == rec->cap) {
		size_t cap = rec->cap ? rec->cap * 2 : 8;
		struct field *nf = realloc(rec->f, cap * sizeof(*nf));
		if (!nf)
			return false;
		rec->f = nf;
		rec->cap = cap;
	}
	rec->f[rec->n++] = (struct field){ .s = b->s, .len = b->len };
	b->s = NULL;
	return true;
}

/* Skip blank lines and comment lines. false at the end of the file. */
static bool skip_empty_lines(struct reader *r)
{
	for (;;) {
		const char *q = r->p;
		if (q >= r->end)
			return false;
		while (q < r->end && blank(*q))
			q++;
		size_t e = eol(r, q);
		if (q < r->end && !e && *q != '#')
			return true;
		if (q < r->end && *q == '#') {
			while (q < r->end && *q != '\n')
				q++;
			e = q < r->end ? 1 : 0;
		}
		r->p = q + e;
		r->line++;
	}
}

/* A quoted field from the opening quote at r->p into b. NULL, or why it is
 * bad. An unterminated quote is reported here (where it opened). */
static const char *quoted_field(struct reader *r, struct buf *b, bool *unterminated)
{
	long opened = r->line;
	r->p++;
	for (;;) {
		if (r->p >= r->end) {
			fail(r, opened, "unterminated quote: a field opened with \" is never closed");
			*unterminated = true;
			return "";
		}
		if (*r->p == '"') {
			if (r->p + 1 < r->end && r->p[1] == '"') {
				buf_put(b, "\"", 1);
				r->p += 2;
				continue;
			}
			r->p++;
			break;
		}
		/* a run of plain bytes at once */
		const char *s = r->p;
		while (r->p < r->end && *r->p != '"') {
			if (*r->p == '\n')
				r->line++;
			r->p++;
		}
		buf_put(b, s, (size_t)(r->p - s));
	}
	while (r->p < r->end && blank(*r->p))
		r->p++;
	if (r->p < r->end && *r->p != ',' && !eol(r, r->p))
		return "text after a closing quote (a quote inside a field is written \"\")";
	return NULL;
}

static const char *plain_field(struct reader *r, struct buf *b)
{
	const char *why = NULL, *s = r->p;
	while (r->p < r->end && *r->p != ',' && !eol(r, r->p)) {
		if (*r->p == '"')
			why = "a quote inside an unquoted field (quote the whole field and write "
			      "the quote as \"\")";
		r->p++;
	}
	const char *e = r->p;
	while (e > s && blank(e[-1]))
		e--;
	buf_put(b, s, (size_t)(e - s));
	return why;
}

/* The next record's fields into rec. REC_BAD: reported; the reader is at
 * the next line (or the end of the file). */
static int next_record(struct reader *r, struct record *rec)
{
	record_clear(rec);
	if (!skip_empty_lines(r))
		return REC_END;
	r->start = r->line;

	for (;;) {
		struct buf b = { 0 };
		bool unterminated = false;
		const char *why;

		while (r->p < r->end && blank(*r->p))
			r->p++;
		if (r->p < r->end && *r->p == '"')
			why = quoted_field(r, &b, &unterminated);
		else
			why = plain_field(r, &b);
		buf_put(&b, "", 0);   /* an empty field is "" too, not NULL */
		if (unterminated || b.failed || !record_add(rec, &b)) {
			if (!unterminated)
				fail(r, r->start, "out of memory");
			free(b.s);
			r->p = r->end;
			return REC_BAD;
		}
		if (why) {
			fail(r, r->start, "%s", why);
			/* go on at the next line */
			while (r->p < r->end && *r->p != '\n')
				r->p++;
			if (r->p < r->end) {
				r->p++;
				r->line++;
			}
			return REC_BAD;
		}
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			continue;
		}
		size_t e = eol(r, r->p);
		if (e) {
			r->p += e;
			r->line++;
		}
		return REC_OK;   /* the end of the line or of the file */
	}
}

/* ---- header and rows */

static bool same_name(const struct field *f, const char *name)
{
	return strlen(f->s) == f->len && strcasecmp(f->s, name) == 0;
}

/* col[i]: the field index of spec column i, or -1. */
static int read_header(struct reader *r, const struct record *rec, int *col)
{
	const struct csv_spec *spec = r->spec;
	for (size_t i = 0; i < spec->ncolumns; i++)
		col[i] = -1;
	for (size_t k = 0; k < rec->n; k++) {
		size_t i = 0;
		while (i < spec->ncolumns && !same_name(&rec->f[k], spec->columns[i].name))
			i++;
		if (i == spec->ncolumns) {
			char *after = NULL;
			if (asprintf(&after, "\" (the columns are %s)", r->all) < 0)
				after = NULL;
			fail_cell(r, r->start, "unknown column \"", rec->f[k].s, rec->f[k].len, after);
			free(after);
			return -1;
		}
		if (col[i] >= 0) {
			fail(r, r->start, "column \"%s\" appears twice", spec->columns[i].name);
			return -1;
		}
		col[i] = (int)k;
	}
	for (size_t i = 0; i < spec->ncolumns; i++) {
		if (spec->columns[i].required && col[i] < 0) {
			fail(r, r->start, "the header row has no \"%s\" column (it names the columns: %s)",
			     spec->columns[i].name, r->shape);
			return -1;
		}
	}
	return 0;
}

/* Check a data record; when keep, move its cells into row. 0 or -1
 * (reported). */
static int read_row(struct reader *r, struct record *rec, const int *col, size_t ncols,
                    bool keep, struct csv_row *row)
{
	const struct csv_spec *spec = r->spec;
	if (rec->n != ncols) {
		fail(r, r->start, "%zu field%s, but the header row has %zu column%s", rec->n,
		     rec->n == 1 ? "" : "s", ncols, ncols == 1 ? "" : "s");
		return -1;
	}
	for (size_t i = 0; i < spec->ncolumns; i++) {
		const struct csv_column *c = &spec->columns[i];
		const struct field *f = col[i] >= 0 ? &rec->f[col[i]] : NULL;
		if (!f || (!f->len && !c->required))
			continue;   /* an empty optional cell is an absent value */
		if (c->check && f->len && !c->check(f->s, f->len)) {
			char *before = NULL, *after = NULL;
			if (asprintf(&before, "bad %s \"", c->name) < 0)
				before = NULL;
			if (asprintf(&after, "\" %s", c->hint ? c->hint : "") < 0)
				after = NULL;
			fail_cell(r, r->start, before, f->s, f->len, after);
			free(before);
			free(after);
			return -1;
		}
		if (!c->check && !tc_utf8_valid(f->s, f->len)) {
			fail(r, r->start, "the %s is not valid UTF-8 (save the file as UTF-8)", c->name);
			return -1;
		}
	}
	if (!keep)
		return 0;
	row->line = r->start;
	row->cells = calloc(spec->ncolumns, sizeof(*row->cells));
	if (!row->cells) {
		fail(r, r->start, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < spec->ncolumns; i++) {
		struct field *f = col[i] >= 0 ? &rec->f[col[i]] : NULL;
		if (!f || (!f->len && !spec->columns[i].required))
			continue;
		row->cells[i] = (struct csv_cell){ .s = f->s, .len = f->len };
		f->s = NULL;   /* the row owns it now */
	}
	return 0;
}

static void row_free(struct csv_row *row, size_t ncolumns)
{
	for (size_t k = 0; row->cells && k < ncolumns; k++)
		free(row->cells[k].s);
	free(row->cells);
	row->cells = NULL;
}

static void free_rows(struct csv_table *t)
{
	for (size_t i = 0; i < t->nrows; i++)
		row_free(&t->rows[i], t->ncolumns);
	free(t->rows);
	t->rows = NULL;
	t->nrows = 0;
}

/* r->all and r->shape from the spec */
static bool describe_columns(struct reader *r)
{
	const struct csv_spec *spec = r->spec;
	size_t all_len = 0, shape_len = 0;
	FILE *all = open_memstream(&r->all, &all_len);
	FILE *shape = open_memstream(&r->shape, &shape_len);
	bool optional = false;
	for (size_t i = 0; all && shape && i < spec->ncolumns; i++) {
		const struct csv_column *c = &spec->columns[i];
		fprintf(all, "%s%s", i ? ", " : "", c->name);
		if (!c->required && !optional) {
			optional = true;
			fputs(i ? "[," : "[", shape);
		} else if (i) {
			fputc(',', shape);
		}
		fputs(c->name, shape);
	}
	if (shape && optional)
		fputc(']', shape);
	bool ok = all && shape;
	if (all)
		ok = fclose(all) == 0 && ok;
	if (shape)
		ok = fclose(shape) == 0 && ok;
	return ok && r->all && r->shape;
}

int csv_read(const char *buf, size_t len, const struct csv_spec *spec, struct csv_table *out)
{
	struct reader r = { .spec = spec, .out = out, .p = buf, .end = buf + len, .line = 1 };
	struct record rec = { 0 };
	int *col = calloc(spec->ncolumns ? spec->ncolumns : 1, sizeof(*col));
	size_t ncols = 0, cap = 0;
	bool have_header = false;

	memset(out, 0, sizeof(*out));
	out->ncolumns = spec->ncolumns;
	if (!col || !describe_columns(&r)) {
		fail(&r, 0, "out of memory");
		goto done;
	}
	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
		r.p += 3;   /* the byte order mark spreadsheets write */

	for (;;) {
		int rc = next_record(&r, &rec);
		if (rc == REC_END)
			break;
		if (rc == REC_BAD) {
			/* without a header, or past an unterminated quote, nothing
			 * sensible can follow */
			if (!have_header || r.p >= r.end)
				break;
			continue;
		}
		if (!have_header) {
			have_header = true;
			ncols = rec.n;
			if (read_header(&r, &rec, col) < 0)
				break;
			continue;
		}
		bool keep = out->nerrors == 0;
		struct csv_row row = { 0 };
		if (read_row(&r, &rec, col, ncols, keep, &row) < 0 || !keep)
			continue;
		if (out->nrows >= spec->max_rows) {
			row_free(&row, spec->ncolumns);
			fail(&r, r.start, "more than %zu %s in one file; split it", spec->max_rows,
			     spec->noun);
			break;
		}
		if (out->nrows == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct csv_row *nrows = realloc(out->rows, ncap * sizeof(*nrows));
			if (!nrows) {
				row_free(&row, spec->ncolumns);
				fail(&r, r.start, "out of memory");
				break;
			}
			out->rows = nrows;
			cap = ncap;
		}
		out->rows[out->nrows++] = row;
	}

	if (!out->nerrors && !have_header)
		fail(&r, 0, "empty: the first row names the columns (%s)", r.shape);
	else if (!out->nerrors && !out->nrows)
		fail(&r, 0, "no %s below the header row", spec->noun);
done:
	record_clear(&rec);
	free(rec.f);
	free(col);
	free(r.all);
	free(r.shape);
	if (out->nerrors) {
		free_rows(out);
		return -1;
	}
	return 0;
}

void csv_table_free(struct csv_table *t)
{
	free_rows(t);
	for (size_t i = 0; i < t->nkept; i++)
		free(t->errors[i].msg);
	t->nkept = 0;
}

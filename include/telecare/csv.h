/* A CSV reader for files people make in spreadsheets (device import). Pure:
 * bytes in, rows and errors out; no I/O, no global state.
 *
 * RFC 4180, leniently: fields separated by commas, optionally in double
 * quotes ("" is a quote inside them, and they may span lines); lines end in
 * LF or CRLF; blanks around unquoted fields and around the quotes are
 * dropped; blank lines and lines that start with '#' are skipped; a UTF-8
 * byte order mark at the start is ignored. The first record is the header:
 * it names the columns, in any order and any case.
 *
 * All or nothing: rows are handed out only when the whole file is good.
 * After a bad record the reader goes on at the next line, so one run names
 * as many bad lines as it can; after a bad header or an unterminated quote
 * nothing sensible can follow and it stops. */
#ifndef TELECARE_CTL_CSV_H
#define TELECARE_CTL_CSV_H

#include <stdbool.h>
#include <stddef.h>

/* Error messages kept at most (every error is counted). */
#define CSV_ERRORS_KEPT 16

struct csv_column {
	const char *name;      /* in the header, matched without regard to case */
	bool required;         /* the header must name it; its empty cells are kept */
	/* NULL: any UTF-8 text. Otherwise whether a non-empty cell (s is
	 * NUL-terminated, len bytes, may hold NULs) is good; a bad one is
	 * reported as: bad NAME "CELL" HINT */
	bool (*check)(const char *s, size_t len);
	const char *hint;
};

struct csv_spec {
	const struct csv_column *columns;   /* the required ones first */
	size_t ncolumns;
	const char *noun;      /* what a row is, plural, for messages: "devices" */
	size_t max_rows;       /* more is an error */
	size_t max_errors;     /* messages kept, at most CSV_ERRORS_KEPT */
};

struct csv_cell {
	char *s;               /* NUL-terminated (a NUL in the file stays in len); NULL:
	                        * no such column, or an empty optional cell */
	size_t len;
};

struct csv_row {
	long line;             /* where the record starts, from 1 */
	struct csv_cell *cells;   /* one per column of the spec, in its order */
};

struct csv_error {
	long line;             /* 0: about the file as a whole */
	char *msg;             /* NULL: out of memory. It may quote the file: any
	                        * bytes, NULs included (len); clean it for display */
	size_t len;
};

struct csv_table {
	struct csv_row *rows;  /* only when there is no error */
	size_t nrows;
	size_t ncolumns;       /* the spec's: cells in each row */
	struct csv_error errors[CSV_ERRORS_KEPT];
	size_t nkept;          /* errors[0..nkept), in the order of the file */
	size_t nerrors;        /* all bad lines, kept or not */
};

/* Read len bytes of buf (need not be NUL-terminated). Returns 0 with at
 * least one row, or -1 with nerrors > 0. Either way free it with
 * csv_table_free. */
int csv_read(const char *buf, size_t len, const struct csv_spec *spec, struct csv_table *out);
void csv_table_free(struct csv_table *t);

#endif

/* The CSV reader of device import (common/csv.c): quoting, line endings, the
 * byte order mark, fields over several lines, bad quotes, the header's
 * columns, line numbers in errors, and its limits. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "telecare/timefmt.h"
#include "telecare/csv.h"

static bool duration_ok(const char *s, size_t len)
{
	int64_t ms;
	return strlen(s) == len && tc_duration_parse(s, &ms) == 0;
}

/* The device import's shape: two required columns, then optional ones, one
 * of them checked. */
enum { ID, RESIDENT, KIND, HEARTBEAT, NCOLS };
static const struct csv_column columns[NCOLS] = {
	{ "id", true, NULL, NULL },
	{ "resident", true, NULL, NULL },
	{ "kind", false, NULL, NULL },
	{ "heartbeat", false, duration_ok, "(a duration: 30s, 15m, 1h, 1d)" },
};
static const struct csv_spec spec = {
	.columns = columns, .ncolumns = NCOLS, .noun = "devices", .max_rows = 1000, .max_errors = 10,
};

static struct csv_table t;

static int teardown(void **state)
{
	(void)state;
	csv_table_free(&t);
	memset(&t, 0, sizeof(t));
	return 0;
}

static void read_good_spec(const char *text, size_t len, const struct csv_spec *sp)
{
	csv_table_free(&t);
	if (csv_read(text, len, sp, &t) != 0) {
		const struct csv_error *e = t.nkept ? &t.errors[0] : NULL;
		fail_msg("rejected: %zu errors, first at line %ld: %.*s", t.nerrors, e ? e->line : -1,
		         e && e->msg ? (int)e->len : 0, e && e->msg ? e->msg : "");
	}
	assert_int_equal(t.nerrors, 0);
	assert_int_equal(t.nkept, 0);
	assert_true(t.nrows > 0);
}

static void read_good(const char *text)
{
	read_good_spec(text, strlen(text), &spec);
}

static void read_bad_spec(const char *text, size_t len, const struct csv_spec *sp)
{
	csv_table_free(&t);
	if (csv_read(text, len, sp, &t) != -1)
		fail_msg("accepted %zu rows of: %s", t.nrows, text);
	assert_true(t.nerrors > 0);
	assert_true(t.nkept > 0);
	assert_null(t.rows);             /* all or nothing */
	assert_int_equal(t.nrows, 0);
}

static void read_bad(const char *text)
{
	read_bad_spec(text, strlen(text), &spec);
}

/* Error i is at line and its message is exactly msg. */
static void error_is(size_t i, long line, const char *msg)
{
	assert_true(i < t.nkept);
	assert_non_null(t.errors[i].msg);
	if (t.errors[i].line != line || t.errors[i].len != strlen(msg) ||
	    memcmp(t.errors[i].msg, msg, t.errors[i].len) != 0)
		fail_msg("error %zu: line %ld \"%.*s\", want line %ld \"%s\"", i, t.errors[i].line,
		         (int)t.errors[i].len, t.errors[i].msg, line, msg);
}

/* Cell col of row r is exactly s (len bytes), or absent when s is NULL. */
static void cell_is_n(size_t r, int col, const char *s, size_t len)
{
	assert_true(r < t.nrows);
	const struct csv_cell *c = &t.rows[r].cells[col];
	if (!s) {
		if (c->s)
			fail_msg("row %zu column %s: \"%s\", want absent", r, columns[col].name, c->s);
		return;
	}
	if (!c->s)
		fail_msg("row %zu column %s absent, want \"%s\"", r, columns[col].name, s);
	if (c->len != len || memcmp(c->s, s, len) != 0)
		fail_msg("row %zu column %s: \"%s\" (%zu bytes), want \"%s\"", r, columns[col].name,
		         c->s, c->len, s, len);
	assert_int_equal(c->s[len], '\0');
}

static void cell_is(size_t r, int col, const char *s)
{
	cell_is_n(r, col, s, s ? strlen(s) : 0);
}

/* ---------------------------------------------------------------------- */

static void test_columns_by_header(void **state)
{
	(void)state;
	/* any order, any case; cells come out in the spec's order */
	read_good("Heartbeat,RESIDENT,id\n15m,r-1,p-1\n,r-2,p-2\n");
	assert_int_equal(t.nrows, 2);
	assert_int_equal(t.ncolumns, NCOLS);
	cell_is(0, ID, "p-1");
	cell_is(0, RESIDENT, "r-1");
	cell_is(0, KIND, NULL);           /* no such column */
	cell_is(0, HEARTBEAT, "15m");
	cell_is(1, HEARTBEAT, NULL);      /* an empty optional cell is absent */
	assert_int_equal(t.rows[0].line, 2);
	assert_int_equal(t.rows[1].line, 3);

	/* an empty required cell is kept: the daemon names the line */
	read_good("id,resident\n,r-1\n");
	cell_is(0, ID, "");
}

static void test_quoting(void **state)
{
	(void)state;
	read_good("id,resident,kind\n"
	          "\"p-1\",r-1,\"pendant, red\"\n"
	          "p-2 ,  r-2\t, \"door \"\"front\"\"\" \n"
	          "p-3,r-3,\"  spaced  \"\n"
	          "p-4,r-4,\"\"\n"
	          "p-5,r-5,\"\"\"\"\n");
	assert_int_equal(t.nrows, 5);
	cell_is(0, ID, "p-1");
	cell_is(0, KIND, "pendant, red");
	cell_is(1, ID, "p-2");                 /* blanks around unquoted fields go */
	cell_is(1, RESIDENT, "r-2");
	cell_is(1, KIND, "door \"front\"");    /* and around the quotes */
	cell_is(2, KIND, "  spaced  ");        /* blanks inside the quotes stay */
	cell_is(3, KIND, NULL);                /* "" is an empty cell */
	cell_is(4, KIND, "\"");
}

static void test_line_endings(void **state)
{
	(void)state;
	read_good("id,resident,kind\r\np-1,r-1,a\r\n\r\np-2,r-2,b\r\n");
	assert_int_equal(t.nrows, 2);
	cell_is(0, KIND, "a");
	cell_is(1, KIND, "b");
	assert_int_equal(t.rows[1].line, 4);

	/* no line ending at the end; a CR that ends the file ends the line */
	read_good("id,resident\np-1,r-1");
	cell_is(0, RESIDENT, "r-1");
	read_good("id,resident\np-1,r-1\r");
	cell_is(0, RESIDENT, "r-1");

	/* a CR elsewhere is data, not a line ending */
	read_good("id,resident,kind\np-1,r-1,a\rb\n");
	cell_is(0, KIND, "a\rb");
}

static void test_byte_order_mark(void **state)
{
	(void)state;
	read_good("\xef\xbb\xbfid,resident\np-1,r-1\n");
	cell_is(0, ID, "p-1");
	assert_int_equal(t.rows[0].line, 2);

	/* only at the very start: elsewhere it is part of a name */
	read_bad("id,\xef\xbb\xbfresident\np-1,r-1\n");
	error_is(0, 1, "unknown column \"\xef\xbb\xbfresident\" (the columns are id, resident, "
	         "kind, heartbeat)");

	read_bad("\xef\xbb\xbf");
	error_is(0, 0, "empty: the first row names the columns (id,resident[,kind,heartbeat])");
}

static void test_fields_over_lines(void **state)
{
	(void)state;
	read_good("id,resident,kind\n"
	          "p-1,r-1,\"first\nsecond\r\nthird\"\n"
	          "p-2,r-2,x\n");
	assert_int_equal(t.nrows, 2);
	cell_is(0, KIND, "first\nsecond\r\nthird");   /* kept as written */
	assert_int_equal(t.rows[0].line, 2);
	assert_int_equal(t.rows[1].line, 5);          /* the lines inside counted */

	/* and errors after such a field name the right line */
	read_bad("id,resident,kind\np-1,r-1,\"a\nb\"\np-2,r-2\n");
	error_is(0, 4, "2 fields, but the header row has 3 columns");
}

static void test_comments_and_blank_lines(void **state)
{
	(void)state;
	read_good("# exported 2026-11-22\n"
	          "\n"
	          "id,resident,kind\n"
	          "   \t\n"
	          "  # indented comment, \"with a quote\n"
	          "p-1,r-1,\"# not a comment\"\n"
	          "p-2,r-2,a#b\n");
	assert_int_equal(t.nrows, 2);
	assert_int_equal(t.rows[0].line, 6);
	cell_is(0, KIND, "# not a comment");
	cell_is(1, KIND, "a#b");
}

static void test_bad_quotes(void **state)
{
	(void)state;
	/* unterminated: named where it opened; nothing can follow */
	read_bad("id,resident,kind\np-1,r-1,pendant\np-2,r-1,\"smoke\np-3,r-1,x\n");
	assert_int_equal(t.nerrors, 1);
	error_is(0, 3, "unterminated quote: a field opened with \" is never closed");

	/* text after the closing quote, a quote in an unquoted field: each line
	 * named, and reading goes on at the next line */
	read_bad("id,resident\n"
	         "\"p-1\"x,r-1\n"
	         "p-2,r-2\n"
	         "p\"3,r-3\n"
	         "p-4,\"r-4\" \"\n"
	         "p-5,r-5,extra\n");
	assert_int_equal(t.nerrors, 4);
	error_is(0, 2, "text after a closing quote (a quote inside a field is written \"\")");
	error_is(1, 4, "a quote inside an unquoted field (quote the whole field and write the "
	         "quote as \"\")");
	error_is(2, 5, "text after a closing quote (a quote inside a field is written \"\")");
	error_is(3, 6, "3 fields, but the header row has 2 columns");

	/* a bad header cannot be read around */
	read_bad("id,\"resident\n");
	assert_int_equal(t.nerrors, 1);
	error_is(0, 1, "unterminated quote: a field opened with \" is never closed");
	read_bad("id,res\"ident\np-1,r-1\n");
	assert_int_equal(t.nerrors, 1);
	error_is(0, 1, "a quote inside an unquoted field (quote the whole field and write the "
	         "quote as \"\")");
}

static void test_header_columns(void **state)
{
	(void)state;
	read_bad("id,kind\np-1,pendant\n");
	error_is(0, 1, "the header row has no \"resident\" column (it names the columns: "
	         "id,resident[,kind,heartbeat])");

	read_bad("# comment\nid,resident,colour\np-1,r-1,red\n");
	assert_int_equal(t.nerrors, 1);
	error_is(0, 2, "unknown column \"colour\" (the columns are id, resident, kind, heartbeat)");

	read_bad("id,resident,Kind,KIND\n");
	error_is(0, 1, "column \"kind\" appears twice");

	/* the unknown name is quoted with its bytes, NULs and all: the caller
	 * cleans it for the terminal */
	static const char nul[] = "id,resident,co\0l\x1b\n";
	read_bad_spec(nul, sizeof(nul) - 1, &spec);
	assert_int_equal(t.errors[0].len, strlen("unknown column \"co") + 3 +
	                 strlen("\" (the columns are id, resident, kind, heartbeat)"));
	assert_memory_equal(t.errors[0].msg, "unknown column \"co\0l\x1b\"", 22);

	/* an empty header cell is an unknown column too */
	read_bad("id,,resident\n");
	error_is(0, 1, "unknown column \"\" (the columns are id, resident, kind, heartbeat)");
}

static void test_cells_checked(void **state)
{
	(void)state;
	read_bad("id,resident,heartbeat\np-1,r-1,15m\np-2,r-1,often\n");
	error_is(0, 3, "bad heartbeat \"often\" (a duration: 30s, 15m, 1h, 1d)");

	static const char nul[] = "id,resident,heartbeat\np-1,r-1,1\0m\n";
	read_bad_spec(nul, sizeof(nul) - 1, &spec);
	assert_int_equal(t.errors[0].len, strlen("bad heartbeat \"") + 3 +
	                 strlen("\" (a duration: 30s, 15m, 1h, 1d)"));
	assert_memory_equal(t.errors[0].msg, "bad heartbeat \"1\0m\"", 19);

	read_bad("id,resident,kind\np-1,r-1,\xff\n");
	error_is(0, 2, "the kind is not valid UTF-8 (save the file as UTF-8)");
	read_bad("id,resident\np-1,r-\xc0\xaf\n");   /* an overlong '/' */
	error_is(0, 2, "the resident is not valid UTF-8 (save the file as UTF-8)");

	/* a NUL byte is UTF-8: kept, with the length */
	static const char nul_kind[] = "id,resident,kind\np-1,r-1,a\0b\n";
	read_good_spec(nul_kind, sizeof(nul_kind) - 1, &spec);
	cell_is_n(0, KIND, "a\0b", 3);
}

static void test_line_numbers_and_order(void **state)
{
	(void)state;
	read_bad("id,resident,heartbeat\n"   /* 1 */
	         "p-1,r-1,1h\n"              /* 2 */
	         "\n"                        /* 3 */
	         "p-2,r-1,x\n"               /* 4 */
	         "# c\n"                     /* 5 */
	         "p-3,\"r\n-1\",zz\n"        /* 6-7 */
	         "p-4\n"                     /* 8 */
	         "p-5,r-1,1h\n"              /* 9 */
	         "p-6,r-1,1h,\"\n");         /* 10: unterminated, the end */
	assert_int_equal(t.nerrors, 4);
	error_is(0, 4, "bad heartbeat \"x\" (a duration: 30s, 15m, 1h, 1d)");
	error_is(1, 6, "bad heartbeat \"zz\" (a duration: 30s, 15m, 1h, 1d)");
	error_is(2, 8, "1 field, but the header row has 3 columns");
	error_is(3, 10, "unterminated quote: a field opened with \" is never closed");
}

static void test_empty_files(void **state)
{
	(void)state;
	read_bad("");
	error_is(0, 0, "empty: the first row names the columns (id,resident[,kind,heartbeat])");
	read_bad("\n# nothing here\n  \n");
	error_is(0, 0, "empty: the first row names the columns (id,resident[,kind,heartbeat])");
	read_bad("id,resident\n# a comment\n\n");
	error_is(0, 0, "no devices below the header row");
}

static void test_limits(void **state)
{
	(void)state;
	struct csv_spec small = spec;
	small.max_rows = 3;
	small.max_errors = 2;
	const char *three = "id,resident\np-1,r-1\np-2,r-1\np-3,r-1\n";
	read_good_spec(three, strlen(three), &small);
	assert_int_equal(t.nrows, 3);

	const char *four = "id,resident\np-1,r-1\np-2,r-1\n\np-3,r-1\np-4,r-1\np-5,r-1\n";
	read_bad_spec(four, strlen(four), &small);
	assert_int_equal(t.nerrors, 1);
	error_is(0, 6, "more than 3 devices in one file; split it");

	/* every bad line counted, only max_errors kept */
	const char *bad = "id,resident,heartbeat\np,r,a\np,r,b\np,r,c\np,r,d\np,r,e\n";
	read_bad_spec(bad, strlen(bad), &small);
	assert_int_equal(t.nerrors, 5);
	assert_int_equal(t.nkept, 2);
	error_is(0, 2, "bad heartbeat \"a\" (a duration: 30s, 15m, 1h, 1d)");
	error_is(1, 3, "bad heartbeat \"b\" (a duration: 30s, 15m, 1h, 1d)");

	/* and never more than CSV_ERRORS_KEPT, whatever the spec says */
	small.max_errors = 1000;
	char many[4096] = "id,resident\n";
	for (int i = 0; i < 40; i++)
		strcat(many, "p,r,x\n");
	read_bad_spec(many, strlen(many), &small);
	assert_int_equal(t.nerrors, 40);
	assert_int_equal(t.nkept, CSV_ERRORS_KEPT);

	/* after an error the rows are only checked, not kept, so the row limit
	 * is not what stops a file full of mistakes */
	small.max_rows = 1;
	const char *late = "id,resident,heartbeat\np,r,bad\np,r,1h\np,r,1h\np,r,also\n";
	read_bad_spec(late, strlen(late), &small);
	assert_int_equal(t.nerrors, 2);
	error_is(1, 5, "bad heartbeat \"also\" (a duration: 30s, 15m, 1h, 1d)");
}

static void test_not_nul_terminated(void **state)
{
	(void)state;
	/* the reader stops at len: what lies after is not read */
	const char text[] = "id,resident\np-1,r-1,GARBAGE";
	read_good_spec(text, strlen("id,resident\np-1,r-1"), &spec);
	cell_is(0, RESIDENT, "r-1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_columns_by_header, teardown),
		cmocka_unit_test_teardown(test_quoting, teardown),
		cmocka_unit_test_teardown(test_line_endings, teardown),
		cmocka_unit_test_teardown(test_byte_order_mark, teardown),
		cmocka_unit_test_teardown(test_fields_over_lines, teardown),
		cmocka_unit_test_teardown(test_comments_and_blank_lines, teardown),
		cmocka_unit_test_teardown(test_bad_quotes, teardown),
		cmocka_unit_test_teardown(test_header_columns, teardown),
		cmocka_unit_test_teardown(test_cells_checked, teardown),
		cmocka_unit_test_teardown(test_line_numbers_and_order, teardown),
		cmocka_unit_test_teardown(test_empty_files, teardown),
		cmocka_unit_test_teardown(test_limits, teardown),
		cmocka_unit_test_teardown(test_not_nul_terminated, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The device import file: see include/telecare/device_csv.h. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "telecare/control.h"
#include "telecare/device_csv.h"
#include "telecare/timefmt.h"
#include "telecare/util.h"

static bool heartbeat_ok(const char *s, size_t len)
{
	int64_t ms;
	return strlen(s) == len && tc_duration_parse(s, &ms) == 0;
}

/* The columns, in the order of the rows' keys; the required ones first. */
enum { COL_ID, COL_RESIDENT, COL_KIND, COL_HEARTBEAT, COL_SOURCE, COL_ADDRESS, NCOLS };
static const struct csv_column columns[NCOLS] = {
	[COL_ID] = { "id", true, NULL, NULL },
	[COL_RESIDENT] = { "resident", true, NULL, NULL },
	[COL_KIND] = { "kind", false, NULL, NULL },
	[COL_HEARTBEAT] = { "heartbeat", false, heartbeat_ok, "(a duration: 30s, 15m, 1h, 1d)" },
	[COL_SOURCE] = { "source", false, NULL, NULL },
	[COL_ADDRESS] = { "address", false, NULL, NULL },
};
static const char *const row_keys[NCOLS] = {
	TC_ARG_ID, TC_ARG_RESIDENT, TC_ARG_KIND, TC_ARG_HEARTBEAT, TC_ARG_SOURCE, TC_ARG_ADDRESS
};
static const struct csv_spec device_spec = {
	.columns = columns,
	.ncolumns = NCOLS,
	.noun = "devices",
	.max_rows = TC_IMPORT_ROWS_MAX,
	.max_errors = TC_IMPORT_ERRORS_MAX,
};

int device_csv_read(const char *text, size_t len, struct csv_table *t)
{
	return csv_read(text, len, &device_spec, t);
}

/* The rows of a good file as device.import's "rows", or NULL. */
json_t *device_csv_rows(const struct csv_table *t)
{
	json_t *rows = json_array();
	for (size_t i = 0; rows && i < t->nrows; i++) {
		const struct csv_row *r = &t->rows[i];
		json_t *row = json_pack("{s:I}", TC_ARG_LINE, (json_int_t)r->line);
		if (!row || json_array_append_new(rows, row) < 0)
			goto oom;
		for (int k = 0; k < NCOLS; k++) {
			const struct csv_cell *v = &r->cells[k];
			int64_t ms;
			json_t *j;
			if (!v->s)
				continue;
			if (k == COL_HEARTBEAT)
				j = tc_duration_parse(v->s, &ms) == 0 ? json_integer(ms) : NULL;
			else
				j = json_stringn(v->s, v->len);   /* the reader checked the UTF-8 */
			if (!j || json_object_set_new(row, row_keys[k], j) < 0)
				goto oom;
		}
	}
	return rows;
oom:
	json_decref(rows);
	return NULL;
}

int device_csv(const char *text, size_t len, json_t **rows, char *msg, size_t msglen)
{
	struct csv_table t;
	*rows = NULL;
	msg[0] = '\0';
	if (device_csv_read(text, len, &t) < 0) {
		size_t o = 0;
		for (size_t i = 0; i < t.nkept && o + 8 < msglen; i++) {
			char clean[300];
			tc_sanitize(t.errors[i].msg ? t.errors[i].msg : "out of memory",
			            t.errors[i].msg ? t.errors[i].len : 13, clean, sizeof(clean));
			int n = t.errors[i].line > 0
			        ? snprintf(msg + o, msglen - o, "%sline %ld: %s", o ? "; " : "",
			                   t.errors[i].line, clean)
			        : snprintf(msg + o, msglen - o, "%s%s", o ? "; " : "", clean);
			if (n < 0 || (size_t)n >= msglen - o)
				break;
			o += (size_t)n;
		}
		if (t.nerrors > t.nkept && o + 40 < msglen)
			snprintf(msg + o, msglen - o, "; and %zu more bad lines", t.nerrors - t.nkept);
		csv_table_free(&t);
		return -1;
	}
	*rows = device_csv_rows(&t);
	csv_table_free(&t);
	if (!*rows) {
		snprintf(msg, msglen, "out of memory");
		return -1;
	}
	return 0;
}

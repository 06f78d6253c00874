/* Text output: cleaning, cells, aligned tables, JSON (telecarectl.h). */

#include <stdlib.h>
#include <string.h>

#include "telecarectl.h"

void put_clean(FILE *f, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char b = (unsigned char)s[i];
		if (b < 0x20 || b == 0x7f) {
			fputc('?', f);
		} else if (b == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] >= 0x80 &&
		           (unsigned char)s[i + 1] <= 0x9f) {
			fputc('?', f);   /* U+0080..U+009F: 8-bit CSI and friends */
			i++;
		} else {
			fputc(b, f);
		}
	}
}

/* A value as display text (malloc'd, cleaned): null and absent are "-". */
char *text_of(const json_t *v)
{
	char *out = NULL, *raw = NULL;
	size_t outlen = 0, rawlen = 0;
	FILE *f = open_memstream(&out, &outlen);
	if (!f)
		return strdup("?");
	switch (json_typeof(v ? v : json_null())) {
	case JSON_STRING:
		put_clean(f, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		fprintf(f, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_REAL:
		fprintf(f, "%.10g", json_real_value(v));
		break;
	case JSON_TRUE:
		fputs("yes", f);
		break;
	case JSON_FALSE:
		fputs("no", f);
		break;
	case JSON_NULL:
		fputs("-", f);
		break;
	default:   /* objects and arrays where text was expected: show them compactly */
		raw = json_dumps(v, JSON_COMPACT);
		rawlen = raw ? strlen(raw) : 0;
		put_clean(f, raw ? raw : "?", raw ? rawlen : 1);
		free(raw);
		break;
	}
	fclose(f);
	return out;
}

void put_value(FILE *f, const json_t *v)
{
	char *t = text_of(v);
	fputs(t, f);
	free(t);
}

/* Display width in columns, counting UTF-8 code points (good enough for the
 * names and addresses this prints; wide CJK glyphs will misalign a little). */
static size_t text_width(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

/* s in exactly width columns: padded with blanks, or cut to width - 1 code
 * points and an ellipsis when longer. */
static void put_cell(FILE *f, const char *s, size_t width)
{
	size_t w = text_width(s);
	if (w > width) {
		size_t keep = width ? width - 1 : 0, n = 0;
		const char *p = s;
		for (; *p; p++) {
			if (((unsigned char)*p & 0xc0) != 0x80 && n++ == keep)
				break;
		}
		fwrite(s, 1, (size_t)(p - s), f);
		if (width)
			fputs("\u2026", f);
		return;
	}
	fputs(s, f);
	for (; w < width; w++)
		fputc(' ', f);
}

/* "label:     value" lines of a show block */
void kv(const char *label, const json_t *v)
{
	printf("%-13s ", label);
	put_value(stdout, v);
	putchar('\n');
}

/* The strings of a JSON array joined by sep, or "-" when empty or absent. */
char *join_array(const json_t *arr, const char *sep)
{
	char *out = NULL;
	size_t outlen = 0, i;
	const json_t *v;
	FILE *f = open_memstream(&out, &outlen);
	if (!f)
		return strdup("?");
	json_array_foreach(arr, i, v) {
		if (i)
			fputs(sep, f);
		put_value(f, v);
	}
	if (!json_array_size(arr))
		fputs("-", f);
	fclose(f);
	return out;
}

/* Tables: the rule is in telecarectl.h. */

static void print_row(char *const *cells, const size_t *width, size_t ncols, const char *indent)
{
	fputs(indent, stdout);
	for (size_t col = 0; col < ncols; col++) {
		if (col + 1 == ncols) {
			fputs(cells[col], stdout);
			break;
		}
		bool rest_empty = true;
		for (size_t k = col + 1; k < ncols; k++)
			rest_empty = rest_empty && !cells[k][0];
		if (rest_empty) {
			if (text_width(cells[col]) > width[col])
				put_cell(stdout, cells[col], width[col]);
			else
				fputs(cells[col], stdout);
			break;
		}
		put_cell(stdout, cells[col], width[col]);
		for (int g = 0; g < COL_GAP; g++)
			putchar(' ');
	}
	putchar('\n');
}

void table_add(struct table *t, char *cell)
{
	if (t->ncells == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->cells = realloc(t->cells, t->cap * sizeof(*t->cells));
		if (!t->cells)
			abort();   /* out of memory while printing: nothing sensible left */
	}
	t->cells[t->ncells++] = cell ? cell : strdup("?");
}

void table_init(struct table *t, const char *const *headers)
{
	memset(t, 0, sizeof(*t));
	while (headers[t->ncols])
		t->ncols++;
	for (size_t i = 0; i < t->ncols; i++)
		table_add(t, strdup(headers[i]));
}

void table_add_value(struct table *t, const json_t *v)
{
	table_add(t, text_of(v));
}

/* Widen width[] (ncols entries) to the cells of t, within COL_MAX. */
void table_widths(const struct table *t, size_t *width)
{
	for (size_t i = 0; i < t->ncells; i++) {
		size_t w = text_width(t->cells[i]);
		if (w > COL_MAX)
			w = COL_MAX;
		if (w > width[i % t->ncols])
			width[i % t->ncols] = w;
	}
}

/* Print the rows of t with the given widths (NULL: sized to the cells) and
 * free it. */
void table_print_with(struct table *t, const char *indent, const size_t *given)
{
	size_t *width = calloc(t->ncols, sizeof(*width));
	if (!width)
		abort();
	if (given)
		memcpy(width, given, t->ncols * sizeof(*width));
	else
		table_widths(t, width);
	for (size_t i = 0; i + t->ncols <= t->ncells; i += t->ncols)
		print_row(t->cells + i, width, t->ncols, indent);
	for (size_t i = 0; i < t->ncells; i++)
		free(t->cells[i]);
	free(t->cells);
	free(width);
}

void table_print(struct table *t, const char *indent)
{
	table_print_with(t, indent, NULL);
}

/* A list answer as a table: a column per key, or `empty` for none. */
void print_rows(const json_t *d, const char *empty, const char *const *heads,
                       const char *const *keys)
{
	struct table t;
	size_t i;
	const json_t *row;

	if (!json_array_size(d)) {
		puts(empty);
		return;
	}
	table_init(&t, heads);
	json_array_foreach(d, i, row)
		for (size_t k = 0; keys[k]; k++)
			table_add_value(&t, json_object_get(row, keys[k]));
	table_print(&t, "");
}
int print_json(const json_t *v, size_t flags)
{
	/* 15 significant digits: 0.532 and 52.1 print as such, not as the
	 * nearest doubles' 17-digit spellings (0.53200000000000003) */
	char *s = json_dumps(v, flags | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
	if (!s) {
		fputs(PROG ": cannot encode the answer\n", stderr);
		return -1;
	}
	puts(s);
	free(s);
	return 0;
}

/* The device import file (telecarectl device import, POST /api/devices/import):
 * its columns, and its rows as device.import wants them. Pure: the same file
 * means the same rows for telecarectl and for the console. */
#ifndef TELECARE_DEVICE_CSV_H
#define TELECARE_DEVICE_CSV_H

#include <stddef.h>
#include <jansson.h>

#include "telecare/csv.h"

/* Read the file: 0 with t->rows, or -1 with t->errors (csv_read). */
int device_csv_read(const char *text, size_t len, struct csv_table *t);
/* The rows of a good file as device.import's "rows" (each with its "line"),
 * or NULL when out of memory. */
json_t *device_csv_rows(const struct csv_table *t);
/* Both, for a front that answers with one message: 0 with *rows, or -1
 * with "line N: ...; line M: ..." in msg (printable, UTF-8). */
int device_csv(const char *text, size_t len, json_t **rows, char *msg, size_t msglen);

#endif

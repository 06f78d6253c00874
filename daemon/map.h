/* A string-keyed hash map (open addressing, linear probing). Keys are copied;
 * values are borrowed pointers. Lookups, inserts and deletes are O(1) on
 * average: 100,000 devices must not cost a scan per event. */
#ifndef TELECARE_MAP_H
#define TELECARE_MAP_H

#include <stddef.h>

struct map_slot {
	char *key;     /* NULL: empty; MAP_TOMBSTONE: deleted */
	void *value;
};

struct map {
	struct map_slot *slots;
	size_t cap;    /* a power of two, or 0 */
	size_t len;    /* live keys */
	size_t used;   /* live keys and tombstones */
};

void *map_get(const struct map *m, const char *key);
/* Insert or replace. Returns 0, or -1 when out of memory. */
int map_put(struct map *m, const char *key, void *value);
/* Remove and return the value (NULL when absent). */
void *map_del(struct map *m, const char *key);
void map_free(struct map *m);

/* for (size_t i = 0; map_next(m, &i, &key, &value);) visits every entry. */
int map_next(const struct map *m, size_t *iter, const char **key, void **value);

#endif

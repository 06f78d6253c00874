#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "map.h"

static char tombstone;
#define MAP_TOMBSTONE (&tombstone)

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;  /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct map_slot *find(const struct map *m, const char *key)
{
	if (!m->cap)
		return NULL;
	for (size_t i = hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		struct map_slot *s = &m->slots[i];
		if (!s->key)
			return NULL;
		if (s->key != MAP_TOMBSTONE && strcmp(s->key, key) == 0)
			return s;
	}
}

void *map_get(const struct map *m, const char *key)
{
	struct map_slot *s = find(m, key);
	return s ? s->value : NULL;
}

static int grow(struct map *m)
{
	size_t ncap = m->cap ? m->cap * 2 : 64;
	if (m->len * 4 < m->cap)   /* mostly tombstones: rehash at the same size */
		ncap = m->cap;
	struct map_slot *ns = calloc(ncap, sizeof(*ns));
	if (!ns)
		return -1;
	for (size_t i = 0; i < m->cap; i++) {
		struct map_slot *s = &m->slots[i];
		if (!s->key || s->key == MAP_TOMBSTONE)
			continue;
		size_t j = hash(s->key) & (ncap - 1);
		while (ns[j].key)
			j = (j + 1) & (ncap - 1);
		ns[j] = *s;
	}
	free(m->slots);
	m->slots = ns;
	m->cap = ncap;
	m->used = m->len;
	return 0;
}

int map_put(struct map *m, const char *key, void *value)
{
	struct map_slot *s = find(m, key);
	if (s) {
		s->value = value;
		return 0;
	}
	if ((m->used + 1) * 4 >= m->cap * 3 && grow(m) < 0)
		return -1;
	char *k = strdup(key);
	if (!k)
		return -1;
	size_t i = hash(key) & (m->cap - 1);
	while (m->slots[i].key && m->slots[i].key != MAP_TOMBSTONE)
		i = (i + 1) & (m->cap - 1);
	if (!m->slots[i].key)
		m->used++;
	m->slots[i].key = k;
	m->slots[i].value = value;
	m->len++;
	return 0;
}

void *map_del(struct map *m, const char *key)
{
	struct map_slot *s = find(m, key);
	if (!s)
		return NULL;
	void *v = s->value;
	free(s->key);
	s->key = MAP_TOMBSTONE;
	s->value = NULL;
	m->len--;
	return v;
}

int map_next(const struct map *m, size_t *iter, const char **key, void **value)
{
	for (; *iter < m->cap; (*iter)++) {
		struct map_slot *s = &m->slots[*iter];
		if (s->key && s->key != MAP_TOMBSTONE) {
			if (key)
				*key = s->key;
			if (value)
				*value = s->value;
			(*iter)++;
			return 1;
		}
	}
	return 0;
}

void map_free(struct map *m)
{
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].key && m->slots[i].key != MAP_TOMBSTONE)
			free(m->slots[i].key);
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

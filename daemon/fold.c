/* The mass-incident rule (SPEC 3.1), pure: which class an alarm event folds
 * by, whether the latest arrivals of a class are more than the threshold
 * within the window, and which alarms found open at start lie in such a
 * window. No I/O, the time passed in: tests/unit/test_fold.c drives it with
 * a fake clock. mass.c is the shell that opens incidents and folds alarms. */
#include <stdlib.h>
#include <string.h>

#include "telecared.h"

const char *mass_class(enum tc_type type, bool known, bool test)
{
	if (test)
		return NULL;
	enum tc_kind k = tc_type_kind(type);
	if (!known)
		return k == TC_KIND_ALARM || k == TC_KIND_TECHNICAL ? "unknown" : NULL;
	return k == TC_KIND_TECHNICAL ? tc_type_name(type) : NULL;
}

static struct fold_arrival *at(const struct fold_window *w, size_t i)
{
	return &w->ring[(w->head + i) % w->cap];
}

const char *fold_device(const struct fold_window *w, size_t i)
{
	return i < w->len ? at(w, i)->device : NULL;
}

static void drop_oldest(struct fold_window *w)
{
	map_del(&w->recent, at(w, 0)->device);
	w->head = (w->head + 1) % w->cap;
	w->len--;
}

void fold_clear(struct fold_window *w)
{
	while (w->len)
		drop_oldest(w);
}

void fold_window_free(struct fold_window *w)
{
	fold_clear(w);
	map_free(&w->recent);
	free(w->ring);
	memset(w, 0, sizeof(*w));
}

int fold_arrive(struct fold_window *w, const char *device, int64_t now, int threshold,
                int64_t window)
{
	if (threshold <= 0)
		return 0;
	size_t want = (size_t)threshold + 1;
	if (w->cap != want) {
		/* A reload changed the threshold: count afresh. */
		fold_clear(w);
		struct fold_arrival *n = realloc(w->ring, want * sizeof(*n));
		if (!n)
			return -1;
		w->ring = n;
		w->cap = want;
		w->head = 0;
	}
	while (w->len && now - at(w, 0)->at > window)
		drop_oldest(w);
	if (!map_get(&w->recent, device)) {   /* each device counts once per window */
		if (w->len == w->cap)
			drop_oldest(w);
		struct fold_arrival *ar = at(w, w->len);
		snprintf(ar->device, sizeof(ar->device), "%s", device);
		ar->at = now;
		if (map_put(&w->recent, ar->device, (void *)1) < 0)
			return -1;
		w->len++;
	}
	return w->len > (size_t)threshold;
}

size_t fold_select(const int64_t *opened, size_t n, int64_t window, int threshold, bool *fold)
{
	size_t lo = 0, count = 0;
	if (threshold <= 0)
		return 0;
	for (size_t hi = 0; hi < n; hi++) {
		while (opened[hi] - opened[lo] > window)
			lo++;
		if (hi - lo + 1 > (size_t)threshold)
			for (size_t k = lo; k <= hi; k++)
				if (!fold[k]) {
					fold[k] = true;
					count++;
				}
	}
	return count;
}

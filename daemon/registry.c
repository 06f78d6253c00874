/* Residents and devices: kept in memory, every change queued to the store.
 * Removal keeps the row (removed_at) so that history stays readable. */
#include <stdlib.h>
#include <string.h>

#include "telecared.h"
#include "telecare/timefmt.h"

struct resident *resident_get(struct manager *m, const char *id)
{
	return map_get(&m->residents, id);
}

struct device *device_get(struct manager *m, const char *id)
{
	return map_get(&m->devices, id);
}

void resident_free(struct resident *r)
{
	if (!r)
		return;
	free(r->id);
	free(r->name);
	free(r->address);
	free(r->phone);
	free(r->team);
	free(r->notes);
	free(r);
}

void device_free(struct device *d)
{
	if (!d)
		return;
	free(d->id);
	free(d->resident_id);
	free(d->kind);
	free(d->source);
	free(d->address);
	free(d);
}

int resident_add(struct manager *m, struct resident *r)
{
	if (map_put(&m->residents, r->id, r) < 0) {
		resident_free(r);
		return -1;
	}
	store_write(m, ST_RESIDENT_UPSERT, "ssssssi", r->id, r->name, r->address, r->phone,
	            r->team, r->notes, r->created_at);
	return 0;
}

void resident_remove(struct manager *m, const char *id)
{
	store_write(m, ST_RESIDENT_DELETE, "is", tc_now_ms(), id);
	resident_free(map_del(&m->residents, id));
}

void device_save(struct manager *m, const struct device *d)
{
	store_write(m, ST_DEVICE_UPSERT, "sssiiiss", d->id, d->resident_id, d->kind,
	            d->heartbeat_ms, (int64_t)0, d->created_at, d->source, d->address);
}

static void address_key(const struct device *d, char *buf, size_t len)
{
	snprintf(buf, len, "%s\n%s", d->source, d->address);
}

struct device *device_by_address(struct manager *m, const char *source, const char *address)
{
	char key[TC_ADDRESS_MAX + 80];
	snprintf(key, sizeof(key), "%s\n%s", source, address);
	return map_get(&m->by_address, key);
}

int device_add(struct manager *m, struct device *d)
{
	char key[TC_ADDRESS_MAX + 80];
	if (map_put(&m->devices, d->id, d) < 0) {
		device_free(d);
		return -1;
	}
	if (d->source && d->address) {
		address_key(d, key, sizeof(key));
		map_put(&m->by_address, key, d);
	}
	device_save(m, d);
	d->heap_index = SIZE_MAX;
	supervise_watch(m, d);
	return 0;
}

void device_remove(struct manager *m, const char *id)
{
	store_write(m, ST_DEVICE_DELETE, "is", tc_now_ms(), id);
	struct device *d = map_del(&m->devices, id);
	if (d) {
		supervise_unwatch(m, d);
		if (d->source && d->address) {
			char key[TC_ADDRESS_MAX + 80];
			address_key(d, key, sizeof(key));
			map_del(&m->by_address, key);
		}
	}
	device_free(d);
}

void registry_free(struct manager *m)
{
	void *v;
	for (size_t it = 0; map_next(&m->residents, &it, NULL, &v);)
		resident_free(v);
	for (size_t it = 0; map_next(&m->devices, &it, NULL, &v);)
		device_free(v);
	map_free(&m->residents);
	map_free(&m->devices);
	map_free(&m->by_address);
}

json_t *json_str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

json_t *json_time_or_null(int64_t ms)
{
	char buf[TC_TIME_STRLEN];
	if (!ms)
		return json_null();
	tc_time_format(ms, buf, sizeof(buf));
	return json_string(buf);
}

json_t *resident_json(const struct resident *r)
{
	return json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o}", "id", r->id, "name", r->name,
	                 "address", json_str_or_null(r->address), "phone", json_str_or_null(r->phone),
	                 "team", json_str_or_null(r->team), "notes", json_str_or_null(r->notes),
	                 "created_at", json_time_or_null(r->created_at));
}

json_t *device_json(const struct device *d)
{
	char hb[32];
	if (d->heartbeat_ms)
		tc_duration_format(d->heartbeat_ms, hb, sizeof(hb));
	return json_pack("{s:s, s:o, s:o, s:o, s:I, s:b, s:o, s:o, s:o, s:o, s:o, s:o, s:s, s:o}",
	                 "id", d->id, "resident", json_str_or_null(d->resident_id),
	                 "kind", json_str_or_null(d->kind),
	                 "heartbeat", d->heartbeat_ms ? json_string(hb) : json_null(),
	                 "heartbeat_ms", (json_int_t)d->heartbeat_ms, "test", d->testing,
	                 "created_at", json_time_or_null(d->created_at),
	                 "last_seen", json_time_or_null(d->last_seen),
	                 "battery", d->battery >= 0 ? json_integer(d->battery) : json_null(),
	                 "rssi", d->rssi != INT32_MIN ? json_integer(d->rssi) : json_null(),
	                 "source", json_str_or_null(d->source), "address", json_str_or_null(d->address),
	                 "supervision", d->heartbeat_ms <= 0 ? "none" : d->silent ? "silent" : "ok",
	                 "last_poll", json_time_or_null(d->last_poll));
}

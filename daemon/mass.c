/* Mass incidents (SPEC 3.1): a district power cut makes thousands of base
 * units report power_loss within seconds, a broken bridge makes thousands of
 * unregistered ids speak at once, a network outage silences hundreds of
 * devices. Each event is still stored and receipted, but people see one
 * incident, alerted once, whose summary counts the devices and their teams.
 *
 * A class is a technical type of registered devices, or "unknown" (any alarm
 * of an unregistered device). Per class the last distinct devices to raise an
 * alarm are remembered for the window; the one that makes them more than
 * mass_devices forms an incident: those devices become its members, and
 * their own alarms, held (mass_hold) so nobody was paged yet, are folded into
 * it. While it is active (a device joined within the window) further devices
 * join it instead of opening alarms. Each member's restoral is recorded; the
 * incident resolves itself when all are restored. Care alarms of registered
 * devices never fold. Members are rows of incident_members, so a restart
 * finds the incident whole; open alarms loaded at start fold the same way
 * before anything is alerted. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "telecared.h"
#include "telecare/timefmt.h"

struct mass_class {
	char name[32];
	struct fold_window w;        /* the latest distinct devices of this class */
	int64_t active;              /* the incident devices join, or 0 */
	int64_t last_join;           /* boottime ms */
};

/* ---- the rule ---- */

/* More than *threshold devices within *window fold; 0: never. Silent devices
 * may keep the threshold of their old [supervision] storm keys. */
static void limits(const struct manager *m, const char *cls, int *threshold, int64_t *window)
{
	*threshold = m->cfg->mass.devices;
	*window = m->cfg->mass.window_ms;
	if (!strcmp(cls, "connection_lost") && m->cfg->sup.storm_devices > 0) {
		*threshold = m->cfg->sup.storm_devices - 1;
		if (m->cfg->sup.storm_window_ms > 0)
			*window = m->cfg->sup.storm_window_ms;
	}
}

static struct mass_class *class_get(struct manager *m, const char *cls)
{
	struct mass_class *mc = map_get(&m->mass_classes, cls);
	if (mc)
		return mc;
	mc = calloc(1, sizeof(*mc));
	if (!mc)
		return NULL;
	snprintf(mc->name, sizeof(mc->name), "%s", cls);
	if (map_put(&m->mass_classes, cls, mc) < 0) {
		free(mc);
		return NULL;
	}
	return mc;
}

/* ---- members ---- */

static void member_key(char *buf, size_t len, const char *cls, const char *device)
{
	snprintf(buf, len, "%s\n%s", cls, device);
}

static const char *team_of(struct manager *m, const char *device)
{
	struct device *d = device_get(m, device);
	struct resident *r = d && d->resident_id ? resident_get(m, d->resident_id) : NULL;
	return r && r->team ? r->team : "none";
}

static void member_save(struct manager *m, int64_t alarm, const char *device, const struct member *mb)
{
	store_write(m, ST_MEMBER_UPSERT, "issitt", alarm, device, tc_type_name(mb->type),
	            (int64_t)mb->known, mb->joined_at, mb->restored_at);
}

/* Count a member in: teams, the sample, who is a member of what. */
static int member_index(struct manager *m, struct alarm *in, const char *device,
                        struct member *mb)
{
	struct incident *inc = in->incident;
	char key[TC_DEVICE_ID_MAX + 40];
	if (map_put(&inc->members, device, mb) < 0)
		return -1;
	inc->devices++;
	const char *team = team_of(m, device);
	intptr_t n = (intptr_t)map_get(&inc->teams, team);
	map_put(&inc->teams, team, (void *)(n + 1));
	if (inc->n_sample < INCIDENT_SAMPLE)
		inc->sample[inc->n_sample++] = strdup(device);
	if (mb->restored) {
		inc->restored++;
	} else {
		member_key(key, sizeof(key), inc->cls, device);
		map_put(&m->mass_member_of, key, (void *)(intptr_t)in->id);
	}
	return 0;
}

/* device joins the incident (or joins again after it was restored). */
static void member_join(struct manager *m, struct alarm *in, const char *device,
                        enum tc_type type, bool known, int64_t own_alarm, int priority, bool row)
{
	struct incident *inc = in->incident;
	int64_t wall = tc_now_ms();
	struct member *mb = map_get(&inc->members, device);
	if (mb) {
		if (!mb->restored)
			return;
		/* Lost again after its restoral: one of the incident's open devices again. */
		char key[TC_DEVICE_ID_MAX + 40];
		mb->restored = false;
		mb->restored_at = 0;
		inc->restored--;
		member_key(key, sizeof(key), inc->cls, device);
		map_put(&m->mass_member_of, key, (void *)(intptr_t)in->id);
	} else {
		mb = calloc(1, sizeof(*mb));
		if (!mb) {
			log_full(LOG_CRIT, device, in->id, NULL, "incident %lld: out of memory adding "
			         "device %s", (long long)in->id, device);
			return;
		}
		mb->type = type;
		mb->known = known;
		mb->joined_at = wall;
		mb->alarm = own_alarm;
		if (member_index(m, in, device, mb) < 0) {
			free(mb);
			return;
		}
	}
	member_save(m, in->id, device, mb);
	if (row)
		alarm_do(m, in, &(struct life_event){ .kind = LIFE_MEMBER_JOIN, .type = type,
		                                      .priority = priority, .device = device }, NULL, 0);
}

/* The open alarms of device that a class folds: its technical alarm of that
 * type, or every alarm of an unregistered device. */
static void fold_own(struct manager *m, struct alarm *in, const char *device, enum tc_type type,
                     bool known)
{
	char key[TC_DEVICE_ID_MAX + 40];
	const char *kinds[TC_T__COUNT + 1];
	size_t n = 0;
	if (known) {
		kinds[n++] = tc_type_name(type);
	} else {
		kinds[n++] = "care";
		for (int t = 0; t < TC_T__DEVICE_COUNT; t++)
			if (tc_type_kind((enum tc_type)t) == TC_KIND_TECHNICAL)
				kinds[n++] = tc_type_name((enum tc_type)t);
	}
	for (size_t i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "%s/%s", device, kinds[i]);
		struct alarm *a = alarm_by_key(m, key);
		if (!a || a == in || a->incident)
			continue;
		if (json_array_size(a->alerted) == 0) {
			/* Held, nobody paged yet: the incident speaks for it. */
			alarm_do(m, a, &(struct life_event){ .kind = LIFE_FOLD, .incident = in->id }, NULL, 0);
		} else {
			/* Someone already has it in hand: it stays its own alarm. */
			struct member *mb = map_get(&in->incident->members, device);
			if (mb && !mb->alarm) {
				mb->alarm = a->id;
				member_save(m, in->id, device, mb);
			}
		}
	}
}

struct incident *mass_incident_new(const char *cls)
{
	struct incident *inc = calloc(1, sizeof(*inc));
	if (inc)
		snprintf(inc->cls, sizeof(inc->cls), "%s", cls);
	return inc;
}

void mass_incident_free(struct incident *inc)
{
	if (!inc)
		return;
	void *v;
	for (size_t it = 0; map_next(&inc->members, &it, NULL, &v);)
		free(v);
	map_free(&inc->members);
	map_free(&inc->teams);
	for (size_t i = 0; i < inc->n_sample; i++)
		free(inc->sample[i]);
	free(inc);
}

/* A new incident alarm of class cls, tracked but not yet opened. */
static struct alarm *incident_alarm(struct manager *m, const char *cls, enum tc_type type,
                                    int priority)
{
	struct alarm *in = alarm_new(m, "telecared", "mass", priority, strcmp(cls, "unknown") != 0,
	                             false);
	if (!in)
		return NULL;
	free(in->key);
	if (asprintf(&in->key, "mass/%s#%lld", cls, (long long)in->id) < 0 ||
	    !(in->incident = mass_incident_new(cls))) {
		in->key = NULL;
		alarm_free(in);
		return NULL;
	}
	(void)type;
	return in;
}

static void describe(char *buf, size_t len, const char *cls, size_t n, const char *dur)
{
	if (!strcmp(cls, "unknown"))
		snprintf(buf, len, "%zu unregistered devices raised alarms within %s: one mass incident",
		         n, dur);
	else if (!strcmp(cls, "connection_lost"))
		snprintf(buf, len, "%zu devices fell silent within %s: one mass incident", n, dur);
	else
		snprintf(buf, len, "%zu devices reported %s within %s: one mass incident", n, cls, dur);
}

/* The arrivals of mc are more than the threshold: one incident of them. */
static struct alarm *form(struct manager *m, struct mass_class *mc, enum tc_type type,
                          bool known, int priority, int64_t window)
{
	struct alarm *in = incident_alarm(m, mc->name, type, priority);
	if (!in)
		return NULL;
	int64_t wall = tc_now_ms();
	for (size_t i = 0; i < mc->w.len; i++) {
		struct member *mb = calloc(1, sizeof(*mb));
		if (!mb || member_index(m, in, fold_device(&mc->w, i), mb) < 0) {
			free(mb);
			continue;
		}
		struct device *d = device_get(m, fold_device(&mc->w, i));
		mb->type = type;
		mb->known = d != NULL;
		mb->joined_at = wall;
		member_save(m, in->id, fold_device(&mc->w, i), mb);
	}
	char detail[200], dur[32];
	tc_duration_format(window, dur, sizeof(dur));
	describe(detail, sizeof(detail), mc->name, in->incident->devices, dur);
	int64_t id = in->id;
	if (alarm_open(m, in, type, NULL, "telecared", detail) < 0)
		return NULL;
	in = alarm_get(m, id);
	if (!in)
		return NULL;
	for (size_t i = 0; i < mc->w.len; i++) {
		const char *dev = fold_device(&mc->w, i);
		alarm_timeline(m, id, wall, TL_JOINED, dev, tc_type_name(type));
		fold_own(m, in, dev, type, device_get(m, dev) != NULL);
	}
	log_full(LOG_WARNING, NULL, id, NULL, "alarm %lld: mass incident: %s", (long long)id, detail);
	fold_clear(&mc->w);
	mc->active = id;
	(void)known;
	return in;
}

struct alarm *mass_event(struct manager *m, const char *device, enum tc_type type, bool known,
                         int priority)
{
	const char *cls = mass_class(type, known, false);
	int threshold;
	int64_t window, now = tc_mono_ms();
	char key[TC_DEVICE_ID_MAX + 40];
	if (!cls)
		return NULL;
	limits(m, cls, &threshold, &window);
	/* Still an open device of an incident: its news belongs there. */
	member_key(key, sizeof(key), cls, device);
	struct alarm *in = alarm_get(m, (int64_t)(intptr_t)map_get(&m->mass_member_of, key));
	if (in && in->incident)
		return in;
	if (threshold <= 0)
		return NULL;
	struct mass_class *mc = class_get(m, cls);
	if (!mc)
		return NULL;
	in = mc->active ? alarm_get(m, mc->active) : NULL;
	if (in && now - mc->last_join <= window) {
		mc->last_join = now;
		member_join(m, in, device, type, known, 0, priority, true);
		return alarm_get(m, mc->active);
	}
	mc->active = 0;   /* quiet for a window: what comes now is news of its own */
	if (fold_arrive(&mc->w, device, now, threshold, window) <= 0)
		return NULL;
	mc->last_join = now;
	return form(m, mc, type, known, priority, window);
}

int64_t mass_restore(struct manager *m, const char *device, enum tc_type restores)
{
	const char *classes[] = { tc_type_name(restores), "unknown" };
	char key[TC_DEVICE_ID_MAX + 40];
	for (size_t i = 0; restores != TC_T_INVALID && i < 2; i++) {
		member_key(key, sizeof(key), classes[i], device);
		int64_t id = (int64_t)(intptr_t)map_get(&m->mass_member_of, key);
		struct alarm *in = id ? alarm_get(m, id) : NULL;
		struct member *mb = in && in->incident ? map_get(&in->incident->members, device) : NULL;
		if (!mb || mb->restored || (i == 1 && mb->type != restores))
			continue;
		map_del(&m->mass_member_of, key);
		mb->restored = true;
		mb->restored_at = tc_now_ms();
		in->incident->restored++;
		member_save(m, id, device, mb);
		alarm_do(m, in, &(struct life_event){ .kind = LIFE_MEMBER_RESTORE, .type = restores,
		                                      .device = device }, NULL, 0);
		return id;
	}
	return 0;
}

void mass_forget(struct manager *m, struct alarm *a)
{
	struct incident *inc = a->incident;
	if (!inc)
		return;
	char key[TC_DEVICE_ID_MAX + 40];
	const char *dev;
	void *v;
	for (size_t it = 0; map_next(&inc->members, &it, &dev, &v);) {
		struct member *mb = v;
		if (mb->restored)
			continue;
		member_key(key, sizeof(key), inc->cls, dev);
		if ((int64_t)(intptr_t)map_get(&m->mass_member_of, key) == a->id)
			map_del(&m->mass_member_of, key);
		/* Resolved by a person with devices still silent: judge them afresh. */
		struct device *d = !strcmp(inc->cls, "connection_lost") ? device_get(m, dev) : NULL;
		if (d && d->silent) {
			d->silent = false;
			supervise_watch(m, d);
		}
	}
	struct mass_class *mc = map_get(&m->mass_classes, inc->cls);
	if (mc && mc->active == a->id)
		mc->active = 0;
}

json_t *mass_incident_json(const struct alarm *a)
{
	const struct incident *inc = a->incident;
	json_t *teams = json_object(), *sample = json_array();
	const char *k;
	void *v;
	for (size_t it = 0; map_next(&inc->teams, &it, &k, &v);)
		json_object_set_new(teams, k, json_integer((json_int_t)(intptr_t)v));
	for (size_t i = 0; i < inc->n_sample; i++)
		json_array_append_new(sample, json_string(inc->sample[i]));
	return json_pack("{s:s, s:I, s:I, s:o, s:o}", "class", inc->cls,
	                 "devices", (json_int_t)inc->devices, "restored", (json_int_t)inc->restored,
	                 "teams", teams, "sample", sample);
}

json_t *mass_members_json(struct manager *m, int64_t alarm)
{
	sqlite3_stmt *s = store_query(m, "SELECT device_id, type, known, joined_at, restored_at"
	                                 " FROM incident_members WHERE alarm_id = ? ORDER BY joined_at,"
	                                 " device_id");
	if (!s)
		return NULL;
	sqlite3_bind_int64(s, 1, alarm);
	json_t *list = json_array();
	struct alarm *in = alarm_get(m, alarm);
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *dev = (const char *)sqlite3_column_text(s, 0);
		struct member *mb = in && in->incident && dev ? map_get(&in->incident->members, dev) : NULL;
		json_array_append_new(list, json_pack("{s:s?, s:s?, s:b, s:o, s:o, s:o}", "device", dev,
		                      "type", (const char *)sqlite3_column_text(s, 1),
		                      "known", sqlite3_column_int(s, 2),
		                      "joined_at", json_time_or_null(sqlite3_column_int64(s, 3)),
		                      "restored_at", json_time_or_null(sqlite3_column_int64(s, 4)),
		                      "alarm", mb && mb->alarm ? json_integer(mb->alarm) : json_null()));
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		json_decref(list);
		return NULL;
	}
	return list;
}

/* ---- start ---- */

static int load_members(struct manager *m, struct alarm *in)
{
	sqlite3_stmt *s = store_query(m, "SELECT device_id, type, known, joined_at, restored_at"
	                                 " FROM incident_members WHERE alarm_id = ?");
	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, in->id);
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *dev = (const char *)sqlite3_column_text(s, 0);
		const char *type = (const char *)sqlite3_column_text(s, 1);
		struct member *mb = calloc(1, sizeof(*mb));
		if (!mb || !dev || !type) {
			free(mb);
			sqlite3_reset(s);
			return -1;
		}
		mb->type = tc_type_from_name(type);
		mb->known = sqlite3_column_int(s, 2);
		mb->joined_at = sqlite3_column_int64(s, 3);
		mb->restored_at = sqlite3_column_int64(s, 4);
		mb->restored = mb->restored_at != 0;
		if (member_index(m, in, dev, mb) < 0) {
			free(mb);
			sqlite3_reset(s);
			return -1;
		}
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* The class an open alarm loaded at start folds by, or NULL. */
static const char *loaded_class(const struct alarm *a)
{
	if (a->incident || a->test || !a->n_types || !strcmp(a->device, "telecared"))
		return NULL;
	return mass_class((enum tc_type)a->types[0], a->resident_id != NULL, false);
}

static int by_opened(const void *x, const void *y)
{
	const struct alarm *a = *(struct alarm *const *)x, *b = *(struct alarm *const *)y;
	return a->opened_at < b->opened_at ? -1 : a->opened_at > b->opened_at ? 1
	       : a->id < b->id ? -1 : a->id > b->id;
}

/* Fold the loaded open alarms of one class that are more than the threshold
 * within a window: a restart in a blackout presents the incident, not 20,000
 * alarms fired at once. */
static void fold_loaded(struct manager *m, const char *cls, struct alarm **v, size_t n)
{
	int threshold;
	int64_t window;
	limits(m, cls, &threshold, &window);
	if (threshold <= 0 || n <= (size_t)threshold)
		return;
	qsort(v, n, sizeof(*v), by_opened);
	bool *fold = calloc(n, sizeof(*fold));
	if (!fold)
		return;
	int64_t *opened = malloc(n * sizeof(*opened));
	if (!opened) {
		free(fold);
		return;
	}
	for (size_t k = 0; k < n; k++)
		opened[k] = v[k]->opened_at;
	size_t nfold = fold_select(opened, n, window, threshold, fold);
	free(opened);
	if (!nfold) {
		free(fold);
		return;
	}
	struct mass_class *mc = class_get(m, cls);
	struct alarm *in = mc && mc->active ? alarm_get(m, mc->active) : NULL;
	size_t first = 0;
	while (!fold[first])
		first++;
	enum tc_type type = (enum tc_type)v[first]->types[0];
	if (!in) {
		/* Formed from the first of them, then the rest join below. */
		in = incident_alarm(m, cls, type, v[first]->priority);
		if (!in) {
			free(fold);
			return;
		}
		char detail[200];
		snprintf(detail, sizeof(detail), "%zu open %s alarms found at start: one mass incident",
		         nfold, !strcmp(cls, "unknown") ? "unregistered devices'" : cls);
		int64_t id = in->id;
		for (size_t k = 0; k < n; k++) {
			if (!fold[k])
				continue;
			struct member *mb = calloc(1, sizeof(*mb));
			if (!mb || member_index(m, in, v[k]->device, mb) < 0) {
				free(mb);
				continue;
			}
			mb->type = (enum tc_type)v[k]->types[0];
			mb->known = v[k]->resident_id != NULL;
			mb->joined_at = v[k]->opened_at;
			member_save(m, id, v[k]->device, mb);
		}
		if (alarm_open(m, in, type, NULL, "telecared", detail) < 0 || !(in = alarm_get(m, id))) {
			free(fold);
			return;
		}
		mc->active = id;
		mc->last_join = tc_mono_ms();
	}
	for (size_t k = 0; k < n; k++) {
		if (!fold[k])
			continue;
		member_join(m, in, v[k]->device, (enum tc_type)v[k]->types[0], v[k]->resident_id != NULL,
		            0, v[k]->priority, false);
		alarm_timeline(m, in->id, tc_now_ms(), TL_JOINED, v[k]->device,
		               tc_type_name((enum tc_type)v[k]->types[0]));
		alarm_do(m, v[k], &(struct life_event){ .kind = LIFE_FOLD, .incident = in->id }, NULL, 0);
	}
	alarm_board_later(m, in);
	log_full(LOG_WARNING, NULL, in->id, NULL, "alarm %lld: %zu open %s alarms folded into it at "
	         "start", (long long)in->id, nfold, cls);
	free(fold);
}

int mass_load(struct manager *m)
{
	/* Incidents open before the restart, whole again. */
	void *v;
	size_t n = 0;
	struct alarm **all = calloc(m->alarms.len + 1, sizeof(*all));
	if (!all)
		return -ENOMEM;
	for (size_t it = 0; map_next(&m->alarms, &it, NULL, &v);)
		all[n++] = v;
	int64_t now = tc_mono_ms();
	for (size_t i = 0; i < n; i++) {
		struct alarm *a = all[i];
		if (!a->incident)
			continue;
		if (load_members(m, a) < 0) {
			free(all);
			log_error("database: cannot load the members of incident %lld", (long long)a->id);
			return -EIO;
		}
		struct mass_class *mc = class_get(m, a->incident->cls);
		if (mc && (!mc->active || a->id > mc->active)) {
			mc->active = a->id;
			mc->last_join = now;   /* a restart in a storm goes on folding */
		}
	}
	/* Then fold, class by class, what a restart would otherwise fire. The
	 * classes are named first: folding frees alarms, so each class's group
	 * is gathered afresh from what is still open. */
	struct map seen = { 0 };
	char **classes = calloc(n + 1, sizeof(*classes));
	size_t n_classes = 0;
	for (size_t i = 0; classes && i < n; i++) {
		const char *cls = loaded_class(all[i]);
		if (!cls || map_get(&seen, cls))
			continue;
		map_put(&seen, cls, (void *)1);
		classes[n_classes++] = strdup(cls);
	}
	map_free(&seen);
	free(all);
	for (size_t c = 0; c < n_classes; c++) {
		struct alarm **group = classes[c] ? calloc(m->alarms.len + 1, sizeof(*group)) : NULL;
		size_t k = 0;
		for (size_t it = 0; group && map_next(&m->alarms, &it, NULL, &v);) {
			const char *c2 = loaded_class(v);
			if (c2 && !strcmp(c2, classes[c]))
				group[k++] = v;
		}
		if (group)
			fold_loaded(m, classes[c], group, k);
		free(group);
		free(classes[c]);
	}
	free(classes);
	return 0;
}

void mass_free(struct manager *m)
{
	void *v;
	for (size_t it = 0; map_next(&m->mass_classes, &it, NULL, &v);) {
		struct mass_class *mc = v;
		fold_window_free(&mc->w);
		free(mc);
	}
	map_free(&m->mass_classes);
	map_free(&m->mass_member_of);
}

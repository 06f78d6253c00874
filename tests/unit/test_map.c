/* The string hash map (daemon/map.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "map.h"

#define V(n) ((void *)(uintptr_t)(n))

static void test_empty(void **state)
{
	(void)state;
	struct map m = { 0 };
	assert_null(map_get(&m, "x"));
	assert_null(map_del(&m, "x"));
	size_t it = 0;
	assert_int_equal(map_next(&m, &it, NULL, NULL), 0);
	map_free(&m);
	map_free(&m);  /* twice is harmless */
}

static void test_put_get_replace_delete(void **state)
{
	(void)state;
	struct map m = { 0 };
	char key[8] = "alpha";
	assert_int_equal(map_put(&m, key, V(1)), 0);
	strcpy(key, "XXXXX");   /* the map owns a copy */
	assert_ptr_equal(map_get(&m, "alpha"), V(1));
	assert_null(map_get(&m, "XXXXX"));
	assert_int_equal(m.len, 1);

	assert_int_equal(map_put(&m, "beta", V(2)), 0);
	assert_int_equal(map_put(&m, "", V(3)), 0);  /* the empty key is a key */
	assert_ptr_equal(map_get(&m, "beta"), V(2));
	assert_ptr_equal(map_get(&m, ""), V(3));
	assert_int_equal(m.len, 3);

	/* replace */
	assert_int_equal(map_put(&m, "alpha", V(10)), 0);
	assert_ptr_equal(map_get(&m, "alpha"), V(10));
	assert_int_equal(m.len, 3);

	/* NULL values are allowed (and read back as NULL) */
	assert_int_equal(map_put(&m, "gamma", NULL), 0);
	assert_int_equal(m.len, 4);

	/* delete */
	assert_ptr_equal(map_del(&m, "alpha"), V(10));
	assert_null(map_get(&m, "alpha"));
	assert_null(map_del(&m, "alpha"));
	assert_int_equal(m.len, 3);
	assert_ptr_equal(map_get(&m, "beta"), V(2));

	/* re-insert after delete */
	assert_int_equal(map_put(&m, "alpha", V(11)), 0);
	assert_ptr_equal(map_get(&m, "alpha"), V(11));
	assert_int_equal(m.len, 4);
	map_free(&m);
	assert_int_equal(m.len, 0);
	assert_int_equal(m.cap, 0);
	assert_null(m.slots);
}

#define N 100000

static void test_many_keys(void **state)
{
	(void)state;
	struct map m = { 0 };
	char key[32];
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "pendant-%06d", i);
		assert_int_equal(map_put(&m, key, V(i + 1)), 0);
	}
	assert_int_equal(m.len, N);
	assert_true(m.cap >= N);
	assert_int_equal(m.cap & (m.cap - 1), 0);   /* a power of two */
	assert_true(m.used * 4 < m.cap * 3);        /* load factor kept */
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "pendant-%06d", i);
		if (map_get(&m, key) != V(i + 1))
			fail_msg("lookup of %s failed", key);
	}
	snprintf(key, sizeof(key), "pendant-%06d", N);
	assert_null(map_get(&m, key));

	/* delete the even half */
	for (int i = 0; i < N; i += 2) {
		snprintf(key, sizeof(key), "pendant-%06d", i);
		assert_ptr_equal(map_del(&m, key), V(i + 1));
	}
	assert_int_equal(m.len, N / 2);
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "pendant-%06d", i);
		void *want = (i % 2) ? V(i + 1) : NULL;
		if (map_get(&m, key) != want)
			fail_msg("after deleting evens, lookup of %s wrong", key);
	}

	/* iteration: each live key once, with its value */
	unsigned char *seen = calloc(N, 1);
	assert_non_null(seen);
	size_t count = 0;
	const char *k;
	void *v;
	for (size_t it = 0; map_next(&m, &it, &k, &v);) {
		int i;
		assert_int_equal(sscanf(k, "pendant-%d", &i), 1);
		assert_true(i >= 0 && i < N);
		assert_int_equal(i % 2, 1);
		assert_ptr_equal(v, V(i + 1));
		if (seen[i]++)
			fail_msg("iteration visited %s twice", k);
		count++;
	}
	assert_int_equal(count, N / 2);
	free(seen);

	/* insert the evens again: all 100,000 back */
	for (int i = 0; i < N; i += 2) {
		snprintf(key, sizeof(key), "pendant-%06d", i);
		assert_int_equal(map_put(&m, key, V(i + 7)), 0);
	}
	assert_int_equal(m.len, N);
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "pendant-%06d", i);
		assert_ptr_equal(map_get(&m, key), (i % 2) ? V(i + 1) : V(i + 7));
	}
	map_free(&m);
}

static void test_iteration_small(void **state)
{
	(void)state;
	struct map m = { 0 };
	assert_int_equal(map_put(&m, "a", V(1)), 0);
	assert_int_equal(map_put(&m, "b", V(2)), 0);
	assert_int_equal(map_put(&m, "c", V(3)), 0);
	assert_ptr_equal(map_del(&m, "b"), V(2));
	int mask = 0, n = 0;
	const char *k;
	for (size_t it = 0; map_next(&m, &it, &k, NULL);) {
		n++;
		mask |= 1 << (k[0] - 'a');
	}
	assert_int_equal(n, 2);
	assert_int_equal(mask, 1 | 4);
	/* NULL key pointer is fine too */
	void *v;
	n = 0;
	for (size_t it = 0; map_next(&m, &it, NULL, &v);)
		n++;
	assert_int_equal(n, 2);
	map_free(&m);
}

static void test_tombstone_reuse(void **state)
{
	(void)state;
	struct map m = { 0 };
	/* the same key deleted and re-inserted takes its tombstone back */
	assert_int_equal(map_put(&m, "x", V(1)), 0);
	size_t used = m.used;
	for (int i = 0; i < 1000; i++) {
		assert_ptr_equal(map_del(&m, "x"), V(1));
		assert_int_equal(map_put(&m, "x", V(1)), 0);
	}
	assert_int_equal(m.used, used);
	assert_int_equal(m.len, 1);
	map_free(&m);

	/* churn of ever-new keys with few live ones: the table neither grows
	 * without bound nor fills with tombstones (a full table would make a
	 * miss loop forever) */
	char key[32];
	for (int i = 0; i < 200000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(map_put(&m, key, V(i + 1)), 0);
		if (i >= 10) {
			snprintf(key, sizeof(key), "k%d", i - 10);
			assert_ptr_equal(map_del(&m, key), V(i - 9));
		}
		assert_true(m.used < m.cap);
	}
	assert_int_equal(m.len, 10);
	assert_true(m.cap <= 128);
	assert_null(map_get(&m, "never-inserted"));
	for (int i = 200000 - 10; i < 200000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_ptr_equal(map_get(&m, key), V(i + 1));
	}
	map_free(&m);
}

static void test_colliding_probe_chain(void **state)
{
	(void)state;
	/* delete from the middle of probe chains: later keys must stay reachable */
	struct map m = { 0 };
	char key[16];
	for (int i = 0; i < 40; i++) {
		snprintf(key, sizeof(key), "%d", i);
		assert_int_equal(map_put(&m, key, V(i + 1)), 0);
	}
	for (int i = 0; i < 40; i += 3) {
		snprintf(key, sizeof(key), "%d", i);
		assert_ptr_equal(map_del(&m, key), V(i + 1));
	}
	for (int i = 0; i < 40; i++) {
		snprintf(key, sizeof(key), "%d", i);
		assert_ptr_equal(map_get(&m, key), (i % 3) ? V(i + 1) : NULL);
	}
	/* a put of an existing key after tombstones earlier in its chain must
	 * replace, not duplicate */
	for (int i = 1; i < 40; i += 3) {
		snprintf(key, sizeof(key), "%d", i);
		assert_int_equal(map_put(&m, key, V(100 + i)), 0);
	}
	size_t live = 0;
	for (size_t it = 0; map_next(&m, &it, NULL, NULL);)
		live++;
	assert_int_equal(live, m.len);
	assert_int_equal(m.len, 40 - 14);
	map_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_put_get_replace_delete),
		cmocka_unit_test(test_many_keys),
		cmocka_unit_test(test_iteration_small),
		cmocka_unit_test(test_tombstone_reuse),
		cmocka_unit_test(test_colliding_probe_chain),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_mirror.c - syncd's session mirror (syncd/mirror.c): put/get/del,
 * stable slab indices (a bulk cursor stays valid), counts by origin, and
 * the hash index against a reference under random operations.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mirror.h"

static void put_get_replace_delete(void **state)
{
	(void)state;
	struct mirror *m;
	assert_int_equal(mirror_new(&m), 0);
	struct mirror_ent *e;
	assert_int_equal(mirror_put(m, 42, MIRROR_LOCAL, (const uint8_t *)"abc", 3,
				    1000, 1, &e), 0);
	assert_int_equal(e->id, 42);
	assert_int_equal(e->len, 3);
	assert_memory_equal(e->data, "abc", 3);
	/* a longer value replaces it in place (same slab slot) */
	uint32_t slot = 0;
	for (uint32_t i = 0; i < mirror_slots(m); i++)
		if (mirror_at(m, i) == e)
			slot = i;
	char big[200];
	memset(big, 'x', sizeof(big));
	assert_int_equal(mirror_put(m, 42, 2, (const uint8_t *)big, sizeof(big),
				    2000, 2, &e), 0);
	assert_ptr_equal(mirror_at(m, slot), e);
	assert_int_equal(e->len, 200);
	assert_int_equal(e->origin, 2);
	assert_int_equal(mirror_count_local(m), 0);
	assert_int_equal(mirror_count_peer(m), 1);
	assert_ptr_equal(mirror_get(m, 42), e);
	assert_null(mirror_get(m, 43));
	assert_int_equal(mirror_del(m, 42), 0);
	assert_int_equal(mirror_del(m, 42), -ENOENT);
	assert_null(mirror_get(m, 42));
	assert_null(mirror_at(m, slot));
	mirror_free(m);
	mirror_free(NULL);
}

static void slab_indices_stay_put_while_others_come_and_go(void **state)
{
	(void)state;
	struct mirror *m;
	assert_int_equal(mirror_new(&m), 0);
	for (uint64_t id = 1; id <= 5000; id++)
		assert_int_equal(mirror_put(m, id, MIRROR_LOCAL, (const uint8_t *)&id,
					    sizeof(id), 0, 0, NULL), 0);
	/* remember where id 2500 is, then churn around it */
	uint32_t where = UINT32_MAX;
	for (uint32_t i = 0; i < mirror_slots(m); i++) {
		struct mirror_ent *e = mirror_at(m, i);
		if (e && e->id == 2500)
			where = i;
	}
	assert_int_not_equal(where, UINT32_MAX);
	for (uint64_t id = 1; id <= 5000; id += 2)
		if (id != 2500)
			mirror_del(m, id);
	for (uint64_t id = 10001; id <= 30000; id++)
		mirror_put(m, id, 3, (const uint8_t *)&id, sizeof(id), 0, 0, NULL);
	assert_non_null(mirror_at(m, where));
	assert_int_equal(mirror_at(m, where)->id, 2500);
	assert_int_equal(mirror_count_local(m), 2500);
	assert_int_equal(mirror_count_peer(m), 20000);
	mirror_free(m);
}

static void set_origin_keeps_the_counts(void **state)
{
	(void)state;
	struct mirror *m;
	assert_int_equal(mirror_new(&m), 0);
	for (uint64_t id = 1; id <= 10; id++)
		mirror_put(m, id, id <= 4 ? MIRROR_LOCAL : 9, (const uint8_t *)"s", 1,
			   0, 0, NULL);
	assert_int_equal(mirror_count_local(m), 4);
	for (uint32_t i = 0; i < mirror_slots(m); i++) {
		struct mirror_ent *e = mirror_at(m, i);
		if (e)
			mirror_set_origin(m, e, MIRROR_LOCAL); /* promote */
	}
	assert_int_equal(mirror_count_local(m), 10);
	assert_int_equal(mirror_count_peer(m), 0);
	mirror_free(m);
}

static void random_operations_match_a_reference(void **state)
{
	(void)state;
	enum { N = 4096 };
	static uint8_t present[N];
	memset(present, 0, sizeof(present));
	struct mirror *m;
	assert_int_equal(mirror_new(&m), 0);
	srand(7);
	size_t count = 0;
	for (int op = 0; op < 200000; op++) {
		/* ids spread over the 64-bit space like node<<48 | counter */
		unsigned k = (unsigned)rand() % N;
		uint64_t id = (uint64_t)(k % 3 + 1) << 48 | k;
		if (rand() % 3) {
			uint32_t v = (uint32_t)op;
			assert_int_equal(mirror_put(m, id, MIRROR_LOCAL,
						    (const uint8_t *)&v, sizeof(v),
						    0, 0, NULL), 0);
			count += !present[k];
			present[k] = 1;
		} else {
			int r = mirror_del(m, id);
			assert_int_equal(r, present[k] ? 0 : -ENOENT);
			count -= present[k];
			present[k] = 0;
		}
		if (op % 10007 == 0)
			for (unsigned j = 0; j < N; j++) {
				uint64_t jd = (uint64_t)(j % 3 + 1) << 48 | j;
				assert_true((mirror_get(m, jd) != NULL) == present[j]);
			}
	}
	assert_int_equal(mirror_count_local(m), count);
	mirror_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(put_get_replace_delete),
		cmocka_unit_test(slab_indices_stay_put_while_others_come_and_go),
		cmocka_unit_test(set_origin_keeps_the_counts),
		cmocka_unit_test(random_operations_match_a_reference),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

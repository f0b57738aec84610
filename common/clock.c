/*
 * clock.c - system or manual millisecond clock (see clock.h).
 * The manual value is an atomic so a test thread and a worker can share it.
 */
#include "clock.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

static atomic_bool manual;
static _Atomic uint64_t manual_ms;

uint64_t clock_now_ms(void)
{
	if (atomic_load_explicit(&manual, memory_order_relaxed))
		return atomic_load_explicit(&manual_ms, memory_order_relaxed);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void clock_use_manual(uint64_t start_ms)
{
	atomic_store(&manual_ms, start_ms);
	atomic_store(&manual, true);
}

void clock_use_system(void)
{
	atomic_store(&manual, false);
}

void clock_set_ms(uint64_t ms)
{
	uint64_t cur = atomic_load(&manual_ms);
	while (ms > cur && !atomic_compare_exchange_weak(&manual_ms, &cur, ms))
		;
}

void clock_advance_ms(uint64_t delta_ms)
{
	atomic_fetch_add(&manual_ms, delta_ms);
}

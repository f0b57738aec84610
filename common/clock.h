/*
 * clock.h - the one clock of the project.
 *
 * Every component reads time through clock_now_ms(). Production uses
 * CLOCK_MONOTONIC; tests and the offline (pcap) packet source switch to a
 * manual clock they drive, so an 1800 s timeout is tested by advancing the
 * clock, never by waiting. Time is milliseconds in a uint64_t.
 *
 * Must never: block, allocate, or go backwards (clock_set_ms() ignores a
 * value below the current one).
 */
#ifndef TANDEM_CLOCK_H
#define TANDEM_CLOCK_H

#include <stdint.h>

uint64_t clock_now_ms(void);

/* Switch to the manual clock, starting at start_ms. */
void clock_use_manual(uint64_t start_ms);
/* Back to CLOCK_MONOTONIC. */
void clock_use_system(void);
/* Manual clock only: move to ms (never backwards) / forward by delta. */
void clock_set_ms(uint64_t ms);
void clock_advance_ms(uint64_t delta_ms);

#endif

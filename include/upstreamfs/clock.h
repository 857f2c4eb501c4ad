/*
 * clock: the monotonic clock in milliseconds, for deadlines and back-off (never for times a
 * user reads: those are wall-clock, time(2)).
 */
#ifndef UPSTREAMFS_CLOCK_H
#define UPSTREAMFS_CLOCK_H

#include <stdint.h>

int64_t clock_mono_ms(void);

#endif

/* tests/util/tu_common.h - small helpers shared by every weft test suite.
 *
 * Random numbers (splitmix64, deterministic per seed), clocks (monotonic wall time and
 * process CPU time), a watchdog that turns a hang into a failure, and TU_SCALE for stress
 * sizes that shrink (never vanish) under sanitizers (-DWEFT_SANITIZED=1).
 *
 * Thread safety: tu_rng is per-thread state; the clocks are thread-safe; tu_main_init and
 * tu_watchdog are called from main only.
 */
#ifndef WEFT_TESTS_TU_COMMON_H
#define WEFT_TESTS_TU_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef WEFT_SANITIZED
#define TU_SANITIZED 1
#else
#define TU_SANITIZED 0
#endif

/* A stress size: `normal` in ordinary builds, `sanitized` under a sanitizer. */
#define TU_SCALE(normal, sanitized) (TU_SANITIZED ? (sanitized) : (normal))

typedef struct tu_rng {
    uint64_t state;
} tu_rng;

void tu_rng_seed(tu_rng *r, uint64_t seed);
uint64_t tu_rng_next(tu_rng *r);
/* Uniform in [0, bound) (bound > 0). */
uint64_t tu_rng_below(tu_rng *r, uint64_t bound);
/* Uniform in [0, 1). */
double tu_rng_unit(tu_rng *r);

/* A 64-bit mixing function (splitmix64 finaliser) for value hashes. */
uint64_t tu_mix(uint64_t x);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t tu_now_ns(void);
/* User + system CPU time of the whole process (getrusage RUSAGE_SELF), nanoseconds. */
uint64_t tu_cpu_ns(void);
void tu_sleep_ms(unsigned ms);

/* Called first in every test main: unsets WEFT_TOPOLOGY and WEFT_TRACE so that the
 * environment of the person running the tests cannot change what the tests see, and arms
 * the watchdog for `seconds` (multiplied by 4 under sanitizers). */
void tu_main_init(unsigned seconds);
/* (Re-)arms the watchdog: after `seconds` the process prints `what` and exits with 1. A hang
 * is a failure, not a stuck CI job. 0 disarms. */
void tu_watchdog(unsigned seconds, const char *what);

/* Reads a whole file into a NUL-terminated malloc'd buffer (NULL on failure). */
char *tu_read_file(const char *path, size_t *len);
/* Non-overlapping occurrences of needle (non-empty) in text. */
size_t tu_count_substr(const char *text, const char *needle);
/* Occurrences of the JSON member "key": "value" (string value, any blanks around the
 * colon) in text. */
size_t tu_json_count_pair(const char *text, const char *key, const char *value);
/* Creates a unique temporary path "/tmp/weft-test-<tag>-XXXXXX" (the file is removed again:
 * only the name is reserved). Writes into buf (cap >= 64). */
void tu_temp_path(char *buf, size_t cap, const char *tag);

#endif

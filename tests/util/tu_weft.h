/* tests/util/tu_weft.h - cmocka helpers for the suites that drive the weft API: status
 * checks that print the status name and last error on a mismatch, error-message matching,
 * pools, small tensors from values, byte-level tensor comparison and the allocation
 * balance of the tu_alloc hook.
 *
 * Every check fails the current cmocka test (with the caller's file and line where the
 * macros are used) exactly like the assert_* it stands for; nothing here returns an error.
 *
 * Thread safety: test main thread only (cmocka's assertions are not thread-safe).
 */
#ifndef WEFT_TESTS_TU_WEFT_H
#define WEFT_TESTS_TU_WEFT_H

#include <stddef.h>
#include <stdint.h>

#include "tests/util/tu_alloc.h"
#include "weft.h"

/* Asserts s == want; on a mismatch prints "what: got <s> (<last error>), expected <want>"
 * first. */
void tu_expect_status_at(weft_status s, weft_status want, const char *what, const char *file,
                         int line);
#define tu_expect_status(s, want, what)                                                   \
    tu_expect_status_at((s), (want), (what), __FILE__, __LINE__)
#define OK(call) tu_expect_status_at((call), WEFT_OK, #call, __FILE__, __LINE__)
#define FAILS(call, want) tu_expect_status_at((call), (want), #call, __FILE__, __LINE__)

/* Asserts that weft_last_error() contains every one of the NULL-terminated strings after
 * `what`: tu_expect_message(what, "a", "b", NULL). */
void tu_expect_message_at(const char *file, int line, const char *what, ...);
#define tu_expect_message(...) tu_expect_message_at(__FILE__, __LINE__, __VA_ARGS__)

/* A pool of `threads` workers (0 = weft's default), other options at their defaults. */
weft_pool *tu_make_pool(unsigned threads);

/* A tensor of the shape filled by weft_tensor_init_random(init, seed, lo, hi). */
weft_tensor *tu_rand_tensor(weft_dtype dt, size_t ndim, const int64_t *dims, weft_init init,
                            uint64_t seed, double lo, double hi);
/* A float64 tensor holding a copy of data. */
weft_tensor *tu_f64_tensor(size_t ndim, const int64_t *dims, const double *data);
/* A tensor of dtype dt (F64 or F32) holding vals (converted). */
weft_tensor *tu_tensor_of(weft_dtype dt, size_t ndim, const int64_t *dims, const double *vals);
/* Writes vals (numel of them, converted to t's dtype, F64 or F32) into t. */
void tu_tensor_set(weft_tensor *t, const double *vals);

/* numel x element size. */
size_t tu_tensor_bytes(const weft_tensor *t);
/* A malloc'd copy of t's bytes; *n (if n) receives the count. */
unsigned char *tu_tensor_copy_bytes(const weft_tensor *t, size_t *n);
/* 1 if the two tensors have the same dtype, shape and bytes. */
int tu_same_tensor(const weft_tensor *a, const weft_tensor *b);

/* The buffer allocations the plan has made so far (weft_plan_stats_get). */
size_t tu_plan_allocations(weft_plan *plan);
/* Runs the plan n times with the feeds; returns 1 (after printing what happened) if the
 * tu_alloc hook or the plan saw an allocation, else 0. Callers assert after cleaning up,
 * so that a failure leaves no live weft object behind the installed hook. */
int tu_plan_runs_allocate_nothing(weft_plan *plan, size_t nfeeds, const weft_feed *feeds,
                                  int n, const char *what);

/* Asserts that the tu_alloc hook saw as many frees as allocations, and as many bytes
 * freed as allocated, since the snapshot s0, and no bad free or alignment at all. On an
 * imbalance prints "[what, ]N=<n>: ..." first (what may be NULL). */
void tu_alloc_expect_balanced(const tu_alloc_stats *s0, const char *what, uint64_t n);

/* Reads the hook's counters, uninstalls it, and asserts that everything allocated while
 * it was installed was freed (count and bytes), with no bad free or alignment. On an
 * imbalance prints "what: ..." first. */
void tu_alloc_uninstall_expect_clean(const char *what);

/* Runs fail_on(threads) with the hook installed, for 1 and for 3 threads, and checks
 * after each that everything allocated was freed (tu_alloc_uninstall_expect_clean). */
void tu_alloc_failures_clean_on_1_and_3_threads(void (*fail_on)(unsigned threads));

#endif

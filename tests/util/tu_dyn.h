/* tests/util/tu_dyn.h - helpers shared by the dynamic-graph suites
 * (tests/engine/test_dynamic.c, tests/engine/test_dynamic_stress.c): contexts whose plan
 * options do not depend on the environment, zeroed gradient tensors, scalar reads.
 *
 * Every check fails the current cmocka test like the assert_* it stands for.
 *
 * Thread safety: test main thread only (cmocka's assertions are not thread-safe).
 */
#ifndef WEFT_TESTS_TU_DYN_H
#define WEFT_TESTS_TU_DYN_H

#include "weft.h"

/* Plan options independent of the environment; scheduled = every evaluation goes through
 * the task graph on the pool (no inline shortcut for small graphs); check = check mode
 * (check_numerics). */
weft_plan_options tu_dyn_options(int scheduled, int check);

/* A context on pool with tu_dyn_options(scheduled, 0). The caller destroys it. */
weft_dyn *tu_dyn_make(weft_pool *pool, int scheduled);

/* A new tensor of p's dtype and shape, all zeros (a gradient buffer for parameter p). The
 * caller destroys it. */
weft_tensor *tu_dyn_zeros_like(const weft_tensor *p);

/* weft_dyn_scalar(d, v), asserted to succeed. */
double tu_dyn_read_scalar(weft_dyn *d, weft_value v);

#endif

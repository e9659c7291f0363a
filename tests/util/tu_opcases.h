/* tests/util/tu_opcases.h - the op test harness's case table and the glue around it.
 *
 * tu_op_cases lists, for every public op of weft/ops.h, small random inputs in several
 * shapes (broadcasting, scalars, every matmul transpose flag, every reduction axis, open
 * batch dimensions fed at run time, a few sizes large enough to split across the pool).
 * tu_op_impls maps each op name to how a case is built with the public API and to a naive
 * reference in double precision (tests/util/tu_tensor.c). tests/ops/test_ops.c runs every
 * case forward and backward; tests/ops/test_ops_errors.c shares the failure log, the plan
 * options and the pool below.
 *
 * Failures: tu_op_fail prints one line (the case or call and what disagreed) and counts
 * it; a test resets the count first and asserts it is 0 at the end, so one run lists every
 * disagreement rather than stopping at the first.
 *
 * Ownership: the tables are static data; tu_op_gen_input writes a tu_ref the caller frees.
 * Thread safety: test main thread only (the failure count is one plain counter).
 */
#ifndef WEFT_TESTS_TU_OPCASES_H
#define WEFT_TESTS_TU_OPCASES_H

#include <stddef.h>
#include <stdint.h>

#include "tests/util/tu_tensor.h"
#include "weft.h"

enum { TU_OP_MAXIN = 4 };

/* One input: its shape ("3x4", "" a scalar, "?3x4" a placeholder whose leading dimension
 * is open and fed with 3), and its values: uniform in [lo, hi) ([-1, 1) if both are 0) with
 * |x| >= gap, or explicit float values, or i32 ids (a constant). Float inputs are
 * variables unless open. idmax > 0 makes random ids instead. */
typedef struct tu_op_input {
    const char *shape;
    double lo, hi, gap;
    const double *vals;
    const int32_t *ids;
    int idmax; /* > 0: random i32 ids in [0, idmax) (a constant) */
} tu_op_input;

typedef struct tu_op_params {
    int axis, keepdims;   /* sum, mean; axis also concat, slice */
    unsigned flags;       /* matmul */
    double s;             /* pow exponent, scale factor */
    const int *perm;      /* transpose (NULL reverses) */
    int nd;               /* reshape: the requested shape */
    int64_t dims[WEFT_MAX_DIMS];
    int64_t begin, end;   /* slice */
    int repeat;           /* concat: operands in[i % nin] for i < repeat (0: nin) */
} tu_op_params;

typedef struct tu_op_case {
    const char *op;
    size_t nin; /* a binary op with nin = 1 uses in[0] for both operands */
    tu_op_input in[TU_OP_MAXIN];
    tu_op_params p;
    int fd_samples; /* finite differences on large inputs: elements sampled (0: the
                     * harness's default) */
} tu_op_case;

extern const tu_op_case tu_op_cases[];
extern const size_t tu_op_ncases;

/* ---- how each op is built and what it should compute ---------------------------------- */

typedef weft_status (*tu_op_build_fn)(weft_tgraph *g, const weft_value *in, size_t nin,
                                      const tu_op_params *p, weft_value *out);
typedef int (*tu_op_ref_fn)(const tu_ref *in, size_t nin, const tu_op_params *p, tu_ref *out);

/* mag (optional): the magnitude an f32 result's rounding error scales with, where that
 * is not the result itself (a matmul: |A| @ |B|, see tests/ops/test_ops.c). */
typedef struct tu_op_impl {
    const char *name;
    tu_op_build_fn build;
    tu_op_ref_fn ref;
    tu_op_ref_fn mag;
} tu_op_impl;

extern const tu_op_impl tu_op_impls[];
extern const size_t tu_op_nimpls;

/* The entry of tu_op_impls named `name`, or NULL. */
const tu_op_impl *tu_op_impl_of(const char *name);

/* "add f64 [3,1,4] [5,1]" plus the parameters the op reads, into buf; returns buf. */
const char *tu_op_case_name(const tu_op_case *c, weft_dtype dt, char *buf, size_t cap);

/* The values of input s: deterministic per seed, representable in f32 so that the f32
 * and f64 runs (and the f32-vs-f64 gradient comparison) see the same numbers. *open says
 * whether the shape's leading dimension is open. 0, or -1 for a malformed shape. */
int tu_op_gen_input(const tu_op_input *s, uint64_t seed, tu_ref *x, int *open);

/* ---- shared by the op suites ---------------------------------------------------------- */

/* Prints "FAIL what: <message>" and counts one failure. */
void tu_op_fail(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tu_op_fail_reset(void);
/* The failures counted since the last reset. */
unsigned tu_op_failures(void);

/* 1 if text is not NULL and contains part. */
int tu_op_contains(const char *text, const char *part);

/* Plan options without check mode; scheduled: every node a task on the pool, even tiny
 * ones (inline_below_ns = 0). */
weft_plan_options tu_op_plan_opts(int scheduled);

/* An op suite's main: tu_main_init, check mode left to the tests (WEFT_CHECK_NUMERICS
 * unset), then the cmocka group with *pool, for the group's duration, a pool of 3 unbound
 * workers: more threads than this machine's 2 cores (real interleavings). Returns what
 * cmocka_run_group_tests returns. */
struct CMUnitTest;
int tu_op_run_group(const char *name, const struct CMUnitTest *tests, size_t n,
                    weft_pool **pool);
#define tu_op_run_tests(tests, pool)                                                      \
    tu_op_run_group(#tests, (tests), sizeof(tests) / sizeof((tests)[0]), (pool))

#endif

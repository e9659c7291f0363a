/* tests/ops/test_ops.c - one harness over the whole op table, f32 and f64.
 *
 * CASES below lists, for every public op of weft/ops.h, small random inputs in several
 * shapes (broadcasting, scalars, every matmul transpose flag, every reduction axis, open
 * batch dimensions fed at run time, a few sizes large enough to split across the pool).
 * OPS maps each op name to how the case is built with the public API and to a naive
 * reference in double precision (tests/util/tu_tensor.c). For each case and dtype:
 *   - forward: the fetched output against the reference (relative 1e-5 for f32, 1e-12
 *     for f64, relative to max(|want|, 1); f32 matmul relative to |A| @ |B|, below);
 *   - backward (f64): loss = sum(op(inputs) * R) for a fixed random constant R; the
 *     gradient of every float input from weft_tgraph_gradients against central finite
 *     differences, |g - fd| <= 1e-6 * max(1, |g|, |fd|), perturbing the variables' storage
 *     (weft_tgraph_variable_tensor) or the fed tensors between runs;
 *   - backward (f32): against the f64 gradients of the same (f32-representable) inputs;
 *   - ops flagged not differentiable: weft_tgraph_gradients through them fails, naming the
 *     op.
 * The table test walks ids 0..WF_OP_COUNT-1: every public entry needs a case here, every
 * entry without a backward builder must say why (flag), and every internal op (the fused
 * gradient kernels, broadcast_like, sum_like, ...) must appear in the gradient graph of
 * some case. Then: shape errors at build time (nothing added, a message with the op and
 * the shapes), data errors at run time (WEFT_ERR_RANGE, the plan stays usable), and check
 * mode (WEFT_ERR_NUMERICS naming the op and the pass).
 *
 * Failures of the per-case checks are collected (printed with the op, dtype and shapes)
 * and asserted at the end of each test, so one run lists every disagreement.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/internal.h"
#include "tests/util/tu_common.h"
#include "tests/util/tu_tensor.h"
#include "weft.h"

enum { MAXIN = 4 };

/* Tolerances (see the file comment). An f32 matmul is compared relative to
 * max(|c|, 1, (|A| @ |B|)): BLAS accumulates its k products in float, so its error grows
 * with the sum of the terms' magnitudes, not with the result (~7e-6 of |c| at k = 300). */
#define FWD_TOL_F32 1e-5
#define FWD_TOL_F64 1e-12
#define FD_TOL 1e-6
#define GRAD_TOL_F32 1e-4
/* Finite differences: every element of small inputs, this many sampled ones of large. */
#define FD_ALL_UP_TO 64
#define FD_SAMPLES TU_SCALE(24, 8)

static weft_pool *pool;
static unsigned failures;
/* Work done and the worst relative errors seen (margins), for the summaries. */
static size_t fd_checked, f32_grads_checked, fwd_checked;
static double worst_fwd[2], worst_fd_err, worst_grad_f32;

static void fail_at(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail_at(const char *what, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    print_error("FAIL %s: ", what);
    vprint_error(fmt, ap);
    print_error("\n");
    va_end(ap);
    failures++;
}

static int contains(const char *text, const char *part) { return text && strstr(text, part); }

/* ---- the cases ------------------------------------------------------------------------ */

/* One input: its shape ("3x4", "" a scalar, "?3x4" a placeholder whose leading dimension
 * is open and fed with 3), and its values: uniform in [lo, hi) ([-1, 1) if both are 0) with
 * |x| >= gap, or explicit float values, or i32 ids (a constant). Float inputs are
 * variables unless open. idmax > 0 makes random ids instead. */
typedef struct in_spec {
    const char *shape;
    double lo, hi, gap;
    const double *vals;
    const int32_t *ids;
    int idmax; /* > 0: random i32 ids in [0, idmax) (a constant) */
} in_spec;

typedef struct case_params {
    int axis, keepdims;   /* sum, mean; axis also concat, slice */
    unsigned flags;       /* matmul */
    double s;             /* pow exponent, scale factor */
    const int *perm;      /* transpose (NULL reverses) */
    int nd;               /* reshape: the requested shape */
    int64_t dims[WEFT_MAX_DIMS];
    int64_t begin, end;   /* slice */
    int repeat;           /* concat: operands in[i % nin] for i < repeat (0: nin) */
} case_params;

typedef struct op_case {
    const char *op;
    size_t nin; /* a binary op with nin = 1 uses in[0] for both operands */
    in_spec in[MAXIN];
    case_params p;
    int fd_samples; /* finite differences on large inputs: elements sampled (0: FD_SAMPLES) */
} op_case;

#define U(s) {.shape = (s)}
#define RNG(s, a, b) {.shape = (s), .lo = (a), .hi = (b)}
#define POS(s) RNG(s, 0.5, 2.0)
#define GAP(s, g) {.shape = (s), .gap = (g)}
#define IDS(s, ...) {.shape = (s), .ids = (const int32_t[]){__VA_ARGS__}}
#define RIDS(s, n) {.shape = (s), .idmax = (n)}
#define VALS(s, ...) {.shape = (s), .vals = (const double[]){__VA_ARGS__}}
#define C1(name_, a, ...) {.op = (name_), .nin = 1, .in = {a}, __VA_ARGS__}
#define C2(name_, a, b, ...) {.op = (name_), .nin = 2, .in = {a, b}, __VA_ARGS__}
#define C3(name_, a, b, c, ...) {.op = (name_), .nin = 3, .in = {a, b, c}, __VA_ARGS__}

/* Sizes past WF_ELEM_GRAIN elements and SH_COPY_GRAIN bytes (kernels split across the
 * pool), and matmuls of two output tiles (2mnk >= 2 * MM_TILE_FLOPS = 32e6: split on the
 * rows with a short last tile, or on the columns); smaller under sanitizers. */
#if TU_SANITIZED
#define BIG_ROWS "40"
#define BIG_COLS "96"
#define BIG_COLS_N 96
#define MM_L "60"
#define MM_S "40"
#else
#define BIG_ROWS "256"
#define BIG_COLS "160"
#define BIG_COLS_N 160
#define MM_L "300"
#define MM_S "200"
#endif
#define BIG BIG_ROWS "x" BIG_COLS

/* Broadcasting shapes for a binary op; B makes the second operand (div: positive). */
#define BINARY_CASES(op, B)                                                               \
    C2(op, U("3x4"), B("3x4")), C2(op, U("3x1x4"), B("5x1")), C2(op, U("6x4"), B("4")),   \
    C2(op, U("3x4"), B("")), C2(op, U(""), B("2x3")), C2(op, U(""), B("")),               \
    C2(op, U("4x1"), B("1x5")), C2(op, U("2x1x3"), B("2x4x1")), C2(op, U("?3x4"), B("4")), \
    C2(op, U(BIG), B(BIG_COLS))

#define REDUCE_CASES(op)                                                                  \
    C1(op, U("3x4x5"), .p = {.axis = WEFT_AXIS_ALL}),                                     \
    C1(op, U("3x4x5"), .p = {.axis = WEFT_AXIS_ALL, .keepdims = 1}),                      \
    C1(op, U("3x4x5"), .p = {.axis = 0}), C1(op, U("3x4x5"), .p = {.axis = 0, .keepdims = 1}), \
    C1(op, U("3x4x5"), .p = {.axis = 1}), C1(op, U("3x4x5"), .p = {.axis = 1, .keepdims = 1}), \
    C1(op, U("3x4x5"), .p = {.axis = 2}), C1(op, U("3x4x5"), .p = {.axis = 2, .keepdims = 1}), \
    C1(op, U("3x4x5"), .p = {.axis = -1}), C1(op, U("3x4x5"), .p = {.axis = -2, .keepdims = 1}), \
    C1(op, U("7"), .p = {.axis = 0}), C1(op, U(""), .p = {.axis = WEFT_AXIS_ALL}),        \
    C1(op, U("?3x4"), .p = {.axis = WEFT_AXIS_ALL}), C1(op, U("?3x4"), .p = {.axis = 0}), \
    C1(op, U("?2x3x4"), .p = {.axis = 1}), C1(op, U("?2x3x4"), .p = {.axis = 2, .keepdims = 1}), \
    C1(op, U(BIG), .p = {.axis = 0}), C1(op, U(BIG), .p = {.axis = 1}),                   \
    C1(op, U(BIG), .p = {.axis = WEFT_AXIS_ALL})

static const op_case CASES[] = {
    /* matmul: each flag, the C loop (m*n*k < 2048) and the BLAS path */
    C2("matmul", U("4x3"), U("3x5"), .p = {.flags = 0}),
    C2("matmul", U("3x4"), U("3x5"), .p = {.flags = WEFT_TRANS_A}),
    C2("matmul", U("4x3"), U("5x3"), .p = {.flags = WEFT_TRANS_B}),
    C2("matmul", U("3x4"), U("5x3"), .p = {.flags = WEFT_TRANS_A | WEFT_TRANS_B}),
    C2("matmul", U("1x1"), U("1x1"), .p = {.flags = 0}),
    C2("matmul", U("20x30"), U("30x25"), .p = {.flags = 0}),
    C2("matmul", U("30x20"), U("30x25"), .p = {.flags = WEFT_TRANS_A}),
    C2("matmul", U("20x30"), U("25x30"), .p = {.flags = WEFT_TRANS_B}),
    C2("matmul", U("30x20"), U("25x30"), .p = {.flags = WEFT_TRANS_A | WEFT_TRANS_B}),
    C2("matmul", U("?3x4"), U("4x2"), .p = {.flags = 0}),
    C2("matmul", U(MM_L "x" MM_L), U(MM_L "x" MM_S), .p = {.flags = 0}, .fd_samples = 2),
    C2("matmul", U(MM_L "x" MM_L), U(MM_L "x" MM_S), .p = {.flags = WEFT_TRANS_A},
       .fd_samples = 2),
    C2("matmul", U(MM_S "x" MM_L), U(MM_L "x" MM_L), .p = {.flags = WEFT_TRANS_B},
       .fd_samples = 2),
    C2("matmul", U(MM_L "x" MM_S), U(MM_L "x" MM_L),
       .p = {.flags = WEFT_TRANS_A | WEFT_TRANS_B}, .fd_samples = 2),
    C2("matmul", U("2x3"), U("3x2"), .p = {.flags = WEFT_TRANS_A | WEFT_TRANS_B}),
    /* one output row above the C loop's size: the GEMV path, each flag */
    C2("matmul", U("1x64"), U("64x32"), .p = {.flags = 0}),
    C2("matmul", U("64x1"), U("64x32"), .p = {.flags = WEFT_TRANS_A}),
    C2("matmul", U("1x64"), U("32x64"), .p = {.flags = WEFT_TRANS_B}),
    C2("matmul", U("64x1"), U("32x64"), .p = {.flags = WEFT_TRANS_A | WEFT_TRANS_B}),
    /* outer products (k == 1): the GER path, each flag */
    C2("matmul", U("48x1"), U("1x40"), .p = {.flags = 0}),
    C2("matmul", U("1x48"), U("1x40"), .p = {.flags = WEFT_TRANS_A}),
    C2("matmul", U("48x1"), U("40x1"), .p = {.flags = WEFT_TRANS_B}),
    C2("matmul", U("1x48"), U("40x1"), .p = {.flags = WEFT_TRANS_A | WEFT_TRANS_B}),
    /* x @ x: both gradients flow into x, the second as matmul_acc (a fused accumulation) */
    C1("matmul", U("4x4")), C1("matmul", U("5x5"), .p = {.flags = WEFT_TRANS_A}),
    C1("matmul", U("24x24"), .p = {.flags = WEFT_TRANS_B}),

    BINARY_CASES("add", U),
    BINARY_CASES("sub", U),
    BINARY_CASES("mul", U),
    BINARY_CASES("div", POS),
    C1("add", U("3x4")), /* x + x: a value used twice, gradients summed */
    C1("mul", U("2x3")),
    C1("sub", U("5")),
    C1("div", POS("2x2")),

    C1("neg", U("3x4")), C1("neg", U("")),
    C1("exp", RNG("3x4", -2, 2)), C1("exp", U("")), C1("exp", RNG(BIG, -2, 2)),
    C1("log", RNG("3x4", 0.3, 3)), C1("log", RNG("?2x3", 0.3, 3)),
    C1("sqrt", RNG("3x4", 0.3, 3)), C1("sqrt", RNG("", 0.5, 2)),
    C1("sigmoid", RNG("2x3x4", -3, 3)), C1("sigmoid", RNG(BIG, -3, 3)),
    C1("tanh", RNG("5", -2, 2)), C1("tanh", RNG("3x4", -2, 2)), C1("tanh", RNG(BIG, -2, 2)),
    C1("relu", GAP("4x5", 0.05)), C1("relu", GAP("?3x2", 0.05)), C1("relu", GAP(BIG, 0.01)),
    C1("pow", RNG("3x4", -1.5, 1.5), .p = {.s = 3}),
    C1("pow", RNG("3x4", -1.5, 1.5), .p = {.s = 2}),
    C1("pow", RNG("3x4", 0.3, 3), .p = {.s = 0.5}),
    C1("pow", RNG("3x4", 0.5, 2), .p = {.s = -1.5}),
    C1("pow", RNG("2x3", 0.5, 2), .p = {.s = 1}),
    C1("pow", RNG("2x3", 0.5, 2), .p = {.s = 0}),
    C1("scale", U("3x4"), .p = {.s = -2.5}), C1("scale", U(""), .p = {.s = 0.5}),
    C1("scale", U("2x2"), .p = {.s = 0}),

    REDUCE_CASES("sum"),
    REDUCE_CASES("mean"),
    C1("argmax", RNG("4x6", -3, 3)), C1("argmax", RNG("2x3x5", -3, 3)), C1("argmax", U("7")),
    C1("argmax", VALS("3x4", 1, 3, 3, 0, 2, 2, 2, 2, -1, 5, 0, 5)), /* ties: the first */
    C1("argmax", U("5x1")),

    C1("softmax", RNG("4x6", -3, 3)), C1("softmax", RNG("2x3x5", -3, 3)),
    C1("softmax", RNG("7", -3, 3)), C1("softmax", RNG("?3x5", -3, 3)),
    C1("softmax", RNG("3x1", -3, 3)), C1("softmax", RNG(BIG, -3, 3)),
    C1("log_softmax", RNG("4x6", -3, 3)), C1("log_softmax", RNG("2x3x5", -3, 3)),
    C1("log_softmax", RNG("7", -3, 3)), C1("log_softmax", RNG("?3x5", -3, 3)),
    C1("log_softmax", RNG(BIG, -3, 3)),
    C2("softmax_xent", RNG("5x7", -3, 3), IDS("5", 0, 3, 3, 6, 1)),
    C2("softmax_xent", RNG("1x3", -3, 3), IDS("1", 2)),
    C2("softmax_xent", RNG("4x2", -3, 3), IDS("4", 1, 1, 1, 1)),
    C2("softmax_xent", RNG("?4x3", -3, 3), IDS("4", 2, 0, 1, 2)),
    C2("softmax_xent", RNG(BIG, -3, 3), RIDS(BIG_ROWS, BIG_COLS_N)),
    C2("mse", U("3x4"), U("3x4")), C2("mse", U("2x3x2"), U("2x3x2")), C2("mse", U(""), U("")),
    C2("mse", U("7"), U("7")), C2("mse", U("?3x2"), U("?3x2")), C2("mse", U(BIG), U(BIG)),

    C1("reshape", U("3x4"), .p = {.nd = 3, .dims = {2, -1, 3}}),
    C1("reshape", U("2x3x4"), .p = {.nd = 1, .dims = {-1}}),
    C1("reshape", U("2x3x4"), .p = {.nd = 2, .dims = {4, 6}}),
    C1("reshape", U("6"), .p = {.nd = 3, .dims = {1, 6, 1}}),
    C1("reshape", U("1"), .p = {.nd = 0}),
    C1("reshape", U(""), .p = {.nd = 2, .dims = {1, 1}}),
    C1("reshape", U("?3x4"), .p = {.nd = 2, .dims = {-1, 2}}),
    C1("transpose", U("2x3x4"), .p = {.perm = (const int[]){2, 0, 1}}),
    C1("transpose", U("2x3x4"), .p = {.perm = (const int[]){1, 2, 0}}),
    C1("transpose", U("2x3x4"), .p = {.perm = (const int[]){0, 2, 1}}),
    C1("transpose", U("2x3x4"), .p = {.perm = NULL}),
    C1("transpose", U("3x5"), .p = {.perm = NULL}),
    C1("transpose", U("2x3x4x2"), .p = {.perm = (const int[]){3, 1, 0, 2}}),
    C1("transpose", U("4"), .p = {.perm = (const int[]){0}}),
    C1("transpose", U("70x50"), .p = {.perm = NULL}),
    C1("transpose", U("3x40x70"), .p = {.perm = (const int[]){0, 2, 1}}),
    C1("transpose", U("5x6x7"), .p = {.perm = (const int[]){2, 1, 0}}),
    C1("transpose", U(BIG), .p = {.perm = NULL}),
    C3("concat", U("2x3"), U("1x3"), U("4x3"), .p = {.axis = 0}),
    C3("concat", U("2x1"), U("2x3"), U("2x2"), .p = {.axis = 1}),
    C3("concat", U("2x3x1"), U("2x3x2"), U("2x3x3"), .p = {.axis = -1}),
    C3("concat", U("2x1x3"), U("2x2x3"), U("2x4x3"), .p = {.axis = 1}),
    C3("concat", U("3"), U("1"), U("2"), .p = {.axis = 0}),
    C1("concat", U("2x3"), .p = {.axis = 1, .repeat = 3}), /* one value three times */
    C1("concat", U("2x3"), .p = {.axis = 0}),
    C3("concat", U(BIG), U(BIG), U(BIG), .p = {.axis = 1}),
    C3("concat", U(BIG), U("3x" BIG_COLS), U(BIG), .p = {.axis = 0}),
    C1("slice", U("5x4"), .p = {.axis = 0, .begin = 1, .end = 4}),
    C1("slice", U("3x6"), .p = {.axis = 1, .begin = 2, .end = 5}),
    C1("slice", U("2x5x3"), .p = {.axis = 1, .begin = 0, .end = 2}),
    C1("slice", U("2x3x4"), .p = {.axis = -1, .begin = 1, .end = 3}),
    C1("slice", U("4x3"), .p = {.axis = 0, .begin = 0, .end = 4}),
    C1("slice", U("6"), .p = {.axis = 0, .begin = 5, .end = 6}),
    C1("slice", U("?4x3"), .p = {.axis = 1, .begin = 1, .end = 2}),
    C1("slice", U(BIG), .p = {.axis = 1, .begin = 10, .end = 90}),
    C1("slice", U(BIG), .p = {.axis = 0, .begin = 3, .end = 33}),
    C2("gather", U("5x3"), IDS("7", 0, 2, 2, 4, 0, 1, 2)),
    C2("gather", U("5x3"), IDS("2x3", 4, 4, 1, 0, 4, 3)),
    C2("gather", U("4x2"), IDS("", 3)),
    C2("gather", U("3x4"), IDS("5", 1, 1, 1, 1, 1)),
    C2("gather", U("300x130"), RIDS("600", 300)),
    C2("gather", U("50x" BIG_COLS), RIDS("3x" BIG_ROWS, 50)),

    C2("assign", U("3x4"), U("3x4")), C2("assign", U(""), U("")),
    C2("assign_sub", U("3x4"), U("3x4")), C2("assign_sub", U("5"), U("5")),
};
#define NCASES (sizeof CASES / sizeof CASES[0])

/* ---- how each op is built and what it should compute ---------------------------------- */

typedef weft_status (*build_fn)(weft_tgraph *g, const weft_value *in, size_t nin,
                                const case_params *p, weft_value *out);
typedef int (*ref_fn)(const tu_ref *in, size_t nin, const case_params *p, tu_ref *out);

/* mag (optional): the magnitude an f32 result's rounding error scales with, where that
 * is not the result itself (see FWD_TOL_F32). */
typedef struct op_impl {
    const char *name;
    build_fn build;
    ref_fn ref;
    ref_fn mag;
} op_impl;

static double f_add(double a, double b) { return a + b; }
static double f_sub(double a, double b) { return a - b; }
static double f_mul(double a, double b) { return a * b; }
static double f_div(double a, double b) { return a / b; }
static double f_neg(double x, double p) { return (void)p, -x; }
static double f_exp(double x, double p) { return (void)p, exp(x); }
static double f_log(double x, double p) { return (void)p, log(x); }
static double f_sqrt(double x, double p) { return (void)p, sqrt(x); }
static double f_sigmoid(double x, double p) { return (void)p, 1.0 / (1.0 + exp(-x)); }
static double f_tanh(double x, double p) { return (void)p, tanh(x); }
static double f_relu(double x, double p) { return (void)p, x > 0 ? x : 0.0; }
static double f_pow(double x, double p) { return pow(x, p); }
static double f_scale(double x, double p) { return x * p; }

/* OP_IMPL(name, build expression, reference expression): build_<name> and ref_<name>,
 * with in / nin / p / out (and g in the build) in scope. A binary op with one input uses
 * it for both operands. */
#define OP_IMPL(name, BUILD, REF)                                                         \
    static weft_status build_##name(weft_tgraph *g, const weft_value *in, size_t nin,     \
                                    const case_params *p, weft_value *out)                \
    {                                                                                     \
        (void)nin, (void)p;                                                               \
        return BUILD;                                                                     \
    }                                                                                     \
    static int ref_##name(const tu_ref *in, size_t nin, const case_params *p, tu_ref *out) \
    {                                                                                     \
        (void)nin, (void)p;                                                               \
        return REF;                                                                       \
    }
#define BINARY_IMPL(name)                                                                 \
    OP_IMPL(name, weft_op_##name(g, in[0], in[nin > 1], out),                             \
            tu_ref_binary(&in[0], &in[nin > 1], f_##name, out))
#define UNARY_IMPL(name, BUILD) OP_IMPL(name, BUILD, tu_ref_unary(&in[0], f_##name, p->s, out))

/* concat: operands in[i % nin] for i < repeat (or nin) */
static size_t concat_operands(size_t nin, const case_params *p)
{
    return p->repeat > 0 ? (size_t)p->repeat : nin;
}
static weft_status concat_build(weft_tgraph *g, const weft_value *in, size_t nin,
                                const case_params *p, weft_value *out)
{
    weft_value v[8];
    size_t n = concat_operands(nin, p);
    for (size_t i = 0; i < n; i++)
        v[i] = in[i % nin];
    return weft_op_concat(g, n, v, p->axis, out);
}
static int concat_ref(const tu_ref *in, size_t nin, const case_params *p, tu_ref *out)
{
    const tu_ref *v[8];
    size_t n = concat_operands(nin, p);
    for (size_t i = 0; i < n; i++)
        v[i] = &in[i % nin];
    return tu_ref_concat(n, v, p->axis, out);
}

#define TA(p) (((p)->flags & WEFT_TRANS_A) != 0)
#define TB(p) (((p)->flags & WEFT_TRANS_B) != 0)
/* one operand: x @ x (both gradients flow into x) */
OP_IMPL(matmul, weft_op_matmul(g, in[0], in[nin > 1], p->flags, out),
        tu_ref_matmul(&in[0], &in[nin > 1], TA(p), TB(p), out))
BINARY_IMPL(add)
BINARY_IMPL(sub)
BINARY_IMPL(mul)
BINARY_IMPL(div)
UNARY_IMPL(neg, weft_op_neg(g, in[0], out))
UNARY_IMPL(exp, weft_op_exp(g, in[0], out))
UNARY_IMPL(log, weft_op_log(g, in[0], out))
UNARY_IMPL(sqrt, weft_op_sqrt(g, in[0], out))
UNARY_IMPL(sigmoid, weft_op_sigmoid(g, in[0], out))
UNARY_IMPL(tanh, weft_op_tanh(g, in[0], out))
UNARY_IMPL(relu, weft_op_relu(g, in[0], out))
UNARY_IMPL(pow, weft_op_pow(g, in[0], p->s, out))
UNARY_IMPL(scale, weft_op_scale(g, in[0], p->s, out))
OP_IMPL(sum, weft_op_sum(g, in[0], p->axis, p->keepdims, out),
        tu_ref_reduce(&in[0], p->axis, p->keepdims, 0, out))
OP_IMPL(mean, weft_op_mean(g, in[0], p->axis, p->keepdims, out),
        tu_ref_reduce(&in[0], p->axis, p->keepdims, 1, out))
OP_IMPL(argmax, weft_op_argmax(g, in[0], out), tu_ref_argmax(&in[0], out))
OP_IMPL(softmax, weft_op_softmax(g, in[0], out), tu_ref_softmax(&in[0], 0, out))
OP_IMPL(log_softmax, weft_op_log_softmax(g, in[0], out), tu_ref_softmax(&in[0], 1, out))
OP_IMPL(softmax_xent, weft_op_softmax_xent(g, in[0], in[1], out),
        tu_ref_softmax_xent(&in[0], &in[1], out))
OP_IMPL(mse, weft_op_mse(g, in[0], in[1], out), tu_ref_mse(&in[0], &in[1], out))
OP_IMPL(reshape, weft_op_reshape(g, in[0], (size_t)p->nd, p->dims, out),
        tu_ref_reshape(&in[0], p->nd, p->dims, out))
OP_IMPL(transpose, weft_op_transpose(g, in[0], p->perm, out),
        tu_ref_transpose(&in[0], p->perm, out))
OP_IMPL(concat, concat_build(g, in, nin, p, out), concat_ref(in, nin, p, out))
OP_IMPL(slice, weft_op_slice(g, in[0], p->axis, p->begin, p->end, out),
        tu_ref_slice(&in[0], p->axis, p->begin, p->end, out))
OP_IMPL(gather, weft_op_gather(g, in[0], in[1], out), tu_ref_gather(&in[0], &in[1], out))
OP_IMPL(assign, weft_op_assign(g, in[0], in[1], out), tu_ref_copy(out, &in[1]))
OP_IMPL(assign_sub, weft_op_assign_sub(g, in[0], in[1], out),
        tu_ref_binary(&in[0], &in[1], f_sub, out))

/* |op(a)| @ |op(b)|: BLAS sums k products in the operands' precision. */
static int mag_matmul(const tu_ref *in, size_t nin, const case_params *p, tu_ref *out)
{
    tu_ref ab[2] = {{0}, {0}};
    int rc = tu_ref_copy(&ab[0], &in[0]) || tu_ref_copy(&ab[1], &in[nin > 1]) ? -1 : 0;
    if (!rc) {
        tu_ref_abs(&ab[0]);
        tu_ref_abs(&ab[1]);
        rc = ref_matmul(ab, 2, p, out);
    }
    tu_ref_free(&ab[0]);
    tu_ref_free(&ab[1]);
    return rc;
}

#define IMPL(name) {#name, build_##name, ref_##name, NULL}
static const op_impl OPS[] = {
    {"matmul", build_matmul, ref_matmul, mag_matmul}, IMPL(add), IMPL(sub), IMPL(mul), IMPL(div), IMPL(neg), IMPL(exp),
    IMPL(log), IMPL(sqrt), IMPL(sigmoid), IMPL(tanh), IMPL(relu), IMPL(pow), IMPL(scale),
    IMPL(sum), IMPL(mean), IMPL(argmax), IMPL(softmax), IMPL(log_softmax),
    IMPL(softmax_xent), IMPL(mse), IMPL(reshape), IMPL(transpose), IMPL(concat),
    IMPL(slice), IMPL(gather), IMPL(assign), IMPL(assign_sub),
};
#define NOPS (sizeof OPS / sizeof OPS[0])

static const op_impl *impl_of(const char *name)
{
    for (size_t i = 0; i < NOPS; i++)
        if (!strcmp(OPS[i].name, name))
            return &OPS[i];
    return NULL;
}

/* The op table entry named `name`, or NULL. */
static const wf_op_def *def_of(const char *name, int *id)
{
    for (int i = 0; i < WF_OP_COUNT; i++) {
        const wf_op_def *d = wf_op_get((wf_op_id)i);
        if (d && d->name && !strcmp(d->name, name)) {
            if (id)
                *id = i;
            return d;
        }
    }
    return NULL;
}

/* "add f64 [3,1,4] [5,1]" plus the parameters the op reads. */
static const char *case_name(const op_case *c, weft_dtype dt, char *buf, size_t cap)
{
    size_t len = (size_t)snprintf(buf, cap, "%s %s", c->op, weft_dtype_name(dt));
    for (size_t i = 0; i < c->nin && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, " [%s]", c->in[i].shape);
    const case_params *p = &c->p;
    const char *op = c->op;
    if (len >= cap)
        return buf;
    if (!strcmp(op, "matmul"))
        snprintf(buf + len, cap - len, " flags=%u", p->flags);
    else if (!strcmp(op, "pow") || !strcmp(op, "scale"))
        snprintf(buf + len, cap - len, " s=%g", p->s);
    else if (!strcmp(op, "sum") || !strcmp(op, "mean"))
        snprintf(buf + len, cap - len, " axis=%s%d keepdims=%d",
                 p->axis == WEFT_AXIS_ALL ? "ALL/" : "", p->axis, p->keepdims);
    else if (!strcmp(op, "concat"))
        snprintf(buf + len, cap - len, " axis=%d x%zu", p->axis, concat_operands(c->nin, p));
    else if (!strcmp(op, "slice"))
        snprintf(buf + len, cap - len, " axis=%d [%lld,%lld)", p->axis, (long long)p->begin,
                 (long long)p->end);
    else if (!strcmp(op, "reshape")) {
        char s[96];
        snprintf(buf + len, cap - len, " to %s", tu_shape_str(p->nd, p->dims, s, sizeof s));
    } else if (!strcmp(op, "transpose")) {
        if (!p->perm) {
            snprintf(buf + len, cap - len, " perm=reverse");
        } else {
            int nd = 0;
            int64_t d[WEFT_MAX_DIMS];
            tu_shape_parse(c->in[0].shape, &nd, d, &(int){0});
            int64_t pp[WEFT_MAX_DIMS];
            for (int i = 0; i < nd; i++)
                pp[i] = p->perm[i];
            char s[96];
            snprintf(buf + len, cap - len, " perm=%s", tu_shape_str(nd, pp, s, sizeof s));
        }
    }
    return buf;
}

/* ---- building a case ------------------------------------------------------------------ */

/* The inputs' values: deterministic per case and input, representable in f32 so that the
 * f32 and f64 runs (and the f32-vs-f64 gradient comparison) see the same numbers. */
static int gen_input(const in_spec *s, uint64_t seed, tu_ref *x, int *open)
{
    int nd;
    int64_t dims[WEFT_MAX_DIMS];
    if (tu_shape_parse(s->shape, &nd, dims, open) || tu_ref_alloc(x, nd, dims))
        return -1;
    tu_rng r;
    tu_rng_seed(&r, seed);
    double lo = s->lo, hi = s->hi;
    if (lo == 0 && hi == 0)
        lo = -1, hi = 1;
    for (size_t i = 0; i < x->numel; i++) {
        if (s->idmax > 0) {
            x->v[i] = (double)tu_rng_below(&r, (uint64_t)s->idmax);
        } else if (s->ids) {
            x->v[i] = s->ids[i];
        } else if (s->vals) {
            x->v[i] = s->vals[i];
        } else {
            double v;
            do
                v = lo + (hi - lo) * tu_rng_unit(&r);
            while (fabs(v) < s->gap);
            x->v[i] = v;
        }
    }
    tu_ref_round_f32(x);
    return 0;
}

/* One case built in one dtype. */
typedef struct built {
    const op_case *c;
    const op_impl *impl;
    weft_dtype dtype;
    char name[256];
    weft_tgraph *g;
    weft_value in[MAXIN];
    int is_float[MAXIN];
    weft_tensor *feed[MAXIN]; /* the tensors fed to open placeholders (owned) */
    weft_feed feeds[MAXIN];
    size_t nfeeds;
    tu_ref x[MAXIN];          /* the input values */
    weft_value out;
} built;

static void built_free(built *b)
{
    weft_tgraph_destroy(b->g);
    for (size_t i = 0; i < MAXIN; i++) {
        weft_tensor_destroy(b->feed[i]);
        tu_ref_free(&b->x[i]);
    }
    memset(b, 0, sizeof *b);
}

/* Builds case ci in dtype; 0, or -1 after recording a failure. */
static int build_case(size_t ci, weft_dtype dtype, built *b)
{
    const op_case *c = &CASES[ci];
    memset(b, 0, sizeof *b);
    b->c = c;
    b->dtype = dtype;
    case_name(c, dtype, b->name, sizeof b->name);
    b->impl = impl_of(c->op);
    if (!b->impl) {
        fail_at(b->name, "the test has no builder for op '%s'", c->op);
        return -1;
    }
    if (weft_tgraph_create(&b->g) != WEFT_OK) {
        fail_at(b->name, "weft_tgraph_create: %s", weft_last_error());
        return -1;
    }
    for (size_t i = 0; i < c->nin; i++) {
        const in_spec *s = &c->in[i];
        int open = 0;
        if (gen_input(s, tu_mix(ci * 64 + i + 1), &b->x[i], &open)) {
            fail_at(b->name, "input %zu: malformed shape spec \"%s\"", i, s->shape);
            return -1;
        }
        int is_ids = s->ids || s->idmax > 0;
        weft_dtype dt = is_ids ? WEFT_I32 : dtype;
        weft_tensor *t = tu_ref_to_tensor(&b->x[i], dt);
        weft_status st;
        if (!t) {
            fail_at(b->name, "input %zu: cannot make a tensor: %s", i, weft_last_error());
            return -1;
        }
        char nm[32];
        snprintf(nm, sizeof nm, "in%u", (unsigned)i);
        b->is_float[i] = !is_ids;
        if (open) {
            int64_t dims[WEFT_MAX_DIMS];
            memcpy(dims, b->x[i].dims, sizeof dims);
            dims[0] = WEFT_DIM_ANY;
            st = weft_tgraph_placeholder(b->g, dt, (size_t)b->x[i].ndim, dims, nm, &b->in[i]);
            b->feed[i] = t;
            b->feeds[b->nfeeds++] = (weft_feed){.placeholder = b->in[i], .tensor = t};
        } else {
            st = is_ids ? weft_tgraph_constant(b->g, t, nm, &b->in[i])
                        : weft_tgraph_variable(b->g, t, nm, &b->in[i]);
            weft_tensor_destroy(t);
        }
        if (st != WEFT_OK) {
            fail_at(b->name, "input %zu: %s: %s", i, weft_status_name(st), weft_last_error());
            return -1;
        }
    }
    weft_status st = b->impl->build(b->g, b->in, c->nin, &c->p, &b->out);
    if (st != WEFT_OK) {
        fail_at(b->name, "building the op failed: %s: %s", weft_status_name(st),
                weft_last_error());
        return -1;
    }
    const char *op = weft_tgraph_value_op(b->g, b->out);
    if (!op || strcmp(op, c->op)) {
        fail_at(b->name, "the output node's op is '%s'", op ? op : "(null)");
        return -1;
    }
    return 0;
}

static int is_differentiable(const op_case *c)
{
    const wf_op_def *d = def_of(c->op, NULL);
    return d && !(d->flags & WF_OPF_NOT_DIFFERENTIABLE);
}

static weft_plan_options plan_opts(int scheduled)
{
    weft_plan_options o = weft_plan_options_default();
    o.check_numerics = 0;
    if (scheduled)
        o.inline_below_ns = 0; /* every node a task on the pool, even tiny ones */
    return o;
}

/* Fetch i of the last run into r; 0 or -1 (recorded). */
static int fetch_ref(built *b, weft_plan *plan, size_t i, tu_ref *r, const char *what)
{
    const weft_tensor *t = NULL;
    weft_status st = weft_plan_fetch(plan, i, &t);
    if (st != WEFT_OK || !t || tu_ref_from_tensor(r, t)) {
        fail_at(b->name, "fetching %s: %s: %s", what, weft_status_name(st), weft_last_error());
        return -1;
    }
    return 0;
}

/* Checks got against want with relative tolerance tol (relative to max(|want|, floor,
 * scale) where scale, shaped like want, may be NULL); prints the worst element. *worst
 * (may be NULL) keeps the largest error seen. */
static int check_close_scaled(built *b, const char *what, const tu_ref *got,
                              const tu_ref *want, const tu_ref *scale, double tol, double floor,
                              double *worst)
{
    char gs[96], ws[96];
    if (!tu_ref_same_shape(got, want)) {
        fail_at(b->name, "%s: shape %s, expected %s", what,
                tu_shape_str(got->ndim, got->dims, gs, sizeof gs),
                tu_shape_str(want->ndim, want->dims, ws, sizeof ws));
        return -1;
    }
    tu_cmp cmp = tu_ref_compare_scaled(got, want, scale, floor);
    if (worst && cmp.max_err > *worst)
        *worst = cmp.max_err;
    if (!(cmp.max_err <= tol)) {
        fail_at(b->name, "%s: element %zu is %.17g, expected %.17g (relative error %.3g > %.1g)",
                what, cmp.index, cmp.got, cmp.want, cmp.max_err, tol);
        return -1;
    }
    return 0;
}

static int check_close(built *b, const char *what, const tu_ref *got, const tu_ref *want,
                       double tol, double floor, double *worst)
{
    return check_close_scaled(b, what, got, want, NULL, tol, floor, worst);
}

/* ---- table checks --------------------------------------------------------------------- */

static void test_ops_table_complete(void **state)
{
    (void)state;
    failures = 0;
    for (int id = 0; id < WF_OP_COUNT; id++) {
        const wf_op_def *d = wf_op_get((wf_op_id)id);
        char what[64];
        snprintf(what, sizeof what, "op table entry %d", id);
        if (!d || !d->name) {
            fail_at(what, "no entry or no name");
            continue;
        }
        snprintf(what, sizeof what, "op '%s' (id %d)", d->name, id);
        int leaf = (d->flags & WF_OPF_LEAF) != 0, internal = (d->flags & WF_OPF_INTERNAL) != 0;
        if (!d->backward && !(d->flags & (WF_OPF_NOT_DIFFERENTIABLE | WF_OPF_LEAF)))
            fail_at(what, "has no backward builder but is neither NOT_DIFFERENTIABLE nor LEAF");
        if (d->backward && (d->flags & WF_OPF_NOT_DIFFERENTIABLE))
            fail_at(what, "is flagged NOT_DIFFERENTIABLE but has a backward builder");
        if (!leaf && (!d->forward || !d->shape))
            fail_at(what, "has no forward kernel or no shape rule");
        size_t len = strlen(d->name);
        if (len > 5 && !strcmp(d->name + len - 5, "_grad") && !internal)
            fail_at(what, "is a gradient kernel but not flagged INTERNAL");
        for (int j = 0; j < id; j++) {
            const wf_op_def *e = wf_op_get((wf_op_id)j);
            if (e && e->name && !strcmp(e->name, d->name))
                fail_at(what, "has the same name as entry %d", j);
        }
        if (leaf || internal)
            continue;
        int has_case = 0;
        for (size_t i = 0; i < NCASES; i++)
            has_case |= !strcmp(CASES[i].op, d->name);
        if (!has_case || !impl_of(d->name))
            fail_at(what, "is a public op without a case in tests/ops/test_ops.c");
    }
    /* and the other way: every op the test knows is a public entry of the table */
    for (size_t i = 0; i < NOPS; i++) {
        const wf_op_def *d = def_of(OPS[i].name, NULL);
        if (!d)
            fail_at(OPS[i].name, "is not in the op table");
        else if (d->flags & (WF_OPF_LEAF | WF_OPF_INTERNAL))
            fail_at(OPS[i].name, "is public in weft/ops.h but flagged LEAF or INTERNAL");
    }
    assert_int_equal(failures, 0);
}

/* ---- forward -------------------------------------------------------------------------- */

static void check_forward(size_t ci, weft_dtype dtype)
{
    built b;
    tu_ref want = {0}, got = {0}, mag = {0};
    weft_plan *plan = NULL;
    if (build_case(ci, dtype, &b))
        goto out;
    const op_case *c = b.c;
    if (b.impl->ref(b.x, c->nin, &c->p, &want)) {
        fail_at(b.name, "the test's reference rejects this case (malformed case)");
        goto out;
    }
    /* build-time description: dtype, and the shape with open dimensions as -1 */
    weft_dtype odt;
    size_t ond;
    int64_t od[WEFT_MAX_DIMS];
    weft_dtype want_dt = !strcmp(c->op, "argmax") ? WEFT_I32 : dtype;
    if (weft_tgraph_value_info(b.g, b.out, &odt, &ond, od) != WEFT_OK) {
        fail_at(b.name, "value_info: %s", weft_last_error());
        goto out;
    }
    int shape_ok = odt == want_dt && ond == (size_t)want.ndim;
    for (size_t i = 0; shape_ok && i < ond; i++)
        shape_ok = od[i] == want.dims[i] || (b.nfeeds && od[i] == WEFT_DIM_ANY);
    if (!shape_ok) {
        char s1[96], s2[96];
        fail_at(b.name, "build-time output %s %s, expected %s %s", weft_dtype_name(odt),
                tu_shape_str((int)ond, od, s1, sizeof s1), weft_dtype_name(want_dt),
                tu_shape_str(want.ndim, want.dims, s2, sizeof s2));
    }
    weft_plan_options o = plan_opts(ci % 2);
    weft_status st = weft_plan_create(b.g, pool, 1, &b.out, 0, NULL, &o, &plan);
    if (st == WEFT_OK)
        st = weft_plan_run(plan, b.nfeeds, b.feeds);
    if (st != WEFT_OK) {
        fail_at(b.name, "forward run: %s: %s", weft_status_name(st), weft_last_error());
        goto out;
    }
    const weft_tensor *t = NULL;
    if (weft_plan_fetch(plan, 0, &t) == WEFT_OK && weft_tensor_dtype(t) != want_dt)
        fail_at(b.name, "fetched dtype %s, expected %s", weft_dtype_name(weft_tensor_dtype(t)),
                weft_dtype_name(want_dt));
    if (fetch_ref(&b, plan, 0, &got, "the output"))
        goto out;
    double tol = want_dt == WEFT_I32 ? 0.0 : dtype == WEFT_F32 ? FWD_TOL_F32 : FWD_TOL_F64;
    if (dtype == WEFT_F32 && b.impl->mag && b.impl->mag(b.x, c->nin, &c->p, &mag)) {
        fail_at(b.name, "the test's magnitude reference rejects this case");
        goto out;
    }
    check_close_scaled(&b, "forward", &got, &want, mag.v ? &mag : NULL, tol, 1.0,
                       &worst_fwd[dtype == WEFT_F32]);
    fwd_checked++;
    /* an update also leaves its result in the variable */
    if (def_of(c->op, NULL)->flags & WF_OPF_UPDATE) {
        weft_tensor *var = NULL;
        if (weft_tgraph_variable_tensor(b.g, b.in[0], &var) != WEFT_OK ||
            tu_ref_from_tensor(&got, var))
            fail_at(b.name, "reading the updated variable: %s", weft_last_error());
        else
            check_close(&b, "the variable after the update", &got, &want, tol, 1.0, NULL);
    }
out:
    weft_plan_destroy(plan);
    tu_ref_free(&want);
    tu_ref_free(&got);
    tu_ref_free(&mag);
    built_free(&b);
}

static void test_ops_forward_matches_reference(void **state)
{
    (void)state;
    failures = 0;
    for (size_t ci = 0; ci < NCASES; ci++) {
        check_forward(ci, WEFT_F64);
        check_forward(ci, WEFT_F32);
    }
    print_message("%zu cases, %zu forward outputs checked; worst relative error f64 %.2g "
                  "(tolerance %.0g), f32 %.2g (%.0g)\n", (size_t)NCASES, fwd_checked,
                  worst_fwd[0], FWD_TOL_F64, worst_fwd[1], FWD_TOL_F32);
    if (failures)
        print_error("%u forward check(s) failed\n", failures);
    assert_int_equal(failures, 0);
}

/* ---- backward ------------------------------------------------------------------------- */

/* Appends loss = sum(out * R), R a constant shaped like `want` with values fixed per case,
 * then the gradients of every float input. Writes the wrt list (input indices) and the
 * gradient values. Returns the gradients' status (not recorded: callers decide). */
static weft_status add_loss_and_grads(built *b, size_t ci, const tu_ref *want, tu_ref *R,
                                      weft_value *loss, size_t *nwrt, size_t *wrt_idx,
                                      weft_value *grads)
{
    tu_rng r;
    tu_rng_seed(&r, tu_mix(ci * 64 + 63));
    if (tu_ref_alloc(R, want->ndim, want->dims))
        return WEFT_ERR_NOMEM;
    for (size_t i = 0; i < R->numel; i++)
        R->v[i] = 2.0 * tu_rng_unit(&r) - 1.0;
    tu_ref_round_f32(R);
    weft_tensor *rt = tu_ref_to_tensor(R, b->dtype);
    weft_value rv, prod;
    weft_status st = rt ? weft_tgraph_constant(b->g, rt, "R", &rv) : WEFT_ERR_NOMEM;
    weft_tensor_destroy(rt);
    if (st == WEFT_OK)
        st = weft_op_mul(b->g, b->out, rv, &prod);
    if (st == WEFT_OK)
        st = weft_op_sum(b->g, prod, WEFT_AXIS_ALL, 0, loss);
    if (st != WEFT_OK) {
        fail_at(b->name, "building the loss: %s: %s", weft_status_name(st), weft_last_error());
        return st;
    }
    weft_value wrt[MAXIN];
    *nwrt = 0;
    for (size_t i = 0; i < b->c->nin; i++)
        if (b->is_float[i]) {
            wrt_idx[*nwrt] = i;
            wrt[(*nwrt)++] = b->in[i];
        }
    return weft_tgraph_gradients(b->g, *loss, *nwrt, wrt, grads);
}

/* The writable data of input i (a variable's storage or the fed tensor), f64 only. */
static double *input_data(built *b, size_t i)
{
    if (b->feed[i])
        return weft_tensor_data(b->feed[i]);
    weft_tensor *t = NULL;
    if (weft_tgraph_variable_tensor(b->g, b->in[i], &t) != WEFT_OK)
        return NULL;
    return weft_tensor_data(t);
}

static int run_loss(built *b, weft_plan *plan, double *loss)
{
    weft_status st = weft_plan_run(plan, b->nfeeds, b->feeds);
    const weft_tensor *t = NULL;
    if (st == WEFT_OK)
        st = weft_plan_fetch(plan, 0, &t);
    if (st == WEFT_OK)
        st = weft_tensor_get(t, 0, loss);
    if (st != WEFT_OK) {
        fail_at(b->name, "loss run: %s: %s", weft_status_name(st), weft_last_error());
        return -1;
    }
    return 0;
}

/* Central differences of the loss against the analytic gradient of input k. */
static void check_fd(built *b, weft_plan *lplan, size_t k, const tu_ref *grad, size_t ci)
{
    double *d = input_data(b, k);
    if (!d) {
        fail_at(b->name, "input %zu: no writable data", k);
        return;
    }
    size_t n = b->x[k].numel;
    size_t count = n <= FD_ALL_UP_TO ? n : b->c->fd_samples ? (size_t)b->c->fd_samples : FD_SAMPLES;
    tu_rng r;
    tu_rng_seed(&r, tu_mix(ci * 64 + 32 + k));
    double worst = 0;
    size_t worst_i = 0, bad = 0;
    double worst_g = 0, worst_fd = 0;
    for (size_t s = 0; s < count; s++) {
        size_t i = n <= FD_ALL_UP_TO ? s : (size_t)tu_rng_below(&r, n);
        double x0 = d[i], h = 1e-6 * fmax(1.0, fabs(x0)), lp, lm;
        double xp = x0 + h, xm = x0 - h;
        d[i] = xp;
        int rc = run_loss(b, lplan, &lp);
        d[i] = xm;
        rc |= run_loss(b, lplan, &lm);
        d[i] = x0;
        if (rc)
            return;
        double fd = (lp - lm) / (xp - xm), g = grad->v[i];
        fd_checked++;
        double err = fabs(g - fd) / fmax(1.0, fmax(fabs(g), fabs(fd)));
        if (!(err <= FD_TOL))
            bad++;
        if (!(err <= worst)) {
            worst = err, worst_i = i, worst_g = g, worst_fd = fd;
        }
        if (err > worst_fd_err)
            worst_fd_err = err;
    }
    if (bad)
        fail_at(b->name, "gradient of input %zu [%s]: %zu of %zu checked elements disagree with "
                "finite differences; worst element %zu: analytic %.12g, numeric %.12g "
                "(relative error %.3g > %.1g)",
                k, b->c->in[k].shape, bad, count, worst_i, worst_g, worst_fd, worst, FD_TOL);
}

/* Backward of case ci in dtype; for f64 against finite differences (and the gradients are
 * kept in g64), for f32 against g64. */
static void check_backward(size_t ci, weft_dtype dtype, tu_ref *g64)
{
    built b;
    tu_ref want = {0}, R = {0}, got = {0};
    weft_plan *gplan = NULL, *lplan = NULL;
    weft_value loss, grads[MAXIN];
    size_t nwrt = 0, wrt_idx[MAXIN];
    if (build_case(ci, dtype, &b))
        goto out;
    const op_case *c = b.c;
    if (b.impl->ref(b.x, c->nin, &c->p, &want)) {
        fail_at(b.name, "the test's reference rejects this case (malformed case)");
        goto out;
    }
    weft_status st = add_loss_and_grads(&b, ci, &want, &R, &loss, &nwrt, wrt_idx, grads);
    if (st != WEFT_OK) {
        fail_at(b.name, "weft_tgraph_gradients: %s: %s", weft_status_name(st), weft_last_error());
        goto out;
    }
    weft_value fetch[1 + MAXIN];
    fetch[0] = loss;
    memcpy(fetch + 1, grads, nwrt * sizeof *grads);
    weft_plan_options o = plan_opts(1);
    if ((st = weft_plan_create(b.g, pool, 1 + nwrt, fetch, 0, NULL, &o, &gplan)) == WEFT_OK)
        st = weft_plan_run(gplan, b.nfeeds, b.feeds);
    if (st != WEFT_OK) {
        fail_at(b.name, "gradient run: %s: %s", weft_status_name(st), weft_last_error());
        goto out;
    }
    /* the loss itself */
    double want_loss = 0, mag = 1, got_loss = 0;
    for (size_t i = 0; i < want.numel; i++) {
        want_loss += want.v[i] * R.v[i];
        mag += fabs(want.v[i] * R.v[i]);
    }
    const weft_tensor *lt = NULL;
    if (weft_plan_fetch(gplan, 0, &lt) != WEFT_OK || weft_tensor_get(lt, 0, &got_loss) != WEFT_OK)
        fail_at(b.name, "fetching the loss: %s", weft_last_error());
    else if (!(fabs(got_loss - want_loss) <= (dtype == WEFT_F32 ? FWD_TOL_F32 : FWD_TOL_F64) * mag))
        fail_at(b.name, "loss sum(out * R) = %.17g, expected %.17g", got_loss, want_loss);

    if (dtype == WEFT_F64) {
        weft_plan_options lo = plan_opts(0);
        if ((st = weft_plan_create(b.g, pool, 1, &loss, 0, NULL, &lo, &lplan)) != WEFT_OK) {
            fail_at(b.name, "loss plan: %s", weft_last_error());
            goto out;
        }
    }
    for (size_t w = 0; w < nwrt; w++) {
        size_t k = wrt_idx[w];
        char what[64];
        snprintf(what, sizeof what, "gradient of input %zu", k);
        if (fetch_ref(&b, gplan, 1 + w, &got, what))
            continue;
        if (!tu_ref_same_shape(&got, &b.x[k])) {
            char s1[96], s2[96];
            fail_at(b.name, "%s has shape %s, the input %s", what,
                    tu_shape_str(got.ndim, got.dims, s1, sizeof s1),
                    tu_shape_str(b.x[k].ndim, b.x[k].dims, s2, sizeof s2));
            continue;
        }
        if (dtype == WEFT_F64) {
            tu_ref_copy(&g64[k], &got);
            check_fd(&b, lplan, k, &got, ci);
        } else if (g64[k].v) {
            check_close(&b, what, &got, &g64[k], GRAD_TOL_F32, 1.0, &worst_grad_f32);
            f32_grads_checked += got.numel;
        }
    }
out:
    weft_plan_destroy(gplan);
    weft_plan_destroy(lplan);
    tu_ref_free(&want);
    tu_ref_free(&R);
    tu_ref_free(&got);
    built_free(&b);
}

static void test_ops_backward_matches_finite_differences(void **state)
{
    (void)state;
    failures = 0;
    for (size_t ci = 0; ci < NCASES; ci++) {
        if (!is_differentiable(&CASES[ci]))
            continue;
        tu_ref g64[MAXIN] = {{0}};
        check_backward(ci, WEFT_F64, g64);
        check_backward(ci, WEFT_F32, g64);
        for (size_t k = 0; k < MAXIN; k++)
            tu_ref_free(&g64[k]);
    }
    print_message("%zu gradient elements against finite differences (f64), worst relative "
                  "error %.2g (tolerance %.0g); %zu f32 gradient elements against f64, worst "
                  "%.2g (%.0g)\n", fd_checked, worst_fd_err, FD_TOL, f32_grads_checked,
                  worst_grad_f32, GRAD_TOL_F32);
    if (failures)
        print_error("%u backward check(s) failed\n", failures);
    assert_int_equal(failures, 0);
}

/* ---- not differentiable --------------------------------------------------------------- */

/* Gradients through a not-differentiable op fail, naming it. An integer output (argmax)
 * reaches a float loss through gather's ids. */
static void check_not_differentiable(size_t ci, weft_dtype dtype)
{
    built b;
    tu_ref want = {0}, R = {0};
    if (build_case(ci, dtype, &b))
        goto out;
    const op_case *c = b.c;
    weft_dtype odt;
    size_t ond;
    int64_t od[WEFT_MAX_DIMS];
    weft_tgraph_value_info(b.g, b.out, &odt, &ond, od);
    weft_value loss, wrt[MAXIN], grads[MAXIN];
    size_t nwrt = 0;
    weft_status st;
    size_t n0;
    if (odt == WEFT_I32) {
        /* table [C, 2] where C bounds the ids */
        int64_t tdims[2] = {b.x[0].ndim ? b.x[0].dims[b.x[0].ndim - 1] : 1, 2};
        weft_tensor *tt = NULL;
        weft_value table, rows;
        st = weft_tensor_create(dtype, 2, tdims, &tt);
        if (st == WEFT_OK)
            st = weft_tensor_fill(tt, 0.5);
        if (st == WEFT_OK)
            st = weft_tgraph_constant(b.g, tt, "table", &table);
        weft_tensor_destroy(tt);
        if (st == WEFT_OK)
            st = weft_op_gather(b.g, table, b.out, &rows);
        if (st == WEFT_OK)
            st = weft_op_sum(b.g, rows, WEFT_AXIS_ALL, 0, &loss);
    } else {
        tu_ref_alloc(&want, (int)ond, od);
        weft_value rv, prod;
        weft_tensor *rt = tu_ref_to_tensor(&want, dtype);
        st = rt ? weft_tgraph_constant(b.g, rt, "R", &rv) : WEFT_ERR_NOMEM;
        weft_tensor_destroy(rt);
        if (st == WEFT_OK)
            st = weft_op_mul(b.g, b.out, rv, &prod);
        if (st == WEFT_OK)
            st = weft_op_sum(b.g, prod, WEFT_AXIS_ALL, 0, &loss);
    }
    if (st != WEFT_OK) {
        fail_at(b.name, "building the loss: %s", weft_last_error());
        goto out;
    }
    for (size_t i = 0; i < c->nin; i++)
        if (b.is_float[i])
            wrt[nwrt++] = b.in[i];
    n0 = weft_tgraph_node_count(b.g);
    st = weft_tgraph_gradients(b.g, loss, nwrt, wrt, grads);
    const char *msg = weft_last_error();
    if (st != WEFT_ERR_INVALID_ARG || !contains(msg, c->op) || !contains(msg, "not differentiable"))
        fail_at(b.name, "gradients through %s: %s (%u nodes added), message \"%s\"; expected "
                "WEFT_ERR_INVALID_ARG naming \"%s\" and \"not differentiable\"",
                c->op, weft_status_name(st), (unsigned)(weft_tgraph_node_count(b.g) - n0),
                st ? msg : "", c->op);
out:
    tu_ref_free(&want);
    tu_ref_free(&R);
    built_free(&b);
}

static void test_ops_not_differentiable(void **state)
{
    (void)state;
    failures = 0;
    size_t checked = 0;
    for (size_t ci = 0; ci < NCASES; ci++) {
        if (is_differentiable(&CASES[ci]))
            continue;
        check_not_differentiable(ci, WEFT_F64);
        check_not_differentiable(ci, WEFT_F32);
        checked++;
    }
    assert_true(checked > 0);

    /* argmax feeding softmax_xent's labels: the path x -> argmax -> loss */
    weft_tgraph *g = NULL;
    assert_int_equal(weft_tgraph_create(&g), WEFT_OK);
    int64_t d[2] = {3, 4};
    weft_tensor *t = NULL;
    assert_int_equal(weft_tensor_create(WEFT_F64, 2, d, &t), WEFT_OK);
    assert_int_equal(weft_tensor_init_random(t, WEFT_INIT_UNIFORM, 5, -1, 1), WEFT_OK);
    weft_value x, logits, lab, loss, grad;
    assert_int_equal(weft_tgraph_variable(g, t, "x", &x), WEFT_OK);
    assert_int_equal(weft_tgraph_variable(g, t, "logits", &logits), WEFT_OK);
    weft_tensor_destroy(t);
    assert_int_equal(weft_op_argmax(g, x, &lab), WEFT_OK);
    assert_int_equal(weft_op_softmax_xent(g, logits, lab, &loss), WEFT_OK);
    weft_status st = weft_tgraph_gradients(g, loss, 1, &x, &grad);
    const char *msg = weft_last_error();
    if (st != WEFT_ERR_INVALID_ARG || !contains(msg, "argmax") ||
        !contains(msg, "not differentiable"))
        fail_at("argmax -> softmax_xent labels", "gradients wrt x: %s, message \"%s\"",
                weft_status_name(st), st ? msg : "");
    /* the logits alone are differentiable */
    assert_int_equal(weft_tgraph_gradients(g, loss, 1, &logits, &grad), WEFT_OK);
    weft_tgraph_destroy(g);
    assert_int_equal(failures, 0);
}

/* ---- internal ops exercised by the backward builders ---------------------------------- */

static void test_ops_internal_ops_exercised(void **state)
{
    (void)state;
    failures = 0;
    unsigned char seen[WF_OP_COUNT] = {0};
    for (size_t ci = 0; ci < NCASES; ci++) {
        if (!is_differentiable(&CASES[ci]))
            continue;
        for (int dt = 0; dt < 2; dt++) {
            built b;
            tu_ref want = {0}, R = {0};
            weft_value loss, grads[MAXIN];
            size_t nwrt, wrt_idx[MAXIN];
            weft_dtype dtype = dt ? WEFT_F32 : WEFT_F64;
            if (!build_case(ci, dtype, &b) && !b.impl->ref(b.x, b.c->nin, &b.c->p, &want) &&
                add_loss_and_grads(&b, ci, &want, &R, &loss, &nwrt, wrt_idx, grads) == WEFT_OK) {
                size_t n = weft_tgraph_node_count(b.g);
                for (uint32_t v = 0; v < n; v++) {
                    int id = -1;
                    const char *name = weft_tgraph_value_op(b.g, (weft_value){.id = v});
                    if (name && def_of(name, &id))
                        seen[id] = 1;
                    else
                        fail_at(b.name, "node %u has an unknown op name '%s'", v,
                                name ? name : "(null)");
                }
            }
            tu_ref_free(&want);
            tu_ref_free(&R);
            built_free(&b);
        }
    }
    for (int id = 0; id < WF_OP_COUNT; id++) {
        const wf_op_def *d = wf_op_get((wf_op_id)id);
        /* internal update ops (optim_update) are emitted by optimizers, not by backward
         * builders: tests/engine/test_optim.c checks them */
        if (d && (d->flags & WF_OPF_INTERNAL) && !(d->flags & WF_OPF_UPDATE) && !seen[id])
            fail_at(d->name, "internal op never emitted by the backward of any case");
    }
    assert_int_equal(failures, 0);
}

/* ---- shape errors at build time ------------------------------------------------------- */

static weft_value mkval(weft_tgraph *g, weft_dtype dt, const char *shape)
{
    int nd, open;
    int64_t dims[WEFT_MAX_DIMS];
    assert_int_equal(tu_shape_parse(shape, &nd, dims, &open), 0);
    weft_tensor *t = NULL;
    weft_value v;
    assert_int_equal(weft_tensor_create(dt, (size_t)nd, dims, &t), WEFT_OK);
    if (dt == WEFT_I32) {
        assert_int_equal(weft_tgraph_constant(g, t, NULL, &v), WEFT_OK);
    } else {
        assert_int_equal(weft_tensor_fill(t, 0.5), WEFT_OK);
        assert_int_equal(weft_tgraph_variable(g, t, NULL, &v), WEFT_OK);
    }
    weft_tensor_destroy(t);
    return v;
}

/* The call must fail with WEFT_ERR_INVALID_ARG, add no node, and say every part. */
static void expect_bad(weft_tgraph *g, size_t n0, weft_status st, const char *call,
                       const char *const *parts)
{
    const char *msg = weft_last_error();
    size_t n1 = weft_tgraph_node_count(g);
    if (st != WEFT_ERR_INVALID_ARG)
        fail_at(call, "returned %s (message \"%s\"), expected WEFT_ERR_INVALID_ARG",
                weft_status_name(st), st ? msg : "");
    if (n1 != n0)
        fail_at(call, "the graph went from %zu to %zu nodes", n0, n1);
    if (st == WEFT_OK)
        return;
    for (size_t i = 0; parts[i]; i++)
        if (!contains(msg, parts[i]))
            fail_at(call, "message \"%s\" does not mention \"%s\"", msg, parts[i]);
}

#define EXPECT_BAD(call, ...)                                                             \
    do {                                                                                  \
        size_t n0_ = weft_tgraph_node_count(g);                                           \
        weft_status st_ = (call);                                                         \
        expect_bad(g, n0_, st_, #call, (const char *const[]){__VA_ARGS__, NULL});         \
    } while (0)

static void test_ops_shape_errors(void **state)
{
    (void)state;
    failures = 0;
    weft_tgraph *g = NULL;
    assert_int_equal(weft_tgraph_create(&g), WEFT_OK);
    const weft_dtype D = WEFT_F64;
    weft_value a43 = mkval(g, D, "4x3"), b52 = mkval(g, D, "5x2"), a34 = mkval(g, D, "3x4");
    weft_value a23 = mkval(g, D, "2x3"), a24 = mkval(g, D, "2x4"), a2x3x4 = mkval(g, D, "2x3x4");
    weft_value f23 = mkval(g, WEFT_F32, "2x3"), f34 = mkval(g, WEFT_F32, "3x4");
    weft_value a314 = mkval(g, D, "3x1x4"), a52 = b52, a3 = mkval(g, D, "3"), a4 = mkval(g, D, "4");
    weft_value a35 = mkval(g, D, "3x5"), a5 = mkval(g, D, "5"), s = mkval(g, D, "");
    weft_value i4 = mkval(g, WEFT_I32, "4"), i3 = mkval(g, WEFT_I32, "3"), i23 = mkval(g, WEFT_I32, "2x3");
    weft_value i3x4 = mkval(g, WEFT_I32, "3x4"), f3 = mkval(g, D, "3"), i0 = mkval(g, WEFT_I32, "");
    weft_value a53 = mkval(g, D, "5x3"), p43;
    int64_t pd[2] = {WEFT_DIM_ANY, 3};
    assert_int_equal(weft_tgraph_placeholder(g, D, 2, pd, "p", &p43), WEFT_OK);
    weft_value c43;
    {
        weft_tensor *t = NULL;
        int64_t d[2] = {4, 3};
        assert_int_equal(weft_tensor_create(D, 2, d, &t), WEFT_OK);
        assert_int_equal(weft_tgraph_constant(g, t, "c", &c43), WEFT_OK);
        weft_tensor_destroy(t);
    }
    weft_value out;

    /* matmul */
    EXPECT_BAD(weft_op_matmul(g, a43, b52, 0, &out), "matmul: inner dimensions differ: [4,3] @ [5,2]");
    EXPECT_BAD(weft_op_matmul(g, a34, b52, WEFT_TRANS_A, &out), "matmul", "[3,4]", "[5,2]");
    EXPECT_BAD(weft_op_matmul(g, a43, a34, WEFT_TRANS_B, &out), "matmul", "[4,3]", "[3,4]");
    EXPECT_BAD(weft_op_matmul(g, a2x3x4, a43, 0, &out), "matmul", "[2,3,4]");
    EXPECT_BAD(weft_op_matmul(g, a3, a35, 0, &out), "matmul", "[3]");
    EXPECT_BAD(weft_op_matmul(g, f34, a43, 0, &out), "matmul");
    EXPECT_BAD(weft_op_matmul(g, a43, a34, 4u, &out), "matmul");
    EXPECT_BAD(weft_op_matmul(g, i3x4, a43, 0, &out), "matmul");
    /* elementwise, broadcasting */
    EXPECT_BAD(weft_op_add(g, a23, a43, &out), "add", "[2,3]", "[4,3]");
    EXPECT_BAD(weft_op_sub(g, a314, a52, &out), "sub", "[3,1,4]", "[5,2]");
    EXPECT_BAD(weft_op_mul(g, a3, a4, &out), "mul", "[3]", "[4]");
    EXPECT_BAD(weft_op_div(g, a24, a23, &out), "div", "[2,4]", "[2,3]");
    EXPECT_BAD(weft_op_add(g, f23, a23, &out), "add");
    EXPECT_BAD(weft_op_mul(g, a23, f23, &out), "mul");
    EXPECT_BAD(weft_op_sub(g, i3, i3, &out), "sub");
    EXPECT_BAD(weft_op_div(g, a3, i3, &out), "div");
    /* unary on integers */
    EXPECT_BAD(weft_op_neg(g, i3, &out), "neg");
    EXPECT_BAD(weft_op_exp(g, i3, &out), "exp");
    EXPECT_BAD(weft_op_log(g, i3, &out), "log");
    EXPECT_BAD(weft_op_sqrt(g, i3, &out), "sqrt");
    EXPECT_BAD(weft_op_sigmoid(g, i3, &out), "sigmoid");
    EXPECT_BAD(weft_op_tanh(g, i3, &out), "tanh");
    EXPECT_BAD(weft_op_relu(g, i3, &out), "relu");
    EXPECT_BAD(weft_op_pow(g, i3, 2.0, &out), "pow");
    EXPECT_BAD(weft_op_scale(g, i3, 2.0, &out), "scale");
    /* reductions */
    EXPECT_BAD(weft_op_sum(g, a2x3x4, 3, 0, &out), "sum", "[2,3,4]");
    EXPECT_BAD(weft_op_mean(g, a2x3x4, -4, 1, &out), "mean", "[2,3,4]");
    EXPECT_BAD(weft_op_sum(g, s, 0, 0, &out), "sum");
    EXPECT_BAD(weft_op_mean(g, i3, WEFT_AXIS_ALL, 0, &out), "mean");
    EXPECT_BAD(weft_op_argmax(g, i3, &out), "argmax");
    EXPECT_BAD(weft_op_argmax(g, s, &out), "argmax");
    /* softmax family and losses */
    EXPECT_BAD(weft_op_softmax(g, i3, &out), "softmax");
    EXPECT_BAD(weft_op_log_softmax(g, i3, &out), "log_softmax");
    EXPECT_BAD(weft_op_softmax_xent(g, a35, i4, &out), "softmax_xent", "[3,5]", "[4]");
    EXPECT_BAD(weft_op_softmax_xent(g, a35, i23, &out), "softmax_xent", "[3,5]", "[2,3]");
    EXPECT_BAD(weft_op_softmax_xent(g, a35, f3, &out), "softmax_xent");
    EXPECT_BAD(weft_op_softmax_xent(g, a5, i0, &out), "softmax_xent", "[5]");
    EXPECT_BAD(weft_op_softmax_xent(g, i3x4, i3, &out), "softmax_xent");
    EXPECT_BAD(weft_op_mse(g, a34, a43, &out), "mse", "[3,4]", "[4,3]");
    EXPECT_BAD(weft_op_mse(g, f34, a34, &out), "mse");
    /* shape ops */
    EXPECT_BAD(weft_op_reshape(g, a34, 2, (const int64_t[]){5, 3}, &out), "reshape", "[3,4]");
    EXPECT_BAD(weft_op_reshape(g, a34, 2, (const int64_t[]){5, -1}, &out), "reshape", "[3,4]");
    EXPECT_BAD(weft_op_reshape(g, a34, 2, (const int64_t[]){-1, -1}, &out), "reshape");
    EXPECT_BAD(weft_op_reshape(g, a34, 2, (const int64_t[]){-2, -6}, &out), "reshape");
    EXPECT_BAD(weft_op_transpose(g, a2x3x4, (const int[]){0, 0, 1}, &out), "transpose");
    EXPECT_BAD(weft_op_transpose(g, a2x3x4, (const int[]){0, 1, 3}, &out), "transpose");
    EXPECT_BAD(weft_op_transpose(g, a2x3x4, (const int[]){-1, 0, 1}, &out), "transpose");
    EXPECT_BAD(weft_op_concat(g, 3, (const weft_value[]){a23, a24, a23}, 0, &out), "concat",
               "[2,3]", "[2,4]");
    EXPECT_BAD(weft_op_concat(g, 2, (const weft_value[]){a23, a3}, 0, &out), "concat");
    EXPECT_BAD(weft_op_concat(g, 2, (const weft_value[]){a23, a23}, 2, &out), "concat");
    EXPECT_BAD(weft_op_concat(g, 2, (const weft_value[]){a23, f23}, 0, &out), "concat");
    EXPECT_BAD(weft_op_concat(g, 0, (const weft_value[]){a23}, 0, &out), "concat");
    EXPECT_BAD(weft_op_slice(g, a34, 1, 2, 5, &out), "slice", "[3,4]");
    EXPECT_BAD(weft_op_slice(g, a34, 1, 3, 1, &out), "slice");
    EXPECT_BAD(weft_op_slice(g, a34, 2, 0, 1, &out), "slice");
    EXPECT_BAD(weft_op_slice(g, a34, 0, -1, 2, &out), "slice");
    EXPECT_BAD(weft_op_gather(g, a53, f3, &out), "gather");
    EXPECT_BAD(weft_op_gather(g, a5, i3, &out), "gather", "[5]");
    EXPECT_BAD(weft_op_gather(g, i3x4, i3, &out), "gather");
    /* updates */
    EXPECT_BAD(weft_op_assign(g, a34, a43, &out), "assign", "[3,4]", "[4,3]");
    EXPECT_BAD(weft_op_assign(g, c43, a43, &out), "assign", "variable");
    EXPECT_BAD(weft_op_assign_sub(g, f34, a34, &out), "assign_sub");
    EXPECT_BAD(weft_op_assign_sub(g, p43, a43, &out), "assign_sub", "variable");

    /* the graph is intact: a good op still builds and runs */
    weft_value ok;
    assert_int_equal(weft_op_matmul(g, a43, a34, 0, &ok), WEFT_OK);
    weft_plan *plan = NULL;
    weft_plan_options o = plan_opts(0);
    assert_int_equal(weft_plan_create(g, pool, 1, &ok, 0, NULL, &o, &plan), WEFT_OK);
    assert_int_equal(weft_plan_run(plan, 0, NULL), WEFT_OK);
    const weft_tensor *t = NULL;
    assert_int_equal(weft_plan_fetch(plan, 0, &t), WEFT_OK);
    double v;
    assert_int_equal(weft_tensor_get(t, 0, &v), WEFT_OK);
    assert_true(fabs(v - 0.75) < 1e-15); /* 3 * 0.5 * 0.5 */
    weft_plan_destroy(plan);
    weft_tgraph_destroy(g);
    assert_int_equal(failures, 0);
}

/* ---- data errors at run time ---------------------------------------------------------- */

static weft_tensor *i32_tensor(size_t n, const int32_t *v)
{
    weft_tensor *t = NULL;
    int64_t d = (int64_t)n;
    assert_int_equal(weft_tensor_from_data(WEFT_I32, 1, &d, v, WEFT_COPY, &t), WEFT_OK);
    return t;
}

static void expect_run(weft_plan *plan, weft_value ph, const int32_t *ids, size_t n,
                       weft_status want, const char *op, const char *what)
{
    weft_tensor *t = i32_tensor(n, ids);
    weft_feed f = {.placeholder = ph, .tensor = t};
    weft_status st = weft_plan_run(plan, 1, &f);
    const char *msg = weft_last_error();
    if (st != want)
        fail_at(what, "run returned %s (\"%s\"), expected %s", weft_status_name(st),
                st ? msg : "", weft_status_name(want));
    else if (want != WEFT_OK && !contains(msg, op))
        fail_at(what, "message \"%s\" does not name %s", msg, op);
    weft_tensor_destroy(t);
}

static void test_ops_run_time_range_errors(void **state)
{
    (void)state;
    failures = 0;
    for (int dt = 0; dt < 2; dt++) {
        weft_dtype dtype = dt ? WEFT_F32 : WEFT_F64;
        weft_tgraph *g = NULL;
        assert_int_equal(weft_tgraph_create(&g), WEFT_OK);
        weft_tensor *t = NULL;
        int64_t td[2] = {5, 3};
        assert_int_equal(weft_tensor_create(dtype, 2, td, &t), WEFT_OK);
        assert_int_equal(weft_tensor_init_random(t, WEFT_INIT_UNIFORM, 9, -1, 1), WEFT_OK);
        weft_value table, ids, rows, gloss, gtab, logits, labels, xent, gxent;
        assert_int_equal(weft_tgraph_variable(g, t, "table", &table), WEFT_OK);
        assert_int_equal(weft_tgraph_variable(g, t, "logits", &logits), WEFT_OK);
        weft_tensor_destroy(t);
        int64_t any = WEFT_DIM_ANY;
        assert_int_equal(weft_tgraph_placeholder(g, WEFT_I32, 1, &any, "ids", &ids), WEFT_OK);
        assert_int_equal(weft_tgraph_placeholder(g, WEFT_I32, 1, (const int64_t[]){5}, "labels",
                                                 &labels), WEFT_OK);
        assert_int_equal(weft_op_gather(g, table, ids, &rows), WEFT_OK);
        assert_int_equal(weft_op_sum(g, rows, WEFT_AXIS_ALL, 0, &gloss), WEFT_OK);
        assert_int_equal(weft_tgraph_gradients(g, gloss, 1, &table, &gtab), WEFT_OK);
        assert_int_equal(weft_op_softmax_xent(g, logits, labels, &xent), WEFT_OK);
        assert_int_equal(weft_tgraph_gradients(g, xent, 1, &logits, &gxent), WEFT_OK);

        for (int sched = 0; sched < 2; sched++) {
            weft_plan_options o = plan_opts(sched);
            weft_plan *gp = NULL, *xp = NULL;
            assert_int_equal(weft_plan_create(g, pool, 2, (const weft_value[]){rows, gtab}, 0,
                                              NULL, &o, &gp), WEFT_OK);
            assert_int_equal(weft_plan_create(g, pool, 2, (const weft_value[]){xent, gxent}, 0,
                                              NULL, &o, &xp), WEFT_OK);
            char what[64];
            snprintf(what, sizeof what, "gather %s %s", weft_dtype_name(dtype),
                     sched ? "scheduled" : "inline");
            expect_run(gp, ids, (const int32_t[]){0, 5, 1, 2}, 4, WEFT_ERR_RANGE, "gather", what);
            expect_run(gp, ids, (const int32_t[]){-1, 0}, 2, WEFT_ERR_RANGE, "gather", what);
            expect_run(gp, ids, (const int32_t[]){4, 4, 0, 1, 4}, 5, WEFT_OK, "gather", what);
            /* the good run's results: rows of the table, and a count per row as gradient */
            const weft_tensor *ft = NULL;
            if (weft_plan_fetch(gp, 1, &ft) == WEFT_OK) {
                static const double count[5] = {1, 1, 0, 0, 3};
                for (size_t i = 0; i < 15; i++) {
                    double v = -1;
                    weft_tensor_get(ft, i, &v);
                    if (v != count[i / 3])
                        fail_at(what, "gradient of table element %zu is %g, expected %g", i, v,
                                count[i / 3]);
                }
            }
            snprintf(what, sizeof what, "softmax_xent %s %s", weft_dtype_name(dtype),
                     sched ? "scheduled" : "inline");
            expect_run(xp, labels, (const int32_t[]){0, 3, 1, 2, 0}, 5, WEFT_ERR_RANGE,
                       "softmax_xent", what);
            expect_run(xp, labels, (const int32_t[]){0, 1, -1, 2, 0}, 5, WEFT_ERR_RANGE,
                       "softmax_xent", what);
            expect_run(xp, labels, (const int32_t[]){0, 2, 1, 2, 0}, 5, WEFT_OK, "softmax_xent",
                       what);
            weft_plan_destroy(gp);
            weft_plan_destroy(xp);
        }
        weft_tgraph_destroy(g);
    }
    assert_int_equal(failures, 0);
}

/* An open dimension is checked when a plan runs: a bad feed fails the run, a good one
 * then works. */
static void test_ops_open_dimension_checked_at_run_time(void **state)
{
    (void)state;
    weft_tgraph *g = NULL;
    assert_int_equal(weft_tgraph_create(&g), WEFT_OK);
    weft_value p, c, y;
    int64_t pd[2] = {WEFT_DIM_ANY, 3}, cd[2] = {4, 3};
    assert_int_equal(weft_tgraph_placeholder(g, WEFT_F64, 2, pd, "p", &p), WEFT_OK);
    weft_tensor *ct = NULL, *bad = NULL, *good = NULL;
    assert_int_equal(weft_tensor_create(WEFT_F64, 2, cd, &ct), WEFT_OK);
    assert_int_equal(weft_tensor_fill(ct, 1.0), WEFT_OK);
    assert_int_equal(weft_tgraph_constant(g, ct, "c", &c), WEFT_OK);
    assert_int_equal(weft_op_add(g, p, c, &y), WEFT_OK);
    assert_int_equal(weft_tensor_create(WEFT_F64, 2, (const int64_t[]){5, 3}, &bad), WEFT_OK);
    assert_int_equal(weft_tensor_create(WEFT_F64, 2, cd, &good), WEFT_OK);
    assert_int_equal(weft_tensor_fill(good, 2.0), WEFT_OK);
    weft_plan *plan = NULL;
    weft_plan_options o = plan_opts(0);
    assert_int_equal(weft_plan_create(g, pool, 1, &y, 0, NULL, &o, &plan), WEFT_OK);
    weft_feed f = {.placeholder = p, .tensor = bad};
    assert_int_equal(weft_plan_run(plan, 1, &f), WEFT_ERR_INVALID_ARG);
    assert_non_null(strstr(weft_last_error(), "add"));
    f.tensor = good;
    assert_int_equal(weft_plan_run(plan, 1, &f), WEFT_OK);
    const weft_tensor *t = NULL;
    double v = 0;
    assert_int_equal(weft_plan_fetch(plan, 0, &t), WEFT_OK);
    assert_int_equal(weft_tensor_numel(t), 12);
    assert_int_equal(weft_tensor_get(t, 11, &v), WEFT_OK);
    assert_true(v == 3.0);
    weft_plan_destroy(plan);
    weft_tensor_destroy(ct);
    weft_tensor_destroy(bad);
    weft_tensor_destroy(good);
    weft_tgraph_destroy(g);
}

/* ---- check mode ----------------------------------------------------------------------- */

static weft_tensor *float_tensor(weft_dtype dt, size_t n, const double *v)
{
    tu_ref r = {0};
    int64_t d = (int64_t)n;
    assert_int_equal(tu_ref_alloc(&r, 1, &d), 0);
    memcpy(r.v, v, n * sizeof *v);
    weft_tensor *t = tu_ref_to_tensor(&r, dt);
    assert_non_null(t);
    tu_ref_free(&r);
    return t;
}

static weft_status run_fed(weft_plan *plan, weft_value ph, weft_dtype dt, size_t n,
                           const double *v)
{
    weft_tensor *t = float_tensor(dt, n, v);
    weft_feed f = {.placeholder = ph, .tensor = t};
    weft_status st = weft_plan_run(plan, 1, &f);
    weft_tensor_destroy(t);
    return st;
}

static void test_ops_check_numerics_forward(void **state)
{
    (void)state;
    failures = 0;
    for (int dt = 0; dt < 2; dt++) {
        weft_dtype dtype = dt ? WEFT_F32 : WEFT_F64;
        weft_tgraph *g = NULL;
        assert_int_equal(weft_tgraph_create(&g), WEFT_OK);
        weft_value x, y, z;
        assert_int_equal(weft_tgraph_placeholder(g, dtype, 1, (const int64_t[]){4}, "x", &x),
                         WEFT_OK);
        assert_int_equal(weft_op_log(g, x, &y), WEFT_OK);
        assert_int_equal(weft_op_scale(g, y, 2.0, &z), WEFT_OK);
        for (int sched = 0; sched < 2; sched++) {
            weft_plan_options o = plan_opts(sched);
            o.check_numerics = 1;
            weft_plan *plan = NULL;
            assert_int_equal(weft_plan_create(g, pool, 1, &z, 0, NULL, &o, &plan), WEFT_OK);
            static const double zero[4] = {1, 0, 2, 3}, neg[4] = {1, 2, -1, 3}, ok[4] = {1, 2, 3, 4};
            const double *bad[2] = {zero, neg};
            for (int k = 0; k < 2; k++) {
                weft_status st = run_fed(plan, x, dtype, 4, bad[k]);
                const char *msg = weft_last_error();
                if (st != WEFT_ERR_NUMERICS || !contains(msg, "log") || !contains(msg, "forward") ||
                    contains(msg, "scale"))
                    fail_at(k ? "log of a negative" : "log of 0",
                            "%s %s: %s, \"%s\"; expected WEFT_ERR_NUMERICS naming log, forward",
                            weft_dtype_name(dtype), sched ? "scheduled" : "inline",
                            weft_status_name(st), st ? msg : "");
            }
            assert_int_equal(run_fed(plan, x, dtype, 4, ok), WEFT_OK);
            const weft_tensor *t = NULL;
            double v = 0;
            assert_int_equal(weft_plan_fetch(plan, 0, &t), WEFT_OK);
            assert_int_equal(weft_tensor_get(t, 3, &v), WEFT_OK);
            assert_true(fabs(v - 2.0 * log(4.0)) < 1e-6);
            weft_plan_destroy(plan);
        }
        /* without check mode the same feed runs and yields -inf */
        weft_plan_options o = plan_opts(0);
        weft_plan *plan = NULL;
        assert_int_equal(weft_plan_create(g, pool, 1, &z, 0, NULL, &o, &plan), WEFT_OK);
        assert_int_equal(run_fed(plan, x, dtype, 4, (const double[]){1, 0, 2, 3}), WEFT_OK);
        const weft_tensor *t = NULL;
        double v = 0;
        assert_int_equal(weft_plan_fetch(plan, 0, &t), WEFT_OK);
        assert_int_equal(weft_tensor_get(t, 1, &v), WEFT_OK);
        assert_true(isinf(v) && v < 0);
        weft_plan_destroy(plan);
        weft_tgraph_destroy(g);
    }
    assert_int_equal(failures, 0);
}

/* sqrt at 0 is finite forward, but its derivative is not: with R = 0 there the backward
 * makes 0 * inf (or 0 / 0), a NaN that first appears in a backward node. */
static void test_ops_check_numerics_backward(void **state)
{
    (void)state;
    failures = 0;
    for (int dt = 0; dt < 2; dt++) {
        weft_dtype dtype = dt ? WEFT_F32 : WEFT_F64;
        weft_tgraph *g = NULL;
        assert_int_equal(weft_tgraph_create(&g), WEFT_OK);
        weft_value x, s, rv, prod, loss, grad;
        assert_int_equal(weft_tgraph_placeholder(g, dtype, 1, (const int64_t[]){3}, "x", &x),
                         WEFT_OK);
        weft_tensor *rt = float_tensor(dtype, 3, (const double[]){0, 1, -1});
        assert_int_equal(weft_tgraph_constant(g, rt, "R", &rv), WEFT_OK);
        weft_tensor_destroy(rt);
        assert_int_equal(weft_op_sqrt(g, x, &s), WEFT_OK);
        assert_int_equal(weft_op_mul(g, s, rv, &prod), WEFT_OK);
        assert_int_equal(weft_op_sum(g, prod, WEFT_AXIS_ALL, 0, &loss), WEFT_OK);
        assert_int_equal(weft_tgraph_gradients(g, loss, 1, &x, &grad), WEFT_OK);
        for (int sched = 0; sched < 2; sched++) {
            weft_plan_options o = plan_opts(sched);
            o.check_numerics = 1;
            weft_plan *plan = NULL;
            assert_int_equal(weft_plan_create(g, pool, 2, (const weft_value[]){loss, grad}, 0,
                                              NULL, &o, &plan), WEFT_OK);
            weft_status st = run_fed(plan, x, dtype, 3, (const double[]){0, 1, 4});
            const char *msg = weft_last_error();
            if (st != WEFT_ERR_NUMERICS || !contains(msg, "backward") || contains(msg, "forward"))
                fail_at("sqrt'(0) in backward", "%s %s: %s, \"%s\"; expected WEFT_ERR_NUMERICS "
                        "naming the backward pass", weft_dtype_name(dtype),
                        sched ? "scheduled" : "inline", weft_status_name(st), st ? msg : "");
            /* good data runs: d/dx sum(sqrt(x) * R) = R / (2 sqrt(x)) */
            assert_int_equal(run_fed(plan, x, dtype, 3, (const double[]){1, 1, 4}), WEFT_OK);
            const weft_tensor *t = NULL;
            double v[3] = {0};
            assert_int_equal(weft_plan_fetch(plan, 1, &t), WEFT_OK);
            for (size_t i = 0; i < 3; i++)
                assert_int_equal(weft_tensor_get(t, i, &v[i]), WEFT_OK);
            assert_true(fabs(v[0]) < 1e-6 && fabs(v[1] - 0.5) < 1e-6 && fabs(v[2] + 0.25) < 1e-6);
            weft_plan_destroy(plan);
        }
        weft_tgraph_destroy(g);
    }
    assert_int_equal(failures, 0);
}

/* ---- main ----------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    weft_pool_options o = weft_pool_options_default();
    o.threads = 3; /* more threads than this machine's 2 cores: real interleavings */
    o.bind = 0;
    return weft_pool_create(&o, &pool) == WEFT_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    weft_pool_destroy(pool);
    pool = NULL;
    return 0;
}

int main(void)
{
    tu_main_init(120);
    unsetenv("WEFT_CHECK_NUMERICS"); /* the tests choose check mode per plan */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ops_table_complete),
        cmocka_unit_test(test_ops_forward_matches_reference),
        cmocka_unit_test(test_ops_backward_matches_finite_differences),
        cmocka_unit_test(test_ops_not_differentiable),
        cmocka_unit_test(test_ops_internal_ops_exercised),
        cmocka_unit_test(test_ops_shape_errors),
        cmocka_unit_test(test_ops_run_time_range_errors),
        cmocka_unit_test(test_ops_open_dimension_checked_at_run_time),
        cmocka_unit_test(test_ops_check_numerics_forward),
        cmocka_unit_test(test_ops_check_numerics_backward),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

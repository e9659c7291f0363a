/* tests/util/tu_opcases.c - see tu_opcases.h. */
#include "tests/util/tu_opcases.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/util/tu_common.h"

/* ---- shared by the op suites ---------------------------------------------------------- */

static unsigned failures;

void tu_op_fail(const char *what, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    print_error("FAIL %s: ", what);
    vprint_error(fmt, ap);
    print_error("\n");
    va_end(ap);
    failures++;
}

void tu_op_fail_reset(void) { failures = 0; }
unsigned tu_op_failures(void) { return failures; }

int tu_op_contains(const char *text, const char *part) { return text && strstr(text, part); }

weft_plan_options tu_op_plan_opts(int scheduled)
{
    weft_plan_options o = weft_plan_options_default();
    o.check_numerics = 0;
    if (scheduled)
        o.inline_below_ns = 0; /* every node a task on the pool, even tiny ones */
    return o;
}

/* The pool slot of the running group (tu_op_run_group). */
static weft_pool **group_pool;

static int group_setup(void **state)
{
    (void)state;
    weft_pool_options o = weft_pool_options_default();
    o.threads = 3; /* more threads than this machine's 2 cores: real interleavings */
    o.bind = 0;
    return weft_pool_create(&o, group_pool) == WEFT_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    weft_pool_destroy(*group_pool);
    *group_pool = NULL;
    return 0;
}

int tu_op_run_group(const char *name, const struct CMUnitTest *tests, size_t n,
                    weft_pool **pool)
{
    tu_main_init(120);
    unsetenv("WEFT_CHECK_NUMERICS"); /* the tests choose check mode per plan */
    group_pool = pool;
    return _cmocka_run_group_tests(name, tests, n, group_setup, group_teardown);
}

/* ---- the cases ------------------------------------------------------------------------ */

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

const tu_op_case tu_op_cases[] = {
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
const size_t tu_op_ncases = sizeof tu_op_cases / sizeof tu_op_cases[0];

/* ---- how each op is built and what it should compute ---------------------------------- */

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
                                    const tu_op_params *p, weft_value *out)                \
    {                                                                                     \
        (void)nin, (void)p;                                                               \
        return BUILD;                                                                     \
    }                                                                                     \
    static int ref_##name(const tu_ref *in, size_t nin, const tu_op_params *p, tu_ref *out) \
    {                                                                                     \
        (void)nin, (void)p;                                                               \
        return REF;                                                                       \
    }
#define BINARY_IMPL(name)                                                                 \
    OP_IMPL(name, weft_op_##name(g, in[0], in[nin > 1], out),                             \
            tu_ref_binary(&in[0], &in[nin > 1], f_##name, out))
#define UNARY_IMPL(name, BUILD) OP_IMPL(name, BUILD, tu_ref_unary(&in[0], f_##name, p->s, out))

/* concat: operands in[i % nin] for i < repeat (or nin) */
static size_t concat_operands(size_t nin, const tu_op_params *p)
{
    return p->repeat > 0 ? (size_t)p->repeat : nin;
}
static weft_status concat_build(weft_tgraph *g, const weft_value *in, size_t nin,
                                const tu_op_params *p, weft_value *out)
{
    weft_value v[8];
    size_t n = concat_operands(nin, p);
    for (size_t i = 0; i < n; i++)
        v[i] = in[i % nin];
    return weft_op_concat(g, n, v, p->axis, out);
}
static int concat_ref(const tu_ref *in, size_t nin, const tu_op_params *p, tu_ref *out)
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
static int mag_matmul(const tu_ref *in, size_t nin, const tu_op_params *p, tu_ref *out)
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
const tu_op_impl tu_op_impls[] = {
    {"matmul", build_matmul, ref_matmul, mag_matmul}, IMPL(add), IMPL(sub), IMPL(mul), IMPL(div), IMPL(neg), IMPL(exp),
    IMPL(log), IMPL(sqrt), IMPL(sigmoid), IMPL(tanh), IMPL(relu), IMPL(pow), IMPL(scale),
    IMPL(sum), IMPL(mean), IMPL(argmax), IMPL(softmax), IMPL(log_softmax),
    IMPL(softmax_xent), IMPL(mse), IMPL(reshape), IMPL(transpose), IMPL(concat),
    IMPL(slice), IMPL(gather), IMPL(assign), IMPL(assign_sub),
};
const size_t tu_op_nimpls = sizeof tu_op_impls / sizeof tu_op_impls[0];

const tu_op_impl *tu_op_impl_of(const char *name)
{
    for (size_t i = 0; i < tu_op_nimpls; i++)
        if (!strcmp(tu_op_impls[i].name, name))
            return &tu_op_impls[i];
    return NULL;
}

/* "add f64 [3,1,4] [5,1]" plus the parameters the op reads. */
const char *tu_op_case_name(const tu_op_case *c, weft_dtype dt, char *buf, size_t cap)
{
    size_t len = (size_t)snprintf(buf, cap, "%s %s", c->op, weft_dtype_name(dt));
    for (size_t i = 0; i < c->nin && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, " [%s]", c->in[i].shape);
    const tu_op_params *p = &c->p;
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

/* ---- the inputs' values ---------------------------------------------------------------- */

/* The inputs' values: deterministic per case and input, representable in f32 so that the
 * f32 and f64 runs (and the f32-vs-f64 gradient comparison) see the same numbers. */
int tu_op_gen_input(const tu_op_input *s, uint64_t seed, tu_ref *x, int *open)
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

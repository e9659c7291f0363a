/* ops/internal.h - the op table: one entry per op, and the interface its entries use.
 *
 * An entry (wf_op_def) holds everything about one op: its name, arity, shape rule,
 * forward kernel, backward builder, cost estimate and flags. Its code sits in one family
 * file (elementwise.c, matmul.c, reduce.c, softmax.c, shape.c, ...). Adding an op means
 * one line in WF_OP_LIST below and one entry in a family file.
 *
 * Layering: ops/ knows tensors as (dtype, shape, pointer) descriptions and the pool only
 * through weft_parallel_for. It does not know the graph: a backward builder emits the
 * gradient ops through the emit callback that graph/ hands it (wf_grad_ctx).
 */
#ifndef WEFT_OPS_INTERNAL_H
#define WEFT_OPS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "weft/ops.h"
#include "weft/parallel.h"
#include "weft/pool.h"
#include "weft/status.h"
#include "weft/tensor.h"

/* ---- the op list ---------------------------------------------------------------------
 * X(ENUM, name): WF_OP_<ENUM> and the entry wf_op_def_<name>, defined in a family file.
 * Leaves (placeholder, variable, constant) are ops without kernels. Ops whose name ends
 * in _grad are the fused gradient kernels that backward builders emit. */
#define WF_OP_LIST(X)                                                                  \
    /* leaves: graph/ */                                                               \
    X(PLACEHOLDER, placeholder) X(VARIABLE, variable) X(CONSTANT, constant)            \
    /* matmul.c */                                                                     \
    X(MATMUL, matmul) X(MATMUL_ACC, matmul_acc)                                        \
    /* elementwise.c */                                                                \
    X(ADD, add) X(SUB, sub) X(MUL, mul) X(DIV, div)                                    \
    X(NEG, neg) X(EXP, exp) X(LOG, log) X(SQRT, sqrt) X(SIGMOID, sigmoid)              \
    X(TANH, tanh) X(RELU, relu) X(POW, pow) X(SCALE, scale) X(FILL_LIKE, fill_like)    \
    X(SIGMOID_GRAD, sigmoid_grad) X(TANH_GRAD, tanh_grad) X(RELU_GRAD, relu_grad)      \
    /* broadcast.c */                                                                  \
    X(BROADCAST_LIKE, broadcast_like) X(SUM_LIKE, sum_like)                            \
    /* reduce.c */                                                                     \
    X(SUM, sum) X(MEAN, mean) X(ARGMAX, argmax)                                        \
    /* softmax.c */                                                                    \
    X(SOFTMAX, softmax) X(LOG_SOFTMAX, log_softmax) X(SOFTMAX_GRAD, softmax_grad)      \
    X(LOG_SOFTMAX_GRAD, log_softmax_grad) X(SOFTMAX_XENT, softmax_xent)                \
    X(SOFTMAX_XENT_GRAD, softmax_xent_grad) X(MSE, mse) X(MSE_GRAD, mse_grad)          \
    /* shape.c */                                                                      \
    X(RESHAPE, reshape) X(RESHAPE_LIKE, reshape_like) X(TRANSPOSE, transpose)          \
    X(CONCAT, concat) X(SLICE, slice) X(SLICE_GRAD, slice_grad)                        \
    X(GATHER, gather) X(GATHER_GRAD, gather_grad)                                      \
    /* update.c */                                                                     \
    X(ASSIGN, assign) X(ASSIGN_SUB, assign_sub) X(ASSIGN_ADD, assign_add)              \
    /* optim.c */                                                                      \
    X(OPTIM_UPDATE, optim_update) X(OPTIM_UPDATE_MM, optim_update_mm)

typedef enum wf_op_id {
#define WF_OP_ENUM_(e, n) WF_OP_##e,
    WF_OP_LIST(WF_OP_ENUM_)
#undef WF_OP_ENUM_
    WF_OP_COUNT
} wf_op_id;

/* ---- shapes and tensor descriptions --------------------------------------------------- */

/* A shape; d[i] == -1 (WEFT_DIM_ANY) is a dimension not known before a run. Scalars have
 * ndim 0. */
typedef struct wf_shape {
    int ndim;
    int64_t d[WEFT_MAX_DIMS];
} wf_shape;

typedef struct wf_desc {
    weft_dtype dtype;
    wf_shape shape;
} wf_desc;

/* A tensor as a kernel sees it: description + data (row-major, contiguous). */
typedef struct wf_tref {
    weft_dtype dtype;
    wf_shape shape;
    void *data;
} wf_tref;

/* Attributes of a node; each op reads the fields it documents, the rest stay zero. */
typedef struct wf_attrs {
    int axis;           /* sum, mean, concat, slice: the axis (normalised, >= 0), or
                           WEFT_AXIS_ALL */
    int keepdims;       /* sum, mean */
    unsigned flags;     /* matmul, matmul_acc, optim_update_mm: WEFT_TRANS_A | WEFT_TRANS_B */
    double scalar;      /* pow: exponent; scale: factor; fill_like: value */
    int64_t begin, end; /* slice, slice_grad: the range on axis */
    int perm[WEFT_MAX_DIMS]; /* transpose */
    wf_shape shape;     /* reshape: the requested shape (-1 = inferred) */
    void *slot;         /* optim_update(_mm): the parameter's wf_optim_slot */
} wf_attrs;


/* ---- helpers (ops/common.c) ----------------------------------------------------------- */

size_t wf_shape_numel(const wf_shape *s); /* -1 dims count as 1 */
int wf_shape_known(const wf_shape *s);    /* 1 if no dimension is -1 */
int wf_shape_equal(const wf_shape *a, const wf_shape *b);
/* "[4,3]", "[?,784]", "[]" into buf (always NUL-terminated); returns buf. */
char *wf_shape_str(const wf_shape *s, char *buf, size_t cap);
/* NumPy broadcasting of a and b into *out. Dims -1 combine as unknown (with 1 or -1) or
 * take the other's known size. Returns 0, or -1 if a known pair differs and neither is 1.
 */
int wf_shape_broadcast(const wf_shape *a, const wf_shape *b, wf_shape *out);
/* Normalises axis against ndim (negative counts from the end); -1 if out of range. */
int wf_axis_norm(int axis, int ndim);
/* Records "<op>: <what>: [a] <sep> [b]" (b may be NULL) and returns
 * WEFT_ERR_INVALID_ARG. */
weft_status wf_op_shape_error(const char *op, const char *what, const wf_shape *a,
                              const char *sep, const wf_shape *b);
/* "<op>: <what>" with a printf format; WEFT_ERR_INVALID_ARG. */
weft_status wf_op_error(const char *op, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int wf_dtype_is_float(weft_dtype t);

/* ---- kernels ------------------------------------------------------------------------ */

/* Scratch memory of one node, kept from run to run (so that a plan's later runs
 * allocate nothing). Owned by whoever owns the node; released with wf_scratch_free. */
typedef struct wf_scratch {
    void *data;
    size_t cap;
} wf_scratch;

/* What a forward kernel gets. in[i] and out have concrete shapes; out->data is allocated
 * (numel * dtype size bytes) and may be written freely. pool may be NULL (then split work
 * runs on the calling thread). A kernel returns 0, or a WEFT_ERR_* status for a failure
 * that depends on the data (an id out of range: WEFT_ERR_RANGE), after recording the
 * message with wf_error naming the op. */
typedef struct wf_kernel_ctx {
    wf_scratch *scratch; /* never NULL */
    weft_pool *pool;
    const wf_attrs *attrs;
    size_t nin;
    const wf_tref *in;
    wf_tref *out;
    int check_numerics; /* the plan's check mode: a kernel that changes state in place
                           (optim_update_mm) checks what it applies first */
} wf_kernel_ctx;

typedef int (*wf_kernel_fn)(const wf_kernel_ctx *ctx);

/* Scratch for a kernel: at least `bytes` bytes, 64-byte aligned, contents undefined,
 * valid until the kernel returns; it grows only when a run needs more than any run
 * before (never allocate per run in a kernel: plans promise no allocation after the
 * first run). NULL after wf_error(WEFT_ERR_NOMEM) when it cannot grow; the kernel then
 * returns WEFT_ERR_NOMEM. */
void *wf_kernel_scratch(const wf_kernel_ctx *ctx, size_t bytes);
void wf_scratch_free(wf_scratch *s);

/* Splits [0, n) into chunks of `grain` (boundaries depend only on n and grain) and runs
 * body on them, in parallel on ctx->pool when there is more than one chunk. Returns 0,
 * or the non-zero value of the first failing body with its message (recorded with
 * wf_error on whichever thread ran it) as the calling thread's last error. */
int wf_kernel_parallel(const wf_kernel_ctx *ctx, size_t n, size_t grain, weft_range_fn body,
                       void *arg);

/* Elements per chunk for elementwise loops and reductions: fixed, so that results do not
 * depend on the thread count. */
#define WF_ELEM_GRAIN ((size_t)32768)

/* ---- shape rules ---------------------------------------------------------------------- */

/* Checks the inputs (dtypes, shapes, attributes) and writes the output description.
 * attrs may be normalised in place (e.g. a negative axis). Runs at build time (dims may
 * be -1) and again at run time with concrete shapes. On a mismatch returns
 * WEFT_ERR_INVALID_ARG after wf_op_shape_error / wf_op_error. */
typedef weft_status (*wf_shape_fn)(wf_attrs *attrs, size_t nin, const wf_desc *in,
                                   wf_desc *out);

/* ---- cost ------------------------------------------------------------------------------ */

typedef struct wf_cost {
    double flops;
    double bytes; /* read + written */
} wf_cost;

/* Concrete (or build-time, -1 dims taken as 1) shapes. */
typedef wf_cost (*wf_cost_fn)(const wf_attrs *attrs, size_t nin, const wf_desc *in,
                              const wf_desc *out);
struct wf_op_def;
/* Memory of a node beyond its output, for the memory plan's report: scratch the node keeps
 * from run to run, and the bytes of an intermediate value it consumes as it computes it (a
 * fused product), which an unfused graph would hold in a buffer of its own; for a run on
 * `threads` pool threads. */
typedef struct wf_mem {
    size_t scratch, fused;
} wf_mem;
typedef wf_mem (*wf_mem_fn)(const wf_attrs *attrs, size_t nin, const wf_desc *in,
                            const wf_desc *out, unsigned threads);
/* Ops with a memory hook take at most this many inputs (tests/ops/test_ops.c checks it). */
#define WF_MEM_MAX_INPUTS 4

/* The cost of a node of `def`: def->cost when set, else def->flops_per_elem (1 when 0)
 * flops per element of the larger of input 0 and the output, and the bytes of all the
 * inputs and the output. */
wf_cost wf_op_cost(const struct wf_op_def *def, const wf_attrs *attrs, size_t nin,
                   const wf_desc *in, const wf_desc *out);

/* ---- backward builders ---------------------------------------------------------------- */

#define WF_NO_VALUE 0xffffffffu

/* What a backward builder gets: the forward node (its inputs, output, attrs and
 * descriptions), the gradient of its output (gout, same shape as the output), and which
 * inputs need a gradient. It writes gin[i] (the gradient of input i, with the shape of
 * input i) for each i with needs[i], using only wf_emit to add nodes; gin[i] left at
 * WF_NO_VALUE means a zero gradient (an input read only for its shape). Builders of ops
 * that cannot be differentiated further emit internal ops marked NOT_DIFFERENTIABLE:
 * second-order gradients through them are refused with a message. */
typedef struct wf_grad_ctx {
    const wf_attrs *attrs;
    size_t nin;
    const uint32_t *in;       /* input value ids */
    const wf_desc *in_desc;
    uint32_t out;             /* forward output value id */
    const wf_desc *out_desc;
    uint32_t gout;            /* gradient of out */
    const unsigned char *needs;
    uint32_t *gin;            /* out: WF_NO_VALUE-initialised */
    /* provided by graph/: adds node op(inputs, attrs) marked as backward */
    weft_status (*emit)(void *builder, wf_op_id op, size_t nin, const uint32_t *inputs,
                        const wf_attrs *attrs, uint32_t *out);
    void *builder;
} wf_grad_ctx;

typedef weft_status (*wf_grad_fn)(wf_grad_ctx *ctx);

/* Conveniences over ctx->emit (attrs may be NULL = all zero). */
weft_status wf_emit1(wf_grad_ctx *ctx, wf_op_id op, uint32_t a, const wf_attrs *attrs,
                     uint32_t *out);
weft_status wf_emit2(wf_grad_ctx *ctx, wf_op_id op, uint32_t a, uint32_t b,
                     const wf_attrs *attrs, uint32_t *out);
weft_status wf_emit3(wf_grad_ctx *ctx, wf_op_id op, uint32_t a, uint32_t b, uint32_t c,
                     const wf_attrs *attrs, uint32_t *out);
/* The gradient g of a broadcast operand with shape `like`: sum_like(g, like) when the
 * shapes differ, g itself otherwise. */
weft_status wf_emit_unbroadcast(wf_grad_ctx *ctx, uint32_t g, uint32_t like_value,
                                const wf_desc *g_desc, const wf_desc *like_desc,
                                uint32_t *out);

/* ---- optimizer slots (ops/optim.c kernels, engine/optim.c owns them) -----------------
 * The state of one parameter. The hyper-parameters are read when the update runs. */
typedef struct wf_optim_hyper {
    int kind; /* weft_optim_kind */
    double lr, momentum, beta1, beta2, eps, weight_decay;
} wf_optim_hyper;

typedef struct wf_optim_slot {
    const wf_optim_hyper *hyper;
    void *m, *v;   /* momentum buffer / Adam moments: the parameter's dtype and size */
    double *t;     /* Adam: steps taken */
    wf_scratch scratch;
} wf_optim_slot;

/* ---- the table ------------------------------------------------------------------------ */

enum {
    WF_OPF_LEAF = 1u << 0,             /* placeholder, variable, constant: no kernel */
    WF_OPF_NOT_DIFFERENTIABLE = 1u << 1,/* no backward builder, on purpose */
    WF_OPF_INPLACE = 1u << 2,          /* the output may share the buffer of any input
                                          with the same dtype and element count: element
                                          i of the output depends only on element i of
                                          such an input (and on other inputs) */
    WF_OPF_UPDATE = 1u << 3,           /* writes its input 0 (a variable) */
    WF_OPF_INTERNAL = 1u << 4,         /* emitted by backward builders, not in weft/ops.h */
    WF_OPF_INPLACE_LAST = 1u << 6,     /* the output may share the buffer of its last
                                          input (same dtype and shape), which it
                                          accumulates into; no other input */
    WF_OPF_VIEW = 1u << 5              /* with as many elements as input 0, the output is
                                          input 0's data unchanged: a plan may hand it
                                          input 0's buffer (the kernel then sees
                                          out->data == in[0].data and does nothing) */
};

typedef struct wf_op_def {
    const char *name;
    unsigned min_inputs, max_inputs; /* max 0 = any number (concat) */
    unsigned flags;
    unsigned shape_only;   /* bit k: input k is read for its shape only, never its data
                              (the memory plan does not keep it alive for this op) */
    wf_shape_fn shape;
    wf_kernel_fn forward;  /* handles every dtype the shape rule accepts */
    wf_grad_fn backward;   /* NULL iff WF_OPF_NOT_DIFFERENTIABLE or WF_OPF_LEAF */
    wf_cost_fn cost;       /* NULL: the default of wf_op_cost */
    double flops_per_elem; /* the default cost's flops per element (0 = 1) */
    wf_mem_fn memory;      /* NULL: no scratch to report, nothing fused */
} wf_op_def;

#define WF_OP_DECL_(e, n) extern const wf_op_def wf_op_def_##n;
WF_OP_LIST(WF_OP_DECL_)
#undef WF_OP_DECL_

/* The entry of op `id` (id < WF_OP_COUNT). */
const wf_op_def *wf_op_get(wf_op_id id);

/* Scans a float output for NaN / Inf; returns the index of the first or -1. */
long wf_find_nonfinite(const wf_tref *t);

#endif

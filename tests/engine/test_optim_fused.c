/* tests/engine/test_optim_fused.c - weft_optim_minimize fuses the update of a variable
 * whose gradient is a product (matmul, or matmul_acc: a product added to a running sum)
 * into one optim_update_mm node, which computes the gradient one output tile at a time
 * into per-chunk blocks and never stores it whole. The promise (ops/matmul.h,
 * ops/optim.c): the numbers are those of the unfused path bit for bit.
 *
 * Each case trains its variables for 3 steps twice, on a 4-thread pool:
 *   - fused: weft_optim_minimize, the plan's targets are the updates; the plan stats
 *     show what was fused (fused_bytes) and the blocks (scratch_bytes, at most the
 *     product's size);
 *   - reference: the gradients fetched from a plan (weft_tgraph_gradients, the matmul
 *     kernel writing the whole product) and applied with weft_optim_step;
 * then the variables and every optimizer state tensor are compared with memcmp.
 *
 * The single-variable cases cover every path of the product (a C loop for tiny products,
 * GEMV for one row, GER for k = 1 in one tile and in row tiles, GEMM on one tile, on a
 * grid of tiles partial at both edges, on a row of column tiles, and k = 1 too large for
 * GER), on more tiles than threads; all four transpose flags of the gradient product
 * (seven forward forms); the addend of matmul_acc (W used twice); SGD, momentum and Adam
 * with weight decay; f32 and f64.
 *
 * Not fused, and still equal to the reference: a variable that is an operand of its own
 * gradient (W @ W: its tiles would read rows already updated), two variables that are
 * each other's operands (A @ B: each update would have to run before the other; the plan
 * must compile), and one gradient shared by two variables (X @ (W1 + W2)). A gradient
 * the caller made and reads stays whole beside the fused update of the same variable.
 * Check mode: a non-finite gradient fails the run with WEFT_ERR_NUMERICS and leaves the
 * variable and its state untouched, as the unfused step does.
 *
 * The test runs with whatever kernels OpenBLAS picks; the equality was also checked with
 * OPENBLAS_CORETYPE=Prescott, Sandybridge, Haswell, Zen and SkylakeX on the development
 * machine (see docs/tensors.md).
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

#include "tests/util/tu_common.h"
#include "tests/util/tu_weft.h"
#include "weft.h"

enum { STEPS = 3, FORMS = 7, MAX_VARS = 2 };

typedef struct fcase {
    int64_t m, n, k;
    const char *path;
} fcase;

/* The product paths of ops/matmul.c, chosen by (m, n, k). */
static const fcase cases[] = {
    {3, 7, 5, "tiny loop"},
    {1, 300, 40, "GEMV (one row)"},
    {50, 70, 1, "GER (k = 1), one tile"},
    {300, 200, 1, "GER (k = 1), 4 row tiles"},
    {100, 60, 64, "GEMM, one tile"},
    {790, 300, 128, "GEMM, 8 x 4 tiles, partial at both edges"},
    {64, 2000, 300, "GEMM, 8 column tiles"},
    {600, 600, 1, "GEMM with k = 1, 8 x 4 tiles"},
};

/* A model: its graph, variables and loss, built the same way for both paths. */
typedef struct model {
    weft_tgraph *g;
    weft_value var[MAX_VARS], loss;
    size_t nvar;
    int has_loss;
} model;

typedef void (*model_fn)(model *md, const void *arg, weft_dtype dt);

static weft_value add_var(model *md, weft_dtype dt, int64_t r, int64_t c, uint64_t seed)
{
    weft_tensor *w = tu_rand_tensor(dt, 2, (const int64_t[]){r, c}, WEFT_INIT_UNIFORM, seed,
                                    -0.5, 0.5);
    weft_value v;
    OK(weft_tgraph_variable(md->g, w, "W", &v));
    weft_tensor_destroy(w);
    md->var[md->nvar++] = v;
    return v;
}

static weft_value add_const(model *md, weft_dtype dt, int64_t r, int64_t c, uint64_t seed)
{
    weft_tensor *t = tu_rand_tensor(dt, 2, (const int64_t[]){r, c}, WEFT_INIT_UNIFORM, seed,
                                    -1, 1);
    weft_value v;
    OK(weft_tgraph_constant(md->g, t, "X", &v));
    weft_tensor_destroy(t);
    return v;
}

/* loss += sum(y * C) for a random constant C of y's shape. */
static void add_loss_term(model *md, weft_value y, weft_dtype dt, uint64_t seed)
{
    int64_t yd[WEFT_MAX_DIMS];
    OK(weft_tgraph_value_info(md->g, y, NULL, NULL, yd));
    weft_value c = add_const(md, dt, yd[0], yd[1], seed), yc, s;
    OK(weft_op_mul(md->g, y, c, &yc));
    OK(weft_op_sum(md->g, yc, WEFT_AXIS_ALL, 0, &s));
    if (md->has_loss)
        OK(weft_op_add(md->g, md->loss, s, &md->loss));
    else
        md->loss = s;
    md->has_loss = 1;
}

/* One variable W [m, n] in a product whose gradient has the transpose flags of `form`:
 * form  forward              gradient of W
 *   0   X[k,m] @ W           X^T G      (TRANS_A)
 *   1   W @ X[n,k]           G X^T      (TRANS_B)
 *   2   X[k,n] @ W^T         G^T X      (TRANS_A)
 *   3   W^T @ X[m,k]         X G^T      (TRANS_B)
 *   4   X[n,k]^T @ W^T       G^T X^T    (TRANS_A | TRANS_B)
 *   5   X[m,k]^T @ W         X G        (no flag)
 *   6   W @ X[k,n]^T         G X        (no flag)
 * `uses` products of W (two make the gradient a matmul_acc). */
typedef struct single_arg {
    const fcase *c;
    int form, uses;
} single_arg;

static void build_single(model *md, const void *arg, weft_dtype dt)
{
    const single_arg *a = arg;
    const fcase *c = a->c;
    static const unsigned flags[FORMS] = {0, 0, WEFT_TRANS_B, WEFT_TRANS_A,
                                          WEFT_TRANS_A | WEFT_TRANS_B, WEFT_TRANS_A,
                                          WEFT_TRANS_B};
    static const int w_first[FORMS] = {0, 1, 0, 1, 0, 0, 1};
    const int64_t xd[FORMS][2] = {{c->k, c->m}, {c->n, c->k}, {c->k, c->n}, {c->m, c->k},
                                  {c->n, c->k}, {c->m, c->k}, {c->k, c->n}};
    weft_value w = add_var(md, dt, c->m, c->n, 7);
    for (int u = 0; u < a->uses; u++) {
        weft_value x = add_const(md, dt, xd[a->form][0], xd[a->form][1], 10 + (uint64_t)u), y;
        const int wf = w_first[a->form];
        OK(weft_op_matmul(md->g, wf ? w : x, wf ? x : w, flags[a->form], &y));
        add_loss_term(md, y, dt, 20 + (uint64_t)u);
    }
}

static weft_optim_options options(weft_optim_kind kind)
{
    weft_optim_options o = weft_optim_options_default(kind);
    o.lr = kind == WEFT_OPTIM_ADAM ? 1e-2 : 1e-3;
    o.weight_decay = 0.01;
    return o;
}

typedef struct result {
    unsigned char *bytes[3 * MAX_VARS + MAX_VARS]; /* variables, then optimizer state */
    size_t len[3 * MAX_VARS + MAX_VARS];
    size_t count;
    size_t fused_bytes, scratch_bytes;
} result;

static void collect(result *r, model *md, weft_optim *opt)
{
    r->count = 0;
    for (size_t i = 0; i < md->nvar; i++) {
        weft_tensor *w;
        OK(weft_tgraph_variable_tensor(md->g, md->var[i], &w));
        r->bytes[r->count] = tu_tensor_copy_bytes(w, &r->len[r->count]);
        r->count++;
    }
    for (size_t i = 0; i < weft_optim_state_count(opt); i++) {
        const char *name;
        weft_tensor *t;
        OK(weft_optim_state(opt, i, &name, &t));
        r->bytes[r->count] = tu_tensor_copy_bytes(t, &r->len[r->count]);
        r->count++;
    }
}

static void result_free(result *r)
{
    for (size_t i = 0; i < r->count; i++)
        free(r->bytes[i]);
}

static weft_plan_options scheduled(void)
{
    weft_plan_options po = weft_plan_options_default();
    po.inline_below_ns = 0; /* scheduled: the tiles run on the pool */
    return po;
}

/* A fresh graph holding the model that build makes, and an optimizer of the given kind. */
static weft_optim *model_and_optim(model *md, model_fn build, const void *arg, weft_dtype dt,
                                   weft_optim_kind kind)
{
    *md = (model){0};
    OK(weft_tgraph_create(&md->g));
    build(md, arg, dt);
    weft_optim_options o = options(kind);
    weft_optim *opt = NULL;
    OK(weft_optim_create(&o, &opt));
    return opt;
}

static void train_fused(weft_pool *pool, model_fn build, const void *arg, weft_dtype dt,
                        weft_optim_kind kind, result *r)
{
    model md;
    weft_optim *opt = model_and_optim(&md, build, arg, dt, kind);
    weft_value upd[MAX_VARS];
    OK(weft_optim_minimize(opt, md.g, md.loss, md.nvar, md.var, upd));
    weft_plan_options po = scheduled();
    weft_plan *plan = NULL;
    OK(weft_plan_create(md.g, pool, 0, NULL, md.nvar, upd, &po, &plan));
    for (int s = 0; s < STEPS; s++)
        OK(weft_plan_run(plan, 0, NULL));
    weft_plan_stats st;
    OK(weft_plan_stats_get(plan, &st));
    r->fused_bytes = st.fused_bytes;
    r->scratch_bytes = st.scratch_bytes;
    collect(r, &md, opt);
    weft_plan_destroy(plan);
    weft_optim_destroy(opt);
    weft_tgraph_destroy(md.g);
}

static void train_reference(weft_pool *pool, model_fn build, const void *arg, weft_dtype dt,
                            weft_optim_kind kind, result *r)
{
    model md;
    weft_optim *opt = model_and_optim(&md, build, arg, dt, kind);
    weft_value grad[MAX_VARS];
    OK(weft_tgraph_gradients(md.g, md.loss, md.nvar, md.var, grad));
    weft_plan_options po = scheduled();
    weft_plan *plan = NULL;
    OK(weft_plan_create(md.g, pool, md.nvar, grad, 0, NULL, &po, &plan));
    weft_tensor *w[MAX_VARS];
    for (size_t i = 0; i < md.nvar; i++)
        OK(weft_tgraph_variable_tensor(md.g, md.var[i], &w[i]));
    for (int s = 0; s < STEPS; s++) {
        OK(weft_plan_run(plan, 0, NULL));
        const weft_tensor *g[MAX_VARS];
        for (size_t i = 0; i < md.nvar; i++)
            OK(weft_plan_fetch(plan, i, &g[i]));
        OK(weft_optim_step(opt, pool, md.nvar, w, g));
    }
    collect(r, &md, opt);
    weft_plan_destroy(plan);
    weft_optim_destroy(opt);
    weft_tgraph_destroy(md.g);
}

/* Trains both ways; 0 if the bytes are equal and fused_bytes is `want_fused` (and the
 * blocks within it), else 1 after printing why. */
static int same_training(weft_pool *pool, model_fn build, const void *arg, weft_dtype dt,
                         weft_optim_kind kind, size_t want_fused, const char *what)
{
    result a = {0}, b = {0};
    train_fused(pool, build, arg, dt, kind, &a);
    train_reference(pool, build, arg, dt, kind, &b);
    int bad = 0;
    if (a.fused_bytes != want_fused) {
        print_error("%s: fused_bytes %zu, want %zu\n", what, a.fused_bytes, want_fused);
        bad = 1;
    } else if ((want_fused == 0) != (a.scratch_bytes == 0) || a.scratch_bytes > want_fused) {
        print_error("%s: gradient blocks of %zu bytes for %zu fused bytes\n", what,
                    a.scratch_bytes, want_fused);
        bad = 1;
    } else if (a.count != b.count) {
        print_error("%s: %zu vs %zu tensors\n", what, a.count, b.count);
        bad = 1;
    }
    for (size_t i = 0; !bad && i < b.count; i++)
        if (a.len[i] != b.len[i] || memcmp(a.bytes[i], b.bytes[i], b.len[i])) {
            print_error("%s: tensor %zu (the variables, then the optimizer state) differs "
                        "from the unfused path\n", what, i);
            bad = 1;
        }
    result_free(&a);
    result_free(&b);
    return bad;
}

static const char *kind_name(weft_optim_kind k)
{
    return k == WEFT_OPTIM_SGD ? "sgd" : k == WEFT_OPTIM_MOMENTUM ? "momentum" : "adam";
}

static int single_case(weft_pool *pool, const fcase *c, int form, int uses, weft_dtype dt,
                       weft_optim_kind kind)
{
    char what[200];
    snprintf(what, sizeof what, "[%lld,%lld] k=%lld (%s), form %d, %s, %s, %s",
             (long long)c->m, (long long)c->n, (long long)c->k, c->path, form,
             uses > 1 ? "matmul_acc" : "matmul", dt == WEFT_F32 ? "f32" : "f64", kind_name(kind));
    single_arg arg = {c, form, uses};
    const size_t product = (size_t)(c->m * c->n) * (dt == WEFT_F32 ? 4 : 8);
    return same_training(pool, build_single, &arg, dt, kind, product, what);
}

static void test_fused_update_equals_unfused_on_every_path(void **state)
{
    (void)state;
    weft_pool *pool = tu_make_pool(4);
    static const weft_optim_kind kinds[] = {WEFT_OPTIM_SGD, WEFT_OPTIM_MOMENTUM, WEFT_OPTIM_ADAM};
    const size_t ncases = sizeof cases / sizeof *cases;
    int bad = 0, runs = 0;
    for (size_t ci = 0; ci < ncases; ci++)
        for (int d = 0; d < 2; d++)
            for (int kk = 0; kk < 3; kk++) {
                /* the forms rotate over the cases so that each path meets several */
                int form = (int)(ci + (size_t)kk + 3 * (size_t)d) % FORMS;
                bad += single_case(pool, &cases[ci], form, 1, d ? WEFT_F64 : WEFT_F32, kinds[kk]);
                runs++;
            }
    print_message("%d cases (%zu product paths x f32/f64 x SGD/momentum/Adam, forms rotating): "
                  "%d differ\n", runs, ncases, bad);
    assert_int_equal(bad, 0);
    weft_pool_destroy(pool);
}

static void test_fused_update_every_form_and_addend(void **state)
{
    (void)state;
    weft_pool *pool = tu_make_pool(4);
    int bad = 0;
    for (int form = 0; form < FORMS; form++)
        for (int uses = 1; uses <= 2; uses++) {
            bad += single_case(pool, &cases[5], form, uses, WEFT_F32, WEFT_OPTIM_MOMENTUM);
            bad += single_case(pool, &cases[0], form, uses, WEFT_F64, WEFT_OPTIM_ADAM);
        }
    /* the addend on the one-row and outer-product paths */
    for (size_t ci = 1; ci <= 3; ci++)
        bad += single_case(pool, &cases[ci], 0, 2, WEFT_F32, WEFT_OPTIM_ADAM);
    assert_int_equal(bad, 0);
    weft_pool_destroy(pool);
}

/* ---- gradients that must not be fused -------------------------------------------------- */

/* loss = sum((W @ W) * C), W [n, n]: W is an operand of its own gradient. */
static void build_self_product(model *md, const void *arg, weft_dtype dt)
{
    const int64_t n = *(const int64_t *)arg;
    weft_value w = add_var(md, dt, n, n, 7), y;
    OK(weft_op_matmul(md->g, w, w, 0, &y));
    add_loss_term(md, y, dt, 20);
}

/* loss = sum((X @ (A @ B)) * C): A and B are each other's operands. */
static void build_low_rank(model *md, const void *arg, weft_dtype dt)
{
    (void)arg;
    weft_value a = add_var(md, dt, 96, 8, 7), b = add_var(md, dt, 8, 80, 8), ab, y;
    weft_value x = add_const(md, dt, 64, 96, 10);
    OK(weft_op_matmul(md->g, a, b, 0, &ab));
    OK(weft_op_matmul(md->g, x, ab, 0, &y));
    add_loss_term(md, y, dt, 20);
}

/* loss = sum((X @ (W1 + W2)) * C): one gradient node for both variables. */
static void build_shared_gradient(model *md, const void *arg, weft_dtype dt)
{
    (void)arg;
    weft_value w1 = add_var(md, dt, 96, 80, 7), w2 = add_var(md, dt, 96, 80, 8), s, y;
    weft_value x = add_const(md, dt, 64, 96, 10);
    OK(weft_op_add(md->g, w1, w2, &s));
    OK(weft_op_matmul(md->g, x, s, 0, &y));
    add_loss_term(md, y, dt, 20);
}

static void test_variable_operands_and_shared_gradients_are_not_fused(void **state)
{
    (void)state;
    weft_pool *pool = tu_make_pool(4);
    int bad = 0;
    const int64_t small = 6, large = 300; /* one tile; many tiles */
    for (int kk = 0; kk < 3; kk++) {
        weft_optim_kind kind = (weft_optim_kind)kk;
        bad += same_training(pool, build_self_product, &small, WEFT_F32, kind, 0, "W @ W, 6x6");
        bad += same_training(pool, build_self_product, &large, WEFT_F64, kind, 0,
                             "W @ W, 300x300");
        bad += same_training(pool, build_low_rank, NULL, WEFT_F32, kind, 0, "X @ (A @ B)");
        bad += same_training(pool, build_shared_gradient, NULL, WEFT_F32, kind, 0,
                             "X @ (W1 + W2)");
    }
    assert_int_equal(bad, 0);
    weft_pool_destroy(pool);
}

/* A gradient the caller made (and reads) stays whole and correct beside the fused update
 * of the same variable: only minimize's own product, read by nothing else, is fused. */
static void test_callers_gradient_stays_whole(void **state)
{
    (void)state;
    weft_pool *pool = tu_make_pool(2);
    model md = {0};
    OK(weft_tgraph_create(&md.g));
    single_arg arg = {&cases[4], 0, 1};
    build_single(&md, &arg, WEFT_F32);
    weft_optim_options o = options(WEFT_OPTIM_MOMENTUM);
    weft_optim *opt = NULL;
    OK(weft_optim_create(&o, &opt));
    weft_value fetch[2], upd;
    OK(weft_tgraph_gradients(md.g, md.loss, 1, md.var, &fetch[0]));
    OK(weft_op_scale(md.g, fetch[0], 2.0, &fetch[1]));
    OK(weft_optim_minimize(opt, md.g, md.loss, 1, md.var, &upd));
    weft_plan_options po = weft_plan_options_default();
    weft_plan *plan = NULL;
    OK(weft_plan_create(md.g, pool, 2, fetch, 1, &upd, &po, &plan));
    OK(weft_plan_run(plan, 0, NULL));
    weft_plan_stats st;
    OK(weft_plan_stats_get(plan, &st));
    assert_int_equal(st.fused_bytes, (size_t)(100 * 60) * sizeof(float));
    const weft_tensor *g, *g2;
    OK(weft_plan_fetch(plan, 0, &g));
    OK(weft_plan_fetch(plan, 1, &g2));
    const float *a = weft_tensor_data_const(g), *b = weft_tensor_data_const(g2);
    int nonzero = 0;
    for (size_t i = 0; i < 100 * 60; i++) {
        assert_true(b[i] == 2.0f * a[i]);
        nonzero += a[i] != 0.0f;
    }
    assert_true(nonzero > 100 * 60 / 2);
    weft_plan_destroy(plan);
    weft_optim_destroy(opt);
    weft_tgraph_destroy(md.g);
    weft_pool_destroy(pool);
}

/* A tensor of `dims` filled with v. */
static weft_tensor *filled(int64_t r, int64_t c, float v)
{
    weft_tensor *t;
    OK(weft_tensor_create(WEFT_F32, 2, (const int64_t[]){r, c}, &t));
    float *d = weft_tensor_data(t);
    for (int64_t i = 0; i < r * c; i++)
        d[i] = v;
    return t;
}

/* Check mode: a gradient that overflows where the forward pass does not fails the run
 * with WEFT_ERR_NUMERICS naming optim_update_mm, and W and its momentum keep their bytes;
 * the next run with finite data succeeds. y = x @ W with x = 1, W = 1e-4 (y = 0.079) and
 * loss = sum(y * c): c = 1e37 in 48 rows of column 123 keeps the loss finite (3.8e36),
 * while dW[i][123] = sum over rows of c = 4.8e38 overflows f32. */
static void test_check_mode_refuses_a_non_finite_gradient(void **state)
{
    (void)state;
    weft_pool *pool = tu_make_pool(4);
    const int64_t m = 790, n = 300, k = 128;
    model md = {0};
    OK(weft_tgraph_create(&md.g));
    weft_value x, c, y, yc;
    OK(weft_tgraph_placeholder(md.g, WEFT_F32, 2, (const int64_t[]){k, m}, "x", &x));
    OK(weft_tgraph_placeholder(md.g, WEFT_F32, 2, (const int64_t[]){k, n}, "c", &c));
    weft_tensor *w0t = filled(m, n, 1e-4f);
    weft_value w;
    OK(weft_tgraph_variable(md.g, w0t, "W", &w));
    weft_tensor_destroy(w0t);
    OK(weft_op_matmul(md.g, x, w, 0, &y)); /* dW = x^T c */
    OK(weft_op_mul(md.g, y, c, &yc));
    OK(weft_op_sum(md.g, yc, WEFT_AXIS_ALL, 0, &md.loss));
    weft_optim_options o = options(WEFT_OPTIM_MOMENTUM);
    weft_optim *opt = NULL;
    OK(weft_optim_create(&o, &opt));
    weft_value upd;
    OK(weft_optim_minimize(opt, md.g, md.loss, 1, &w, &upd));
    weft_plan_options po = scheduled();
    po.check_numerics = 1;
    weft_plan *plan = NULL;
    OK(weft_plan_create(md.g, pool, 0, NULL, 1, &upd, &po, &plan));
    weft_tensor *xt = filled(k, m, 1.0f);
    /* small: the first step moves W by ~1e-5, y stays near 0.079 */
    weft_tensor *ct = tu_rand_tensor(WEFT_F32, 2, (const int64_t[]){k, n}, WEFT_INIT_UNIFORM, 3,
                                     -1e-3, 1e-3);
    weft_feed feed[2] = {{x, xt}, {c, ct}};
    OK(weft_plan_run(plan, 2, feed)); /* a finite step first: the momentum is not zero */
    weft_plan_stats st;
    OK(weft_plan_stats_get(plan, &st));
    assert_int_equal(st.fused_bytes, (size_t)(m * n) * sizeof(float));
    weft_tensor *wt, *mt;
    const char *name;
    OK(weft_tgraph_variable_tensor(md.g, w, &wt));
    OK(weft_optim_state(opt, 0, &name, &mt));
    size_t wlen, mlen;
    unsigned char *w0 = tu_tensor_copy_bytes(wt, &wlen), *m0 = tu_tensor_copy_bytes(mt, &mlen);
    float *cd = weft_tensor_data(ct), saved[48];
    for (int r = 0; r < 48; r++) {
        saved[r] = cd[r * n + 123];
        cd[r * n + 123] = 1e37f;
    }
    FAILS(weft_plan_run(plan, 2, feed), WEFT_ERR_NUMERICS);
    tu_expect_message("check mode", "optim_update_mm", "check numerics", "Inf", ",123]",
                      "not changed", NULL);
    unsigned char *w1 = tu_tensor_copy_bytes(wt, &wlen), *m1 = tu_tensor_copy_bytes(mt, &mlen);
    assert_memory_equal(w0, w1, wlen);
    assert_memory_equal(m0, m1, mlen);
    for (int r = 0; r < 48; r++)
        cd[r * n + 123] = saved[r];
    OK(weft_plan_run(plan, 2, feed));
    free(w0), free(m0), free(w1), free(m1);
    weft_tensor_destroy(xt);
    weft_tensor_destroy(ct);
    weft_plan_destroy(plan);
    weft_optim_destroy(opt);
    weft_tgraph_destroy(md.g);
    weft_pool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fused_update_equals_unfused_on_every_path),
        cmocka_unit_test(test_fused_update_every_form_and_addend),
        cmocka_unit_test(test_variable_operands_and_shared_gradients_are_not_fused),
        cmocka_unit_test(test_callers_gradient_stays_whole),
        cmocka_unit_test(test_check_mode_refuses_a_non_finite_gradient),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

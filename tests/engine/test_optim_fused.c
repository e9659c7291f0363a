/* tests/engine/test_optim_fused.c - weft_optim_minimize fuses the update of a variable
 * whose gradient is a product (matmul, or matmul_acc: a product added to a running sum)
 * into one optim_update_mm node, which computes the gradient in row blocks of each output
 * tile and never stores it whole. The promise (ops/matmul.h, ops/optim.c): the numbers
 * are those of the unfused path bit for bit.
 *
 * Each case trains a variable W [m, n] for 3 steps twice, on a 4-thread pool:
 *   - fused: weft_optim_minimize, the plan's targets are the updates; the plan stats
 *     must show the product fused (fused_bytes = m * n * dtype size);
 *   - reference: the gradient fetched from a plan (weft_tgraph_gradients, the matmul
 *     kernel writing the whole product) and applied with weft_optim_step;
 * then W and every optimizer state tensor are compared with memcmp.
 *
 * The cases cover every path of the product (a C loop for tiny products, GEMV for one
 * row, GER for k = 1, GEMM on one tile, on a grid of tiles partial at both edges, on a
 * row of column tiles, and k = 1 too large for GER), on more tiles than threads, the five gradient forms the matmul backward
 * emits (TRANS_A, TRANS_B, both), the addend of matmul_acc (W used twice), SGD, momentum
 * and Adam with weight decay, f32 and f64.
 *
 * Also: a gradient the caller made and reads stays whole and correct beside the fused
 * update of the same variable, and the fused plan's stats report the gradient blocks
 * (scratch_bytes, above 0 and within twice the product).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/util/tu_common.h"
#include "tests/util/tu_weft.h"
#include "weft.h"

enum { STEPS = 3, FORMS = 5 };

typedef struct fcase {
    int64_t m, n, k;
    const char *path;
} fcase;

/* The product paths of ops/matmul.c, chosen by (m, n, k). */
static const fcase cases[] = {
    {3, 7, 5, "tiny loop"},
    {1, 300, 40, "GEMV (one row)"},
    {50, 70, 1, "GER (k = 1)"},
    {100, 60, 64, "GEMM, one tile"},
    {790, 300, 128, "GEMM, 8 x 4 tiles, partial at both edges"},
    {64, 2000, 300, "GEMM, 8 column tiles"},
    {600, 600, 1, "GEMM with k = 1, 8 x 4 tiles"},
};

typedef struct model {
    weft_tgraph *g;
    weft_value w, loss;
} model;

/* y = a product with W whose gradient has the form `form` (the matmul backward's flags):
 *   0: X[k,m] @ W       dW = X^T G      (TRANS_A)
 *   1: W @ X[n,k]       dW = G X^T      (TRANS_B)
 *   2: X[k,n] @ W^T     dW = G^T X      (TRANS_A)
 *   3: W^T @ X[m,k]     dW = X G^T      (TRANS_B)
 *   4: X[n,k]^T @ W^T   dW = G^T X^T    (TRANS_A | TRANS_B)
 * and loss = sum(y * C) for a random constant C; `uses` products (W used twice makes the
 * gradient a matmul_acc). */
static void model_build(model *md, const fcase *c, int form, int uses, weft_dtype dt,
                        uint64_t seed)
{
    static const unsigned flags[FORMS] = {0, 0, WEFT_TRANS_B, WEFT_TRANS_A,
                                          WEFT_TRANS_A | WEFT_TRANS_B};
    const int64_t xd[FORMS][2] = {{c->k, c->m}, {c->n, c->k}, {c->k, c->n}, {c->m, c->k},
                                  {c->n, c->k}};
    memset(md, 0, sizeof *md);
    OK(weft_tgraph_create(&md->g));
    weft_tensor *w = tu_rand_tensor(dt, 2, (const int64_t[]){c->m, c->n}, WEFT_INIT_UNIFORM,
                                    seed, -0.5, 0.5);
    OK(weft_tgraph_variable(md->g, w, "W", &md->w));
    weft_tensor_destroy(w);
    for (int u = 0; u < uses; u++) {
        weft_tensor *x = tu_rand_tensor(dt, 2, xd[form], WEFT_INIT_UNIFORM, seed + 10 + u, -1, 1);
        weft_value xv, y, yc, s;
        OK(weft_tgraph_constant(md->g, x, "X", &xv));
        weft_tensor_destroy(x);
        const int w_first = form == 1 || form == 3;
        OK(weft_op_matmul(md->g, w_first ? md->w : xv, w_first ? xv : md->w, flags[form], &y));
        int64_t yd[WEFT_MAX_DIMS];
        OK(weft_tgraph_value_info(md->g, y, NULL, NULL, yd));
        weft_tensor *ct = tu_rand_tensor(dt, 2, yd, WEFT_INIT_UNIFORM, seed + 20 + u, -1, 1);
        weft_value cv;
        OK(weft_tgraph_constant(md->g, ct, "C", &cv));
        weft_tensor_destroy(ct);
        OK(weft_op_mul(md->g, y, cv, &yc));
        OK(weft_op_sum(md->g, yc, WEFT_AXIS_ALL, 0, &s));
        if (u == 0)
            md->loss = s;
        else
            OK(weft_op_add(md->g, md->loss, s, &md->loss));
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
    unsigned char *bytes[4]; /* W, then the optimizer's state tensors */
    size_t len[4];
    size_t count;
    size_t fused_bytes, scratch_bytes;
} result;

static void collect(result *r, model *md, weft_optim *opt)
{
    weft_tensor *w;
    OK(weft_tgraph_variable_tensor(md->g, md->w, &w));
    r->bytes[0] = tu_tensor_copy_bytes(w, &r->len[0]);
    r->count = 1 + weft_optim_state_count(opt);
    assert_true(r->count <= 4);
    for (size_t i = 1; i < r->count; i++) {
        const char *name;
        weft_tensor *t;
        OK(weft_optim_state(opt, i - 1, &name, &t));
        r->bytes[i] = tu_tensor_copy_bytes(t, &r->len[i]);
    }
}

static void result_free(result *r)
{
    for (size_t i = 0; i < r->count; i++)
        free(r->bytes[i]);
}

static void train_fused(weft_pool *pool, const fcase *c, int form, int uses, weft_dtype dt,
                        weft_optim_kind kind, result *r)
{
    model md;
    model_build(&md, c, form, uses, dt, 7);
    weft_optim_options o = options(kind);
    weft_optim *opt = NULL;
    OK(weft_optim_create(&o, &opt));
    weft_value upd;
    OK(weft_optim_minimize(opt, md.g, md.loss, 1, &md.w, &upd));
    weft_plan_options po = weft_plan_options_default();
    po.inline_below_ns = 0; /* scheduled: the tiles run on the pool */
    weft_plan *plan = NULL;
    OK(weft_plan_create(md.g, pool, 0, NULL, 1, &upd, &po, &plan));
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

static void train_reference(weft_pool *pool, const fcase *c, int form, int uses,
                            weft_dtype dt, weft_optim_kind kind, result *r)
{
    model md;
    model_build(&md, c, form, uses, dt, 7);
    weft_optim_options o = options(kind);
    weft_optim *opt = NULL;
    OK(weft_optim_create(&o, &opt));
    weft_value grad;
    OK(weft_tgraph_gradients(md.g, md.loss, 1, &md.w, &grad));
    weft_plan_options po = weft_plan_options_default();
    po.inline_below_ns = 0;
    weft_plan *plan = NULL;
    OK(weft_plan_create(md.g, pool, 1, &grad, 0, NULL, &po, &plan));
    weft_tensor *w;
    OK(weft_tgraph_variable_tensor(md.g, md.w, &w));
    for (int s = 0; s < STEPS; s++) {
        OK(weft_plan_run(plan, 0, NULL));
        const weft_tensor *g;
        OK(weft_plan_fetch(plan, 0, &g));
        OK(weft_optim_step(opt, pool, 1, &w, &g));
    }
    collect(r, &md, opt);
    weft_plan_destroy(plan);
    weft_optim_destroy(opt);
    weft_tgraph_destroy(md.g);
}

static int compare(const fcase *c, int form, int uses, weft_dtype dt, weft_optim_kind kind,
                   const result *fused, const result *ref)
{
    char what[200];
    snprintf(what, sizeof what, "[%lld,%lld] k=%lld (%s), form %d, %s, %s, %s",
             (long long)c->m, (long long)c->n, (long long)c->k, c->path, form,
             uses > 1 ? "matmul_acc" : "matmul", dt == WEFT_F32 ? "f32" : "f64",
             kind == WEFT_OPTIM_SGD ? "sgd" : kind == WEFT_OPTIM_MOMENTUM ? "momentum" : "adam");
    const size_t product = (size_t)(c->m * c->n) * (dt == WEFT_F32 ? 4 : 8);
    if (fused->fused_bytes != product) {
        print_error("%s: not fused (fused_bytes %zu, want %zu)\n", what, fused->fused_bytes,
                    product);
        return 1;
    }
    if (fused->scratch_bytes == 0 || fused->scratch_bytes > 2 * product) {
        print_error("%s: gradient blocks of %zu bytes for a %zu-byte product\n", what,
                    fused->scratch_bytes, product);
        return 1;
    }
    if (fused->count != ref->count)
        return print_error("%s: %zu vs %zu tensors\n", what, fused->count, ref->count), 1;
    for (size_t i = 0; i < ref->count; i++)
        if (fused->len[i] != ref->len[i] || memcmp(fused->bytes[i], ref->bytes[i], ref->len[i])) {
            print_error("%s: %s differs from the unfused path\n", what,
                        i ? "optimizer state" : "W");
            return 1;
        }
    return 0;
}

static int run_case(weft_pool *pool, const fcase *c, int form, int uses, weft_dtype dt,
                    weft_optim_kind kind)
{
    result a = {0}, b = {0};
    train_fused(pool, c, form, uses, dt, kind, &a);
    train_reference(pool, c, form, uses, dt, kind, &b);
    int bad = compare(c, form, uses, dt, kind, &a, &b);
    result_free(&a);
    result_free(&b);
    return bad;
}

static void test_fused_update_equals_unfused_on_every_path(void **state)
{
    (void)state;
    weft_pool *pool = tu_make_pool(4);
    static const weft_optim_kind kinds[] = {WEFT_OPTIM_SGD, WEFT_OPTIM_MOMENTUM, WEFT_OPTIM_ADAM};
    int bad = 0, runs = 0;
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++)
        for (int d = 0; d < 2; d++)
            for (int kk = 0; kk < 3; kk++) {
                /* the forms rotate over the cases so that each path meets several */
                int form = (int)(ci + (size_t)kk + (size_t)d) % FORMS;
                bad += run_case(pool, &cases[ci], form, 1, d ? WEFT_F64 : WEFT_F32, kinds[kk]);
                runs++;
            }
    print_message("%d cases (7 product paths x f32/f64 x SGD/momentum/Adam, forms rotating): "
                  "%d differ\n", runs, bad);
    assert_int_equal(bad, 0);
    weft_pool_destroy(pool);
}

static void test_fused_update_every_form_and_addend(void **state)
{
    (void)state;
    weft_pool *pool = tu_make_pool(4);
    const fcase *gemm = &cases[4], *tiny = &cases[0];
    int bad = 0;
    for (int form = 0; form < FORMS; form++)
        for (int uses = 1; uses <= 2; uses++) {
            bad += run_case(pool, gemm, form, uses, WEFT_F32, WEFT_OPTIM_MOMENTUM);
            bad += run_case(pool, tiny, form, uses, WEFT_F64, WEFT_OPTIM_ADAM);
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
    model md;
    model_build(&md, &cases[3], 0, 1, WEFT_F32, 3);
    weft_optim_options o = options(WEFT_OPTIM_MOMENTUM);
    weft_optim *opt = NULL;
    OK(weft_optim_create(&o, &opt));
    weft_value fetch[2], upd;
    OK(weft_tgraph_gradients(md.g, md.loss, 1, &md.w, &fetch[0]));
    OK(weft_op_scale(md.g, fetch[0], 2.0, &fetch[1]));
    OK(weft_optim_minimize(opt, md.g, md.loss, 1, &md.w, &upd));
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fused_update_equals_unfused_on_every_path),
        cmocka_unit_test(test_fused_update_every_form_and_addend),
        cmocka_unit_test(test_callers_gradient_stays_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

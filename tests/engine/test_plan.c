/* tests/engine/test_plan.c - plans: compiled tensor graphs run many times on the pool.
 *
 * The central promise checked here is determinism: a training step (forward, backward,
 * SGD updates of four variables) whose matmuls and elementwise ops split into several
 * chunks gives the same loss sequence and the same final variable bytes on pools of 1, 2,
 * 4 and 16 threads, in f32 and f64, on the scheduled path (inline_below_ns = 0) and with
 * the default options; one plan pair (1 thread vs 8) is compared fetch by fetch; and a
 * wide graph (16 independent matmul+tanh branches, forward and backward) runs many times
 * on 16 threads, bit for bit equal to the 1-thread result.
 *
 * Also: no allocation after the first run (through the counting allocator hook and the
 * plan's own count; also for kernels that need scratch space), feeds (missing, wrong dtype, wrong shape, an open batch dimension
 * that changes), variable updates ordered after every reader, two plans of one graph,
 * failures that leave pool and plan usable (an id out of range, every allocation of
 * weft_plan_create and of the first run failing in turn), check mode from the
 * environment, and the plan report.
 *
 * cmocka is not thread-safe: nothing here asserts from a worker; every check runs on the
 * main thread after weft_plan_run returned.
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

#include "tests/util/tu_alloc.h"
#include "tests/util/tu_common.h"
#include "tests/util/tu_weft.h"
#include "weft.h"

/* ---- helpers ------------------------------------------------------------------------- */

static weft_plan_options sched_opts(void)
{
    weft_plan_options po = weft_plan_options_default();
    po.inline_below_ns = 0;
    po.check_numerics = 0;
    return po;
}

static weft_value variable_from(weft_tgraph *g, weft_tensor *init, const char *name)
{
    weft_value v;
    OK(weft_tgraph_variable(g, init, name, &v));
    weft_tensor_destroy(init);
    return v;
}

/* A malloc'd copy of the bytes of fetch i; *n receives the byte count. */
static unsigned char *fetch_bytes(weft_plan *plan, size_t i, size_t *n)
{
    const weft_tensor *t = NULL;
    OK(weft_plan_fetch(plan, i, &t));
    return tu_tensor_copy_bytes(t, n);
}

static double fetch_scalar(weft_plan *plan, size_t i)
{
    const weft_tensor *t = NULL;
    OK(weft_plan_fetch(plan, i, &t));
    assert_int_equal(weft_tensor_numel(t), 1);
    double v = 0;
    OK(weft_tensor_get(t, 0, &v));
    return v;
}

static const double *fetch_f64(weft_plan *plan, size_t i, size_t numel)
{
    const weft_tensor *t = NULL;
    OK(weft_plan_fetch(plan, i, &t));
    assert_int_equal(weft_tensor_dtype(t), WEFT_F64);
    assert_int_equal(weft_tensor_numel(t), numel);
    return weft_tensor_data_const(t);
}

static double *var_f64(weft_tgraph *g, weft_value v)
{
    weft_tensor *t = NULL;
    OK(weft_tgraph_variable_tensor(g, v, &t));
    assert_int_equal(weft_tensor_dtype(t), WEFT_F64);
    return weft_tensor_data(t);
}

static void close_to(double got, double want, double tol, const char *what, size_t i)
{
    if (!(fabs(got - want) <= tol * fmax(1.0, fabs(want))))
        print_error("%s[%zu]: %.17g, want %.17g\n", what, i, got, want);
    assert_true(fabs(got - want) <= tol * fmax(1.0, fabs(want)));
}

/* ---- the MLP training step ------------------------------------------------------------
 * x[B,D] -> matmul W1[D,H] + b1[H] -> tanh -> matmul W2[H,O]      (the "dense" path)
 * z[B,W] * v[W] -> tanh -> mean over axis 1, keepdims -> [B,1]     (the "wide" path)
 * sigmoid(dense + wide) -> mse against y[B,O]; gradients wrt W1, b1, W2, v; each variable
 * -= lr * its gradient (assign_sub). With B = 32, D = 300, H = 256 the products split
 * into row blocks, and B * W = 640000 elements split into ~20 elementwise chunks. */

enum { NVAR = 4 };

typedef struct mlp_cfg {
    weft_dtype dt;
    int64_t B, D, H, O, W;
    int open_batch; /* placeholders with a WEFT_DIM_ANY batch dimension */
    double lr;
} mlp_cfg;

typedef struct mlp {
    weft_tgraph *g;
    weft_value x, z, y;
    weft_value var[NVAR];
    weft_value loss, grads[NVAR], upd[NVAR];
} mlp;

static void mlp_build(mlp *m, const mlp_cfg *c)
{
    memset(m, 0, sizeof *m);
    OK(weft_tgraph_create(&m->g));
    weft_tgraph *g = m->g;
    int64_t b = c->open_batch ? WEFT_DIM_ANY : c->B;
    OK(weft_tgraph_placeholder(g, c->dt, 2, (int64_t[]){b, c->D}, "x", &m->x));
    OK(weft_tgraph_placeholder(g, c->dt, 2, (int64_t[]){b, c->W}, "z", &m->z));
    OK(weft_tgraph_placeholder(g, c->dt, 2, (int64_t[]){b, c->O}, "y", &m->y));
    m->var[0] = variable_from(
        g, tu_rand_tensor(c->dt, 2, (int64_t[]){c->D, c->H}, WEFT_INIT_XAVIER, 101, 0, 0), "W1");
    m->var[1] = variable_from(
        g, tu_rand_tensor(c->dt, 1, (int64_t[]){c->H}, WEFT_INIT_UNIFORM, 102, -0.1, 0.1), "b1");
    m->var[2] = variable_from(
        g, tu_rand_tensor(c->dt, 2, (int64_t[]){c->H, c->O}, WEFT_INIT_XAVIER, 103, 0, 0), "W2");
    m->var[3] = variable_from(
        g, tu_rand_tensor(c->dt, 1, (int64_t[]){c->W}, WEFT_INIT_UNIFORM, 104, -1, 1), "v");
    weft_value a1, z1, h, o, zv, t, s, o2, p;
    OK(weft_op_matmul(g, m->x, m->var[0], 0, &a1));
    OK(weft_op_add(g, a1, m->var[1], &z1));
    OK(weft_op_tanh(g, z1, &h));
    OK(weft_op_matmul(g, h, m->var[2], 0, &o));
    OK(weft_op_mul(g, m->z, m->var[3], &zv));
    OK(weft_op_tanh(g, zv, &t));
    OK(weft_op_mean(g, t, 1, 1, &s));
    OK(weft_op_add(g, o, s, &o2));
    OK(weft_op_sigmoid(g, o2, &p));
    OK(weft_op_mse(g, p, m->y, &m->loss));
    OK(weft_tgraph_gradients(g, m->loss, NVAR, m->var, m->grads));
    for (int i = 0; i < NVAR; i++) {
        weft_value step;
        OK(weft_op_scale(g, m->grads[i], c->lr, &step));
        OK(weft_op_assign_sub(g, m->var[i], step, &m->upd[i]));
    }
}

typedef struct mlp_feeds {
    weft_tensor *t[3];
    weft_feed f[3];
} mlp_feeds;

static void mlp_feeds_make(mlp_feeds *f, const mlp *m, const mlp_cfg *c, int64_t B,
                           uint64_t seed)
{
    f->t[0] = tu_rand_tensor(c->dt, 2, (int64_t[]){B, c->D}, WEFT_INIT_UNIFORM, seed, -1, 1);
    f->t[1] = tu_rand_tensor(c->dt, 2, (int64_t[]){B, c->W}, WEFT_INIT_UNIFORM, seed + 1, -2, 2);
    f->t[2] = tu_rand_tensor(c->dt, 2, (int64_t[]){B, c->O}, WEFT_INIT_UNIFORM, seed + 2, 0, 1);
    f->f[0] = (weft_feed){m->x, f->t[0]};
    f->f[1] = (weft_feed){m->z, f->t[1]};
    f->f[2] = (weft_feed){m->y, f->t[2]};
}

static void mlp_feeds_free(mlp_feeds *f)
{
    for (int i = 0; i < 3; i++)
        weft_tensor_destroy(f->t[i]);
}

enum { STEPS = 5 };

typedef struct train_result {
    unsigned char loss[STEPS][8];
    size_t loss_bytes;
    unsigned char *vars[NVAR];
    size_t var_bytes[NVAR];
} train_result;

static void train_result_free(train_result *r)
{
    for (int i = 0; i < NVAR; i++)
        free(r->vars[i]);
}

/* STEPS training steps of a fresh MLP on a fresh pool of `threads`. */
/* Trains on a pool of `threads` (on a synthetic topology when topo != NULL); with
 * placed != NULL, reports the plan's placed_tasks after the steps. */
static void train_on(const mlp_cfg *c, unsigned threads, const char *topo,
                     const weft_plan_options *po, train_result *r, size_t *placed)
{
    memset(r, 0, sizeof *r);
    weft_pool_options o = weft_pool_options_default();
    o.threads = threads;
    o.topology = topo;
    weft_pool *pool = NULL;
    OK(weft_pool_create(&o, &pool));
    mlp m;
    mlp_build(&m, c);
    mlp_feeds f;
    mlp_feeds_make(&f, &m, c, c->B, 7);
    weft_plan *plan = NULL;
    OK(weft_plan_create(m.g, pool, 1, &m.loss, NVAR, m.upd, po, &plan));
    for (int s = 0; s < STEPS; s++) {
        OK(weft_plan_run(plan, 3, f.f));
        size_t n = 0;
        unsigned char *l = fetch_bytes(plan, 0, &n);
        assert_true(n <= 8);
        memcpy(r->loss[s], l, n);
        r->loss_bytes = n;
        free(l);
    }
    for (int i = 0; i < NVAR; i++) {
        weft_tensor *t = NULL;
        OK(weft_tgraph_variable_tensor(m.g, m.var[i], &t));
        r->var_bytes[i] = tu_tensor_bytes(t);
        r->vars[i] = malloc(r->var_bytes[i]);
        assert_non_null(r->vars[i]);
        memcpy(r->vars[i], weft_tensor_data_const(t), r->var_bytes[i]);
    }
    if (placed) {
        weft_plan_stats st;
        OK(weft_plan_stats_get(plan, &st));
        *placed = st.placed_tasks;
    }
    weft_plan_destroy(plan);
    mlp_feeds_free(&f);
    weft_tgraph_destroy(m.g);
    weft_pool_destroy(pool);
}

static void train(const mlp_cfg *c, unsigned threads, const weft_plan_options *po,
                  train_result *r)
{
    train_on(c, threads, NULL, po, r, NULL);
}

static double loss_value(const train_result *r, int s, weft_dtype dt)
{
    if (dt == WEFT_F32) {
        float v;
        memcpy(&v, r->loss[s], sizeof v);
        return v;
    }
    double v;
    memcpy(&v, r->loss[s], sizeof v);
    return v;
}

static void same_training(const train_result *a, const train_result *b, weft_dtype dt,
                          const char *what)
{
    assert_int_equal(a->loss_bytes, b->loss_bytes);
    for (int s = 0; s < STEPS; s++)
        if (memcmp(a->loss[s], b->loss[s], a->loss_bytes) != 0) {
            print_error("%s: loss of step %d differs: %.17g vs %.17g\n", what, s,
                        loss_value(a, s, dt), loss_value(b, s, dt));
            fail();
        }
    for (int i = 0; i < NVAR; i++) {
        assert_int_equal(a->var_bytes[i], b->var_bytes[i]);
        if (memcmp(a->vars[i], b->vars[i], a->var_bytes[i]) != 0) {
            print_error("%s: final bytes of variable %d differ\n", what, i);
            fail();
        }
    }
}

static mlp_cfg big_cfg(weft_dtype dt)
{
    return (mlp_cfg){.dt = dt, .B = 32, .D = 300, .H = 256, .O = 16,
                     .W = TU_SCALE(20000, 4000), .open_batch = 0, .lr = 0.5};
}

static void test_plan_training_is_deterministic_across_thread_counts(void **state)
{
    (void)state;
    static const unsigned threads[] = {2, 4, 16};
    weft_dtype dts[2] = {WEFT_F32, WEFT_F64};
    for (int d = 0; d < 2; d++) {
        mlp_cfg c = big_cfg(dts[d]);
        weft_plan_options po = sched_opts();
        train_result ref, other;
        train(&c, 1, &po, &ref);
        double l0 = loss_value(&ref, 0, c.dt), l4 = loss_value(&ref, STEPS - 1, c.dt);
        print_message("%s: loss %.6g -> %.6g over %d steps\n", weft_dtype_name(c.dt), l0, l4,
                      STEPS);
        assert_true(isfinite(l0) && isfinite(l4));
        assert_true(l4 < l0); /* the updates do train */
        for (size_t k = 0; k < sizeof threads / sizeof threads[0]; k++) {
            char what[64];
            snprintf(what, sizeof what, "%s, %u threads vs 1", weft_dtype_name(c.dt),
                     threads[k]);
            train(&c, threads[k], &po, &other);
            same_training(&ref, &other, c.dt, what);
            train_result_free(&other);
        }
        /* default options (inline below the threshold; this plan is above it) */
        weft_plan_options def = weft_plan_options_default();
        train(&c, 4, &def, &other);
        same_training(&ref, &other, c.dt, "default options, 4 threads vs 1");
        train_result_free(&other);
        train(&c, 2, NULL, &other);
        same_training(&ref, &other, c.dt, "NULL options, 2 threads vs 1");
        train_result_free(&other);
        train_result_free(&ref);
    }
}

/* On a pool spanning two NUMA groups (synthetic topology), buffers are allocated by the
 * worker that first runs each node, on its group, and every task is then pinned to that
 * group: the results stay bit-identical to a one-thread run. */
static void test_plan_numa_pool_places_buffers_and_matches(void **state)
{
    (void)state;
    mlp_cfg c = big_cfg(WEFT_F32);
    weft_plan_options po = sched_opts();
    train_result ref, other;
    size_t placed = 0, placed_single = 0;
    train(&c, 1, &po, &ref);
    train_on(&c, 4, "pack:2 numa:1 core:2 pu:1", &po, &other, &placed);
    same_training(&ref, &other, c.dt, "2 NUMA groups, 4 threads vs 1");
    train_result_free(&other);
    assert_true(placed > 0);
    train_on(&c, 2, "pack:1 numa:1 core:2 pu:1", &po, &other, &placed_single);
    same_training(&ref, &other, c.dt, "1 NUMA group, 2 threads vs 1");
    assert_int_equal(placed_single, 0); /* nothing to choose between */
    train_result_free(&other);
    train_result_free(&ref);
}

/* One graph, two plans: forward and backward (no updates) on 1 thread and on 8 threads,
 * every fetch compared bit for bit, twice. */
static void test_plan_parallel_equals_sequential(void **state)
{
    (void)state;
    mlp_cfg c = big_cfg(WEFT_F32);
    mlp m;
    mlp_build(&m, &c);
    mlp_feeds f;
    mlp_feeds_make(&f, &m, &c, c.B, 99);
    weft_pool *p1 = tu_make_pool(1), *p8 = tu_make_pool(8);
    weft_value fetch[1 + NVAR] = {m.loss};
    for (int i = 0; i < NVAR; i++)
        fetch[1 + i] = m.grads[i];
    weft_plan_options po = sched_opts();
    weft_plan *a = NULL, *b = NULL;
    OK(weft_plan_create(m.g, p1, 1 + NVAR, fetch, 0, NULL, &po, &a));
    OK(weft_plan_create(m.g, p8, 1 + NVAR, fetch, 0, NULL, &po, &b));
    for (int rep = 0; rep < 2; rep++) {
        OK(weft_plan_run(a, 3, f.f));
        OK(weft_plan_run(b, 3, f.f));
        for (size_t i = 0; i < 1 + NVAR; i++) {
            size_t na = 0, nb = 0;
            unsigned char *xa = fetch_bytes(a, i, &na), *xb = fetch_bytes(b, i, &nb);
            assert_int_equal(na, nb);
            if (memcmp(xa, xb, na) != 0) {
                print_error("fetch %zu differs between 1 and 8 threads (rep %d)\n", i, rep);
                fail();
            }
            free(xa);
            free(xb);
        }
    }
    weft_plan_destroy(a);
    weft_plan_destroy(b);
    weft_pool_destroy(p1);
    weft_pool_destroy(p8);
    mlp_feeds_free(&f);
    weft_tgraph_destroy(m.g);
}

/* ---- the wide graph ---------------------------------------------------------------------
 * 16 independent branches sum(tanh(tanh(x @ W_i) @ U_i)), added into one loss; gradients
 * wrt every W_i and U_i. */

enum { BR = 16 };

typedef struct wide {
    weft_tgraph *g;
    weft_value x, loss;
    weft_value vars[2 * BR], grads[2 * BR];
    weft_tensor *tx;
    weft_feed feed;
} wide;

static void wide_build(wide *w, int64_t B, int64_t D)
{
    memset(w, 0, sizeof *w);
    OK(weft_tgraph_create(&w->g));
    weft_tgraph *g = w->g;
    OK(weft_tgraph_placeholder(g, WEFT_F32, 2, (int64_t[]){B, D}, "x", &w->x));
    for (int i = 0; i < 2 * BR; i++)
        w->vars[i] = variable_from(g, tu_rand_tensor(WEFT_F32, 2, (int64_t[]){D, D},
                                                     WEFT_INIT_XAVIER, 500 + (uint64_t)i, 0, 0),
                                      i < BR ? "W" : "U");
    for (int i = 0; i < BR; i++) {
        weft_value a, h, b, k, l;
        OK(weft_op_matmul(g, w->x, w->vars[i], 0, &a));
        OK(weft_op_tanh(g, a, &h));
        OK(weft_op_matmul(g, h, w->vars[BR + i], 0, &b));
        OK(weft_op_tanh(g, b, &k));
        OK(weft_op_sum(g, k, WEFT_AXIS_ALL, 0, &l));
        if (i == 0)
            w->loss = l;
        else
            OK(weft_op_add(g, w->loss, l, &w->loss));
    }
    OK(weft_tgraph_gradients(g, w->loss, 2 * BR, w->vars, w->grads));
    w->tx = tu_rand_tensor(WEFT_F32, 2, (int64_t[]){B, D}, WEFT_INIT_UNIFORM, 77, -1, 1);
    w->feed = (weft_feed){w->x, w->tx};
}

static void wide_free(wide *w)
{
    weft_tensor_destroy(w->tx);
    weft_tgraph_destroy(w->g);
}

static weft_plan *wide_plan(wide *w, weft_pool *pool)
{
    weft_value fetch[1 + 2 * BR] = {w->loss};
    memcpy(fetch + 1, w->grads, sizeof w->grads);
    weft_plan_options po = sched_opts();
    weft_plan *plan = NULL;
    OK(weft_plan_create(w->g, pool, 1 + 2 * BR, fetch, 0, NULL, &po, &plan));
    return plan;
}

static void test_plan_wide_graph_stress_matches_one_thread(void **state)
{
    (void)state;
    wide w;
    wide_build(&w, 32, 64);
    weft_pool *p1 = tu_make_pool(1), *p16 = tu_make_pool(16);
    weft_plan *ref = wide_plan(&w, p1), *par = wide_plan(&w, p16);
    OK(weft_plan_run(ref, 1, &w.feed));
    unsigned char *want[1 + 2 * BR];
    size_t nbytes[1 + 2 * BR];
    for (size_t i = 0; i < 1 + 2 * BR; i++)
        want[i] = fetch_bytes(ref, i, &nbytes[i]);
    const int reps = TU_SCALE(300, 25);
    int bad_rep = -1;
    size_t bad_fetch = 0;
    for (int r = 0; r < reps && bad_rep < 0; r++) {
        OK(weft_plan_run(par, 1, &w.feed));
        for (size_t i = 0; i < 1 + 2 * BR; i++) {
            const weft_tensor *t = NULL;
            OK(weft_plan_fetch(par, i, &t));
            if (tu_tensor_bytes(t) != nbytes[i] ||
                memcmp(weft_tensor_data_const(t), want[i], nbytes[i]) != 0) {
                bad_rep = r;
                bad_fetch = i;
                break;
            }
        }
    }
    if (bad_rep >= 0)
        print_error("wide graph: fetch %zu differs from the 1-thread result at rep %d\n",
                    bad_fetch, bad_rep);
    assert_int_equal(bad_rep, -1);
    for (size_t i = 0; i < 1 + 2 * BR; i++)
        free(want[i]);
    weft_plan_destroy(ref);
    weft_plan_destroy(par);
    weft_pool_destroy(p1);
    weft_pool_destroy(p16);
    wide_free(&w);
}

/* ---- allocations ------------------------------------------------------------------------ */

static mlp_cfg small_cfg(int open_batch)
{
    return (mlp_cfg){.dt = WEFT_F64, .B = 16, .D = 24, .H = 20, .O = 4, .W = 4096,
                     .open_batch = open_batch, .lr = 0.1};
}

static void test_plan_no_allocation_after_first_run(void **state)
{
    (void)state;
    int bad = 0;
    tu_alloc_install();
    {
        weft_pool *pool = tu_make_pool(4);
        mlp_cfg c = small_cfg(1);
        mlp m;
        mlp_build(&m, &c);
        mlp_feeds f16, f40;
        mlp_feeds_make(&f16, &m, &c, 16, 5);
        mlp_feeds_make(&f40, &m, &c, 40, 6);
        weft_plan_options po = sched_opts();
        weft_plan *plan = NULL;
        OK(weft_plan_create(m.g, pool, 1, &m.loss, NVAR, m.upd, &po, &plan));
        uint64_t a0 = tu_alloc_get().attempts;
        OK(weft_plan_run(plan, 3, f16.f));
        size_t first = tu_plan_allocations(plan);
        print_message("first run: %zu buffer allocations, %llu through the hook\n", first,
                      (unsigned long long)(tu_alloc_get().attempts - a0));
        assert_true(first > 0);
        bad += tu_plan_runs_allocate_nothing(plan, 3, f16.f, 50, "batch 16");
        /* a bigger batch may grow buffers once, then again nothing */
        OK(weft_plan_run(plan, 3, f40.f));
        assert_true(tu_plan_allocations(plan) >= first);
        bad += tu_plan_runs_allocate_nothing(plan, 3, f40.f, 20, "batch 40");
        /* back to the smaller batch: no buffer grows (the shapes are resolved again, which
         * may rebuild bookkeeping once), then again nothing */
        size_t before_shrink = tu_plan_allocations(plan);
        OK(weft_plan_run(plan, 3, f16.f));
        assert_int_equal(tu_plan_allocations(plan), before_shrink);
        bad += tu_plan_runs_allocate_nothing(plan, 3, f16.f, 20, "batch 16 again");
        /* the inline path (default threshold, and a 1-thread pool) is no different */
        weft_plan_destroy(plan);
        weft_plan_options def = weft_plan_options_default();
        def.inline_below_ns = 1e30;
        OK(weft_plan_create(m.g, pool, 1, &m.loss, NVAR, m.upd, &def, &plan));
        OK(weft_plan_run(plan, 3, f16.f));
        bad += tu_plan_runs_allocate_nothing(plan, 3, f16.f, 20, "inline path");
        weft_plan_destroy(plan);
        mlp_feeds_free(&f16);
        mlp_feeds_free(&f40);
        weft_tgraph_destroy(m.g);
        weft_pool_destroy(pool);
    }
    tu_alloc_uninstall_expect_clean("no allocation after the first run");
    assert_int_equal(bad, 0);
}

/* The same promise for ops whose kernels need scratch space beyond their output: the
 * gradient of a broadcast operand summed over several row blocks (sum_like), a gather's
 * gradient over several table blocks (gather_grad), and a sum over all elements with more
 * than a few dozen chunks. Sizes: table [1024, 64] (2 blocks of WF_ELEM_GRAIN elements),
 * q [32, 70000] (69 chunks), u [32, 4096] * bias [4096] (2 row blocks). */
static void test_plan_no_allocation_in_kernels_after_first_run(void **state)
{
    (void)state;
    int bad = 0;
    tu_alloc_install();
    {
        weft_pool *pool = tu_make_pool(3);
        weft_tgraph *g = NULL;
        OK(weft_tgraph_create(&g));
        const int64_t B = 32, Q = 70000, U = 4096;
        weft_value ids, q, u, e, es, tq, qs, ub, tu, us, l1, loss, grads[2];
        OK(weft_tgraph_placeholder(g, WEFT_I32, 2, (int64_t[]){WEFT_DIM_ANY, 8}, "ids", &ids));
        OK(weft_tgraph_placeholder(g, WEFT_F32, 2, (int64_t[]){WEFT_DIM_ANY, Q}, "q", &q));
        OK(weft_tgraph_placeholder(g, WEFT_F32, 2, (int64_t[]){WEFT_DIM_ANY, U}, "u", &u));
        weft_value table = variable_from(
            g, tu_rand_tensor(WEFT_F32, 2, (int64_t[]){1024, 64}, WEFT_INIT_UNIFORM, 1, -1, 1),
            "table");
        weft_value bias = variable_from(
            g, tu_rand_tensor(WEFT_F32, 1, (int64_t[]){U}, WEFT_INIT_UNIFORM, 2, -1, 1), "bias");
        OK(weft_op_gather(g, table, ids, &e));
        OK(weft_op_sum(g, e, WEFT_AXIS_ALL, 0, &es));
        OK(weft_op_tanh(g, q, &tq));
        OK(weft_op_mean(g, tq, WEFT_AXIS_ALL, 0, &qs));
        OK(weft_op_mul(g, u, bias, &ub));
        OK(weft_op_tanh(g, ub, &tu));
        OK(weft_op_sum(g, tu, WEFT_AXIS_ALL, 0, &us));
        OK(weft_op_add(g, es, qs, &l1));
        OK(weft_op_add(g, l1, us, &loss));
        weft_value wrt[2] = {table, bias};
        OK(weft_tgraph_gradients(g, loss, 2, wrt, grads));
        weft_tensor *tq_in =
            tu_rand_tensor(WEFT_F32, 2, (int64_t[]){B, Q}, WEFT_INIT_UNIFORM, 3, -1, 1);
        weft_tensor *tu_in =
            tu_rand_tensor(WEFT_F32, 2, (int64_t[]){B, U}, WEFT_INIT_UNIFORM, 4, -1, 1);
        int32_t idv[32 * 8];
        for (int i = 0; i < 32 * 8; i++)
            idv[i] = (int32_t)((i * 131) % 1024);
        weft_tensor *tids = NULL;
        OK(weft_tensor_from_data(WEFT_I32, 2, (int64_t[]){B, 8}, idv, WEFT_COPY, &tids));
        weft_feed f[3] = {{ids, tids}, {q, tq_in}, {u, tu_in}};
        weft_value fetch[3] = {loss, grads[0], grads[1]};
        weft_plan_options po = sched_opts();
        weft_plan *plan = NULL;
        OK(weft_plan_create(g, pool, 3, fetch, 0, NULL, &po, &plan));
        OK(weft_plan_run(plan, 3, f));
        bad = tu_plan_runs_allocate_nothing(plan, 3, f, TU_SCALE(20, 5), "scratch-using kernels");
        weft_plan_destroy(plan);
        weft_tensor_destroy(tq_in);
        weft_tensor_destroy(tu_in);
        weft_tensor_destroy(tids);
        weft_tgraph_destroy(g);
        weft_pool_destroy(pool);
    }
    tu_alloc_uninstall_expect_clean("no allocation in kernels after the first run");
    assert_int_equal(bad, 0);
}

/* ---- feeds ------------------------------------------------------------------------------- */

/* out = tanh(x @ W + b) for x[rows,3], W[3,2], b[2]; dW of sum(out) = x^T (1 - out^2). */
static void naive_layer(const double *x, size_t rows, const double *W, const double *b,
                        double *out, double *dW)
{
    memset(dW, 0, 6 * sizeof *dW);
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < 2; j++) {
            double a = b[j];
            for (size_t k = 0; k < 3; k++)
                a += x[r * 3 + k] * W[k * 2 + j];
            out[r * 2 + j] = tanh(a);
        }
    for (size_t k = 0; k < 3; k++)
        for (size_t j = 0; j < 2; j++)
            for (size_t r = 0; r < rows; r++)
                dW[k * 2 + j] += x[r * 3 + k] * (1 - out[r * 2 + j] * out[r * 2 + j]);
}

static void test_plan_feeds_are_checked_and_batch_may_change(void **state)
{
    (void)state;
    weft_pool *pool = tu_make_pool(3);
    weft_tgraph *g = NULL;
    OK(weft_tgraph_create(&g));
    weft_value x, y, a, z, out, s, loss, gW;
    OK(weft_tgraph_placeholder(g, WEFT_F64, 2, (int64_t[]){WEFT_DIM_ANY, 3}, "features", &x));
    OK(weft_tgraph_placeholder(g, WEFT_F64, 2, (int64_t[]){WEFT_DIM_ANY, 2}, "targets", &y));
    weft_value W = variable_from(
        g, tu_rand_tensor(WEFT_F64, 2, (int64_t[]){3, 2}, WEFT_INIT_UNIFORM, 3, -1, 1), "W");
    weft_value b = variable_from(
        g, tu_rand_tensor(WEFT_F64, 1, (int64_t[]){2}, WEFT_INIT_UNIFORM, 4, -1, 1), "b");
    OK(weft_op_matmul(g, x, W, 0, &a));
    OK(weft_op_add(g, a, b, &z));
    OK(weft_op_tanh(g, z, &out));
    OK(weft_op_sum(g, out, WEFT_AXIS_ALL, 0, &s));
    OK(weft_op_mse(g, out, y, &loss));
    OK(weft_tgraph_gradients(g, s, 1, &W, &gW));
    weft_plan_options po = sched_opts();
    weft_plan *plan = NULL, *plan2 = NULL;
    weft_value fetch[2] = {out, gW};
    OK(weft_plan_create(g, pool, 2, fetch, 0, NULL, &po, &plan));
    OK(weft_plan_create(g, pool, 1, &loss, 0, NULL, &po, &plan2));
    /* a report before the first run (open dimension estimated) must not break the runs */
    weft_plan_stats st;
    OK(weft_plan_stats_get(plan, &st));

    weft_tensor *x4 = tu_rand_tensor(WEFT_F64, 2, (int64_t[]){4, 3}, WEFT_INIT_UNIFORM, 8, -1, 1);
    weft_tensor *x7 = tu_rand_tensor(WEFT_F64, 2, (int64_t[]){7, 3}, WEFT_INIT_UNIFORM, 9, -1, 1);
    weft_tensor *y5 = tu_rand_tensor(WEFT_F64, 2, (int64_t[]){5, 2}, WEFT_INIT_UNIFORM, 10, -1, 1);
    weft_tensor *x4f = tu_rand_tensor(WEFT_F32, 2, (int64_t[]){4, 3}, WEFT_INIT_UNIFORM, 8, -1, 1);
    weft_tensor *x45 = tu_rand_tensor(WEFT_F64, 2, (int64_t[]){4, 5}, WEFT_INIT_UNIFORM, 8, -1, 1);
    weft_tensor *x12 = tu_rand_tensor(WEFT_F64, 1, (int64_t[]){12}, WEFT_INIT_UNIFORM, 8, -1, 1);

    /* missing feeds */
    tu_expect_status(weft_plan_run(plan, 0, NULL), WEFT_ERR_INVALID_ARG, "no feed");
    tu_expect_message("no feed", "features", "not fed", NULL);
    weft_feed only_x = {x, x4};
    tu_expect_status(weft_plan_run(plan2, 1, &only_x), WEFT_ERR_INVALID_ARG, "targets not fed");
    tu_expect_message("targets not fed", "targets", "not fed", NULL);
    const weft_tensor *ft = NULL;
    tu_expect_status(weft_plan_fetch(plan2, 0, &ft), WEFT_ERR_INVALID_ARG, "fetch after failure");
    /* wrong dtype */
    weft_feed bad = {x, x4f};
    tu_expect_status(weft_plan_run(plan, 1, &bad), WEFT_ERR_INVALID_ARG, "f32 fed to f64");
    tu_expect_message("f32 fed to f64", "features", "f64", "f32", NULL);
    /* wrong shape: both shapes named */
    bad.tensor = x45;
    tu_expect_status(weft_plan_run(plan, 1, &bad), WEFT_ERR_INVALID_ARG, "[4,5] fed to [?,3]");
    tu_expect_message("[4,5] fed to [?,3]", "features", "[?,3]", "[4,5]", NULL);
    bad.tensor = x12;
    tu_expect_status(weft_plan_run(plan, 1, &bad), WEFT_ERR_INVALID_ARG, "[12] fed to [?,3]");
    tu_expect_message("[12] fed to [?,3]", "features", "[?,3]", "[12]", NULL);
    /* a value that is not a placeholder */
    weft_feed not_ph = {W, x4};
    tu_expect_status(weft_plan_run(plan, 1, &not_ph), WEFT_ERR_INVALID_ARG, "feed a variable");
    /* open dimensions that disagree at run time: the op that sees them says so */
    weft_feed mismatched[2] = {{x, x4}, {y, y5}};
    tu_expect_status(weft_plan_run(plan2, 2, mismatched), WEFT_ERR_INVALID_ARG, "4 vs 5 rows");
    tu_expect_message("4 vs 5 rows", "mse", NULL);

    /* the open batch dimension: 4, 7, 4 rows, each against the naive reference */
    weft_tensor *seq[3] = {x4, x7, x4};
    const double *Wd = var_f64(g, W), *bd = var_f64(g, b);
    for (int k = 0; k < 3; k++) {
        size_t rows = (size_t)weft_tensor_dim(seq[k], 0);
        weft_feed fx = {x, seq[k]};
        OK(weft_plan_run(plan, 1, &fx));
        const weft_tensor *o = NULL;
        OK(weft_plan_fetch(plan, 0, &o));
        assert_int_equal(weft_tensor_ndim(o), 2);
        assert_int_equal(weft_tensor_dim(o, 0), (int64_t)rows);
        assert_int_equal(weft_tensor_dim(o, 1), 2);
        double want[14], wdW[6];
        naive_layer(weft_tensor_data_const(seq[k]), rows, Wd, bd, want, wdW);
        const double *got = fetch_f64(plan, 0, rows * 2), *gdW = fetch_f64(plan, 1, 6);
        for (size_t i = 0; i < rows * 2; i++)
            close_to(got[i], want[i], 1e-12, "out", i);
        for (size_t i = 0; i < 6; i++)
            close_to(gdW[i], wdW[i], 1e-12, "dW", i);
    }
    /* and the second plan, with both placeholders at 7 rows */
    weft_tensor *y7 = tu_rand_tensor(WEFT_F64, 2, (int64_t[]){7, 2}, WEFT_INIT_UNIFORM, 11, -1, 1);
    weft_feed both[2] = {{y, y7}, {x, x7}}; /* any order */
    OK(weft_plan_run(plan2, 2, both));
    double want[14], wdW[6];
    naive_layer(weft_tensor_data_const(x7), 7, Wd, bd, want, wdW);
    const double *yv = weft_tensor_data_const(y7);
    double mse = 0;
    for (size_t i = 0; i < 14; i++)
        mse += (want[i] - yv[i]) * (want[i] - yv[i]);
    close_to(fetch_scalar(plan2, 0), mse / 14, 1e-12, "mse", 0);

    weft_tensor *all[] = {x4, x7, y5, x4f, x45, x12, y7};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        weft_tensor_destroy(all[i]);
    weft_plan_destroy(plan);
    weft_plan_destroy(plan2);
    weft_tgraph_destroy(g);
    weft_pool_destroy(pool);
}

/* ---- variable updates --------------------------------------------------------------------- */

enum { UR = 20000 }; /* rows of the slow reader */

typedef struct upd_graph {
    weft_tgraph *g;
    weft_value x, big, d, d2, w;
    weft_value a, b, c, upd, set;
} upd_graph;

/* w[4]; readers a = x * w, b = exp(w), c = sum over rows of tanh(big * w) (slow: 80000
 * elements); upd = assign_sub(w, d), set = assign(w, d2) with d, d2 fed. The readers
 * reach the update only through the WAR edges of the plan. */
static void upd_build(upd_graph *u)
{
    memset(u, 0, sizeof *u);
    OK(weft_tgraph_create(&u->g));
    weft_tgraph *g = u->g;
    OK(weft_tgraph_placeholder(g, WEFT_F64, 1, (int64_t[]){4}, "x", &u->x));
    OK(weft_tgraph_placeholder(g, WEFT_F64, 2, (int64_t[]){UR, 4}, "big", &u->big));
    OK(weft_tgraph_placeholder(g, WEFT_F64, 1, (int64_t[]){4}, "d", &u->d));
    OK(weft_tgraph_placeholder(g, WEFT_F64, 1, (int64_t[]){4}, "d2", &u->d2));
    u->w = variable_from(
        g, tu_rand_tensor(WEFT_F64, 1, (int64_t[]){4}, WEFT_INIT_UNIFORM, 1, 0.5, 1.5), "w");
    weft_value bw, t;
    OK(weft_op_mul(g, u->x, u->w, &u->a));
    OK(weft_op_exp(g, u->w, &u->b));
    OK(weft_op_mul(g, u->big, u->w, &bw));
    OK(weft_op_tanh(g, bw, &t));
    OK(weft_op_sum(g, t, 0, 0, &u->c));
    OK(weft_op_assign_sub(g, u->w, u->d, &u->upd));
    OK(weft_op_assign(g, u->w, u->d2, &u->set));
}

/* Checks a, b, c of the last run against w_old. */
static void check_readers(weft_plan *plan, const double *w_old, const double *x,
                          const double *big, size_t ia, size_t ib, size_t ic)
{
    const double *a = fetch_f64(plan, ia, 4), *b = fetch_f64(plan, ib, 4);
    for (size_t i = 0; i < 4; i++) {
        close_to(a[i], x[i] * w_old[i], 1e-15, "x*w", i);
        close_to(b[i], exp(w_old[i]), 1e-15, "exp(w)", i);
    }
    if (ic != (size_t)-1) {
        const double *c = fetch_f64(plan, ic, 4);
        for (size_t j = 0; j < 4; j++) {
            double s = 0;
            for (size_t r = 0; r < UR; r++)
                s += tanh(big[r * 4 + j] * w_old[j]);
            close_to(c[j], s, 1e-10, "sum tanh(big*w)", j);
        }
    }
}

static void test_plan_update_runs_after_every_reader(void **state)
{
    (void)state;
    weft_pool *pool = tu_make_pool(4);
    upd_graph u;
    upd_build(&u);
    weft_tensor *tx = tu_rand_tensor(WEFT_F64, 1, (int64_t[]){4}, WEFT_INIT_UNIFORM, 2, -1, 1);
    weft_tensor *tbig =
        tu_rand_tensor(WEFT_F64, 2, (int64_t[]){UR, 4}, WEFT_INIT_UNIFORM, 3, -1, 1);
    weft_tensor *td = tu_f64_tensor(1, (int64_t[]){4}, (double[]){0.25, -0.5, 0.125, 1.0});
    weft_feed feeds[3] = {{u.x, tx}, {u.big, tbig}, {u.d, td}};
    const double *x = weft_tensor_data_const(tx), *big = weft_tensor_data_const(tbig);
    const double *d = weft_tensor_data_const(td);
    double *w = var_f64(u.g, u.w);
    weft_value fetch[4] = {u.a, u.c, u.b, u.upd};
    for (int mode = 0; mode < 2; mode++) {
        weft_plan_options po = mode ? weft_plan_options_default() : sched_opts();
        weft_plan *plan = NULL;
        OK(weft_plan_create(u.g, pool, 4, fetch, 1, &u.upd, &po, &plan));
        for (int r = 0; r < 4; r++) {
            double w_old[4];
            memcpy(w_old, w, sizeof w_old);
            OK(weft_plan_run(plan, 3, feeds));
            check_readers(plan, w_old, x, big, 0, 2, 1);
            /* the update's value is the updated variable */
            const double *nw = fetch_f64(plan, 3, 4);
            for (size_t i = 0; i < 4; i++) {
                assert_true(w[i] == w_old[i] - d[i]);
                assert_true(nw[i] == w[i]);
            }
        }
        weft_plan_destroy(plan);
    }
    weft_tensor_destroy(tx);
    weft_tensor_destroy(tbig);
    weft_tensor_destroy(td);
    weft_tgraph_destroy(u.g);
    weft_pool_destroy(pool);
}

/* Plans of one graph share its variables: an update made by one is read by the other. */
static void test_plan_two_plans_share_variables(void **state)
{
    (void)state;
    weft_pool *pool = tu_make_pool(3);
    upd_graph u;
    upd_build(&u);
    weft_tensor *tx = tu_f64_tensor(1, (int64_t[]){4}, (double[]){1, 2, 3, 4});
    weft_tensor *td = tu_f64_tensor(1, (int64_t[]){4}, (double[]){0.5, 0.25, -1, 2});
    weft_tensor *td2 = tu_f64_tensor(1, (int64_t[]){4}, (double[]){7, 8, 9, 10});
    weft_plan_options po = sched_opts();
    weft_plan *reader = NULL, *sub = NULL, *set = NULL;
    weft_value rf[2] = {u.a, u.b};
    OK(weft_plan_create(u.g, pool, 2, rf, 0, NULL, &po, &reader));
    OK(weft_plan_create(u.g, pool, 0, NULL, 1, &u.upd, &po, &sub));
    OK(weft_plan_create(u.g, pool, 0, NULL, 1, &u.set, NULL, &set));
    weft_feed fx = {u.x, tx}, fd = {u.d, td}, fd2 = {u.d2, td2};
    const double *x = weft_tensor_data_const(tx), *d = weft_tensor_data_const(td);
    double *w = var_f64(u.g, u.w);
    double w0[4];
    memcpy(w0, w, sizeof w0);
    OK(weft_plan_run(reader, 1, &fx));
    check_readers(reader, w0, x, NULL, 0, 1, (size_t)-1);
    OK(weft_plan_run(sub, 1, &fd));
    double w1[4];
    for (size_t i = 0; i < 4; i++) {
        w1[i] = w0[i] - d[i];
        assert_true(w[i] == w1[i]);
    }
    OK(weft_plan_run(reader, 1, &fx));
    check_readers(reader, w1, x, NULL, 0, 1, (size_t)-1);
    OK(weft_plan_run(set, 1, &fd2));
    const double *w2 = weft_tensor_data_const(td2);
    assert_memory_equal(w, w2, 4 * sizeof(double));
    OK(weft_plan_run(reader, 1, &fx));
    check_readers(reader, w2, x, NULL, 0, 1, (size_t)-1);
    /* a change written by the user between runs is seen too */
    w[2] = -3.5;
    double w3[4];
    memcpy(w3, w, sizeof w3);
    OK(weft_plan_run(reader, 1, &fx));
    check_readers(reader, w3, x, NULL, 0, 1, (size_t)-1);
    weft_plan_destroy(reader);
    weft_plan_destroy(sub);
    weft_plan_destroy(set);
    weft_tensor_destroy(tx);
    weft_tensor_destroy(td);
    weft_tensor_destroy(td2);
    weft_tgraph_destroy(u.g);
    weft_pool_destroy(pool);
}

/* ---- failures ----------------------------------------------------------------------------- */

static void test_plan_gather_out_of_range_fails_and_stays_usable(void **state)
{
    (void)state;
    weft_pool *pool = tu_make_pool(4);
    weft_tgraph *g = NULL;
    OK(weft_tgraph_create(&g));
    weft_value ids, rows, s, big, t, side;
    OK(weft_tgraph_placeholder(g, WEFT_I32, 1, (int64_t[]){4}, "ids", &ids));
    OK(weft_tgraph_placeholder(g, WEFT_F64, 2, (int64_t[]){256, 256}, "big", &big));
    weft_tensor *tab = NULL;
    double tv[15];
    for (int i = 0; i < 15; i++)
        tv[i] = i;
    tab = tu_f64_tensor(2, (int64_t[]){5, 3}, tv);
    weft_value table = variable_from(g, tab, "table");
    OK(weft_op_gather(g, table, ids, &rows));
    OK(weft_op_sum(g, rows, WEFT_AXIS_ALL, 0, &s));
    OK(weft_op_tanh(g, big, &t)); /* independent of the gather */
    OK(weft_op_sum(g, t, WEFT_AXIS_ALL, 0, &side));
    weft_value fetch[3] = {rows, s, side};
    weft_tensor *tbig =
        tu_rand_tensor(WEFT_F64, 2, (int64_t[]){256, 256}, WEFT_INIT_UNIFORM, 5, -1, 1);
    static const int32_t good[4] = {0, 4, 2, 2}, bad_hi[4] = {0, 1, 5, 2},
                         bad_neg[4] = {3, -1, 0, 0};
    for (int mode = 0; mode < 2; mode++) {
        weft_plan_options po = mode ? weft_plan_options_default() : sched_opts();
        weft_plan *plan = NULL;
        OK(weft_plan_create(g, pool, 3, fetch, 0, NULL, &po, &plan));
        for (int r = 0; r < 3; r++) {
            const int32_t *bad = r % 2 ? bad_neg : bad_hi;
            weft_tensor *tids = NULL;
            OK(weft_tensor_from_data(WEFT_I32, 1, (int64_t[]){4}, bad, WEFT_COPY, &tids));
            weft_feed f[2] = {{ids, tids}, {big, tbig}};
            tu_expect_status(weft_plan_run(plan, 2, f), WEFT_ERR_RANGE, "gather out of range");
            tu_expect_message("gather out of range", "gather", r % 2 ? "-1" : "5", NULL);
            const weft_tensor *ft = NULL;
            tu_expect_status(weft_plan_fetch(plan, 0, &ft), WEFT_ERR_INVALID_ARG,
                             "fetch after a failed run");
            /* the next good run succeeds, with the right rows */
            OK(weft_tensor_copy_from(tids, good, sizeof good));
            OK(weft_plan_run(plan, 2, f));
            const double *got = fetch_f64(plan, 0, 12);
            double sum = 0;
            for (size_t p = 0; p < 4; p++)
                for (size_t k = 0; k < 3; k++) {
                    assert_true(got[p * 3 + k] == tv[good[p] * 3 + k]);
                    sum += tv[good[p] * 3 + k];
                }
            assert_true(fetch_scalar(plan, 1) == sum);
            assert_true(isfinite(fetch_scalar(plan, 2)));
            weft_tensor_destroy(tids);
        }
        weft_plan_destroy(plan);
    }
    /* the pool still runs other work */
    wide w;
    wide_build(&w, 8, 16);
    weft_plan *wp = wide_plan(&w, pool);
    OK(weft_plan_run(wp, 1, &w.feed));
    weft_plan_destroy(wp);
    wide_free(&w);
    weft_tensor_destroy(tbig);
    weft_tgraph_destroy(g);
    weft_pool_destroy(pool);
}

/* Allocation failures. With the hook installed before the pool exists, for N = 1, 2, ...
 * the Nth allocation of weft_plan_create fails (once, then sticky), until create succeeds
 * without a failure; then the same for the first weft_plan_run of a fresh plan. Every
 * failing call returns WEFT_ERR_NOMEM with a message, a failed create leaves *out NULL,
 * a failed run is retried and then gives the reference result bit for bit, and the hook's
 * counts balance after each attempt (nothing leaks). */

typedef struct af_ctx {
    weft_pool *pool;
    mlp m;
    mlp_cfg c;
    mlp_feeds f;
    unsigned char *init[NVAR]; /* initial variable bytes */
    size_t var_bytes[NVAR];
    unsigned char ref_loss[8];
    unsigned char *ref_vars[NVAR];
} af_ctx;

static void af_restore(af_ctx *a)
{
    for (int i = 0; i < NVAR; i++) {
        weft_tensor *t = NULL;
        OK(weft_tgraph_variable_tensor(a->m.g, a->m.var[i], &t));
        OK(weft_tensor_copy_from(t, a->init[i], a->var_bytes[i]));
    }
}

/* 1 if the last run's loss and the variables equal the reference. */
static int af_matches(af_ctx *a, weft_plan *plan)
{
    size_t n = 0;
    unsigned char *l = fetch_bytes(plan, 0, &n);
    int ok = memcmp(l, a->ref_loss, n) == 0;
    free(l);
    for (int i = 0; i < NVAR && ok; i++) {
        weft_tensor *t = NULL;
        OK(weft_tgraph_variable_tensor(a->m.g, a->m.var[i], &t));
        ok = memcmp(weft_tensor_data_const(t), a->ref_vars[i], a->var_bytes[i]) == 0;
    }
    return ok;
}

static weft_status af_create(af_ctx *a, weft_plan **plan)
{
    weft_plan_options po = sched_opts();
    return weft_plan_create(a->m.g, a->pool, 1, &a->m.loss, NVAR, a->m.upd, &po, plan);
}

static void expect_nomem(weft_status s, const char *what, uint64_t n)
{
    if (s != WEFT_ERR_NOMEM)
        print_error("%s, N=%llu: %s (%s), expected WEFT_ERR_NOMEM\n", what,
                    (unsigned long long)n, weft_status_name(s), weft_last_error());
    assert_int_equal(s, WEFT_ERR_NOMEM);
    assert_true(weft_last_error()[0] != '\0');
}

static void alloc_fail_on(unsigned threads)
{
    af_ctx a;
    memset(&a, 0, sizeof a);
    a.pool = tu_make_pool(threads);
    a.c = small_cfg(0);
    mlp_build(&a.m, &a.c);
    mlp_feeds_make(&a.f, &a.m, &a.c, a.c.B, 31);
    for (int i = 0; i < NVAR; i++) {
        weft_tensor *t = NULL;
        OK(weft_tgraph_variable_tensor(a.m.g, a.m.var[i], &t));
        a.var_bytes[i] = tu_tensor_bytes(t);
        a.init[i] = malloc(a.var_bytes[i]);
        a.ref_vars[i] = malloc(a.var_bytes[i]);
        assert_non_null(a.init[i]);
        assert_non_null(a.ref_vars[i]);
        memcpy(a.init[i], weft_tensor_data_const(t), a.var_bytes[i]);
    }
    /* warm-up and reference: lazily made pool structures exist from here on */
    weft_plan *plan = NULL;
    OK(af_create(&a, &plan));
    OK(weft_plan_run(plan, 3, a.f.f));
    weft_plan_destroy(plan);
    af_restore(&a);
    OK(af_create(&a, &plan));
    OK(weft_plan_run(plan, 3, a.f.f));
    size_t n = 0;
    unsigned char *l = fetch_bytes(plan, 0, &n);
    memcpy(a.ref_loss, l, n);
    free(l);
    for (int i = 0; i < NVAR; i++) {
        weft_tensor *t = NULL;
        OK(weft_tgraph_variable_tensor(a.m.g, a.m.var[i], &t));
        memcpy(a.ref_vars[i], weft_tensor_data_const(t), a.var_bytes[i]);
    }
    weft_plan_destroy(plan);

    const uint64_t limit = 100000;
    for (int sticky = 0; sticky < 2; sticky++) {
        /* weft_plan_create */
        uint64_t n_create = 0;
        for (uint64_t k = 1; k < limit; k++) {
            tu_alloc_stats s0 = tu_alloc_get();
            plan = (weft_plan *)&a; /* must be overwritten with NULL on failure */
            tu_alloc_fail_at(k, sticky);
            weft_status st = af_create(&a, &plan);
            uint64_t failed = tu_alloc_get().failed - s0.failed;
            tu_alloc_fail_at(0, 0);
            if (st == WEFT_OK && failed == 0) {
                n_create = k;
                weft_plan_destroy(plan);
                tu_alloc_expect_balanced(&s0, "plan_create", k);
                break;
            }
            if (st == WEFT_OK) { /* an allocation failed, but create coped */
                af_restore(&a);
                OK(weft_plan_run(plan, 3, a.f.f));
                assert_true(af_matches(&a, plan));
                weft_plan_destroy(plan);
            } else {
                expect_nomem(st, "plan_create", k);
                assert_null(plan);
            }
            tu_alloc_expect_balanced(&s0, "plan_create", k);
        }
        assert_true(n_create > 1 && n_create < limit);
        /* the first weft_plan_run */
        uint64_t n_run = 0;
        for (uint64_t k = 1; k < limit; k++) {
            tu_alloc_stats s0 = tu_alloc_get();
            af_restore(&a);
            OK(af_create(&a, &plan));
            uint64_t f0 = tu_alloc_get().failed;
            tu_alloc_fail_at(k, sticky);
            weft_status st = weft_plan_run(plan, 3, a.f.f);
            uint64_t failed = tu_alloc_get().failed - f0;
            tu_alloc_fail_at(0, 0);
            if (st != WEFT_OK) {
                expect_nomem(st, "first plan_run", k);
                af_restore(&a);
                st = weft_plan_run(plan, 3, a.f.f); /* the plan stays usable */
                if (st != WEFT_OK)
                    print_error("N=%llu: the run after NOMEM failed: %s (%s)\n",
                                (unsigned long long)k, weft_status_name(st),
                                weft_last_error());
                assert_int_equal(st, WEFT_OK);
            }
            if (!af_matches(&a, plan)) {
                print_error("N=%llu: result differs from the reference\n",
                            (unsigned long long)k);
                fail();
            }
            weft_plan_destroy(plan);
            tu_alloc_expect_balanced(&s0, "first plan_run", k);
            if (failed == 0) {
                n_run = k;
                break;
            }
        }
        assert_true(n_run > 1 && n_run < limit);
        print_message("%u threads, %s: %llu allocations in plan_create, %llu in the first "
                      "run\n",
                      threads, sticky ? "sticky" : "once", (unsigned long long)(n_create - 1),
                      (unsigned long long)(n_run - 1));
    }
    for (int i = 0; i < NVAR; i++) {
        free(a.init[i]);
        free(a.ref_vars[i]);
    }
    mlp_feeds_free(&a.f);
    weft_tgraph_destroy(a.m.g);
    weft_pool_destroy(a.pool);
}

static void test_plan_alloc_failures_are_clean(void **state)
{
    (void)state;
    tu_alloc_failures_clean_on_1_and_3_threads(alloc_fail_on);
}

/* ---- check mode ----------------------------------------------------------------------- */

/* A read of a variable that depends on the variable's own update (z = W + assign_sub(W,
 * s)) is a cycle: weft_plan_create refuses it, and its message wraps the analyzer's
 * (which names a task on the cycle) without garbling it. */
static void test_plan_read_after_own_update_is_refused_with_the_cycle(void **state)
{
    (void)state;
    weft_pool *pool = tu_make_pool(2);
    weft_tgraph *g;
    OK(weft_tgraph_create(&g));
    weft_tensor *w0 = tu_rand_tensor(WEFT_F32, 2, (const int64_t[]){4, 4}, WEFT_INIT_UNIFORM, 1,
                                     -1, 1);
    weft_value w, step, upd, z;
    OK(weft_tgraph_variable(g, w0, "W", &w));
    weft_tensor_destroy(w0);
    OK(weft_op_scale(g, w, 0.5, &step));
    OK(weft_op_assign_sub(g, w, step, &upd));
    OK(weft_op_add(g, w, upd, &z));
    weft_plan *plan = NULL;
    FAILS(weft_plan_create(g, pool, 1, &z, 1, &upd, NULL, &plan), WEFT_ERR_INVALID_ARG);
    tu_expect_message("read after own update", "weft_plan_create: a node reads a variable",
                      "(task graph: dependency cycle through", NULL);
    assert_null(strstr(weft_last_error(), "writes (weft_plan_create"));
    assert_null(plan);
    weft_tgraph_destroy(g);
    weft_pool_destroy(pool);
}

static void test_plan_check_numerics_from_env_names_the_op(void **state)
{
    (void)state;
    setenv("WEFT_CHECK_NUMERICS", "1", 1);
    weft_plan_options on = weft_plan_options_default();
    assert_int_equal(on.check_numerics, 1);
    setenv("WEFT_CHECK_NUMERICS", "0", 1);
    assert_int_equal(weft_plan_options_default().check_numerics, 0);
    setenv("WEFT_CHECK_NUMERICS", "", 1);
    assert_int_equal(weft_plan_options_default().check_numerics, 0);
    unsetenv("WEFT_CHECK_NUMERICS");
    weft_plan_options off = weft_plan_options_default();
    assert_int_equal(off.check_numerics, 0);

    weft_pool *pool = tu_make_pool(3);
    weft_tgraph *g = NULL;
    OK(weft_tgraph_create(&g));
    weft_value x, lg, e, loss, x2, sq, loss2, gx2;
    OK(weft_tgraph_placeholder(g, WEFT_F64, 1, (int64_t[]){4}, "x", &x));
    OK(weft_op_log(g, x, &lg));
    OK(weft_op_exp(g, lg, &e));
    OK(weft_op_sum(g, e, WEFT_AXIS_ALL, 0, &loss));
    OK(weft_tgraph_placeholder(g, WEFT_F64, 1, (int64_t[]){3}, "x2", &x2));
    OK(weft_op_sqrt(g, x2, &sq));
    OK(weft_op_sum(g, sq, WEFT_AXIS_ALL, 0, &loss2));
    OK(weft_tgraph_gradients(g, loss2, 1, &x2, &gx2));
    weft_tensor *bad = tu_f64_tensor(1, (int64_t[]){4}, (double[]){1, -1, 2, 3});
    weft_tensor *good = tu_f64_tensor(1, (int64_t[]){4}, (double[]){1, 0.5, 2, 3});
    weft_tensor *zero = tu_f64_tensor(1, (int64_t[]){3}, (double[]){1, 0, 4});
    weft_feed fb = {x, bad}, fg = {x, good}, fz = {x2, zero};

    /* a plan created with NULL options while the variable is set is in check mode */
    setenv("WEFT_CHECK_NUMERICS", "1", 1);
    weft_plan *chk = NULL, *chk2 = NULL, *plain = NULL;
    OK(weft_plan_create(g, pool, 1, &loss, 0, NULL, NULL, &chk));
    unsetenv("WEFT_CHECK_NUMERICS");
    on.inline_below_ns = 0;
    OK(weft_plan_create(g, pool, 1, &gx2, 0, NULL, &on, &chk2));
    off.inline_below_ns = 0;
    OK(weft_plan_create(g, pool, 1, &loss, 0, NULL, &off, &plain));

    tu_expect_status(weft_plan_run(chk, 1, &fb), WEFT_ERR_NUMERICS, "NaN from log");
    tu_expect_message("NaN from log", "log", "forward", "NaN", NULL);
    /* the same plan then runs good data */
    OK(weft_plan_run(chk, 1, &fg));
    close_to(fetch_scalar(chk, 0), 6.5, 1e-15, "sum exp log", 0);
    /* without check mode the NaN just flows to the result */
    OK(weft_plan_run(plain, 1, &fb));
    assert_true(isnan(fetch_scalar(plain, 0)));
    /* an infinity made by the backward pass (d sqrt(x) / dx at 0) is reported as such */
    tu_expect_status(weft_plan_run(chk2, 1, &fz), WEFT_ERR_NUMERICS, "Inf from backward");
    tu_expect_message("Inf from backward", "backward", NULL);
    assert_true(strstr(weft_last_error(), "Inf") || strstr(weft_last_error(), "NaN"));

    weft_plan_destroy(chk);
    weft_plan_destroy(chk2);
    weft_plan_destroy(plain);
    weft_tensor_destroy(bad);
    weft_tensor_destroy(good);
    weft_tensor_destroy(zero);
    weft_tgraph_destroy(g);
    weft_pool_destroy(pool);
}

/* ---- the report ----------------------------------------------------------------------- */

static void test_plan_stats_report_work_span_and_nodes(void **state)
{
    (void)state;
    weft_pool *pool = tu_make_pool(4);
    wide w;
    wide_build(&w, 32, 64);
    weft_plan *plan = wide_plan(&w, pool);
    weft_plan_stats st;
    OK(weft_plan_stats_get(plan, &st)); /* before any run: estimates */
    assert_true(st.graph.work >= st.graph.span && st.graph.span > 0);
    OK(weft_plan_run(plan, 1, &w.feed));
    OK(weft_plan_stats_get(plan, &st));
    print_message("wide: %zu nodes, %zu tasks (%zu backward), work %.0f ns, span %.0f ns, "
                  "parallelism %.2f, %zu buffer bytes in %zu allocations\n",
                  st.nodes, st.tasks, st.backward_nodes, st.graph.work, st.graph.span,
                  st.graph.parallelism, st.buffer_bytes, st.allocations);
    assert_true(st.graph.span > 0);
    assert_true(st.graph.work >= st.graph.span);
    assert_true(st.graph.parallelism > 1.0);
    assert_true(fabs(st.graph.parallelism - st.graph.work / st.graph.span) <=
                1e-9 * st.graph.parallelism);
    assert_true(st.backward_nodes > 0);
    /* every node but the leaves (x and 32 variables) is a task */
    assert_int_equal(st.tasks, st.nodes - (1 + 2 * BR));
    assert_int_equal(st.graph.tasks, st.tasks);
    assert_true(st.backward_nodes < st.tasks);
    assert_true(st.buffer_bytes > 0 && st.allocations > 0);
    weft_plan_destroy(plan);

    /* a forward-only plan has no backward nodes, and fewer tasks */
    weft_plan *fwd = NULL;
    weft_plan_options po = sched_opts();
    OK(weft_plan_create(w.g, pool, 1, &w.loss, 0, NULL, &po, &fwd));
    weft_plan_stats sf;
    OK(weft_plan_stats_get(fwd, &sf));
    assert_int_equal(sf.backward_nodes, 0);
    /* per branch: 2 matmuls, 2 tanh, a sum; then 15 adds */
    assert_int_equal(sf.tasks, (size_t)(6 * BR - 1));
    assert_int_equal(sf.nodes, sf.tasks + 1 + 2 * BR);
    assert_true(sf.graph.parallelism > 1.0);
    assert_true(sf.graph.work < st.graph.work);
    weft_plan_destroy(fwd);
    tu_expect_status(weft_plan_stats_get(NULL, &sf), WEFT_ERR_INVALID_ARG, "stats of NULL");
    wide_free(&w);
    weft_pool_destroy(pool);
}

int main(void)
{
    tu_main_init(240);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_training_is_deterministic_across_thread_counts),
        cmocka_unit_test(test_plan_parallel_equals_sequential),
        cmocka_unit_test(test_plan_numa_pool_places_buffers_and_matches),
        cmocka_unit_test(test_plan_wide_graph_stress_matches_one_thread),
        cmocka_unit_test_teardown(test_plan_no_allocation_after_first_run, tu_alloc_teardown),
        cmocka_unit_test_teardown(test_plan_no_allocation_in_kernels_after_first_run, tu_alloc_teardown),
        cmocka_unit_test(test_plan_feeds_are_checked_and_batch_may_change),
        cmocka_unit_test(test_plan_update_runs_after_every_reader),
        cmocka_unit_test(test_plan_two_plans_share_variables),
        cmocka_unit_test(test_plan_gather_out_of_range_fails_and_stays_usable),
        cmocka_unit_test_teardown(test_plan_alloc_failures_are_clean, tu_alloc_teardown),
        cmocka_unit_test(test_plan_check_numerics_from_env_names_the_op),
        cmocka_unit_test(test_plan_read_after_own_update_is_refused_with_the_cycle),
        cmocka_unit_test(test_plan_stats_report_work_span_and_nodes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* tests/engine/test_memplan.c - the memory plan of static plans (engine/memplan.c).
 *
 * The promise (weft/plan.h): a value hands its buffer on only when all of its consumers
 * have run, along the DAG's own happens-before edges; INPLACE ops may write over an input
 * whose other readers have run; VIEW ops (reshape, reshape_like, sum_like and
 * broadcast_like of equal sizes) alias their input; inputs read for their shape only do
 * not keep a buffer alive; fetched values never hand their buffer on. And the plan
 * changes nothing but memory: results are bit-for-bit those of memory_plan = 0.
 *
 * Checked here:
 *   - an independent validator (tests/util/tu_memplan.h) on random graphs
 *     (tests/util/tu_randgraph.h: forward ops of every family, gradients, variable
 *     updates by assign_sub / assign / weft_optim_minimize, fetched intermediates). It
 *     rebuilds the happens-before relation of the plan's op nodes from the graph alone
 *     (weft_tgraph_value_inputs for data edges; for every update of a variable, an edge
 *     from every other node that reads the variable, and from an earlier update of it in
 *     graph order, as weft/plan.h and engine/plan.c document) and its transitive closure, and reads the buffers with weft_plan_value_buffer. It
 *     then proves that no two values that share a buffer can be alive at once (the rule
 *     is in tu_memplan.h). A self-test shows that it rejects overlapping assignments;
 *   - the same random graphs with memory_plan = 1 and 0 on pools of 1, 2, 4 and 16
 *     threads, scheduled (inline_below_ns = 0) and inline: fetches and variables bit for
 *     bit equal to the unplanned one-thread run; and a 16-thread stress of many runs in
 *     lockstep with an unplanned run (the case ThreadSanitizer looks at);
 *   - the MLP 784-256-128-10 training plan (f32, batch 128, momentum): planned_bytes
 *     (buffers and the gradient blocks of the fused updates) against naive_bytes (every
 *     value, the fused gradients included, in its own buffer): at most 0.5, the target
 *     of the issue; the validator, and bit-equal training with and without the plan;
 *   - no allocation after the first run (counting allocator hook), also after a batch
 *     change and back;
 *   - matmul_acc (autodiff's fused "gradient sum + product", in place over its addend)
 *     never overwrites data it also reads as an operand (a residual a + a @ W);
 *   - a reader of a variable created after the variable's update: the update must still
 *     run after it (weft/ops.h), with and without the memory plan, inline and scheduled.
 *
 * Sizes: TU_SCALE; about 5 s in an ordinary build, seconds under the sanitizers.
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
#include "tests/util/tu_memplan.h"
#include "tests/util/tu_randgraph.h"
#include "tests/util/tu_weft.h"
#include "weft.h"

/* ---- helpers ------------------------------------------------------------------------- */

/* Scheduled (inline_below_ns = 0) or inline (every plan below the threshold). */
static weft_plan_options plan_opts(int memory_plan, int inline_run)
{
    weft_plan_options po = weft_plan_options_default();
    po.memory_plan = memory_plan;
    po.inline_below_ns = inline_run ? 1e30 : 0;
    po.check_numerics = 0;
    return po;
}

static int op_is(const char *op, const char *name)
{
    return strcmp(op, name) == 0;
}

/* Runs of each random graph compared bit for bit. */
enum { RUN_STEPS = 3 };

/* ---- results, bit for bit ------------------------------------------------------------- */

typedef struct seg {
    size_t off, len;
    int step;    /* -1: a variable after the last step */
    size_t item; /* fetch index, or variable index */
} seg;

typedef struct result {
    unsigned char *p;
    size_t n, cap;
    seg segs[RUN_STEPS * TU_RG_FETCH + TU_RG_VARS];
    size_t nseg;
} result;

static void result_add(result *res, const void *data, size_t len, int step, size_t item)
{
    if (res->n + len > res->cap) {
        res->cap = 2 * (res->n + len) + 64;
        res->p = realloc(res->p, res->cap);
        assert_non_null(res->p);
    }
    memcpy(res->p + res->n, data, len);
    assert_true(res->nseg < sizeof res->segs / sizeof *res->segs);
    res->segs[res->nseg++] = (seg){res->n, len, step, item};
    res->n += len;
}

static void result_free(result *res)
{
    free(res->p);
    memset(res, 0, sizeof *res);
}

static void result_fetches(result *res, tu_rg *r, weft_plan *plan, int step)
{
    for (size_t i = 0; i < r->nfetch; i++) {
        const weft_tensor *t = NULL;
        OK(weft_plan_fetch(plan, i, &t));
        result_add(res, weft_tensor_data_const(t), tu_tensor_bytes(t), step, i);
    }
}

static void result_vars(result *res, tu_rg *r)
{
    for (size_t i = 0; i < r->nvar; i++) {
        weft_tensor *t = NULL;
        OK(weft_tgraph_variable_tensor(r->g, r->var[i], &t));
        result_add(res, weft_tensor_data_const(t), tu_tensor_bytes(t), -1, i);
    }
}

/* RUN_STEPS runs of a fresh copy of graph `seed`. */
static void run_config(uint64_t seed, weft_pool *pool, int memory_plan, int inline_run,
                       result *res)
{
    memset(res, 0, sizeof *res);
    tu_rg r;
    tu_rg_build(&r, seed);
    weft_plan_options po = plan_opts(memory_plan, inline_run);
    weft_plan *plan = tu_rg_plan(&r, pool, &po);
    for (int s = 0; s < RUN_STEPS; s++) {
        OK(weft_plan_run(plan, r.nph, r.feeds));
        result_fetches(res, &r, plan, s);
    }
    result_vars(res, &r);
    weft_plan_destroy(plan);
    tu_rg_free(&r);
}

/* 0 if equal; else prints the first difference (naming the value) and returns 1. */
static int result_diff(const result *a, const result *ref, uint64_t seed, const char *what)
{
    if (a->n == ref->n && a->nseg == ref->nseg && memcmp(a->p, ref->p, a->n) == 0)
        return 0;
    tu_rg r; /* rebuilt to name the values */
    tu_rg_build(&r, seed);
    for (size_t i = 0; i < a->nseg && i < ref->nseg; i++) {
        const seg *s = &a->segs[i], *t = &ref->segs[i];
        if (s->len == t->len && memcmp(a->p + s->off, ref->p + t->off, s->len) == 0)
            continue;
        if (s->step >= 0) {
            weft_value v = r.fetch[s->item];
            print_error("seed %llu, %s: step %d, fetch %zu (value %u, %s) differs from the "
                        "unplanned one-thread run\n",
                        (unsigned long long)seed, what, s->step, s->item, v.id,
                        weft_tgraph_value_op(r.g, v));
        } else {
            print_error("seed %llu, %s: variable %zu (value %u) differs from the unplanned "
                        "one-thread run\n",
                        (unsigned long long)seed, what, s->item, r.var[s->item].id);
        }
        break;
    }
    tu_rg_free(&r);
    return 1;
}

/* ---- 1. the validator on random graphs ------------------------------------------------- */

static void test_memplan_random_graphs_share_only_dead_buffers(void **state)
{
    (void)state;
    weft_pool *pool = tu_make_pool(4);
    const uint64_t seeds = TU_SCALE(1000, 60);
    size_t bad = 0, graphs = 0, nodes = 0, owners = 0, buffers = 0, fetched_shared = 0;
    tu_vg V = {0};
    for (uint64_t seed = 0; seed < seeds && bad < 3; seed++) {
        tu_rg r;
        tu_rg_build(&r, seed);
        for (int mp = 1; mp >= 0; mp--) {
            weft_plan_options po = plan_opts(mp, 0);
            weft_plan *plan = tu_rg_plan(&r, pool, &po);
            OK(weft_plan_run(plan, r.nph, r.feeds));
            weft_plan_stats st;
            OK(weft_plan_stats_get(plan, &st));
            /* buffers against values (updates fused with their gradient product keep
             * gradient blocks instead of the product) */
            assert_true(st.planned_bytes - st.scratch_bytes <= st.naive_bytes - st.fused_bytes);
            if (!mp)
                assert_int_equal(st.planned_bytes - st.scratch_bytes,
                                 st.naive_bytes - st.fused_bytes);
            tu_vg_free(&V);
            tu_vg_load(&V, r.g, plan, r.nfetch, r.fetch, r.ntarget, r.target);
            char what[64];
            snprintf(what, sizeof what, "seed %llu, memory_plan %d", (unsigned long long)seed,
                     mp);
            size_t b = tu_vg_check(&V, what, mp, 0);
            bad += b;
            if (mp) {
                graphs++;
                nodes += V.n;
                size_t nb = 0;
                unsigned char *seen = calloc(V.n + 1, 1);
                assert_non_null(seen);
                for (size_t v = 0; v < V.n; v++) {
                    if (!V.owner[v])
                        continue;
                    owners++;
                    if (V.buf[v] < V.n && !seen[V.buf[v]]) {
                        seen[V.buf[v]] = 1;
                        nb++;
                    }
                }
                /* a fetched value that shares its buffer, and is the last to hold it */
                for (size_t v = 0; v < V.n; v++)
                    if (V.owner[v] && V.fetched[v])
                        for (size_t u = 0; u < v; u++)
                            if (V.owner[u] && V.buf[u] == V.buf[v] && tu_vg_find(&V, u) != tu_vg_find(&V, v)) {
                                fetched_shared++;
                                break;
                            }
                free(seen);
                buffers += nb;
            }
            weft_plan_destroy(plan);
        }
        tu_rg_free(&r);
    }
    print_message("%zu graphs (%zu nodes): %zu values in %zu buffers; %zu shared pairs "
                  "checked, %zu in place, %zu views, %zu fetched values in a reused buffer\n",
                  graphs, nodes, owners, buffers, V.pairs, V.inplace, V.views, fetched_shared);
    tu_vg_free(&V);
    weft_pool_destroy(pool);
    assert_int_equal(bad, 0);
    /* the validator saw real reuse of every kind */
    assert_true(buffers < owners);
    assert_true(V.inplace > 0 && V.views > 0 && V.pairs > V.inplace);
}

/* The validator is not vacuous: assignments that put live values together are refused. */
static void test_memplan_validator_rejects_overlapping_buffers(void **state)
{
    (void)state;
    weft_pool *pool = tu_make_pool(2);
    size_t refused_all = 0, refused_fetch = 0, refused_inplace = 0, tried_fetch = 0,
           tried_inplace = 0, graphs = 0;
    for (uint64_t seed = 0; seed < TU_SCALE(40, 10); seed++) {
        tu_rg r;
        tu_rg_build(&r, seed);
        weft_plan_options po = plan_opts(1, 0);
        weft_plan *plan = tu_rg_plan(&r, pool, &po);
        OK(weft_plan_run(plan, r.nph, r.feeds));
        tu_vg V = {0};
        tu_vg_load(&V, r.g, plan, r.nfetch, r.fetch, r.ntarget, r.target);
        assert_int_equal(tu_vg_check(&V, "unchanged", 1, 0), 0);
        size_t *saved = malloc(V.n * sizeof *saved);
        assert_non_null(saved);
        memcpy(saved, V.buf, V.n * sizeof *saved);
        graphs++;
        /* everything in buffer 0 */
        for (size_t v = 0; v < V.n; v++)
            if (V.owner[v])
                V.buf[v] = 0;
        refused_all += tu_vg_check(&V, "all in one", 1, 1) > 0;
        /* a later value in a fetched value's buffer */
        memcpy(V.buf, saved, V.n * sizeof *saved);
        for (size_t f = 0; f < V.n; f++) {
            if (!V.owner[f] || !V.fetched[f])
                continue;
            for (size_t y = V.n; y-- > f + 1;)
                if (V.owner[y] && !tu_vg_view_op(V.op[y])) {
                    V.buf[y] = V.buf[f];
                    tried_fetch++;
                    refused_fetch += tu_vg_check(&V, "fetched", 1, 1) > 0;
                    break;
                }
            break;
        }
        /* a value with two data readers, and its first reader (not an INPLACE op's only
         * use) in its buffer */
        memcpy(V.buf, saved, V.n * sizeof *saved);
        for (size_t x = 0; x < V.n; x++) {
            if (!V.owner[x] || V.fetched[x])
                continue;
            size_t readers = 0, first = SIZE_MAX;
            for (size_t y = x + 1; y < V.n; y++)
                for (size_t k = 0; k < V.nin[y]; k++)
                    if (V.in[y][k].id == x && V.task[y] && !tu_vg_shape_only(V.op[y], k)) {
                        readers++;
                        if (first == SIZE_MAX)
                            first = y;
                    }
            if (readers < 2 || !V.owner[first] || tu_vg_view_op(V.op[first]))
                continue;
            size_t second = SIZE_MAX; /* a reader that does not happen-before `first` */
            for (size_t y = first + 1; y < V.n && second == SIZE_MAX; y++)
                for (size_t k = 0; k < V.nin[y]; k++)
                    if (V.in[y][k].id == x && V.task[y] && !tu_vg_shape_only(V.op[y], k) &&
                        !tu_vg_hb(&V, y, first))
                        second = y;
            if (second == SIZE_MAX)
                continue;
            for (size_t v = 0; v < V.n; v++) /* move first's whole buffer out of the way */
                if (V.owner[v] && saved[v] == saved[first])
                    V.buf[v] = V.n + v;
            V.buf[first] = V.buf[x];
            tried_inplace++;
            refused_inplace += tu_vg_check(&V, "in place", 1, 1) > 0;
            break;
        }
        free(saved);
        tu_vg_free(&V);
        weft_plan_destroy(plan);
        tu_rg_free(&r);
    }
    print_message("validator self-test on %zu graphs: all-in-one refused %zu, fetched+later "
                  "refused %zu of %zu, in place over a live value refused %zu of %zu\n",
                  graphs, refused_all, refused_fetch, tried_fetch, refused_inplace, tried_inplace);
    weft_pool_destroy(pool);
    assert_int_equal(refused_all, graphs);
    assert_true(tried_fetch > 0 && tried_inplace > 0);
    assert_int_equal(refused_fetch, tried_fetch);
    assert_int_equal(refused_inplace, tried_inplace);
}

/* ---- 2. results equal to the unplanned run ------------------------------------------ */

static void test_memplan_random_graphs_match_unplanned_runs(void **state)
{
    (void)state;
    static const unsigned threads[] = {1, 2, 4, 16};
    enum { NP = sizeof threads / sizeof *threads };
    weft_pool *pools[NP];
    for (int i = 0; i < NP; i++)
        pools[i] = tu_make_pool(threads[i]);
    int bad = 0;
    size_t compared = 0;
    const uint64_t seeds = TU_SCALE(160, 16);
    for (uint64_t seed = 0; seed < seeds && bad < 3; seed++) {
        result ref;
        run_config(seed, pools[0], 0, 1, &ref);
        for (int p = 0; p < NP; p++)
            for (int inl = 0; inl < 2; inl++)
                for (int mp = 0; mp < 2; mp++) {
                    if (p == 0 && inl == 1 && mp == 0)
                        continue; /* the reference */
                    result res;
                    run_config(seed, pools[p], mp, inl, &res);
                    char what[96];
                    snprintf(what, sizeof what, "%u threads, %s, memory_plan %d", threads[p],
                             inl ? "inline" : "scheduled", mp);
                    bad += result_diff(&res, &ref, seed, what);
                    compared++;
                    result_free(&res);
                }
        result_free(&ref);
    }
    print_message("%llu graphs, %zu runs of %d steps compared bit for bit\n",
                  (unsigned long long)seeds, compared, RUN_STEPS);
    for (int i = 0; i < NP; i++)
        weft_pool_destroy(pools[i]);
    assert_int_equal(bad, 0);
}

/* ---- 5. many runs on 16 threads (the ThreadSanitizer case) --------------------------- */

/* Planned, scheduled runs on 16 threads in lockstep with an unplanned one-thread run of
 * a second copy of the graph: every fetch of every step, and the variables, equal. */
static void test_memplan_random_graphs_stress_on_16_threads(void **state)
{
    (void)state;
    weft_pool *p16 = tu_make_pool(16), *p1 = tu_make_pool(1);
    int bad = 0;
    const uint64_t seeds = TU_SCALE(24, 10);
    const int steps = TU_SCALE(12, 5);
    for (uint64_t s = 0; s < seeds && bad < 4; s++) { /* on: every seed is a TSan case */
        int seed_bad = 0;
        uint64_t seed = 1000 + s * 7;
        tu_rg a, b;
        tu_rg_build(&a, seed);
        tu_rg_build(&b, seed);
        weft_plan_options pa = plan_opts(1, 0), pb = plan_opts(0, 1);
        weft_plan *plan_a = tu_rg_plan(&a, p16, &pa), *plan_b = tu_rg_plan(&b, p1, &pb);
        for (int step = 0; step < steps && !seed_bad; step++) {
            OK(weft_plan_run(plan_a, a.nph, a.feeds));
            OK(weft_plan_run(plan_b, b.nph, b.feeds));
            result ra = {0}, rb = {0};
            result_fetches(&ra, &a, plan_a, step);
            result_fetches(&rb, &b, plan_b, step);
            if (step == steps - 1) {
                result_vars(&ra, &a);
                result_vars(&rb, &b);
            }
            seed_bad = result_diff(&ra, &rb, seed, "16 threads, planned, lockstep");
            bad += seed_bad;
            result_free(&ra);
            result_free(&rb);
        }
        weft_plan_destroy(plan_a);
        weft_plan_destroy(plan_b);
        tu_rg_free(&a);
        tu_rg_free(&b);
    }
    weft_pool_destroy(p16);
    weft_pool_destroy(p1);
    assert_int_equal(bad, 0);
}

/* ---- 3. the MLP training plan -------------------------------------------------------- */

enum { MLP_NVAR = 6 };

typedef struct mlp {
    weft_tgraph *g;
    weft_optim *optim;
    weft_value x, y, var[MLP_NVAR], loss, upd[MLP_NVAR];
} mlp;

/* 784-256-128-10, relu, softmax_xent, momentum; batch may be WEFT_DIM_ANY. */
static void mlp_build(mlp *m, int64_t batch)
{
    memset(m, 0, sizeof *m);
    OK(weft_tgraph_create(&m->g));
    weft_tgraph *g = m->g;
    static const int64_t width[4] = {784, 256, 128, 10};
    OK(weft_tgraph_placeholder(g, WEFT_F32, 2, (int64_t[]){batch, 784}, "x", &m->x));
    OK(weft_tgraph_placeholder(g, WEFT_I32, 1, (int64_t[]){batch}, "y", &m->y));
    weft_value h = m->x;
    for (int l = 0; l < 3; l++) {
        weft_tensor *w = NULL, *b = NULL;
        OK(weft_tensor_create(WEFT_F32, 2, (int64_t[]){width[l], width[l + 1]}, &w));
        OK(weft_tensor_init_random(w, WEFT_INIT_HE, 11 + (uint64_t)l, 0, 0));
        OK(weft_tensor_create(WEFT_F32, 1, &width[l + 1], &b));
        OK(weft_tgraph_variable(g, w, "W", &m->var[2 * l]));
        OK(weft_tgraph_variable(g, b, "b", &m->var[2 * l + 1]));
        weft_tensor_destroy(w);
        weft_tensor_destroy(b);
        weft_value a, z;
        OK(weft_op_matmul(g, h, m->var[2 * l], 0, &a));
        OK(weft_op_add(g, a, m->var[2 * l + 1], &z));
        if (l < 2)
            OK(weft_op_relu(g, z, &h));
        else
            h = z;
    }
    OK(weft_op_softmax_xent(g, h, m->y, &m->loss));
    weft_optim_options oo = weft_optim_options_default(WEFT_OPTIM_MOMENTUM);
    oo.lr = 0.01;
    OK(weft_optim_create(&oo, &m->optim));
    OK(weft_optim_minimize(m->optim, g, m->loss, MLP_NVAR, m->var, m->upd));
}

static void mlp_free(mlp *m)
{
    weft_tgraph_destroy(m->g);
    weft_optim_destroy(m->optim);
}

typedef struct mlp_feed {
    weft_tensor *x, *y;
    weft_feed f[2];
} mlp_feed;

static void mlp_feed_make(mlp_feed *f, const mlp *m, int64_t batch, uint64_t seed)
{
    f->x = NULL;
    OK(weft_tensor_create(WEFT_F32, 2, (int64_t[]){batch, 784}, &f->x));
    OK(weft_tensor_init_random(f->x, WEFT_INIT_UNIFORM, seed, 0, 1));
    int32_t *ids = malloc((size_t)batch * sizeof *ids);
    assert_non_null(ids);
    for (int64_t i = 0; i < batch; i++)
        ids[i] = (int32_t)((i * 7 + (int64_t)seed) % 10);
    f->y = NULL;
    OK(weft_tensor_from_data(WEFT_I32, 1, &batch, ids, WEFT_COPY, &f->y));
    free(ids);
    f->f[0] = (weft_feed){m->x, f->x};
    f->f[1] = (weft_feed){m->y, f->y};
}

static void mlp_feed_free(mlp_feed *f)
{
    weft_tensor_destroy(f->x);
    weft_tensor_destroy(f->y);
}

static void test_memplan_mlp_training_plans_less_memory(void **state)
{
    (void)state;
    weft_pool *pool = tu_make_pool(4);
    mlp m[2];
    mlp_feed f[2];
    weft_plan *plan[2];
    for (int mp = 0; mp < 2; mp++) {
        mlp_build(&m[mp], 128);
        mlp_feed_make(&f[mp], &m[mp], 128, 3);
        weft_plan_options po = plan_opts(mp, 0);
        OK(weft_plan_create(m[mp].g, pool, 1, &m[mp].loss, MLP_NVAR, m[mp].upd, &po, &plan[mp]));
        OK(weft_plan_run(plan[mp], 2, f[mp].f));
    }
    weft_plan_stats st, st0;
    OK(weft_plan_stats_get(plan[1], &st));
    OK(weft_plan_stats_get(plan[0], &st0));
    double ratio = (double)st.planned_bytes / (double)st.naive_bytes;
    print_message("MLP 784-256-128-10 f32, batch 128, momentum: planned %zu bytes, naive %zu "
                  "bytes, ratio %.3f (target of the issue: <= 0.5); memory_plan 0 plans %zu; "
                  "gradient blocks %zu bytes for %zu bytes of fused gradients\n",
                  st.planned_bytes, st.naive_bytes, ratio, st0.planned_bytes, st.scratch_bytes,
                  st.fused_bytes);
    assert_true(st.planned_bytes < st.naive_bytes);
    /* without reuse every value has its own buffer; the three weight gradients are fused
     * into their updates in both plans (computed tile by tile into per-thread blocks) */
    assert_int_equal(st0.planned_bytes - st0.scratch_bytes, st0.naive_bytes - st0.fused_bytes);
    assert_int_equal(st.naive_bytes, st0.naive_bytes);
    assert_int_equal(st.fused_bytes, (784 * 256 + 256 * 128 + 128 * 10) * sizeof(float));
    /* one tile per thread in flight (4 here): dW1 in 14 tiles of 112 x 128, dW2 in 2 of
     * 128 x 128, dW3 in one of 128 x 10 (ops/matmul.c's tiling) */
    assert_int_equal(st.scratch_bytes, (4 * 112 * 128 + 2 * 128 * 128 + 128 * 10) * sizeof(float));
    assert_true(ratio <= 0.5);
    /* the plan passes the validator */
    tu_vg V = {0};
    tu_vg_load(&V, m[1].g, plan[1], 1, &m[1].loss, MLP_NVAR, m[1].upd);
    assert_int_equal(tu_vg_check(&V, "MLP", 1, 0), 0);
    tu_vg_free(&V);
    /* and trains bit for bit as without it */
    for (int step = 1; step < TU_SCALE(4, 2); step++)
        for (int mp = 0; mp < 2; mp++)
            OK(weft_plan_run(plan[mp], 2, f[mp].f));
    const weft_tensor *l0 = NULL, *l1 = NULL;
    OK(weft_plan_fetch(plan[0], 0, &l0));
    OK(weft_plan_fetch(plan[1], 0, &l1));
    assert_memory_equal(weft_tensor_data_const(l0), weft_tensor_data_const(l1), 4);
    for (int i = 0; i < MLP_NVAR; i++) {
        weft_tensor *a = NULL, *b = NULL;
        OK(weft_tgraph_variable_tensor(m[0].g, m[0].var[i], &a));
        OK(weft_tgraph_variable_tensor(m[1].g, m[1].var[i], &b));
        assert_memory_equal(weft_tensor_data_const(a), weft_tensor_data_const(b),
                            tu_tensor_bytes(a));
    }
    for (int mp = 0; mp < 2; mp++) {
        weft_plan_destroy(plan[mp]);
        mlp_feed_free(&f[mp]);
        mlp_free(&m[mp]);
    }
    weft_pool_destroy(pool);
}

/* ---- 4. no allocation after the first run ---------------------------------------------- */

/* One run at batch `b`; 1 (after printing) if it allocated a buffer. */
static int run_at(weft_plan *plan, const weft_feed *f, int64_t b, const char *what)
{
    size_t before = tu_plan_allocations(plan);
    OK(weft_plan_run(plan, 2, f));
    size_t got = tu_plan_allocations(plan) - before;
    print_message("  batch %lld (%s): %zu buffer allocations\n", (long long)b, what, got);
    return got != 0;
}

static void test_memplan_no_allocation_after_first_run(void **state)
{
    (void)state;
    int bad = 0;
    tu_alloc_install();
    {
        weft_pool *pool = tu_make_pool(4);
        /* the MLP with an open batch: 128, then 200 and back, then 64 and back */
        mlp m;
        mlp_build(&m, WEFT_DIM_ANY);
        mlp_feed f128, f200, f64;
        mlp_feed_make(&f128, &m, 128, 1);
        mlp_feed_make(&f200, &m, 200, 2);
        mlp_feed_make(&f64, &m, 64, 3);
        for (int inl = 0; inl < 2; inl++) {
            weft_plan_options po = plan_opts(1, inl);
            weft_plan *plan = NULL;
            OK(weft_plan_create(m.g, pool, 1, &m.loss, MLP_NVAR, m.upd, &po, &plan));
            OK(weft_plan_run(plan, 2, f128.f));
            print_message("MLP, %s: first run %zu buffer allocations\n",
                          inl ? "inline" : "scheduled", tu_plan_allocations(plan));
            bad += tu_plan_runs_allocate_nothing(plan, 2, f128.f, TU_SCALE(10, 3), "batch 128");
            run_at(plan, f200.f, 200, "grow");
            bad += tu_plan_runs_allocate_nothing(plan, 2, f200.f, TU_SCALE(5, 2), "batch 200");
            bad += run_at(plan, f128.f, 128, "back");
            bad += tu_plan_runs_allocate_nothing(plan, 2, f128.f, TU_SCALE(5, 2),
                                                 "batch 128 again");
            run_at(plan, f64.f, 64, "shrink");
            bad += tu_plan_runs_allocate_nothing(plan, 2, f64.f, TU_SCALE(5, 2), "batch 64");
            bad += run_at(plan, f128.f, 128, "back");
            bad += tu_plan_runs_allocate_nothing(plan, 2, f128.f, TU_SCALE(5, 2),
                                                 "batch 128 once more");
            weft_plan_destroy(plan);
        }
        mlp_feed_free(&f128);
        mlp_feed_free(&f200);
        mlp_feed_free(&f64);
        mlp_free(&m);
        /* random graphs */
        for (uint64_t seed = 0; seed < TU_SCALE(16, 4); seed++) {
            tu_rg r;
            tu_rg_build(&r, seed);
            weft_plan_options po = plan_opts(1, 0);
            weft_plan *plan = tu_rg_plan(&r, pool, &po);
            OK(weft_plan_run(plan, r.nph, r.feeds));
            char what[48];
            snprintf(what, sizeof what, "random graph %llu", (unsigned long long)seed);
            bad += tu_plan_runs_allocate_nothing(plan, r.nph, r.feeds, 3, what);
            weft_plan_destroy(plan);
            tu_rg_free(&r);
        }
        weft_pool_destroy(pool);
    }
    tu_alloc_uninstall_expect_clean("no allocation after the first run");
    assert_int_equal(bad, 0);
}

/* ---- a reader of a variable made after the variable's update ---------------------------
 * w [4] = 1, x [4] = 1, xs [] = 0:
 *   X = exp(xs); c = scale(x, 0.5); u = assign_sub(w, c); Y = sum(u); r = add(X, w)
 * r is made after u but reads w, so u must run after r (weft/ops.h: "The update runs
 * after every other node of the plan that reads the variable"): r = 1 + 1 = 2, Y = 2,
 * w = 0.5 afterwards. Fetches r, Y and c (so that c's buffer is not free): the memory
 * plan may then give Y the buffer of X, which is dead for Y only through r -> u -> Y. */
static void test_memplan_late_reader_runs_before_the_update(void **state)
{
    (void)state;
    int bad = 0;
    for (int threads = 1; threads <= 4; threads += 3)
        for (int inl = 0; inl < 2; inl++)
            for (int mp = 0; mp < 2; mp++) {
                weft_pool *pool = tu_make_pool((unsigned)threads);
                weft_tgraph *g = NULL;
                OK(weft_tgraph_create(&g));
                int64_t d4 = 4;
                weft_tensor *t1 = NULL, *tx = NULL, *txs = NULL;
                OK(weft_tensor_create(WEFT_F64, 1, &d4, &t1));
                OK(weft_tensor_fill(t1, 1.0));
                OK(weft_tensor_create(WEFT_F64, 1, &d4, &tx));
                OK(weft_tensor_fill(tx, 1.0));
                OK(weft_tensor_create(WEFT_F64, 0, NULL, &txs));
                weft_value w, x, xs, X, c, u, Y, r;
                OK(weft_tgraph_variable(g, t1, "w", &w));
                OK(weft_tgraph_placeholder(g, WEFT_F64, 1, &d4, "x", &x));
                OK(weft_tgraph_placeholder(g, WEFT_F64, 0, NULL, "xs", &xs));
                OK(weft_op_exp(g, xs, &X));
                OK(weft_op_scale(g, x, 0.5, &c));
                OK(weft_op_assign_sub(g, w, c, &u));
                OK(weft_op_sum(g, u, WEFT_AXIS_ALL, 0, &Y));
                OK(weft_op_add(g, X, w, &r));
                weft_plan_options po = plan_opts(mp, inl);
                weft_value fetch[3] = {r, Y, c};
                weft_plan *plan = NULL;
                OK(weft_plan_create(g, pool, 3, fetch, 1, &u, &po, &plan));
                weft_feed feeds[2] = {{x, tx}, {xs, txs}};
                OK(weft_plan_run(plan, 2, feeds));
                const weft_tensor *rt = NULL, *yt = NULL;
                OK(weft_plan_fetch(plan, 0, &rt));
                OK(weft_plan_fetch(plan, 1, &yt));
                const double *rv = weft_tensor_data_const(rt), *yv = weft_tensor_data_const(yt);
                size_t bx = 0, by = 0;
                OK(weft_plan_value_buffer(plan, X, &bx));
                OK(weft_plan_value_buffer(plan, Y, &by));
                int ok = rv[0] == 2.0 && rv[3] == 2.0 && yv[0] == 2.0;
                if (!ok) {
                    print_error("%d thread(s), %s run, memory_plan %d: r = exp(xs) + w = %g "
                                "(want 2: w read before its update), Y = %g (want 2); X in "
                                "buffer %zu, Y in buffer %zu\n",
                                threads, inl || threads == 1 ? "inline" : "scheduled", mp,
                                rv[0], yv[0], bx, by);
                    bad++;
                }
                weft_plan_destroy(plan);
                weft_tensor_destroy(t1);
                weft_tensor_destroy(tx);
                weft_tensor_destroy(txs);
                weft_tgraph_destroy(g);
                weft_pool_destroy(pool);
            }
    assert_int_equal(bad, 0);
}

/* ---- matmul_acc: the addend may be overwritten, the operands not -----------------------
 * Autodiff fuses "running gradient sum + private product" into matmul_acc(a, b, sum),
 * WF_OPF_INPLACE_LAST: the memory plan may put the output in the addend's buffer. Not
 * when the addend's data is also an operand of the product (GEMM would read rows it has
 * already overwritten):
 *   residual: t = a @ W + a gives d(a) = matmul_acc(g, W, g): the same value twice;
 *   through views: t = v @ M + reshape(reshape(v)) gives d(v) = matmul_acc(g, M,
 *   reshape_like(reshape_like(g))): the addend is a view of the operand.
 * Each gradient must equal the unplanned one bit for bit, and the plan must pass the
 * validator. */
static void acc_graph(int kind, weft_tgraph **gout, weft_value *grad)
{
    const int64_t n = 6, k = 5;
    weft_tgraph *g = NULL;
    OK(weft_tgraph_create(&g));
    weft_tensor *tx = NULL, *tw = NULL;
    OK(weft_tensor_create(WEFT_F64, 2, (int64_t[]){n, k}, &tx));
    OK(weft_tensor_init_random(tx, WEFT_INIT_UNIFORM, 1, -1, 1));
    OK(weft_tensor_create(WEFT_F64, 2, (int64_t[]){k, k}, &tw));
    OK(weft_tensor_init_random(tw, WEFT_INIT_UNIFORM, 2, -1, 1));
    weft_value x, w, a, y, s, t, t2, loss;
    OK(weft_tgraph_variable(g, tx, "x", &x));
    if (kind == 0) {
        OK(weft_tgraph_variable(g, tw, "W", &w));
        OK(weft_op_tanh(g, x, &a));
        OK(weft_op_matmul(g, a, w, 0, &y));
        OK(weft_op_add(g, y, a, &t));
    } else {
        OK(weft_tgraph_constant(g, tw, "M", &w));
        OK(weft_op_matmul(g, x, w, 0, &y));
        OK(weft_op_reshape(g, x, 1, (int64_t[]){n * k}, &a));
        OK(weft_op_reshape(g, a, 2, (int64_t[]){n, k}, &s));
        OK(weft_op_add(g, y, s, &t));
    }
    OK(weft_op_mul(g, t, t, &t2));
    OK(weft_op_sum(g, t2, WEFT_AXIS_ALL, 0, &loss));
    OK(weft_tgraph_gradients(g, loss, 1, &x, grad));
    weft_tensor_destroy(tx);
    weft_tensor_destroy(tw);
    *gout = g;
}

static void test_memplan_matmul_acc_never_overwrites_its_operand(void **state)
{
    (void)state;
    static const char *const names[2] = {"residual a @ W + a", "v @ M + reshape(reshape(v))"};
    weft_pool *pool = tu_make_pool(2);
    int bad = 0;
    for (int kind = 0; kind < 2; kind++) {
        double got[2][30];
        for (int mp = 0; mp < 2; mp++) {
            weft_tgraph *g = NULL;
            weft_value grad;
            acc_graph(kind, &g, &grad);
            int fused = 0;
            for (size_t v = 0; v < weft_tgraph_node_count(g); v++)
                fused |= op_is(weft_tgraph_value_op(g, (weft_value){(uint32_t)v}), "matmul_acc");
            weft_plan_options po = plan_opts(mp, 1);
            weft_plan *plan = NULL;
            OK(weft_plan_create(g, pool, 1, &grad, 0, NULL, &po, &plan));
            OK(weft_plan_run(plan, 0, NULL));
            const weft_tensor *t = NULL;
            OK(weft_plan_fetch(plan, 0, &t));
            OK(weft_tensor_copy_to(t, got[mp], sizeof got[mp]));
            if (mp) {
                tu_vg V = {0};
                tu_vg_load(&V, g, plan, 1, &grad, 0, NULL);
                char what[96];
                snprintf(what, sizeof what, "%s%s", names[kind], fused ? " (matmul_acc)" : "");
                bad += tu_vg_check(&V, what, 1, 0) != 0;
                tu_vg_free(&V);
            }
            weft_plan_destroy(plan);
            weft_tgraph_destroy(g);
        }
        if (memcmp(got[0], got[1], sizeof got[0]) != 0) {
            double md = 0;
            for (int i = 0; i < 30; i++)
                md = fmax(md, fabs(got[0][i] - got[1][i]));
            print_error("%s: the gradient differs from the unplanned one (max |diff| %g)\n",
                        names[kind], md);
            bad++;
        }
    }
    weft_pool_destroy(pool);
    assert_int_equal(bad, 0);
}

int main(void)
{
    tu_main_init(120);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memplan_random_graphs_share_only_dead_buffers),
        cmocka_unit_test(test_memplan_validator_rejects_overlapping_buffers),
        cmocka_unit_test(test_memplan_random_graphs_match_unplanned_runs),
        cmocka_unit_test(test_memplan_random_graphs_stress_on_16_threads),
        cmocka_unit_test(test_memplan_mlp_training_plans_less_memory),
        cmocka_unit_test_teardown(test_memplan_no_allocation_after_first_run, tu_alloc_teardown),
        cmocka_unit_test(test_memplan_matmul_acc_never_overwrites_its_operand),
        cmocka_unit_test(test_memplan_late_reader_runs_before_the_update),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* tests/engine/test_optim.c - optimizers (weft/optim.h): SGD, momentum, Adam, each with
 * L2 weight decay, in the static style (weft_optim_minimize: one optim_update per
 * variable, run as a plan target) and the eager style (weft_optim_step on tensors).
 *
 * The reference is a plain double-precision loop written from the formulas in
 * weft/optim.h (ref_step below), independent of ops/optim.c: f64 results must agree with
 * it to ~1e-15 relative, f32 results to ~1e-6 (the inputs are rounded to float first, so
 * both see the same numbers). One step of each kind is also checked against numbers
 * worked out by hand and written in the test.
 *
 * The design promises bit-for-bit results in three places, checked with memcmp:
 *   - static and eager training of the same model (the same gradient ops, the same
 *     update kernel) give the same losses, variables and optimizer state;
 *   - static training gives the same bytes on 1, 2 and 4 threads;
 *   - an eager step of a parameter large enough to split into chunks gives the same bytes
 *     on a 4-thread pool as with no pool.
 *
 * Also: the learning rate read when the update runs (weft_optim_set_lr between runs or
 * steps), the exposed state (count, names "optim.<k>.<field>", contents), and refused
 * inputs (bad options, a non-variable, mismatched shapes or dtypes, NULL arguments) that
 * return a status with a message and change nothing.
 *
 * cmocka is not thread-safe: nothing here asserts from a worker; every check runs on the
 * main thread after the call returned.
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

/* ---- helpers ------------------------------------------------------------------------- */

static weft_plan_options sched_opts(void)
{
    weft_plan_options po = weft_plan_options_default();
    po.inline_below_ns = 0; /* always schedule: the thread count matters */
    po.check_numerics = 0;
    return po;
}

static const char *kind_name(weft_optim_kind k)
{
    return k == WEFT_OPTIM_SGD ? "sgd" : k == WEFT_OPTIM_MOMENTUM ? "momentum" : "adam";
}

static weft_optim *make_optim(const weft_optim_options *o)
{
    weft_optim *opt = NULL;
    OK(weft_optim_create(o, &opt));
    assert_non_null(opt);
    return opt;
}

/* out[i] = element i of t, as a double. */
static void tensor_values(const weft_tensor *t, double *out)
{
    size_t n = weft_tensor_numel(t);
    for (size_t i = 0; i < n; i++)
        OK(weft_tensor_get(t, i, &out[i]));
}

/* Uniform in [lo, hi), rounded to float for an f32 test so that the tensor and the
 * reference see the same number. */
static double rnd(tu_rng *r, double lo, double hi, weft_dtype dt)
{
    double x = lo + (hi - lo) * tu_rng_unit(r);
    return dt == WEFT_F32 ? (double)(float)x : x;
}

/* Largest |got - want| / max(|want|, floor) must be <= tol (NaN fails). */
static void expect_near(const char *what, size_t n, const double *got, const double *want,
                        double tol, double floor)
{
    double worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(got[i] - want[i]) / fmax(fabs(want[i]), floor);
        if (isnan(e))
            e = INFINITY;
        if (e > worst) {
            worst = e;
            at = i;
        }
    }
    if (!(worst <= tol)) {
        print_error("%s: element %zu: got %.17g, want %.17g (relative error %.3g > %.3g)\n",
                    what, at, got[at], want[at], worst, tol);
        fail();
    }
}

/* The state tensor called `name`, or NULL. */
static weft_tensor *state_named(weft_optim *opt, const char *name)
{
    size_t n = weft_optim_state_count(opt);
    for (size_t i = 0; i < n; i++) {
        const char *nm = NULL;
        weft_tensor *t = NULL;
        OK(weft_optim_state(opt, i, &nm, &t));
        assert_non_null(nm);
        if (strcmp(nm, name) == 0)
            return t;
    }
    return NULL;
}

/* ---- the reference: the formulas of weft/optim.h in double precision ------------------ */

typedef struct ref_param {
    size_t n;
    double *w;
    double *m; /* momentum: the buffer b; Adam: the first moment */
    double *v; /* Adam: the second moment */
    double t;  /* Adam: steps taken */
} ref_param;

static void ref_init(ref_param *p, size_t n, const double *w0)
{
    p->n = n;
    p->w = malloc(n * sizeof(double) + 8);
    p->m = calloc(n + 1, sizeof(double));
    p->v = calloc(n + 1, sizeof(double));
    assert_true(p->w && p->m && p->v);
    memcpy(p->w, w0, n * sizeof(double));
    p->t = 0;
}

static void ref_free(ref_param *p)
{
    free(p->w);
    free(p->m);
    free(p->v);
}

/* One step with learning rate lr (the options' lr is ignored: it may change). */
static void ref_step(const weft_optim_options *o, double lr, ref_param *p, const double *g)
{
    double c1 = 1, c2 = 1;
    if (o->kind == WEFT_OPTIM_ADAM) {
        p->t += 1;
        c1 = 1 - pow(o->beta1, p->t);
        c2 = 1 - pow(o->beta2, p->t);
    }
    for (size_t i = 0; i < p->n; i++) {
        double gi = g[i] + o->weight_decay * p->w[i];
        switch (o->kind) {
        case WEFT_OPTIM_SGD:
            p->w[i] -= lr * gi;
            break;
        case WEFT_OPTIM_MOMENTUM:
            p->m[i] = o->momentum * p->m[i] + gi;
            p->w[i] -= lr * p->m[i];
            break;
        case WEFT_OPTIM_ADAM:
            p->m[i] = o->beta1 * p->m[i] + (1 - o->beta1) * gi;
            p->v[i] = o->beta2 * p->v[i] + (1 - o->beta2) * gi * gi;
            p->w[i] -= lr * (p->m[i] / c1) / (sqrt(p->v[i] / c2) + o->eps);
            break;
        }
    }
}

/* The tensors of optimizer `opt` for parameter k agree with the reference: the
 * parameter itself, then the state (b; or m, v and t). */
static void expect_matches_ref(weft_optim *opt, weft_optim_kind kind, size_t k,
                               const weft_tensor *param, const ref_param *r, weft_dtype dt,
                               const char *what)
{
    const double tol = dt == WEFT_F64 ? 1e-15 : 1e-6;
    double *got = malloc(r->n * sizeof *got + 8);
    assert_non_null(got);
    char msg[160], name[48];
    tensor_values(param, got);
    snprintf(msg, sizeof msg, "%s: parameter %zu", what, k);
    expect_near(msg, r->n, got, r->w, tol, 1.0);
    if (kind == WEFT_OPTIM_MOMENTUM) {
        snprintf(name, sizeof name, "optim.%zu.momentum", k);
        weft_tensor *b = state_named(opt, name);
        assert_non_null(b);
        tensor_values(b, got);
        snprintf(msg, sizeof msg, "%s: %s", what, name);
        expect_near(msg, r->n, got, r->m, tol, 1.0);
    } else if (kind == WEFT_OPTIM_ADAM) {
        static const char *const field[2] = {"m", "v"};
        const double *want[2] = {r->m, r->v};
        const double floors[2] = {0.1, 1e-3}; /* magnitudes: m ~ 0.1 g, v ~ 1e-3 g^2 */
        for (int f = 0; f < 2; f++) {
            snprintf(name, sizeof name, "optim.%zu.%s", k, field[f]);
            weft_tensor *s = state_named(opt, name);
            assert_non_null(s);
            tensor_values(s, got);
            snprintf(msg, sizeof msg, "%s: %s", what, name);
            expect_near(msg, r->n, got, want[f], tol, floors[f]);
        }
        snprintf(name, sizeof name, "optim.%zu.t", k);
        weft_tensor *t = state_named(opt, name);
        assert_non_null(t);
        double tv = -1;
        OK(weft_tensor_get(t, 0, &tv));
        assert_true(tv == r->t);
    }
    free(got);
}

/* ---- eager steps against the formulas ------------------------------------------------- */

/* Two parameters ([3,4] and [5]), 5 steps with fresh gradients each, every kind with and
 * without weight decay, f32 and f64: parameters and state follow the reference after
 * every step. */
static void test_optim_step_matches_formulas(void **state)
{
    (void)state;
    static const weft_optim_kind kinds[3] = {WEFT_OPTIM_SGD, WEFT_OPTIM_MOMENTUM,
                                             WEFT_OPTIM_ADAM};
    static const double lrs[3] = {0.1, 0.05, 0.01};
    static const weft_dtype dts[2] = {WEFT_F32, WEFT_F64};
    static const double wds[2] = {0.0, 0.05};
    const int64_t dims0[2] = {3, 4}, dims1[1] = {5};
    enum { N0 = 12, N1 = 5, STEPS = 5 };
    for (int k = 0; k < 3; k++)
        for (int d = 0; d < 2; d++)
            for (int w = 0; w < 2; w++) {
                weft_dtype dt = dts[d];
                weft_optim_options o = weft_optim_options_default(kinds[k]);
                o.lr = lrs[k];
                o.weight_decay = wds[w];
                char what[96];
                snprintf(what, sizeof what, "%s %s wd=%g", kind_name(kinds[k]),
                         weft_dtype_name(dt), wds[w]);
                tu_rng rng;
                tu_rng_seed(&rng, 1000 + (uint64_t)(k * 4 + d * 2 + w));
                double w0[N0], w1[N1], g0[N0], g1[N1];
                /* magnitudes in [0.5, 1.5): no parameter comes near zero in 5 steps */
                for (int i = 0; i < N0; i++)
                    w0[i] = (i % 2 ? -1 : 1) * rnd(&rng, 0.5, 1.5, dt);
                for (int i = 0; i < N1; i++)
                    w1[i] = (i % 2 ? 1 : -1) * rnd(&rng, 0.5, 1.5, dt);
                weft_tensor *p[2] = {tu_tensor_of(dt, 2, dims0, w0),
                                     tu_tensor_of(dt, 1, dims1, w1)};
                weft_tensor *g[2] = {tu_tensor_of(dt, 2, dims0, w0),
                                     tu_tensor_of(dt, 1, dims1, w1)};
                ref_param r[2];
                ref_init(&r[0], N0, w0);
                ref_init(&r[1], N1, w1);
                weft_optim *opt = make_optim(&o);
                for (int s = 0; s < STEPS; s++) {
                    for (int i = 0; i < N0; i++)
                        g0[i] = rnd(&rng, -1, 1, dt);
                    for (int i = 0; i < N1; i++)
                        g1[i] = rnd(&rng, -1, 1, dt);
                    tu_tensor_set(g[0], g0);
                    tu_tensor_set(g[1], g1);
                    OK(weft_optim_step(opt, NULL, 2, p, (const weft_tensor *const *)g));
                    ref_step(&o, o.lr, &r[0], g0);
                    ref_step(&o, o.lr, &r[1], g1);
                    char ws[128];
                    snprintf(ws, sizeof ws, "%s, step %d", what, s + 1);
                    expect_matches_ref(opt, o.kind, 0, p[0], &r[0], dt, ws);
                    expect_matches_ref(opt, o.kind, 1, p[1], &r[1], dt, ws);
                }
                weft_optim_destroy(opt);
                for (int i = 0; i < 2; i++) {
                    weft_tensor_destroy(p[i]);
                    weft_tensor_destroy(g[i]);
                    ref_free(&r[i]);
                }
            }
}

/* Numbers worked out by hand (lr 0.1; beta1 0.9, beta2 0.999, eps 1e-8), f64 and f32:
 *   SGD, wd 0.01, w = [1, -2], g = [0.5, 0.25]:
 *     g' = [0.51, 0.23]; w = [0.949, -2.023].
 *   momentum 0.9, wd 0.01, the same g twice:
 *     step 1: b = [0.51, 0.23], w = [0.949, -2.023];
 *     step 2: g' = [0.50949, 0.22977], b = [0.96849, 0.43677], w = [0.852151, -2.066677].
 *   Adam, wd 0, w = [1, -2], g = [0.5, -0.25] twice (m-hat = g, v-hat = g^2 each step,
 *   so each step moves w by lr * |g| / (|g| + eps) against the sign of g):
 *     step 1: m = [0.05, -0.025], v = [2.5e-4, 6.25e-5], t = 1,
 *             w = [0.900000002, -1.900000004];
 *     step 2: m = [0.095, -0.0475], v = [4.9975e-4, 1.249375e-4], t = 2,
 *             w = [0.800000004, -1.800000008].
 *     (eps inside the square root would give -1.900000008 after step 1.)
 *   Adam, wd 0.5, w = [1], g = [0.5]: g' = 1, m = 0.1, v = 0.001, w = 0.900000001. */
static void test_optim_step_hand_worked_examples(void **state)
{
    (void)state;
    const weft_dtype dts[2] = {WEFT_F64, WEFT_F32};
    const int64_t two[1] = {2}, one[1] = {1};
    for (int d = 0; d < 2; d++) {
        weft_dtype dt = dts[d];
        /* f64: the literals are exact up to O(1e-16) terms; f32: float rounding */
        const double tol = dt == WEFT_F64 ? 1e-14 : 1e-6;
        double got[2], st[2];
        char what[64];

        /* SGD */
        weft_optim_options o = weft_optim_options_default(WEFT_OPTIM_SGD);
        o.lr = 0.1;
        o.weight_decay = 0.01;
        weft_optim *opt = make_optim(&o);
        weft_tensor *p = tu_tensor_of(dt, 1, two, (const double[]){1, -2});
        weft_tensor *g = tu_tensor_of(dt, 1, two, (const double[]){0.5, 0.25});
        OK(weft_optim_step(opt, NULL, 1, &p, (const weft_tensor *const *)&g));
        tensor_values(p, got);
        snprintf(what, sizeof what, "sgd %s", weft_dtype_name(dt));
        expect_near(what, 2, got, (const double[]){0.949, -2.023}, tol, 1);
        weft_optim_destroy(opt);
        weft_tensor_destroy(p);
        weft_tensor_destroy(g);

        /* momentum, two steps */
        o = weft_optim_options_default(WEFT_OPTIM_MOMENTUM);
        o.lr = 0.1;
        o.momentum = 0.9;
        o.weight_decay = 0.01;
        opt = make_optim(&o);
        p = tu_tensor_of(dt, 1, two, (const double[]){1, -2});
        g = tu_tensor_of(dt, 1, two, (const double[]){0.5, 0.25});
        OK(weft_optim_step(opt, NULL, 1, &p, (const weft_tensor *const *)&g));
        snprintf(what, sizeof what, "momentum %s step 1", weft_dtype_name(dt));
        tensor_values(p, got);
        expect_near(what, 2, got, (const double[]){0.949, -2.023}, tol, 1);
        tensor_values(state_named(opt, "optim.0.momentum"), st);
        expect_near(what, 2, st, (const double[]){0.51, 0.23}, tol, 1);
        OK(weft_optim_step(opt, NULL, 1, &p, (const weft_tensor *const *)&g));
        snprintf(what, sizeof what, "momentum %s step 2", weft_dtype_name(dt));
        tensor_values(p, got);
        expect_near(what, 2, got, (const double[]){0.852151, -2.066677}, tol, 1);
        tensor_values(state_named(opt, "optim.0.momentum"), st);
        expect_near(what, 2, st, (const double[]){0.96849, 0.43677}, tol, 1);
        weft_optim_destroy(opt);
        weft_tensor_destroy(p);
        weft_tensor_destroy(g);

        /* Adam, two steps */
        o = weft_optim_options_default(WEFT_OPTIM_ADAM);
        o.lr = 0.1;
        opt = make_optim(&o);
        p = tu_tensor_of(dt, 1, two, (const double[]){1, -2});
        g = tu_tensor_of(dt, 1, two, (const double[]){0.5, -0.25});
        static const double adam_w[2][2] = {{0.900000002, -1.900000004},
                                            {0.800000004, -1.800000008}};
        static const double adam_m[2][2] = {{0.05, -0.025}, {0.095, -0.0475}};
        static const double adam_v[2][2] = {{2.5e-4, 6.25e-5}, {4.9975e-4, 1.249375e-4}};
        for (int s = 0; s < 2; s++) {
            OK(weft_optim_step(opt, NULL, 1, &p, (const weft_tensor *const *)&g));
            snprintf(what, sizeof what, "adam %s step %d", weft_dtype_name(dt), s + 1);
            tensor_values(p, got);
            expect_near(what, 2, got, adam_w[s], tol, 1);
            tensor_values(state_named(opt, "optim.0.m"), st);
            expect_near(what, 2, st, adam_m[s], tol, 1e-2);
            tensor_values(state_named(opt, "optim.0.v"), st);
            expect_near(what, 2, st, adam_v[s], tol, 1e-4);
            tensor_values(state_named(opt, "optim.0.t"), st);
            assert_true(st[0] == s + 1);
        }
        weft_optim_destroy(opt);
        weft_tensor_destroy(p);
        weft_tensor_destroy(g);

        /* Adam with weight decay, one step */
        o = weft_optim_options_default(WEFT_OPTIM_ADAM);
        o.lr = 0.1;
        o.weight_decay = 0.5;
        opt = make_optim(&o);
        p = tu_tensor_of(dt, 1, one, (const double[]){1});
        g = tu_tensor_of(dt, 1, one, (const double[]){0.5});
        OK(weft_optim_step(opt, NULL, 1, &p, (const weft_tensor *const *)&g));
        snprintf(what, sizeof what, "adam wd %s", weft_dtype_name(dt));
        tensor_values(p, got);
        expect_near(what, 1, got, (const double[]){0.900000001}, tol, 1);
        tensor_values(state_named(opt, "optim.0.m"), st);
        expect_near(what, 1, st, (const double[]){0.1}, tol, 1e-2);
        tensor_values(state_named(opt, "optim.0.v"), st);
        expect_near(what, 1, st, (const double[]){0.001}, tol, 1e-4);
        weft_optim_destroy(opt);
        weft_tensor_destroy(p);
        weft_tensor_destroy(g);
    }
}

/* ---- static vs eager ------------------------------------------------------------------
 * pred = x[B,D] @ W[D,O] + b[O]; loss = mse(pred, y). W has 40960 elements (its update
 * splits into two chunks) and the matmuls split into tiles. The same batch every step. */

enum { LB = 64, LD = 256, LO = 160, LSTEPS = 4 };

typedef struct lin_model {
    weft_tgraph *g;
    weft_value x, y, var[2], loss;
} lin_model;

static void lin_build(lin_model *m, weft_dtype dt)
{
    memset(m, 0, sizeof *m);
    OK(weft_tgraph_create(&m->g));
    weft_tgraph *g = m->g;
    OK(weft_tgraph_placeholder(g, dt, 2, (const int64_t[]){LB, LD}, "x", &m->x));
    OK(weft_tgraph_placeholder(g, dt, 2, (const int64_t[]){LB, LO}, "y", &m->y));
    weft_tensor *w = NULL, *b = NULL;
    OK(weft_tensor_create(dt, 2, (const int64_t[]){LD, LO}, &w));
    OK(weft_tensor_init_random(w, WEFT_INIT_XAVIER, 11, 0, 0));
    OK(weft_tensor_create(dt, 1, (const int64_t[]){LO}, &b));
    OK(weft_tensor_init_random(b, WEFT_INIT_UNIFORM, 12, -0.1, 0.1));
    OK(weft_tgraph_variable(g, w, "W", &m->var[0]));
    OK(weft_tgraph_variable(g, b, "b", &m->var[1]));
    weft_tensor_destroy(w);
    weft_tensor_destroy(b);
    weft_value xw, pred;
    OK(weft_op_matmul(g, m->x, m->var[0], 0, &xw));
    OK(weft_op_add(g, xw, m->var[1], &pred));
    OK(weft_op_mse(g, pred, m->y, &m->loss));
}

typedef struct lin_feeds {
    weft_tensor *t[2];
    weft_feed f[2];
} lin_feeds;

static void lin_feeds_make(lin_feeds *f, const lin_model *m, weft_dtype dt)
{
    OK(weft_tensor_create(dt, 2, (const int64_t[]){LB, LD}, &f->t[0]));
    OK(weft_tensor_init_random(f->t[0], WEFT_INIT_UNIFORM, 100, -1, 1));
    OK(weft_tensor_create(dt, 2, (const int64_t[]){LB, LO}, &f->t[1]));
    OK(weft_tensor_init_random(f->t[1], WEFT_INIT_UNIFORM, 101, -1, 1));
    f->f[0] = (weft_feed){m->x, f->t[0]};
    f->f[1] = (weft_feed){m->y, f->t[1]};
}

static void lin_feeds_free(lin_feeds *f)
{
    weft_tensor_destroy(f->t[0]);
    weft_tensor_destroy(f->t[1]);
}

typedef struct lin_result {
    unsigned char loss[LSTEPS][8];
    size_t loss_bytes;
    unsigned char *var[2];
    size_t var_bytes[2];
    unsigned char *state; /* every state tensor's bytes, in order */
    size_t state_bytes;
    size_t nstate;
} lin_result;

static void lin_result_free(lin_result *r)
{
    free(r->var[0]);
    free(r->var[1]);
    free(r->state);
}

static weft_optim_options lin_options(weft_optim_kind kind)
{
    weft_optim_options o = weft_optim_options_default(kind);
    o.lr = kind == WEFT_OPTIM_ADAM ? 0.01 : 0.05;
    o.weight_decay = 0.01;
    return o;
}

static void lin_collect(lin_result *r, lin_model *m, weft_optim *opt)
{
    for (int i = 0; i < 2; i++) {
        weft_tensor *t = NULL;
        OK(weft_tgraph_variable_tensor(m->g, m->var[i], &t));
        r->var[i] = tu_tensor_copy_bytes(t, &r->var_bytes[i]);
    }
    r->nstate = weft_optim_state_count(opt);
    r->state_bytes = 0;
    r->state = NULL;
    for (size_t i = 0; i < r->nstate; i++) {
        const char *nm = NULL;
        weft_tensor *t = NULL;
        OK(weft_optim_state(opt, i, &nm, &t));
        size_t n = 0;
        unsigned char *b = tu_tensor_copy_bytes(t, &n);
        unsigned char *grown = realloc(r->state, r->state_bytes + n + 1);
        assert_non_null(grown);
        r->state = grown;
        memcpy(r->state + r->state_bytes, b, n);
        r->state_bytes += n;
        free(b);
    }
}

static void record_loss(lin_result *r, int s, weft_plan *plan)
{
    const weft_tensor *l = NULL;
    OK(weft_plan_fetch(plan, 0, &l));
    size_t n = tu_tensor_bytes(l);
    assert_true(n <= 8);
    OK(weft_tensor_copy_to(l, r->loss[s], n));
    r->loss_bytes = n;
}

/* LSTEPS steps with weft_optim_minimize: the updates are plan targets. */
static void lin_train_static(weft_optim_kind kind, weft_dtype dt, unsigned threads,
                             lin_result *r)
{
    memset(r, 0, sizeof *r);
    weft_pool *pool = tu_make_pool(threads);
    lin_model m;
    lin_build(&m, dt);
    weft_optim_options o = lin_options(kind);
    weft_optim *opt = make_optim(&o);
    weft_value upd[2];
    OK(weft_optim_minimize(opt, m.g, m.loss, 2, m.var, upd));
    weft_plan_options po = sched_opts();
    weft_plan *plan = NULL;
    OK(weft_plan_create(m.g, pool, 1, &m.loss, 2, upd, &po, &plan));
    lin_feeds f;
    lin_feeds_make(&f, &m, dt);
    for (int s = 0; s < LSTEPS; s++) {
        OK(weft_plan_run(plan, 2, f.f));
        record_loss(r, s, plan);
    }
    lin_feeds_free(&f);
    lin_collect(r, &m, opt);
    weft_plan_destroy(plan);
    weft_optim_destroy(opt);
    weft_tgraph_destroy(m.g);
    weft_pool_destroy(pool);
}

/* The same with a plan that fetches the loss and the gradients, then weft_optim_step on
 * the graph's variable tensors between runs. */
static void lin_train_eager(weft_optim_kind kind, weft_dtype dt, unsigned threads,
                            lin_result *r)
{
    memset(r, 0, sizeof *r);
    weft_pool *pool = tu_make_pool(threads);
    lin_model m;
    lin_build(&m, dt);
    weft_optim_options o = lin_options(kind);
    weft_optim *opt = make_optim(&o);
    weft_value fetch[3];
    fetch[0] = m.loss;
    OK(weft_tgraph_gradients(m.g, m.loss, 2, m.var, &fetch[1]));
    weft_plan_options po = sched_opts();
    weft_plan *plan = NULL;
    OK(weft_plan_create(m.g, pool, 3, fetch, 0, NULL, &po, &plan));
    weft_tensor *params[2];
    for (int i = 0; i < 2; i++)
        OK(weft_tgraph_variable_tensor(m.g, m.var[i], &params[i]));
    lin_feeds f;
    lin_feeds_make(&f, &m, dt);
    for (int s = 0; s < LSTEPS; s++) {
        OK(weft_plan_run(plan, 2, f.f));
        record_loss(r, s, plan);
        const weft_tensor *grads[2];
        OK(weft_plan_fetch(plan, 1, &grads[0]));
        OK(weft_plan_fetch(plan, 2, &grads[1]));
        OK(weft_optim_step(opt, pool, 2, params, grads));
    }
    lin_feeds_free(&f);
    lin_collect(r, &m, opt);
    weft_plan_destroy(plan);
    weft_optim_destroy(opt);
    weft_tgraph_destroy(m.g);
    weft_pool_destroy(pool);
}

static void same_result(const lin_result *a, const lin_result *b, const char *what)
{
    assert_int_equal(a->loss_bytes, b->loss_bytes);
    for (int s = 0; s < LSTEPS; s++)
        if (memcmp(a->loss[s], b->loss[s], a->loss_bytes) != 0) {
            print_error("%s: the loss of step %d differs\n", what, s + 1);
            fail();
        }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(a->var_bytes[i], b->var_bytes[i]);
        if (memcmp(a->var[i], b->var[i], a->var_bytes[i]) != 0) {
            print_error("%s: the final bytes of variable %s differ\n", what, i ? "b" : "W");
            fail();
        }
    }
    assert_int_equal(a->nstate, b->nstate);
    assert_int_equal(a->state_bytes, b->state_bytes);
    if (a->state_bytes && memcmp(a->state, b->state, a->state_bytes) != 0) {
        print_error("%s: the optimizer state differs\n", what);
        fail();
    }
}

static double loss_at(const lin_result *r, int s)
{
    if (r->loss_bytes == sizeof(float)) {
        float f;
        memcpy(&f, r->loss[s], sizeof f);
        return f;
    }
    double d;
    memcpy(&d, r->loss[s], sizeof d);
    return d;
}

static void test_optim_minimize_equals_step_bit_for_bit(void **state)
{
    (void)state;
    static const weft_optim_kind kinds[3] = {WEFT_OPTIM_SGD, WEFT_OPTIM_MOMENTUM,
                                             WEFT_OPTIM_ADAM};
    static const weft_dtype dts[2] = {WEFT_F32, WEFT_F64};
    for (int k = 0; k < 3; k++)
        for (int d = 0; d < 2; d++) {
            char what[96];
            lin_result s1, s2, s4, e1, e4;
            lin_train_static(kinds[k], dts[d], 1, &s1);
            double l0 = loss_at(&s1, 0), ln = loss_at(&s1, LSTEPS - 1);
            print_message("%s %s: loss %.6g -> %.6g over %d steps\n", kind_name(kinds[k]),
                          weft_dtype_name(dts[d]), l0, ln, LSTEPS);
            assert_true(isfinite(l0) && isfinite(ln) && ln < l0); /* it does train */
            lin_train_static(kinds[k], dts[d], 2, &s2);
            lin_train_static(kinds[k], dts[d], 4, &s4);
            lin_train_eager(kinds[k], dts[d], 1, &e1);
            lin_train_eager(kinds[k], dts[d], 4, &e4);
            snprintf(what, sizeof what, "%s %s: static 2 threads vs 1", kind_name(kinds[k]),
                     weft_dtype_name(dts[d]));
            same_result(&s1, &s2, what);
            snprintf(what, sizeof what, "%s %s: static 4 threads vs 1", kind_name(kinds[k]),
                     weft_dtype_name(dts[d]));
            same_result(&s1, &s4, what);
            snprintf(what, sizeof what, "%s %s: eager vs static, 1 thread",
                     kind_name(kinds[k]), weft_dtype_name(dts[d]));
            same_result(&s1, &e1, what);
            snprintf(what, sizeof what, "%s %s: eager vs static, 4 threads",
                     kind_name(kinds[k]), weft_dtype_name(dts[d]));
            same_result(&s4, &e4, what);
            lin_result *all[5] = {&s1, &s2, &s4, &e1, &e4};
            for (int i = 0; i < 5; i++)
                lin_result_free(all[i]);
        }
}

/* ---- the learning rate ---------------------------------------------------------------- */

/* loss = sum(w * c): the gradient of w is exactly c, so a static run can be followed by
 * the reference. Two runs at lr 0.1, weft_optim_set_lr(0.025), two more runs: the new rate
 * applies from the third update on, in the plan that was compiled before the change. */
static void test_optim_set_lr_takes_effect_next_run_and_next_step(void **state)
{
    (void)state;
    static const weft_optim_kind kinds[3] = {WEFT_OPTIM_SGD, WEFT_OPTIM_MOMENTUM,
                                             WEFT_OPTIM_ADAM};
    enum { N = 6 };
    const int64_t dims[1] = {N};
    const double w0[N] = {1.0, -0.75, 0.5, 1.25, -1.5, 0.875};
    const double c[N] = {0.5, -0.25, 1.0, 0.125, -0.625, 0.75};
    weft_pool *pool = tu_make_pool(2);
    for (int k = 0; k < 3; k++)
        for (int eager = 0; eager < 2; eager++) {
            weft_optim_options o = weft_optim_options_default(kinds[k]);
            o.lr = 0.1;
            o.weight_decay = 0.02;
            weft_optim *opt = make_optim(&o);
            assert_true(weft_optim_lr(opt) == 0.1);
            ref_param r;
            ref_init(&r, N, w0);
            char what[96];
            weft_tgraph *g = NULL;
            weft_plan *plan = NULL;
            weft_tensor *param = NULL, *grad = NULL;
            if (eager) {
                param = tu_tensor_of(WEFT_F64, 1, dims, w0);
                grad = tu_tensor_of(WEFT_F64, 1, dims, c);
            } else {
                OK(weft_tgraph_create(&g));
                weft_value w, cv, prod, loss, upd;
                weft_tensor *t = tu_tensor_of(WEFT_F64, 1, dims, w0);
                OK(weft_tgraph_variable(g, t, "w", &w));
                weft_tensor_destroy(t);
                t = tu_tensor_of(WEFT_F64, 1, dims, c);
                OK(weft_tgraph_constant(g, t, "c", &cv));
                weft_tensor_destroy(t);
                OK(weft_op_mul(g, w, cv, &prod));
                OK(weft_op_sum(g, prod, WEFT_AXIS_ALL, 0, &loss));
                OK(weft_optim_minimize(opt, g, loss, 1, &w, &upd));
                weft_plan_options po = sched_opts();
                OK(weft_plan_create(g, pool, 0, NULL, 1, &upd, &po, &plan));
                OK(weft_tgraph_variable_tensor(g, w, &param));
            }
            for (int s = 0; s < 4; s++) {
                if (s == 2) {
                    OK(weft_optim_set_lr(opt, 0.025));
                    assert_true(weft_optim_lr(opt) == 0.025);
                }
                if (eager)
                    OK(weft_optim_step(opt, pool, 1, &param, (const weft_tensor *const *)&grad));
                else
                    OK(weft_plan_run(plan, 0, NULL));
                ref_step(&o, s < 2 ? 0.1 : 0.025, &r, c);
                snprintf(what, sizeof what, "%s %s, update %d", kind_name(kinds[k]),
                         eager ? "eager" : "static", s + 1);
                expect_matches_ref(opt, o.kind, 0, param, &r, WEFT_F64, what);
            }
            /* a refused rate changes nothing */
            FAILS(weft_optim_set_lr(opt, 0.0), WEFT_ERR_INVALID_ARG);
            FAILS(weft_optim_set_lr(opt, -1.0), WEFT_ERR_INVALID_ARG);
            FAILS(weft_optim_set_lr(opt, NAN), WEFT_ERR_INVALID_ARG);
            FAILS(weft_optim_set_lr(opt, INFINITY), WEFT_ERR_INVALID_ARG);
            tu_expect_message("set_lr", "weft_optim_set_lr", (const char *)NULL);
            assert_true(weft_optim_lr(opt) == 0.025);
            weft_plan_destroy(plan);
            weft_optim_destroy(opt);
            weft_tgraph_destroy(g);
            if (eager) {
                weft_tensor_destroy(param);
                weft_tensor_destroy(grad);
            }
            ref_free(&r);
        }
    weft_pool_destroy(pool);
}

/* ---- exposed state -------------------------------------------------------------------- */

/* Count, names, dtypes, shapes and contents of the state; k is the order in which the
 * parameters were first seen (p1 is stepped alone first, so it is parameter 0). */
static void test_optim_state_count_names_and_contents(void **state)
{
    (void)state;
    const int64_t d0[2] = {2, 3}, d1[1] = {4};
    const double w0[6] = {1, -1, 0.5, -0.5, 2, -2}, w1[4] = {0.25, -0.25, 1.5, -1.5};
    const double g0[6] = {0.1, 0.2, -0.3, 0.4, -0.5, 0.6}, g1[4] = {-1, 0.5, 0.25, -0.125};
    static const weft_optim_kind kinds[3] = {WEFT_OPTIM_SGD, WEFT_OPTIM_MOMENTUM,
                                             WEFT_OPTIM_ADAM};
    static const size_t per[3] = {0, 1, 3};
    for (int k = 0; k < 3; k++) {
        weft_optim_options o = weft_optim_options_default(kinds[k]);
        o.lr = 0.05;
        weft_optim *opt = make_optim(&o);
        assert_int_equal(weft_optim_state_count(opt), 0);
        weft_tensor *p0 = tu_tensor_of(WEFT_F32, 2, d0, w0);
        weft_tensor *p1 = tu_tensor_of(WEFT_F32, 1, d1, w1);
        weft_tensor *gr0 = tu_tensor_of(WEFT_F32, 2, d0, g0);
        weft_tensor *gr1 = tu_tensor_of(WEFT_F32, 1, d1, g1);
        ref_param r0, r1;
        double w0f[6], w1f[4], g0f[6], g1f[4];
        tensor_values(p0, w0f);
        tensor_values(p1, w1f);
        tensor_values(gr0, g0f);
        tensor_values(gr1, g1f);
        ref_init(&r0, 6, w0f);
        ref_init(&r1, 4, w1f);
        /* step 1: p1 alone; steps 2 and 3: both, p0 listed first */
        OK(weft_optim_step(opt, NULL, 1, &p1, (const weft_tensor *const *)&gr1));
        ref_step(&o, o.lr, &r1, g1f);
        assert_int_equal(weft_optim_state_count(opt), per[k]);
        weft_tensor *ps[2] = {p0, p1};
        const weft_tensor *gs[2] = {gr0, gr1};
        for (int s = 0; s < 2; s++) {
            OK(weft_optim_step(opt, NULL, 2, ps, gs));
            ref_step(&o, o.lr, &r0, g0f);
            ref_step(&o, o.lr, &r1, g1f);
        }
        assert_int_equal(weft_optim_state_count(opt), 2 * per[k]);
        static const char *const adam_fields[3] = {"m", "v", "t"};
        for (size_t i = 0; i < 2 * per[k]; i++) {
            const char *nm = NULL;
            weft_tensor *t = NULL;
            OK(weft_optim_state(opt, i, &nm, &t));
            assert_non_null(nm);
            assert_non_null(t);
            size_t pk = i / per[k], f = i % per[k];
            char want[48];
            snprintf(want, sizeof want, "optim.%zu.%s", pk,
                     kinds[k] == WEFT_OPTIM_MOMENTUM ? "momentum" : adam_fields[f]);
            assert_string_equal(nm, want);
            const weft_tensor *owner = pk == 0 ? p1 : p0; /* p1 was seen first */
            if (kinds[k] == WEFT_OPTIM_ADAM && f == 2) {
                assert_int_equal(weft_tensor_dtype(t), WEFT_F64);
                assert_int_equal(weft_tensor_ndim(t), 0);
                double steps = 0;
                OK(weft_tensor_get(t, 0, &steps));
                assert_true(steps == (pk == 0 ? 3.0 : 2.0));
            } else {
                assert_int_equal(weft_tensor_dtype(t), WEFT_F32);
                assert_int_equal(weft_tensor_ndim(t), weft_tensor_ndim(owner));
                for (size_t d = 0; d < weft_tensor_ndim(owner); d++)
                    assert_int_equal(weft_tensor_dim(t, d), weft_tensor_dim(owner, d));
            }
        }
        expect_matches_ref(opt, o.kind, 0, p1, &r1, WEFT_F32, kind_name(kinds[k]));
        expect_matches_ref(opt, o.kind, 1, p0, &r0, WEFT_F32, kind_name(kinds[k]));
        /* past the end and NULL arguments */
        const char *nm = "untouched";
        weft_tensor *t = NULL;
        FAILS(weft_optim_state(opt, 2 * per[k], &nm, &t), WEFT_ERR_RANGE);
        FAILS(weft_optim_state(opt, 0, NULL, &t), WEFT_ERR_INVALID_ARG);
        FAILS(weft_optim_state(opt, 0, &nm, NULL), WEFT_ERR_INVALID_ARG);
        FAILS(weft_optim_state(NULL, 0, &nm, &t), WEFT_ERR_INVALID_ARG);
        weft_optim_destroy(opt);
        weft_tensor_destroy(p0);
        weft_tensor_destroy(p1);
        weft_tensor_destroy(gr0);
        weft_tensor_destroy(gr1);
        ref_free(&r0);
        ref_free(&r1);
    }
    assert_int_equal(weft_optim_state_count(NULL), 0);
}

/* Static style: minimize gives the variables state at once (zeros, t = 0); t counts the
 * runs. */
static void test_optim_state_of_minimize_counts_runs(void **state)
{
    (void)state;
    weft_pool *pool = tu_make_pool(2);
    weft_tgraph *g = NULL;
    OK(weft_tgraph_create(&g));
    const int64_t dims[1] = {3};
    weft_value a, b, ab, loss, vars[2], upd[2];
    weft_tensor *t = tu_tensor_of(WEFT_F64, 1, dims, (const double[]){1, 2, 3});
    OK(weft_tgraph_variable(g, t, "a", &a));
    weft_tensor_destroy(t);
    t = tu_tensor_of(WEFT_F64, 1, dims, (const double[]){-1, 0.5, 2});
    OK(weft_tgraph_variable(g, t, "b", &b));
    weft_tensor_destroy(t);
    OK(weft_op_mul(g, a, b, &ab));
    OK(weft_op_sum(g, ab, WEFT_AXIS_ALL, 0, &loss));
    weft_optim_options o = weft_optim_options_default(WEFT_OPTIM_ADAM);
    weft_optim *opt = make_optim(&o);
    vars[0] = b; /* b is parameter 0: the order of vars, not of creation */
    vars[1] = a;
    OK(weft_optim_minimize(opt, g, loss, 2, vars, upd));
    assert_int_equal(weft_optim_state_count(opt), 6);
    for (size_t i = 0; i < 6; i++) {
        const char *nm = NULL;
        weft_tensor *s = NULL;
        OK(weft_optim_state(opt, i, &nm, &s));
        double vals[3];
        tensor_values(s, vals);
        for (size_t j = 0; j < weft_tensor_numel(s); j++)
            assert_true(vals[j] == 0.0);
    }
    weft_plan_options po = sched_opts();
    weft_plan *plan = NULL;
    OK(weft_plan_create(g, pool, 0, NULL, 2, upd, &po, &plan));
    for (int r = 0; r < 3; r++)
        OK(weft_plan_run(plan, 0, NULL));
    double tv = 0, m[3];
    OK(weft_tensor_get(state_named(opt, "optim.0.t"), 0, &tv));
    assert_true(tv == 3.0);
    OK(weft_tensor_get(state_named(opt, "optim.1.t"), 0, &tv));
    assert_true(tv == 3.0);
    /* b's gradient is a's value, read before a's update: g_s ~ [1, 2, 3] at each step s
     * (Adam moves a by about lr = 0.01 a step), so b's first moment after 3 steps is
     * m = 0.1 (0.81 g_1 + 0.9 g_2 + g_3) ~ 0.271 [1, 2, 3], within 0.01 */
    tensor_values(state_named(opt, "optim.0.m"), m);
    for (int j = 0; j < 3; j++)
        assert_true(fabs(m[j] - 0.271 * (j + 1)) < 0.01);
    weft_plan_destroy(plan);
    weft_optim_destroy(opt);
    weft_tgraph_destroy(g);
    weft_pool_destroy(pool);
}

/* ---- refused inputs ------------------------------------------------------------------- */

static void expect_create_fails(const weft_optim_options *o, const char *what,
                                const char *mention)
{
    weft_optim *opt = (weft_optim *)(uintptr_t)1; /* must be reset to NULL */
    weft_status s = weft_optim_create(o, &opt);
    if (s != WEFT_ERR_INVALID_ARG)
        print_error("%s: got %s\n", what, weft_status_name(s));
    assert_int_equal(s, WEFT_ERR_INVALID_ARG);
    assert_null(opt);
    tu_expect_message(what, "weft_optim_create", mention, (const char *)NULL);
}

static void test_optim_bad_options_are_refused(void **state)
{
    (void)state;
    weft_optim_options o;
    for (int k = 0; k < 3; k++) {
        o = weft_optim_options_default((weft_optim_kind)k);
        o.lr = 0;
        expect_create_fails(&o, "lr 0", "lr");
        o.lr = -0.1;
        expect_create_fails(&o, "lr -0.1", "lr");
        o.lr = NAN;
        expect_create_fails(&o, "lr NaN", "lr");
        o.lr = INFINITY;
        expect_create_fails(&o, "lr inf", "lr");
        o = weft_optim_options_default((weft_optim_kind)k);
        o.weight_decay = -0.01;
        expect_create_fails(&o, "weight_decay -0.01", "weight_decay");
    }
    o = weft_optim_options_default(WEFT_OPTIM_MOMENTUM);
    o.momentum = 1.0;
    expect_create_fails(&o, "momentum 1", "momentum");
    o.momentum = 1.5;
    expect_create_fails(&o, "momentum 1.5", "momentum");
    o.momentum = -0.1;
    expect_create_fails(&o, "momentum -0.1", "momentum");
    o = weft_optim_options_default(WEFT_OPTIM_ADAM);
    o.eps = 0;
    expect_create_fails(&o, "eps 0", "eps");
    o.eps = -1e-8;
    expect_create_fails(&o, "eps -1e-8", "eps");
    o = weft_optim_options_default(WEFT_OPTIM_ADAM);
    o.beta1 = 1.0;
    expect_create_fails(&o, "beta1 1", "beta1");
    o = weft_optim_options_default(WEFT_OPTIM_ADAM);
    o.beta2 = 1.0;
    expect_create_fails(&o, "beta2 1", "beta2");
    o = weft_optim_options_default(WEFT_OPTIM_SGD);
    o.kind = (weft_optim_kind)7;
    expect_create_fails(&o, "kind 7", "kind");
    o.kind = (weft_optim_kind)-1;
    expect_create_fails(&o, "kind -1", "kind");
    /* the edges that are allowed */
    o = weft_optim_options_default(WEFT_OPTIM_MOMENTUM);
    o.momentum = 0;
    weft_optim *opt = make_optim(&o);
    weft_optim_destroy(opt);
    o = weft_optim_options_default(WEFT_OPTIM_ADAM);
    o.beta1 = 0;
    o.beta2 = 0;
    opt = make_optim(&o);
    assert_true(weft_optim_lr(opt) == 0.01); /* the documented default */
    weft_optim_destroy(opt);
    /* NULL */
    o = weft_optim_options_default(WEFT_OPTIM_SGD);
    FAILS(weft_optim_create(NULL, &opt), WEFT_ERR_INVALID_ARG);
    FAILS(weft_optim_create(&o, NULL), WEFT_ERR_INVALID_ARG);
    weft_optim_destroy(NULL);
    FAILS(weft_optim_set_lr(NULL, 0.1), WEFT_ERR_INVALID_ARG);
    assert_true(weft_optim_lr(NULL) == 0.0);
}

/* A placeholder, a constant or an op result is not a variable; nothing is registered. */
static void test_optim_minimize_refuses_non_variables_and_null(void **state)
{
    (void)state;
    weft_tgraph *g = NULL;
    OK(weft_tgraph_create(&g));
    const int64_t dims[1] = {3};
    weft_value x, w, c, xw, loss, upd[2];
    OK(weft_tgraph_placeholder(g, WEFT_F64, 1, dims, "x", &x));
    weft_tensor *t = tu_tensor_of(WEFT_F64, 1, dims, (const double[]){1, 2, 3});
    OK(weft_tgraph_variable(g, t, "w", &w));
    OK(weft_tgraph_constant(g, t, "c", &c));
    weft_tensor_destroy(t);
    OK(weft_op_mul(g, x, w, &xw));
    OK(weft_op_sum(g, xw, WEFT_AXIS_ALL, 0, &loss));
    weft_optim_options o = weft_optim_options_default(WEFT_OPTIM_MOMENTUM);
    weft_optim *opt = make_optim(&o);
    const weft_value bad[3] = {x, c, xw};
    const char *const bad_op[3] = {"placeholder", "constant", "mul"};
    for (int i = 0; i < 3; i++) {
        weft_value vars[2] = {w, bad[i]};
        FAILS(weft_optim_minimize(opt, g, loss, 2, vars, upd), WEFT_ERR_INVALID_ARG);
        tu_expect_message("minimize with a non-variable", "weft_optim_minimize", "vars[1]",
                          "not a variable", bad_op[i], (const char *)NULL);
        assert_int_equal(weft_optim_state_count(opt), 0);
    }
    weft_value unknown = {9999};
    FAILS(weft_optim_minimize(opt, g, loss, 1, &unknown, upd), WEFT_ERR_INVALID_ARG);
    FAILS(weft_optim_minimize(NULL, g, loss, 1, &w, upd), WEFT_ERR_INVALID_ARG);
    FAILS(weft_optim_minimize(opt, NULL, loss, 1, &w, upd), WEFT_ERR_INVALID_ARG);
    FAILS(weft_optim_minimize(opt, g, loss, 1, NULL, upd), WEFT_ERR_INVALID_ARG);
    FAILS(weft_optim_minimize(opt, g, loss, 1, &w, NULL), WEFT_ERR_INVALID_ARG);
    assert_int_equal(weft_optim_state_count(opt), 0);
    /* a loss the gradients refuse (an integer argmax) */
    weft_value w2, am;
    OK(weft_op_reshape(g, w, 2, (const int64_t[]){1, 3}, &w2));
    OK(weft_op_argmax(g, w2, &am));
    FAILS(weft_optim_minimize(opt, g, am, 1, &w, upd), WEFT_ERR_INVALID_ARG);
    assert_int_equal(weft_optim_state_count(opt), 0);
    /* and a good call still works afterwards */
    OK(weft_optim_minimize(opt, g, loss, 1, &w, upd));
    assert_int_equal(weft_optim_state_count(opt), 1);
    assert_string_equal(weft_tgraph_value_op(g, upd[0]), "optim_update");
    weft_optim_destroy(opt);
    weft_tgraph_destroy(g);
}

/* Mismatched shapes or dtypes: WEFT_ERR_INVALID_ARG naming optim_update and the shapes or
 * dtypes; the parameter is untouched and Adam's step count does not advance. */
static void test_optim_step_refuses_mismatched_shapes_and_dtypes(void **state)
{
    (void)state;
    weft_optim_options o = weft_optim_options_default(WEFT_OPTIM_ADAM);
    o.lr = 0.1;
    weft_optim *opt = make_optim(&o);
    const double w0[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    weft_tensor *p = tu_tensor_of(WEFT_F32, 2, (const int64_t[]){3, 4}, w0);
    weft_tensor *g_shape = tu_tensor_of(WEFT_F32, 2, (const int64_t[]){4, 3}, w0);
    weft_tensor *g_dtype = tu_tensor_of(WEFT_F64, 2, (const int64_t[]){3, 4}, w0);
    weft_tensor *g_ok = tu_tensor_of(WEFT_F32, 2, (const int64_t[]){3, 4}, w0);
    const weft_tensor *g;

    g = g_shape;
    FAILS(weft_optim_step(opt, NULL, 1, &p, &g), WEFT_ERR_INVALID_ARG);
    tu_expect_message("shape mismatch", "optim_update", "[3,4]", "[4,3]", (const char *)NULL);
    g = g_dtype;
    FAILS(weft_optim_step(opt, NULL, 1, &p, &g), WEFT_ERR_INVALID_ARG);
    tu_expect_message("dtype mismatch", "optim_update", "f32", "f64", (const char *)NULL);
    double got[12];
    tensor_values(p, got);
    expect_near("parameter after refused steps", 12, got, w0, 0, 1);

    /* int32 parameter and gradient: not a float dtype */
    weft_tensor *pi = NULL, *gi = NULL;
    OK(weft_tensor_create(WEFT_I32, 1, (const int64_t[]){4}, &pi));
    OK(weft_tensor_create(WEFT_I32, 1, (const int64_t[]){4}, &gi));
    g = gi;
    FAILS(weft_optim_step(opt, NULL, 1, &pi, &g), WEFT_ERR_INVALID_ARG);
    tu_expect_message("i32 parameter", "optim_update", "i32", (const char *)NULL);

    /* a good step afterwards is the first step */
    g = g_ok;
    OK(weft_optim_step(opt, NULL, 1, &p, &g));
    ref_param r;
    double w0f[12];
    tensor_values(g_ok, w0f);
    ref_init(&r, 12, w0f);
    ref_step(&o, o.lr, &r, w0f);
    expect_matches_ref(opt, o.kind, 0, p, &r, WEFT_F32, "good step after refused ones");
    ref_free(&r);

    weft_optim_destroy(opt);
    weft_tensor_destroy(p);
    weft_tensor_destroy(g_shape);
    weft_tensor_destroy(g_dtype);
    weft_tensor_destroy(g_ok);
    weft_tensor_destroy(pi);
    weft_tensor_destroy(gi);
}

/* A refused step changes nothing: no parameter of the call is updated (a later bad
 * gradient does not leave the earlier parameters half-stepped) and no state is
 * registered for the refused parameters (a checkpoint would otherwise carry
 * "optim.<k>.*" tensors of a parameter that was never trained, and shift k). This is the
 * ops.h rule ("on a mismatch the call ... adds nothing") applied to weft_optim_step. */
static void test_optim_refused_step_changes_nothing(void **state)
{
    (void)state;
    weft_optim_options o = weft_optim_options_default(WEFT_OPTIM_MOMENTUM);
    weft_optim *opt = make_optim(&o);
    const double w0[4] = {1, 2, 3, 4};
    weft_tensor *p0 = tu_tensor_of(WEFT_F64, 1, (const int64_t[]){4}, w0);
    weft_tensor *p1 = tu_tensor_of(WEFT_F64, 1, (const int64_t[]){4}, w0);
    weft_tensor *g_ok = tu_tensor_of(WEFT_F64, 1, (const int64_t[]){4}, w0);
    weft_tensor *g_bad = tu_tensor_of(WEFT_F64, 1, (const int64_t[]){2}, w0);
    weft_tensor *ps[2] = {p0, p1};
    const weft_tensor *gs[2] = {g_ok, g_bad};
    FAILS(weft_optim_step(opt, NULL, 2, ps, gs), WEFT_ERR_INVALID_ARG);
    tu_expect_message("params[1] mismatched", "optim_update", "[4]", "[2]", (const char *)NULL);
    double got[4];
    tensor_values(p0, got);
    expect_near("params[0] after a step refused for params[1]", 4, got, w0, 0, 1);
    if (weft_optim_state_count(opt) != 0)
        print_error("a refused step registered %zu state tensors\n",
                    weft_optim_state_count(opt));
    assert_int_equal(weft_optim_state_count(opt), 0);
    weft_optim_destroy(opt);
    weft_tensor_destroy(p0);
    weft_tensor_destroy(p1);
    weft_tensor_destroy(g_ok);
    weft_tensor_destroy(g_bad);
}

static void test_optim_step_null_arguments(void **state)
{
    (void)state;
    weft_optim_options o = weft_optim_options_default(WEFT_OPTIM_MOMENTUM);
    weft_optim *opt = make_optim(&o);
    weft_tensor *p = tu_tensor_of(WEFT_F64, 1, (const int64_t[]){2}, (const double[]){1, 2});
    const weft_tensor *g = p;
    weft_tensor *pnull = NULL;
    const weft_tensor *gnull = NULL;
    FAILS(weft_optim_step(NULL, NULL, 1, &p, &g), WEFT_ERR_INVALID_ARG);
    tu_expect_message("NULL optim", "weft_optim_step", (const char *)NULL);
    FAILS(weft_optim_step(opt, NULL, 1, NULL, &g), WEFT_ERR_INVALID_ARG);
    FAILS(weft_optim_step(opt, NULL, 1, &p, NULL), WEFT_ERR_INVALID_ARG);
    FAILS(weft_optim_step(opt, NULL, 1, &pnull, &g), WEFT_ERR_INVALID_ARG);
    tu_expect_message("NULL params[0]", "weft_optim_step", "params[0]", (const char *)NULL);
    FAILS(weft_optim_step(opt, NULL, 1, &p, &gnull), WEFT_ERR_INVALID_ARG);
    /* n = 0 is a no-op, arrays or not */
    OK(weft_optim_step(opt, NULL, 0, NULL, NULL));
    double got[2];
    tensor_values(p, got);
    expect_near("parameter after refused steps", 2, got, (const double[]){1, 2}, 0, 1);
    weft_optim_destroy(opt);
    weft_tensor_destroy(p);
}

/* ---- a parameter that splits into chunks ---------------------------------------------- */

/* More than 32768 elements (an odd count, so the last chunk is short): 3 steps on a
 * 4-thread pool give the same bytes as with pool NULL, and f64 follows the reference. */
/* weft_optim_attach creates the state without a step (parameters and state untouched),
 * in order, once per parameter. */
static void test_optim_attach_creates_state_without_stepping(void **state)
{
    (void)state;
    weft_optim_options o = weft_optim_options_default(WEFT_OPTIM_ADAM);
    o.weight_decay = 0.5; /* a step with zero gradients would still move w */
    weft_optim *opt = NULL;
    OK(weft_optim_create(&o, &opt));
    int64_t d[1] = {3};
    const double w0[3] = {1, -2, 3}, w1v[3] = {4, 5, 6};
    weft_tensor *w[2] = {tu_tensor_of(WEFT_F64, 1, d, w0), tu_tensor_of(WEFT_F64, 1, d, w1v)};
    OK(weft_optim_attach(opt, 2, w));
    OK(weft_optim_attach(opt, 2, w)); /* known parameters: nothing new */
    assert_int_equal(weft_optim_state_count(opt), 6);
    const double *wd = weft_tensor_data_const(w[0]);
    assert_true(wd[0] == 1 && wd[1] == -2 && wd[2] == 3);
    weft_tensor *t = state_named(opt, "optim.1.t");
    assert_non_null(t);
    double tv = -1;
    OK(weft_tensor_get(t, 0, &tv));
    assert_true(tv == 0);
    weft_tensor *bad[1] = {NULL};
    assert_int_equal(weft_optim_attach(opt, 1, bad), WEFT_ERR_INVALID_ARG);
    weft_optim_destroy(opt);
    weft_tensor_destroy(w[0]);
    weft_tensor_destroy(w[1]);
}

/* State that decays below the smallest normal number is flushed to zero (subnormal
 * arithmetic would slow every later step), in f32 and f64. */
static void test_optim_subnormal_state_is_flushed(void **state)
{
    (void)state;
    weft_dtype dts[2] = {WEFT_F32, WEFT_F64};
    for (int k = 0; k < 2; k++) {
        weft_optim_options o = weft_optim_options_default(WEFT_OPTIM_MOMENTUM);
        o.momentum = 0.5;
        weft_optim *opt = NULL;
        OK(weft_optim_create(&o, &opt));
        int64_t d[1] = {1};
        const double one = 1, zero = 0;
        weft_tensor *w = tu_tensor_of(dts[k], 1, d, &zero), *g1 = tu_tensor_of(dts[k], 1, d, &one),
                    *g0 = tu_tensor_of(dts[k], 1, d, &zero);
        OK(weft_optim_step(opt, NULL, 1, &w, (const weft_tensor *const *)&g1));
        /* b halves every step with a zero gradient: after 130 (f32) or 1030 (f64) steps it
         * would be 2^-130 / 2^-1030, subnormal but not yet 0; flushed, it is exactly 0 */
        int steps = dts[k] == WEFT_F32 ? 130 : 1030;
        for (int s = 0; s < steps; s++)
            OK(weft_optim_step(opt, NULL, 1, &w, (const weft_tensor *const *)&g0));
        weft_tensor *b = state_named(opt, "optim.0.momentum");
        assert_non_null(b);
        double bv = -1;
        OK(weft_tensor_get(b, 0, &bv));
        assert_true(bv == 0);
        weft_optim_destroy(opt);
        weft_tensor_destroy(w);
        weft_tensor_destroy(g1);
        weft_tensor_destroy(g0);
    }
}

static void test_optim_large_parameter_pool_equals_no_pool(void **state)
{
    (void)state;
    const size_t n = TU_SCALE(100003, 40001);
    const int64_t dims[1] = {(int64_t)n};
    static const weft_optim_kind kinds[3] = {WEFT_OPTIM_SGD, WEFT_OPTIM_MOMENTUM,
                                             WEFT_OPTIM_ADAM};
    static const weft_dtype dts[2] = {WEFT_F32, WEFT_F64};
    weft_pool *pool = tu_make_pool(4);
    double *w0 = malloc(n * sizeof *w0), *gv = malloc(3 * n * sizeof *gv);
    assert_true(w0 && gv);
    for (int k = 0; k < 3; k++)
        for (int d = 0; d < 2; d++) {
            weft_dtype dt = dts[d];
            tu_rng rng;
            tu_rng_seed(&rng, 77 + (uint64_t)d);
            for (size_t i = 0; i < n; i++)
                w0[i] = (i % 2 ? -1 : 1) * rnd(&rng, 0.5, 1.5, dt);
            for (size_t i = 0; i < 3 * n; i++)
                gv[i] = rnd(&rng, -1, 1, dt);
            weft_optim_options o = weft_optim_options_default(kinds[k]);
            o.lr = 0.02;
            o.weight_decay = 0.01;
            weft_optim *with_pool = make_optim(&o), *no_pool = make_optim(&o);
            weft_tensor *pa = tu_tensor_of(dt, 1, dims, w0), *pb = tu_tensor_of(dt, 1, dims, w0);
            weft_tensor *g = tu_tensor_of(dt, 1, dims, gv);
            ref_param r;
            ref_init(&r, n, w0);
            for (int s = 0; s < 3; s++) {
                tu_tensor_set(g, gv + (size_t)s * n);
                OK(weft_optim_step(with_pool, pool, 1, &pa, (const weft_tensor *const *)&g));
                OK(weft_optim_step(no_pool, NULL, 1, &pb, (const weft_tensor *const *)&g));
                ref_step(&o, o.lr, &r, gv + (size_t)s * n);
            }
            char what[96];
            snprintf(what, sizeof what, "%s %s, %zu elements", kind_name(kinds[k]),
                     weft_dtype_name(dt), n);
            size_t ba = 0, bb = 0;
            unsigned char *xa = tu_tensor_copy_bytes(pa, &ba), *xb = tu_tensor_copy_bytes(pb, &bb);
            assert_int_equal(ba, bb);
            if (memcmp(xa, xb, ba) != 0) {
                print_error("%s: 4-thread pool and no pool differ\n", what);
                fail();
            }
            free(xa);
            free(xb);
            for (size_t i = 0; i < weft_optim_state_count(with_pool); i++) {
                const char *na, *nb;
                weft_tensor *sa, *sb;
                OK(weft_optim_state(with_pool, i, &na, &sa));
                OK(weft_optim_state(no_pool, i, &nb, &sb));
                assert_string_equal(na, nb);
                xa = tu_tensor_copy_bytes(sa, &ba);
                xb = tu_tensor_copy_bytes(sb, &bb);
                assert_int_equal(ba, bb);
                if (memcmp(xa, xb, ba) != 0) {
                    print_error("%s: state %s differs between pool and no pool\n", what, na);
                    fail();
                }
                free(xa);
                free(xb);
            }
            expect_matches_ref(with_pool, o.kind, 0, pa, &r, dt, what);
            ref_free(&r);
            weft_optim_destroy(with_pool);
            weft_optim_destroy(no_pool);
            weft_tensor_destroy(pa);
            weft_tensor_destroy(pb);
            weft_tensor_destroy(g);
        }
    free(w0);
    free(gv);
    weft_pool_destroy(pool);
}

int main(void)
{
    tu_main_init(240);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_optim_step_matches_formulas),
        cmocka_unit_test(test_optim_step_hand_worked_examples),
        cmocka_unit_test(test_optim_minimize_equals_step_bit_for_bit),
        cmocka_unit_test(test_optim_set_lr_takes_effect_next_run_and_next_step),
        cmocka_unit_test(test_optim_state_count_names_and_contents),
        cmocka_unit_test(test_optim_state_of_minimize_counts_runs),
        cmocka_unit_test(test_optim_bad_options_are_refused),
        cmocka_unit_test(test_optim_minimize_refuses_non_variables_and_null),
        cmocka_unit_test(test_optim_step_refuses_mismatched_shapes_and_dtypes),
        cmocka_unit_test(test_optim_refused_step_changes_nothing),
        cmocka_unit_test(test_optim_step_null_arguments),
        cmocka_unit_test(test_optim_large_parameter_pool_equals_no_pool),
        cmocka_unit_test(test_optim_attach_creates_state_without_stepping),
        cmocka_unit_test(test_optim_subnormal_state_is_flushed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

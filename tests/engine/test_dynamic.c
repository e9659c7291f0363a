/* tests/engine/test_dynamic.c - dynamic graphs (define by run), weft/dynamic.h: what an
 * iteration means, gradients and errors. The memory, stress and benchmark cases are in
 * tests/engine/test_dynamic_stress.c; helpers both suites use are in tests/util/tu_dyn.h.
 *
 * What is checked, against the promises of the header:
 *   - an iteration records a new graph whose shapes may differ from the last one: a small
 *     MLP fed batches of 3, 17, 1, 64 and 3 rows again gives the naive reference's result
 *     each time (tests/util/tu_tensor.h), on 1 and 4 threads;
 *   - reading a value in the middle of an iteration evaluates what is pending, C code can
 *     branch and loop on the value and record more ops, and every tensor read stays valid
 *     (same address, same bytes) until the next weft_dyn_begin;
 *   - weft_dyn_backward gives, bit for bit, the gradients of the equivalent static graph
 *     (variables, weft_tgraph_gradients, a plan fetching them), f32 and f64, on 1 and 4
 *     threads, with and without a read of the loss before the backward pass;
 *   - gradients accumulate into the caller's tensors until zeroed (two backward calls in
 *     two iterations or in one), a parameter used twice gets one value and the summed
 *     gradient, a frozen parameter (grad NULL) gets none;
 *   - an XOR-like net trained with weft_optim_step (momentum) converges, with loss history
 *     and parameters bit-identical on 1, 2, 4 and 16 threads;
 *   - errors: a shape error when recording leaves the iteration usable, a gather id out of
 *     range fails the read with WEFT_ERR_RANGE and the next iteration works, check mode
 *     names the op (forward and backward), a failed evaluation is not repeated by the next
 *     one; argument errors.
 *
 * cmocka is not thread-safe: nothing here asserts from a worker; every check runs on the
 * main thread after the weft call returned.
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
#include "tests/util/tu_dyn.h"
#include "tests/util/tu_tensor.h"
#include "tests/util/tu_weft.h"
#include "weft.h"

/* ---- helpers ------------------------------------------------------------------------- */

static const double *read_f64(weft_dyn *d, weft_value v, size_t numel)
{
    const weft_tensor *t = NULL;
    OK(weft_dyn_read(d, v, &t));
    assert_int_equal(weft_tensor_dtype(t), WEFT_F64);
    assert_int_equal(weft_tensor_numel(t), numel);
    return weft_tensor_data_const(t);
}

static const double *f64_data(const weft_tensor *t)
{
    assert_int_equal(weft_tensor_dtype(t), WEFT_F64);
    return weft_tensor_data_const(t);
}

static void expect_ref(const weft_tensor *got, const tu_ref *want, double tol, const char *what)
{
    tu_ref g = {0};
    assert_int_equal(tu_ref_from_tensor(&g, got), 0);
    tu_cmp c = tu_ref_compare(&g, want, 1.0);
    if (!(c.max_err <= tol)) {
        char s1[128], s2[128];
        print_error("%s: shape %s vs %s, max error %.3g at %zu (%.17g, want %.17g)\n", what,
                    tu_shape_str(g.ndim, g.dims, s1, sizeof s1),
                    tu_shape_str(want->ndim, want->dims, s2, sizeof s2), c.max_err, c.index,
                    c.got, c.want);
        fail();
    }
    tu_ref_free(&g);
}

static double f_add(double a, double b) { return a + b; }
static double f_tanh(double a, double p) { (void)p; return tanh(a); }

/* ---- shapes that change ---------------------------------------------------------------- */

/* x[B,5] -> tanh(x @ W1 + b1) [B,7] -> o = h @ W2 + b2 [B,3] -> softmax(o); loss = sum(o).
 * Each batch size gets its own reference; d loss / d b2 = B per column exactly, and
 * d loss / d W2 [i,j] = sum over rows of h[., i]. */
static void shapes_on(unsigned threads, int scheduled)
{
    weft_pool *pool = tu_make_pool(threads);
    weft_dyn *d = tu_dyn_make(pool, scheduled);
    enum { D = 5, H = 7, O = 3 };
    weft_tensor *par[4] = {
        tu_rand_tensor(WEFT_F64, 2, (int64_t[]){D, H}, WEFT_INIT_XAVIER, 11, 0, 0),
        tu_rand_tensor(WEFT_F64, 1, (int64_t[]){H}, WEFT_INIT_UNIFORM, 12, -0.5, 0.5),
        tu_rand_tensor(WEFT_F64, 2, (int64_t[]){H, O}, WEFT_INIT_XAVIER, 13, 0, 0),
        tu_rand_tensor(WEFT_F64, 1, (int64_t[]){O}, WEFT_INIT_UNIFORM, 14, -0.5, 0.5)};
    weft_tensor *grad[4];
    tu_ref rp[4];
    memset(rp, 0, sizeof rp);
    for (int i = 0; i < 4; i++) {
        grad[i] = tu_dyn_zeros_like(par[i]);
        assert_int_equal(tu_ref_from_tensor(&rp[i], par[i]), 0);
    }
    static const int64_t batches[] = {3, 17, 1, 64, 3};
    for (size_t it = 0; it < sizeof batches / sizeof batches[0]; it++) {
        int64_t B = batches[it];
        weft_tensor *tx = tu_rand_tensor(WEFT_F64, 2, (int64_t[]){B, D}, WEFT_INIT_UNIFORM,
                                         100 + it, -2, 2);
        for (int i = 0; i < 4; i++)
            OK(weft_tensor_fill(grad[i], 0));
        weft_tgraph *g = NULL;
        OK(weft_dyn_begin(d, &g));
        weft_value x, p[4], a, z, h, o, o2, sm, loss;
        OK(weft_dyn_input(d, tx, &x));
        for (int i = 0; i < 4; i++)
            OK(weft_dyn_param(d, par[i], grad[i], &p[i]));
        OK(weft_op_matmul(g, x, p[0], 0, &a));
        OK(weft_op_add(g, a, p[1], &z));
        OK(weft_op_tanh(g, z, &h));
        OK(weft_op_matmul(g, h, p[2], 0, &o));
        OK(weft_op_add(g, o, p[3], &o2));
        OK(weft_op_softmax(g, o2, &sm));
        OK(weft_op_sum(g, o2, WEFT_AXIS_ALL, 0, &loss));
        /* the build-time shapes already follow the batch */
        int64_t dims[WEFT_MAX_DIMS];
        size_t nd = 0;
        OK(weft_tgraph_value_info(g, sm, NULL, &nd, dims));
        assert_int_equal(nd, 2);
        assert_int_equal(dims[0], B);
        assert_int_equal(dims[1], O);

        tu_ref rx = {0}, ra = {0}, rz = {0}, rh = {0}, ro = {0}, ro2 = {0}, rsm = {0}, rl = {0};
        assert_int_equal(tu_ref_from_tensor(&rx, tx), 0);
        assert_int_equal(tu_ref_matmul(&rx, &rp[0], 0, 0, &ra), 0);
        assert_int_equal(tu_ref_binary(&ra, &rp[1], f_add, &rz), 0);
        assert_int_equal(tu_ref_unary(&rz, f_tanh, 0, &rh), 0);
        assert_int_equal(tu_ref_matmul(&rh, &rp[2], 0, 0, &ro), 0);
        assert_int_equal(tu_ref_binary(&ro, &rp[3], f_add, &ro2), 0);
        assert_int_equal(tu_ref_softmax(&ro2, 0, &rsm), 0);
        assert_int_equal(tu_ref_reduce(&ro2, WEFT_AXIS_ALL, 0, 0, &rl), 0);

        char what[64];
        snprintf(what, sizeof what, "B=%lld, %u threads: softmax", (long long)B, threads);
        const weft_tensor *t = NULL;
        OK(weft_dyn_read(d, sm, &t));
        expect_ref(t, &rsm, 1e-12, what);
        OK(weft_dyn_read(d, h, &t));
        snprintf(what, sizeof what, "B=%lld, %u threads: hidden", (long long)B, threads);
        expect_ref(t, &rh, 1e-12, what);
        OK(weft_dyn_backward(d, loss));
        double l = tu_dyn_read_scalar(d, loss);
        assert_true(fabs(l - rl.v[0]) <= 1e-12 * fmax(1.0, fabs(rl.v[0])));
        const double *gb2 = f64_data(grad[3]);
        for (int j = 0; j < O; j++)
            assert_true(gb2[j] == (double)B);
        const double *gw2 = f64_data(grad[2]);
        for (int i = 0; i < H; i++) {
            double s = 0;
            for (int64_t r = 0; r < B; r++)
                s += rh.v[r * H + i];
            for (int j = 0; j < O; j++)
                assert_true(fabs(gw2[i * O + j] - s) <= 1e-12 * fmax(1.0, fabs(s)));
        }
        weft_dyn_stats st;
        OK(weft_dyn_stats_get(d, &st));
        assert_true(st.nodes > 12);
        assert_true(st.evals >= 2); /* the reads, then the backward pass */

        tu_ref *refs[] = {&rx, &ra, &rz, &rh, &ro, &ro2, &rsm, &rl};
        for (size_t k = 0; k < sizeof refs / sizeof refs[0]; k++)
            tu_ref_free(refs[k]);
        weft_tensor_destroy(tx); /* allowed: the iteration has been evaluated */
    }
    for (int i = 0; i < 4; i++) {
        weft_tensor_destroy(par[i]);
        weft_tensor_destroy(grad[i]);
        tu_ref_free(&rp[i]);
    }
    weft_dyn_destroy(d);
    weft_pool_destroy(pool);
}

static void test_dynamic_shapes_change_across_iterations(void **state)
{
    (void)state;
    shapes_on(1, 0);
    shapes_on(4, 1);
    shapes_on(4, 0);
}

/* ---- reading values mid-graph ---------------------------------------------------------- */

static void test_dynamic_reads_mid_graph_and_branches_in_c(void **state)
{
    (void)state;
    weft_pool *pool = tu_make_pool(4);
    for (int scheduled = 0; scheduled < 2; scheduled++) {
        weft_dyn *d = tu_dyn_make(pool, scheduled);
        static const double xv[4] = {1, -2, 3, 0.5};
        weft_tensor *tx = tu_f64_tensor(1, (int64_t[]){4}, xv);
        weft_tgraph *g = NULL;
        OK(weft_dyn_begin(d, &g));
        weft_value x, s, y, m, z;
        OK(weft_dyn_input(d, tx, &x));
        OK(weft_op_sum(g, x, WEFT_AXIS_ALL, 0, &s));
        double sv = tu_dyn_read_scalar(d, s);
        assert_true(sv == 2.5);
        weft_dyn_stats st;
        OK(weft_dyn_stats_get(d, &st));
        assert_int_equal(st.evals, 1);
        /* branch in C on the value, and use it as an attribute of the next op */
        if (sv > 0)
            OK(weft_op_scale(g, x, sv, &y));
        else
            OK(weft_op_neg(g, x, &y));
        const weft_tensor *ty = NULL;
        OK(weft_dyn_read(d, y, &ty));
        const double *yd = weft_tensor_data_const(ty);
        for (int i = 0; i < 4; i++)
            assert_true(yd[i] == xv[i] * 2.5);
        unsigned char *ybytes = tu_tensor_copy_bytes(ty, NULL);
        /* a loop whose trip count depends on computed values: double until the mean
         * passes 20 */
        OK(weft_op_mean(g, y, WEFT_AXIS_ALL, 0, &m));
        double mv = tu_dyn_read_scalar(d, m), want = 2.5 * 2.5 / 4;
        assert_true(mv == want);
        int trips = 0;
        weft_value cur = y;
        while (tu_dyn_read_scalar(d, m) <= 20) {
            OK(weft_op_scale(g, cur, 2.0, &cur));
            OK(weft_op_mean(g, cur, WEFT_AXIS_ALL, 0, &m));
            want *= 2;
            trips++;
        }
        int c_trips = 0;
        for (double w = 2.5 * 2.5 / 4; w <= 20; w *= 2)
            c_trips++;
        assert_int_equal(trips, c_trips);
        assert_true(tu_dyn_read_scalar(d, m) == want);
        OK(weft_op_exp(g, cur, &z));
        const double *zd = read_f64(d, z, 4);
        for (int i = 0; i < 4; i++)
            assert_true(fabs(zd[i] - exp(xv[i] * 2.5 * ldexp(1.0, trips))) <=
                        1e-15 * exp(xv[i] * 2.5 * ldexp(1.0, trips)));
        /* the earlier read is still valid: same address, same bytes */
        const weft_tensor *ty2 = NULL;
        OK(weft_dyn_read(d, y, &ty2));
        assert_ptr_equal(weft_tensor_data_const(ty2), yd);
        assert_memory_equal(weft_tensor_data_const(ty), ybytes, 4 * sizeof(double));
        /* reading again evaluates nothing new */
        OK(weft_dyn_stats_get(d, &st));
        size_t evals = st.evals;
        (void)tu_dyn_read_scalar(d, s);
        OK(weft_dyn_stats_get(d, &st));
        assert_int_equal(st.evals, evals);
        assert_true(evals >= (size_t)(3 + trips));
        /* the input read back is the caller's data */
        const double *xd = read_f64(d, x, 4);
        assert_memory_equal(xd, xv, sizeof xv);
        /* shape ops and graph constants on the values read so far: r = [[1,-2],[3,0.5]],
         * c = concat(r, r^T) along axis 0, rows 1..2 of it, times the constant 3 */
        weft_value r, rt, cc, sl, k3, out;
        OK(weft_op_reshape(g, x, 2, (int64_t[]){2, 2}, &r));
        OK(weft_op_transpose(g, r, NULL, &rt));
        OK(weft_op_concat(g, 2, (weft_value[]){r, rt}, 0, &cc));
        OK(weft_op_slice(g, cc, 0, 1, 3, &sl));
        OK(weft_tgraph_scalar(g, WEFT_F64, 3.0, &k3));
        OK(weft_op_mul(g, sl, k3, &out));
        const double *od = read_f64(d, out, 4);
        static const double want_out[4] = {9, 1.5, 3, 9};
        assert_memory_equal(od, want_out, sizeof want_out);
        const double *rd = read_f64(d, r, 4); /* the reshape itself */
        assert_memory_equal(rd, xv, sizeof xv);
        /* scalar of a value that is not one element */
        double bad = 0;
        tu_expect_status(weft_dyn_scalar(d, y, &bad), WEFT_ERR_INVALID_ARG, "scalar of [4]");
        tu_expect_message("scalar of [4]", "[4]", NULL);
        /* the next iteration releases the old one: its values are gone */
        OK(weft_dyn_begin(d, &g));
        OK(weft_dyn_stats_get(d, &st));
        assert_int_equal(st.nodes, 0);
        assert_int_equal(st.evals, 0);
        tu_expect_status(weft_dyn_read(d, z, &ty), WEFT_ERR_INVALID_ARG, "read of an old value");
        /* an empty evaluation is fine */
        OK(weft_dyn_eval(d));
        free(ybytes);
        weft_tensor_destroy(tx);
        weft_dyn_destroy(d);
    }
    weft_pool_destroy(pool);
}

/* ---- gradients: dynamic == static ------------------------------------------------------ */

/* x[B,D] -> sigmoid(tanh(x @ W1 + b1) @ W2 + b2) -> mse against y, plus 1e-3 * mean(W1 * W1)
 * (W1 used twice, so its gradient sums two contributions). The static and the dynamic run
 * record these ops in the same order. */
enum { GP = 4 };

typedef struct gcase {
    weft_dtype dt;
    weft_tensor *x, *y;
    weft_tensor *par[GP];
} gcase;

static weft_value gcase_forward(weft_tgraph *g, weft_value x, weft_value y, const weft_value *p)
{
    weft_value a, z, h, o, o2, pr, mse, sq, reg, reg2, loss;
    OK(weft_op_matmul(g, x, p[0], 0, &a));
    OK(weft_op_add(g, a, p[1], &z));
    OK(weft_op_tanh(g, z, &h));
    OK(weft_op_matmul(g, h, p[2], 0, &o));
    OK(weft_op_add(g, o, p[3], &o2));
    OK(weft_op_sigmoid(g, o2, &pr));
    OK(weft_op_mse(g, pr, y, &mse));
    OK(weft_op_mul(g, p[0], p[0], &sq));
    OK(weft_op_mean(g, sq, WEFT_AXIS_ALL, 0, &reg));
    OK(weft_op_scale(g, reg, 1e-3, &reg2));
    OK(weft_op_add(g, mse, reg2, &loss));
    return loss;
}

static void gcase_make(gcase *c, weft_dtype dt)
{
    /* large enough that the first matmul splits into tiles and tanh into chunks */
    enum { B = 256, D = 160, H = 256, O = 12 };
    c->dt = dt;
    c->x = tu_rand_tensor(dt, 2, (int64_t[]){B, D}, WEFT_INIT_UNIFORM, 21, -1, 1);
    c->y = tu_rand_tensor(dt, 2, (int64_t[]){B, O}, WEFT_INIT_UNIFORM, 22, 0, 1);
    c->par[0] = tu_rand_tensor(dt, 2, (int64_t[]){D, H}, WEFT_INIT_XAVIER, 23, 0, 0);
    c->par[1] = tu_rand_tensor(dt, 1, (int64_t[]){H}, WEFT_INIT_UNIFORM, 24, -0.1, 0.1);
    c->par[2] = tu_rand_tensor(dt, 2, (int64_t[]){H, O}, WEFT_INIT_XAVIER, 25, 0, 0);
    c->par[3] = tu_rand_tensor(dt, 1, (int64_t[]){O}, WEFT_INIT_UNIFORM, 26, -0.1, 0.1);
}

static void gcase_free(gcase *c)
{
    weft_tensor_destroy(c->x);
    weft_tensor_destroy(c->y);
    for (int i = 0; i < GP; i++)
        weft_tensor_destroy(c->par[i]);
}

/* out[0] = loss bytes, out[1 + i] = gradient i bytes (malloc'd). */
static void gcase_static(const gcase *c, weft_pool *pool, unsigned char **out, size_t *n)
{
    weft_tgraph *g = NULL;
    OK(weft_tgraph_create(&g));
    weft_value x, y, v[GP], grads[GP], loss;
    int64_t xd[2] = {weft_tensor_dim(c->x, 0), weft_tensor_dim(c->x, 1)};
    int64_t yd[2] = {weft_tensor_dim(c->y, 0), weft_tensor_dim(c->y, 1)};
    OK(weft_tgraph_placeholder(g, c->dt, 2, xd, "x", &x));
    OK(weft_tgraph_placeholder(g, c->dt, 2, yd, "y", &y));
    for (int i = 0; i < GP; i++)
        OK(weft_tgraph_variable(g, c->par[i], NULL, &v[i]));
    loss = gcase_forward(g, x, y, v);
    OK(weft_tgraph_gradients(g, loss, GP, v, grads));
    weft_value fetch[1 + GP] = {loss};
    memcpy(fetch + 1, grads, sizeof grads);
    weft_plan_options po = tu_dyn_options(1, 0);
    weft_plan *plan = NULL;
    OK(weft_plan_create(g, pool, 1 + GP, fetch, 0, NULL, &po, &plan));
    weft_feed f[2] = {{x, c->x}, {y, c->y}};
    OK(weft_plan_run(plan, 2, f));
    for (int i = 0; i < 1 + GP; i++) {
        const weft_tensor *t = NULL;
        OK(weft_plan_fetch(plan, (size_t)i, &t));
        out[i] = tu_tensor_copy_bytes(t, &n[i]);
    }
    weft_plan_destroy(plan);
    weft_tgraph_destroy(g);
}

/* The same in dynamic mode; read_first reads the loss before the backward pass, so that
 * forward and backward run as two evaluations. */
static void gcase_dynamic(const gcase *c, weft_pool *pool, int scheduled, int read_first,
                          unsigned char **out, size_t *n)
{
    weft_dyn *d = tu_dyn_make(pool, scheduled);
    weft_tensor *grad[GP];
    for (int i = 0; i < GP; i++)
        grad[i] = tu_dyn_zeros_like(c->par[i]);
    weft_tgraph *g = NULL;
    OK(weft_dyn_begin(d, &g));
    weft_value x, y, p[GP];
    OK(weft_dyn_input(d, c->x, &x));
    OK(weft_dyn_input(d, c->y, &y));
    for (int i = 0; i < GP; i++)
        OK(weft_dyn_param(d, c->par[i], grad[i], &p[i]));
    weft_value loss = gcase_forward(g, x, y, p);
    if (read_first)
        (void)tu_dyn_read_scalar(d, loss);
    OK(weft_dyn_backward(d, loss));
    const weft_tensor *lt = NULL;
    OK(weft_dyn_read(d, loss, &lt));
    out[0] = tu_tensor_copy_bytes(lt, &n[0]);
    for (int i = 0; i < GP; i++)
        out[1 + i] = tu_tensor_copy_bytes(grad[i], &n[1 + i]);
    weft_dyn_stats st;
    OK(weft_dyn_stats_get(d, &st));
    assert_int_equal(st.evals, read_first ? 2 : 1);
    for (int i = 0; i < GP; i++)
        weft_tensor_destroy(grad[i]);
    weft_dyn_destroy(d);
}

static void same_bytes(unsigned char **a, size_t *na, unsigned char **b, size_t *nb,
                       const char *what)
{
    static const char *const names[1 + GP] = {"loss", "dW1", "db1", "dW2", "db2"};
    for (int i = 0; i < 1 + GP; i++) {
        assert_int_equal(na[i], nb[i]);
        if (memcmp(a[i], b[i], na[i]) != 0) {
            print_error("%s: %s differs\n", what, names[i]);
            fail();
        }
    }
}

static void test_dynamic_gradients_equal_static_graph(void **state)
{
    (void)state;
    static const weft_dtype dts[2] = {WEFT_F32, WEFT_F64};
    static const unsigned threads[2] = {1, 4};
    for (int k = 0; k < 2; k++) {
        gcase c;
        gcase_make(&c, dts[k]);
        unsigned char *ref[1 + GP];
        size_t nref[1 + GP];
        weft_pool *p1 = tu_make_pool(1);
        gcase_static(&c, p1, ref, nref);
        weft_pool_destroy(p1);
        double l;
        if (c.dt == WEFT_F32) {
            float f;
            memcpy(&f, ref[0], sizeof f);
            l = f;
        } else {
            memcpy(&l, ref[0], sizeof l);
        }
        assert_true(isfinite(l) && l > 0);
        for (int t = 0; t < 2; t++) {
            weft_pool *pool = tu_make_pool(threads[t]);
            for (int variant = 0; variant < 4; variant++) {
                unsigned char *got[1 + GP];
                size_t ngot[1 + GP];
                char what[96];
                if (variant == 0) {
                    gcase_static(&c, pool, got, ngot);
                } else {
                    int scheduled = variant != 3, read_first = variant == 2;
                    gcase_dynamic(&c, pool, scheduled, read_first, got, ngot);
                }
                snprintf(what, sizeof what, "%s, %u threads, %s vs static on 1 thread",
                         weft_dtype_name(c.dt), threads[t],
                         variant == 0   ? "static"
                         : variant == 1 ? "dynamic (scheduled)"
                         : variant == 2 ? "dynamic, loss read before backward"
                                        : "dynamic (default options)");
                same_bytes(ref, nref, got, ngot, what);
                for (int i = 0; i < 1 + GP; i++)
                    free(got[i]);
            }
            weft_pool_destroy(pool);
        }
        for (int i = 0; i < 1 + GP; i++)
            free(ref[i]);
        gcase_free(&c);
    }
}

/* ---- accumulation, shared and frozen parameters ---------------------------------------- */

static void test_dynamic_gradients_accumulate_until_zeroed(void **state)
{
    (void)state;
    weft_pool *pool = tu_make_pool(2);
    weft_dyn *d = tu_dyn_make(pool, 1);
    static const double xv[3] = {0.5, -1, 4}, wv[3] = {1, 2, -3}, fv[3] = {0.25, 8, -2};
    weft_tensor *tx = tu_f64_tensor(1, (int64_t[]){3}, xv);
    weft_tensor *w = tu_f64_tensor(1, (int64_t[]){3}, wv), *gw = tu_dyn_zeros_like(w);
    weft_tensor *fz = tu_f64_tensor(1, (int64_t[]){3}, fv);
    weft_tgraph *g = NULL;
    weft_value x, pw, pw2, pf, m, loss, m2, s2, loss2, mf, loss3;

    /* loss = sum(w * x): d/dw = x; accumulated over iterations and calls */
    double mult[] = {1, 2, 4, 1};
    for (int it = 0; it < 4; it++) {
        if (it == 3)
            OK(weft_tensor_fill(gw, 0));
        OK(weft_dyn_begin(d, &g));
        OK(weft_dyn_input(d, tx, &x));
        OK(weft_dyn_param(d, w, gw, &pw));
        OK(weft_op_mul(g, pw, x, &m));
        OK(weft_op_sum(g, m, WEFT_AXIS_ALL, 0, &loss));
        OK(weft_dyn_backward(d, loss));
        if (it == 2) /* a second backward call in the same iteration adds once more */
            OK(weft_dyn_backward(d, loss));
        assert_true(tu_dyn_read_scalar(d, loss) == 0.5 - 2 - 12);
        const double *gd = f64_data(gw);
        for (int i = 0; i < 3; i++) {
            if (gd[i] != mult[it] * xv[i])
                print_error("iteration %d: grad[%d] = %g, want %g\n", it, i, gd[i],
                            mult[it] * xv[i]);
            assert_true(gd[i] == mult[it] * xv[i]);
        }
        assert_memory_equal(weft_tensor_data_const(w), wv, sizeof wv); /* w untouched */
    }

    /* a parameter used twice: one value, the summed gradient. loss = sum(w * w) + sum(w * x)
     * -> 2 w + x */
    OK(weft_tensor_fill(gw, 0));
    OK(weft_dyn_begin(d, &g));
    OK(weft_dyn_input(d, tx, &x));
    OK(weft_dyn_param(d, w, gw, &pw));
    OK(weft_dyn_param(d, w, gw, &pw2));
    assert_int_equal(pw.id, pw2.id);
    OK(weft_op_mul(g, pw, pw2, &m));
    OK(weft_op_mul(g, pw2, x, &m2));
    OK(weft_op_sum(g, m, WEFT_AXIS_ALL, 0, &s2));
    OK(weft_op_sum(g, m2, WEFT_AXIS_ALL, 0, &loss2));
    OK(weft_op_add(g, s2, loss2, &loss2));
    OK(weft_dyn_backward(d, loss2));
    for (int i = 0; i < 3; i++)
        assert_true(f64_data(gw)[i] == 2 * wv[i] + xv[i]);

    /* a frozen parameter: used, no gradient; the other parameter's gradient is right.
     * loss = sum(f * w) -> d/dw = f */
    OK(weft_tensor_fill(gw, 0));
    OK(weft_dyn_begin(d, &g));
    OK(weft_dyn_param(d, fz, NULL, &pf));
    OK(weft_dyn_param(d, w, gw, &pw));
    OK(weft_op_mul(g, pf, pw, &mf));
    OK(weft_op_sum(g, mf, WEFT_AXIS_ALL, 0, &loss3));
    weft_dyn_stats before, after;
    OK(weft_dyn_stats_get(d, &before));
    OK(weft_dyn_backward(d, loss3));
    OK(weft_dyn_stats_get(d, &after));
    for (int i = 0; i < 3; i++)
        assert_true(f64_data(gw)[i] == fv[i]);
    assert_memory_equal(weft_tensor_data_const(fz), fv, sizeof fv);
    size_t with_w = after.nodes - before.nodes;

    /* the same with both frozen: the backward pass adds no accumulation at all, and
     * fewer nodes than with one trainable parameter */
    OK(weft_dyn_begin(d, &g));
    OK(weft_dyn_param(d, fz, NULL, &pf));
    OK(weft_dyn_param(d, w, NULL, &pw));
    OK(weft_op_mul(g, pf, pw, &mf));
    OK(weft_op_sum(g, mf, WEFT_AXIS_ALL, 0, &loss3));
    OK(weft_dyn_stats_get(d, &before));
    OK(weft_dyn_backward(d, loss3));
    OK(weft_dyn_stats_get(d, &after));
    assert_true(after.nodes - before.nodes < with_w);
    assert_true(tu_dyn_read_scalar(d, loss3) == 0.25 + 16 + 6);
    for (int i = 0; i < 3; i++)
        assert_true(f64_data(gw)[i] == fv[i]); /* unchanged since the last iteration */
    assert_memory_equal(weft_tensor_data_const(w), wv, sizeof wv);
    assert_memory_equal(weft_tensor_data_const(fz), fv, sizeof fv);

    weft_tensor_destroy(tx);
    weft_tensor_destroy(w);
    weft_tensor_destroy(gw);
    weft_tensor_destroy(fz);
    weft_dyn_destroy(d);
    weft_pool_destroy(pool);
}

/* ---- training --------------------------------------------------------------------------- */

enum { XP = 4, XSTEPS = 400 };

typedef struct xor_result {
    double loss[XSTEPS];
    unsigned char *par[XP];
    size_t nbytes[XP];
    double pred[4];
} xor_result;

/* XOR with a 2-8-1 tanh/sigmoid net, mse, momentum SGD through weft_optim_step. Each step
 * is one iteration: record, backward, read the loss, step, zero the gradients. */
static void xor_train(unsigned threads, xor_result *r)
{
    static const double xv[8] = {0, 0, 0, 1, 1, 0, 1, 1}, yv[4] = {0, 1, 1, 0};
    weft_pool *pool = tu_make_pool(threads);
    weft_dyn *d = tu_dyn_make(pool, 1);
    weft_tensor *tx = tu_f64_tensor(2, (int64_t[]){4, 2}, xv);
    weft_tensor *ty = tu_f64_tensor(2, (int64_t[]){4, 1}, yv);
    weft_tensor *par[XP] = {
        tu_rand_tensor(WEFT_F64, 2, (int64_t[]){2, 8}, WEFT_INIT_UNIFORM, 31, -1, 1),
        tu_rand_tensor(WEFT_F64, 1, (int64_t[]){8}, WEFT_INIT_UNIFORM, 32, -0.1, 0.1),
        tu_rand_tensor(WEFT_F64, 2, (int64_t[]){8, 1}, WEFT_INIT_UNIFORM, 33, -1, 1),
        tu_rand_tensor(WEFT_F64, 1, (int64_t[]){1}, WEFT_INIT_UNIFORM, 34, -0.1, 0.1)};
    weft_tensor *grad[XP];
    for (int i = 0; i < XP; i++)
        grad[i] = tu_dyn_zeros_like(par[i]);
    weft_optim_options oo = weft_optim_options_default(WEFT_OPTIM_MOMENTUM);
    oo.lr = 0.5;
    oo.momentum = 0.9;
    weft_optim *opt = NULL;
    OK(weft_optim_create(&oo, &opt));
    weft_value pr = {0};
    for (int s = 0; s < XSTEPS; s++) {
        weft_tgraph *g = NULL;
        OK(weft_dyn_begin(d, &g));
        weft_value x, y, p[XP], a, z, h, o, o2, loss;
        OK(weft_dyn_input(d, tx, &x));
        OK(weft_dyn_input(d, ty, &y));
        for (int i = 0; i < XP; i++)
            OK(weft_dyn_param(d, par[i], grad[i], &p[i]));
        OK(weft_op_matmul(g, x, p[0], 0, &a));
        OK(weft_op_add(g, a, p[1], &z));
        OK(weft_op_tanh(g, z, &h));
        OK(weft_op_matmul(g, h, p[2], 0, &o));
        OK(weft_op_add(g, o, p[3], &o2));
        OK(weft_op_sigmoid(g, o2, &pr));
        OK(weft_op_mse(g, pr, y, &loss));
        OK(weft_dyn_backward(d, loss));
        r->loss[s] = tu_dyn_read_scalar(d, loss);
        if (s + 1 == XSTEPS) {
            const double *pd = read_f64(d, pr, 4);
            memcpy(r->pred, pd, sizeof r->pred);
        }
        OK(weft_optim_step(opt, pool, XP, par, (const weft_tensor *const *)grad));
        for (int i = 0; i < XP; i++)
            OK(weft_tensor_fill(grad[i], 0));
    }
    for (int i = 0; i < XP; i++) {
        r->par[i] = tu_tensor_copy_bytes(par[i], &r->nbytes[i]);
        weft_tensor_destroy(par[i]);
        weft_tensor_destroy(grad[i]);
    }
    weft_optim_destroy(opt);
    weft_tensor_destroy(tx);
    weft_tensor_destroy(ty);
    weft_dyn_destroy(d);
    weft_pool_destroy(pool);
}

static void test_dynamic_training_converges_and_is_deterministic(void **state)
{
    (void)state;
    static const unsigned threads[] = {1, 2, 4, 16};
    xor_result ref, other;
    xor_train(1, &ref);
    print_message("XOR: loss %.4g -> %.4g in %d steps; predictions %.3f %.3f %.3f %.3f\n",
                  ref.loss[0], ref.loss[XSTEPS - 1], XSTEPS, ref.pred[0], ref.pred[1],
                  ref.pred[2], ref.pred[3]);
    assert_true(ref.loss[XSTEPS - 1] < 0.02);
    assert_true(ref.loss[XSTEPS - 1] < ref.loss[0] / 5);
    assert_true(ref.pred[0] < 0.5 && ref.pred[1] > 0.5 && ref.pred[2] > 0.5 && ref.pred[3] < 0.5);
    for (size_t k = 1; k < sizeof threads / sizeof threads[0]; k++) {
        xor_train(threads[k], &other);
        for (int s = 0; s < XSTEPS; s++)
            if (memcmp(&ref.loss[s], &other.loss[s], sizeof(double)) != 0) {
                print_error("%u threads: loss of step %d: %.17g vs %.17g on 1 thread\n",
                            threads[k], s, other.loss[s], ref.loss[s]);
                fail();
            }
        for (int i = 0; i < XP; i++) {
            assert_int_equal(ref.nbytes[i], other.nbytes[i]);
            if (memcmp(ref.par[i], other.par[i], ref.nbytes[i]) != 0) {
                print_error("%u threads: final parameter %d differs\n", threads[k], i);
                fail();
            }
            free(other.par[i]);
        }
    }
    for (int i = 0; i < XP; i++)
        free(ref.par[i]);
}

/* ---- errors ----------------------------------------------------------------------------- */

static void test_dynamic_shape_error_keeps_the_iteration_usable(void **state)
{
    (void)state;
    weft_pool *pool = tu_make_pool(2);
    weft_dyn *d = tu_dyn_make(pool, 0);
    weft_tensor *tx = tu_rand_tensor(WEFT_F64, 2, (int64_t[]){4, 3}, WEFT_INIT_UNIFORM, 41, -1, 1);
    weft_tensor *w = tu_rand_tensor(WEFT_F64, 2, (int64_t[]){5, 2}, WEFT_INIT_UNIFORM, 42, -1, 1);
    weft_tensor *gw = tu_dyn_zeros_like(w);
    weft_tgraph *g = NULL;
    OK(weft_dyn_begin(d, &g));
    weft_value x, pw, bad = {12345}, xt, prod, s;
    OK(weft_dyn_input(d, tx, &x));
    OK(weft_dyn_param(d, w, gw, &pw));
    weft_dyn_stats st0, st1;
    OK(weft_dyn_stats_get(d, &st0));
    tu_expect_status(weft_op_matmul(g, x, pw, 0, &bad), WEFT_ERR_INVALID_ARG, "matmul [4,3]@[5,2]");
    tu_expect_message("matmul [4,3]@[5,2]", "matmul", "[4,3]", "[5,2]", NULL);
    tu_expect_status(weft_op_add(g, x, pw, &bad), WEFT_ERR_INVALID_ARG, "add [4,3]+[5,2]");
    tu_expect_message("add [4,3]+[5,2]", "add", "[4,3]", "[5,2]", NULL);
    OK(weft_dyn_stats_get(d, &st1));
    assert_int_equal(st1.nodes, st0.nodes); /* nothing was added */
    /* the iteration goes on: (x^T)[3,4] ... use a valid product x[4,3] @ x^T[3,4] */
    OK(weft_op_transpose(g, x, NULL, &xt));
    OK(weft_op_matmul(g, x, xt, 0, &prod));
    OK(weft_op_sum(g, prod, WEFT_AXIS_ALL, 0, &s));
    const double *xd = weft_tensor_data_const(tx);
    double want = 0;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            double dot = 0;
            for (int k = 0; k < 3; k++)
                dot += xd[i * 3 + k] * xd[j * 3 + k];
            want += dot;
        }
    assert_true(fabs(tu_dyn_read_scalar(d, s) - want) <= 1e-12 * fmax(1, fabs(want)));
    /* an op may still use the parameter after the failed ones */
    weft_value ws, wsum;
    OK(weft_op_mul(g, pw, pw, &ws));
    OK(weft_op_sum(g, ws, WEFT_AXIS_ALL, 0, &wsum));
    OK(weft_dyn_backward(d, wsum));
    for (int i = 0; i < 10; i++)
        assert_true(f64_data(gw)[i] == 2 * f64_data(w)[i]);
    weft_tensor_destroy(tx);
    weft_tensor_destroy(w);
    weft_tensor_destroy(gw);
    weft_dyn_destroy(d);
    weft_pool_destroy(pool);
}

/* gather with an id out of range fails the read with WEFT_ERR_RANGE; the context works
 * again after the next begin. Scheduled and inline evaluations, 1 and 4 threads. */
static void test_dynamic_runtime_error_then_next_iteration_works(void **state)
{
    (void)state;
    static const double tv[15] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
    static const int32_t good[4] = {0, 4, 2, 2}, badv[4] = {0, 7, 2, 1};
    static const unsigned threads[2] = {1, 4};
    for (int t = 0; t < 2; t++)
        for (int scheduled = 0; scheduled < 2; scheduled++) {
            weft_pool *pool = tu_make_pool(threads[t]);
            weft_dyn *d = tu_dyn_make(pool, scheduled);
            weft_tensor *table = tu_f64_tensor(2, (int64_t[]){5, 3}, tv), *gt = tu_dyn_zeros_like(table);
            weft_tensor *ids_bad = NULL, *ids_good = NULL;
            OK(weft_tensor_from_data(WEFT_I32, 1, (int64_t[]){4}, badv, WEFT_COPY, &ids_bad));
            OK(weft_tensor_from_data(WEFT_I32, 1, (int64_t[]){4}, good, WEFT_COPY, &ids_good));
            for (int rep = 0; rep < 2; rep++) {
                weft_tgraph *g = NULL;
                weft_value tab, ids, rows, s;
                OK(weft_dyn_begin(d, &g));
                OK(weft_dyn_param(d, table, gt, &tab));
                OK(weft_dyn_input(d, ids_bad, &ids));
                OK(weft_op_gather(g, tab, ids, &rows)); /* recorded: the shapes are fine */
                OK(weft_op_sum(g, rows, WEFT_AXIS_ALL, 0, &s));
                double v = 0;
                tu_expect_status(weft_dyn_scalar(d, s, &v), WEFT_ERR_RANGE, "gather id 7 of 5");
                tu_expect_message("gather id 7 of 5", "gather", "7", NULL);
                /* a second read in the failed iteration fails again, cleanly */
                const weft_tensor *r = NULL;
                assert_int_not_equal(weft_dyn_read(d, rows, &r), WEFT_OK);
                /* the next iteration works, backward included */
                OK(weft_tensor_fill(gt, 0));
                OK(weft_dyn_begin(d, &g));
                OK(weft_dyn_param(d, table, gt, &tab));
                OK(weft_dyn_input(d, ids_good, &ids));
                OK(weft_op_gather(g, tab, ids, &rows));
                OK(weft_op_sum(g, rows, WEFT_AXIS_ALL, 0, &s));
                const double *rd = read_f64(d, rows, 12);
                double sum = 0;
                for (int p = 0; p < 4; p++)
                    for (int k = 0; k < 3; k++) {
                        assert_true(rd[p * 3 + k] == tv[good[p] * 3 + k]);
                        sum += tv[good[p] * 3 + k];
                    }
                OK(weft_dyn_backward(d, s));
                assert_true(tu_dyn_read_scalar(d, s) == sum);
                static const double count[5] = {1, 0, 2, 0, 1}; /* rows picked per id */
                for (int i = 0; i < 5; i++)
                    for (int k = 0; k < 3; k++)
                        assert_true(f64_data(gt)[i * 3 + k] == count[i]);
            }
            weft_tensor_destroy(ids_bad);
            weft_tensor_destroy(ids_good);
            weft_tensor_destroy(table);
            weft_tensor_destroy(gt);
            weft_dyn_destroy(d);
            weft_pool_destroy(pool);
        }
}

static void test_dynamic_check_mode_names_the_op(void **state)
{
    (void)state;
    weft_pool *pool = tu_make_pool(3);
    for (int scheduled = 0; scheduled < 2; scheduled++) {
        weft_plan_options po = tu_dyn_options(scheduled, 1);
        weft_dyn *d = NULL;
        OK(weft_dyn_create(pool, &po, &d));
        weft_tensor *bad = tu_f64_tensor(1, (int64_t[]){4}, (double[]){1, -1, 2, 3});
        weft_tensor *good = tu_f64_tensor(1, (int64_t[]){4}, (double[]){1, 0.5, 2, 3});
        weft_tensor *w = tu_f64_tensor(1, (int64_t[]){3}, (double[]){1, 0, 4}), *gw = tu_dyn_zeros_like(w);
        weft_tgraph *g = NULL;
        weft_value x, lg, e, s, pw, sq, s2;
        /* forward: log(-1) */
        OK(weft_dyn_begin(d, &g));
        OK(weft_dyn_input(d, bad, &x));
        OK(weft_op_log(g, x, &lg));
        OK(weft_op_exp(g, lg, &e));
        OK(weft_op_sum(g, e, WEFT_AXIS_ALL, 0, &s));
        double v = 0;
        tu_expect_status(weft_dyn_scalar(d, s, &v), WEFT_ERR_NUMERICS, "NaN from log");
        tu_expect_message("NaN from log", "log", "forward", "NaN", NULL);
        /* backward: d sqrt(w) / dw at w = 0 is infinite */
        OK(weft_dyn_begin(d, &g));
        OK(weft_dyn_param(d, w, gw, &pw));
        OK(weft_op_sqrt(g, pw, &sq));
        OK(weft_op_sum(g, sq, WEFT_AXIS_ALL, 0, &s2));
        assert_true(tu_dyn_read_scalar(d, s2) == 3); /* the forward pass is finite */
        tu_expect_status(weft_dyn_backward(d, s2), WEFT_ERR_NUMERICS, "Inf from backward");
        tu_expect_message("Inf from backward", "backward", NULL);
        assert_true(strstr(weft_last_error(), "Inf") || strstr(weft_last_error(), "NaN"));
        /* the next iteration with good data */
        OK(weft_dyn_begin(d, &g));
        OK(weft_dyn_input(d, good, &x));
        OK(weft_op_log(g, x, &lg));
        OK(weft_op_exp(g, lg, &e));
        OK(weft_op_sum(g, e, WEFT_AXIS_ALL, 0, &s));
        assert_true(fabs(tu_dyn_read_scalar(d, s) - 6.5) <= 1e-15 * 6.5);
        weft_tensor_destroy(bad);
        weft_tensor_destroy(good);
        weft_tensor_destroy(w);
        weft_tensor_destroy(gw);
        weft_dyn_destroy(d);
    }
    weft_pool_destroy(pool);
}

/* A failed evaluation must not be repeated by the next one: whatever ran before the
 * failure (here the accumulation of w's gradient, independent of the failing branch)
 * took effect once, and later evaluations of the same iteration (weft_dyn_eval, a read)
 * must not apply it again. loss = sum(sqrt(f)) + sum(w * x) with f = [1, 0, 4]: in check
 * mode the backward of sqrt fails (Inf at 0); d loss / d w = x does not depend on it. */
static void test_dynamic_failed_evaluation_is_not_repeated(void **state)
{
    (void)state;
    weft_pool *pool = tu_make_pool(2);
    int bad = 0; /* asserted after the cleanup, so that a failure leaks nothing */
    for (int scheduled = 0; scheduled < 2; scheduled++) {
        weft_plan_options po = tu_dyn_options(scheduled, 1);
        weft_dyn *d = NULL;
        OK(weft_dyn_create(pool, &po, &d));
        static const double fv[3] = {1, 0, 4}, wv[3] = {1, 2, 3}, xv[3] = {0.5, -1, 4};
        weft_tensor *f = tu_f64_tensor(1, (int64_t[]){3}, fv), *gf = tu_dyn_zeros_like(f);
        weft_tensor *w = tu_f64_tensor(1, (int64_t[]){3}, wv), *gw = tu_dyn_zeros_like(w);
        weft_tensor *x = tu_f64_tensor(1, (int64_t[]){3}, xv);
        weft_tgraph *g = NULL;
        weft_value pf, pw, px, sq, s1, m, s2, loss;
        OK(weft_dyn_begin(d, &g));
        OK(weft_dyn_param(d, f, gf, &pf));
        OK(weft_dyn_param(d, w, gw, &pw));
        OK(weft_dyn_input(d, x, &px));
        OK(weft_op_sqrt(g, pf, &sq));
        OK(weft_op_sum(g, sq, WEFT_AXIS_ALL, 0, &s1));
        OK(weft_op_mul(g, pw, px, &m));
        OK(weft_op_sum(g, m, WEFT_AXIS_ALL, 0, &s2));
        OK(weft_op_add(g, s1, s2, &loss));
        double l0 = 0;
        OK(weft_dyn_scalar(d, loss, &l0));
        weft_status st0 = weft_dyn_backward(d, loss);
        double after[3];
        memcpy(after, f64_data(gw), sizeof after);
        weft_status st = weft_dyn_eval(d);
        double v = 0;
        weft_status st2 = weft_dyn_scalar(d, loss, &v);
        double now[3];
        memcpy(now, f64_data(gw), sizeof now);
        int ok = l0 == 3 + 0.5 - 2 + 12 && st0 == WEFT_ERR_NUMERICS;
        for (int i = 0; i < 3; i++) /* none of the gradient, or all of it */
            ok &= after[i] == 0 || after[i] == xv[i];
        if (!ok)
            print_error("%s: backward pass %s (%s), loss %g, gradient of w [%g %g %g]\n",
                        scheduled ? "scheduled" : "inline", weft_status_name(st0),
                        weft_last_error(), l0, after[0], after[1], after[2]);
        if (memcmp(now, after, sizeof after) != 0) {
            print_error("%s: after the failed backward pass the gradient of w was "
                        "[%g %g %g]; a later weft_dyn_eval (%s) and weft_dyn_scalar (%s) "
                        "made it [%g %g %g]: the failed evaluation ran again\n",
                        scheduled ? "scheduled" : "inline", after[0], after[1], after[2],
                        weft_status_name(st), weft_status_name(st2), now[0], now[1], now[2]);
            ok = 0;
        }
        bad |= !ok;
        weft_tensor_destroy(f);
        weft_tensor_destroy(gf);
        weft_tensor_destroy(w);
        weft_tensor_destroy(gw);
        weft_tensor_destroy(x);
        weft_dyn_destroy(d);
    }
    weft_pool_destroy(pool);
    assert_false(bad);
}

static void test_dynamic_argument_errors(void **state)
{
    (void)state;
    weft_pool *pool = tu_make_pool(1);
    weft_dyn *d = NULL;
    weft_tgraph *g = NULL;
    weft_value v;
    tu_expect_status(weft_dyn_create(NULL, NULL, &d), WEFT_ERR_INVALID_ARG, "create without pool");
    assert_null(d);
    tu_expect_status(weft_dyn_create(pool, NULL, NULL), WEFT_ERR_INVALID_ARG, "create, out NULL");
    OK(weft_dyn_create(pool, NULL, &d)); /* NULL options: the defaults */
    weft_dyn_destroy(NULL);
    tu_expect_status(weft_dyn_begin(NULL, &g), WEFT_ERR_INVALID_ARG, "begin NULL");
    tu_expect_status(weft_dyn_begin(d, NULL), WEFT_ERR_INVALID_ARG, "begin, graph NULL");
    OK(weft_dyn_begin(d, &g));
    weft_tensor *ti = NULL;
    OK(weft_tensor_create(WEFT_I32, 1, (int64_t[]){3}, &ti));
    weft_tensor *w = tu_f64_tensor(1, (int64_t[]){3}, (double[]){1, 2, 3});
    weft_tensor *g4 = NULL, *g3f = NULL;
    OK(weft_tensor_create(WEFT_F64, 1, (int64_t[]){4}, &g4));
    OK(weft_tensor_create(WEFT_F32, 1, (int64_t[]){3}, &g3f));
    tu_expect_status(weft_dyn_param(d, ti, NULL, &v), WEFT_ERR_INVALID_ARG, "int parameter");
    tu_expect_message("int parameter", "i32", NULL);
    tu_expect_status(weft_dyn_param(d, w, g4, &v), WEFT_ERR_INVALID_ARG, "grad of another shape");
    tu_expect_message("grad of another shape", "[4]", "[3]", NULL);
    tu_expect_status(weft_dyn_param(d, w, g3f, &v), WEFT_ERR_INVALID_ARG, "grad of another dtype");
    tu_expect_message("grad of another dtype", "f32", "f64", NULL);
    tu_expect_status(weft_dyn_param(d, NULL, NULL, &v), WEFT_ERR_INVALID_ARG, "NULL parameter");
    tu_expect_status(weft_dyn_input(d, NULL, &v), WEFT_ERR_INVALID_ARG, "NULL input");
    tu_expect_status(weft_dyn_input(d, w, NULL), WEFT_ERR_INVALID_ARG, "NULL out");
    const weft_tensor *t = NULL;
    tu_expect_status(weft_dyn_read(d, (weft_value){7}, &t), WEFT_ERR_INVALID_ARG, "unknown value");
    tu_expect_status(weft_dyn_eval(NULL), WEFT_ERR_INVALID_ARG, "eval NULL");
    tu_expect_status(weft_dyn_backward(NULL, v), WEFT_ERR_INVALID_ARG, "backward NULL");
    weft_dyn_stats st;
    tu_expect_status(weft_dyn_stats_get(NULL, &st), WEFT_ERR_INVALID_ARG, "stats NULL");
    /* the iteration is still clean: nothing was recorded */
    OK(weft_dyn_stats_get(d, &st));
    assert_int_equal(st.nodes, 0);
    /* backward from an integer loss */
    weft_value iv, am, pw;
    OK(weft_dyn_input(d, ti, &iv));
    tu_expect_status(weft_dyn_backward(d, iv), WEFT_ERR_INVALID_ARG, "integer loss");
    /* a gradient through argmax is an error that names the op; the failed backward pass
     * adds nothing to any gradient, and the iteration's values stay readable */
    OK(weft_dyn_begin(d, &g));
    weft_tensor *gw = tu_dyn_zeros_like(w);
    weft_tensor *tb = tu_f64_tensor(2, (int64_t[]){3, 2}, (double[]){1, 2, 3, 4, 5, 6});
    weft_tensor *gtb = tu_dyn_zeros_like(tb);
    weft_value ptb, rows, loss, wl, total;
    OK(weft_dyn_param(d, tb, gtb, &ptb));
    OK(weft_dyn_param(d, w, gw, &pw));
    OK(weft_op_argmax(g, pw, &am)); /* 2 */
    OK(weft_op_gather(g, ptb, am, &rows)); /* row 2: [5, 6] */
    OK(weft_op_sum(g, rows, WEFT_AXIS_ALL, 0, &loss));
    OK(weft_op_sum(g, pw, WEFT_AXIS_ALL, 0, &wl));
    OK(weft_op_add(g, loss, wl, &total));
    tu_expect_status(weft_dyn_backward(d, total), WEFT_ERR_INVALID_ARG, "gradient through argmax");
    tu_expect_message("gradient through argmax", "argmax", NULL);
    assert_true(tu_dyn_read_scalar(d, total) == 11 + 6);
    for (int i = 0; i < 3; i++)
        assert_true(f64_data(gw)[i] == 0);
    for (int i = 0; i < 6; i++)
        assert_true(f64_data(gtb)[i] == 0);
    weft_tensor_destroy(tb);
    weft_tensor_destroy(gtb);
    weft_tensor_destroy(ti);
    weft_tensor_destroy(w);
    weft_tensor_destroy(g4);
    weft_tensor_destroy(g3f);
    weft_tensor_destroy(gw);
    weft_dyn_destroy(d);
    weft_pool_destroy(pool);
}

int main(void)
{
    tu_main_init(300);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dynamic_shapes_change_across_iterations),
        cmocka_unit_test(test_dynamic_reads_mid_graph_and_branches_in_c),
        cmocka_unit_test(test_dynamic_gradients_equal_static_graph),
        cmocka_unit_test(test_dynamic_gradients_accumulate_until_zeroed),
        cmocka_unit_test(test_dynamic_training_converges_and_is_deterministic),
        cmocka_unit_test(test_dynamic_shape_error_keeps_the_iteration_usable),
        cmocka_unit_test(test_dynamic_runtime_error_then_next_iteration_works),
        cmocka_unit_test(test_dynamic_check_mode_names_the_op),
        cmocka_unit_test(test_dynamic_failed_evaluation_is_not_repeated),
        cmocka_unit_test(test_dynamic_argument_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* tests/ops/test_ops.c - one harness over the whole op table, f32 and f64.
 *
 * The cases (tu_op_cases) and how each op is built and what it should compute
 * (tu_op_impls, naive references in double precision) live in tests/util/tu_opcases.c.
 * For each case and dtype:
 *   - forward: the fetched output against the reference (relative 1e-5 for f32, 1e-12
 *     for f64, relative to max(|want|, 1); f32 matmul relative to |A| @ |B|, below);
 *   - backward (f64): loss = sum(op(inputs) * R) for a fixed random constant R; the
 *     gradient of every float input from weft_tgraph_gradients against central finite
 *     differences, |g - fd| <= 1e-6 * max(1, |g|, |fd|), perturbing the variables' storage
 *     (weft_tgraph_variable_tensor) or the fed tensors between runs;
 *   - backward (f32): against the f64 gradients of the same (f32-representable) inputs;
 *   - ops flagged not differentiable: weft_tgraph_gradients through them fails, naming the
 *     op.
 * The table test walks ids 0..WF_OP_COUNT-1: every public entry needs a case, every
 * entry without a backward builder must say why (flag), and every internal op (the fused
 * gradient kernels, broadcast_like, sum_like, ...) must appear in the gradient graph of
 * some case. Shape errors at build time, data errors at run time and check mode are
 * tests/ops/test_ops_errors.c.
 *
 * Failures of the per-case checks are collected (tu_op_fail, printed with the op, dtype
 * and shapes) and asserted at the end of each test, so one run lists every disagreement.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ops/internal.h"
#include "tests/util/tu_common.h"
#include "tests/util/tu_opcases.h"
#include "tests/util/tu_tensor.h"
#include "weft.h"

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
/* Work done and the worst relative errors seen (margins), for the summaries. */
static size_t fd_checked, f32_grads_checked, fwd_checked;
static double worst_fwd[2], worst_fd_err, worst_grad_f32;

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


/* One case built in one dtype. */
typedef struct built {
    const tu_op_case *c;
    const tu_op_impl *impl;
    weft_dtype dtype;
    char name[256];
    weft_tgraph *g;
    weft_value in[TU_OP_MAXIN];
    int is_float[TU_OP_MAXIN];
    weft_tensor *feed[TU_OP_MAXIN]; /* the tensors fed to open placeholders (owned) */
    weft_feed feeds[TU_OP_MAXIN];
    size_t nfeeds;
    tu_ref x[TU_OP_MAXIN];          /* the input values */
    weft_value out;
} built;

static void built_free(built *b)
{
    weft_tgraph_destroy(b->g);
    for (size_t i = 0; i < TU_OP_MAXIN; i++) {
        weft_tensor_destroy(b->feed[i]);
        tu_ref_free(&b->x[i]);
    }
    memset(b, 0, sizeof *b);
}

/* Builds case ci in dtype; 0, or -1 after recording a failure. */
static int build_case(size_t ci, weft_dtype dtype, built *b)
{
    const tu_op_case *c = &tu_op_cases[ci];
    memset(b, 0, sizeof *b);
    b->c = c;
    b->dtype = dtype;
    tu_op_case_name(c, dtype, b->name, sizeof b->name);
    b->impl = tu_op_impl_of(c->op);
    if (!b->impl) {
        tu_op_fail(b->name, "the test has no builder for op '%s'", c->op);
        return -1;
    }
    if (weft_tgraph_create(&b->g) != WEFT_OK) {
        tu_op_fail(b->name, "weft_tgraph_create: %s", weft_last_error());
        return -1;
    }
    for (size_t i = 0; i < c->nin; i++) {
        const tu_op_input *s = &c->in[i];
        int open = 0;
        if (tu_op_gen_input(s, tu_mix(ci * 64 + i + 1), &b->x[i], &open)) {
            tu_op_fail(b->name, "input %zu: malformed shape spec \"%s\"", i, s->shape);
            return -1;
        }
        int is_ids = s->ids || s->idmax > 0;
        weft_dtype dt = is_ids ? WEFT_I32 : dtype;
        weft_tensor *t = tu_ref_to_tensor(&b->x[i], dt);
        weft_status st;
        if (!t) {
            tu_op_fail(b->name, "input %zu: cannot make a tensor: %s", i, weft_last_error());
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
            tu_op_fail(b->name, "input %zu: %s: %s", i, weft_status_name(st), weft_last_error());
            return -1;
        }
    }
    weft_status st = b->impl->build(b->g, b->in, c->nin, &c->p, &b->out);
    if (st != WEFT_OK) {
        tu_op_fail(b->name, "building the op failed: %s: %s", weft_status_name(st),
                   weft_last_error());
        return -1;
    }
    const char *op = weft_tgraph_value_op(b->g, b->out);
    if (!op || strcmp(op, c->op)) {
        tu_op_fail(b->name, "the output node's op is '%s'", op ? op : "(null)");
        return -1;
    }
    return 0;
}

static int is_differentiable(const tu_op_case *c)
{
    const wf_op_def *d = def_of(c->op, NULL);
    return d && !(d->flags & WF_OPF_NOT_DIFFERENTIABLE);
}

/* Fetch i of the last run into r; 0 or -1 (recorded). */
static int fetch_ref(built *b, weft_plan *plan, size_t i, tu_ref *r, const char *what)
{
    const weft_tensor *t = NULL;
    weft_status st = weft_plan_fetch(plan, i, &t);
    if (st != WEFT_OK || !t || tu_ref_from_tensor(r, t)) {
        tu_op_fail(b->name, "fetching %s: %s: %s", what, weft_status_name(st), weft_last_error());
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
        tu_op_fail(b->name, "%s: shape %s, expected %s", what,
                   tu_shape_str(got->ndim, got->dims, gs, sizeof gs),
                   tu_shape_str(want->ndim, want->dims, ws, sizeof ws));
        return -1;
    }
    tu_cmp cmp = tu_ref_compare_scaled(got, want, scale, floor);
    if (worst && cmp.max_err > *worst)
        *worst = cmp.max_err;
    if (!(cmp.max_err <= tol)) {
        tu_op_fail(b->name, "%s: element %zu is %.17g, expected %.17g (relative error %.3g > %.1g)",
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
    tu_op_fail_reset();
    for (int id = 0; id < WF_OP_COUNT; id++) {
        const wf_op_def *d = wf_op_get((wf_op_id)id);
        char what[64];
        snprintf(what, sizeof what, "op table entry %d", id);
        if (!d || !d->name) {
            tu_op_fail(what, "no entry or no name");
            continue;
        }
        snprintf(what, sizeof what, "op '%s' (id %d)", d->name, id);
        int leaf = (d->flags & WF_OPF_LEAF) != 0, internal = (d->flags & WF_OPF_INTERNAL) != 0;
        if (!d->backward && !(d->flags & (WF_OPF_NOT_DIFFERENTIABLE | WF_OPF_LEAF)))
            tu_op_fail(what, "has no backward builder but is neither NOT_DIFFERENTIABLE nor LEAF");
        if (d->backward && (d->flags & WF_OPF_NOT_DIFFERENTIABLE))
            tu_op_fail(what, "is flagged NOT_DIFFERENTIABLE but has a backward builder");
        if (!leaf && (!d->forward || !d->shape))
            tu_op_fail(what, "has no forward kernel or no shape rule");
        if (d->memory && (d->max_inputs == 0 || d->max_inputs > WF_MEM_MAX_INPUTS))
            tu_op_fail(what, "has a memory hook but may take more than %d inputs",
                       WF_MEM_MAX_INPUTS);
        size_t len = strlen(d->name);
        if (len > 5 && !strcmp(d->name + len - 5, "_grad") && !internal)
            tu_op_fail(what, "is a gradient kernel but not flagged INTERNAL");
        for (int j = 0; j < id; j++) {
            const wf_op_def *e = wf_op_get((wf_op_id)j);
            if (e && e->name && !strcmp(e->name, d->name))
                tu_op_fail(what, "has the same name as entry %d", j);
        }
        if (leaf || internal)
            continue;
        int has_case = 0;
        for (size_t i = 0; i < tu_op_ncases; i++)
            has_case |= !strcmp(tu_op_cases[i].op, d->name);
        if (!has_case || !tu_op_impl_of(d->name))
            tu_op_fail(what, "is a public op without a case in tests/util/tu_opcases.c");
    }
    /* and the other way: every op the test knows is a public entry of the table */
    for (size_t i = 0; i < tu_op_nimpls; i++) {
        const wf_op_def *d = def_of(tu_op_impls[i].name, NULL);
        if (!d)
            tu_op_fail(tu_op_impls[i].name, "is not in the op table");
        else if (d->flags & (WF_OPF_LEAF | WF_OPF_INTERNAL))
            tu_op_fail(tu_op_impls[i].name, "is public in weft/ops.h but flagged LEAF or INTERNAL");
    }
    assert_int_equal(tu_op_failures(), 0);
}

/* ---- forward -------------------------------------------------------------------------- */

static void check_forward(size_t ci, weft_dtype dtype)
{
    built b;
    tu_ref want = {0}, got = {0}, mag = {0};
    weft_plan *plan = NULL;
    if (build_case(ci, dtype, &b))
        goto out;
    const tu_op_case *c = b.c;
    if (b.impl->ref(b.x, c->nin, &c->p, &want)) {
        tu_op_fail(b.name, "the test's reference rejects this case (malformed case)");
        goto out;
    }
    /* build-time description: dtype, and the shape with open dimensions as -1 */
    weft_dtype odt;
    size_t ond;
    int64_t od[WEFT_MAX_DIMS];
    weft_dtype want_dt = !strcmp(c->op, "argmax") ? WEFT_I32 : dtype;
    if (weft_tgraph_value_info(b.g, b.out, &odt, &ond, od) != WEFT_OK) {
        tu_op_fail(b.name, "value_info: %s", weft_last_error());
        goto out;
    }
    int shape_ok = odt == want_dt && ond == (size_t)want.ndim;
    for (size_t i = 0; shape_ok && i < ond; i++)
        shape_ok = od[i] == want.dims[i] || (b.nfeeds && od[i] == WEFT_DIM_ANY);
    if (!shape_ok) {
        char s1[96], s2[96];
        tu_op_fail(b.name, "build-time output %s %s, expected %s %s", weft_dtype_name(odt),
                   tu_shape_str((int)ond, od, s1, sizeof s1), weft_dtype_name(want_dt),
                   tu_shape_str(want.ndim, want.dims, s2, sizeof s2));
    }
    weft_plan_options o = tu_op_plan_opts(ci % 2);
    weft_status st = weft_plan_create(b.g, pool, 1, &b.out, 0, NULL, &o, &plan);
    if (st == WEFT_OK)
        st = weft_plan_run(plan, b.nfeeds, b.feeds);
    if (st != WEFT_OK) {
        tu_op_fail(b.name, "forward run: %s: %s", weft_status_name(st), weft_last_error());
        goto out;
    }
    const weft_tensor *t = NULL;
    if (weft_plan_fetch(plan, 0, &t) == WEFT_OK && weft_tensor_dtype(t) != want_dt)
        tu_op_fail(b.name, "fetched dtype %s, expected %s", weft_dtype_name(weft_tensor_dtype(t)),
                   weft_dtype_name(want_dt));
    if (fetch_ref(&b, plan, 0, &got, "the output"))
        goto out;
    double tol = want_dt == WEFT_I32 ? 0.0 : dtype == WEFT_F32 ? FWD_TOL_F32 : FWD_TOL_F64;
    if (dtype == WEFT_F32 && b.impl->mag && b.impl->mag(b.x, c->nin, &c->p, &mag)) {
        tu_op_fail(b.name, "the test's magnitude reference rejects this case");
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
            tu_op_fail(b.name, "reading the updated variable: %s", weft_last_error());
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
    tu_op_fail_reset();
    for (size_t ci = 0; ci < tu_op_ncases; ci++) {
        check_forward(ci, WEFT_F64);
        check_forward(ci, WEFT_F32);
    }
    print_message("%zu cases, %zu forward outputs checked; worst relative error f64 %.2g "
                  "(tolerance %.0g), f32 %.2g (%.0g)\n", (size_t)tu_op_ncases, fwd_checked,
                  worst_fwd[0], FWD_TOL_F64, worst_fwd[1], FWD_TOL_F32);
    if (tu_op_failures())
        print_error("%u forward check(s) failed\n", tu_op_failures());
    assert_int_equal(tu_op_failures(), 0);
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
        tu_op_fail(b->name, "building the loss: %s: %s", weft_status_name(st), weft_last_error());
        return st;
    }
    weft_value wrt[TU_OP_MAXIN];
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
        tu_op_fail(b->name, "loss run: %s: %s", weft_status_name(st), weft_last_error());
        return -1;
    }
    return 0;
}

/* Central differences of the loss against the analytic gradient of input k. */
static void check_fd(built *b, weft_plan *lplan, size_t k, const tu_ref *grad, size_t ci)
{
    double *d = input_data(b, k);
    if (!d) {
        tu_op_fail(b->name, "input %zu: no writable data", k);
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
        tu_op_fail(b->name, "gradient of input %zu [%s]: %zu of %zu checked elements disagree with "
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
    weft_value loss, grads[TU_OP_MAXIN];
    size_t nwrt = 0, wrt_idx[TU_OP_MAXIN];
    if (build_case(ci, dtype, &b))
        goto out;
    const tu_op_case *c = b.c;
    if (b.impl->ref(b.x, c->nin, &c->p, &want)) {
        tu_op_fail(b.name, "the test's reference rejects this case (malformed case)");
        goto out;
    }
    weft_status st = add_loss_and_grads(&b, ci, &want, &R, &loss, &nwrt, wrt_idx, grads);
    if (st != WEFT_OK) {
        tu_op_fail(b.name, "weft_tgraph_gradients: %s: %s", weft_status_name(st),
                   weft_last_error());
        goto out;
    }
    weft_value fetch[1 + TU_OP_MAXIN];
    fetch[0] = loss;
    memcpy(fetch + 1, grads, nwrt * sizeof *grads);
    weft_plan_options o = tu_op_plan_opts(1);
    if ((st = weft_plan_create(b.g, pool, 1 + nwrt, fetch, 0, NULL, &o, &gplan)) == WEFT_OK)
        st = weft_plan_run(gplan, b.nfeeds, b.feeds);
    if (st != WEFT_OK) {
        tu_op_fail(b.name, "gradient run: %s: %s", weft_status_name(st), weft_last_error());
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
        tu_op_fail(b.name, "fetching the loss: %s", weft_last_error());
    else if (!(fabs(got_loss - want_loss) <= (dtype == WEFT_F32 ? FWD_TOL_F32 : FWD_TOL_F64) * mag))
        tu_op_fail(b.name, "loss sum(out * R) = %.17g, expected %.17g", got_loss, want_loss);

    if (dtype == WEFT_F64) {
        weft_plan_options lo = tu_op_plan_opts(0);
        if ((st = weft_plan_create(b.g, pool, 1, &loss, 0, NULL, &lo, &lplan)) != WEFT_OK) {
            tu_op_fail(b.name, "loss plan: %s", weft_last_error());
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
            tu_op_fail(b.name, "%s has shape %s, the input %s", what,
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
    tu_op_fail_reset();
    for (size_t ci = 0; ci < tu_op_ncases; ci++) {
        if (!is_differentiable(&tu_op_cases[ci]))
            continue;
        tu_ref g64[TU_OP_MAXIN] = {{0}};
        check_backward(ci, WEFT_F64, g64);
        check_backward(ci, WEFT_F32, g64);
        for (size_t k = 0; k < TU_OP_MAXIN; k++)
            tu_ref_free(&g64[k]);
    }
    print_message("%zu gradient elements against finite differences (f64), worst relative "
                  "error %.2g (tolerance %.0g); %zu f32 gradient elements against f64, worst "
                  "%.2g (%.0g)\n", fd_checked, worst_fd_err, FD_TOL, f32_grads_checked,
                  worst_grad_f32, GRAD_TOL_F32);
    if (tu_op_failures())
        print_error("%u backward check(s) failed\n", tu_op_failures());
    assert_int_equal(tu_op_failures(), 0);
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
    const tu_op_case *c = b.c;
    weft_dtype odt;
    size_t ond;
    int64_t od[WEFT_MAX_DIMS];
    weft_tgraph_value_info(b.g, b.out, &odt, &ond, od);
    weft_value loss, wrt[TU_OP_MAXIN], grads[TU_OP_MAXIN];
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
        tu_op_fail(b.name, "building the loss: %s", weft_last_error());
        goto out;
    }
    for (size_t i = 0; i < c->nin; i++)
        if (b.is_float[i])
            wrt[nwrt++] = b.in[i];
    n0 = weft_tgraph_node_count(b.g);
    st = weft_tgraph_gradients(b.g, loss, nwrt, wrt, grads);
    const char *msg = weft_last_error();
    if (st != WEFT_ERR_INVALID_ARG || !tu_op_contains(msg, c->op) ||
        !tu_op_contains(msg, "not differentiable"))
        tu_op_fail(b.name, "gradients through %s: %s (%u nodes added), message \"%s\"; expected "
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
    tu_op_fail_reset();
    size_t checked = 0;
    for (size_t ci = 0; ci < tu_op_ncases; ci++) {
        if (is_differentiable(&tu_op_cases[ci]))
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
    if (st != WEFT_ERR_INVALID_ARG || !tu_op_contains(msg, "argmax") ||
        !tu_op_contains(msg, "not differentiable"))
        tu_op_fail("argmax -> softmax_xent labels", "gradients wrt x: %s, message \"%s\"",
                   weft_status_name(st), st ? msg : "");
    /* the logits alone are differentiable */
    assert_int_equal(weft_tgraph_gradients(g, loss, 1, &logits, &grad), WEFT_OK);
    weft_tgraph_destroy(g);
    assert_int_equal(tu_op_failures(), 0);
}

/* ---- internal ops exercised by the backward builders ---------------------------------- */

static void test_ops_internal_ops_exercised(void **state)
{
    (void)state;
    tu_op_fail_reset();
    unsigned char seen[WF_OP_COUNT] = {0};
    for (size_t ci = 0; ci < tu_op_ncases; ci++) {
        if (!is_differentiable(&tu_op_cases[ci]))
            continue;
        for (int dt = 0; dt < 2; dt++) {
            built b;
            tu_ref want = {0}, R = {0};
            weft_value loss, grads[TU_OP_MAXIN];
            size_t nwrt, wrt_idx[TU_OP_MAXIN];
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
                        tu_op_fail(b.name, "node %u has an unknown op name '%s'", v,
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
            tu_op_fail(d->name, "internal op never emitted by the backward of any case");
    }
    assert_int_equal(tu_op_failures(), 0);
}

/* ---- main ----------------------------------------------------------------------------- */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ops_table_complete),
        cmocka_unit_test(test_ops_forward_matches_reference),
        cmocka_unit_test(test_ops_backward_matches_finite_differences),
        cmocka_unit_test(test_ops_not_differentiable),
        cmocka_unit_test(test_ops_internal_ops_exercised),
    };
    return tu_op_run_tests(tests, &pool);
}

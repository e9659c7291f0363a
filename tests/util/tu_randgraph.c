/* tests/util/tu_randgraph.c - see tu_randgraph.h. */
#include "tests/util/tu_randgraph.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/util/tu_weft.h"

static uint64_t rg_below(tu_rg *r, uint64_t n)
{
    return tu_rng_below(&r->rng, n);
}

static int64_t rg_dim(tu_rg *r)
{
    return r->large ? 64 + (int64_t)rg_below(r, 200) : 1 + (int64_t)rg_below(r, 7);
}

/* Adds v (just made, status st) to the pool; -1 if the op was refused. */
static int rg_push(tu_rg *r, weft_status st, weft_value v, int leaf)
{
    if (st != WEFT_OK || r->np == TU_RG_POOL)
        return -1;
    tu_rg_val *e = &r->pool[r->np];
    memset(e, 0, sizeof *e);
    e->v = v;
    e->leaf = leaf;
    size_t nd = 0;
    OK(weft_tgraph_value_info(r->g, v, NULL, &nd, e->d));
    e->ndim = (int)nd;
    e->numel = 1;
    for (size_t i = 0; i < nd; i++)
        e->numel *= (size_t)e->d[i];
    return (int)r->np++;
}

static void rg_use(tu_rg *r, int i)
{
    if (i >= 0)
        r->pool[i].uses++;
}

/* An index into the pool, biased towards recent values. */
static int rg_pick(tu_rg *r)
{
    double u = tu_rng_unit(&r->rng);
    size_t back = (size_t)((double)r->np * u * u);
    return (int)(r->np - 1 - (back < r->np ? back : r->np - 1));
}

/* A pool value (other than `not`) with exactly this shape, or -1. */
static int rg_find_shape(tu_rg *r, int ndim, const int64_t *d, int not)
{
    for (int tries = 0; tries < 12; tries++) {
        int i = (int)rg_below(r, r->np);
        if (i == not || r->pool[i].ndim != ndim)
            continue;
        if (memcmp(r->pool[i].d, d, (size_t)ndim * sizeof *d) == 0)
            return i;
    }
    return -1;
}

static weft_tensor *rg_rand_tensor(tu_rg *r, weft_dtype dt, size_t ndim, const int64_t *d,
                                   double lo, double hi)
{
    weft_tensor *t = NULL;
    OK(weft_tensor_create(dt, ndim, d, &t));
    OK(weft_tensor_init_random(t, WEFT_INIT_UNIFORM, tu_rng_next(&r->rng), lo, hi));
    return t;
}

/* A new variable (if there is room), pushed to the pool; -1 otherwise. */
static int rg_new_var(tu_rg *r, int ndim, const int64_t *d)
{
    if (r->nvar == TU_RG_VARS)
        return -1;
    double s = r->large ? 0.08 : 0.5;
    weft_tensor *t = rg_rand_tensor(r, r->dt, (size_t)ndim, d, -s, s);
    weft_value v;
    char name[16];
    snprintf(name, sizeof name, "v%zu", r->nvar);
    weft_status st = weft_tgraph_variable(r->g, t, name, &v);
    weft_tensor_destroy(t);
    OK(st);
    r->var[r->nvar++] = v;
    return rg_push(r, st, v, 1);
}

static int rg_placeholder(tu_rg *r, weft_dtype dt, int ndim, const int64_t *d, int64_t below)
{
    assert_true(r->nph < TU_RG_PH);
    weft_value v;
    OK(weft_tgraph_placeholder(r->g, dt, (size_t)ndim, d, NULL, &v));
    weft_tensor *t;
    if (dt == WEFT_I32) {
        size_t n = 1;
        for (int i = 0; i < ndim; i++)
            n *= (size_t)d[i];
        int32_t *ids = malloc(n * sizeof *ids + 1);
        assert_non_null(ids);
        for (size_t i = 0; i < n; i++)
            ids[i] = (int32_t)rg_below(r, (uint64_t)below);
        t = NULL;
        OK(weft_tensor_from_data(WEFT_I32, (size_t)ndim, d, ids, WEFT_COPY, &t));
        free(ids);
    } else {
        t = rg_rand_tensor(r, dt, (size_t)ndim, d, -1, 1);
    }
    r->ph[r->nph] = v;
    r->feed_t[r->nph] = t;
    r->feeds[r->nph] = (weft_feed){v, t};
    r->nph++;
    return dt == WEFT_I32 ? -1 : rg_push(r, WEFT_OK, v, 1);
}

static int rg_scalar(tu_rg *r, double x)
{
    weft_value v;
    OK(weft_tgraph_scalar(r->g, r->dt, x, &v));
    return rg_push(r, WEFT_OK, v, 1);
}

/* op(a), one of the unary ops (or a short chain keeping the operand in range). */
static int rg_unary(tu_rg *r, int a)
{
    weft_value v, t;
    weft_value x = r->pool[a].v;
    weft_status st;
    rg_use(r, a);
    switch (rg_below(r, 10)) {
    case 0: st = weft_op_tanh(r->g, x, &v); break;
    case 1: st = weft_op_sigmoid(r->g, x, &v); break;
    case 2: st = weft_op_relu(r->g, x, &v); break;
    case 3: st = weft_op_neg(r->g, x, &v); break;
    case 4: st = weft_op_scale(r->g, x, 0.5 + tu_rng_unit(&r->rng), &v); break;
    case 5: st = weft_op_pow(r->g, x, 2.0, &v); break;
    case 6:
        OK(weft_op_tanh(r->g, x, &t));
        st = weft_op_exp(r->g, t, &v);
        break;
    case 7:
        OK(weft_op_sigmoid(r->g, x, &t));
        st = weft_op_log(r->g, t, &v);
        break;
    case 8:
        OK(weft_op_sigmoid(r->g, x, &t));
        st = weft_op_sqrt(r->g, t, &v);
        break;
    default: st = weft_op_pow(r->g, x, 1.0, &v); break;
    }
    return rg_push(r, st, v, 0);
}

/* A partner for a binary op with a: same shape, a keepdims reduction of a (broadcast),
 * a variable of a's last dim, a scalar constant, or any value (may not broadcast). */
static int rg_partner(tu_rg *r, int a)
{
    tu_rg_val *e = &r->pool[a];
    switch (rg_below(r, 6)) {
    case 0:
    case 1: {
        int b = rg_find_shape(r, e->ndim, e->d, -1);
        if (b >= 0)
            return b;
    } /* fall through */
    case 2:
        if (e->ndim >= 1) {
            weft_value v;
            int axis = (int)rg_below(r, (uint64_t)e->ndim);
            rg_use(r, a);
            return rg_push(r, weft_op_mean(r->g, e->v, axis, 1, &v), v, 0);
        }
        return rg_scalar(r, 0.75);
    case 3:
        if (e->ndim >= 1) {
            for (size_t i = 0; i < r->np; i++) /* an existing variable of that shape */
                if (r->pool[i].leaf && r->pool[i].ndim == 1 &&
                    r->pool[i].d[0] == e->d[e->ndim - 1] && rg_below(r, 2))
                    return (int)i;
            int b = rg_new_var(r, 1, &e->d[e->ndim - 1]);
            if (b >= 0)
                return b;
        }
        return rg_scalar(r, -1.25);
    case 4: return rg_scalar(r, 0.5 + tu_rng_unit(&r->rng));
    default: return rg_pick(r);
    }
}

static int rg_binary(tu_rg *r, int a)
{
    int b = rg_partner(r, a);
    if (b < 0)
        return -1;
    if (rg_below(r, 2)) { /* either order: the broadcast operand first or second */
        int t = a;
        a = b;
        b = t;
    }
    weft_value x = r->pool[a].v, y = r->pool[b].v, v;
    weft_status st;
    switch (rg_below(r, 4)) {
    case 0: st = weft_op_add(r->g, x, y, &v); break;
    case 1: st = weft_op_sub(r->g, x, y, &v); break;
    case 2: st = weft_op_mul(r->g, x, y, &v); break;
    default: { /* x / (2 + tanh(y)): a denominator in [1, 3] */
        weft_value t, den;
        int two = rg_scalar(r, 2.0);
        OK(weft_op_tanh(r->g, y, &t));
        OK(weft_op_add(r->g, r->pool[two].v, t, &den));
        st = weft_op_div(r->g, x, den, &v);
        break;
    }
    }
    if (st == WEFT_OK) {
        rg_use(r, a);
        rg_use(r, b);
    }
    return rg_push(r, st, v, 0);
}

static int rg_matmul(tu_rg *r, int a)
{
    tu_rg_val *e = &r->pool[a];
    if (e->ndim != 2)
        return -1;
    unsigned flags = (unsigned)rg_below(r, 3); /* 0, TRANS_A, TRANS_B */
    int64_t inner = flags == WEFT_TRANS_A ? e->d[0] : e->d[1];
    int b = -1;
    for (int tries = 0; tries < 16 && b < 0; tries++) { /* an activation, or a itself */
        int i = tries == 0 && rg_below(r, 4) == 0 ? a : (int)rg_below(r, r->np);
        const tu_rg_val *c = &r->pool[i];
        int64_t cin = flags == WEFT_TRANS_B ? c->d[1] : c->d[0];
        int64_t cout = flags == WEFT_TRANS_B ? c->d[0] : c->d[1];
        int64_t rows = flags == WEFT_TRANS_A ? e->d[1] : e->d[0];
        if (c->ndim == 2 && cin == inner && (size_t)(rows * cout) <= r->max_numel)
            b = i;
    }
    if (b < 0) {
        int64_t m = rg_dim(r);
        int64_t d[2] = {inner, m};
        if (flags == WEFT_TRANS_B) {
            d[0] = m;
            d[1] = inner;
        }
        b = rg_new_var(r, 2, d);
        if (b < 0)
            return -1;
    }
    weft_value v, t;
    weft_status st = weft_op_matmul(r->g, r->pool[a].v, r->pool[b].v, flags, &v);
    if (st != WEFT_OK)
        return -1;
    rg_use(r, a);
    rg_use(r, b);
    int i = rg_push(r, st, v, 0);
    if (rg_below(r, 3)) { /* keep products in range */
        rg_use(r, i);
        i = rg_push(r, weft_op_tanh(r->g, v, &t), t, 0);
    }
    return i;
}

static int rg_reshape(tu_rg *r, int a)
{
    tu_rg_val *e = &r->pool[a];
    int64_t d[3];
    size_t nd;
    int64_t n = (int64_t)e->numel;
    int64_t f = n % 2 == 0 ? 2 : n % 3 == 0 ? 3 : 1;
    switch (rg_below(r, 4)) {
    case 0:
        d[0] = -1;
        nd = 1;
        break;
    case 1:
        d[0] = -1;
        d[1] = f;
        nd = 2;
        break;
    case 2:
        if (e->ndim == 2) {
            d[0] = e->d[1];
            d[1] = e->d[0];
            nd = 2;
        } else {
            d[0] = 1;
            d[1] = n;
            nd = 2;
        }
        break;
    default:
        if (e->ndim >= 1 && e->d[e->ndim - 1] % f == 0) {
            d[0] = n / e->d[e->ndim - 1];
            d[1] = e->d[e->ndim - 1] / f;
            d[2] = f;
            nd = 3;
        } else {
            d[0] = n;
            d[1] = 1;
            nd = 2;
        }
        break;
    }
    weft_value v;
    weft_status st = weft_op_reshape(r->g, e->v, nd, d, &v);
    if (st == WEFT_OK)
        rg_use(r, a);
    return rg_push(r, st, v, 0);
}

static int rg_transpose(tu_rg *r, int a)
{
    tu_rg_val *e = &r->pool[a];
    if (e->ndim < 2)
        return -1;
    int perm[3] = {0, 1, 2};
    const int *p = NULL;
    if (e->ndim == 3 && rg_below(r, 2)) {
        for (int i = 2; i > 0; i--) {
            int j = (int)rg_below(r, (uint64_t)i + 1), t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        p = perm;
    }
    weft_value v;
    weft_status st = weft_op_transpose(r->g, e->v, p, &v);
    if (st == WEFT_OK)
        rg_use(r, a);
    return rg_push(r, st, v, 0);
}

static int rg_reduce(tu_rg *r, int a)
{
    tu_rg_val *e = &r->pool[a];
    int axis = e->ndim == 0 || rg_below(r, 4) == 0
                   ? WEFT_AXIS_ALL
                   : (int)rg_below(r, (uint64_t)(2 * e->ndim)) - e->ndim;
    int keep = (int)rg_below(r, 2);
    weft_value v;
    weft_status st = rg_below(r, 2) ? weft_op_sum(r->g, e->v, axis, keep, &v)
                                    : weft_op_mean(r->g, e->v, axis, keep, &v);
    if (st == WEFT_OK)
        rg_use(r, a);
    return rg_push(r, st, v, 0);
}

static int rg_softmax(tu_rg *r, int a)
{
    tu_rg_val *e = &r->pool[a];
    if (e->ndim < 1)
        return -1;
    weft_value v;
    weft_status st = rg_below(r, 2) ? weft_op_softmax(r->g, e->v, &v)
                                    : weft_op_log_softmax(r->g, e->v, &v);
    if (st == WEFT_OK)
        rg_use(r, a);
    return rg_push(r, st, v, 0);
}

static int rg_concat(tu_rg *r, int a)
{
    tu_rg_val *e = &r->pool[a];
    if (e->ndim < 1 || 2 * e->numel > r->max_numel)
        return -1;
    int b = rg_below(r, 3) ? rg_find_shape(r, e->ndim, e->d, a) : -1;
    if (b < 0)
        b = rg_below(r, 2) ? a : rg_unary(r, a);
    if (b < 0)
        return -1;
    weft_value in[3] = {e->v, r->pool[b].v, e->v};
    size_t n = 2 + (2 * e->numel <= r->max_numel / 2 && rg_below(r, 3) == 0);
    int axis = (int)rg_below(r, (uint64_t)e->ndim);
    weft_value v;
    weft_status st = weft_op_concat(r->g, n, in, axis, &v);
    if (st == WEFT_OK) {
        rg_use(r, a);
        rg_use(r, b);
    }
    return rg_push(r, st, v, 0);
}

static int rg_slice(tu_rg *r, int a)
{
    tu_rg_val *e = &r->pool[a];
    int axis = -1;
    for (int tries = 0; tries < 4 && e->ndim > 0; tries++) {
        int i = (int)rg_below(r, (uint64_t)e->ndim);
        if (e->d[i] >= 2)
            axis = i;
    }
    if (axis < 0)
        return -1;
    int64_t len = 1 + (int64_t)rg_below(r, (uint64_t)e->d[axis] - 1);
    int64_t begin = (int64_t)rg_below(r, (uint64_t)(e->d[axis] - len + 1));
    weft_value v;
    weft_status st = weft_op_slice(r->g, e->v, axis, begin, begin + len, &v);
    if (st == WEFT_OK)
        rg_use(r, a);
    return rg_push(r, st, v, 0);
}

static int rg_mse(tu_rg *r, int a)
{
    tu_rg_val *e = &r->pool[a];
    int b = rg_find_shape(r, e->ndim, e->d, a);
    if (b < 0)
        b = rg_unary(r, a);
    if (b < 0)
        return -1;
    weft_value v;
    weft_status st = weft_op_mse(r->g, e->v, r->pool[b].v, &v);
    if (st == WEFT_OK) {
        rg_use(r, a);
        rg_use(r, b);
    }
    return rg_push(r, st, v, 0);
}

/* A residual block: a + a @ W (W square). The gradient of a sums the add's share and the
 * product's, which autodiff may fuse into matmul_acc(g, W, g): the addend is the
 * operand. */
static int rg_residual(tu_rg *r, int a)
{
    tu_rg_val *e = &r->pool[a];
    if (e->ndim != 2)
        return -1;
    int w = -1;
    for (size_t i = 0; i < r->np && w < 0; i++)
        if (r->pool[i].leaf && r->pool[i].ndim == 2 && r->pool[i].d[0] == e->d[1] &&
            r->pool[i].d[1] == e->d[1] && rg_below(r, 2))
            w = (int)i;
    if (w < 0)
        w = rg_new_var(r, 2, (int64_t[]){e->d[1], e->d[1]});
    if (w < 0)
        return -1;
    weft_value y, v;
    OK(weft_op_matmul(r->g, e->v, r->pool[w].v, 0, &y));
    weft_status st = rg_below(r, 2) ? weft_op_add(r->g, y, e->v, &v) : weft_op_add(r->g, e->v, y, &v);
    OK(st);
    rg_use(r, a);
    rg_use(r, a);
    rg_use(r, w);
    return rg_push(r, st, v, 0);
}

void tu_rg_build(tu_rg *r, uint64_t seed)
{
    memset(r, 0, sizeof *r);
    tu_rng_seed(&r->rng, seed * 0x9e3779b97f4a7c15ull + 12345);
    r->large = seed % 16 == 15;
    r->dt = rg_below(r, 3) == 0 ? WEFT_F32 : WEFT_F64;
    r->max_numel = r->large ? 70000 : 600;
    OK(weft_tgraph_create(&r->g));
    int64_t N = r->large ? 96 + (int64_t)rg_below(r, 64) : 1 + (int64_t)rg_below(r, 6);
    int64_t D0 = rg_dim(r), D1 = rg_dim(r), H = rg_dim(r), E = rg_dim(r);
    int64_t V = 3 + (int64_t)rg_below(r, 6);
    int x0 = rg_placeholder(r, r->dt, 2, (int64_t[]){N, D0}, 0);
    rg_placeholder(r, r->dt, 2, (int64_t[]){N, D1}, 0);
    int w = rg_new_var(r, 2, (int64_t[]){D0, H});
    rg_new_var(r, 1, (int64_t[]){H});
    if (rg_below(r, 2)) { /* an embedding: gather, whose gradient has a shape-only ref */
        int table = rg_new_var(r, 2, (int64_t[]){V, E});
        rg_placeholder(r, WEFT_I32, 1, (int64_t[]){N}, V);
        weft_value v;
        rg_use(r, table);
        rg_push(r, weft_op_gather(r->g, r->pool[table].v, r->ph[r->nph - 1], &v), v, 0);
    }
    /* a first layer, so that the variables have readers with several consumers */
    {
        weft_value h;
        OK(weft_op_matmul(r->g, r->pool[x0].v, r->pool[w].v, 0, &h));
        rg_use(r, x0);
        rg_use(r, w);
        int hi = rg_push(r, WEFT_OK, h, 0);
        rg_binary(r, hi);
    }
    size_t nops = r->large ? 8 + rg_below(r, 8) : 10 + rg_below(r, 40);
    for (size_t i = 0; i < nops && r->np + 8 < TU_RG_POOL; i++) {
        int a = rg_pick(r);
        if (r->pool[a].numel > r->max_numel)
            continue;
        switch (rg_below(r, 21)) {
        case 0: case 1: case 2: case 3: rg_unary(r, a); break;
        case 4: case 5: case 6: case 7: case 8: rg_binary(r, a); break;
        case 9: case 10: rg_matmul(r, a); break;
        case 11: case 12: rg_reshape(r, a); break;
        case 13: rg_transpose(r, a); break;
        case 14: case 15: rg_reduce(r, a); break;
        case 16: rg_softmax(r, a); break;
        case 17: rg_concat(r, a); break;
        case 18: rg_slice(r, a); break;
        case 19: rg_residual(r, a); break;
        default: rg_mse(r, a); break;
        }
    }
    /* some fetched intermediates (a leaf now and then: it has no buffer) */
    for (size_t i = 0; i < r->np && r->nfetch < TU_RG_FETCH / 2; i++)
        if ((!r->pool[i].leaf && rg_below(r, 6) == 0) || rg_below(r, 40) == 0)
            r->fetch[r->nfetch++] = r->pool[i].v;
    /* the loss: the mean of every value nothing consumes, and maybe a cross-entropy */
    weft_value loss = {WEFT_VALUE_NONE_ID};
    size_t np = r->np;
    for (size_t i = 0; i < np; i++) {
        if (r->pool[i].leaf || r->pool[i].uses)
            continue;
        weft_value m, s;
        OK(weft_op_mean(r->g, r->pool[i].v, WEFT_AXIS_ALL, 0, &m));
        if (loss.id == WEFT_VALUE_NONE_ID) {
            loss = m;
        } else {
            OK(weft_op_add(r->g, loss, m, &s));
            loss = s;
        }
    }
    for (size_t i = 0; i < np && rg_below(r, 2); i++) {
        const tu_rg_val *e = &r->pool[i];
        if (e->leaf || e->ndim != 2 || r->nph == TU_RG_PH || e->numel > r->max_numel)
            continue;
        rg_placeholder(r, WEFT_I32, 1, &e->d[0], e->d[1]);
        weft_value x, s;
        OK(weft_op_softmax_xent(r->g, e->v, r->ph[r->nph - 1], &x));
        OK(weft_op_add(r->g, loss, x, &s));
        loss = s;
        break;
    }
    if (loss.id == WEFT_VALUE_NONE_ID) /* everything was consumed: the last value */
        OK(weft_op_mean(r->g, r->pool[r->np - 1].v, WEFT_AXIS_ALL, 0, &loss));
    r->loss = loss;
    r->fetch[r->nfetch++] = loss;
    /* gradients and updates */
    r->mode = (int)rg_below(r, 4);
    double lr = r->large ? 0.01 : 0.1;
    if (r->mode == 1) {
        weft_optim_options oo = weft_optim_options_default((weft_optim_kind)rg_below(r, 3));
        oo.lr = lr;
        oo.weight_decay = rg_below(r, 2) ? 0.01 : 0;
        OK(weft_optim_create(&oo, &r->optim));
        OK(weft_optim_minimize(r->optim, r->g, loss, r->nvar, r->var, r->target));
        r->ntarget = r->nvar;
        if (rg_below(r, 4) == 0)
            r->fetch[r->nfetch++] = r->target[0]; /* an update's value: the variable */
    } else {
        weft_value grads[TU_RG_VARS];
        OK(weft_tgraph_gradients(r->g, loss, r->nvar, r->var, grads));
        if (r->mode == 2) { /* gradients only */
            for (size_t i = 0; i < r->nvar; i++)
                r->fetch[r->nfetch++] = grads[i];
        } else {
            /* mode 3: var 0 also decays; its reader is made before the updates, so that
             * graph order agrees with the update edges (see the late-reader test) */
            weft_value decay = {0};
            if (r->mode == 3)
                OK(weft_op_scale(r->g, r->var[0], 0.99, &decay));
            for (size_t i = 0; i < r->nvar; i++) {
                weft_value step;
                OK(weft_op_scale(r->g, grads[i], lr, &step));
                OK(weft_op_assign_sub(r->g, r->var[i], step, &r->target[r->ntarget++]));
                if (rg_below(r, 4) == 0)
                    r->fetch[r->nfetch++] = grads[i];
            }
            if (r->mode == 3)
                OK(weft_op_assign(r->g, r->var[0], decay, &r->target[r->ntarget++]));
        }
    }
    assert_true(r->nfetch <= TU_RG_FETCH);
}

void tu_rg_free(tu_rg *r)
{
    for (size_t i = 0; i < r->nph; i++)
        weft_tensor_destroy(r->feed_t[i]);
    weft_tgraph_destroy(r->g);
    weft_optim_destroy(r->optim);
    memset(r, 0, sizeof *r);
}

weft_plan *tu_rg_plan(tu_rg *r, weft_pool *pool, const weft_plan_options *po)
{
    weft_plan *plan = NULL;
    OK(weft_plan_create(r->g, pool, r->nfetch, r->fetch, r->ntarget, r->target, po, &plan));
    return plan;
}

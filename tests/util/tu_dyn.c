/* tests/util/tu_dyn.c - see tu_dyn.h. */
#include "tests/util/tu_dyn.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/util/tu_weft.h"

weft_plan_options tu_dyn_options(int scheduled, int check)
{
    weft_plan_options po = weft_plan_options_default();
    po.check_numerics = check;
    if (scheduled)
        po.inline_below_ns = 0;
    return po;
}

weft_dyn *tu_dyn_make(weft_pool *pool, int scheduled)
{
    weft_plan_options po = tu_dyn_options(scheduled, 0);
    weft_dyn *d = NULL;
    OK(weft_dyn_create(pool, &po, &d));
    return d;
}

weft_tensor *tu_dyn_zeros_like(const weft_tensor *p)
{
    int64_t dims[WEFT_MAX_DIMS];
    size_t nd = weft_tensor_ndim(p);
    for (size_t i = 0; i < nd; i++)
        dims[i] = weft_tensor_dim(p, i);
    weft_tensor *t = NULL;
    OK(weft_tensor_create(weft_tensor_dtype(p), nd, dims, &t));
    return t;
}

double tu_dyn_read_scalar(weft_dyn *d, weft_value v)
{
    double x = 0;
    OK(weft_dyn_scalar(d, v, &x));
    return x;
}

/* tests/util/tu_weft.c - see tu_weft.h. */
#include "tests/util/tu_weft.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

void tu_expect_status_at(weft_status s, weft_status want, const char *what, const char *file,
                         int line)
{
    if (s != want)
        print_error("%s: got %s (%s), expected %s\n", what, weft_status_name(s),
                    weft_last_error(), weft_status_name(want));
    _assert_int_equal(cast_to_largest_integral_type(s), cast_to_largest_integral_type(want),
                      file, line);
}

void tu_expect_message_at(const char *file, int line, const char *what, ...)
{
    const char *msg = weft_last_error();
    va_list ap;
    va_start(ap, what);
    for (const char *s = va_arg(ap, const char *); s; s = va_arg(ap, const char *)) {
        if (!strstr(msg, s)) {
            print_error("%s: message \"%s\" does not contain \"%s\"\n", what, msg, s);
            va_end(ap);
            _fail(file, line);
        }
    }
    va_end(ap);
}

weft_pool *tu_make_pool(unsigned threads)
{
    weft_pool_options o = weft_pool_options_default();
    o.threads = threads;
    weft_pool *p = NULL;
    OK(weft_pool_create(&o, &p));
    return p;
}

weft_tensor *tu_rand_tensor(weft_dtype dt, size_t ndim, const int64_t *dims, weft_init init,
                            uint64_t seed, double lo, double hi)
{
    weft_tensor *t = NULL;
    OK(weft_tensor_create(dt, ndim, dims, &t));
    OK(weft_tensor_init_random(t, init, seed, lo, hi));
    return t;
}

weft_tensor *tu_f64_tensor(size_t ndim, const int64_t *dims, const double *data)
{
    weft_tensor *t = NULL;
    OK(weft_tensor_from_data(WEFT_F64, ndim, dims, data, WEFT_COPY, &t));
    return t;
}

weft_tensor *tu_tensor_of(weft_dtype dt, size_t ndim, const int64_t *dims, const double *vals)
{
    assert_true(dt == WEFT_F64 || dt == WEFT_F32);
    weft_tensor *t = NULL;
    OK(weft_tensor_create(dt, ndim, dims, &t));
    tu_tensor_set(t, vals);
    return t;
}

void tu_tensor_set(weft_tensor *t, const double *vals)
{
    size_t n = weft_tensor_numel(t);
    if (weft_tensor_dtype(t) == WEFT_F64) {
        OK(weft_tensor_copy_from(t, vals, n * sizeof(double)));
        return;
    }
    float *f = malloc(n * sizeof *f + 1);
    assert_non_null(f);
    for (size_t i = 0; i < n; i++)
        f[i] = (float)vals[i];
    OK(weft_tensor_copy_from(t, f, n * sizeof *f));
    free(f);
}

size_t tu_tensor_bytes(const weft_tensor *t)
{
    return weft_tensor_numel(t) * weft_dtype_size(weft_tensor_dtype(t));
}

unsigned char *tu_tensor_copy_bytes(const weft_tensor *t, size_t *n)
{
    size_t b = tu_tensor_bytes(t);
    unsigned char *out = malloc(b + 1);
    assert_non_null(out);
    OK(weft_tensor_copy_to(t, out, b));
    if (n)
        *n = b;
    return out;
}

int tu_same_tensor(const weft_tensor *a, const weft_tensor *b)
{
    if (weft_tensor_dtype(a) != weft_tensor_dtype(b) || weft_tensor_ndim(a) != weft_tensor_ndim(b))
        return 0;
    for (size_t i = 0; i < weft_tensor_ndim(a); i++)
        if (weft_tensor_dim(a, i) != weft_tensor_dim(b, i))
            return 0;
    return memcmp(weft_tensor_data_const(a), weft_tensor_data_const(b), tu_tensor_bytes(a)) == 0;
}

size_t tu_plan_allocations(weft_plan *plan)
{
    weft_plan_stats st;
    OK(weft_plan_stats_get(plan, &st));
    return st.allocations;
}

int tu_plan_runs_allocate_nothing(weft_plan *plan, size_t nfeeds, const weft_feed *feeds,
                                  int n, const char *what)
{
    size_t plan_before = tu_plan_allocations(plan);
    uint64_t before = tu_alloc_get().attempts;
    for (int i = 0; i < n; i++)
        OK(weft_plan_run(plan, nfeeds, feeds));
    uint64_t after = tu_alloc_get().attempts;
    size_t plan_after = tu_plan_allocations(plan);
    if (after == before && plan_after == plan_before)
        return 0;
    print_error("%s: %llu allocations through the hook and %zu buffer allocations in %d runs "
                "with the same feed shapes\n",
                what, (unsigned long long)(after - before), plan_after - plan_before, n);
    return 1;
}

void tu_alloc_uninstall_expect_clean(const char *what)
{
    tu_alloc_stats st = tu_alloc_get();
    tu_alloc_uninstall();
    if (st.allocs != st.frees || st.bytes_alloc != st.bytes_freed)
        print_error("%s: %llu allocations, %llu frees (%llu / %llu bytes) at the end\n", what,
                    (unsigned long long)st.allocs, (unsigned long long)st.frees,
                    (unsigned long long)st.bytes_alloc, (unsigned long long)st.bytes_freed);
    assert_int_equal(st.allocs, st.frees);
    assert_int_equal(st.bytes_alloc, st.bytes_freed);
    assert_int_equal(st.bad_free, 0);
    assert_int_equal(st.bad_align, 0);
}

void tu_alloc_failures_clean_on_1_and_3_threads(void (*fail_on)(unsigned threads))
{
    static const unsigned threads[] = {1, 3};
    for (size_t i = 0; i < 2; i++) {
        tu_alloc_install();
        fail_on(threads[i]);
        char what[32];
        snprintf(what, sizeof what, "%u threads", threads[i]);
        tu_alloc_uninstall_expect_clean(what);
    }
}

void tu_alloc_expect_balanced(const tu_alloc_stats *s0, const char *what, uint64_t n)
{
    tu_alloc_stats s1 = tu_alloc_get();
    uint64_t da = s1.allocs - s0->allocs, df = s1.frees - s0->frees;
    uint64_t ba = s1.bytes_alloc - s0->bytes_alloc, bf = s1.bytes_freed - s0->bytes_freed;
    if (da != df || ba != bf)
        print_error("%s%sN=%llu: %llu allocations / %llu frees, %llu / %llu bytes\n",
                    what ? what : "", what ? ", " : "", (unsigned long long)n,
                    (unsigned long long)da, (unsigned long long)df, (unsigned long long)ba,
                    (unsigned long long)bf);
    assert_int_equal(da, df);
    assert_int_equal(ba, bf);
    assert_int_equal(s1.bad_free, 0);
    assert_int_equal(s1.bad_align, 0);
}

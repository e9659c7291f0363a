/* tests/util/tu_alloc.c - see tu_alloc.h.
 *
 * Layout of a block: [ pad ... | header (16 bytes) | user bytes ], with the user pointer
 * at base + a where a = max(align, 16), so the header always fits in front of it and the
 * user pointer has the requested alignment. The header records the requested size and a,
 * which lets free find the base and check the size weft passes back. */
#include "tests/util/tu_alloc.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"

#define TU_MAGIC 0x7765667431323334ull /* "weft1234" */

typedef struct tu_hdr {
    uint64_t size;
    uint32_t align;
    uint32_t magic_lo;
} tu_hdr;

static struct {
    _Atomic uint64_t attempts, allocs, frees, bytes_alloc, bytes_freed, failed, bad_free,
        bad_align;
    _Atomic uint64_t armed_count; /* allocations since tu_alloc_fail_at */
    _Atomic uint64_t fail_at;     /* 0 = never */
    _Atomic int sticky;
} st;

static void *hook_alloc(void *ctx, size_t size, size_t align)
{
    (void)ctx;
    atomic_fetch_add(&st.attempts, 1);
    if (align == 0 || (align & (align - 1)) != 0 || align > 4096)
        atomic_fetch_add(&st.bad_align, 1);
    uint64_t k = atomic_fetch_add(&st.armed_count, 1) + 1;
    uint64_t n = atomic_load(&st.fail_at);
    if (n != 0 && (k == n || (k > n && atomic_load(&st.sticky)))) {
        atomic_fetch_add(&st.failed, 1);
        return NULL;
    }
    size_t a = align < 16 ? 16 : align;
    if ((a & (a - 1)) != 0)
        a = 4096;
    size_t body = (size + a - 1) / a * a;
    unsigned char *base = aligned_alloc(a, a + (body ? body : a));
    if (!base)
        return NULL;
    unsigned char *user = base + a;
    tu_hdr h = {.size = size, .align = (uint32_t)a, .magic_lo = (uint32_t)TU_MAGIC};
    memcpy(user - sizeof h, &h, sizeof h);
    atomic_fetch_add(&st.allocs, 1);
    atomic_fetch_add(&st.bytes_alloc, size);
    return user;
}

static void hook_free(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    if (!ptr)
        return;
    unsigned char *user = ptr;
    tu_hdr h;
    memcpy(&h, user - sizeof h, sizeof h);
    if (h.magic_lo != (uint32_t)TU_MAGIC) {
        atomic_fetch_add(&st.bad_free, 1);
        return; /* not ours: leak it rather than corrupt the heap */
    }
    if (h.size != size)
        atomic_fetch_add(&st.bad_free, 1);
    h.magic_lo = 0;
    memcpy(user - sizeof h, &h, sizeof h);
    atomic_fetch_add(&st.frees, 1);
    atomic_fetch_add(&st.bytes_freed, size);
    free(user - h.align);
}

static const weft_allocator hook = {.alloc = hook_alloc, .free = hook_free, .ctx = NULL};

void tu_alloc_reset(void)
{
    atomic_store(&st.attempts, 0);
    atomic_store(&st.allocs, 0);
    atomic_store(&st.frees, 0);
    atomic_store(&st.bytes_alloc, 0);
    atomic_store(&st.bytes_freed, 0);
    atomic_store(&st.failed, 0);
    atomic_store(&st.bad_free, 0);
    atomic_store(&st.bad_align, 0);
}

void tu_alloc_fail_at(uint64_t n, int sticky)
{
    atomic_store(&st.fail_at, 0);
    atomic_store(&st.armed_count, 0);
    atomic_store(&st.sticky, sticky);
    atomic_store(&st.fail_at, n);
}

void tu_alloc_install(void)
{
    tu_alloc_reset();
    tu_alloc_fail_at(0, 0);
    weft_allocator_set(&hook);
}

void tu_alloc_uninstall(void)
{
    tu_alloc_fail_at(0, 0);
    weft_allocator_set(NULL);
}

tu_alloc_stats tu_alloc_get(void)
{
    tu_alloc_stats s = {
        .attempts = atomic_load(&st.attempts),
        .allocs = atomic_load(&st.allocs),
        .frees = atomic_load(&st.frees),
        .bytes_alloc = atomic_load(&st.bytes_alloc),
        .bytes_freed = atomic_load(&st.bytes_freed),
        .failed = atomic_load(&st.failed),
        .bad_free = atomic_load(&st.bad_free),
        .bad_align = atomic_load(&st.bad_align),
    };
    return s;
}

int tu_alloc_teardown(void **state)
{
    (void)state;
    tu_alloc_uninstall();
    return 0;
}

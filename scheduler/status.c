/* scheduler/status.c - status names and messages, the thread-local error message, the
 * allocator hook and small memory helpers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scheduler/atomic.h"
#include "scheduler/internal.h"

#if WF_TSAN
_Atomic unsigned long wf_tsan_fence_word;
#endif

const char *weft_status_name(weft_status status) {
    switch (status) {
#define NAME_CASE_(name, value, msg) \
    case WEFT_##name: return "WEFT_" #name;
        WEFT_STATUS_LIST(NAME_CASE_)
#undef NAME_CASE_
    }
    return "WEFT_UNKNOWN";
}

const char *weft_status_str(weft_status status) {
    switch (status) {
#define MSG_CASE_(name, value, msg) \
    case WEFT_##name: return msg;
        WEFT_STATUS_LIST(MSG_CASE_)
#undef MSG_CASE_
    }
    return "unknown status";
}

static _Thread_local char tl_message[512];

const char *weft_last_error(void) { return tl_message; }

/* Formats into a local buffer first: callers may pass weft_last_error() (this thread's
 * message) as an argument, to wrap it in a message of their own. */
weft_status wf_error(weft_status status, const char *fmt, ...) {
    char buf[sizeof tl_message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    memcpy(tl_message, buf, sizeof buf);
    return status;
}

/* The allocator hook. Read on every allocation, written only by weft_allocator_set while
 * no weft object exists (its contract), so plain reads are race-free. */
static void *default_alloc(void *ctx, size_t size, size_t align) {
    (void)ctx;
    if (align < sizeof(void *)) align = sizeof(void *);
    void *p = NULL;
    return posix_memalign(&p, align, size ? size : 1) == 0 ? p : NULL;
}

static void default_free(void *ctx, void *ptr, size_t size) {
    (void)ctx;
    (void)size;
    free(ptr);
}

static weft_allocator g_alloc = {default_alloc, default_free, NULL};

void weft_allocator_set(const weft_allocator *allocator) {
    if (allocator && allocator->alloc && allocator->free)
        g_alloc = *allocator;
    else
        g_alloc = (weft_allocator){default_alloc, default_free, NULL};
}

void *wf_alloc(size_t size, size_t align) { return g_alloc.alloc(g_alloc.ctx, size, align); }

void *wf_calloc(size_t size, size_t align) {
    void *p = wf_alloc(size, align);
    if (p) memset(p, 0, size);
    return p;
}

void wf_free(void *ptr, size_t size) {
    if (ptr) g_alloc.free(g_alloc.ctx, ptr, size);
}

int wf_array_reserve(void **arr, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2 / elem) return -1;
        ncap *= 2;
    }
    void *n = wf_alloc(ncap * elem, 16);
    if (!n) return -1;
    if (*arr) {
        memcpy(n, *arr, *cap * elem);
        wf_free(*arr, *cap * elem);
    }
    *arr = n;
    *cap = ncap;
    return 0;
}

uint64_t wf_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

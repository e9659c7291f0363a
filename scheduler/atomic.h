/* scheduler/atomic.h - C11 atomics with the memory order in the name (after mimalloc's
 * atomic.h), so every access says what it pairs with at the call site. */
#ifndef WEFT_SCHED_ATOMIC_H
#define WEFT_SCHED_ATOMIC_H

#include <stdatomic.h>

#include "scheduler/config.h"

#define wf_load_relaxed(p) atomic_load_explicit((p), memory_order_relaxed)
#define wf_load_acquire(p) atomic_load_explicit((p), memory_order_acquire)
#define wf_load_seq_cst(p) atomic_load_explicit((p), memory_order_seq_cst)
#define wf_store_relaxed(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
#define wf_store_release(p, v) atomic_store_explicit((p), (v), memory_order_release)
#define wf_store_seq_cst(p, v) atomic_store_explicit((p), (v), memory_order_seq_cst)
#define wf_add_relaxed(p, v) atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define wf_add_acq_rel(p, v) atomic_fetch_add_explicit((p), (v), memory_order_acq_rel)
#define wf_add_seq_cst(p, v) atomic_fetch_add_explicit((p), (v), memory_order_seq_cst)
#define wf_sub_acq_rel(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_acq_rel)
#define wf_sub_seq_cst(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_seq_cst)
#define wf_xchg_acq_rel(p, v) atomic_exchange_explicit((p), (v), memory_order_acq_rel)
#define wf_cas_seq_cst(p, exp, des)                                                      \
    atomic_compare_exchange_strong_explicit((p), (exp), (des), memory_order_seq_cst,     \
                                            memory_order_relaxed)
#define wf_cas_acq_rel(p, exp, des)                                                      \
    atomic_compare_exchange_strong_explicit((p), (exp), (des), memory_order_acq_rel,     \
                                            memory_order_acquire)

/* A counter written by one thread and read by others: a plain increment, but atomic so
 * that readers are race-free. */
#define wf_bump_owner(p, v) wf_store_relaxed((p), wf_load_relaxed(p) + (v))

/* Full (seq_cst) fence. Under TSan, a seq_cst RMW on one global atomic instead: TSan
 * models RMWs (all of them on wf_tsan_fence_word are totally ordered and each one
 * synchronises with the next), but not atomic_thread_fence. */
#if WF_TSAN
extern _Atomic unsigned long wf_tsan_fence_word;
#define wf_fence_seq_cst() ((void)atomic_fetch_add_explicit(&wf_tsan_fence_word, 0, \
                                                            memory_order_seq_cst))
#else
#define wf_fence_seq_cst() atomic_thread_fence(memory_order_seq_cst)
#endif

static inline void wf_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

#endif

/* scheduler/eventcount.c - an eventcount on a Linux futex (after D. Vyukov's design).
 *
 * Protocol. Waiter: ticket = prepare(); re-check the condition (work available, flag set);
 * if it holds, cancel(); else commit(ticket). Notifier: make the condition true (push a
 * job, set a flag), then notify.
 *
 * No lost wake-up: prepare increments `waiters` and then issues a seq_cst fence before the
 * re-check; notify issues a seq_cst fence after making the condition true and before it
 * reads `waiters`. The two fences are ordered in the single total order S: if the
 * notifier's fence comes first, the waiter's re-check sees the condition; if the waiter's
 * fence comes first, the notifier sees waiters > 0, bumps the epoch and wakes the futex,
 * and commit() does not sleep (epoch != ticket) or is woken. (Under TSan, wf_fence_seq_cst
 * is an RMW on one shared atomic, which gives the same ordering in a form TSan models.)
 *
 * A notify_one may wake a thread that will find nothing (a waiter of another condition);
 * every waiter re-checks everything it waits for, so spurious wake-ups are harmless. */
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "scheduler/atomic.h"
#include "scheduler/internal.h"

static void futex_wait(_Atomic uint32_t *addr, uint32_t expected) {
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *addr, int n) {
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

uint32_t wf_ec_prepare(wf_eventcount *ec) {
    uint32_t ticket = wf_load_acquire(&ec->epoch);
    wf_add_seq_cst(&ec->waiters, 1);
    wf_fence_seq_cst(); /* pairs with the fence in notify (see top of file) */
    return ticket;
}

void wf_ec_cancel(wf_eventcount *ec) { wf_sub_seq_cst(&ec->waiters, 1); }

void wf_ec_commit(wf_eventcount *ec, uint32_t ticket) {
    /* acquire: pairs with the release increment of epoch in notify */
    while (wf_load_acquire(&ec->epoch) == ticket) futex_wait(&ec->epoch, ticket);
    wf_sub_seq_cst(&ec->waiters, 1);
}

static void notify(wf_eventcount *ec, int n) {
    wf_fence_seq_cst(); /* pairs with the fence in prepare */
    if (wf_load_relaxed(&ec->waiters) == 0) return;
    atomic_fetch_add_explicit(&ec->epoch, 1, memory_order_release);
    futex_wake(&ec->epoch, n);
}

void wf_ec_notify_one(wf_eventcount *ec) { notify(ec, 1); }
void wf_ec_notify_all(wf_eventcount *ec) { notify(ec, 0x7fffffff); }

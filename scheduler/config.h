/* scheduler/config.h - compile-time knobs, each with its default and the reason for it.
 * Environment variables are read in one place only: scheduler/env.c. */
#ifndef WEFT_SCHED_CONFIG_H
#define WEFT_SCHED_CONFIG_H

/* Cache line size (x86-64, most arm64). Hot fields written by different threads sit on
 * different lines to avoid false sharing. */
#define WF_CACHE_LINE 64
#define WF_CACHE_ALIGNED _Alignas(WF_CACHE_LINE)

/* First deque buffer: 2^10 jobs (8 KiB) is enough for most graphs without growing. */
#define WF_DEQUE_INIT_LOG2 10
/* Largest deque buffer: 2^26 jobs (512 MiB of pointers); beyond it jobs overflow to the
 * pool's shared queue. */
#define WF_DEQUE_MAX_LOG2 26

/* Default time an idle worker searches for work before parking: long enough to bridge
 * the gap between two dependent tasks, short enough that an idle pool costs nothing. */
#define WF_DEFAULT_SPIN_US 50

/* Deque fill above which an affinity hint to that slot is ignored (slot overloaded). */
#define WF_AFFINITY_MAX_QUEUED 8

/* A task with more successors than 2 * WF_RELEASE_LEAF releases them in leaves of this
 * many, as separate jobs that idle workers steal whole: one steal then brings 64 ready
 * tasks instead of one (graph/run.c). */
#define WF_RELEASE_LEAF 64

/* Global-priority runs (graph/run.c): a worker that finishes a task continues with the
 * most urgent successor it made ready, which reads what the task just wrote, unless the
 * shared queue holds a task more urgent by more than 1 / WF_GLOBAL_KEEP_RATIO; then it
 * takes that one. 0.7 on the tiled Cholesky (n=4096, tile 256, 2 threads, 64 runs
 * paired with OpenMP): weft/omp time ratio 1.037 vs 1.010 at 0.9 and 0.986 with strict
 * priority (1: kernels ran slower, the tiles being colder); the idle time stayed low. */
#define WF_GLOBAL_KEEP_RATIO 0.7f

/* Cost model of tensor ops (engine/): a node's estimated time is
 *   WF_COST_NS_PER_NODE + flops * WF_COST_NS_PER_FLOP + bytes * WF_COST_NS_PER_BYTE,
 * roughly one core of a current x86 server (30 GFLOP/s in BLAS, 10 GB/s streaming). The
 * estimates feed the analyzer's work/span report and critical-path priorities; only
 * their ratios matter for scheduling. */
#define WF_COST_NS_PER_NODE 50.0
#define WF_COST_NS_PER_FLOP 0.033
#define WF_COST_NS_PER_BYTE 0.1

/* Default of weft_plan_options.inline_below_ns: plans estimated below 20 us of work run
 * their nodes in order on the calling thread; scheduling a task costs ~50-150 ns, which
 * such plans cannot win back. */
#define WF_PLAN_INLINE_BELOW_NS 20000.0

/* Plans of small tasks (estimated below WF_PLAN_INLINE_TASK_NS on average) whose
 * parallelism (work / span of the task DAG) is below WF_PLAN_INLINE_PARALLELISM also run
 * inline: a chain of tiny ops gains nothing from scheduling. Plans of larger tasks are
 * scheduled even when nearly serial: the estimate does not see the side branches that
 * overlap (weight gradients of an MLP: 1.3x faster scheduled on 2 cores). Only with
 * inline_below_ns > 0 (0 asks for scheduling always). */
#define WF_PLAN_INLINE_PARALLELISM 1.2
#define WF_PLAN_INLINE_TASK_NS 2000.0

/* Plans a dynamic-graph context keeps by structure (weft_dyn_set_cache): enough for an
 * RNN over every length from 5 to 60 with two evaluations (forward, backward) each. */
#define WF_DYN_CACHE_ENTRIES 256

/* ThreadSanitizer does not model atomic_thread_fence. Under TSan, every seq_cst fence of
 * the scheduler is replaced by a seq_cst read-modify-write on one shared atomic
 * (scheduler/atomic.h), which TSan does model and which orders the same operations. */
#if defined(__SANITIZE_THREAD__)
#define WF_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WF_TSAN 1
#endif
#endif
#ifndef WF_TSAN
#define WF_TSAN 0
#endif

#endif

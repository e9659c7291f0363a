/* bench/main.c - weft-bench: the scheduler benchmark of SHAPES.md (and tiled Cholesky),
 * and the tensor workloads of --workload.
 *
 * Parses the command line (bench/options.h), then runs bench_run_graph or
 * bench_run_cholesky (bench/harness.h) or bench_run_tensor (bench/run_tensor.h). Exit status: 0 on success, 1 on any error or
 * invalid run, 2 on a command-line error.
 *
 * Stacks: OpenMP task creation places the depend list of a task on the creating thread's
 * stack, 8 bytes per predecessor, and the fanout sink has N predecessors. When the graph
 * needs more than a default stack (bench_omp_stack_bytes), the benchmark runs on a thread
 * with a big enough stack, and the default stack size of threads created afterwards (the
 * OpenMP team among them) is raised to the same size. The memory is only reserved;
 * pages are touched only as deep as the stack actually grows.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "bench/engines.h"
#include "bench/harness.h"
#include "bench/options.h"
#include "bench/run_dynamic.h"
#include "bench/run_rnn.h"
#include "bench/run_tensor.h"

/* LeakSanitizer (SAN=address builds): libgomp sometimes keeps the dependence hash table of
 * a worker's implicit task (allocated in gomp_task_handle_depend) past the end of the
 * program; it is libgomp's memory, not ours. Suppressed through the documented hook. */
#if defined(__SANITIZE_ADDRESS__)
const char *__lsan_default_suppressions(void);
__attribute__((visibility("default"))) const char *__lsan_default_suppressions(void)
{
    return "leak:libgomp.so\n";
}
#endif

typedef struct bench_job {
    const bench_options *opts;
    int rc;
} bench_job;

static void *bench_job_run(void *arg)
{
    bench_job *job = arg;
    if (job->opts->workload == BENCH_WORKLOAD_RNN)
        job->rc = bench_run_rnn(job->opts);
    else if (job->opts->workload == BENCH_WORKLOAD_DYNAMIC_OVERHEAD)
        job->rc = bench_run_dynamic(job->opts);
    else if (job->opts->workload != BENCH_WORKLOAD_NONE)
        job->rc = bench_run_tensor(job->opts);
    else if (job->opts->shape == BENCH_SHAPE_CHOLESKY)
        job->rc = bench_run_cholesky(job->opts);
    else
        job->rc = bench_run_graph(job->opts);
    return NULL;
}

/* Runs the job on a thread with `stack` bytes of stack and makes that the default. */
static int run_with_stack(bench_job *job, size_t stack)
{
    pthread_attr_t at;
    pthread_t tid;
    int err = pthread_attr_init(&at);
    if (err == 0)
        err = pthread_attr_setstacksize(&at, stack);
    if (err == 0)
        err = pthread_setattr_default_np(&at);
    if (err == 0)
        err = pthread_create(&tid, &at, bench_job_run, job);
    pthread_attr_destroy(&at);
    if (err != 0) {
        fprintf(stderr, "weft-bench: cannot start the benchmark thread with a %zu MiB stack: "
                        "%s\n", stack >> 20, strerror(err));
        return -1;
    }
    pthread_join(tid, NULL);
    return 0;
}

int main(int argc, char **argv)
{
    bench_options opts;
    int prc = bench_options_parse(argc, argv, &opts);
    if (prc != 0)
        return prc > 0 ? 0 : 2;
    bench_job job = {&opts, 0};
    size_t max_preds = opts.shape == BENCH_SHAPE_FANOUT ? (size_t)opts.size : 64;
    int no_omp = opts.shape == BENCH_SHAPE_CHOLESKY || opts.workload != BENCH_WORKLOAD_NONE;
    size_t stack = no_omp ? 0 : bench_omp_stack_bytes(max_preds);
    if (stack == 0)
        bench_job_run(&job);
    else if (run_with_stack(&job, stack) != 0)
        return 1;
    return job.rc == 0 ? 0 : 1;
}

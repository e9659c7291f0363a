/* examples/cholesky.c - weft's proof on real HPC work: a tiled Cholesky factorisation.
 *
 *   build/cholesky [--n N] [--tile NB] [--threads T] [--seed S] [--trace FILE]
 *
 * Builds a seeded symmetric positive definite matrix of order N in NB x NB tiles,
 * factorises it A = L L^T with a weft task graph of OpenBLAS/LAPACKE tile kernels (POTRF,
 * TRSM, SYRK, GEMM) whose dependencies weft infers from the tiles each task reads and
 * writes (examples/cholesky_lib.c), and checks the result: the relative residual
 * ||A - L L^T||_F / ||A||_F must be below 1e-12. Prints the build and run times, GFLOP/s
 * of the run and the analyzer's work/span bound. --trace writes a Chrome trace-event file
 * (open it in Perfetto) of every task.
 *
 * Exit status: 0 on success, 1 if the factorisation failed or the residual is too large,
 * 2 for bad flags.
 */
#include <cblas.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "examples/cholesky_lib.h"
#include "weft.h"

#define CHOL_TOLERANCE 1e-12

typedef struct options {
    size_t n, tile;
    unsigned threads; /* 0 = one per core (weft's default) */
    unsigned seed;
    const char *trace;
} options;

static void usage(FILE *f) {
    fprintf(f, "usage: cholesky [--n N] [--tile NB] [--threads T] [--seed S] [--trace FILE]\n"
               "  --n N        matrix order, a positive multiple of the tile size (2048)\n"
               "  --tile NB    tile size (256)\n"
               "  --threads T  weft threads, the calling thread included; 0 = one per core (0)\n"
               "  --seed S     seed of the test matrix (1)\n"
               "  --trace FILE write a Chrome trace-event JSON of every task to FILE\n");
}

/* Parses a decimal unsigned number no larger than max into *out; 0 on success. */
static int parse_count(const char *flag, const char *text, unsigned long long max,
                       unsigned long long *out) {
    char *end = NULL;
    errno = 0;
    unsigned long long v = text[0] >= '0' && text[0] <= '9' ? strtoull(text, &end, 10) : 0;
    if (end == NULL || *end != '\0' || errno != 0 || v > max) {
        fprintf(stderr, "cholesky: %s expects a whole number from 0 to %llu, got '%s'\n", flag,
                max, text);
        return -1;
    }
    *out = v;
    return 0;
}

/* Fills *o from argv; 0 to go on, 1 after --help, -1 on a bad flag (message printed). */
static int parse_options(int argc, char **argv, options *o) {
    *o = (options){.n = 2048, .tile = 256, .threads = 0, .seed = 1, .trace = NULL};
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (strcmp(flag, "--help") == 0 || strcmp(flag, "-h") == 0) {
            usage(stdout);
            return 1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "cholesky: %s needs a value\n", flag);
            usage(stderr);
            return -1;
        }
        const char *value = argv[++i];
        unsigned long long v = 0;
        int rc = 0;
        if (strcmp(flag, "--n") == 0) {
            rc = parse_count(flag, value, 1u << 20, &v);
            o->n = (size_t)v;
        } else if (strcmp(flag, "--tile") == 0) {
            rc = parse_count(flag, value, 1u << 16, &v);
            o->tile = (size_t)v;
        } else if (strcmp(flag, "--threads") == 0) {
            rc = parse_count(flag, value, WEFT_MAX_THREADS, &v);
            o->threads = (unsigned)v;
        } else if (strcmp(flag, "--seed") == 0) {
            rc = parse_count(flag, value, 0xffffffffu, &v);
            o->seed = (unsigned)v;
        } else if (strcmp(flag, "--trace") == 0) {
            o->trace = value;
        } else {
            fprintf(stderr, "cholesky: unknown flag %s\n", flag);
            usage(stderr);
            return -1;
        }
        if (rc != 0)
            return -1;
    }
    if (o->n == 0 || o->tile == 0 || o->n % o->tile != 0) {
        fprintf(stderr, "cholesky: --n (%zu) must be a positive multiple of --tile (%zu)\n",
                o->n, o->tile);
        return -1;
    }
    return 0;
}

/* Tasks run single-threaded OpenBLAS kernels; weft provides the parallelism. Says which
 * OpenBLAS build is loaded and which kernels it picked: OpenBLAS 0.3.21 (Debian 12) does
 * not recognise recent Xeons and falls back to its SSE3 "Prescott" kernels, about 4x
 * slower than the AVX-512 ones; OPENBLAS_CORETYPE, read when the library loads, overrides
 * the choice. */
static void openblas_report(void) {
    openblas_set_num_threads(1);
    int par = openblas_get_parallel();
    const char *kind = par == 0   ? "sequential build"
                       : par == 1 ? "pthreads build"
                       : par == 2 ? "OpenMP build"
                                  : "unknown threading model";
    const char *core = openblas_get_corename();
    printf("OpenBLAS: %s (openblas_get_parallel() = %d), %s kernels, %d thread per call "
           "inside tasks\n", kind, par, core, openblas_get_num_threads());
    if (strcmp(core, "Prescott") == 0 && __builtin_cpu_supports("avx2"))
        printf("OpenBLAS: note: this CPU has AVX2%s but OpenBLAS uses its generic kernels; "
               "for the fast ones run with OPENBLAS_CORETYPE=%s\n",
               __builtin_cpu_supports("avx512f") ? "/AVX-512" : "",
               __builtin_cpu_supports("avx512f") ? "SkylakeX" : "Haswell");
}

int main(int argc, char **argv) {
    options o;
    int rc = parse_options(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    openblas_report();

    weft_pool_options po = weft_pool_options_default();
    po.threads = o.threads;
    po.trace_path = o.trace;
    weft_pool *pool = NULL;
    weft_status st = weft_pool_create(&po, &pool);
    if (st != WEFT_OK) {
        fprintf(stderr, "cholesky: cannot create the pool: %s\n", weft_last_error());
        return 1;
    }

    int status = 1;
    chol_matrix a = {0}, l = {0}; /* a keeps the original for the residual */
    if (chol_matrix_create(&a, o.n, o.tile, o.seed) != 0 ||
        chol_matrix_create(&l, o.n, o.tile, o.seed) != 0)
        goto done;
    printf("tiled Cholesky: n=%zu tile=%zu (%zu x %zu tiles) threads=%u seed=%u\n", o.n,
           o.tile, a.nt, a.nt, weft_pool_threads(pool), o.seed);

    double build_s = 0.0, run_s = 0.0, kernel_s = 0.0;
    weft_graph_stats gs;
    st = chol_factor_weft_ex(pool, &l, &build_s, &run_s, &gs, &kernel_s);
    if (st != WEFT_OK) {
        fprintf(stderr, "cholesky: factorisation failed (%s): %s\n", weft_status_name(st),
                weft_last_error());
        goto done;
    }
    printf("graph: %zu tasks, %zu inferred edges, %zu levels, work/span bound %.2f\n",
           gs.tasks, gs.edges, gs.levels, gs.parallelism);
    printf("build %.6f s  run %.6f s  %.2f GFLOP/s\n", build_s, run_s,
           chol_flops(o.n) / run_s * 1e-9);
    /* Thread time outside the tile kernels during the run: idle, scheduling, waking. */
    double threads_s = (double)weft_pool_threads(pool) * run_s;
    printf("kernels %.6f s over all threads; outside kernels during the run %.3f ms (%.1f%% "
           "of %u threads x run)\n", kernel_s, (threads_s - kernel_s) * 1e3,
           threads_s > 0 ? 100.0 * (threads_s - kernel_s) / threads_s : 0.0,
           weft_pool_threads(pool));

    double res = chol_residual(&a, &l);
    int ok = res < CHOL_TOLERANCE; /* false for NaN as well */
    printf("residual ||A - L L^T||_F / ||A||_F = %.3e (%s %.0e)\n", res,
           ok ? "ok, below" : "FAILED, not below", CHOL_TOLERANCE);
    if (!ok)
        goto done;

    if (o.trace != NULL) {
        st = weft_pool_trace_flush(pool);
        if (st != WEFT_OK) {
            fprintf(stderr, "cholesky: cannot write the trace: %s\n", weft_last_error());
            goto done;
        }
        printf("trace: %s\n", o.trace);
    }
    status = 0;
done:
    chol_matrix_destroy(&l);
    chol_matrix_destroy(&a);
    weft_pool_destroy(pool);
    return status;
}

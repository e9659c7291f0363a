/* bench/options.c - command-line parsing (see options.h). */
#include "bench/options.h"

#include "examples/cli_lib.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/run_tensor.h"
#include "weft.h"

static const char *const engine_names[BENCH_ENGINE_COUNT] = {"weft", "omp", "static",
                                                             "lapacke"};

const char *bench_engine_name(bench_engine engine)
{
    return (unsigned)engine < BENCH_ENGINE_COUNT ? engine_names[engine] : "?";
}

void bench_options_usage(FILE *out)
{
    fputs("usage: weft-bench --shape chain|fanout|tree|wavefront|random|cholesky\n"
          "                  [--size N|small|full] [--tile NB] --grain empty|1us|10us\n"
          "                  [--threads 1,2] [--reps R] [--rounds K]\n"
          "                  [--baseline omp,static|none] [--json] [--budget S]\n"
          "                  [--no-filter] [--trace-dir D] [--seed X] [--force-omp]\n"
          "       weft-bench --workload xor|wide|mlp|rnn|dynamic-overhead [--size N|small|full]\n"
          "                  [--iters I]\n"
          "                  [--threads 1,2] [--reps R] [--rounds K] [--json] [--budget S]\n"
          "                  [--no-filter] [--trace FILE] [--seed X]\n"
          "  --size       N for chain/fanout/random, D for tree, M for wavefront, the matrix\n"
          "               order for cholesky; full = SHAPES.md size for the grain (default),\n"
          "               small = about 10x less work\n"
          "  --tile       cholesky tile size (default 256)\n"
          "  --grain      task body: empty (W=0), 1us (W=850), 10us (W=8500); not for cholesky\n"
          "  --threads    thread counts to measure (default 1,<online CPUs>)\n"
          "  --reps       timed repetitions per configuration and round (default 5)\n"
          "  --rounds     rounds, configuration order shuffled in each (default 3)\n"
          "  --baseline   engines to compare weft with: omp,static for graph shapes,\n"
          "               omp,lapacke for cholesky (the defaults), or none\n"
          "  --json       one JSON object per (engine, threads) per line instead of a table\n"
          "  --budget     seconds per configuration the load filter may spend (default 180)\n"
          "  --no-filter  accept every repetition (no /proc/stat background-load filter)\n"
          "  --trace-dir  write weft's Chrome trace to D/weft-<shape>-<T>.json\n"
          "  --seed       seed of the round shuffles (default 1)\n"
          "  --force-omp  measure omp at T=1 even on graphs where libgomp's dependence lists\n"
          "               make one thread quadratic (fanout); skipped by default\n"
          "  --workload   a tensor graph with autodiff, timed per iteration: xor (XOR training\n"
          "               step), wide (16 branches x 4 layers of 256x256, forward + backward),\n"
          "               mlp (784-256-128-10 training step, batch 128), rnn (Elman RNN\n"
          "               64-128, lengths 5-60, one SGD step per sequence, dynamic and static\n"
          "               styles); --size: the width (wide), batch (mlp) or number of\n"
          "               sequences (rnn, 200), small = the test suite's tiny size;\n"
          "               dynamic-overhead (ns per node of define-by-run: record, compile,\n"
          "               schedule N one-element ops; --size N, full = 1000 and 10000)\n"
          "  --iters      workloads: iterations per timed repetition (xor 1000, wide 1, mlp 10,\n"
          "               dynamic-overhead 10)\n"
          "  --trace      workloads: after the measurement, run 3 more iterations on the\n"
          "               largest thread count and write their Chrome trace to FILE\n",
          out);
}

static int bad(const char *opt, const char *value, const char *why)
{
    return cli_bad("weft-bench", opt, value, why);
}

static int parse_u64(const char *opt, const char *text, uint64_t lo, uint64_t hi,
                     uint64_t *out)
{
    return cli_parse_u64("weft-bench", opt, text, lo, hi, out);
}

static int parse_threads(const char *text, bench_options *o)
{
    uint64_t t[BENCH_MAX_THREAD_COUNTS];
    size_t n = 0;
    if (cli_parse_u64_list("weft-bench", "--threads", text, 1, WEFT_MAX_THREADS, 1, t,
                           BENCH_MAX_THREAD_COUNTS, &n, "1,2") != 0)
        return -1;
    o->nthreads = n;
    for (size_t i = 0; i < n; i++) o->threads[i] = (unsigned)t[i];
    return 0;
}

static int parse_baselines(const char *text, unsigned *out)
{
    *out = 0;
    if (strcmp(text, "none") == 0)
        return 0;
    const char *p = text;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        int found = 0;
        for (unsigned e = BENCH_ENGINE_OMP; e < BENCH_ENGINE_COUNT; e++) {
            if (strlen(engine_names[e]) == len && strncmp(p, engine_names[e], len) == 0) {
                *out |= 1u << e;
                found = 1;
            }
        }
        if (!found)
            return bad("--baseline", text, "expected a list of omp, static, lapacke, or none");
        p += len + (comma ? 1 : 0);
    }
    return 0;
}

static void set_defaults(bench_options *o)
{
    memset(o, 0, sizeof *o);
    o->shape = BENCH_SHAPE_COUNT;
    o->grain = BENCH_GRAIN_COUNT;
    o->tile = 256;
    o->reps = 5;
    o->rounds = 3;
    o->filter = 1;
    o->budget_s = 180.0;
    o->seed = 1;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    o->threads[0] = 1;
    o->nthreads = 1;
    if (ncpu > 1)
        o->threads[o->nthreads++] = ncpu > WEFT_MAX_THREADS ? WEFT_MAX_THREADS : (unsigned)ncpu;
}

/* A --workload run: no shape, grain, tile, baseline or trace directory; resolves the size
 * and the iterations per repetition. */
static int finish_workload(bench_options *o, const char *size_text, int have_grain,
                           int have_baseline, int have_tile)
{
    const char *name = bench_workload_name(o->workload);
    if (o->shape != BENCH_SHAPE_COUNT || have_grain || have_tile || o->trace_dir != NULL ||
        o->force_omp) {
        fprintf(stderr, "weft-bench: --workload takes none of --shape, --grain, --tile, "
                        "--trace-dir, --force-omp\n");
        return -1;
    }
    if (have_baseline && o->baselines != 0) {
        fprintf(stderr, "weft-bench: --workload %s has no baselines (--baseline none)\n", name);
        return -1;
    }
    o->baselines = 0;
    int small = size_text != NULL && strcmp(size_text, "small") == 0;
    if (size_text == NULL || small || strcmp(size_text, "full") == 0) {
        o->size_label = small ? "small" : "full";
        o->size = bench_workload_size(o->workload, small);
    } else if (!bench_workload_sizable(o->workload)) {
        return bad("--size", size_text, "the xor workload has a fixed size (full or small)");
    } else if (parse_u64("--size", size_text, 1, 1u << 16, &o->size) != 0) {
        return -1;
    }
    if (o->workload == BENCH_WORKLOAD_RNN && o->iters != 0) {
        fprintf(stderr, "weft-bench: --iters does not apply to --workload rnn (a rep is one "
                        "pass over the sequences)\n");
        return -1;
    }
    if (o->iters == 0)
        o->iters = bench_workload_iterations(o->workload, small);
    return 0;
}

/* Validates the combination and resolves size and baselines. */
static int finish(bench_options *o, const char *size_text, int have_baseline, int have_tile)
{
    if (o->trace_path != NULL) {
        fprintf(stderr, "weft-bench: --trace applies to --workload (shapes: --trace-dir)\n");
        return -1;
    }
    if (o->iters != 0) {
        fprintf(stderr, "weft-bench: --iters applies to --workload only\n");
        return -1;
    }
    if (o->shape == BENCH_SHAPE_COUNT) {
        fprintf(stderr, "weft-bench: --shape or --workload is required\n");
        return -1;
    }
    int chol = o->shape == BENCH_SHAPE_CHOLESKY;
    if (!chol && o->grain == BENCH_GRAIN_COUNT) {
        fprintf(stderr, "weft-bench: --grain is required for shape %s\n",
                bench_shape_name(o->shape));
        return -1;
    }
    if (!chol && have_tile) {
        fprintf(stderr, "weft-bench: --tile applies to --shape cholesky only\n");
        return -1;
    }
    if (size_text == NULL || strcmp(size_text, "full") == 0 || strcmp(size_text, "small") == 0) {
        int small = size_text != NULL && strcmp(size_text, "small") == 0;
        o->size_label = small ? "small" : "full";
        o->size = bench_shape_size(o->shape, o->grain, small);
    } else if (parse_u64("--size", size_text, 1, UINT32_MAX, &o->size) != 0) {
        return -1;
    }
    if (chol) {
        if (o->tile == 0 || o->size % o->tile != 0) {
            fprintf(stderr, "weft-bench: cholesky: the order %llu must be a positive multiple "
                            "of the tile size %zu\n", (unsigned long long)o->size, o->tile);
            return -1;
        }
    } else {
        const char *why = NULL;
        if (bench_shape_tasks(o->shape, o->size, &why) == 0) {
            fprintf(stderr, "weft-bench: invalid --size %llu for shape %s: %s\n",
                    (unsigned long long)o->size, bench_shape_name(o->shape), why);
            return -1;
        }
    }
    if (o->trace_dir != NULL && access(o->trace_dir, W_OK | X_OK) != 0) {
        fprintf(stderr, "weft-bench: --trace-dir %s is not a writable directory: %s\n",
                o->trace_dir, strerror(errno));
        return -1;
    }
    unsigned allowed = chol ? (1u << BENCH_ENGINE_OMP) | (1u << BENCH_ENGINE_LAPACKE)
                            : (1u << BENCH_ENGINE_OMP) | (1u << BENCH_ENGINE_STATIC);
    if (!have_baseline)
        o->baselines = allowed;
    if (o->baselines & ~allowed) {
        fprintf(stderr, "weft-bench: --baseline: shape %s takes baselines from %s\n",
                bench_shape_name(o->shape), chol ? "omp,lapacke" : "omp,static");
        return -1;
    }
    return 0;
}

int bench_options_parse(int argc, char **argv, bench_options *o)
{
    set_defaults(o);
    const char *size_text = NULL;
    int have_baseline = 0, have_tile = 0, have_grain = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            bench_options_usage(stdout);
            return 1;
        }
        if (strcmp(a, "--json") == 0) {
            o->json = 1;
            continue;
        }
        if (strcmp(a, "--no-filter") == 0) {
            o->filter = 0;
            continue;
        }
        if (strcmp(a, "--force-omp") == 0) {
            o->force_omp = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "weft-bench: unexpected argument '%s' (see --help)\n", a);
            return -1;
        }
        static const char *const valued[] = {"--shape",  "--grain",    "--size",
                                             "--tile",   "--threads",  "--reps",
                                             "--rounds", "--baseline", "--budget",
                                             "--seed",   "--trace-dir",
                                             "--workload", "--iters", "--trace"};
        int known = 0;
        for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++)
            known |= strcmp(a, valued[k]) == 0;
        if (!known) {
            fprintf(stderr, "weft-bench: unknown option '%s' (see --help)\n", a);
            return -1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "weft-bench: %s needs a value (see --help)\n", a);
            return -1;
        }
        const char *v = argv[++i];
        uint64_t u = 0;
        if (strcmp(a, "--shape") == 0) {
            if (bench_shape_parse(v, &o->shape) != 0)
                return bad(a, v, "expected chain, fanout, tree, wavefront, random or cholesky");
        } else if (strcmp(a, "--grain") == 0) {
            if (bench_grain_parse(v, &o->grain) != 0)
                return bad(a, v, "expected empty, 1us or 10us");
            have_grain = 1;
        } else if (strcmp(a, "--size") == 0) {
            size_text = v;
        } else if (strcmp(a, "--tile") == 0) {
            if (parse_u64(a, v, 1, 1u << 16, &u) != 0)
                return -1;
            o->tile = (size_t)u;
            have_tile = 1;
        } else if (strcmp(a, "--threads") == 0) {
            if (parse_threads(v, o) != 0)
                return -1;
        } else if (strcmp(a, "--reps") == 0) {
            if (parse_u64(a, v, 1, 100000, &u) != 0)
                return -1;
            o->reps = (size_t)u;
        } else if (strcmp(a, "--rounds") == 0) {
            if (parse_u64(a, v, 1, 10000, &u) != 0)
                return -1;
            o->rounds = (size_t)u;
        } else if (strcmp(a, "--baseline") == 0) {
            if (parse_baselines(v, &o->baselines) != 0)
                return -1;
            have_baseline = 1;
        } else if (strcmp(a, "--budget") == 0) {
            char *end = NULL;
            errno = 0;
            double b = strtod(v, &end);
            if (errno != 0 || end == v || *end != '\0' || !isfinite(b) || b < 0)
                return bad(a, v, "expected a number of seconds >= 0");
            o->budget_s = b;
        } else if (strcmp(a, "--trace-dir") == 0) {
            o->trace_dir = v;
        } else if (strcmp(a, "--seed") == 0) {
            if (parse_u64(a, v, 0, UINT64_MAX, &o->seed) != 0)
                return -1;
        } else if (strcmp(a, "--workload") == 0) {
            if (bench_workload_parse(v, &o->workload) != 0)
                return bad(a, v, "expected xor, wide, mlp, rnn or dynamic-overhead");
        } else if (strcmp(a, "--iters") == 0) {
            if (parse_u64(a, v, 1, 1000000, &u) != 0)
                return -1;
            o->iters = (size_t)u;
        } else if (strcmp(a, "--trace") == 0) {
            if (v[0] == '\0')
                return bad(a, v, "expected a file name");
            o->trace_path = v;
        }
    }
    if (o->workload != BENCH_WORKLOAD_NONE)
        return finish_workload(o, size_text, have_grain, have_baseline, have_tile);
    return finish(o, size_text, have_baseline, have_tile);
}

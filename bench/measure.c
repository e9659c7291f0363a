/* bench/measure.c - clocks, samples and the background-load filter (see measure.h). */
#include "bench/measure.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define PROBE_S 0.2
#define PROBE_MAX_FOREIGN_CPUS 0.1
#define CLEAN_ABS_S 0.02
#define CLEAN_REL 0.05

double bench_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void bench_sleep_s(double seconds)
{
    struct timespec ts;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int bench_samples_push(bench_samples *s, double x)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        double *v = realloc(s->v, cap * sizeof *v);
        if (v == NULL) {
            fprintf(stderr, "weft-bench: out of memory for timing samples\n");
            return -1;
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = x;
    return 0;
}

void bench_samples_free(bench_samples *s)
{
    free(s->v);
    memset(s, 0, sizeof *s);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median_sort(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void bench_samples_stats(const bench_samples *s, bench_stats *out)
{
    memset(out, 0, sizeof *out);
    out->count = s->n;
    if (s->n == 0)
        return;
    double *tmp = malloc(s->n * sizeof *tmp);
    if (tmp == NULL) { /* fall back to min/max only; median = min */
        out->min = out->max = s->v[0];
        for (size_t i = 1; i < s->n; i++) {
            out->min = s->v[i] < out->min ? s->v[i] : out->min;
            out->max = s->v[i] > out->max ? s->v[i] : out->max;
        }
        out->median = out->min;
        return;
    }
    memcpy(tmp, s->v, s->n * sizeof *tmp);
    out->median = bench_median_sort(tmp, s->n);
    out->min = tmp[0];
    out->max = tmp[s->n - 1];
    free(tmp);
}

/* Machine busy + steal seconds (all CPUs), this process's CPU seconds, wall seconds. */
typedef struct cpu_sample {
    double machine_s, self_s, wall_s;
} cpu_sample;

static int cpu_sample_take(cpu_sample *out)
{
    FILE *f = fopen("/proc/stat", "r");
    if (f == NULL) {
        fprintf(stderr, "weft-bench: cannot open /proc/stat for the load filter: %s "
                        "(use --no-filter)\n", strerror(errno));
        return -1;
    }
    unsigned long long user, nice, sys, idle, iowait, irq, softirq, steal;
    int got = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &sys,
                     &idle, &iowait, &irq, &softirq, &steal);
    fclose(f);
    if (got != 8) {
        fprintf(stderr, "weft-bench: /proc/stat has no parsable 'cpu' line for the load "
                        "filter (use --no-filter)\n");
        return -1;
    }
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0)
        hz = 100;
    /* guest time is already included in user. */
    out->machine_s = (double)(user + nice + sys + irq + softirq + steal) / (double)hz;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    out->self_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
                  (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
    out->wall_s = bench_now_s();
    return 0;
}

static double foreign_cpu_s(const cpu_sample *a, const cpu_sample *b)
{
    return (b->machine_s - a->machine_s) - (b->self_s - a->self_s);
}

int bench_filter_available(void)
{
    cpu_sample s;
    return cpu_sample_take(&s);
}

/* Waits until a 0.2 s probe shows < 0.1 foreign CPUs and < 0.1 CPUs of this process's
 * own idle threads (the probe sleeps, so any CPU this process uses meanwhile is a previous
 * engine's threads still spin-waiting: OpenBLAS's server threads after a threaded
 * LAPACKE call, libgomp's team), or the budget is spent. */
static int wait_quiet(const bench_filter *filter, bench_filter_state *state)
{
    while (state->spent_s < filter->budget_s) {
        cpu_sample a, b;
        if (cpu_sample_take(&a) != 0)
            return -1;
        bench_sleep_s(PROBE_S);
        if (cpu_sample_take(&b) != 0)
            return -1;
        double wall = b.wall_s - a.wall_s;
        state->spent_s += wall;
        if (foreign_cpu_s(&a, &b) < PROBE_MAX_FOREIGN_CPUS * wall &&
            b.self_s - a.self_s < PROBE_MAX_FOREIGN_CPUS * wall)
            return 0;
    }
    return 0;
}

/* Adapter: a bench_rep_fn seen as a bench_rep2_fn whose second value is unused. */
typedef struct rep_adapter {
    bench_rep_fn fn;
    void *ctx;
} rep_adapter;

static int rep_adapted(void *arg, double *seconds, double *aux)
{
    rep_adapter *a = arg;
    *aux = 0.0;
    return a->fn(a->ctx, seconds);
}

int bench_measure(const bench_filter *filter, bench_filter_state *state, size_t reps,
                  bench_rep_fn fn, void *ctx, bench_samples *out)
{
    rep_adapter a = {fn, ctx};
    return bench_measure2(filter, state, reps, rep_adapted, &a, out, NULL);
}

/* Keeps an accepted repetition: its seconds in out and, if aux_out, its second value. */
static int keep(bench_samples *out, bench_samples *aux_out, double sec, double aux)
{
    if (bench_samples_push(out, sec) != 0)
        return -1;
    return aux_out != NULL ? bench_samples_push(aux_out, aux) : 0;
}

int bench_measure2(const bench_filter *filter, bench_filter_state *state, size_t reps,
                   bench_rep2_fn fn, void *ctx, bench_samples *out, bench_samples *aux_out)
{
    if (!filter->enabled) {
        for (size_t r = 0; r < reps; r++) {
            double sec = 0, aux = 0, t0 = bench_now_s();
            if (fn(ctx, &sec, &aux) != 0 || keep(out, aux_out, sec, aux) != 0)
                return -1;
            state->spent_s += bench_now_s() - t0;
        }
        return 0;
    }
    if (wait_quiet(filter, state) != 0)
        return -1;
    size_t accepted = 0;
    while (accepted < reps) {
        cpu_sample a, b;
        double sec = 0, aux = 0;
        if (cpu_sample_take(&a) != 0)
            return -1;
        if (fn(ctx, &sec, &aux) != 0)
            return -1;
        if (cpu_sample_take(&b) != 0)
            return -1;
        double wall = b.wall_s - a.wall_s;
        state->spent_s += wall;
        double limit = CLEAN_REL * wall > CLEAN_ABS_S ? CLEAN_REL * wall : CLEAN_ABS_S;
        int clean = foreign_cpu_s(&a, &b) <= limit;
        int out_of_budget = state->spent_s >= filter->budget_s;
        if (clean || out_of_budget) {
            if (!clean)
                state->contaminated = 1;
            if (keep(out, aux_out, sec, aux) != 0)
                return -1;
            accepted++;
            continue;
        }
        state->discarded++;
        if (wait_quiet(filter, state) != 0)
            return -1;
    }
    return 0;
}

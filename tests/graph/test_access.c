/* tests/graph/test_access.c - dependency inference from declared data accesses.
 *
 * Hand-made cases (RAW chains, WAR, WAW, concurrent readers, read-write merging, partial
 * overlaps, handles beside regions) and a brute-force reference: 500 random access lists
 * over a 64-byte window of a char array and six handles, where the expected edges are
 * computed per byte with the rule written in include/weft/graph.h, then compared, as
 * sets, with weft_graph_successors after weft_graph_analyze. Half of the random cases
 * also carry explicit edges, which must merge with the inferred ones (kept once).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "tests/util/tu_common.h"
#include "weft.h"

static int nop(void *arg)
{
    (void)arg;
    return 0;
}

static weft_graph *graph_with(size_t n)
{
    weft_graph *g = NULL;
    assert_int_equal(weft_graph_create(&g), WEFT_OK);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(weft_graph_add_task(g, nop, NULL, NULL, NULL), WEFT_OK);
    return g;
}

/* Asserts that the successors of `task` are exactly the listed ids (ascending). On a
 * mismatch the graph is destroyed first, so that a failure leaks nothing. */
static void expect_succ(weft_graph *g, weft_task_id task, size_t n, const weft_task_id *want)
{
    const weft_task_id *s = NULL;
    size_t count = 99;
    weft_status st = weft_graph_successors(g, task, &s, &count);
    int ok = st == WEFT_OK && count == n;
    for (size_t i = 0; ok && i < n; i++)
        ok = s[i] == want[i];
    if (!ok) {
        print_error("task %u: %s, %zu successors:", task, weft_status_name(st), count);
        for (size_t i = 0; st == WEFT_OK && i < count; i++)
            print_error(" %u", s[i]);
        print_error("; expected");
        for (size_t i = 0; i < n; i++)
            print_error(" %u", want[i]);
        print_error("\n");
        weft_graph_destroy(g);
    }
    assert_true(ok);
}

#define SUCC(g, t, ...)                                                                   \
    do {                                                                                  \
        const weft_task_id want_[] = {__VA_ARGS__};                                       \
        expect_succ(g, t, sizeof want_ / sizeof *want_, want_);                           \
    } while (0)
#define NO_SUCC(g, t) expect_succ(g, t, 0, NULL)

static size_t edges_of(weft_graph *g)
{
    weft_graph_stats st;
    assert_int_equal(weft_graph_analyze(g, &st), WEFT_OK);
    return st.edges;
}

static void test_access_raw_chain(void **state)
{
    (void)state;
    double x[4];
    weft_graph *g = graph_with(4);
    assert_int_equal(weft_graph_access(g, 0, WEFT_WRITE, x, sizeof x), WEFT_OK);
    assert_int_equal(weft_graph_access(g, 1, WEFT_READWRITE, x, sizeof x), WEFT_OK);
    assert_int_equal(weft_graph_access(g, 2, WEFT_READWRITE, x, sizeof x), WEFT_OK);
    assert_int_equal(weft_graph_access(g, 3, WEFT_READ, x, sizeof x), WEFT_OK);
    assert_int_equal(edges_of(g), 3);
    SUCC(g, 0, 1);
    SUCC(g, 1, 2);
    SUCC(g, 2, 3);
    NO_SUCC(g, 3);
    weft_graph_destroy(g);
}

static void test_access_concurrent_readers_then_war(void **state)
{
    (void)state;
    int v;
    weft_graph *g = graph_with(5);
    assert_int_equal(weft_graph_access(g, 0, WEFT_WRITE, &v, sizeof v), WEFT_OK);
    for (weft_task_id t = 1; t <= 3; t++)
        assert_int_equal(weft_graph_access(g, t, WEFT_READ, &v, sizeof v), WEFT_OK);
    assert_int_equal(weft_graph_access(g, 4, WEFT_WRITE, &v, sizeof v), WEFT_OK);
    /* readers 1..3 depend on 0 and not on each other; the writer 4 depends on the
     * readers (WAR) and not again on 0 */
    assert_int_equal(edges_of(g), 6);
    SUCC(g, 0, 1, 2, 3);
    SUCC(g, 1, 4);
    SUCC(g, 2, 4);
    SUCC(g, 3, 4);
    size_t level = 0;
    assert_int_equal(weft_graph_task_level(g, 3, &level), WEFT_OK);
    assert_int_equal(level, 1);
    assert_int_equal(weft_graph_task_level(g, 4, &level), WEFT_OK);
    assert_int_equal(level, 2);
    weft_graph_destroy(g);
}

static void test_access_waw_and_reader_without_writer(void **state)
{
    (void)state;
    char buf[16];
    weft_graph *g = graph_with(4);
    assert_int_equal(weft_graph_access(g, 0, WEFT_READ, buf, 16), WEFT_OK); /* no writer */
    assert_int_equal(weft_graph_access(g, 1, WEFT_WRITE, buf + 8, 8), WEFT_OK);
    assert_int_equal(weft_graph_access(g, 2, WEFT_WRITE, buf + 8, 8), WEFT_OK);
    assert_int_equal(weft_graph_access(g, 3, WEFT_WRITE, buf, 4), WEFT_OK);
    assert_int_equal(weft_graph_analyze(g, NULL), WEFT_OK);
    SUCC(g, 0, 1, 3); /* WAR on both halves */
    SUCC(g, 1, 2);    /* WAW */
    NO_SUCC(g, 2);
    assert_int_equal(edges_of(g), 3);
    weft_graph_destroy(g);
}

/* A read-write task after readers: it reads, so it depends on the last writer (RAW), and
 * it writes, so it depends on the readers since that write (WAR). The RAW edge is implied
 * through the readers, but the rule of graph.h includes it, and edges are compared
 * exactly. */
static void test_access_readwrite_after_readers_has_raw_and_war(void **state)
{
    (void)state;
    long x;
    weft_graph *g = graph_with(3);
    assert_int_equal(weft_graph_access(g, 0, WEFT_WRITE, &x, sizeof x), WEFT_OK);
    assert_int_equal(weft_graph_access(g, 1, WEFT_READ, &x, sizeof x), WEFT_OK);
    assert_int_equal(weft_graph_access(g, 2, WEFT_READWRITE, &x, sizeof x), WEFT_OK);
    assert_int_equal(weft_graph_analyze(g, NULL), WEFT_OK);
    SUCC(g, 0, 1, 2);
    SUCC(g, 1, 2);
    assert_int_equal(edges_of(g), 3);
    weft_graph_destroy(g);
}

static void test_access_partial_overlap_shares_common_bytes(void **state)
{
    (void)state;
    char buf[32];
    weft_graph *g = graph_with(4);
    assert_int_equal(weft_graph_access(g, 0, WEFT_WRITE, buf, 10), WEFT_OK);      /* 0..9 */
    assert_int_equal(weft_graph_access(g, 1, WEFT_WRITE, buf + 10, 10), WEFT_OK); /* 10..19 */
    assert_int_equal(weft_graph_access(g, 2, WEFT_READ, buf + 9, 2), WEFT_OK);    /* 9..10 */
    assert_int_equal(weft_graph_access(g, 3, WEFT_READ, buf + 20, 5), WEFT_OK);   /* none */
    assert_int_equal(weft_graph_analyze(g, NULL), WEFT_OK);
    SUCC(g, 0, 2);
    SUCC(g, 1, 2);
    NO_SUCC(g, 2);
    NO_SUCC(g, 3);
    weft_graph_destroy(g);
}

static void test_access_modes_of_one_task_merge(void **state)
{
    (void)state;
    int a, b;
    weft_graph *g = graph_with(3);
    assert_int_equal(weft_graph_access(g, 0, WEFT_READ, &a, sizeof a), WEFT_OK);
    assert_int_equal(weft_graph_access(g, 1, WEFT_READ, &a, sizeof a), WEFT_OK);
    assert_int_equal(weft_graph_access(g, 1, WEFT_WRITE, &a, sizeof a), WEFT_OK); /* = RW */
    assert_int_equal(weft_graph_access(g, 1, WEFT_READ, &b, sizeof b), WEFT_OK);
    assert_int_equal(weft_graph_access(g, 2, WEFT_READ, &a, sizeof a), WEFT_OK);
    /* 1 writes a after 0 read it: WAR; 1 does not depend on itself; 2 reads 1's write */
    assert_int_equal(weft_graph_analyze(g, NULL), WEFT_OK);
    SUCC(g, 0, 1);
    SUCC(g, 1, 2);
    NO_SUCC(g, 2);
    weft_graph_destroy(g);
}

static void test_access_handles_never_alias_memory(void **state)
{
    (void)state;
    char buf[8];
    weft_graph *g = graph_with(5);
    /* a handle numerically equal to the address of buf is still not buf */
    assert_int_equal(weft_graph_access(g, 0, WEFT_WRITE, buf, sizeof buf), WEFT_OK);
    assert_int_equal(weft_graph_access_handle(g, 1, WEFT_WRITE, (uintptr_t)buf), WEFT_OK);
    assert_int_equal(weft_graph_access_handle(g, 2, WEFT_READ, (uintptr_t)buf), WEFT_OK);
    assert_int_equal(weft_graph_access(g, 3, WEFT_READ, buf, 1), WEFT_OK);
    assert_int_equal(weft_graph_access_handle(g, 4, WEFT_READWRITE, 0), WEFT_OK);
    assert_int_equal(weft_graph_access_handle(g, 4, WEFT_READ, (uintptr_t)buf + 1), WEFT_OK);
    assert_int_equal(weft_graph_analyze(g, NULL), WEFT_OK);
    SUCC(g, 0, 3);
    SUCC(g, 1, 2);
    NO_SUCC(g, 2);
    NO_SUCC(g, 3);
    NO_SUCC(g, 4);
    assert_int_equal(edges_of(g), 2);
    weft_graph_destroy(g);
}

static void test_access_explicit_and_inferred_kept_once(void **state)
{
    (void)state;
    int v;
    weft_graph *g = graph_with(3);
    assert_int_equal(weft_graph_access(g, 0, WEFT_WRITE, &v, sizeof v), WEFT_OK);
    assert_int_equal(weft_graph_access(g, 1, WEFT_READ, &v, sizeof v), WEFT_OK);
    assert_int_equal(weft_graph_add_edge(g, 0, 1), WEFT_OK);
    assert_int_equal(weft_graph_add_edge(g, 0, 1), WEFT_OK);
    assert_int_equal(weft_graph_add_edge(g, 0, 2), WEFT_OK);
    assert_int_equal(weft_graph_access(g, 2, WEFT_READ, &v, sizeof v), WEFT_OK);
    assert_int_equal(edges_of(g), 2);
    SUCC(g, 0, 1, 2);
    weft_graph_destroy(g);
}

/* ---- brute-force reference ---------------------------------------------------------- */

enum { MAXT = 30, SPACE = 64, NHANDLES = 6, CELLS = SPACE + NHANDLES };

typedef struct acc {
    int mode;           /* WEFT_READ / WRITE / READWRITE */
    int handle;         /* -1: region [off, off + len) of the window; else handle index */
    unsigned off, len;
} acc;

typedef struct prog {
    size_t n;
    size_t nacc[MAXT];
    acc a[MAXT][4];
    size_t nexp;
    weft_task_id exp_from[17], exp_to[17];
} prog;

static void random_prog(prog *p, tu_rng *r)
{
    memset(p, 0, sizeof *p);
    p->n = 1 + (size_t)tu_rng_below(r, MAXT);
    static const int modes[3] = {WEFT_READ, WEFT_WRITE, WEFT_READWRITE};
    for (size_t t = 0; t < p->n; t++) {
        p->nacc[t] = (size_t)tu_rng_below(r, 5);
        for (size_t k = 0; k < p->nacc[t]; k++) {
            acc *a = &p->a[t][k];
            a->mode = modes[tu_rng_below(r, 3)];
            if (tu_rng_below(r, 4) == 0) {
                a->handle = (int)tu_rng_below(r, NHANDLES);
            } else {
                a->handle = -1;
                a->off = (unsigned)tu_rng_below(r, SPACE);
                a->len = 1 + (unsigned)tu_rng_below(r, SPACE - a->off < 12 ? SPACE - a->off
                                                                           : 12);
            }
        }
    }
    if (p->n > 1 && tu_rng_below(r, 2)) {
        /* forward edges (acyclic), self-edges included on purpose: they are dropped */
        p->nexp = (size_t)tu_rng_below(r, 17);
        for (size_t i = 0; i < p->nexp; i++) {
            p->exp_from[i] = (weft_task_id)tu_rng_below(r, p->n);
            p->exp_to[i] =
                p->exp_from[i] + (weft_task_id)tu_rng_below(r, p->n - p->exp_from[i]);
        }
    }
}

/* The rule of include/weft/graph.h, byte by byte (handles as extra cells). */
static void reference(const prog *p, unsigned char edge[MAXT][MAXT])
{
    memset(edge, 0, MAXT * MAXT);
    int last_writer[CELLS];
    unsigned char readers[CELLS][MAXT];
    for (int c = 0; c < CELLS; c++)
        last_writer[c] = -1;
    memset(readers, 0, sizeof readers);
    for (size_t t = 0; t < p->n; t++) {
        int mode[CELLS] = {0};
        for (size_t k = 0; k < p->nacc[t]; k++) {
            const acc *a = &p->a[t][k];
            if (a->handle >= 0)
                mode[SPACE + a->handle] |= a->mode;
            else
                for (unsigned b = a->off; b < a->off + a->len; b++)
                    mode[b] |= a->mode;
        }
        for (int c = 0; c < CELLS; c++) {
            if (!mode[c])
                continue;
            if ((mode[c] & WEFT_READ) && last_writer[c] >= 0)
                edge[last_writer[c]][t] = 1;
            if (mode[c] & WEFT_WRITE) {
                int any = 0;
                for (size_t u = 0; u < t; u++)
                    if (readers[c][u]) {
                        edge[u][t] = 1;
                        any = 1;
                    }
                if (!any && last_writer[c] >= 0)
                    edge[last_writer[c]][t] = 1;
                memset(readers[c], 0, MAXT);
                last_writer[c] = (int)t;
            } else {
                readers[c][t] = 1;
            }
        }
    }
    for (size_t i = 0; i < p->nexp; i++)
        edge[p->exp_from[i]][p->exp_to[i]] = 1;
    for (size_t t = 0; t < MAXT; t++)
        edge[t][t] = 0;
}

/* Prints a failing case so that it can be turned into a hand-made test. */
static void dump_prog(const prog *p)
{
    static const char *mname[4] = {"?", "R", "W", "RW"};
    for (size_t t = 0; t < p->n; t++) {
        print_error("  task %zu:", t);
        for (size_t k = 0; k < p->nacc[t]; k++) {
            const acc *a = &p->a[t][k];
            if (a->handle >= 0)
                print_error(" %s handle#%d", mname[a->mode], a->handle);
            else
                print_error(" %s [%u,%u)", mname[a->mode], a->off, a->off + a->len);
        }
        print_error("\n");
    }
    for (size_t i = 0; i < p->nexp; i++)
        print_error("  edge %u -> %u\n", p->exp_from[i], p->exp_to[i]);
}

static void test_access_matches_bruteforce_reference(void **state)
{
    (void)state;
    static char arena[SPACE + 64];
    char *window = arena + 32;
    /* Handles: small integers and integers equal to addresses inside the window, which
     * must not alias the window's bytes. */
    uintptr_t handles[NHANDLES] = {0, 1, 5, (uintptr_t)window, (uintptr_t)window + 7,
                                   (uintptr_t)window + SPACE - 1};
    tu_rng r;
    tu_rng_seed(&r, 2024);
    size_t total_edges = 0;
    for (int iter = 0; iter < 500; iter++) {
        prog p;
        random_prog(&p, &r);
        unsigned char want[MAXT][MAXT];
        reference(&p, want);
        weft_graph *g = graph_with(p.n);
        for (size_t t = 0; t < p.n; t++)
            for (size_t k = 0; k < p.nacc[t]; k++) {
                const acc *a = &p.a[t][k];
                weft_status s = a->handle >= 0
                                    ? weft_graph_access_handle(g, (weft_task_id)t, a->mode,
                                                               handles[a->handle])
                                    : weft_graph_access(g, (weft_task_id)t, a->mode,
                                                        window + a->off, a->len);
                assert_int_equal(s, WEFT_OK);
            }
        for (size_t i = 0; i < p.nexp; i++)
            assert_int_equal(weft_graph_add_edge(g, p.exp_from[i], p.exp_to[i]), WEFT_OK);
        weft_graph_stats st;
        assert_int_equal(weft_graph_analyze(g, &st), WEFT_OK);
        size_t nwant = 0;
        for (size_t t = 0; t < p.n; t++) {
            weft_task_id list[MAXT];
            size_t k = 0;
            for (size_t u = 0; u < p.n; u++)
                if (want[t][u])
                    list[k++] = (weft_task_id)u;
            nwant += k;
            const weft_task_id *s = NULL;
            size_t count = 0;
            assert_int_equal(weft_graph_successors(g, (weft_task_id)t, &s, &count), WEFT_OK);
            int same = count == k && (k == 0 || memcmp(s, list, k * sizeof *s) == 0);
            if (!same) {
                print_error("case %d (n=%zu), task %zu: got", iter, p.n, t);
                for (size_t i = 0; i < count; i++)
                    print_error(" %u", s[i]);
                print_error(", expected");
                for (size_t i = 0; i < k; i++)
                    print_error(" %u", list[i]);
                print_error("\n");
                dump_prog(&p);
                weft_graph_destroy(g); /* nothing leaks past the failing assert */
            }
            assert_true(same);
        }
        assert_int_equal(st.edges, nwant);
        total_edges += nwant;
        weft_graph_destroy(g);
    }
    assert_true(total_edges > 1000); /* the generator really makes dependencies */
}

int main(void)
{
    tu_main_init(120);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_access_raw_chain),
        cmocka_unit_test(test_access_concurrent_readers_then_war),
        cmocka_unit_test(test_access_waw_and_reader_without_writer),
        cmocka_unit_test(test_access_readwrite_after_readers_has_raw_and_war),
        cmocka_unit_test(test_access_partial_overlap_shares_common_bytes),
        cmocka_unit_test(test_access_modes_of_one_task_merge),
        cmocka_unit_test(test_access_handles_never_alias_memory),
        cmocka_unit_test(test_access_explicit_and_inferred_kept_once),
        cmocka_unit_test(test_access_matches_bruteforce_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

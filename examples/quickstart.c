/* examples/quickstart.c - the README's task-graph example, checked: two independent
 * tasks, and a third whose dependency on both is inferred from declared accesses. */
#include <stdio.h>

#include <weft.h>

static int scale(void *p) { double *x = p; for (int i = 0; i < 1024; i++) x[i] *= 2; return 0; }
static int sum(void *p)   { double *x = p; x[0] += x[1024]; return 0; }

int main(void) {
    static double a[2048];
    for (int i = 0; i < 2048; i++) a[i] = 1;
    weft_pool *pool;  weft_graph *g;  weft_task_id t1, t2, t3;
    if (weft_pool_create(NULL, &pool) != WEFT_OK) return 1;      /* one thread per core */
    weft_graph_create(&g);
    weft_graph_add_task(g, scale, a, "scale lo", &t1);
    weft_graph_access(g, t1, WEFT_READWRITE, a, 1024 * sizeof(double));
    weft_graph_add_task(g, scale, a + 1024, "scale hi", &t2);    /* independent of t1 */
    weft_graph_access(g, t2, WEFT_READWRITE, a + 1024, 1024 * sizeof(double));
    weft_graph_add_task(g, sum, a, "sum", &t3);                  /* after both: inferred */
    weft_graph_access(g, t3, WEFT_READWRITE, a, 2048 * sizeof(double));
    int rc = weft_graph_run(pool, g) != WEFT_OK;
    if (rc) puts(weft_last_error());
    weft_graph_stats st;
    weft_graph_analyze(g, &st);
    printf("tasks %zu, edges %zu, levels %zu, a[0] = %g (expected 4)\n", st.tasks, st.edges,
           st.levels, a[0]);
    weft_graph_destroy(g);  weft_pool_destroy(pool);
    return rc || a[0] != 4.0 || st.edges != 2;
}

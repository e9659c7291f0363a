/* examples/fit_line.c - the README's "tensor graphs in 20 lines", compiled so that the
 * README stays true: fits y = 3x - 1 with a static graph, SGD updates as plan targets,
 * and one plan run 500 times. (Status checks are omitted to keep it at 20 lines; see
 * examples/xor_static.c for an example that checks every call.) */
#include <stdio.h>
#include <weft.h>

int main(void) {           /* fit y = 3x - 1 by gradient descent (checks omitted) */
    weft_pool *pool;  weft_tgraph *g;  weft_plan *plan;  weft_optim *opt;
    weft_pool_create(NULL, &pool);  weft_tgraph_create(&g);
    int64_t batch[2] = {WEFT_DIM_ANY, 1}, one[2] = {1, 1};
    weft_value x, y, w, b, h, loss, upd[2];
    weft_tgraph_placeholder(g, WEFT_F32, 2, batch, "x", &x);
    weft_tgraph_placeholder(g, WEFT_F32, 2, batch, "y", &y);
    weft_tensor *init;  weft_tensor_create(WEFT_F32, 2, one, &init);
    weft_tgraph_variable(g, init, "w", &w);  weft_tgraph_variable(g, init, "b", &b);
    weft_op_matmul(g, x, w, 0, &h);  weft_op_add(g, h, b, &h);  weft_op_mse(g, h, y, &loss);
    weft_optim_options o = weft_optim_options_default(WEFT_OPTIM_SGD);  o.lr = 0.1;
    weft_optim_create(&o, &opt);
    weft_optim_minimize(opt, g, loss, 2, (weft_value[]){w, b}, upd);  /* autodiff + updates */
    weft_plan_create(g, pool, 1, &loss, 2, upd, NULL, &plan);          /* compile once */
    float xs[4] = {0, 1, 2, 3}, ys[4] = {-1, 2, 5, 8};  int64_t d[2] = {4, 1};
    weft_tensor *xt, *yt;
    weft_tensor_from_data(WEFT_F32, 2, d, xs, WEFT_BORROW, &xt);
    weft_tensor_from_data(WEFT_F32, 2, d, ys, WEFT_BORROW, &yt);
    for (int step = 0; step < 500; step++)                             /* run many times */
        weft_plan_run(plan, 2, (weft_feed[]){{x, xt}, {y, yt}});
    const weft_tensor *l;  weft_plan_fetch(plan, 0, &l);
    printf("loss %g\n", ((const float *)weft_tensor_data_const(l))[0]);
}

/* tools/train_options.c - command-line parsing for weft-train (see train_options.h).
 * The style follows bench/options.c: every value is checked whole, and a bad one is
 * named with the reason. */
#include "tools/train_options.h"

#include "examples/cli_lib.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const optim_names[] = {"sgd", "momentum", "adam"};

const char *train_optim_name(weft_optim_kind kind)
{
    return (unsigned)kind < 3 ? optim_names[kind] : "?";
}

const char *train_mode_name(train_mode mode)
{
    return mode == TRAIN_MODE_DYNAMIC ? "dynamic" : "static";
}

void train_options_usage(FILE *out)
{
    fputs("usage: weft-train [--hidden 256,128] [--epochs 5] [--batch 128]\n"
          "                  [--optim sgd|momentum|adam] [--lr X] [--momentum 0.9]\n"
          "                  [--weight-decay 0] [--threads N] [--seed 1] [--data DIR]\n"
          "                  [--checkpoint FILE [--resume]] [--mode static|dynamic]\n"
          "                  [--json] [--max-batches N] [--quiet]\n"
          "Trains an MLP (relu hidden layers, softmax cross-entropy) on an IDX dataset and\n"
          "reports the test accuracy after every epoch.\n"
          "  --hidden        hidden layer widths, comma-separated (default 256,128)\n"
          "  --epochs        epochs to train (default 5)\n"
          "  --batch         mini-batch size (default 128)\n"
          "  --optim         sgd, momentum (default) or adam\n"
          "  --lr            learning rate (default 0.05; 1e-3 with --optim adam)\n"
          "  --momentum      momentum of --optim momentum (default 0.9)\n"
          "  --weight-decay  L2 weight decay (default 0)\n"
          "  --threads       threads of the pool (default: one per core)\n"
          "  --seed          seed of the initial weights and of the data order (default 1)\n"
          "  --data          directory of train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,\n"
          "                  t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz (the .gz\n"
          "                  suffix is optional; default " TRAIN_DEFAULT_DATA ")\n"
          "  --checkpoint    save parameters and optimizer state to FILE after every epoch\n"
          "  --resume        load FILE first and continue at the next epoch (same settings,\n"
          "                  same numbers as an uninterrupted run)\n"
          "  --mode          static (one compiled plan, default) or dynamic (a graph per batch)\n"
          "  --json          one JSON object per epoch per line on stdout\n"
          "  --max-batches   stop every epoch after N batches (for tests)\n"
          "  --quiet         no banner, progress bar or per-epoch text (--json still prints)\n",
          out);
}

static int bad(const char *opt, const char *value, const char *why)
{
    return cli_bad("weft-train", opt, value, why);
}

static int parse_u64(const char *opt, const char *text, uint64_t lo, uint64_t hi,
                     uint64_t *out)
{
    return cli_parse_u64("weft-train", opt, text, lo, hi, out);
}

static int parse_real(const char *opt, const char *text, double lo, int lo_open, double hi,
                      int hi_open, double *out)
{
    return cli_parse_real("weft-train", opt, text, lo, lo_open, hi, hi_open, out);
}

static int parse_hidden(const char *text, train_options *o)
{
    uint64_t w[TRAIN_MAX_HIDDEN];
    size_t n = 0;
    if (cli_parse_u64_list("weft-train", "--hidden", text, 1, 1u << 16, 0, w, TRAIN_MAX_HIDDEN,
                           &n, "256,128") != 0)
        return -1;
    o->nhidden = n;
    for (size_t i = 0; i < n; i++) o->hidden[i] = (int64_t)w[i];
    return 0;
}

static void set_defaults(train_options *o)
{
    memset(o, 0, sizeof *o);
    o->hidden[0] = 256;
    o->hidden[1] = 128;
    o->nhidden = 2;
    o->epochs = 5;
    o->batch = 128;
    o->optim = WEFT_OPTIM_MOMENTUM;
    o->lr = 0.05;
    o->momentum = 0.9;
    o->seed = 1;
    o->data_dir = TRAIN_DEFAULT_DATA;
    o->mode = TRAIN_MODE_STATIC;
}

/* Sets the option `a` from its value `v`. */
static int parse_valued(const char *a, const char *v, train_options *o, int *have_lr)
{
    uint64_t u = 0;
    if (strcmp(a, "--hidden") == 0)
        return parse_hidden(v, o);
    if (strcmp(a, "--epochs") == 0) {
        if (parse_u64(a, v, 1, 1000000, &u) != 0)
            return -1;
        o->epochs = u;
    } else if (strcmp(a, "--batch") == 0) {
        if (parse_u64(a, v, 1, 1u << 20, &u) != 0)
            return -1;
        o->batch = u;
    } else if (strcmp(a, "--optim") == 0) {
        size_t k = 0;
        while (k < 3 && strcmp(v, optim_names[k]) != 0)
            k++;
        if (k == 3)
            return bad(a, v, "expected sgd, momentum or adam");
        o->optim = (weft_optim_kind)k;
    } else if (strcmp(a, "--lr") == 0) {
        *have_lr = 1;
        return parse_real(a, v, 0, 1, 1e6, 0, &o->lr);
    } else if (strcmp(a, "--momentum") == 0) {
        return parse_real(a, v, 0, 0, 1, 1, &o->momentum);
    } else if (strcmp(a, "--weight-decay") == 0) {
        return parse_real(a, v, 0, 0, 1e6, 0, &o->weight_decay);
    } else if (strcmp(a, "--threads") == 0) {
        if (parse_u64(a, v, 1, WEFT_MAX_THREADS, &u) != 0)
            return -1;
        o->threads = (unsigned)u;
    } else if (strcmp(a, "--seed") == 0) {
        return parse_u64(a, v, 0, UINT64_MAX, &o->seed);
    } else if (strcmp(a, "--data") == 0) {
        if (v[0] == '\0')
            return bad(a, v, "expected a directory");
        o->data_dir = v;
    } else if (strcmp(a, "--checkpoint") == 0) {
        if (v[0] == '\0')
            return bad(a, v, "expected a file name");
        o->checkpoint = v;
    } else if (strcmp(a, "--mode") == 0) {
        if (strcmp(v, "static") == 0)
            o->mode = TRAIN_MODE_STATIC;
        else if (strcmp(v, "dynamic") == 0)
            o->mode = TRAIN_MODE_DYNAMIC;
        else
            return bad(a, v, "expected static or dynamic");
    } else if (strcmp(a, "--max-batches") == 0) {
        if (parse_u64(a, v, 1, UINT64_MAX, &u) != 0)
            return -1;
        o->max_batches = u;
    } else {
        fprintf(stderr, "weft-train: unknown option '%s' (see --help)\n", a);
        return -1;
    }
    return 0;
}

static int is_valued(const char *a)
{
    static const char *const valued[] = {"--hidden",  "--epochs",  "--batch",
                                         "--optim",   "--lr",      "--momentum",
                                         "--weight-decay", "--threads", "--seed",
                                         "--data",    "--checkpoint", "--mode",
                                         "--max-batches"};
    for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++)
        if (strcmp(a, valued[k]) == 0)
            return 1;
    return 0;
}

int train_options_parse(int argc, char **argv, train_options *o)
{
    set_defaults(o);
    int have_lr = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            train_options_usage(stdout);
            return 1;
        }
        if (strcmp(a, "--json") == 0) {
            o->json = 1;
        } else if (strcmp(a, "--resume") == 0) {
            o->resume = 1;
        } else if (strcmp(a, "--quiet") == 0) {
            o->quiet = 1;
        } else if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "weft-train: unexpected argument '%s' (see --help)\n", a);
            return -1;
        } else if (!is_valued(a)) {
            fprintf(stderr, "weft-train: unknown option '%s' (see --help)\n", a);
            return -1;
        } else if (i + 1 >= argc) {
            fprintf(stderr, "weft-train: %s needs a value (see --help)\n", a);
            return -1;
        } else if (parse_valued(a, argv[++i], o, &have_lr) != 0) {
            return -1;
        }
    }
    if (!have_lr && o->optim == WEFT_OPTIM_ADAM)
        o->lr = 1e-3;
    if (o->resume && o->checkpoint == NULL) {
        fprintf(stderr, "weft-train: --resume needs --checkpoint FILE\n");
        return -1;
    }
    return 0;
}

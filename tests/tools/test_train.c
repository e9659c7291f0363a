/* tests/tools/test_train.c - the training tool, run as a program (build/weft-train).
 *
 * The binary is found through WEFT_TEST_BUILD (set by `make test`; "build" otherwise) and
 * run with fork/execv, its stdout and stderr captured in files. The data is a tiny
 * synthetic IDX dataset written here with weft_idx_write into a temporary directory
 * (raw files without the .gz suffix, which the tool accepts): 10 classes of 28x28
 * images, each class a bright block at its own place plus noise, 320 training and 120
 * test items. Runs use --batch 16 and --max-batches 4, so each takes a fraction of a
 * second.
 *
 * What is checked: the JSON lines parse as flat JSON objects and hold the documented keys;
 * the static and dynamic modes compute bit-identical numbers (same loss printed with 17
 * digits, same parameter hash: both record the same ops and use the same update kernel);
 * so do 1, 2 and 5 threads; --checkpoint then --resume after epoch 1 reproduces the
 * uninterrupted run's epoch-2 line and even its checkpoint file byte for byte (momentum
 * and Adam, and across modes); a resume with other settings or another seed is refused;
 * a missing data directory or file gives the package hint; a corrupt or truncated
 * checkpoint is refused and left untouched; bad flags exit with status 2.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/util/tu_common.h"
#include "weft.h"

#define TRAIN_N 320
#define TEST_N 120
#define SIDE 28

static char tmpdir[64];   /* the dataset and the checkpoints */
static char binary[512];  /* path of weft-train */
static char outpath[128], errpath[128];

/* ---- running the tool --------------------------------------------------------------- */

typedef struct run_result {
    int status; /* exit status; -1 if it did not exit normally */
    char *out, *err;
} run_result;

static void run_free(run_result *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

/* Runs weft-train with the arguments of the printf-formatted `fmt`, split at spaces
 * (no argument contains one: every path is under tmpdir). */
static run_result run_train(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static run_result run_train(const char *fmt, ...)
{
    char line[2048], *argv[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    int argc = 0;
    argv[argc++] = binary;
    for (char *tok = strtok(line, " "); tok != NULL && argc < 63; tok = strtok(NULL, " "))
        argv[argc++] = tok;
    argv[argc] = NULL;

    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fo = open(outpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int fe = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fo < 0 || fe < 0 || dup2(fo, STDOUT_FILENO) < 0 || dup2(fe, STDERR_FILENO) < 0)
            _exit(126);
        execv(binary, argv);
        _exit(127);
    }
    int ws = 0;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    run_result r = {.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1};
    r.out = tu_read_file(outpath, NULL);
    r.err = tu_read_file(errpath, NULL);
    assert_non_null(r.out);
    assert_non_null(r.err);
    if (r.status == 127)
        fail_msg("cannot execute %s (run `make all`, or set WEFT_TEST_BUILD)", binary);
    return r;
}

/* A successful run: exit 0, or the test fails showing stderr. */
static run_result run_ok(const char *args)
{
    run_result r = run_train("%s", args);
    if (r.status != 0)
        fail_msg("weft-train %s: exit status %d, stderr:\n%s", args, r.status, r.err);
    return r;
}

/* ---- a flat JSON object parser ------------------------------------------------------ */

#define MAX_MEMBERS 32

typedef struct json_obj {
    size_t n;
    char key[MAX_MEMBERS][32];
    char val[MAX_MEMBERS][64]; /* raw text; strings without their quotes */
    int is_str[MAX_MEMBERS];
} json_obj;

static const char *ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* A JSON string without escapes (the tool writes none) into buf. */
static const char *parse_str(const char *p, char *buf, size_t cap)
{
    if (*p != '"')
        return NULL;
    size_t n = 0;
    for (p++; *p != '"'; p++) {
        if (*p == '\0' || *p == '\\' || (unsigned char)*p < 0x20 || n + 1 >= cap)
            return NULL;
        buf[n++] = *p;
    }
    buf[n] = '\0';
    return p + 1;
}

/* A JSON number (RFC 8259 grammar) into buf. */
static const char *parse_num(const char *p, char *buf, size_t cap)
{
    const char *s = p;
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9')
            p++;
    else
        return NULL;
    if (*p == '.') {
        if (*++p < '0' || *p > '9')
            return NULL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (*p < '0' || *p > '9')
            return NULL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if ((size_t)(p - s) >= cap)
        return NULL;
    memcpy(buf, s, (size_t)(p - s));
    buf[p - s] = '\0';
    return p;
}

/* Parses one line holding one flat object (string, number, true/false/null values).
 * 0, or -1 if the line is not exactly that. */
static int json_parse_line(const char *line, json_obj *o)
{
    memset(o, 0, sizeof *o);
    const char *p = ws(line);
    if (*p++ != '{')
        return -1;
    p = ws(p);
    if (*p == '}')
        return *ws(p + 1) == '\0' ? 0 : -1;
    for (;;) {
        if (o->n == MAX_MEMBERS)
            return -1;
        if ((p = parse_str(ws(p), o->key[o->n], sizeof o->key[0])) == NULL)
            return -1;
        p = ws(p);
        if (*p++ != ':')
            return -1;
        p = ws(p);
        if (*p == '"') {
            o->is_str[o->n] = 1;
            p = parse_str(p, o->val[o->n], sizeof o->val[0]);
        } else if (strncmp(p, "true", 4) == 0 || strncmp(p, "null", 4) == 0) {
            memcpy(o->val[o->n], p, 4);
            p += 4;
        } else if (strncmp(p, "false", 5) == 0) {
            memcpy(o->val[o->n], p, 5);
            p += 5;
        } else {
            p = parse_num(p, o->val[o->n], sizeof o->val[0]);
        }
        if (p == NULL)
            return -1;
        for (size_t i = 0; i < o->n; i++)
            if (strcmp(o->key[i], o->key[o->n]) == 0)
                return -1; /* duplicate key */
        o->n++;
        p = ws(p);
        if (*p == '}')
            return *ws(p + 1) == '\0' ? 0 : -1;
        if (*p++ != ',')
            return -1;
    }
}

static const char *json_get(const json_obj *o, const char *key)
{
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->key[i], key) == 0)
            return o->val[i];
    fail_msg("JSON line has no key \"%s\"", key);
    return NULL;
}

static double json_num(const json_obj *o, const char *key)
{
    return strtod(json_get(o, key), NULL);
}

/* Splits the output into lines and parses each as a JSON object; returns the count. */
static size_t json_lines(const char *text, json_obj *objs, size_t cap)
{
    size_t n = 0;
    const char *p = text;
    while (*p != '\0') {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl); /* every line is terminated */
        char line[2048];
        size_t len = (size_t)(nl - p);
        assert_true(len < sizeof line);
        memcpy(line, p, len);
        line[len] = '\0';
        assert_true(n < cap);
        if (json_parse_line(line, &objs[n]) != 0)
            fail_msg("not a flat JSON object: %s", line);
        n++;
        p = nl + 1;
    }
    return n;
}

/* The members that must agree between two runs computing the same numbers (everything
 * but the timings and the run's own settings). */
static void assert_same_numbers(const json_obj *a, const json_obj *b)
{
    static const char *const keys[] = {"epoch", "step", "batches", "samples", "loss",
                                       "test_correct", "test_accuracy", "params_fnv"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        if (strcmp(json_get(a, keys[k]), json_get(b, keys[k])) != 0)
            fail_msg("\"%s\" differs: %s vs %s", keys[k], json_get(a, keys[k]),
                     json_get(b, keys[k]));
}

/* ---- the dataset --------------------------------------------------------------------- */

static void write_split(const char *images_name, const char *labels_name, size_t n,
                        uint64_t seed)
{
    const int64_t idims[3] = {(int64_t)n, SIDE, SIDE}, ldims[1] = {(int64_t)n};
    weft_tensor *img = NULL, *lab = NULL;
    assert_int_equal(weft_tensor_create(WEFT_F32, 3, idims, &img), WEFT_OK);
    assert_int_equal(weft_tensor_create(WEFT_I32, 1, ldims, &lab), WEFT_OK);
    float *px = weft_tensor_data(img);
    int32_t *y = weft_tensor_data(lab);
    tu_rng rng;
    tu_rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++) {
        int c = (int)(i % 10);
        y[i] = c;
        int r0 = 2 + (c % 5) * 5, c0 = 4 + (c / 5) * 12;
        for (int r = 0; r < SIDE; r++)
            for (int q = 0; q < SIDE; q++) {
                int in = r >= r0 && r < r0 + 4 && q >= c0 && q < c0 + 8;
                /* Integer pixel values 0..255, as in the real files. */
                px[(i * SIDE + (size_t)r) * SIDE + (size_t)q] =
                    (float)((in ? 160 : 0) + (int)tu_rng_below(&rng, 96));
            }
    }
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, images_name);
    assert_int_equal(weft_idx_write(path, img), WEFT_OK);
    snprintf(path, sizeof path, "%s/%s", tmpdir, labels_name);
    assert_int_equal(weft_idx_write(path, lab), WEFT_OK);
    weft_tensor_destroy(img);
    weft_tensor_destroy(lab);
}

static int setup(void **state)
{
    (void)state;
    const char *build = getenv("WEFT_TEST_BUILD");
    snprintf(binary, sizeof binary, "%s/weft-train", build && *build ? build : "build");
    snprintf(tmpdir, sizeof tmpdir, "/tmp/weft-test-train-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(outpath, sizeof outpath, "%s/stdout", tmpdir);
    snprintf(errpath, sizeof errpath, "%s/stderr", tmpdir);
    write_split("train-images-idx3-ubyte", "train-labels-idx1-ubyte", TRAIN_N, 1);
    write_split("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", TEST_N, 2);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The common arguments of a short run. */
static const char *base(void)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "--data %s --batch 16 --max-batches 4 --hidden 32,16 --json",
             tmpdir);
    return buf;
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_train_json_lines(void **state)
{
    (void)state;
    char args[512];
    snprintf(args, sizeof args, "%s --epochs 2 --threads 2", base());
    run_result r = run_ok(args);
    json_obj o[4];
    assert_int_equal(json_lines(r.out, o, 4), 2);
    for (size_t e = 0; e < 2; e++) {
        static const char *const keys[] = {"epoch", "loss", "test_accuracy", "epoch_s",
                                           "samples_per_s", "threads"};
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            (void)json_get(&o[e], keys[k]);
        assert_int_equal((int)json_num(&o[e], "epoch"), (int)e + 1);
        assert_int_equal((int)json_num(&o[e], "threads"), 2);
        assert_int_equal((int)json_num(&o[e], "batches"), 4);
        assert_int_equal((int)json_num(&o[e], "samples"), 64);
        assert_int_equal((int)json_num(&o[e], "step"), 4 * ((int)e + 1));
        assert_int_equal((int)json_num(&o[e], "test_n"), TEST_N);
        double loss = json_num(&o[e], "loss"), acc = json_num(&o[e], "test_accuracy");
        assert_true(isfinite(loss) && loss > 0);
        assert_true(acc >= 0 && acc <= 1);
        assert_true(json_num(&o[e], "epoch_s") > 0 && json_num(&o[e], "samples_per_s") > 0);
        assert_string_equal(json_get(&o[e], "mode"), "static");
        assert_string_equal(json_get(&o[e], "optim"), "momentum");
    }
    /* The block classes are easy: 8 steps already beat chance (10%) by far. */
    assert_true(json_num(&o[1], "test_accuracy") > 0.3);
    assert_true(json_num(&o[1], "loss") < json_num(&o[0], "loss"));
    assert_string_equal(r.err, "");
    run_free(&r);
}

/* Static and dynamic record the same ops and apply the same update kernel: they agree
 * bit for bit (loss to 17 digits, and the parameter hash), for every optimizer. */
static void test_train_static_dynamic_identical(void **state)
{
    (void)state;
    static const char *const optims[] = {"sgd", "momentum", "adam"};
    for (size_t k = 0; k < 3; k++) {
        char args[512];
        json_obj s[4], d[4];
        snprintf(args, sizeof args, "%s --epochs 2 --optim %s --weight-decay 1e-3 --mode static",
                 base(), optims[k]);
        run_result rs = run_ok(args);
        snprintf(args, sizeof args, "%s --epochs 2 --optim %s --weight-decay 1e-3 --mode dynamic",
                 base(), optims[k]);
        run_result rd = run_ok(args);
        assert_int_equal(json_lines(rs.out, s, 4), 2);
        assert_int_equal(json_lines(rd.out, d, 4), 2);
        for (size_t e = 0; e < 2; e++) {
            assert_same_numbers(&s[e], &d[e]);
            assert_string_equal(json_get(&d[e], "mode"), "dynamic");
        }
        run_free(&rs);
        run_free(&rd);
    }
}

/* Results do not depend on the thread count (5 threads: more than the cores). */
static void test_train_threads_identical(void **state)
{
    (void)state;
    static const char *const modes[] = {"static", "dynamic"};
    for (size_t m = 0; m < 2; m++) {
        json_obj ref[4], o[4];
        run_result r1 = {0};
        for (unsigned t = 1; t <= 5; t += 4) {
            char args[512];
            snprintf(args, sizeof args, "%s --epochs 2 --mode %s --threads %u", base(), modes[m], t);
            run_result r = run_ok(args);
            assert_int_equal(json_lines(r.out, t == 1 ? ref : o, 4), 2);
            if (t == 1) {
                r1 = r;
                continue;
            }
            for (size_t e = 0; e < 2; e++)
                assert_same_numbers(&ref[e], &o[e]);
            run_free(&r);
        }
        run_free(&r1);
    }
}

static int files_equal(const char *a, const char *b)
{
    size_t la = 0, lb = 0;
    char *x = tu_read_file(a, &la), *y = tu_read_file(b, &lb);
    int same = x && y && la == lb && memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return same;
}

/* 2 epochs in one run vs 1 epoch, then --resume to 2: the same epoch-2 line and the same
 * final checkpoint file. `resume_mode` may differ from `mode` (checkpoints of both modes
 * hold the same tensors and the same numbers). */
static void resume_case(const char *optim, const char *mode, const char *resume_mode)
{
    char args[768], full[128], part[128];
    snprintf(full, sizeof full, "%s/full.ckpt", tmpdir);
    snprintf(part, sizeof part, "%s/part.ckpt", tmpdir);
    unlink(full);
    unlink(part);
    json_obj a[4], b[4], c[4];
    snprintf(args, sizeof args, "%s --optim %s --mode %s --epochs 2 --checkpoint %s", base(),
             optim, mode, full);
    run_result ra = run_ok(args);
    snprintf(args, sizeof args, "%s --optim %s --mode %s --epochs 1 --checkpoint %s", base(),
             optim, mode, part);
    run_result rb = run_ok(args);
    snprintf(args, sizeof args, "%s --optim %s --mode %s --epochs 2 --checkpoint %s --resume",
             base(), optim, resume_mode, part);
    run_result rc = run_ok(args);
    assert_int_equal(json_lines(ra.out, a, 4), 2);
    assert_int_equal(json_lines(rb.out, b, 4), 1);
    assert_int_equal(json_lines(rc.out, c, 4), 1); /* only epoch 2 is trained */
    assert_same_numbers(&a[0], &b[0]);
    assert_same_numbers(&a[1], &c[0]);
    assert_true(files_equal(full, part));
    run_free(&ra);
    run_free(&rb);
    run_free(&rc);
}

static void test_train_resume_matches_uninterrupted(void **state)
{
    (void)state;
    resume_case("momentum", "static", "static");
    resume_case("adam", "dynamic", "dynamic");
    resume_case("adam", "static", "dynamic");
    resume_case("sgd", "dynamic", "static");
}

/* A checkpoint made with other settings or another seed is refused, and so is a run that
 * already holds every epoch asked for (nothing trained, exit 0). */
static void test_train_resume_refuses_other_settings(void **state)
{
    (void)state;
    char args[768], ck[128];
    snprintf(ck, sizeof ck, "%s/settings.ckpt", tmpdir);
    snprintf(args, sizeof args, "%s --epochs 1 --checkpoint %s", base(), ck);
    run_result r = run_ok(args);
    run_free(&r);
    r = run_train("%s --epochs 2 --checkpoint %s --resume --lr 0.01", base(), ck);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "other settings"));
    run_free(&r);
    r = run_train("%s --epochs 2 --checkpoint %s --resume --seed 7", base(), ck);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "--seed 1"));
    run_free(&r);
    /* Other layer widths: the tensors do not match (weft_checkpoint_load refuses). */
    r = run_train("%s --epochs 2 --checkpoint %s --resume --hidden 32,8", base(), ck);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, ck));
    run_free(&r);
    r = run_train("%s --epochs 1 --checkpoint %s --resume", base(), ck);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err, "nothing to do"));
    run_free(&r);
}

static void test_train_missing_data_hint(void **state)
{
    (void)state;
    const char *hint = "sudo apt-get install dataset-fashion-mnist";
    run_result r = run_train("--data %s/no-such-dir --epochs 1", tmpdir);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, hint));
    assert_non_null(strstr(r.err, "--data"));
    assert_string_equal(r.out, "");
    run_free(&r);
    /* A directory without the files. */
    char empty[128];
    snprintf(empty, sizeof empty, "%s/empty", tmpdir);
    assert_int_equal(mkdir(empty, 0700), 0);
    r = run_train("--data %s --epochs 1", empty);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, hint));
    assert_non_null(strstr(r.err, "train-images-idx3-ubyte"));
    run_free(&r);
    rmdir(empty);
}

/* Flips one byte of a valid checkpoint (and truncates another copy): --resume refuses
 * both with the file's name, and leaves them as they were. */
static void test_train_corrupt_checkpoint_refused(void **state)
{
    (void)state;
    char args[768], ck[128];
    snprintf(ck, sizeof ck, "%s/corrupt.ckpt", tmpdir);
    snprintf(args, sizeof args, "%s --epochs 1 --checkpoint %s", base(), ck);
    run_result r = run_ok(args);
    run_free(&r);
    size_t len = 0;
    char *good = tu_read_file(ck, &len);
    assert_non_null(good);
    assert_true(len > 1000);
    for (int variant = 0; variant < 2; variant++) {
        FILE *f = fopen(ck, "wb");
        assert_non_null(f);
        size_t keep = variant == 0 ? len : len - 37;
        char *bad = malloc(len);
        memcpy(bad, good, len);
        if (variant == 0)
            bad[len / 2] ^= 0x10; /* inside the parameter data */
        assert_int_equal(fwrite(bad, 1, keep, f), keep);
        fclose(f);
        r = run_train("%s --epochs 2 --checkpoint %s --resume", base(), ck);
        assert_int_equal(r.status, 1);
        assert_non_null(strstr(r.err, ck));
        assert_string_equal(r.out, "");
        size_t after = 0;
        char *now = tu_read_file(ck, &after);
        assert_true(now != NULL && after == keep && memcmp(now, bad, keep) == 0);
        free(now);
        free(bad);
        run_free(&r);
    }
    free(good);
    /* A missing checkpoint file is an error too. */
    r = run_train("%s --epochs 2 --checkpoint %s/none.ckpt --resume", base(), tmpdir);
    assert_int_equal(r.status, 1);
    run_free(&r);
}

static void test_train_text_output(void **state)
{
    (void)state;
    run_result r = run_train("--data %s --batch 16 --max-batches 3 --hidden 16 --epochs 2",
                             tmpdir);
    assert_int_equal(r.status, 0);
    /* stdout is a file: a banner and one line per epoch, no progress bar. */
    assert_non_null(strstr(r.out, "MLP 784-16-10"));
    assert_non_null(strstr(r.out, "epoch 1/2  loss "));
    assert_non_null(strstr(r.out, "epoch 2/2  loss "));
    assert_non_null(strstr(r.out, "test accuracy "));
    assert_null(strchr(r.out, '\r'));
    run_free(&r);
    r = run_train("--data %s --batch 16 --max-batches 3 --hidden 16 --epochs 2 --quiet",
                  tmpdir);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "");
    run_free(&r);
}

static void test_train_bad_flags(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "--optim rmsprop",  "--hidden 0",       "--hidden 64,",     "--hidden ,",
        "--batch 0",        "--epochs -1",      "--lr 0",           "--lr abc",
        "--momentum 1",     "--weight-decay -1", "--threads 0",     "--mode eager",
        "--resume",         "--max-batches 0",  "--frobnicate",     "--epochs",
        "stray",            "--seed 1x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        run_result r = run_train("--data %s %s", tmpdir, bad[i]);
        if (r.status != 2)
            fail_msg("'%s': exit status %d, expected 2", bad[i], r.status);
        assert_non_null(strstr(r.err, "weft-train: "));
        assert_string_equal(r.out, "");
        run_free(&r);
    }
    run_result r = run_train("--help");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "usage: weft-train"));
    run_free(&r);
}

int main(void)
{
    tu_main_init(300);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_train_json_lines),
        cmocka_unit_test(test_train_static_dynamic_identical),
        cmocka_unit_test(test_train_threads_identical),
        cmocka_unit_test(test_train_resume_matches_uninterrupted),
        cmocka_unit_test(test_train_resume_refuses_other_settings),
        cmocka_unit_test(test_train_missing_data_hint),
        cmocka_unit_test(test_train_corrupt_checkpoint_refused),
        cmocka_unit_test(test_train_text_output),
        cmocka_unit_test(test_train_bad_flags),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

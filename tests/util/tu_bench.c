/* tests/util/tu_bench.c - see tu_bench.h. */
#include "tests/util/tu_bench.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tests/util/tu_common.h"

int tu_bench_parse(const char *line, bench_options *o)
{
    static char buf[512];
    char *argv[32];
    int argc = 0;
    snprintf(buf, sizeof buf, "%s", line);
    for (char *tok = strtok(buf, " "); tok != NULL && argc < 32; tok = strtok(NULL, " "))
        argv[argc++] = tok;
    return bench_options_parse(argc, argv, o);
}

int tu_bench_run_captured(tu_bench_runner run, const bench_options *o, const char *tag,
                          char **text)
{
    char path[128];
    tu_temp_path(path, sizeof path, tag);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, STDOUT_FILENO);
    close(fd);
    int rc = run(o);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    size_t len = 0;
    *text = tu_read_file(path, &len);
    unlink(path);
    return rc;
}

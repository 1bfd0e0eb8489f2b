/* What the command-line tests share: run a shell command, keep its output. */
#ifndef MLP_TESTS_RUN_H
#define MLP_TESTS_RUN_H
#include <stdio.h>
#include <sys/wait.h>

static char output[1 << 16];

/* runs cmd through the shell with stderr joined to stdout; returns the exit
   status and leaves what it printed in output */
static int run(const char *cmd)
{
    char full[8192];
    size_t n;
    FILE *p;
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    p = popen(full, "r");
    assert_non_null(p);
    n = fread(output, 1, sizeof output - 1, p);
    output[n] = 0;
    return WEXITSTATUS(pclose(p));
}
#endif

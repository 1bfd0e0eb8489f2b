/* What the command-line tests share: run a shell command, keep its output. */
#ifndef MLP_TESTS_RUN_H
#define MLP_TESTS_RUN_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* runs cmd and fails the test unless it exits with code and prints message
   (not every suite that includes this file needs it) */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((unused))
#endif
static void expect(const char *cmd, int code, const char *message)
{
    int got = run(cmd);
    if (got != code || !strstr(output, message))
        print_error("%s\n  exit %d (want %d), output:\n%s\n  want: %s\n", cmd, got, code, output, message);
    assert_int_equal(got, code);
    assert_non_null(strstr(output, message));
}

/* a test directory and everything in it (a cmocka group teardown) */
static int remove_tree(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}
#endif

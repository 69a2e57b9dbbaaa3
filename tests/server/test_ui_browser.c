/* Hooks the web page's real-browser test into the C test runner.
 *
 * tests/run.sh runs every build/tests/test_* binary; this one runs
 * `python3 tests/browser/test_ui.py` (Debian's chromium, headless, driven
 * over the DevTools protocol against a real dsrd), which prints
 * "test_ui_browser: N passed, N failed".  The dsrd under test is the one of
 * this binary's build (<build>/tests/server/test_ui_browser -> <build>/dsrd), and
 * the screenshots go to <build>/tests/ui-browser/.
 *
 * Output passes straight through; the exit status is the script's.  When the
 * interpreter cannot be started at all, the closing line is printed here. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define SUITE "test_ui_browser"

static int fail(const char *what, const char *detail) {
    printf("FAIL %s\n  %s\n%s: 0 passed, 1 failed\n", what, detail, SUITE);
    return 1;
}

int main(int argc, char **argv) {
    (void)argc, (void)argv;
    /* BUILD/dsrd, screenshots in BUILD/tests/ui-browser */
    char path[PATH_MAX], dsrd[PATH_MAX], out[PATH_MAX];
    if (th_build_program("dsrd", path, sizeof path)) return fail("dsrd", "path too long");
    /* absolute, so they survive the script's chdir; realpath also proves dsrd was built */
    if (!realpath(path, dsrd)) return fail("dsrd", strerror(errno));
    if (th_build_program("tests/ui-browser", out, sizeof out)) return fail("output directory", "path too long");
    if (setenv("DSR_TEST_DSRD", dsrd, 1) || setenv("DSR_TEST_OUT", out, 1)) return fail("setenv", strerror(errno));
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return fail("fork", strerror(errno));
    if (pid == 0) {
        execlp("python3", "python3", "tests/browser/test_ui.py", (char *)NULL);
        printf("FAIL python3\n  cannot run python3: %s\n%s: 0 passed, 1 failed\n", strerror(errno), SUITE);
        fflush(stdout);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return fail("waitpid", strerror(errno));
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    char why[64];
    snprintf(why, sizeof why, "python3 killed by signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : -1);
    return fail("python3", why);
}

/* Hooks the Python test suites into the C test runner.
 *
 * tests/run.sh runs every build/tests/test_* binary; this one runs
 * `python3 tests/run_python.py` (the Python client, TRL/OpenRLHF adapters and
 * deployment-file tests), which prints "python: N passed, N failed".  The
 * dsrd under test is the one of this binary's build: <build>/tests/test_python
 * -> <build>/dsrd, so `make test-asan` exercises the sanitized daemon.
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

int main(int argc, char **argv)
{
    (void)argc;
    char dsrd[PATH_MAX];
    char abs_dsrd[PATH_MAX];
    (void)argv;
    if (th_build_program("dsrd", dsrd, sizeof dsrd) != 0) {
        printf("python: binary path too long\npython: 0 passed, 1 failed\n");
        return 1;
    }
    /* Absolute, so it survives the script's chdir; realpath also proves the
     * daemon was built. */
    if (!realpath(dsrd, abs_dsrd)) {
        printf("python: dsrd not found at %s: %s\npython: 0 passed, 1 failed\n",
               dsrd, strerror(errno));
        return 1;
    }
    if (setenv("DSR_TEST_DSRD", abs_dsrd, 1) != 0) {
        printf("python: setenv: %s\npython: 0 passed, 1 failed\n", strerror(errno));
        return 1;
    }
    fflush(stdout);

    pid_t pid = fork();
    if (pid < 0) {
        printf("python: fork: %s\npython: 0 passed, 1 failed\n", strerror(errno));
        return 1;
    }
    if (pid == 0) {
        execlp("python3", "python3", "tests/run_python.py", (char *)NULL);
        printf("python: cannot run python3: %s\npython: 0 passed, 1 failed\n", strerror(errno));
        fflush(stdout);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            printf("python: waitpid: %s\npython: 0 passed, 1 failed\n", strerror(errno));
            return 1;
        }
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    printf("python: interpreter killed by signal %d\npython: 0 passed, 1 failed\n",
           WIFSIGNALED(status) ? WTERMSIG(status) : -1);
    return 1;
}

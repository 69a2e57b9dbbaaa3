/* dsr: command-line client for dsrd.  See `dsr --help` and cli.h. */
#include <stdio.h>

#include "cli.h"

int main(int argc, char **argv) {
    if (dsr_client_global_init() != 0) {
        fprintf(stderr, "dsr: libcurl initialisation failed\n");
        return CLI_EXIT_FAIL;
    }
    int rc = cli_main(argc, argv, stdout, stderr);
    dsr_client_global_cleanup();
    return rc;
}

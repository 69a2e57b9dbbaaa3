/* dsr-train: GRPO / SimPO training with dual self-rewards over dsrd's HTTP API.
 * See `dsr-train --help` and trainer.h. */
#include <stdio.h>

#include "train_config.h"
#include "dsr_client.h"
#include "trainer.h"

int main(int argc, char **argv) {
    struct train_config cfg;
    struct dsr_err err;
    train_config_defaults(&cfg);
    int rc = train_config_parse(&cfg, argc, argv, stdout, &err);
    if (rc == 1) return 0;
    if (rc != 0) {
        fprintf(stderr, "dsr-train: %s\n", err.msg);
        return 2;
    }
    if (cfg.dry_run) {
        if (trainer_dry_run(&cfg, stdout, &err) != 0) {
            fprintf(stderr, "dsr-train: %s\n", err.msg);
            return 1;
        }
        return 0;
    }
    if (dsr_client_global_init() != 0) {
        fprintf(stderr, "dsr-train: libcurl initialisation failed\n");
        return 1;
    }
    json_object_seed(0); /* before any thread touches jansson */
    rc = trainer_run(&cfg, stderr, &err);
    dsr_client_global_cleanup();
    if (rc != 0) {
        fprintf(stderr, "dsr-train: %s\n", err.msg);
        return 1;
    }
    return 0;
}

/* The `dsr` command-line client: argument handling and one function per
 * command, each talking to dsrd through the C client library.
 *
 *   dsr [global options] COMMAND [command options]
 *
 * Exit status: 0 success, 1 the server or transport failed, 2 bad usage. */
#ifndef DSR_CLI_H
#define DSR_CLI_H

#include <stdio.h>

#include "dsr_client.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

struct cli {
    struct dsr_client *client;
    int json;  /* --json: machine-readable output (the server's JSON) */
    FILE *out; /* results */
    FILE *err; /* messages */
};

/* Entry point: parses globals, dispatches, returns the exit status. */
int cli_main(int argc, char **argv, FILE *out, FILE *err);

/* Commands: argv[0] is the command name; return an exit status. */
int cmd_health(struct cli *c, int argc, char **argv);
int cmd_model(struct cli *c, int argc, char **argv);
int cmd_tokenize(struct cli *c, int argc, char **argv);
int cmd_score(struct cli *c, int argc, char **argv);
int cmd_rollout(struct cli *c, int argc, char **argv);
int cmd_update(struct cli *c, int argc, char **argv);
int cmd_checkpoint(struct cli *c, int argc, char **argv);
int cmd_reload(struct cli *c, int argc, char **argv);
int cmd_world(struct cli *c, int argc, char **argv); /* local: the shapes world (world_cmd.c) */
int cmd_merge(struct cli *c, int argc, char **argv); /* local: LoRA adapter + base → full checkpoint (merge_cmd.c) */

/* Shared helpers for the commands. */
int cli_fail_call(struct cli *c, const char *what, const struct dsr_call_err *e); /* prints, returns CLI_EXIT_FAIL */
int cli_usage_error(struct cli *c, const char *cmd, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void cli_print_json(struct cli *c, const json_t *v);
/* Model text (a caption) for a terminal: valid printable UTF-8 as is; control
 * characters (C0, DEL, C1: escape sequences could drive the terminal) and
 * bytes that are not valid UTF-8 as \xNN. */
void cli_print_text(FILE *f, const char *s);

#endif

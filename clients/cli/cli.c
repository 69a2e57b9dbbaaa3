#include "cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/version.h"

static void usage(FILE *f) {
    fputs("usage: dsr [global options] COMMAND [options]\n"
          "\n"
          "Command-line client for dsrd (dual self-rewards for Janus-Pro).\n"
          "\n"
          "commands:\n"
          "  health                         server status and policy_version\n"
          "  model                          model configuration summary\n"
          "  tokenize --text T              token ids of a text\n"
          "  score --image A.png --response TEXT   understanding reward R_U (PNG or JPEG)\n"
          "  score --prompt TEXT --image B.png     generation reward R_G\n"
          "  rollout --image A.png [-n 8]          sample captions, with rewards\n"
          "  rollout --prompt TEXT [-n 4] [--out DIR]  sample images, with rewards\n"
          "                                 (--out writes PNGs and contact-sheet.png)\n"
          "  update --file REQ.json         one optimizer step (admin)\n"
          "  checkpoint --name NAME         write a checkpoint (admin)\n"
          "  reload --path NAME             load a checkpoint (admin)\n"
          "  world sample|render|grade|dataset   the shapes world, locally (dsr world --help)\n"
          "  merge --adapter DIR --out DIR     fold a LoRA adapter into its base: a full checkpoint (dsr merge --help)\n"
          "\n"
          "global options (before or after the command):\n"
          "  --server URL      default $DSR_SERVER or http://127.0.0.1:8080\n"
          "  --api-key KEY     default $DSR_API_KEY\n"
          "  --admin-key KEY   default $DSR_ADMIN_KEY\n"
          "  --timeout S       request timeout in seconds (default 300)\n"
          "  --json            print the server's JSON answer\n"
          "  -h, --help        this text; `dsr COMMAND --help` for a command\n"
          "  --version         the dsr version and source commit\n",
          f);
}

int cli_fail_call(struct cli *c, const char *what, const struct dsr_call_err *e) {
    char buf[700];
    dsr_call_err_format(e, buf, sizeof buf);
    fprintf(c->err, "dsr: %s: %s\n", what, buf);
    return CLI_EXIT_FAIL;
}

int cli_usage_error(struct cli *c, const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(c->err, "dsr %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(c->err, fmt, ap);
    va_end(ap);
    fprintf(c->err, " (see dsr %s --help)\n", cmd);
    return CLI_EXIT_USAGE;
}

void cli_print_json(struct cli *c, const json_t *v) {
    char *s = json_dumps(v, JSON_COMPACT);
    if (s) fprintf(c->out, "%s\n", s);
    free(s);
}

struct command {
    const char *name;
    int (*fn)(struct cli *c, int argc, char **argv);
};

static const struct command COMMANDS[] = {
    {"health", cmd_health},   {"model", cmd_model},   {"tokenize", cmd_tokenize},     {"score", cmd_score},
    {"rollout", cmd_rollout}, {"update", cmd_update}, {"checkpoint", cmd_checkpoint}, {"reload", cmd_reload},
    {"world", cmd_world},     {"merge", cmd_merge},
};

/* Value of a global flag given as "--flag VALUE" or "--flag=VALUE" at argv[*i];
 * NULL when argv[*i] is not that flag. */
static const char *global_value(int argc, char **argv, int *i, const char *flag, int *missing) {
    size_t n = strlen(flag);
    if (strncmp(argv[*i], flag, n) != 0) return NULL;
    if (argv[*i][n] == '=') return argv[*i] + n + 1;
    if (argv[*i][n] != '\0') return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
}

int cli_main(int argc, char **argv, FILE *out, FILE *err) {
    struct dsr_client_opts o = {getenv("DSR_SERVER"), getenv("DSR_API_KEY"), getenv("DSR_ADMIN_KEY"), 0, 0};
    if (!o.base_url || !o.base_url[0]) o.base_url = "http://127.0.0.1:8080";
    struct cli c = {NULL, 0, out, err};
    /* Globals are taken out wherever they are; the rest is the command's argv. */
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    if (!rest) return CLI_EXIT_FAIL;
    int n_rest = 0, help = 0;
    for (int i = 1; i < argc; i++) {
        int missing = 0;
        const char *v;
        double timeout_s;
        char *end;
        if ((v = global_value(argc, argv, &i, "--server", &missing))) o.base_url = v;
        else if ((v = global_value(argc, argv, &i, "--api-key", &missing))) o.api_key = v;
        else if ((v = global_value(argc, argv, &i, "--admin-key", &missing))) o.admin_key = v;
        else if ((v = global_value(argc, argv, &i, "--timeout", &missing))) {
            timeout_s = strtod(v, &end);
            if (*end || end == v || !(timeout_s > 0 && timeout_s < 86400)) {
                fprintf(err, "dsr: --timeout: '%s' is not a number of seconds\n", v);
                free(rest);
                return CLI_EXIT_USAGE;
            }
            o.timeout_ms = (long)(timeout_s * 1000);
        } else if (strcmp(argv[i], "--json") == 0) c.json = 1;
        else if (n_rest == 0 && (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)) help = 1;
        else if (n_rest == 0 && strcmp(argv[i], "--version") == 0) {
            fprintf(out, "dsr %s (commit %s)\n", dsr_version(), dsr_commit());
            free(rest);
            return CLI_EXIT_OK;
        }
        else if (!missing) rest[n_rest++] = argv[i];
        if (missing) {
            fprintf(err, "dsr: %s needs a value\n", argv[i]);
            free(rest);
            return CLI_EXIT_USAGE;
        }
    }
    if (help || n_rest == 0) {
        usage(help ? out : err);
        free(rest);
        return help ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    }
    const struct command *cmd = NULL;
    for (size_t k = 0; k < sizeof COMMANDS / sizeof COMMANDS[0]; k++)
        if (strcmp(rest[0], COMMANDS[k].name) == 0) cmd = &COMMANDS[k];
    if (!cmd) {
        fprintf(err, "dsr: unknown command '%s' (see dsr --help)\n", rest[0]);
        free(rest);
        return CLI_EXIT_USAGE;
    }
    struct dsr_call_err e;
    c.client = dsr_client_new(&o, &e);
    if (!c.client) {
        fprintf(err, "dsr: --server: %s\n", e.msg);
        free(rest);
        return CLI_EXIT_USAGE;
    }
    int rc = cmd->fn(&c, n_rest, rest);
    dsr_client_free(c.client);
    free(rest);
    return rc;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0. */
static int utf8_len(const unsigned char *s) {
    unsigned char c = s[0];
    int n = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if (n == 3 && ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F))) return 0; /* overlong, surrogate */
    if (n == 4 && ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] > 0x8F))) return 0; /* overlong, > U+10FFFF */
    return n;
}

void cli_print_text(FILE *f, const char *text) {
    const unsigned char *s = (const unsigned char *)text;
    while (*s) {
        int n = utf8_len(s);
        int control = n == 1 ? (*s < 0x20 || *s == 0x7F) : n == 2 && s[0] == 0xC2 && s[1] < 0xA0;
        if (n == 0 || control) {
            for (int i = 0; i < (n ? n : 1); i++) fprintf(f, "\\x%02x", s[i]);
            s += n ? n : 1;
        } else {
            fwrite(s, 1, (size_t)n, f);
            s += n;
        }
    }
}

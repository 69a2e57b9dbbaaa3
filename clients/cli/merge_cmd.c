/* dsr merge: folds a PEFT LoRA adapter (a LoRA run's /checkpoint) into its
 * base model and writes an ordinary full HF checkpoint, loadable by dsrd
 * --model or transformers.  Local: no server involved. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "io/safetensors.h"
#include "janus/runtime.h"
#include "model/default_model.h"
#include "train/adapter.h"
#include "train/checkpoint.h"

static const char MERGE_HELP[] =
    "usage: dsr merge --adapter DIR --out DIR [--model BASE] [--weights-dtype auto|bf16|f32]\n"
    "\n"
    "Folds a LoRA adapter directory (adapter_config.json + adapter_model.safetensors, as a\n"
    "dsrd --lora-rank run's /checkpoint writes it, or PEFT saves it) into its base model:\n"
    "W += (lora_alpha / r) * B * A for every adapted projection, and writes a full\n"
    "checkpoint (config.json, model.safetensors, the base's tokenizer and configs) to --out,\n"
    "which must not exist.\n"
    "\n"
    "  --model BASE        the base: a checkpoint directory or builtin:shapes (default: the\n"
    "                      adapter's base_model_name_or_path)\n"
    "  --weights-dtype D   how the base is held and the merged weights written: bf16 rounds\n"
    "                      the merged matrices to BF16; auto (default) keeps a BF16\n"
    "                      checkpoint of >= 1 GiB in BF16, otherwise float32\n";

enum { M_HELP = 1, M_ADAPTER, M_OUT, M_MODEL, M_DTYPE };

/* The policy_version an adapter was written at (0 when absent). */
static long adapter_version(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/" ADAPTER_WEIGHTS_FILE, dir);
    struct st_file *f = NULL;
    struct dsr_err e;
    if (st_open(path, &f, &e)) return 0;
    const char *v = st_meta_get(f, "policy_version");
    long version = v ? strtol(v, NULL, 10) : 0;
    st_close(f);
    return version > 0 ? version : 0;
}

int cmd_merge(struct cli *c, int argc, char **argv) {
    static const struct option OPTS[] = {
        {"help", no_argument, 0, M_HELP},          {"adapter", required_argument, 0, M_ADAPTER},
        {"out", required_argument, 0, M_OUT},      {"model", required_argument, 0, M_MODEL},
        {"weights-dtype", required_argument, 0, M_DTYPE}, {0, 0, 0, 0},
    };
    const char *adapter = NULL, *out = NULL, *model = NULL;
    enum janus_weights weights = JANUS_WEIGHTS_AUTO;
    optind = 0;
    opterr = 0;
    for (;;) {
        int opt = getopt_long(argc, argv, "h", OPTS, NULL);
        if (opt == -1) break;
        switch (opt) {
        case M_HELP:
        case 'h': fputs(MERGE_HELP, c->out); return CLI_EXIT_OK;
        case M_ADAPTER: adapter = optarg; break;
        case M_OUT: out = optarg; break;
        case M_MODEL: model = optarg; break;
        case M_DTYPE:
            if (!strcmp(optarg, "auto")) weights = JANUS_WEIGHTS_AUTO;
            else if (!strcmp(optarg, "bf16")) weights = JANUS_WEIGHTS_BF16;
            else if (!strcmp(optarg, "f32")) weights = JANUS_WEIGHTS_F32;
            else return cli_usage_error(c, "merge", "--weights-dtype must be auto, bf16 or f32");
            break;
        default: return cli_usage_error(c, "merge", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error(c, "merge", "unexpected argument '%s'", argv[optind]);
    if (!adapter || !out) return cli_usage_error(c, "merge", "--adapter and --out are required");
    struct dsr_err e = {{0}};
    struct lora_config lora;
    char base[1024];
    if (adapter_config_read(adapter, &lora, base, sizeof base, &e)) {
        fprintf(c->err, "dsr merge: %s\n", e.msg);
        return CLI_EXIT_FAIL;
    }
    if (!model) model = base;
    struct stat sb;
    if (stat(out, &sb) == 0) {
        fprintf(c->err, "dsr merge: %s already exists; choose a new --out\n", out);
        return CLI_EXIT_FAIL;
    }
    struct janus_model m;
    struct checkpoint_extra extra[3];
    size_t n_extra = 0;
    const char *source_dir = NULL;
    int rc;
    if (!strcmp(model, MODEL_BUILTIN_SHAPES)) {
        struct default_model_blob blob;
        default_model_blob(&blob);
        rc = janus_model_load_memory(&blob.checkpoint, weights, NULL, &m, &e);
        extra[n_extra++] = (struct checkpoint_extra){"tokenizer.json", blob.tokenizer_json, blob.tokenizer_len};
        extra[n_extra++] = (struct checkpoint_extra){"generation_config.json", blob.generation_json, blob.generation_len};
        extra[n_extra++] = (struct checkpoint_extra){"preprocessor_config.json", blob.checkpoint.preprocessor_json,
                                                     blob.checkpoint.preprocessor_len};
    } else if (model[0] && stat(model, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        rc = janus_model_load_dir(model, weights, NULL, &m, &e);
        source_dir = model;
    } else {
        fprintf(c->err, "dsr merge: the base \"%s\" is neither a checkpoint directory nor %s; pass --model\n", model,
                MODEL_BUILTIN_SHAPES);
        return CLI_EXIT_FAIL;
    }
    if (rc) {
        fprintf(c->err, "dsr merge: base %s: %s\n", model, e.msg);
        return CLI_EXIT_FAIL;
    }
    rc = adapter_merge(&m, adapter, &e) ||
         checkpoint_write(&m, NULL, out, adapter_version(adapter), source_dir, NULL, extra, n_extra, &e);
    janus_model_free(&m);
    if (rc) {
        fprintf(c->err, "dsr merge: %s\n", e.msg);
        return CLI_EXIT_FAIL;
    }
    char targets[256];
    lora_format_targets(lora.targets, ",", targets, sizeof targets);
    fprintf(c->out, "merged %s (r=%d, alpha=%g, %s) into %s: wrote %s\n", adapter, lora.rank, (double)lora.alpha,
            targets, model, out);
    return CLI_EXIT_OK;
}

/* config.json parsing: the janus-tiny fixture's hyper-parameters and the
 * rejection of inconsistent or malformed configs. */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "io/model_config.h"

static void test_tiny_config(struct th *t) {
    struct janus_config c;
    struct dsr_err err;
    int rc = janus_config_load("tests/fixtures/janus-tiny/config.json", &c, &err);
    if (!TH_CHECK(t, rc == 0, "load failed: %s", err.msg)) return;
    TH_CHECK(t, c.text.vocab_size == 320 && c.text.hidden_size == 64 && c.text.n_layers == 2, "text sizes");
    TH_CHECK(t, c.text.n_heads == 4 && c.text.n_kv_heads == 2 && c.text.head_dim == 16, "heads");
    TH_CHECK(t, c.text.rope_theta == 10000.0f && c.text.rms_norm_eps == 1e-6f, "rope/eps");
    TH_CHECK(t, c.text.bos_token_id == 256 && c.text.eos_token_id == 257 && c.text.pad_token_id == 258, "ids");
    TH_CHECK(t, !c.tie_word_embeddings, "untied");
    TH_CHECK(t, c.image_token_id == 261, "image_token_id");
    TH_CHECK(t, c.vision.hidden_size == 32 && c.vision.intermediate_size == 128 && c.vision.num_image_tokens == 64,
             "vision");
    TH_CHECK(t, c.vision.depth == 2 && c.vision.patch_size == 4 && c.vision.image_size == 32, "vision geometry");
    TH_CHECK(t, c.vq.num_embeddings == 96 && c.vq.embed_dim == 8 && c.vq.n_ch_mult == 3 && c.vq.ch_mult[2] == 2,
             "vq");
    TH_CHECK(t, c.vq.num_patches == 8 && c.vq.latent_channels == 32 && c.vq.num_hidden_layers == 2, "vq 2");
}

static void test_rejects_bad_configs(struct th *t) {
    const char *bad[] = {
        "not json",
        "[1,2]",
        "{\"model_type\": \"llama\"}",
        "{\"text_config\": {\"num_attention_heads\": 6, \"num_key_value_heads\": 4}}",
        "{\"text_config\": {\"hidden_size\": \"big\"}}",
        "{\"text_config\": {\"vocab_size\": -3}}",
        "{\"vision_config\": {\"image_size\": 30, \"patch_size\": 4}}",
        "{\"text_config\": {\"rope_scaling\": {\"rope_type\": \"yarn\"}}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct janus_config c;
        struct dsr_err err = {{0}};
        int rc = janus_config_parse(bad[i], strlen(bad[i]), &c, &err);
        TH_CHECK(t, rc != 0 && err.msg[0] != '\0', "config %zu accepted: %s", i, bad[i]);
    }
}

/* Numbers that do not fit the type they are stored in are rejected by name
 * (found by fuzz_config: mlp_ratio 4.4e64 made hidden_size · mlp_ratio an
 * infinity cast to int, undefined behaviour). */
static void test_rejects_out_of_range_numbers(struct th *t) {
    const struct {
        const char *json, *key;
    } bad[] = {
        {"{\"vision_config\": {\"mlp_ratio\": 4.4e64}}", "mlp_ratio"},
        {"{\"vision_config\": {\"mlp_ratio\": 1e30}}", "mlp_ratio"},
        {"{\"vision_config\": {\"mlp_ratio\": -1}}", "mlp_ratio"},
        {"{\"vision_config\": {\"layer_norm_eps\": 1e300}}", "layer_norm_eps"},
        {"{\"text_config\": {\"rms_norm_eps\": -1e300}}", "rms_norm_eps"},
        /* fuzz_config: image_size 1e6 made (image_size / patch_size)^2 overflow an int */
        {"{\"vision_config\": {\"image_size\": 1e6}}", "vision_config.image_size"},
        {"{\"vq_config\": {\"num_patches\": 100000}}", "vq_config.num_patches"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct janus_config c;
        struct dsr_err err = {{0}};
        int rc = janus_config_parse(bad[i].json, strlen(bad[i].json), &c, &err);
        TH_CHECK(t, rc != 0 && strstr(err.msg, bad[i].key), "%s: %s", bad[i].json, rc ? err.msg : "accepted");
    }
}

int main(void) {
    struct th t = {0};
    th_run(&t, "tiny_config", test_tiny_config);
    th_run(&t, "rejects_bad_configs", test_rejects_bad_configs);
    th_run(&t, "rejects_out_of_range_numbers", test_rejects_out_of_range_numbers);
    return th_finish(&t, "test_config");
}

/* Packed training forward/backward (see train_graph.h).
 *
 * Forward:  embed rows → resid[0]; resid[l+1] = layer_l(resid[l]);
 *           target rows of resid[L] → final RMSNorm → head → log-probs.
 * Backward: head (logits recomputed chunk by chunk) → final norm → for each
 *           layer from the top: take its kept internals, or recompute them
 *           from resid[l] (resid[l+1] is free by then and takes the recomputed
 *           output), then backpropagate → scatter the input-row gradients into
 *           embed_tokens, the understanding aligner and the generation
 *           aligner/embeddings. */
#include "train/train_graph.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "nn/mlp_chain.h"
#include "nn/ops.h"
#include "train/layer_train.h"

/* Logits floats per head chunk: bounds the [rows, vocab] buffer (16 MiB). */
#define HEAD_CHUNK_FLOATS (1u << 22)
/* Longest sample accepted, in rows (bounds the n² attention scratch). */
#define TG_MAX_SAMPLE_ROWS 65536

/* The pass's big arrays (residual streams, kept internals: hundreds of MB,
 * freshly mapped each pass) on 2 MiB pages where the kernel offers them:
 * first-touch faults on 4 KiB pages otherwise cost a visible part of the
 * forward.  free() releases them like any malloc block. */
#define BIG_ALIGN ((size_t)2 << 20)
static float *alloc_big(size_t floats) {
    size_t bytes = (floats * sizeof(float) + BIG_ALIGN - 1) / BIG_ALIGN * BIG_ALIGN;
    float *p = aligned_alloc(BIG_ALIGN, bytes);
#ifdef MADV_HUGEPAGE
    if (p) madvise(p, bytes, MADV_HUGEPAGE); /* advice only: failure leaves 4 KiB pages */
#endif
    return p;
}

static int sample_rows(const struct train_sample *s) { return s->n_context + s->n_completion - 1; }

int tg_check_sample(const struct janus_model *m, const struct train_sample *s, struct dsr_err *err) {
    const struct janus_config *c = &m->cfg;
    if (s->kind != TF_TARGET_TOKENS && s->kind != TF_TARGET_CODES) return dsr_errf(err, "kind: unknown target kind");
    if (s->n_context < 1 || !s->context) return dsr_errf(err, "context: empty");
    if (s->n_completion < 1 || !s->completion) return dsr_errf(err, "completion: empty");
    if (s->n_context > TG_MAX_SAMPLE_ROWS || s->n_completion > TG_MAX_SAMPLE_ROWS - s->n_context)
        return dsr_errf(err, "sample of %d + %d tokens exceeds %d", s->n_context, s->n_completion, TG_MAX_SAMPLE_ROWS);
    int placeholders = 0;
    for (int i = 0; i < s->n_context; i++) {
        int id = s->context[i];
        if (id < 0 || id >= c->text.vocab_size)
            return dsr_errf(err, "context: token %d at position %d is outside [0, %d)", id, i, c->text.vocab_size);
        placeholders += id == c->image_token_id;
    }
    if (placeholders && (!s->vision_features || s->n_feature_rows != placeholders))
        return dsr_errf(err, "vision_features: context has %d image placeholders but %d feature rows are given",
                        placeholders, s->vision_features ? s->n_feature_rows : 0);
    if (!placeholders && s->n_feature_rows > 0)
        return dsr_errf(err, "vision_features: %d feature rows but the context has no image placeholder",
                        s->n_feature_rows);
    int V = s->kind == TF_TARGET_CODES ? c->vq.num_embeddings : c->text.vocab_size;
    for (int i = 0; i < s->n_completion; i++)
        if (s->completion[i] < 0 || s->completion[i] >= V)
            return dsr_errf(err, "completion: %s %d at position %d is outside [0, %d)",
                            s->kind == TF_TARGET_CODES ? "code" : "token", s->completion[i], i, V);
    return 0;
}

/* ---- the three small MLPs as chains ------------------------------------- */

/* The gradient slot of a trainable tensor; NULL for a frozen one (LoRA's
 * base, the tower), when no gradient is wanted, or for a BF16-held weight. */
static float *grad_of(const struct janus_model *m, float *grad, const float *w) {
    const float *lo = m->params.trainable, *hi = lo + m->params.n_trainable;
    return w && grad && w >= lo && w < hi ? grad + (w - lo) : NULL;
}

static int und_aligner_chain(const struct janus_model *m, float *grad, struct mlp_chain *ch, struct dsr_err *err) {
    const struct vision_model *vm = m->vision;
    memset(ch, 0, sizeof *ch);
    ch->n_layers = vm->cfg.depth;
    if (ch->n_layers < 1 || ch->n_layers > MLP_CHAIN_MAX)
        return dsr_errf(err, "understanding aligner depth %d unsupported (1..%d)", ch->n_layers, MLP_CHAIN_MAX);
    ch->in_dim = vm->cfg.hidden_size;
    for (int i = 0; i < ch->n_layers; i++) {
        ch->dims[i] = vm->lm_hidden;
        ch->w[i] = (struct weight){.f32 = i ? vm->aligner_hidden_w[i - 1] : vm->aligner_fc1_w};
        ch->b[i] = i ? vm->aligner_hidden_b[i - 1] : vm->aligner_fc1_b;
        ch->gw[i] = grad_of(m, grad, ch->w[i].f32);
        ch->gb[i] = grad_of(m, grad, ch->b[i]);
        ch->lora[i] = vm->aligner_lora[i];
        ch->ga[i] = grad_of(m, grad, ch->lora[i].a);
        ch->gbl[i] = grad_of(m, grad, ch->lora[i].b);
    }
    return 0;
}

static int gen_aligner_chain(const struct janus_model *m, float *grad, struct mlp_chain *ch, struct dsr_err *err) {
    const struct gen_path *gp = &m->gen;
    memset(ch, 0, sizeof *ch);
    ch->n_layers = gp->n_hidden_layers + 1;
    if (ch->n_layers > MLP_CHAIN_MAX)
        return dsr_errf(err, "generation aligner depth %d unsupported (max %d)", ch->n_layers, MLP_CHAIN_MAX);
    ch->in_dim = gp->embed_dim;
    for (int i = 0; i < ch->n_layers; i++) {
        ch->dims[i] = gp->width;
        ch->w[i] = (struct weight){.f32 = i ? gp->hidden_w[i - 1] : gp->fc1_w};
        ch->b[i] = i ? gp->hidden_b[i - 1] : gp->fc1_b;
        ch->gw[i] = grad_of(m, grad, ch->w[i].f32);
        ch->gb[i] = grad_of(m, grad, ch->b[i]);
        ch->lora[i] = gp->aligner_lora[i];
        ch->ga[i] = grad_of(m, grad, ch->lora[i].a);
        ch->gbl[i] = grad_of(m, grad, ch->lora[i].b);
    }
    return 0;
}

static void gen_head_chain(const struct janus_model *m, float *grad, struct mlp_chain *ch) {
    const struct gen_path *gp = &m->gen;
    memset(ch, 0, sizeof *ch);
    ch->n_layers = 2;
    ch->in_dim = gp->lm_hidden;
    ch->dims[0] = gp->width;
    ch->dims[1] = gp->codebook_size;
    ch->w[0] = gp->proj_w;
    ch->b[0] = gp->proj_b;
    ch->w[1] = gp->head_w;
    ch->b[1] = gp->head_b;
    ch->lora[0] = gp->proj_lora;
    ch->lora[1] = gp->head_lora;
    for (int i = 0; i < 2; i++) {
        ch->gw[i] = grad_of(m, grad, ch->w[i].f32);
        ch->gb[i] = grad_of(m, grad, ch->b[i]);
        ch->ga[i] = grad_of(m, grad, ch->lora[i].a);
        ch->gbl[i] = grad_of(m, grad, ch->lora[i].b);
    }
}

/* Runs a chain over n rows of x into out[n, last dim] (forward only), or,
 * when dy is given, recomputes and backpropagates (dx may be NULL). */
static int chain_run(const struct mlp_chain *ch, const float *x, int n, float *out, const float *dy, float *dx,
                     struct dsr_err *err) {
    if (n == 0) return 0;
    size_t md = (size_t)mlp_chain_max_dim(ch);
    size_t n_act = mlp_chain_act_floats(ch, (size_t)n);
    float *buf = malloc((n_act + 3 * (size_t)n * md) * sizeof(float));
    if (!buf) return dsr_errf(err, "out of memory for a %d-row MLP", n);
    float *acts = buf, *w1 = acts + n_act, *w2 = w1 + (size_t)n * md;
    int rc = mlp_chain_forward(ch, x, n, acts, w1, err);
    if (rc == 0 && out)
        memcpy(out, mlp_chain_output(ch, acts, (size_t)n), (size_t)n * ch->dims[ch->n_layers - 1] * sizeof(float));
    if (rc == 0 && dy) rc = mlp_chain_backward(ch, x, n, acts, dy, dx, w1, w2, err);
    free(buf);
    return rc;
}

/* ---- input rows --------------------------------------------------------- */

/* Counts of rows embedded by each path. */
static void count_inputs(const struct train_graph *g, int *n_img, int *n_code) {
    *n_img = *n_code = 0;
    for (int s = 0; s < g->n_samples; s++) {
        const struct train_sample *sm = &g->samples[s];
        if (sm->vision_features) *n_img += sm->n_feature_rows;
        if (sm->kind == TF_TARGET_CODES) *n_code += sm->n_completion - 1;
    }
}

/* Gathers the vision features [n_img, Dv] and generation input codes. */
static int gather_inputs(const struct train_graph *g, float **feat, int32_t **codes, int n_img, int n_code,
                         struct dsr_err *err) {
    size_t Dv = (size_t)g->m->cfg.vision.hidden_size;
    *feat = malloc((size_t)n_img * Dv * sizeof(float) + 1);
    *codes = malloc((size_t)n_code * sizeof(int32_t) + 1);
    if (!*feat || !*codes) return dsr_errf(err, "out of memory gathering inputs");
    size_t fi = 0, ci = 0;
    for (int s = 0; s < g->n_samples; s++) {
        const struct train_sample *sm = &g->samples[s];
        if (sm->vision_features) {
            memcpy(*feat + fi * Dv, sm->vision_features, (size_t)sm->n_feature_rows * Dv * sizeof(float));
            fi += (size_t)sm->n_feature_rows;
        }
        if (sm->kind == TF_TARGET_CODES) {
            memcpy(*codes + ci, sm->completion, (size_t)(sm->n_completion - 1) * sizeof(int32_t));
            ci += (size_t)(sm->n_completion - 1);
        }
    }
    return 0;
}

/* Walks every input row in order; for each calls the visitor with the row
 * index and where it comes from: an image row (index into the gathered
 * features), a generation code row (index into the gathered codes), or a
 * token id. */
enum row_source { ROW_TOKEN, ROW_IMAGE, ROW_CODE };
struct row_ref {
    enum row_source src;
    int index; /* token id, image row or code row */
};

static void row_sources(const struct train_graph *g, struct row_ref *refs) {
    int img = 0, code = 0, row = 0;
    for (int s = 0; s < g->n_samples; s++) {
        const struct train_sample *sm = &g->samples[s];
        for (int i = 0; i < sm->n_context; i++, row++) {
            int id = sm->context[i];
            if (id == g->m->cfg.image_token_id && sm->vision_features) refs[row] = (struct row_ref){ROW_IMAGE, img++};
            else refs[row] = (struct row_ref){ROW_TOKEN, id};
        }
        for (int i = 0; i < sm->n_completion - 1; i++, row++) {
            if (sm->kind == TF_TARGET_CODES) refs[row] = (struct row_ref){ROW_CODE, code++};
            else refs[row] = (struct row_ref){ROW_TOKEN, sm->completion[i]};
        }
    }
}

/* Either embeds the input rows into rows[T, C] (d_rows NULL), or scatters
 * d_rows[T, C] into the gradients of every embedding path. */
static int embed_pass(struct train_graph *g, float *rows, const float *d_rows, float *grad, struct dsr_err *err) {
    const struct janus_model *m = g->m;
    size_t C = (size_t)m->cfg.text.hidden_size, E = (size_t)m->gen.embed_dim;
    int n_img, n_code;
    count_inputs(g, &n_img, &n_code);
    float *feat = NULL, *img_rows = NULL, *code_emb = NULL, *code_rows = NULL, *d_emb = NULL;
    int32_t *codes = NULL;
    struct row_ref *refs = malloc((size_t)g->T * sizeof *refs);
    struct mlp_chain und, gen;
    int rc = refs ? 0 : dsr_errf(err, "out of memory");
    if (rc == 0) rc = gather_inputs(g, &feat, &codes, n_img, n_code, err);
    if (rc == 0 && n_img) rc = und_aligner_chain(m, grad, &und, err);
    if (rc == 0 && n_code) rc = gen_aligner_chain(m, grad, &gen, err);
    if (rc == 0) {
        img_rows = malloc((size_t)n_img * C * sizeof(float) + 1);
        code_emb = malloc((size_t)n_code * E * sizeof(float) + 1);
        code_rows = malloc((size_t)n_code * C * sizeof(float) + 1);
        d_emb = malloc((size_t)n_code * E * sizeof(float) + 1);
        if (!img_rows || !code_emb || !code_rows || !d_emb) rc = dsr_errf(err, "out of memory embedding inputs");
    }
    if (rc == 0) {
        row_sources(g, refs);
        for (int i = 0; i < n_code; i++) weight_copy_row(code_emb + (size_t)i * E, m->gen.embeddings, (size_t)codes[i], E);
    }
    if (rc == 0 && !d_rows) {
        rc = chain_run(&und, feat, n_img, img_rows, NULL, NULL, err);
        if (rc == 0) rc = chain_run(&gen, code_emb, n_code, code_rows, NULL, NULL, err);
        for (int r = 0; r < g->T && rc == 0; r++) {
            float *dst = rows + (size_t)r * C;
            if (refs[r].src == ROW_TOKEN) weight_copy_row(dst, m->lm.embed_tokens, (size_t)refs[r].index, C);
            else memcpy(dst, (refs[r].src == ROW_IMAGE ? img_rows : code_rows) + (size_t)refs[r].index * C, C * sizeof(float));
        }
    } else if (rc == 0 && (m->lora.rank == 0 || (m->lora.targets & LORA_ALIGNER_TARGETS))) {
        /* (with LoRA only aligner adapters below the decoder train) */
        float *g_embed = grad_of(m, grad, m->lm.embed_tokens.f32);
        for (int r = 0; r < g->T; r++) {
            const float *d = d_rows + (size_t)r * C;
            size_t at = (size_t)refs[r].index * C;
            if (refs[r].src != ROW_TOKEN)
                memcpy((refs[r].src == ROW_IMAGE ? img_rows : code_rows) + at, d, C * sizeof(float));
            else if (g_embed) /* NULL: frozen under LoRA */
                for (size_t j = 0; j < C; j++) g_embed[at + j] += d[j];
        }
        /* image rows: the features are constants, so no input gradient */
        float *g_codebook = grad_of(m, grad, m->gen.embeddings.f32);
        rc = chain_run(&und, feat, n_img, NULL, img_rows, NULL, err);
        if (rc == 0) rc = chain_run(&gen, code_emb, n_code, NULL, code_rows, g_codebook ? d_emb : NULL, err);
        for (int i = 0; i < n_code && rc == 0 && g_codebook; i++)
            for (size_t j = 0; j < E; j++) g_codebook[(size_t)codes[i] * E + j] += d_emb[(size_t)i * E + j];
    }
    free(refs);
    free(feat);
    free(codes);
    free(img_rows);
    free(code_emb);
    free(code_rows);
    free(d_emb);
    return rc;
}

/* ---- heads -------------------------------------------------------------- */

static int head_width(const struct janus_model *m, enum tf_target_kind kind) {
    return kind == TF_TARGET_CODES ? m->gen.codebook_size : m->cfg.text.vocab_size;
}

static int head_chunk_rows(const struct janus_model *m) {
    int widest = m->cfg.text.vocab_size;
    if (m->gen.codebook_size + m->gen.width > widest) widest = m->gen.codebook_size + m->gen.width;
    int rows = (int)(HEAD_CHUNK_FLOATS / (unsigned)widest);
    return rows < 8 ? 8 : rows > 512 ? 512 : rows;
}

/* One chunk of rows of one kind: lp (forward) or, with dlp, the backward
 * into dh[rows, C] and the head's weight gradients. */
static int head_chunk(const struct janus_model *m, enum tf_target_kind kind, const float *h, int rows,
                      const int32_t *chosen, float *lp, const float *dlp, float *dh, float *grad, float *logits,
                      struct train_prof *prof, struct dsr_err *err) {
    int C = m->cfg.text.hidden_size, V = head_width(m, kind);
    struct mlp_chain ch;
    float *acts = NULL, *w1 = NULL, *w2 = NULL;
    if (kind == TF_TARGET_CODES) {
        gen_head_chain(m, grad, &ch);
        size_t md = (size_t)mlp_chain_max_dim(&ch);
        acts = malloc((mlp_chain_act_floats(&ch, (size_t)rows) + 3 * (size_t)rows * md) * sizeof(float));
        if (!acts) return dsr_errf(err, "out of memory in the generation head");
        w1 = acts + mlp_chain_act_floats(&ch, (size_t)rows);
        w2 = w1 + (size_t)rows * md;
        if (mlp_chain_forward(&ch, h, rows, acts, w1, err)) {
            free(acts);
            return -1;
        }
        memcpy(logits, mlp_chain_output(&ch, acts, (size_t)rows), (size_t)rows * V * sizeof(float));
    } else {
        if (lm_logits(&m->lm, h, rows, logits, err)) return -1;
    }
    double t0 = tp_now();
#pragma omp parallel for if (rows > 4)
    for (int i = 0; i < rows; i++) {
        float *row = logits + (size_t)i * V;
        double lse = op_logsumexp(row, V);
        if (!dlp) {
            lp[i] = (float)((double)row[chosen[i]] - lse);
            continue;
        }
        /* d lp / d logit_j = δ(j, chosen) − softmax_j */
        for (int j = 0; j < V; j++) row[j] = -dlp[i] * (float)exp((double)row[j] - lse);
        row[chosen[i]] += dlp[i];
    }
    tp_add(prof, TP_HEAD_SOFTMAX, t0);
    int rc = 0;
    if (dlp && kind == TF_TARGET_CODES) {
        rc = mlp_chain_backward(&ch, h, rows, acts, logits, dh, w1, w2, err);
    } else if (dlp) {
        float *g_head = grad_of(m, grad, m->lm.lm_head.f32);
        if (g_head)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, V, C, rows, 1.0f, logits, V, h, C, 1.0f, g_head, C);
        rc = op_linear_w_backward_input(dh, logits, m->lm.lm_head, rows, C, V, 0.0f, err);
    }
    free(acts);
    return rc;
}

/* Forward (dlp NULL: fills lp) or backward (fills dh[n_targets, C]) of the
 * heads over the normed target rows h[n_targets, C]. */
static int heads_pass(const struct train_graph *g, const float *h, float *lp, const float *dlp, float *dh,
                      float *grad, struct dsr_err *err) {
    const struct janus_model *m = g->m;
    size_t C = (size_t)m->cfg.text.hidden_size;
    int chunk = head_chunk_rows(m);
    int widest = m->cfg.text.vocab_size > m->gen.codebook_size ? m->cfg.text.vocab_size : m->gen.codebook_size;
    float *logits = malloc((size_t)chunk * widest * sizeof(float));
    if (!logits) return dsr_errf(err, "out of memory for logits");
    int rc = 0;
    size_t t0 = 0;
    for (int s = 0; s < g->n_samples && rc == 0; s++) {
        const struct train_sample *sm = &g->samples[s];
        for (int r0 = 0; r0 < sm->n_completion && rc == 0; r0 += chunk) {
            int rows = sm->n_completion - r0 < chunk ? sm->n_completion - r0 : chunk;
            size_t t = t0 + (size_t)r0;
            rc = head_chunk(m, sm->kind, h + t * C, rows, sm->completion + r0, lp ? lp + t : NULL,
                            dlp ? dlp + t : NULL, dh ? dh + t * C : NULL, grad, logits, g->prof, err);
        }
        t0 += (size_t)sm->n_completion;
    }
    free(logits);
    return rc;
}

/* Copies the target rows of x[T, C] (the ones predicting completions) into
 * out[n_targets, C], or (scatter) adds out into x. */
static void target_rows(const struct train_graph *g, float *x, float *out, int scatter) {
    size_t C = (size_t)g->m->cfg.text.hidden_size, t = 0;
    for (int s = 0; s < g->n_samples; s++) {
        const struct train_sample *sm = &g->samples[s];
        size_t first = (size_t)g->row0[s] + (size_t)sm->n_context - 1;
        size_t count = (size_t)sm->n_completion * C;
        if (scatter)
            for (size_t j = 0; j < count; j++) x[first * C + j] += out[t * C + j];
        else
            memcpy(out + t * C, x + first * C, count * sizeof(float));
        t += (size_t)sm->n_completion;
    }
}

/* ---- the pass ----------------------------------------------------------- */

size_t tg_kept_floats(const struct janus_model *m, const struct train_sample *s, int n) {
    size_t T = 0;
    for (int i = 0; i < n; i++) T += (size_t)sample_rows(&s[i]);
    return (size_t)m->cfg.text.n_layers * T * tl_acts_floats(&m->cfg.text, m->lora.rank);
}

size_t tg_estimate_bytes(const struct janus_model *m, const struct train_sample *s, int n, int keep_acts) {
    const struct text_config *t = &m->cfg.text;
    int r = m->lora.rank;
    size_t T = 0, targets = 0, max_len = 0;
    for (int i = 0; i < n; i++) {
        size_t len = (size_t)sample_rows(&s[i]);
        T += len;
        targets += (size_t)s[i].n_completion;
        max_len = len > max_len ? len : max_len;
    }
    size_t C = (size_t)t->hidden_size;
    size_t layers_acts = keep_acts ? (size_t)t->n_layers : 1;
    size_t per_row = ((size_t)t->n_layers + 2) * C + layers_acts * tl_acts_floats(t, r) + tl_work_floats(t, r);
    size_t floats = T * per_row + targets * 3 * C + tl_scores_floats((int)max_len) + 2 * HEAD_CHUNK_FLOATS;
    return floats * sizeof(float);
}

void tg_free(struct train_graph *g) {
    free(g->row0);
    free(g->pos);
    free(g->resid);
    memset(g, 0, sizeof *g);
}

static float *resid_at(const struct train_graph *g, int layer) {
    return g->resid + (size_t)layer * g->T * g->m->cfg.text.hidden_size;
}

static struct tl_segs graph_segs(const struct train_graph *g) {
    return (struct tl_segs){.n = g->n_samples, .row0 = g->row0, .pos = g->pos};
}

int tg_forward(struct train_graph *g, const struct janus_model *m, const struct train_sample *s, int n, float *lp,
               float *kept, struct train_prof *prof, struct dsr_err *err) {
    memset(g, 0, sizeof *g);
    if (n < 1) return dsr_errf(err, "no samples");
    g->m = m;
    g->prof = prof;
    g->samples = s;
    g->n_samples = n;
    long long T = 0, targets = 0;
    for (int i = 0; i < n; i++) {
        if (tg_check_sample(m, &s[i], err)) return dsr_err_prefix(err, "sample %d", i);
        int len = sample_rows(&s[i]);
        g->max_len = len > g->max_len ? len : g->max_len;
        T += len;
        targets += s[i].n_completion;
    }
    const struct text_config *t = &m->cfg.text;
    size_t C = (size_t)t->hidden_size;
    if (T > INT_MAX / 16) return dsr_errf(err, "batch of %lld rows is too large", T);
    g->T = (int)T;
    g->n_targets = (int)targets;
    g->row0 = malloc(((size_t)n + 1) * sizeof(int));
    g->pos = malloc((size_t)T * sizeof(int));
    g->resid = alloc_big(((size_t)t->n_layers + 1) * (size_t)T * C);
    int r = m->lora.rank;
    size_t layer_acts = (size_t)T * tl_acts_floats(t, r);
    g->acts = kept;
    float *acts = kept ? NULL : malloc(layer_acts * sizeof(float));
    float *scores = malloc(tl_scores_floats(g->max_len) * sizeof(float));
    float *tgt = malloc((size_t)targets * 2 * C * sizeof(float));
    int rc = 0;
    if (!g->row0 || !g->pos || !g->resid || !(acts || g->acts) || !scores || !tgt)
        rc = dsr_errf(err, "out of memory for a %lld-row training pass", T);
    for (int i = 0, row = 0; i < n && rc == 0; i++) {
        g->row0[i] = row;
        for (int p = 0; p < sample_rows(&s[i]); p++) g->pos[row++] = p;
        g->row0[i + 1] = row;
    }
    double t0 = tp_now();
    if (rc == 0) rc = embed_pass(g, g->resid, NULL, NULL, err);
    t0 = tp_add(prof, TP_EMBED, t0);
    struct tl_acts a;
    struct tl_segs segs = graph_segs(g);
    for (int l = 0; l < t->n_layers && rc == 0; l++) {
        tl_acts_carve(&a, acts ? acts : g->acts + (size_t)l * layer_acts, t, r, g->T);
        rc = tl_forward(&m->lm.layers[l], t, &segs, resid_at(g, l), resid_at(g, l + 1), &a, scores, prof, err);
    }
    t0 = tp_add(prof, TP_LAYER_FWD, t0);
    if (rc == 0) {
        float *tx = tgt, *th = tgt + (size_t)targets * C;
        target_rows(g, resid_at(g, t->n_layers), tx, 0);
        op_rmsnorm(th, tx, m->lm.final_norm, g->n_targets, (int)C, t->rms_norm_eps);
        rc = heads_pass(g, th, lp, NULL, NULL, NULL, err);
        tp_add(prof, TP_HEAD_FWD, t0);
    }
    free(acts);
    free(scores);
    free(tgt);
    if (rc) tg_free(g);
    return rc;
}

static struct tl_grads layer_grads(const struct janus_model *m, float *grad, const struct lm_layer *ly) {
    struct tl_grads g = {
        .attn_norm = grad_of(m, grad, ly->attn_norm),  .q_w = grad_of(m, grad, ly->q_w.f32),
        .k_w = grad_of(m, grad, ly->k_w.f32),          .v_w = grad_of(m, grad, ly->v_w.f32),
        .o_w = grad_of(m, grad, ly->o_w.f32),          .q_b = grad_of(m, grad, ly->q_b),
        .k_b = grad_of(m, grad, ly->k_b),              .v_b = grad_of(m, grad, ly->v_b),
        .o_b = grad_of(m, grad, ly->o_b),              .mlp_norm = grad_of(m, grad, ly->mlp_norm),
        .gate_w = grad_of(m, grad, ly->gate_w.f32),    .up_w = grad_of(m, grad, ly->up_w.f32),
        .down_w = grad_of(m, grad, ly->down_w.f32),    .gate_b = grad_of(m, grad, ly->gate_b),
        .up_b = grad_of(m, grad, ly->up_b),            .down_b = grad_of(m, grad, ly->down_b),
    };
    for (int k = 0; k < LORA_N_LM_TARGETS; k++) {
        g.lora_a[k] = grad_of(m, grad, ly->lora[k].a);
        g.lora_b[k] = grad_of(m, grad, ly->lora[k].b);
    }
    return g;
}

int tg_backward(struct train_graph *g, const float *dlp, float *grad, struct dsr_err *err) {
    const struct janus_model *m = g->m;
    const struct text_config *t = &m->cfg.text;
    size_t C = (size_t)t->hidden_size, T = (size_t)g->T, nt = (size_t)g->n_targets;
    float *tgt = malloc(nt * 4 * C * sizeof(float) + nt * sizeof(float));
    float *dx = calloc(T * C, sizeof(float));
    int r = m->lora.rank;
    float *acts = g->acts ? NULL : malloc(T * tl_acts_floats(t, r) * sizeof(float));
    float *work = malloc(T * tl_work_floats(t, r) * sizeof(float));
    float *scores = malloc(tl_scores_floats(g->max_len) * sizeof(float));
    int rc = 0;
    if (!tgt || !dx || !(acts || g->acts) || !work || !scores) rc = dsr_errf(err, "out of memory for a %zu-row backward", T);
    double t0 = tp_now();
    if (rc == 0) {
        float *tx = tgt, *th = tx + nt * C, *dth = th + nt * C, *dtx = dth + nt * C, *rstd = dtx + nt * C;
        target_rows(g, resid_at(g, t->n_layers), tx, 0);
        op_rmsnorm(th, tx, m->lm.final_norm, g->n_targets, (int)C, t->rms_norm_eps);
        rc = heads_pass(g, th, NULL, dlp, dth, grad, err);
        t0 = tp_add(g->prof, TP_HEAD_BWD, t0);
        if (rc == 0) {
            memset(dtx, 0, nt * C * sizeof(float));
            op_rmsnorm_backward(tx, m->lm.final_norm, dth, g->n_targets, (int)C, t->rms_norm_eps, dtx,
                                grad_of(m, grad, m->lm.final_norm), rstd);
            target_rows(g, dx, dtx, 1);
        }
        t0 = tp_add(g->prof, TP_NORM_BWD, t0);
    }
    struct tl_acts a;
    struct tl_segs segs = graph_segs(g);
    for (int l = t->n_layers - 1; l >= 0 && rc == 0; l--) {
        const struct lm_layer *ly = &m->lm.layers[l];
        struct tl_grads lg = layer_grads(m, grad, ly);
        if (g->acts) {
            tl_acts_carve(&a, g->acts + (size_t)l * T * tl_acts_floats(t, r), t, r, g->T);
        } else {
            tl_acts_carve(&a, acts, t, r, g->T);
            rc = tl_forward(ly, t, &segs, resid_at(g, l), resid_at(g, l + 1), &a, scores, g->prof, err);
        }
        t0 = tp_add(g->prof, TP_RECOMPUTE, t0);
        if (rc == 0) rc = tl_backward(ly, &lg, t, &segs, resid_at(g, l), &a, dx, work, scores, g->prof, err);
        t0 = tp_now();
    }
    if (rc == 0) rc = embed_pass(g, NULL, dx, grad, err);
    tp_add(g->prof, TP_EMBED, t0);
    free(tgt);
    free(dx);
    free(acts);
    free(work);
    free(scores);
    return rc;
}

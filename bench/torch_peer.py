#!/usr/bin/env python3
"""PyTorch CPU peer of dsr's scoring forward and GRPO backward.

Loads the weights, inputs and dsr's log-probs that `bench_forward --dump FILE`
wrote (safetensors, read by models/janus_torch.py's reader: the `safetensors`
package is not in Debian), rebuilds the same Janus language model + generation path in
plain torch (Llama: RMSNorm, rotate-half RoPE, causal attention, SwiGLU; the
generation aligner and head), and

  * cross-checks: the torch log-probs of both items against dsr's
    (max error relative to the largest |log-prob|; must be <= 1e-4);
  * times the teacher-forced forward of both items (no autograd);
  * times one GRPO loss forward + backward over the same two items as two
    completions (advantages +1 / -1, old log-probs = detached, clipped ratio,
    per-sequence token mean), gradients for every weight; and an AdamW step;
  * when the dump holds LoRA adapters (`bench_forward --lora-rank R`): the
    forward adds scale·(x·Aᵀ)·Bᵀ to each adapted linear (the LM's
    projections, the generation head's two and both aligners'), and dsr's
    adapter gradients of the GRPO loss over a caption and an image sample
    (both after the generation context) and a caption of an image whose
    vision features pass through the understanding aligner are checked
    against torch autograd (max error relative to each tensor's largest
    |gradient|; must be <= 1e-3).

All on torch.set_num_threads(--threads).  Prints a summary and writes --json.
Run with the interpreter that has Debian's python3-torch (/usr/bin/python3).
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models"))
from janus_torch import read_safetensors  # noqa: E402  (the reader the default-model recipe uses)


class Peer:
    """The LM and generation path over a dict of named weight tensors."""

    def __init__(self, w):
        ci = w["bench.config.int"].tolist()
        cf = w["bench.config.float"].tolist()
        self.n_layers, self.n_heads, self.n_kv_heads, self.head_dim, self.image_id = ci
        self.eps, self.theta = cf
        self.w = w
        self.hidden = w["model.language_model.embed_tokens.weight"].shape[1]
        self.n_aligner_hidden = self.count_hidden("model.generation_aligner")
        self.n_und_aligner_hidden = self.count_hidden("model.aligner")
        self.lora_scale = float(w["bench.lora.scale"][0]) if "bench.lora.scale" in w else 0.0

    def count_hidden(self, prefix):
        n = 0
        while f"{prefix}.hidden_layers.{n}.weight" in self.w:
            n += 1
        return n

    def params(self):
        """What the timed GRPO step trains: the forward's weights (the understanding aligner, there for the LoRA
        check, is outside it: the timed items carry their image rows)."""
        return [t for n, t in self.w.items() if not n.startswith(("bench.", "dsr.", "model.aligner."))]

    def adapters(self):
        return {n: t for n, t in self.w.items() if ".lora_" in n and not n.startswith("dsr.")}

    def proj(self, h, module):
        """module's linear (e.g. "model.language_model.layers.0.self_attn.q_proj"), with its bias and adapter if
        any."""
        y = F.linear(h, self.w[module + ".weight"], self.w.get(module + ".bias"))
        a = self.w.get(module + ".lora_A.weight")
        if a is not None:
            y = y + self.lora_scale * F.linear(F.linear(h, a), self.w[module + ".lora_B.weight"])
        return y

    def rmsnorm(self, x, weight):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * weight

    def rope(self, x, n):
        # x [B, H, n, hd]; HF rotate_half pairing (i, i + hd/2)
        hd = self.head_dim
        inv = 1.0 / (self.theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
        ang = torch.arange(n, dtype=torch.float64)[:, None] * inv[None, :]
        cos = torch.cat([ang.cos(), ang.cos()], -1).float()
        sin = torch.cat([ang.sin(), ang.sin()], -1).float()
        half = hd // 2
        rot = torch.cat([-x[..., half:], x[..., :half]], -1)
        return x * cos + rot * sin

    def layer(self, x, l):
        p = f"model.language_model.layers.{l}."
        w = self.w
        B, n, C = x.shape
        H, KVH, hd = self.n_heads, self.n_kv_heads, self.head_dim
        h = self.rmsnorm(x, w[p + "input_layernorm.weight"])
        q = self.proj(h, p + "self_attn.q_proj").view(B, n, H, hd).transpose(1, 2)
        k = self.proj(h, p + "self_attn.k_proj").view(B, n, KVH, hd).transpose(1, 2)
        v = self.proj(h, p + "self_attn.v_proj").view(B, n, KVH, hd).transpose(1, 2)
        q, k = self.rope(q, n), self.rope(k, n)
        if KVH != H:
            k = k.repeat_interleave(H // KVH, dim=1)
            v = v.repeat_interleave(H // KVH, dim=1)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hd)
        mask = torch.ones(n, n, dtype=torch.bool).triu(1)
        att = torch.matmul(scores.masked_fill(mask, float("-inf")).softmax(-1), v)
        x = x + self.proj(att.transpose(1, 2).reshape(B, n, H * hd), p + "self_attn.o_proj")
        h = self.rmsnorm(x, w[p + "post_attention_layernorm.weight"])
        g = F.silu(self.proj(h, p + "mlp.gate_proj")) * self.proj(h, p + "mlp.up_proj")
        return x + self.proj(g, p + "mlp.down_proj")

    def mlp_aligner(self, x, prefix, n_hidden):
        """Janus's aligner MLP: fc1, then GELU and a linear per hidden layer."""
        x = self.proj(x, prefix + ".fc1")
        for i in range(n_hidden):
            x = self.proj(F.gelu(x), f"{prefix}.hidden_layers.{i}")
        return x

    def embed_codes(self, codes):
        return self.mlp_aligner(self.w["model.generation_embeddings.weight"][codes], "model.generation_aligner",
                                self.n_aligner_hidden)

    def align_image(self, features):
        """vision features [rows, vision hidden] → image rows [rows, hidden] (the understanding aligner)."""
        return self.mlp_aligner(features, "model.aligner", self.n_und_aligner_hidden)

    def embed_context(self, ids, image_embeds):
        rows = self.w["model.language_model.embed_tokens.weight"][ids]
        if image_embeds is not None:
            rows = rows.clone()
            rows[ids == self.image_id] = image_embeds
        return rows

    def item_rows(self, item):
        ctx = self.embed_context(item["context"], item.get("image_embeds"))
        tgt = item["target"][:-1]
        tail = self.embed_codes(tgt) if item["kind"] == "codes" else self.w["model.language_model.embed_tokens.weight"][tgt]
        return torch.cat([ctx, tail], 0)

    def head_logprobs(self, kind, hidden, target):
        w = self.w
        if kind == "codes":
            h = F.gelu(self.proj(hidden, "model.generation_head.proj_out"))
            logits = self.proj(h, "model.generation_head.vision_head")
        else:
            logits = F.linear(hidden, w["lm_head.weight"])
        return logits.log_softmax(-1).gather(-1, target[:, None])[:, 0]

    def logprobs(self, items):
        """Per-item target log-probs; items of equal length run as one batch."""
        rows = [self.item_rows(it) for it in items]
        lengths = {r.shape[0] for r in rows}
        groups = [list(range(len(items)))] if len(lengths) == 1 else [[i] for i in range(len(items))]
        out = [None] * len(items)
        for grp in groups:
            x = torch.stack([rows[i] for i in grp])
            for l in range(self.n_layers):
                x = self.layer(x, l)
            x = self.rmsnorm(x, self.w["model.language_model.norm.weight"])
            for b, i in enumerate(grp):
                it = items[i]
                nc, nt = it["context"].shape[0], it["target"].shape[0]
                out[i] = self.head_logprobs(it["kind"], x[b, nc - 1:nc - 1 + nt], it["target"])
        return out


def grpo_loss(lps, advantages, eps=0.2):
    """TRL-style GRPO (loss_type grpo, beta 0): per-sequence token mean of the
    clipped surrogate, then the batch mean; old log-probs are the detached ones."""
    losses = []
    for lp, a in zip(lps, advantages):
        ratio = torch.exp(lp - lp.detach())
        surr = torch.minimum(ratio * a, ratio.clamp(1 - eps, 1 + eps) * a)
        losses.append(-surr.mean())
    return torch.stack(losses).mean()


def best_time(fn, reps):
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), sum(times) / len(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", required=True, help="safetensors written by bench_forward --dump")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    w = read_safetensors(args.weights)
    peer = Peer(w)
    items = [
        {"kind": "tokens", "context": w["bench.und.context"].long(), "image_embeds": w["bench.und.image_embeds"],
         "target": w["bench.und.target"].long()},
        {"kind": "codes", "context": w["bench.gen.context"].long(), "target": w["bench.gen.target"].long()},
    ]
    rows = sum(it["context"].shape[0] + it["target"].shape[0] - 1 for it in items)
    completion = sum(it["target"].shape[0] for it in items)

    with torch.no_grad():
        lp = torch.cat(peer.logprobs(items))
    ref = w["bench.logprobs"]
    max_abs = (lp - ref).abs().max().item()
    rel = max_abs / ref.abs().max().item()
    print(f"torch_peer: {torch.__version__}, {torch.get_num_threads()} threads; "
          f"log-prob cross-check vs dsr: max abs err {max_abs:.3g}, relative {rel:.3g} "
          f"({'PASS' if rel <= 1e-4 else 'FAIL'} at 1e-4)")

    def forward():
        with torch.no_grad():
            peer.logprobs(items)

    lora_rel = None
    if peer.adapters():
        lora_rel = lora_check(peer, w)
        print(f"LoRA adapter gradients vs dsr: {len(peer.adapters())} tensors, worst error {lora_rel:.3g} of the "
              f"tensor's max ({'PASS' if lora_rel <= 1e-3 else 'FAIL'} at 1e-3)")

    fwd_best, fwd_mean = best_time(forward, args.reps)
    print(f"forward ({rows} rows): best {fwd_best:.3f} s, {rows / fwd_best:.0f} tokens/s")

    params = peer.params()
    for p in params:
        p.requires_grad_(True)

    def grpo():
        for p in params:
            p.grad = None
        loss = grpo_loss(peer.logprobs(items), [1.0, -1.0])
        loss.backward()

    bwd_best, bwd_mean = best_time(grpo, args.reps)
    print(f"GRPO forward+backward ({rows} rows, {completion} completion tokens): best {bwd_best:.3f} s, "
          f"{rows / bwd_best:.0f} tokens/s")
    opt = torch.optim.AdamW(params, lr=1e-6)
    adam_best, _ = best_time(opt.step, args.reps)
    print(f"AdamW step over {sum(p.numel() for p in params) / 1e6:.1f} M parameters: {adam_best:.3f} s")

    res = {"torch_version": torch.__version__, "threads": torch.get_num_threads(), "rows": rows,
           "completion_tokens": completion, "crosscheck_max_abs_err": max_abs, "crosscheck_rel_err": rel,
           "forward_best_s": fwd_best, "forward_mean_s": fwd_mean, "grpo_fwd_bwd_best_s": bwd_best,
           "grpo_fwd_bwd_mean_s": bwd_mean, "adamw_step_s": adam_best}
    if lora_rel is not None:
        res["lora_grad_rel_err"] = lora_rel
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0 if rel <= 1e-4 and (lora_rel is None or lora_rel <= 1e-3) else 1


def lora_check(peer, w):
    """Worst relative error of dsr's adapter gradients against autograd's, for
    bench_forward's check batch: a caption (the generation context, then the
    understanding targets as tokens), an image sample, and a caption of the
    understanding context whose image rows are the vision features through
    the understanding aligner; advantages +1 / -1 / +0.5."""
    ctx = w["bench.gen.context"].long()
    ad = peer.adapters()
    for t in ad.values():
        t.requires_grad_(True)
        t.grad = None
    items = [{"kind": "tokens", "context": ctx, "target": w["bench.und.target"].long()},
             {"kind": "codes", "context": ctx, "target": w["bench.gen.target"].long()},
             {"kind": "tokens", "context": w["bench.und.context"].long(),
              "image_embeds": peer.align_image(w["bench.und.vision_features"]), "target": w["bench.und.target"].long()}]
    grpo_loss(peer.logprobs(items), [1.0, -1.0, 0.5]).backward()
    worst = 0.0
    for name, t in ad.items():
        want = w["dsr.grad." + name]
        got = t.grad if t.grad is not None else torch.zeros_like(t)  # no path to the loss in torch: 0
        worst = max(worst, (got - want).abs().max().item() / max(want.abs().max().item(), 1e-30))
        t.requires_grad_(False)
        t.grad = None
    return worst


if __name__ == "__main__":
    sys.exit(main())

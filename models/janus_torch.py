"""Janus (HF transformers `models/janus` layout) in plain PyTorch.

The training recipe of dsr's default model and the benchmark peer share this
module.  Parameter names are exactly the HF checkpoint names, so
`state_dict()` is a loadable `model.safetensors`; the math is the one dsr's C
core implements (and tests/models/test_janus_torch.py checks this module against the
golden fixtures computed by HF transformers):

* language model: Llama (RMSNorm, rotate-half RoPE, GQA, SwiGLU), untied lm_head;
* understanding: ViT (patch conv, learned positions, pre-LN blocks, exact GELU,
  post_layernorm) -> aligner MLP, written over the image placeholder rows;
* generation: codes -> generation_embeddings -> generation_aligner -> LM ->
  generation_head (proj_out -> GELU -> vision_head);
* VQ-VAE: encoder / decoder with GroupNorm(32), swish, attention at the lowest
  resolution; `l2` quantisation (normalised latents and codebook, as dsr's
  default `--quantizer l2` and original Janus); decode uses the L2-normalised
  codebook entries.

Shapes in comments: B batch, T tokens, C channels, S image side, P latent side.
"""
import json
import math
import mmap
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


# ---- configuration -------------------------------------------------------------

def janus_config(vocab_size, bos, eos, pad, image_token_id, *, hidden=256, layers=4, heads=4, kv_heads=2,
                 intermediate=512, vision_hidden=128, vision_layers=2, vision_heads=4, image_size=64, patch=8,
                 codebook=256, embed_dim=8, vq_base=32, vq_mult=(1, 1, 2, 2), vq_latent=64, max_positions=256):
    """An HF JanusConfig dictionary (config.json)."""
    return {
        "architectures": ["JanusForConditionalGeneration"],
        "model_type": "janus",
        "image_token_id": image_token_id,
        "tie_word_embeddings": False,
        "text_config": {
            "model_type": "llama", "vocab_size": vocab_size, "hidden_size": hidden,
            "intermediate_size": intermediate, "num_hidden_layers": layers, "num_attention_heads": heads,
            "num_key_value_heads": kv_heads, "head_dim": hidden // heads, "hidden_act": "silu",
            "max_position_embeddings": max_positions, "rms_norm_eps": 1e-6,
            "rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"},
            "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": False,
            "bos_token_id": bos, "eos_token_id": eos, "pad_token_id": pad,
        },
        "vision_config": {
            "model_type": "janus_vision_model", "hidden_size": vision_hidden, "num_hidden_layers": vision_layers,
            "num_attention_heads": vision_heads, "mlp_ratio": 4.0, "image_size": image_size, "patch_size": patch,
            "num_channels": 3, "num_image_tokens": (image_size // patch) ** 2, "projection_dim": hidden, "depth": 2,
            "hidden_act": "gelu", "layer_norm_eps": 1e-6, "attention_bias": True, "use_qk_norm": False,
        },
        "vq_config": {
            "model_type": "janus_vqgan", "embed_dim": embed_dim, "num_embeddings": codebook,
            "latent_channels": vq_latent, "base_channels": vq_base, "channel_multiplier": list(vq_mult),
            "num_res_blocks": 1, "in_channels": 3, "out_channels": 3, "double_latent": False,
            "num_patches": image_size >> (len(vq_mult) - 1), "projection_dim": hidden,
            "image_token_embed_dim": hidden, "num_hidden_layers": 2, "hidden_act": "gelu", "dropout": 0.0,
        },
    }


# ---- language model -------------------------------------------------------------

class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(n, head_dim, theta):
    """cos, sin [n, head_dim] for HF's rotate-half pairing (i, i + head_dim/2)."""
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    ang = torch.arange(n, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cat([ang.cos(), ang.cos()], -1).float(), torch.cat([ang.sin(), ang.sin()], -1).float()


def apply_rope(x, cos, sin):
    half = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., half:], x[..., :half]], -1) * sin


def attention(q, k, v, causal):
    """softmax(q kᵀ / √d) v over [B, H, T, d] (torch 1.13 has no fused kernel)."""
    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    if causal:
        T = q.shape[-2]
        scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool, device=q.device).triu(1), float("-inf"))
    return torch.matmul(scores.softmax(-1), v)


class LlamaAttention(nn.Module):
    def __init__(self, t):
        super().__init__()
        self.h, self.kvh, self.hd = t["num_attention_heads"], t["num_key_value_heads"], t["head_dim"]
        c = t["hidden_size"]
        self.q_proj = nn.Linear(c, self.h * self.hd, bias=False)
        self.k_proj = nn.Linear(c, self.kvh * self.hd, bias=False)
        self.v_proj = nn.Linear(c, self.kvh * self.hd, bias=False)
        self.o_proj = nn.Linear(self.h * self.hd, c, bias=False)

    def forward(self, x, cos, sin):  # x [B, T, C]
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.h, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.kvh, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.kvh, self.hd).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if self.kvh != self.h:
            k = k.repeat_interleave(self.h // self.kvh, dim=1)
            v = v.repeat_interleave(self.h // self.kvh, dim=1)
        att = attention(q, k, v, causal=True)
        return self.o_proj(att.transpose(1, 2).reshape(B, T, self.h * self.hd))


class LlamaMLP(nn.Module):
    def __init__(self, t):
        super().__init__()
        c, i = t["hidden_size"], t["intermediate_size"]
        self.gate_proj = nn.Linear(c, i, bias=False)
        self.up_proj = nn.Linear(c, i, bias=False)
        self.down_proj = nn.Linear(i, c, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaLayer(nn.Module):
    def __init__(self, t):
        super().__init__()
        self.input_layernorm = RMSNorm(t["hidden_size"], t["rms_norm_eps"])
        self.self_attn = LlamaAttention(t)
        self.post_attention_layernorm = RMSNorm(t["hidden_size"], t["rms_norm_eps"])
        self.mlp = LlamaMLP(t)

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(nn.Module):
    def __init__(self, t):
        super().__init__()
        self.embed_tokens = nn.Embedding(t["vocab_size"], t["hidden_size"])
        self.layers = nn.ModuleList([LlamaLayer(t) for _ in range(t["num_hidden_layers"])])
        self.norm = RMSNorm(t["hidden_size"], t["rms_norm_eps"])
        rope = t.get("rope_parameters") or {"rope_theta": t.get("rope_theta", 10000.0)}
        self.theta, self.head_dim = rope["rope_theta"], t["head_dim"]

    def forward(self, x):  # x [B, T, C] input rows -> final-norm hidden [B, T, C]
        cos, sin = (t.to(x.device) for t in rope_tables(x.shape[1], self.head_dim, self.theta))
        for layer in self.layers:
            x = layer(x, cos, sin)
        return self.norm(x)


# ---- understanding path -------------------------------------------------------------

class VisionAttention(nn.Module):
    def __init__(self, v):
        super().__init__()
        c = v["hidden_size"]
        self.h = v["num_attention_heads"]
        self.q_proj, self.k_proj, self.v_proj = nn.Linear(c, c), nn.Linear(c, c), nn.Linear(c, c)
        self.projection_layer = nn.Linear(c, c)

    def forward(self, x):  # [B, N, C]
        B, N, C = x.shape
        hd = C // self.h
        q, k, v = (p(x).view(B, N, self.h, hd).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
        att = attention(q, k, v, causal=False)
        return self.projection_layer(att.transpose(1, 2).reshape(B, N, C))


class VisionLayer(nn.Module):
    def __init__(self, v):
        super().__init__()
        c, eps = v["hidden_size"], v["layer_norm_eps"]
        self.layer_norm1 = nn.LayerNorm(c, eps=eps)
        self.self_attn = VisionAttention(v)
        self.layer_norm2 = nn.LayerNorm(c, eps=eps)
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(c, int(c * v["mlp_ratio"]))
        self.mlp.fc2 = nn.Linear(int(c * v["mlp_ratio"]), c)

    def forward(self, x):
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp.fc2(F.gelu(self.mlp.fc1(self.layer_norm2(x))))


class VisionModel(nn.Module):
    def __init__(self, v):
        super().__init__()
        c, p = v["hidden_size"], v["patch_size"]
        self.embeddings = nn.Module()
        self.embeddings.patch_embedding = nn.Conv2d(v["num_channels"], c, p, stride=p)
        self.embeddings.position_embedding = nn.Embedding((v["image_size"] // p) ** 2, c)
        self.encoder = nn.Module()
        self.encoder.layers = nn.ModuleList([VisionLayer(v) for _ in range(v["num_hidden_layers"])])
        self.post_layernorm = nn.LayerNorm(c, eps=v["layer_norm_eps"])

    def forward(self, pixels):  # [B, 3, S, S] in [-1, 1] -> [B, N, C]
        x = self.embeddings.patch_embedding(pixels).flatten(2).transpose(1, 2)
        x = x + self.embeddings.position_embedding.weight
        for layer in self.encoder.layers:
            x = layer(x)
        return self.post_layernorm(x)


class AlignerMLP(nn.Module):
    """fc1, then (GELU, hidden layer) × (depth - 1): both aligners' shape."""

    def __init__(self, n_in, n_out, depth):
        super().__init__()
        self.fc1 = nn.Linear(n_in, n_out)
        self.hidden_layers = nn.ModuleList([nn.Linear(n_out, n_out) for _ in range(1, depth)])

    def forward(self, x):
        x = self.fc1(x)
        for layer in self.hidden_layers:
            x = layer(F.gelu(x))
        return x


# ---- VQ-VAE ---------------------------------------------------------------------------

def group_norm(c):
    return nn.GroupNorm(32, c, eps=1e-6)


class ResBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.norm1, self.conv1 = group_norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2, self.conv2 = group_norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        if cin != cout:
            self.nin_shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x) + h


class AttnBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = group_norm(c)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(c, c, 1) for _ in range(4))

    def forward(self, x):  # [B, C, P, P]
        B, C, H, W = x.shape
        h = self.norm(x)
        q = self.q(h).reshape(B, C, H * W).transpose(1, 2)
        k = self.k(h).reshape(B, C, H * W)
        v = self.v(h).reshape(B, C, H * W)
        w = torch.softmax(torch.bmm(q, k) * C ** -0.5, dim=2)  # [B, HW, HW]
        return x + self.proj_out(torch.bmm(v, w.transpose(1, 2)).reshape(B, C, H, W))


class MidBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.block_1, self.attn_1, self.block_2 = ResBlock(c, c), AttnBlock(c), ResBlock(c, c)

    def forward(self, x):
        return self.block_2(self.attn_1(self.block_1(x)))


class Encoder(nn.Module):
    def __init__(self, q):
        super().__init__()
        base, mult, L = q["base_channels"], q["channel_multiplier"], len(q["channel_multiplier"])
        self.conv_in = nn.Conv2d(q["in_channels"], base, 3, padding=1)
        in_mult = (1,) + tuple(mult)
        self.down = nn.ModuleList()
        for i in range(L):
            lv = nn.Module()
            lv.block, lv.attn = nn.ModuleList(), nn.ModuleList()
            cin = base * in_mult[i]
            for _ in range(q["num_res_blocks"]):
                lv.block.append(ResBlock(cin, base * mult[i]))
                cin = base * mult[i]
                if i == L - 1:
                    lv.attn.append(AttnBlock(cin))
            if i != L - 1:
                lv.downsample = nn.Module()
                lv.downsample.conv = nn.Conv2d(cin, cin, 3, stride=2)
            self.down.append(lv)
        self.mid = MidBlock(cin)
        self.norm_out = group_norm(cin)
        self.conv_out = nn.Conv2d(cin, q["latent_channels"], 3, padding=1)

    def forward(self, x):
        x = self.conv_in(x)
        for lv in self.down:
            for b, block in enumerate(lv.block):
                x = block(x)
                if len(lv.attn):
                    x = lv.attn[b](x)
            if hasattr(lv, "downsample"):
                x = lv.downsample.conv(F.pad(x, (0, 1, 0, 1)))  # asymmetric padding, as Janus
        return self.conv_out(F.silu(self.norm_out(self.mid(x))))


class Decoder(nn.Module):
    def __init__(self, q):
        super().__init__()
        base, mult, L = q["base_channels"], q["channel_multiplier"], len(q["channel_multiplier"])
        cin = base * mult[L - 1]
        self.conv_in = nn.Conv2d(q["latent_channels"], cin, 3, padding=1)
        self.mid = MidBlock(cin)
        self.up = nn.ModuleList()
        for i in reversed(range(L)):
            lv = nn.Module()
            lv.block, lv.attn = nn.ModuleList(), nn.ModuleList()
            for _ in range(q["num_res_blocks"] + 1):
                lv.block.append(ResBlock(cin, base * mult[i]))
                cin = base * mult[i]
                if i == L - 1:
                    lv.attn.append(AttnBlock(cin))
            if i != 0:
                lv.upsample = nn.Module()
                lv.upsample.conv = nn.Conv2d(cin, cin, 3, padding=1)
            self.up.append(lv)
        self.norm_out = group_norm(cin)
        self.conv_out = nn.Conv2d(cin, q["out_channels"], 3, padding=1)

    def forward(self, x):
        x = self.mid(self.conv_in(x))
        for lv in self.up:
            for b, block in enumerate(lv.block):
                x = block(x)
                if len(lv.attn):
                    x = lv.attn[b](x)
            if hasattr(lv, "upsample"):
                x = lv.upsample.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(x)))


class VQModel(nn.Module):
    def __init__(self, q):
        super().__init__()
        self.encoder, self.decoder = Encoder(q), Decoder(q)
        self.quantize = nn.Module()
        self.quantize.embedding = nn.Embedding(q["num_embeddings"], q["embed_dim"])
        self.quant_conv = nn.Conv2d(q["latent_channels"], q["embed_dim"], 1)
        self.post_quant_conv = nn.Conv2d(q["embed_dim"], q["latent_channels"], 1)

    def latents(self, pixels):  # [B, 3, S, S] -> [B, D, P, P] before quantisation
        return self.quant_conv(self.encoder(pixels))

    def codebook(self):
        return F.normalize(self.quantize.embedding.weight, dim=-1)  # [K, D]

    def quantize_l2(self, z):
        """l2 mode: argmax cosine.  Returns codes [B, P*P] and the straight-through
        quantised latents [B, D, P, P] (normalised), plus the normalised input."""
        B, D, P, _ = z.shape
        zn = F.normalize(z.permute(0, 2, 3, 1).reshape(-1, D), dim=-1)
        cb = self.codebook()
        codes = (zn @ cb.t()).argmax(-1)
        zq = cb[codes]
        st = zn + (zq - zn).detach()
        as_map = lambda t: t.view(B, P, P, D).permute(0, 3, 1, 2)
        return codes.view(B, P * P), as_map(st), as_map(zn), as_map(zq)

    def encode(self, pixels):  # -> codes [B, P*P]
        return self.quantize_l2(self.latents(pixels))[0]

    def decode_latents(self, zq):  # normalised latents [B, D, P, P] -> pixels [B, 3, S, S]
        return self.decoder(self.post_quant_conv(zq))

    def decode(self, codes):  # [B, P*P] -> pixels (not clamped)
        B, N = codes.shape
        P = int(math.isqrt(N))
        zq = self.codebook()[codes].view(B, P, P, -1).permute(0, 3, 1, 2)
        return self.decode_latents(zq)


# ---- the whole model ---------------------------------------------------------------------

class Janus(nn.Module):
    """Module tree = HF checkpoint names (`model.*`, `lm_head`)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        t, v, q = cfg["text_config"], cfg["vision_config"], cfg["vq_config"]
        self.model = nn.Module()
        m = self.model
        m.language_model = LlamaModel(t)
        m.vision_model = VisionModel(v)
        m.aligner = AlignerMLP(v["hidden_size"], v["projection_dim"], v["depth"])
        m.vqmodel = VQModel(q)
        m.generation_embeddings = nn.Embedding(q["num_embeddings"], q["embed_dim"])
        m.generation_aligner = AlignerMLP(q["embed_dim"], q["projection_dim"], q["num_hidden_layers"])
        m.generation_head = nn.Module()
        m.generation_head.proj_out = nn.Linear(q["image_token_embed_dim"], q["projection_dim"])
        m.generation_head.vision_head = nn.Linear(q["projection_dim"], q["num_embeddings"])
        self.lm_head = nn.Linear(t["hidden_size"], t["vocab_size"], bias=False)
        self.image_token_id = cfg["image_token_id"]

    # rows
    def token_rows(self, ids):  # [B, T] -> [B, T, C]
        return self.model.language_model.embed_tokens(ids)

    def image_embeds(self, pixels):  # [B, 3, S, S] -> [B, N, C]
        return self.model.aligner(self.model.vision_model(pixels))

    def code_rows(self, codes):  # [B, T] -> [B, T, C]
        return self.model.generation_aligner(self.model.generation_embeddings(codes))

    def und_rows(self, ids, pixels):
        """Context ids with image placeholders and one image per row."""
        rows = self.token_rows(ids)
        emb = self.image_embeds(pixels)
        mask = (ids == self.image_token_id).unsqueeze(-1)
        return rows.masked_scatter(mask, emb.to(rows.dtype))

    # heads
    def text_logits(self, hidden):
        return self.lm_head(hidden)

    def code_logits(self, hidden):
        h = self.model.generation_head
        return h.vision_head(F.gelu(h.proj_out(hidden)))

    def hidden(self, rows):
        return self.model.language_model(rows)


# ---- safetensors (the `safetensors` package is not in Debian) -----------------------------

_DT = {"F32": np.float32, "I32": np.int32, "I64": np.int64, "F64": np.float64, "U8": np.uint8}


def read_safetensors(path):
    """name -> torch tensor (copies; BF16 widened to float32)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        if n > 100_000_000:
            raise ValueError(f"{path}: header of {n} bytes is too large")
        header = json.loads(f.read(n))
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        if info["dtype"] == "BF16":
            raw = np.frombuffer(data, dtype=np.uint16, count=(end - start) // 2, offset=8 + n + start)
            arr = (raw.astype(np.uint32) << 16).view(np.float32).reshape(info["shape"])
            del raw  # release the view so the mapping can close
        else:
            dt = _DT[info["dtype"]]
            arr = np.frombuffer(data, dtype=dt, count=(end - start) // np.dtype(dt).itemsize,
                                offset=8 + n + start).reshape(info["shape"])
        out[name] = torch.from_numpy(arr.copy())
        del arr
    data.close()
    return out


def bf16_bits(t):
    """float32 tensor -> uint16 BF16 bits, rounded to nearest even."""
    u = t.detach().float().contiguous().numpy().view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def write_safetensors(path, tensors, bf16=False, metadata=None):
    """Writes name -> float tensor as F32 (or BF16), names sorted, 8-byte aligned header."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in sorted(tensors):
        t = tensors[name].detach().float().contiguous()
        raw = bf16_bits(t).tobytes() if bf16 else t.numpy().tobytes()
        header[name] = {"dtype": "BF16" if bf16 else "F32", "shape": list(t.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)

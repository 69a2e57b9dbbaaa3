#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<name>/.

Run from the repository root after changing a decoder's input format; the
seeds are committed.  Standard library only (PNGs and safetensors files are
assembled by hand)."""
import base64
import json
import os
import struct
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def png(width, height, color_type, bit_depth, rows, interlace=0, palette=None, extra=b""):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, interlace)
    raw = b"".join(b"\x00" + r for r in rows)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    if palette:
        out += chunk(b"PLTE", palette)
    out += extra + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    return out


def pngs():
    rgb = png(2, 2, 2, 8, [bytes([255, 0, 0, 0, 255, 0]), bytes([0, 0, 255, 255, 255, 255])])
    gray = png(3, 1, 0, 8, [bytes([0, 128, 255])])
    rgba = png(1, 2, 6, 8, [bytes([1, 2, 3, 128]), bytes([4, 5, 6, 255])])
    pal = png(2, 1, 3, 8, [bytes([0, 1])], palette=bytes([255, 0, 0, 0, 255, 0]))
    deep = png(1, 1, 2, 16, [bytes([0, 1, 0, 2, 0, 3])])
    gray1 = png(8, 1, 0, 1, [bytes([0b10101010])])
    trns = png(1, 1, 2, 8, [bytes([9, 9, 9])], extra=b"\x00\x00\x00\x06tRNS\x00\x09\x00\x09\x00\x09" +
               struct.pack(">I", zlib.crc32(b"tRNS\x00\x09\x00\x09\x00\x09") & 0xFFFFFFFF))
    return {"rgb2x2": rgb, "gray3x1": gray, "rgba1x2": rgba, "palette2x1": pal, "rgb16": deep, "gray1bit": gray1,
            "trns": trns}


def safetensors(tensors, meta=None):
    header, data = {}, b""
    for name, dtype, shape, payload in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    if meta:
        header["__metadata__"] = meta
    h = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(h)) + h + data


def main():
    images = pngs()
    for name, data in images.items():
        put("png", name, data)
    b64 = base64.b64encode(images["rgb2x2"]).decode()

    for name, text in {"empty": "", "one": "QQ==", "two": "QUI=", "three": "QUJD", "png": b64,
                       "bad_pad": "QQ=A", "bad_char": "QU$D", "unused_bits": "QR=="}.items():
        put("base64", name, text)

    codes = list(range(16))
    req = {
        "tokenize": {"text": "a red circle", "add_special": True},
        "detokenize": {"tokens": [256, 97, 98, 257], "skip_special": True},
        "logprobs": {"items": [{"context": {"tokens": [256, 17, 259]}, "target": {"codes": [5, 9, 31]}},
                               {"context": {"tokens": [256, 30, 259, 261, 261, 260, 32]}, "image": {"codes": codes},
                                "target": {"tokens": [40, 41]}},
                               {"context": {"text": "x"}, "target": {"png": b64}}]},
        "score": {"items": [{"task": "understanding", "image": {"png": b64}, "response": {"text": "a red circle"}},
                            {"task": "generation", "prompt": {"text": "a red circle"}, "image": {"codes": codes}}],
                  "token_logprobs": True},
        "rollout": {"task": "generation", "prompt": {"text": "a red circle"}, "n": 4, "cfg_scale": 5.0,
                    "temperature": 1.0, "top_k": 0, "top_p": 0.9, "seed": 7, "score": True, "return_png": True},
        "rollout_und": {"task": "understanding", "image": {"codes": codes}, "question": "Describe the image.",
                        "n": 2, "max_tokens": 8, "temperature": 0},
        "openrlhf": {"query": ["<|User|>: x a cat"], "prompts": ["<|User|>: x"], "labels": [b64]},
        "update": {"algorithm": "grpo", "idempotency_key": "k-1",
                   "samples": [{"rollout_id": "r-1", "advantage": 1.2},
                               {"task": "understanding", "context": {"tokens": [256, 261, 261]}, "image": {"codes": codes},
                                "completion": {"tokens": [40, 41]}, "advantage": -0.4, "old_logprobs": [-1.5, -2.0],
                                "ref_logprobs": [-1.4, -2.1]},
                               {"task": "generation", "context": {"tokens": [256, 259]}, "completion": {"codes": [1, 2]},
                                "advantage": 0.3}],
                   "hyper": {"epsilon": 0.2, "epsilon_high": 0.28, "beta": 0.04, "loss_type": "dr_grpo",
                             "max_completion_length": 8, "lr": 1e-6, "weight_decay": 0.01, "max_grad_norm": 1.0,
                             "adam_betas": [0.9, 0.999], "adam_eps": 1e-8}},
        "update_simpo": {"algorithm": "simpo",
                         "pairs": [{"chosen": {"rollout_id": "a"}, "rejected": {"task": "generation",
                                    "context": {"text": "p"}, "completion": {"codes": [3]}}}],
                         "hyper": {"beta": 2.0, "gamma": 1.0, "lr": 1e-6}},
        "update_eps0": {"samples": [{"rollout_id": "a", "advantage": 1}], "hyper": {"adam_eps": 0}},
        "checkpoint": {"name": "step-100"},
        "reload": {"path": "step-100"},
    }
    for name, body in req.items():
        route = name.split("_")[0]
        put("request", name, route + "\n" + json.dumps(body))

    f32 = struct.pack("<6f", 1, 2, 3, 4, 5, float("nan"))
    st = {
        "f32": safetensors([("a.weight", "F32", [2, 3], f32)], {"format": "pt", "policy_version": "7"}),
        "mixed": safetensors([("b", "BF16", [2], b"\x80\x3f\x00\x40"), ("h", "F16", [1], b"\x00\x3c"),
                              ("i", "I64", [1], struct.pack("<q", -3)), ("d", "F64", [1], struct.pack("<d", 1e300)),
                              ("z", "F32", [0], b"")]),
        "empty": safetensors([]),
    }
    for name, data in st.items():
        put("safetensors", name, data)

    index = {"metadata": {"total_size": 40},
             "weight_map": {"a.weight": "shard-a.safetensors", "b.weight": "shard-a.safetensors",
                            "c.bias": "shard-b.safetensors"}}
    put("shard_index", "two_shards", json.dumps(index))
    put("shard_index", "one_shard", json.dumps({"weight_map": {"c.bias": "shard-b.safetensors"}}))
    put("shard_index", "missing", json.dumps({"weight_map": {"x": "shard-a.safetensors"}}))

    tok = json.load(open("tests/fixtures/tokenizer-bpe/tokenizer.json"))
    small = dict(tok)
    model = dict(tok["model"])
    model["merges"] = model["merges"][:40]
    keep = set()
    for m in model["merges"]:
        pair = m if isinstance(m, list) else m.split(" ")
        keep.update(pair)
        keep.add("".join(pair))
    model["vocab"] = {t: i for t, i in tok["model"]["vocab"].items() if i < 300 or t in keep}
    small["model"] = model
    put("tokenizer_load", "small_bpe", json.dumps(small, ensure_ascii=False))
    put("tokenizer_load", "no_pretokenizer", json.dumps(dict(small, pre_tokenizer=None), ensure_ascii=False))

    for name, text in {"ascii": "\x00Hello world, a red circle!", "utf8": "\x01caf\u00e9 \u65e5\u672c\u8a9e \U0001f600",
                       "special": "\x00<|User|>: <begin_of_image>\n\n<|Assistant|>:", "digits": "\x00 12345 3.14",
                       "spaces": "\x01   \t\n\r\n  x"}.items():
        put("tokenizer_encode", name, text)
    put("tokenizer_encode", "invalid_utf8", b"\x00ab\xff\xfe\xc3")

    put("config", "janus_tiny", open("tests/fixtures/janus-tiny/config.json").read())
    put("config", "preprocessor", open("tests/fixtures/image-processing/processor.json").read())
    put("config", "preprocessor_pil", json.dumps({"image_processor_type": "JanusImageProcessorPil", "size": 384,
                                                   "image_mean": 0.5, "image_std": [0.5, 0.5, 0.5],
                                                   "rescale_factor": 0.00392156862745098, "do_normalize": True}))

    put("idempotency", "records", json.dumps({"records": [
        {"key": "k-1", "response": '{"loss":0.1,"policy_version":1,"model":"m"}'},
        {"key": "k-2", "response": '{"loss":0.2,"policy_version":2,"model":"m"}'}]}))
    put("idempotency", "empty", json.dumps({"records": []}))
    put("idempotency", "duplicate", json.dumps({"records": [{"key": "k", "response": "a"}, {"key": "k", "response": "b"}]}))


if __name__ == "__main__":
    main()

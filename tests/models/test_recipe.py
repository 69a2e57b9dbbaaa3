#!/usr/bin/env python3
"""models/shapes/recipe.py end to end at its smoke size (`make default-model`'s
code path in ~30 s instead of 2 h).

Every stage runs on 512 scenes with a handful of steps and a 64-entry
codebook (`--codebook`): the stages record what they did, the VQ stage
measures its round trip on 500 validation scenes through `dsr world
roundtrip` (so the exported checkpoint loads in dsr's C core), the codes use
no entry outside the codebook, and the exported checkpoint's config and
weights carry the codebook size.  `--restart vq --stop-after vq` then redoes
the VQ stage alone and leaves the later stages undone.

Needs Debian's python3-torch (run with /usr/bin/python3) and build/dsr.
Prints the usual closing line "N passed, N failed".
"""
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "models"))
import janus_torch as jt  # noqa: E402

RECIPE = os.path.join(ROOT, "models", "shapes", "recipe.py")
CODEBOOK = 64


def run(work, *extra):
    return subprocess.run([sys.executable, RECIPE, "--work", work, "--preset", "smoke", "--threads", "1",
                           "--codebook", str(CODEBOOK), *extra], capture_output=True, text=True, timeout=600)


def main():
    results = []

    def check(ok, what, detail=""):
        results.append(bool(ok))
        print(f"{'ok  ' if ok else 'FAIL'} {what}" + ("" if ok else f": {detail}"))

    if not os.path.exists(os.path.join(ROOT, "build", "dsr")):
        print("recipe: build/dsr is missing (run make first)")
        print("recipe: 0 passed, 1 failed")
        return 1
    with tempfile.TemporaryDirectory() as work:
        p = run(work)
        check(p.returncode == 0, "smoke recipe runs every stage", p.stdout[-2000:] + p.stderr[-2000:])
        stages = json.load(open(os.path.join(work, "stages.json"))) if p.returncode == 0 else {}
        check(list(stages) == ["tokenizer", "data", "vq", "codes", "lm", "export"], "stages recorded in order",
              list(stages))
        rt = stages.get("vq", {}).get("roundtrip_val", {})
        check(rt.get("n") == 500 and 0.0 <= rt.get("agree", -1) <= 1.0 and set(rt.get("by_kind", {})) ==
              {"position", "relation", "counting"}, "VQ round trip measured on 500 validation scenes", rt)
        distinct = stages.get("codes", {}).get("distinct_codes", 0)
        check(1 <= distinct <= CODEBOOK, f"codes use at most the {CODEBOOK} codebook entries", distinct)
        ck = os.path.join(work, "checkpoint")
        if p.returncode == 0:
            cfg = json.load(open(os.path.join(ck, "config.json")))
            check(cfg["vq_config"]["num_embeddings"] == CODEBOOK, "config.json carries --codebook",
                  cfg["vq_config"]["num_embeddings"])
            sd = jt.read_safetensors(os.path.join(ck, "model.safetensors"))
            book = [k for k in sd if k.endswith("quantize.embedding.weight")]
            check(len(book) == 1 and sd[book[0]].shape[0] == CODEBOOK, "the codebook tensor has --codebook rows",
                  [(k, tuple(sd[k].shape)) for k in book])
            head = sd.get("model.generation_head.vision_head.weight")
            emb = sd.get("model.generation_embeddings.weight")
            check(head is not None and emb is not None and head.shape[0] == CODEBOOK and emb.shape[0] == CODEBOOK,
                  "the generation head and embeddings cover --codebook codes",
                  (None if head is None else tuple(head.shape), None if emb is None else tuple(emb.shape)))
            for name in ("tokenizer.json", "generation_config.json", "preprocessor_config.json", "recipe.json"):
                check(os.path.exists(os.path.join(ck, name)), f"checkpoint has {name}")

        p = run(work, "--restart", "vq", "--stop-after", "vq")
        stages = json.load(open(os.path.join(work, "stages.json"))) if p.returncode == 0 else {}
        check(p.returncode == 0 and list(stages) == ["tokenizer", "data", "vq"],
              "--restart vq --stop-after vq redoes the VQ stage and stops", (p.returncode, list(stages)))
    passed = sum(results)
    print(f"recipe: {passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())

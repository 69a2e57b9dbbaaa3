#!/usr/bin/env python3
"""models/janus_torch.py against the golden fixtures (HF transformers, float64).

The default model's training recipe builds its networks from janus_torch; a
checkpoint it writes is only served correctly by dsrd if this module computes
what HF Janus (and so dsr's C core) computes.  Each case loads janus-tiny into
janus_torch and compares with tests/fixtures/janus-tiny/cases.safetensors at
1e-4 relative to the expected tensor's largest magnitude; codes exactly.

Needs Debian's python3-torch (run with /usr/bin/python3).  Prints the usual
closing line "N passed, N failed".
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "models"))
import janus_torch as jt  # noqa: E402

TINY = os.path.join(ROOT, "tests", "fixtures", "janus-tiny")
TOL = 1e-4


def load_tiny():
    cfg = json.load(open(os.path.join(TINY, "config.json")))
    m = jt.Janus(cfg)
    weights = jt.read_safetensors(os.path.join(TINY, "model.safetensors"))
    missing, unexpected = m.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise AssertionError(f"names differ from the HF checkpoint: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return m.eval()


def rel_err(got, want):
    return ((got.double() - want.double()).abs().max() / want.double().abs().max().clamp_min(1e-30)).item()


def main():
    torch.set_num_threads(2)
    m = load_tiny()
    c = jt.read_safetensors(os.path.join(TINY, "cases.safetensors"))
    results = []

    def check(name, got, want, exact=False):
        if exact:
            ok = torch.equal(got.long(), want.long())
            detail = "exact" if ok else f"{(got.long() != want.long()).sum().item()} differ"
        else:
            e = rel_err(got, want)
            ok = e <= TOL
            detail = f"rel err {e:.2e}"
        results.append(ok)
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")

    with torch.no_grad():
        ids = c["lm.input_ids"]
        logits = m.text_logits(m.hidden(m.token_rows(ids)))
        check("lm.logits", logits, c["lm.logits"])
        lp = logits[:, :-1].log_softmax(-1).gather(-1, ids[:, 1:, None])[..., 0]
        check("lm.logprobs", lp, c["lm.logprobs"])

        check("vision.last_hidden_state", m.model.vision_model(c["vision.pixel_values"]),
              c["vision.last_hidden_state"])
        check("vision.image_embeds", m.image_embeds(c["vision.pixel_values"]), c["vision.image_embeds"])

        ids = c["und.input_ids"]
        check("und.logits", m.text_logits(m.hidden(m.und_rows(ids, c["und.pixel_values"]))), c["und.logits"])

        vq = m.model.vqmodel
        px = c["vq.pixel_values"]
        check("vq.encoder_out", vq.encoder(px), c["vq.encoder_out"])
        z = vq.latents(px)
        check("vq.quant_in", z, c["vq.quant_in"])
        check("vq.codes_l2", vq.encode(px), c["vq.codes_l2"], exact=True)
        check("vq.decoded", vq.decode(c["vq.codes"]), c["vq.decoded"])
        check("vq.decoded_random", vq.decode(c["vq.random_codes"]), c["vq.decoded_random"])

        prompt, codes = c["gen.prompt_ids"], c["gen.codes"]
        rows = torch.cat([m.token_rows(prompt), m.code_rows(codes[:, :-1])], 1)
        hid = m.hidden(rows)[:, prompt.shape[1] - 1:]
        glogits = m.code_logits(hid)
        check("gen.logits", glogits, c["gen.logits"])
        glp = glogits.log_softmax(-1).gather(-1, codes[..., None])[..., 0]
        check("gen.logprobs", glp, c["gen.logprobs"])
        check("gen.r_u", glp.mean(-1), c["gen.r_u"])

        ids, start = c["rg.input_ids"], int(c["rg.target_start"][0])
        rlog = m.text_logits(m.hidden(m.und_rows(ids, c["rg.pixel_values"])))
        rlp = rlog[:, start - 1:-1].log_softmax(-1).gather(-1, ids[:, start:, None])[..., 0]
        check("rg.logprobs", rlp, c["rg.logprobs"])
        check("rg.r_g", rlp.mean(-1), c["rg.r_g"])

    # the writer round-trips (F32 exactly, BF16 as the fixture's BF16 copy)
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        sd = m.state_dict()
        jt.write_safetensors(os.path.join(d, "f32.safetensors"), sd)
        back = jt.read_safetensors(os.path.join(d, "f32.safetensors"))
        ok = set(back) == set(sd) and all(torch.equal(back[k], sd[k]) for k in sd)
        results.append(ok)
        print(f"{'ok  ' if ok else 'FAIL'} safetensors F32 round trip")
        jt.write_safetensors(os.path.join(d, "bf16.safetensors"), sd, bf16=True)
        mine = jt.read_safetensors(os.path.join(d, "bf16.safetensors"))
        ref = jt.read_safetensors(os.path.join(TINY, "model-bf16.safetensors"))
        ok = all(torch.equal(mine[k], ref[k]) for k in ref)
        results.append(ok)
        print(f"{'ok  ' if ok else 'FAIL'} BF16 rounding equals the fixture's BF16 weights")

    passed = sum(results)
    print(f"janus_torch: {passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())

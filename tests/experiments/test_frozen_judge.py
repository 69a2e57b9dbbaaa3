#!/usr/bin/env python3
"""experiments/dsr-shapes/frozen_judge.py, the frozen-judge reward command.

  protocol  each stdin line gets one stdout line, in order: {"reward"} from
            the server's /score, or {"error"} naming the problem (bad JSON,
            an unknown task, a missing image) without stopping the loop;
  items     the /score item of each task (a recording fake server);
  dsrd      against the real daemon on its embedded default model (when
            build/dsrd is built): a judge holding the same weights as the
            learner gives a caption exactly the R_U that /rollout's own
            score gave it (same data image, same caption), and a generated
            image exactly the R_G of /score on the same PNG, and /rollout's
            own R_G up to the PNG's 8-bit pixels (0.05 nats + 5%).
            (A caption's R_U is equal up to float32 summation order: /rollout
            scores its group as one batch, the judge one item at a time.)
Prints the usual closing line "N passed, N failed".
"""
import base64
import io
import json
import os
import sys
import tempfile

from checks import ROOT, check, finish
import frozen_judge  # noqa: E402  (checks put experiments/dsr-shapes on the path)
import evaluate as ev  # noqa: E402  (frozen_judge put models/shapes on the path)


class FakeServer:
    """Records /score bodies; answers reward = 10 × the call's number."""

    def __init__(self):
        self.bodies = []

    def call(self, path, body=None, timeout=600):
        assert path == "/score"
        self.bodies.append(body)
        return {"items": [{"reward": 10.0 * len(self.bodies)}]}


def judge(server, lines):
    out = io.StringIO()
    frozen_judge.serve(server, io.StringIO("".join(lines)), out)
    return [json.loads(l) for l in out.getvalue().splitlines()]


def test_protocol(tmp):
    png = os.path.join(tmp, "x.png")
    with open(png, "wb") as f:
        f.write(b"\x89PNG fake")
    b64 = base64.b64encode(b"\x89PNG fake").decode()
    srv = FakeServer()
    got = judge(srv, [json.dumps({"task": "understanding", "image": png, "caption": "a red circle"}) + "\n",
                      "not json\n",
                      "\n",
                      json.dumps({"task": "drawing", "image": png, "caption": "x"}) + "\n",
                      json.dumps({"task": "generation", "image": os.path.join(tmp, "missing.png"),
                                  "caption": "x"}) + "\n",
                      json.dumps({"task": "generation", "image": png, "caption": "a blue square"}) + "\n"])
    check(len(got) == 5, "one answer per non-empty line", got)
    check(got[0] == {"reward": 10.0} and got[4] == {"reward": 20.0}, "rewards from /score, in order", got)
    check(all("error" in g and g["error"].startswith("frozen judge:") for g in got[1:4]),
          "bad JSON, an unknown task and a missing image answer {error}", got[1:4])
    check("drawing" in got[2].get("error", ""), "the error names the bad task", got[2])
    check(srv.bodies == [
        {"items": [{"task": "understanding", "image": {"png": b64}, "response": {"text": "a red circle"}}]},
        {"items": [{"task": "generation", "prompt": {"text": "a blue square"}, "image": {"png": b64}}]}],
        "the /score items: R_U (image, caption as response), R_G (caption as prompt, image)", srv.bodies)


def test_dsrd(tmp):
    if not os.path.exists(os.path.join(ROOT, "build", "dsrd")):
        print("skip dsrd: build/dsrd not built")
        return
    proc, srv = ev.start_dsrd(None, 2)
    try:
        ev.dsr("world", "render", "--seed", "2", "-n", "1", "--out", tmp)
        scene = json.loads(open(os.path.join(tmp, "captions.jsonl")).readline())
        image = os.path.join(tmp, scene["file"])
        und = srv.call("/rollout", {"task": "understanding", "image": {"png": ev.png_b64(image)}, "n": 3,
                                    "max_tokens": 24, "seed": 5, "score": True})["rollouts"]
        gen = srv.call("/rollout", {"task": "generation", "prompt": {"text": scene["caption"]}, "n": 2, "seed": 5,
                                    "score": True, "return_png": True})["rollouts"]
        lines = [json.dumps({"task": "understanding", "image": image, "caption": r["text"]}) + "\n" for r in und]
        for i, r in enumerate(gen):
            path = os.path.join(tmp, f"gen{i}.png")
            with open(path, "wb") as f:
                f.write(base64.b64decode(r["png"]))
            lines.append(json.dumps({"task": "generation", "image": path, "caption": scene["caption"]}) + "\n")
        got = judge(srv, lines)
        want_u = [r["reward"] for r in und]
        got_u = [g.get("reward") for g in got[:3]]
        # equal up to float32 summation order: /rollout scores its group as one batch
        check(len(got_u) == 3 and all(isinstance(g, float) and abs(g - w) <= 1e-5 * abs(w)
                                      for g, w in zip(got_u, want_u)),
              "R_U: the judge's equals /rollout's own score (1e-5 relative)", (got_u, want_u))
        got_g = [g.get("reward") for g in got[3:]]
        # the same PNG scored directly (API.md's generation item, built here, not by frozen_judge)
        png_g = [srv.call("/score", {"items": [{"task": "generation", "prompt": {"text": scene["caption"]},
                                                "image": {"png": ev.png_b64(os.path.join(tmp, f"gen{i}.png"))}}]}
                          )["items"][0]["reward"] for i in range(len(gen))]
        check(len(got_g) == 2 and all(isinstance(g, float) and abs(g - w) <= 1e-5 * abs(w) + 1e-7
                                      for g, w in zip(got_g, png_g)),
              "R_G: the judge's equals /score of the same PNG (1e-5 relative)", (got_g, png_g))
        # against the learner's own score from the codes' float pixels: the PNG's 8-bit rounding
        # moves a mean log-prob by a fraction of itself (a failing image's R_G of -3 moved 0.064)
        want_g = [r["reward"] for r in gen]
        check(all(isinstance(g, float) and abs(g - w) < 0.05 + 0.05 * abs(w) for g, w in zip(got_g, want_g)),
              "R_G: the judge's from the PNG within 0.05 nats + 5% of /rollout's from the codes", (got_g, want_g))
    finally:
        proc.terminate()
        proc.wait()


def main():
    with tempfile.TemporaryDirectory() as tmp:
        test_protocol(tmp)
    with tempfile.TemporaryDirectory() as tmp:
        test_dsrd(tmp)
    return finish("frozen_judge")


if __name__ == "__main__":
    sys.exit(main())

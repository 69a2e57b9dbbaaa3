#!/usr/bin/env python3
"""The dual self-rewards from a frozen copy of the start checkpoint: a
`dsr-train --reward-cmd` grader that asks a second dsrd, one that never
follows the learner, for R_U and R_G.

dsr-train's reward-cmd protocol (README, `dsr-train --help`): one JSON line
per rollout on stdin, {"task": "understanding"|"generation", "image":
"/abs/path.png", "caption": TEXT} (understanding: the data image and the
sampled caption; generation: the generated image and the prompt); one line
back, {"reward": X}, or {"error": TEXT} (which stops the run).

  understanding  R_U = the judge's mean log-prob of the data image's VQ codes
                 given the caption (/score, task understanding);
  generation     R_G = the judge's mean log-prob of the prompt given the
                 generated image (/score, task generation, the image as PNG:
                 8-bit pixels, where the learner's own score reads the codes'
                 decoded float pixels).

Why: in the fourth study GRPO with the live self-rewards moved generation by
+4 points while the reward's ranking of the policy's own images against the
grader fell (pairwise AUC 0.88 -> 0.78); with the judge frozen the policy
cannot move the judge (RESULTS.md, fifth study).
"""
import argparse
import base64
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "models", "shapes"))
import evaluate as ev  # noqa: E402  (its Server: JSON over HTTP with retries)


def score_item(line):
    """The /score item for one protocol line (a dict), or raises ValueError."""
    task, image, caption = line.get("task"), line.get("image"), line.get("caption")
    if task not in ("understanding", "generation"):
        raise ValueError(f"task must be understanding or generation, not {task!r}")
    if not isinstance(image, str) or not isinstance(caption, str):
        raise ValueError("image (a path) and caption (text) are required")
    with open(image, "rb") as f:
        png = base64.b64encode(f.read()).decode()
    if task == "understanding":
        return {"task": "understanding", "image": {"png": png}, "response": {"text": caption}}
    return {"task": "generation", "prompt": {"text": caption}, "image": {"png": png}}


def serve(server, stdin, stdout):
    """Answers every line of stdin; returns 0 at its end."""
    for raw in stdin:
        if not raw.strip():
            continue
        try:
            item = score_item(json.loads(raw))
            reward = server.call("/score", {"items": [item]})["items"][0]["reward"]
            out = {"reward": reward}
        except (ValueError, OSError, RuntimeError, KeyError, IndexError, TypeError) as e:
            out = {"error": f"frozen judge: {e}"}
        stdout.write(json.dumps(out) + "\n")
        stdout.flush()
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", required=True, help="the judge's dsrd (never /reload-ed), e.g. http://127.0.0.1:8081")
    ap.add_argument("--api-key", default=os.environ.get("DSR_API_KEY"))
    args = ap.parse_args()
    return serve(ev.Server(args.server, args.api_key), sys.stdin, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())

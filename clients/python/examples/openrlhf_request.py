#!/usr/bin/env python3
"""Sends dsrd the request OpenRLHF's remote reward model makes.

OpenRLHF (0.11.0), started with ``--reward.remote_url
http://HOST:8080/openrlhf/reward --data.label_key image``, POSTs
``{"query": [...], "prompts": [...], "labels": [...]}`` where query[i] is
prompt + response (+ the EOS text) and labels[i] is the dataset's label
column (here: the image, as a base64 PNG/JPEG, a data: URI or a path under
dsrd's --image-root).  dsrd answers ``{"rewards": [...], "scores": [...],
"extra_logs": {...}, "errors": [...]}`` with R_U of each response for its
image; an item it cannot score has a null reward and an entry in errors.

    python3 openrlhf_request.py --url http://127.0.0.1:8080 \\
        --image cat.png --response "a cat on a sofa"

Prints the response JSON.  Exit status 1 on an API error or a null reward.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from dsr_client import Client, DsrError, png_label  # noqa: E402

PROMPT = "<|User|>: Describe this image.\n\n<|Assistant|>:"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default=os.environ.get("DSR_URL", "http://127.0.0.1:8080"))
    ap.add_argument("--api-key", default=os.environ.get("DSR_API_KEY"))
    ap.add_argument("--image", action="append", required=True,
                    help="local PNG file (repeat for a batch)")
    ap.add_argument("--response", action="append", required=True,
                    help="the policy's response for the matching --image")
    ap.add_argument("--prompt", default=PROMPT, help="prompt prefix of each query")
    ap.add_argument("--server-path", action="store_true",
                    help="send the image as a path under dsrd's --image-root "
                         "instead of inline base64")
    args = ap.parse_args(argv)
    if len(args.image) != len(args.response):
        ap.error("give one --response per --image")

    labels = [p if args.server_path else png_label(p) for p in args.image]
    queries = [args.prompt + " " + r for r in args.response]
    client = Client(args.url, api_key=args.api_key)
    try:
        out = client.openrlhf_reward(queries, [args.prompt] * len(queries), labels)
    except DsrError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    json.dump(out, sys.stdout, indent=2)
    print()
    for e in out.get("errors", []):
        print("error: item %d (%s): %s" % (e["index"], e["param"], e["message"]), file=sys.stderr)
    return 1 if out.get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""A stand-in for `dsr world grade --batch` in the dsr-train tests.

Reads {"task", "image", "caption"} lines on stdin and answers one line each:
  understanding -> {"reward": len(caption) / 10}
  generation    -> {"pass": size of the image file is even, "parsed": true}
With --log FILE every request is appended there with what was seen at the
time (file exists, absolute path, PNG signature, size) and the reward given.
--mode error | malformed | exit | silent  misbehaves on the --after'th request
(0-based): an {"error"} reply, a non-JSON line, exiting, or no reply at all.
"""
import json
import os
import sys
import time


def main():
    args = sys.argv[1:]
    opts = {"--log": None, "--mode": "ok", "--after": "0"}
    while args:
        opts[args[0]] = args[1]
        args = args[2:]
    after = int(opts["--after"])
    log = open(opts["--log"], "a") if opts["--log"] else None
    for k, line in enumerate(sys.stdin):
        req = json.loads(line)
        if k >= after and opts["--mode"] != "ok":
            mode = opts["--mode"]
            if mode == "error":
                print(json.dumps({"error": "cannot grade this one"}), flush=True)
                continue
            if mode == "malformed":
                print("this is not json", flush=True)
                continue
            if mode == "exit":
                sys.exit(3)
            if mode == "silent":
                time.sleep(60)
        path = req["image"]
        seen = {"exists": os.path.isfile(path), "abs": os.path.isabs(path)}
        if seen["exists"]:
            with open(path, "rb") as f:
                data = f.read()
            seen["png"] = data[:8] == b"\x89PNG\r\n\x1a\n"
            seen["size"] = len(data)
        if req["task"] == "understanding":
            reply = {"reward": len(req["caption"]) / 10.0}
        else:
            reply = {"pass": seen.get("size", 1) % 2 == 0, "parsed": True, "detected": []}
        if log:
            log.write(json.dumps({"request": req, "seen": seen, "reply": reply}) + "\n")
            log.flush()
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()

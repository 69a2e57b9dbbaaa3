#!/usr/bin/env python3
"""The web page in a real browser: Debian's chromium, headless, driven over
the DevTools protocol (tests/browser/cdp.py) against a real dsrd serving the
default model (dsr-shapes, compiled in) with --api-key and --admin-key.

Walks what a person would do: the page asks for the key; Generate a group
for a fixed seed (n images with R_G, the best marked, the same rewards the
API gives for that seed); open an image's heat-map; Describe it (captions
with R_U and coloured tokens), then a PNG picked from disk; Score it; watch
the Training tab move while updates are applied; read the Model tab.  A screenshot of each tab goes to
$DSR_TEST_OUT (default build/tests/ui-browser).  The page must log no
console error or exception and request nothing outside the daemon.

Prints "ok NAME" / "FAIL NAME" per step and "test_ui_browser: N passed, N failed".
"""

import json
import math
import os
import sys
import time
import traceback
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "clients", "python", "tests"))

import cdp  # noqa: E402
import dsrd  # noqa: E402  (starts the daemon under test; stopped at exit)

API_KEY, ADMIN_KEY = "ui-test-key", "ui-test-admin"
PROMPT, SEED, N = "a red circle to the left of a blue square", 7, 4


def api(d, method, path, body=None, key=API_KEY):
    req = urllib.request.Request(d.url + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)


def js_str(s: str) -> str:
    return json.dumps(s)


class Steps:
    def __init__(self, on_fail):
        self.passed = self.failed = 0
        self.broken = None  # the first failed step: later ones depend on it
        self.on_fail = on_fail  # called with the step's name: evidence of what the page showed

    def run(self, name, fn):
        if self.broken:
            print("FAIL %s\n  not run: step '%s' failed" % (name, self.broken), flush=True)
            self.failed += 1
            return
        t0 = time.monotonic()
        try:
            fn()
            print("ok   %s (%.1f s)" % (name, time.monotonic() - t0), flush=True)
            self.passed += 1
        except Exception as e:  # noqa: BLE001 — any failure is the step's
            print("FAIL %s\n  %s" % (name, e), flush=True)
            if not isinstance(e, (AssertionError, TimeoutError)):
                traceback.print_exc(file=sys.stdout)
            self.failed += 1
            self.broken = name
            try:
                self.on_fail(name)
            except Exception as e2:  # noqa: BLE001
                print("  (no evidence: %s)" % e2)


def main() -> int:
    out = os.environ.get("DSR_TEST_OUT") or os.path.join(REPO, "build", "tests", "ui-browser")
    os.makedirs(out, exist_ok=True)
    # one compute thread: the browser shares the machine, and two threads
    # meeting at barriers stall whenever it takes a core
    os.environ.setdefault("DSR_TEST_MODEL_ARGS", "--model builtin:shapes")
    d = dsrd.Dsrd("--api-key", API_KEY, "--admin-key", ADMIN_KEY, "--threads", "1").start()
    model = api(d, "GET", "/model")
    b = None
    try:
        b = cdp.Browser(os.path.join(out, "chromium.log"))
    except Exception as e:  # noqa: BLE001
        print("FAIL browser_start\n  %s" % e)
        print("test_ui_browser: 0 passed, 1 failed")
        return 1
    shot = lambda name: b.screenshot(os.path.join(out, name + ".png"))  # noqa: E731
    set_value = lambda id_, v: b.eval("document.getElementById(%s).value = %s, true" % (js_str(id_), js_str(str(v))))  # noqa: E731
    submit = lambda form: b.eval("document.getElementById(%s).requestSubmit(), true" % js_str(form))  # noqa: E731
    click = lambda sel: b.eval("document.querySelector(%s).click(), true" % js_str(sel))  # noqa: E731
    state = {}

    def evidence(name):
        shot("fail-" + name)
        lines = b.eval("[...document.querySelectorAll('.status-line')].map(e => e.id + ': ' + e.textContent)")
        print("  page status lines: %s\n  page problems: %s\n  screenshot: %s"
              % (lines, b.problems, os.path.join(out, "fail-" + name + ".png")))

    steps = Steps(evidence)

    def key_prompt_and_load():
        b.navigate(d.url + "/")
        b.wait_for("(document.getElementById('key-dialog') || {}).open", 30, "the page's API key dialog")
        set_value("key-input", API_KEY)
        click("#key-ok")
        name = b.wait_for("document.getElementById('status-model').textContent === %s && %s"
                          % (js_str(model["name"]), js_str(model["name"])), 30, "the model name in the header")
        assert name == model["name"]
        assert b.eval("sessionStorage.getItem('dsr.apiKey')") == API_KEY, "key not kept in the session"

    def generate():
        set_value("gen-prompt", PROMPT)
        set_value("gen-n", N)
        set_value("gen-seed", SEED)
        submit("gen-form")
        b.wait_for("document.querySelectorAll('#gen-grid .gen-card').length === %d && "
                   "!document.getElementById('gen-run').disabled" % N, 120, "%d generated images" % N)
        cards = b.eval("[...document.querySelectorAll('#gen-grid .gen-card')].map(c => ({"
                       "i: +c.dataset.index, reward: c.querySelector('.reward').textContent, best: c.classList.contains('best'),"
                       "loaded: c.querySelector('img').complete && c.querySelector('img').naturalWidth > 0}))")
        assert all(c["loaded"] for c in cards), "an image did not decode: %s" % cards
        assert sum(c["best"] for c in cards) == 1, "exactly one image is marked best: %s" % cards
        shown = [float(c["reward"].split()[1]) for c in cards]
        assert shown == sorted(shown, reverse=True), "not sorted by R_G: %s" % shown
        assert cards[0]["best"], "the best is not first"
        # the same group through the API: same seed, same rewards
        cfg = float(b.eval("document.getElementById('gen-cfg').value"))
        assert cfg == model["default_cfg_scale"], "CFG field %s, not the served %s" % (cfg, model["default_cfg_scale"])
        sampling = {}
        for field, key in (("temp", "default_temperature"), ("topk", "default_top_k"), ("topp", "default_top_p")):
            sampling[key] = float(b.eval("document.getElementById('gen-%s').value" % field))
            assert sampling[key] == model[key], "%s field %s, not the served %s" % (field, sampling[key], model[key])
        ref = api(d, "POST", "/rollout", {"task": "generation", "prompt": {"text": PROMPT}, "n": N, "cfg_scale": cfg,
                                          "temperature": sampling["default_temperature"],
                                          "top_k": int(sampling["default_top_k"]),
                                          "top_p": sampling["default_top_p"], "seed": SEED, "score": True})
        want = {i: r["reward"] for i, r in enumerate(ref["rollouts"])}
        for c in cards:
            got = float(c["reward"].split()[1])
            assert math.isclose(got, want[c["i"]], rel_tol=2e-3, abs_tol=1e-3), "image %d: page R_G %s, API %s" % (c["i"], got, want[c["i"]])
        b.wait_for("document.getElementById('gen-status').textContent.includes('R_G mean')", 10, "the group summary")
        shot("generate")

    def heatmap():
        click("#gen-grid .gen-card")
        b.wait_for("!!document.querySelector('#gen-detail canvas.heat-canvas')", 30, "the heat-map")
        colours = b.eval("""(() => { const c = document.querySelector('#gen-detail canvas.heat-canvas');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; const s = new Set();
            for (let i = 0; i < d.length; i += 4 * 97) s.add(d[i] + ',' + d[i+1] + ',' + d[i+2]); return s.size; })()""")
        assert colours > 4, "the heat-map canvas is flat (%s colours)" % colours
        shot("generate-heatmap")

    def describe():
        click("#gen-to-describe")
        b.wait_for("location.hash === '#describe' && !document.getElementById('tab-describe').hidden", 10, "the Describe tab")
        q = b.eval("document.getElementById('desc-question').value")
        assert q == model["templates"]["dual_question"], "question %r, not the model's dual question" % q
        set_value("desc-n", 3)
        set_value("desc-max", 16)
        set_value("desc-seed", SEED)
        submit("desc-form")
        b.wait_for("document.querySelectorAll('#desc-captions li.caption').length === 3 && "
                   "!document.getElementById('desc-run').disabled", 120, "3 captions")
        caps = b.eval("[...document.querySelectorAll('#desc-captions li.caption')].map(li => ({"
                      "reward: li.querySelector('.reward').textContent, tokens: li.querySelectorAll('.tok').length,"
                      "coloured: [...li.querySelectorAll('.tok')].every(t => t.style.background !== ''),"
                      "special: [...li.querySelectorAll('.tok.special')].map(t => t.textContent)}))")
        for c in caps:
            assert c["reward"].startswith("R_U ") and math.isfinite(float(c["reward"].split()[1])), "rewards: %s" % caps
            assert 1 <= c["tokens"] <= 16 and c["coloured"], "tokens: %s" % caps
        # special tokens by name (their DeepSeek spellings need glyphs few fonts have)
        specials = [x for c in caps for x in c["special"]]
        assert specials and all(x == "\u27e8eos\u27e9" for x in specials), "special tokens shown as %s" % specials
        rewards = [float(c["reward"].split()[1]) for c in caps]
        assert rewards == sorted(rewards, reverse=True), "captions not ranked by R_U: %s" % rewards
        shot("describe")

    def describe_upload():
        # the same tab with a PNG picked from disk instead
        png = os.path.join(REPO, "tests", "fixtures", "image-processing", "wide.png")
        b.set_files("#desc-drop input[type=file]", [png])
        b.wait_for("document.querySelector('#desc-drop p.muted').textContent.startsWith('wide.png')", 20,
                   "the picked file in the drop zone")
        set_value("desc-n", 2)
        submit("desc-form")
        b.wait_for("document.querySelectorAll('#desc-captions li.caption').length === 2 && "
                   "!document.getElementById('desc-run').disabled", 120, "2 captions of the picked PNG")
        st = b.eval("document.getElementById('desc-status').className")
        assert st.endswith("done"), "status %s: %s" % (st, b.eval("document.getElementById('desc-status').textContent"))

    def score():
        b.eval("location.hash = '#generate', true")
        b.wait_for("!document.getElementById('tab-generate').hidden", 10, "the Generate tab")
        click("#gen-to-score")
        b.wait_for("!document.getElementById('tab-score').hidden", 10, "the Score tab")
        text = b.eval("document.getElementById('score-text').value")
        assert text == PROMPT, "Score got text %r, not the prompt" % text
        submit("score-form")
        b.wait_for("document.querySelectorAll('#score-results .score-card').length === 2 && "
                   "!document.getElementById('score-run').disabled", 60, "both rewards")
        vals = b.eval("[...document.querySelectorAll('#score-results .score-card .big')].map(e => e.textContent)")
        assert len(vals) == 2 and all(math.isfinite(float(v)) for v in vals), "rewards shown: %s" % vals
        assert b.eval("!!document.querySelector('#score-results canvas.heat-canvas') && "
                      "document.querySelectorAll('#score-results .tok').length > 0"), "no heat-map or prompt tokens"
        shot("score")

    def training():
        b.eval("location.hash = '#training', true")
        b.wait_for("document.querySelectorAll('#train-charts figure').length === 5", 20, "the training charts")
        for step in range(3):
            gen = api(d, "POST", "/rollout", {"task": "generation", "prompt": {"text": PROMPT}, "n": 2, "seed": step,
                                              "score": True})
            und = api(d, "POST", "/rollout", {"task": "understanding", "image": {"codes": gen["rollouts"][0]["codes"]},
                                              "n": 2, "max_tokens": 8, "seed": step, "score": True})
            samples = [{"rollout_id": r["id"], "advantage": 1.0 if i == 0 else -1.0}
                       for rs in (gen["rollouts"], und["rollouts"]) for i, r in enumerate(rs)]
            up = api(d, "POST", "/update", {"algorithm": "grpo", "idempotency_key": str(uuid.uuid4()), "samples": samples,
                                            "hyper": {"lr": 1e-3}}, key=ADMIN_KEY)
            state["version"] = up["policy_version"]
        # the loss chart (2nd) has one point per update; the reward chart both directions
        b.wait_for("document.querySelector('#train-charts figure:nth-child(2)').dataset.points === '3'", 20,
                   "3 updates in the loss chart")
        pts = int(b.eval("document.querySelector('#train-charts figure:nth-child(1)').dataset.points"))
        assert pts >= 6, "reward chart has %d points, want both directions at 3 versions" % pts
        rows = b.eval("document.querySelectorAll('#train-table tr').length")
        assert rows == 4, "update table rows %s (header + 3)" % rows
        b.wait_for("document.getElementById('status-version').textContent === 'policy v%d'" % state["version"], 10,
                   "the header to show policy v%d" % state["version"])
        shot("training")

    def model_tab():
        b.eval("location.hash = '#model', true")
        b.wait_for("document.querySelectorAll('#model-view table').length >= 7", 10, "the model tables")
        text = b.eval("document.getElementById('model-view').textContent")
        for want in (model["name"], str(model["num_image_tokens"]), str(model["codebook_size"]), "gen_context",
                     "weights held as" + model["memory"]["weights_dtype"],
                     "rollout KV cache" + model["memory"]["kv_cache_dtype"], "/update trains"):
            assert want in text, "Model tab lacks %r" % want
        shot("model")

    def no_console_errors():
        b.eval("1")  # take in the last events
        # the page learns that a key is needed from 401s: the browser logs those
        expected = [p for p in b.problems if p.startswith("log (network)") and "status of 401" in p]
        bad = [p for p in b.problems if p not in expected]
        assert not bad, "the page logged:\n    " + "\n    ".join(bad)

    def no_external_requests():
        outside = [u for u in b.requests if not (u.startswith(d.url + "/") or u.startswith("data:") or u == "about:blank")]
        assert b.requests, "no request seen"
        assert not outside, "requests outside the daemon: %s" % outside

    try:
        steps.run("key_prompt_and_load", key_prompt_and_load)
        steps.run("generate_group_with_rewards", generate)
        steps.run("heatmap_of_codes", heatmap)
        steps.run("describe_generated_image", describe)
        steps.run("describe_picked_png", describe_upload)
        steps.run("score_image_and_text", score)
        steps.run("training_curves_move", training)
        steps.run("model_tab", model_tab)
        for name, check in (("no_console_errors", no_console_errors), ("no_external_requests", no_external_requests)):
            steps.broken = None  # these stand alone
            steps.run(name, check)
    finally:
        b.close()
        d.stop()

    def dsrd_exits_cleanly():
        # a crash, or a sanitizer report in the ASan build, is a non-zero exit
        assert d.proc.returncode == 0, "dsrd exit status %s; log tail:\n%s" % (d.proc.returncode, d.log_tail())

    steps.broken = None
    steps.run("dsrd_exits_cleanly", dsrd_exits_cleanly)
    print("  screenshots: %s" % out)
    print("test_ui_browser: %d passed, %d failed" % (steps.passed, steps.failed), flush=True)
    return 1 if steps.failed else 0


if __name__ == "__main__":
    sys.exit(main())

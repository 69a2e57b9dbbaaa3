"""Client against a live dsrd: every endpoint, auth, errors, images."""

import base64
import math
import os
import unittest
import uuid

import dsrd
from dsr_client import (Client, DsrAPIError, generation_item, images, png_label,
                        understanding_item)


def mean(xs):
    return sum(xs) / len(xs)


class ReadOnlyEndpoints(unittest.TestCase):
    """Calls that leave the weights alone, on the shared server."""

    @classmethod
    def setUpClass(cls):
        cls.server = dsrd.shared()
        cls.c = cls.server.client()
        cls.info = cls.c.model()

    def test_health(self):
        h = self.c.health()
        self.assertEqual(h["status"], "ok")
        self.assertIsInstance(h["model"], str)
        self.assertIsInstance(h["policy_version"], int)

    def test_model_special_ids(self):
        ids = self.info["special_tokens"]
        for key in ("bos", "eos", "pad", "boi", "eoi", "image"):
            self.assertIn(key, ids)
        self.assertEqual(ids["boi"], 259)
        self.assertEqual(ids["eoi"], 260)

    def test_metrics_is_prometheus_text(self):
        self.c.health()
        text = self.c.metrics()
        self.assertIn("# TYPE", text)
        self.assertIn("policy_version", text)

    def test_tokenize_roundtrip(self):
        toks = self.c.tokenize("a red circle")
        self.assertTrue(toks and all(isinstance(t, int) for t in toks))
        self.assertEqual(self.c.detokenize(toks), "a red circle")

    def test_logprobs_image_target(self):
        gen_ctx = self.c.tokenize("a red circle")
        ids = self._ids()
        ctx = [ids["bos"]] + gen_ctx + [ids["boi"]]
        codes = [5, 9, 31, 0, 77]
        out = self.c.logprobs([{"context": images.tokens(ctx), "target": images.codes(codes)}])
        item = out["items"][0]
        self.assertEqual(item["count"], len(codes))
        self.assertEqual(len(item["logprobs"]), len(codes))
        self.assertAlmostEqual(item["sum"], sum(item["logprobs"]), places=4)
        self.assertAlmostEqual(item["mean"], mean(item["logprobs"]), places=5)
        self.assertTrue(all(lp <= 0.0 for lp in item["logprobs"]))
        self.assertIn("policy_version", out)
        self.assertIn("model", out)

    def _ids(self):
        return self.info["special_tokens"]

    def test_score_understanding_is_mean_token_logprob(self):
        out = self.c.score([understanding_item(dsrd.image_bytes("wide.png"), "a red circle")],
                           token_logprobs=True)
        it = out["items"][0]
        self.assertEqual(it["count"], len(it["logprobs"]))
        self.assertAlmostEqual(it["reward"], mean(it["logprobs"]), places=5)
        self.assertTrue(math.isfinite(it["reward"]) and it["reward"] < 0)

    def test_image_forms_agree(self):
        """PNG bytes, a local path and a server path give one reward."""
        by_bytes = self.c.rewards_understanding([dsrd.image_bytes("tall.png")], ["a cat"])[0]
        by_file = self.c.rewards_understanding([dsrd.image_path("tall.png")], ["a cat"])[0]
        by_server = self.c.score([{"task": "understanding", "image": images.server_path("tall.png"),
                                   "response": images.text("a cat")}])["items"][0]["reward"]
        self.assertEqual(by_bytes, by_file)
        self.assertAlmostEqual(by_bytes, by_server, places=6)

    def test_score_generation(self):
        r = self.c.rewards_generation(["a red circle", "two dogs"],
                                      [images.codes(range(64)), dsrd.image_bytes("small.png")])
        self.assertEqual(len(r), 2)
        self.assertTrue(all(math.isfinite(x) and x < 0 for x in r))

    def test_rollout_understanding_deterministic_by_seed(self):
        req = dict(task="understanding", image=dsrd.image_bytes("square.png"),
                   question="Describe the image.", n=3, max_tokens=5, temperature=1.0, seed=7)
        a = self.c.rollout(req, score=True)
        b = self.c.rollout(req, score=True)
        self.assertEqual(len(a["rollouts"]), 3)
        for ra, rb in zip(a["rollouts"], b["rollouts"]):
            self.assertEqual(ra["tokens"], rb["tokens"])
            self.assertNotEqual(ra["id"], rb["id"])
            self.assertEqual(len(ra["logprobs"]), len(ra["tokens"]))
            self.assertLessEqual(len(ra["tokens"]), 5)
            self.assertIn("reward", ra)
            self.assertIsInstance(ra["text"], str)

    def test_rollout_generation_returns_png(self):
        out = self.c.rollout(task="generation", prompt="a red circle", n=1, cfg_scale=5.0,
                             seed=3, return_png=True, score=True)
        r = out["rollouts"][0]
        png = images.decode_png(r["png"])
        self.assertTrue(png.startswith(images.PNG_SIGNATURE))
        self.assertEqual(len(r["codes"]), len(r["logprobs"]))
        # The generated image can be fed straight back as an input.
        again = self.c.rewards_generation(["a red circle"], [png])
        self.assertTrue(math.isfinite(again[0]))

    def test_openrlhf_reward_is_r_u_of_response(self):
        prompt = "<|User|>: describe\n\n<|Assistant|>:"
        labels = [png_label(dsrd.image_bytes("wide.png")), png_label(dsrd.image_path("small.png"))]
        out = self.c.openrlhf_reward([prompt + " a red circle", prompt + " a blue square"],
                                     [prompt, prompt], labels)
        want = self.c.rewards_understanding([dsrd.image_bytes("wide.png"),
                                             dsrd.image_bytes("small.png")],
                                            [" a red circle", " a blue square"])
        self.assertEqual(len(out["rewards"]), 2)
        for got, w in zip(out["rewards"], want):
            self.assertAlmostEqual(got, w, places=6)
        self.assertEqual(len(out["scores"]), 2)
        self.assertIsInstance(out.get("extra_logs", {}), dict)


class Errors(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.c = dsrd.shared().client()

    def test_invalid_request_envelope(self):
        bad = {"task": "understanding", "image": {"png": "not base64 !!"},
               "response": {"text": "x"}}
        with self.assertRaises(DsrAPIError) as cm:
            self.c.request("POST", "/score",
                           {"items": [understanding_item(dsrd.image_bytes("wide.png"), "ok"), bad]},
                           request_id="req-test-1")
        e = cm.exception
        self.assertEqual(e.code, 400)
        self.assertEqual(e.type, "invalid_request")
        self.assertTrue(e.message)
        self.assertTrue(e.param and e.param.startswith("items[1]"), e.param)
        self.assertEqual(e.request_id, "req-test-1")
        self.assertEqual(e.attempts, 1, "4xx must not be retried")

    def test_not_found(self):
        with self.assertRaises(DsrAPIError) as cm:
            self.c.request("GET", "/no-such-endpoint")
        self.assertEqual((cm.exception.code, cm.exception.type), (404, "not_found"))

    @unittest.skipUnless(dsrd.has_route("POST /reload"), "dsrd has no POST /reload")
    def test_reload_missing_checkpoint(self):
        with self.assertRaises(DsrAPIError) as cm:
            self.c.reload("does-not-exist-" + uuid.uuid4().hex)
        self.assertIn(cm.exception.code, (400, 404))

    def test_image_helpers_reject_non_png(self):
        with self.assertRaises(ValueError):
            images.png_bytes(b"GIF89a....")
        with self.assertRaises(TypeError):
            images.image(3.5)


class Auth(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = dsrd.Dsrd("--api-key", "user-key", "--admin-key", "admin-key").start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_health_and_metrics_open(self):
        c = self.server.client()
        self.assertEqual(c.health()["status"], "ok")
        self.assertIn("# TYPE", c.metrics())

    def test_missing_and_wrong_key(self):
        for key in (None, "wrong"):
            with self.assertRaises(DsrAPIError) as cm:
                self.server.client(api_key=key).model()
            self.assertEqual((cm.exception.code, cm.exception.type), (401, "unauthorized"))

    @unittest.skipUnless(dsrd.has_route("POST /checkpoint"), "dsrd has no POST /checkpoint")
    def test_api_key_is_not_admin(self):
        c = self.server.client(api_key="user-key")
        self.assertIn("boi", str(c.model()))
        with self.assertRaises(DsrAPIError) as cm:
            c.checkpoint("by-user")
        self.assertEqual(cm.exception.code, 401)

    @unittest.skipUnless(dsrd.has_route("POST /checkpoint"), "dsrd has no POST /checkpoint")
    def test_admin_key_checkpoints(self):
        c = self.server.client(api_key="user-key", admin_key="admin-key")
        out = c.checkpoint("by-admin")
        self.assertTrue(out["path"].endswith("by-admin"))
        path = os.path.join(dsrd.REPO, out["path"])  # dsrd runs in REPO
        self.assertTrue(os.path.isfile(os.path.join(path, "model.safetensors")))


@unittest.skipUnless(all(dsrd.has_route(r) for r in ("POST /update", "POST /checkpoint",
                                                      "POST /reload")),
                     "dsrd has no /update, /checkpoint or /reload")
class Training(unittest.TestCase):
    """update / checkpoint / reload on a server of its own."""

    @classmethod
    def setUpClass(cls):
        cls.server = dsrd.Dsrd().start()
        cls.c = cls.server.client()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_update_checkpoint_reload(self):
        c = self.c
        v0 = c.health()["policy_version"]
        ro = c.rollout(task="understanding", image=dsrd.image_bytes("wide.png"),
                       question="Describe the image.", n=2, max_tokens=4, seed=1)
        ids = [r["id"] for r in ro["rollouts"]]
        req = {"algorithm": "grpo", "idempotency_key": str(uuid.uuid4()),
               "samples": [{"rollout_id": ids[0], "advantage": 1.0},
                           {"rollout_id": ids[1], "advantage": 0.5}],
               "hyper": {"lr": 1e-3}}
        first = c.update(req)
        self.assertEqual(first["policy_version"], v0 + 1)
        self.assertTrue(math.isfinite(first["loss"]) and first["grad_norm"] >= 0)
        again = c.update(req)  # same idempotency key: no second step
        self.assertEqual(again, first)
        self.assertEqual(c.health()["policy_version"], v0 + 1)

        item = understanding_item(dsrd.image_bytes("tall.png"), "a cat")
        r_after = c.score([item])["items"][0]["reward"]
        ck = c.checkpoint("step-1")
        self.assertEqual(ck["policy_version"], v0 + 1)

        # Another step moves the weights; reloading step-1 restores them.
        c.update({"algorithm": "grpo",
                  "samples": [{"rollout_id": ids[0], "advantage": -1.0},
                              {"rollout_id": ids[1], "advantage": -0.5}],
                  "hyper": {"lr": 1e-2}})
        self.assertEqual(c.health()["policy_version"], v0 + 2)
        self.assertNotEqual(c.score([item])["items"][0]["reward"], r_after)
        back = c.reload("step-1")
        self.assertEqual(back["policy_version"], v0 + 1)
        self.assertEqual(c.health()["policy_version"], v0 + 1)
        self.assertAlmostEqual(c.score([item])["items"][0]["reward"], r_after, places=6)


if __name__ == "__main__":
    unittest.main()

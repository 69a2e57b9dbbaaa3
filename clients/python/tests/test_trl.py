"""The TRL reward adapter returns exactly /score's R_U, sync and async."""

import asyncio
import inspect
import io
import pickle
import unittest

import dsrd
from dsr_client import images, understanding_item
from dsr_client.trl import (GenerationReward, UnderstandingReward,
                            async_understanding_reward, completion_text)

NAMES = ["wide.png", "tall.png", "small.png", "square.png", "wide.png"]
CAPTIONS = ["a red circle", "a tall tower", "two small dots", "a grey square", "wide sky"]


class FakePILImage:
    """Duck-types the part of PIL.Image the adapter uses (save + size), so the
    PIL path is tested without Pillow installed."""

    def __init__(self, png):
        self.png = png
        self.size = (1, 1)
        self.mode = "RGB"

    def save(self, fp, format=None):
        assert format == "PNG"
        fp.write(self.png)


class TRLAdapter(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.client = dsrd.shared().client()
        items = [understanding_item(dsrd.image_bytes(n), c) for n, c in zip(NAMES, CAPTIONS)]
        cls.want = [it["reward"] for it in cls.client.score(items)["items"]]

    def assertRewards(self, got):
        self.assertEqual(len(got), len(self.want))
        for g, w in zip(got, self.want):
            self.assertIsInstance(g, float)
            self.assertAlmostEqual(g, w, places=6)

    def test_plain_completions_png_bytes(self):
        f = UnderstandingReward(self.client)
        self.assertEqual(f.__name__, "dsr_r_u")
        got = f(prompts=["p"] * 5, completions=CAPTIONS,
                image=[dsrd.image_bytes(n) for n in NAMES], completion_ids=[[1]] * 5)
        self.assertRewards(got)

    def test_conversational_completions_and_paths(self):
        f = UnderstandingReward(self.client, image_column="picture", name="r_u")
        convo = [[{"role": "assistant", "content": c}] for c in CAPTIONS]
        convo[1] = [{"role": "assistant", "content": [{"type": "text", "text": CAPTIONS[1]}]}]
        got = f(prompts=[[{"role": "user", "content": "describe"}]] * 5, completions=convo,
                picture=[dsrd.image_path(n) for n in NAMES])
        self.assertRewards(got)
        self.assertEqual(f.__name__, "r_u")

    def test_mixed_image_cells_and_batches(self):
        cells = [{"bytes": dsrd.image_bytes(NAMES[0]), "path": None},   # datasets Image cell
                 [dsrd.image_path(NAMES[1])],                          # TRL "images" list
                 FakePILImage(dsrd.image_bytes(NAMES[2])),             # PIL-like
                 images.png_file(dsrd.image_path(NAMES[3])),           # wire object
                 {"bytes": None, "path": dsrd.image_path(NAMES[4])}]
        f = UnderstandingReward(self.client, batch_size=2, max_workers=3)
        try:
            self.assertRewards(f(prompts=None, completions=CAPTIONS, image=cells))
        finally:
            f.close()

    def test_async_function(self):
        fn = async_understanding_reward(self.client, batch_size=2, max_workers=2)
        self.assertTrue(inspect.iscoroutinefunction(fn))
        self.assertEqual(fn.__name__, "dsr_r_u")

        async def run():
            # Two calls in flight at once, as an async pipeline would issue.
            a, b = await asyncio.gather(
                fn(prompts=["p"] * 5, completions=CAPTIONS,
                   image=[dsrd.image_bytes(n) for n in NAMES]),
                fn(prompts=["p"] * 5, completions=CAPTIONS,
                   image=[dsrd.image_path(n) for n in NAMES]))
            return a, b

        a, b = asyncio.run(run())
        fn.reward.close()
        self.assertRewards(a)
        self.assertRewards(b)

    def test_acall_on_object(self):
        f = UnderstandingReward(self.client, batch_size=3)
        got = asyncio.run(f.acall(completions=CAPTIONS,
                                  image=[dsrd.image_bytes(n) for n in NAMES]))
        f.close()
        self.assertRewards(got)

    def test_missing_or_short_column(self):
        f = UnderstandingReward(self.client)
        with self.assertRaises(KeyError):
            f(prompts=["p"], completions=["x"], images=[dsrd.image_bytes("wide.png")])
        with self.assertRaises(ValueError):
            f(prompts=["p"] * 2, completions=["x", "y"], image=[dsrd.image_bytes("wide.png")])
        # a cell with two images is a bad item, not a bad call
        self.assertEqual(f(completions=["x"], image=[[dsrd.image_bytes("wide.png")] * 2]), [None])
        with self.assertRaises(ValueError):
            UnderstandingReward(self.client, on_error="raise")(
                completions=["x"], image=[[dsrd.image_bytes("wide.png")] * 2])

    def test_picklable(self):
        f = UnderstandingReward(self.client)
        f(completions=CAPTIONS[:1], image=[dsrd.image_bytes(NAMES[0])])
        g = pickle.loads(pickle.dumps(f))
        self.assertEqual(g.__name__, f.__name__)
        self.assertAlmostEqual(g(completions=CAPTIONS[:1], image=[dsrd.image_bytes(NAMES[0])])[0],
                               self.want[0], places=6)


class GRPOTrainerCall(unittest.TestCase):
    """Called exactly as TRL's GRPOTrainer._calculate_rewards calls a reward
    function (TRL 1.10.0.dev0, commit f2cd577): prompts, completions,
    completion_ids, every other dataset column, trainer_state, log_extra and
    log_metric as keyword arguments; a None reward becomes NaN there."""

    @classmethod
    def setUpClass(cls):
        cls.client = dsrd.shared().client()
        items = [understanding_item(dsrd.image_bytes(n), c) for n, c in zip(NAMES, CAPTIONS)]
        cls.want = [it["reward"] for it in cls.client.score(items)["items"]]

    def trl_call(self, f, completions, columns):
        self.metrics, self.extra = {}, {}
        inputs = [dict({"prompt": [{"role": "user", "content": "Describe the image."}]},
                       **{k: v[i] for k, v in columns.items()}) for i in range(len(completions))]
        keys = [k for k in inputs[0] if k not in ["prompt", "completion", "completion_ids"]]
        reward_kwargs = {key: [example[key] for example in inputs] for key in keys}
        reward_kwargs["trainer_state"] = object()
        reward_kwargs["log_extra"] = lambda column, values: self.extra.setdefault(column, []).extend(values)
        reward_kwargs["log_metric"] = lambda name, value: self.metrics.setdefault(name, []).append(value)
        prompts = [example["prompt"] for example in inputs]
        completion_ids_list = [[1, 2, 3]] * len(completions)
        out = f(prompts=prompts, completions=completions, completion_ids=completion_ids_list,
                **reward_kwargs)
        # GRPOTrainer: [reward if reward is not None else torch.nan for reward in output]
        return [r if r is not None else float("nan") for r in out], out

    def test_corrupt_image_is_none_not_an_exception(self):
        cells = [dsrd.image_bytes(n) for n in NAMES]
        cells[2] = b"\x89PNG\r\n\x1a\n" + b"\0" * 40          # corrupt PNG: the server says 400
        cells[4] = b"GIF89a-not-an-image"                         # not an image: refused locally
        convo = [[{"role": "assistant", "content": c}] for c in CAPTIONS]
        f = UnderstandingReward(self.client, batch_size=8)
        with self.assertLogs("dsr_client.trl", level="WARNING") as logs:
            nan_filled, raw = self.trl_call(f, convo, {"image": cells, "solution": ["s"] * 5})
        self.assertIsNone(raw[2])
        self.assertIsNone(raw[4])
        for i in (0, 1, 3):
            self.assertAlmostEqual(raw[i], self.want[i], places=6)
        self.assertIn("2 of 5", logs.output[0])
        errs = self.extra["dsr_r_u_error"]
        self.assertEqual(len(errs), 5)
        self.assertIn("items[", errs[2])
        self.assertTrue(errs[4] and not errs[0])
        self.assertEqual(self.metrics["dsr_r_u/failed"], [2.0])
        self.assertEqual(self.metrics["dsr/policy_version"], [0.0])
        self.assertAlmostEqual(self.metrics["dsr_r_u/mean"][0],
                               sum(self.want[i] for i in (0, 1, 3)) / 3, places=6)

    def test_dead_server_gives_none(self):
        dead = type(self.client)("http://127.0.0.1:9", retries=1, backoff=0.01, timeout=2)
        f = UnderstandingReward(dead)
        with self.assertLogs("dsr_client.trl", level="WARNING"):
            _, raw = self.trl_call(f, CAPTIONS, {"image": [dsrd.image_bytes(n) for n in NAMES]})
        self.assertEqual(raw, [None] * 5)
        self.assertEqual(self.metrics["dsr_r_u/failed"], [5.0])
        with self.assertRaises(Exception):
            self.trl_call(UnderstandingReward(dead, on_error="raise"), CAPTIONS,
                          {"image": [dsrd.image_bytes(n) for n in NAMES]})

    def test_generation_reward_is_r_g(self):
        prompts = ["a red circle", "a tall tower", "two small dots"]
        imgs = [dsrd.image_bytes(n) for n in NAMES[:3]]
        want = self.client.rewards_generation(prompts, imgs)
        f = GenerationReward(self.client)
        self.assertEqual(f.__name__, "dsr_r_g")
        convo = [[{"role": "system", "content": "draw"}, {"role": "user", "content": p}] for p in prompts]
        got = f(prompts=convo, completions=imgs + [], completion_ids=[[0]] * 3,
                trainer_state=None, log_metric=lambda n, v: None, log_extra=lambda c, v: None)
        for g, w in zip(got, want):
            self.assertAlmostEqual(g, w, places=6)
        # or the image from a column, with one corrupt cell
        g2 = GenerationReward(self.client, image_column="generated")(
            prompts=prompts, completions=["", "", ""], generated=[imgs[0], b"junk", imgs[2]])
        self.assertAlmostEqual(g2[0], want[0], places=6)
        self.assertIsNone(g2[1])
        self.assertAlmostEqual(g2[2], want[2], places=6)


class CompletionText(unittest.TestCase):

    def test_forms(self):
        self.assertEqual(completion_text("x"), "x")
        self.assertEqual(completion_text([{"role": "assistant", "content": "a"},
                                          {"role": "tool", "content": "ignored"},
                                          {"role": "assistant", "content": "b"}]), "ab")
        self.assertEqual(completion_text({"role": "assistant", "content": None}), "")
        parts = [{"type": "image"}, {"type": "text", "text": "cap"}]
        self.assertEqual(completion_text([{"role": "assistant", "content": parts}]), "cap")
        with self.assertRaises(TypeError):
            completion_text(42)

    def test_pil_duck_type_is_png(self):
        png = dsrd.image_bytes("small.png")
        self.assertEqual(images.image(FakePILImage(png)), images.png_bytes(png))
        self.assertEqual(io.BytesIO(png).read(8), images.PNG_SIGNATURE)


if __name__ == "__main__":
    unittest.main()

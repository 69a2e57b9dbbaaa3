"""The TRL reward adapter returns exactly /score's R_U, sync and async."""

import asyncio
import inspect
import io
import pickle
import unittest

import dsrd
from dsr_client import images, understanding_item
from dsr_client.trl import (UnderstandingReward, async_understanding_reward,
                            completion_text)

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
        with self.assertRaises(ValueError):
            f(completions=["x"], image=[[dsrd.image_bytes("wide.png")] * 2])

    def test_picklable(self):
        f = UnderstandingReward(self.client)
        f(completions=CAPTIONS[:1], image=[dsrd.image_bytes(NAMES[0])])
        g = pickle.loads(pickle.dumps(f))
        self.assertEqual(g.__name__, f.__name__)
        self.assertAlmostEqual(g(completions=CAPTIONS[:1], image=[dsrd.image_bytes(NAMES[0])])[0],
                               self.want[0], places=6)


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

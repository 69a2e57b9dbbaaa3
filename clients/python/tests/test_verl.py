"""verl's compute_score called as verl calls it (verl 0.8.0.dev, commit
b178a3c): NaiveRewardManager / the reward loop call
compute_score(data_source=, solution_str=, ground_truth=, extra_info=) per
sample (reward_kwargs merged in by get_custom_reward_fn), the batch manager
calls compute_score(data_sources=, solution_strs=, ground_truths=,
extra_infos=, **reward_kwargs) once, and both use result["score"] and
collect every key of the dict into reward_extra_info."""

import base64
import unittest
from collections import defaultdict
from functools import partial

import dsrd
from dsr_client import DsrError, understanding_item
from dsr_client import verl

NAMES = ["wide.png", "tall.png", "small.png"]
CAPTIONS = ["a red circle", "a tall tower", "two small dots"]


def _call_with_kwargs(raw_fn, extra_kwargs, *args, **kwargs):
    # verl.trainer.ppo.reward._call_with_kwargs: reward_kwargs take precedence
    return raw_fn(*args, **{**kwargs, **extra_kwargs})


class VerlComputeScore(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = dsrd.shared()
        items = [understanding_item(dsrd.image_bytes(n), c) for n, c in zip(NAMES, CAPTIONS)]
        cls.want = [it["reward"] for it in cls.server.client().score(items)["items"]]
        cls.reward_kwargs = {"dsr_url": cls.server.url}

    def test_naive_manager_per_sample(self):
        compute_score = partial(_call_with_kwargs, verl.compute_score, self.reward_kwargs)
        reward_extra_info = defaultdict(list)
        b64 = base64.b64encode(dsrd.image_bytes(NAMES[1])).decode()
        samples = [  # image in extra_info, a list there, or as ground_truth
            ("dsr", CAPTIONS[0], "unused", {"image": dsrd.image_bytes(NAMES[0]), "num_turns": None,
                                            "rollout_reward_scores": {}}),
            ("dsr", CAPTIONS[1], b64, {"num_turns": None, "rollout_reward_scores": {}}),
            ("dsr", CAPTIONS[2], None, {"image": [dsrd.image_path(NAMES[2])]}),
        ]
        for i, (ds, sol, gt, extra) in enumerate(samples):
            score = compute_score(data_source=ds, solution_str=sol, ground_truth=gt, extra_info=extra)
            reward = score["score"]
            for key, value in score.items():
                reward_extra_info[key].append(value)
            self.assertAlmostEqual(reward, self.want[i], places=6)
        self.assertEqual(reward_extra_info["dsr_failed"], [0, 0, 0])
        self.assertEqual(reward_extra_info["policy_version"], [0, 0, 0])

    def test_batch_manager_one_call(self):
        compute_score = partial(_call_with_kwargs, verl.compute_score_batch, self.reward_kwargs)
        before = self._score_calls()
        scores = compute_score(data_sources=["dsr"] * 3, solution_strs=CAPTIONS,
                               ground_truths=[None] * 3,
                               extra_infos=[{"image": dsrd.image_bytes(n), "rollout_reward_scores": {}}
                                            for n in NAMES])
        for s, w in zip(scores, self.want):
            self.assertAlmostEqual(s["score"], w, places=6)
        self.assertEqual({frozenset(s) for s in scores}, {frozenset(scores[0])})
        self.assertEqual(self._score_calls(), before + 1)

    def _score_calls(self):
        for line in self.server.client().metrics().splitlines():
            if line.startswith('dsr_requests_total{route="/score",status="200"}'):
                return float(line.split()[-1])
        return 0.0

    def test_bad_sample(self):
        kw = dict(self.reward_kwargs)
        extra = [{"image": dsrd.image_bytes(NAMES[0])}, {"image": b"\x89PNG\r\n\x1a\n" + b"\0" * 30},
                 {"nothing": 1}]
        with self.assertRaises(DsrError):
            verl.compute_score_batch(["d"] * 3, CAPTIONS, [None] * 3, extra, **kw)
        out = verl.compute_score_batch(["d"] * 3, CAPTIONS, [None] * 3, extra, error_score=0.0, **kw)
        self.assertAlmostEqual(out[0]["score"], self.want[0], places=6)
        self.assertEqual([o["dsr_failed"] for o in out], [0, 1, 1])
        self.assertEqual([o["score"] for o in out[1:]], [0.0, 0.0])


if __name__ == "__main__":
    unittest.main()

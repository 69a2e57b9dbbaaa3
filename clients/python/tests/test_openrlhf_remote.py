"""OpenRLHF's remote reward call, reproduced as its current code makes it.

Mirrors OpenRLHF 0.11.0 (commit 3c3be62), openrlhf/utils/agent.py:
SingleTurnAgentExecutor.execute builds query = hf_tokenizer.decode(prompt ids
+ response ids, skip_special_tokens=False) and calls
_fetch_rewards_via_http([query], [prompt], [label]), which splits the lists
over every --reward.remote_url (comma-separated) in chunks of
ceil(n / n_urls) -- so a second URL gets empty lists -- POSTs each chunk as
JSON (5 tries, raise_for_status, then RuntimeError), and takes the first
answer's "rewards" (or "scores") and "extra_logs";
samples_generator._process_response_into_experience then makes
torch.tensor([value]) of every extra_logs value.  aiohttp is replaced by
urllib on threads (standard library only); the HTTP exchange is the same
(POST, Content-Type: application/json, JSON body)."""

import asyncio
import json
import math
import unittest
import urllib.request

import dsrd
from dsr_client import png_label, understanding_item

PROMPT = "<|User|>: Describe this image.\n\n<|Assistant|>:"


def _post_request(url, data, try_max_times=5):
    last = None
    for _ in range(try_max_times):
        try:
            req = urllib.request.Request(url, data=json.dumps(data).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=180) as response:  # raise_for_status
                return json.loads(response.read())
        except Exception as e:  # OpenRLHF logs and sleeps 1 s; kept short here
            last = e
    raise RuntimeError("Request error for %d times, returning None. (%s)" % (try_max_times, last))


async def fetch_rewards_via_http(reward_endpoints, queries_list, prompts_list, labels_list):
    num_servers = len(reward_endpoints)
    batch_size = (len(queries_list) + num_servers - 1) // num_servers
    tasks = []
    for i, rm in enumerate(reward_endpoints):
        start_idx = i * batch_size
        end_idx = min((i + 1) * batch_size, len(queries_list))
        payload = {"query": queries_list[start_idx:end_idx],
                   "prompts": prompts_list[start_idx:end_idx],
                   "labels": labels_list[start_idx:end_idx]}
        tasks.append(asyncio.create_task(asyncio.to_thread(_post_request, rm, payload)))
    return await asyncio.gather(*tasks)


def tensor_like(value):
    """What torch.tensor([value]) accepts: numbers, (nested) lists of numbers."""
    if isinstance(value, list):
        return all(tensor_like(v) for v in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class OpenRLHFRemoteReward(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = dsrd.shared()
        cls.client = cls.server.client()
        eos = cls.client.model()["special_tokens"]["eos"]
        cls.eos_text = cls.client.request("POST", "/detokenize",
                                          {"tokens": [eos], "skip_special": False})["text"]

    def execute(self, remote_rm_url, prompt, response, label):
        """SingleTurnAgentExecutor.execute's reward part, for one sample."""
        reward_endpoints = remote_rm_url.split(",")
        query = prompt + response + self.eos_text  # decode(..., skip_special_tokens=False)
        rewards_info_list = asyncio.run(
            fetch_rewards_via_http(reward_endpoints, [query], [prompt], [label]))
        rewards_info = rewards_info_list[0] if rewards_info_list else None
        score_value = rewards_info.get("scores")
        if score_value is None:
            score_value = rewards_info.get("rewards")
        extra_logs = rewards_info.get("extra_logs") or {}
        for key, value in extra_logs.items():
            self.assertTrue(tensor_like(value), "extra_logs[%r] = %r" % (key, value))
        return rewards_info.get("rewards"), score_value, rewards_info_list

    def test_batch_split_over_two_urls(self):
        url = self.server.url + "/openrlhf/reward"
        for name, caption in (("wide.png", " a red circle"), ("small.png", " two dots")):
            label = png_label(dsrd.image_bytes(name))
            want = self.client.score([understanding_item(dsrd.image_bytes(name), caption)])["items"][0]["reward"]
            reward, score, answers = self.execute(url + "," + url, PROMPT, caption, label)
            self.assertEqual(len(answers), 2)
            self.assertEqual(answers[1]["rewards"], [])        # the empty half: 200, not 400
            self.assertEqual(len(reward), 1)
            self.assertIsNotNone(reward[0])
            self.assertTrue(math.isfinite(reward[0]))
            self.assertAlmostEqual(reward[0], want, places=5)  # EOS text not scored
            self.assertEqual(score, reward)

    def test_image_column_labels(self):
        url = self.server.url + "/openrlhf/reward"
        raw = dsrd.image_bytes("tall.png")
        import base64
        uri = "data:image/png;base64," + base64.b64encode(raw).decode()
        want = self.client.score([understanding_item(raw, " a tower")])["items"][0]["reward"]
        for label in ([uri], uri, "tall.png"):
            reward, _, _ = self.execute(url + "," + url, PROMPT, " a tower", label)
            self.assertAlmostEqual(reward[0], want, places=5)


if __name__ == "__main__":
    unittest.main()

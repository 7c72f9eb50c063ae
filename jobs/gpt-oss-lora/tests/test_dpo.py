"""The GPT-OSS trainer's DPO parts that need no GPU: the loss, the pairing of prompt and answers into token rows,
the DPO line shape, and beta from the spec."""

import json
import math
import os
import tempfile
import unittest

from loraplane_trainer import data, dpo, lora_config
from loraplane_trainer.contract import TrainerError

from .helpers import valid_spec


def dpo_line(preferred="Refund.", rejected="Shipping.", **over):
    row = {
        "input": {"messages": [{"role": "system", "content": "Classify."}, {"role": "user", "content": "money back please"}]},
        "preferred_output": [{"role": "assistant", "content": preferred}],
        "non_preferred_output": [{"role": "assistant", "content": rejected}],
    }
    row.update(over)
    return json.dumps(row)


class DpoLossTest(unittest.TestCase):
    def test_is_log2_at_no_margin_and_falls_as_the_policy_prefers_the_chosen_answer(self):
        loss, right = dpo.dpo_loss(-5.0, -5.0, -5.0, -5.0, 0.1)
        self.assertAlmostEqual(loss, math.log(2), places=12)
        self.assertFalse(right)
        better, right = dpo.dpo_loss(-4.0, -7.0, -5.0, -5.0, 0.1)  # margin 0.1 * (1 - (-2)) = 0.3
        self.assertAlmostEqual(better, math.log1p(math.exp(-0.3)), places=12)
        self.assertTrue(right)
        worse, _ = dpo.dpo_loss(-7.0, -4.0, -5.0, -5.0, 0.1)
        self.assertGreater(worse, math.log(2))

    def test_is_relative_to_the_reference_and_scaled_by_beta(self):
        # The same policy numbers against a reference that already preferred the chosen answer: no gain.
        self.assertAlmostEqual(dpo.dpo_loss(-4.0, -7.0, -4.0, -7.0, 0.1)[0], math.log(2), places=12)
        self.assertLess(dpo.dpo_loss(-4.0, -7.0, -5.0, -5.0, 1.0)[0], dpo.dpo_loss(-4.0, -7.0, -5.0, -5.0, 0.1)[0])
        self.assertAlmostEqual(dpo.dpo_loss(100.0, -100.0, 0.0, 0.0, 1.0)[0], 0.0, places=12)  # no overflow

    def test_beta_comes_from_the_spec_with_openais_default(self):
        spec = valid_spec(method="dpo")
        self.assertEqual(dpo.beta_of(spec), 0.1)
        spec["hyperparameters"]["beta"] = 0.3
        self.assertEqual(dpo.beta_of(spec), 0.3)

    def test_rpo_alpha_adds_the_chosen_answers_mean_token_nll(self):
        spec = valid_spec(method="dpo")
        self.assertEqual(dpo.rpo_alpha_of(spec), 0.0)
        spec["hyperparameters"]["rpo_alpha"] = 1.0
        self.assertEqual(dpo.rpo_alpha_of(spec), 1.0)
        pure, right = dpo.dpo_loss(-4.0, -7.0, -5.0, -5.0, 0.1)
        anchored, right2 = dpo.dpo_loss(-4.0, -7.0, -5.0, -5.0, 0.1, rpo_alpha=0.5, chosen_tokens=2)
        self.assertAlmostEqual(anchored, pure + 0.5 * 4.0 / 2, places=12)  # + alpha * NLL / tokens
        self.assertEqual(right, right2)  # the anchor does not change which answer the pair prefers


class DpoRowsTest(unittest.TestCase):
    def test_pairs_share_the_prompt_and_label_only_the_answers(self):
        encode = lambda text: [ord(c) for c in text]  # noqa: E731
        rows, tokens = dpo.tokenize_pairs([{"prompt": "PP", "chosen": "yes", "rejected": "no"}], encode)
        self.assertEqual(rows[0]["chosen_ids"], [80, 80, 121, 101, 115])
        self.assertEqual(rows[0]["chosen_labels"], [-100, -100, 121, 101, 115])
        self.assertEqual(rows[0]["rejected_labels"], [-100, -100, 110, 111])
        self.assertEqual(tokens, 9)

    def test_long_prompts_are_cut_from_the_left_keeping_the_answer(self):
        encode = lambda text: list(range(len(text)))  # noqa: E731
        rows, _ = dpo.tokenize_pairs([{"prompt": "p" * (lora_config.MAX_LENGTH + 10), "chosen": "abc", "rejected": "d"}], encode)
        self.assertEqual(len(rows[0]["chosen_ids"]), lora_config.MAX_LENGTH)
        self.assertEqual(rows[0]["chosen_labels"][-3:], [0, 1, 2])
        self.assertEqual(len(rows[0]["rejected_ids"]), lora_config.MAX_LENGTH)


class DpoDataTest(unittest.TestCase):
    def read(self, *lines):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "train.jsonl")
            with open(path, "w", encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")
            return data.read_examples(path, "training file", "dpo")

    def test_a_dpo_line_renders_one_prompt_and_both_answers_in_harmony(self):
        [ex] = self.read(dpo_line())
        self.assertTrue(ex["prompt"].endswith("<|start|>user<|message|>money back please<|end|><|start|>assistant"))
        self.assertIn("# Instructions\n\nClassify.", ex["prompt"])
        self.assertEqual(ex["chosen"], "<|channel|>final<|message|>Refund.<|return|>")
        self.assertEqual(ex["rejected"], "<|channel|>final<|message|>Shipping.<|return|>")

    def test_bad_dpo_lines_are_invalid_data_naming_the_line_and_field(self):
        cases = [
            (dpo_line(rejected=" Refund. "), "line 2: non_preferred_output: preferred_output and non_preferred_output are the same answer"),
            (dpo_line(preferred=""), "line 2: preferred_output[0].content: the assistant answer is empty"),
            (dpo_line(non_preferred_output=[]), "line 2: non_preferred_output: expected a list of exactly one assistant message"),
            (json.dumps({"messages": []}), 'line 2: input.messages: expected "input"'),
            (dpo_line(input={"messages": [{"role": "system", "content": "x"}]}), "line 2: input.messages: no user message"),
        ]
        for line, message in cases:
            with self.subTest(message=message):
                with self.assertRaises(TrainerError) as caught:
                    self.read(dpo_line(), line)
                self.assertEqual(caught.exception.code, "invalid_data")
                self.assertEqual(caught.exception.line, 2)
                self.assertIn(message, caught.exception.message)


if __name__ == "__main__":
    unittest.main()

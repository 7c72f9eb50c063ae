import io
import json
import unittest

from loraplane_trainer.events import Emitter, MetricsBridge

from .helpers import assert_events_valid

SHA = "2545a19d2937f7859fa1b339b8825ccd506970a2e7d7720fe90e8631f1b65944"


class EmitterTest(unittest.TestCase):
    def test_every_event_is_one_line_that_satisfies_the_contract_schema(self):
        out = io.StringIO()
        e = Emitter(out)
        e.status("starting", "gpt-oss-lora trainer")
        e.checkpoint(100, "p/checkpoint-100/", [{"name": "adapter_model.safetensors", "bytes": 10, "sha256": SHA}], {"train_loss": 0.2})
        e.artifact("p/", [{"name": "adapter_config.json", "bytes": 3, "sha256": SHA}], trained_tokens=81216.0)
        e.error("invalid_data", "training file line 3: bad", line=3)
        e.error("cancelled", "SIGTERM")
        lines = out.getvalue().splitlines()
        self.assertEqual(len(lines), 5)
        events = assert_events_valid(self, lines)
        self.assertEqual(events[2]["trained_tokens"], 81216)
        self.assertNotIn("line", events[4])

    def test_refuses_nan_rather_than_printing_invalid_json(self):
        with self.assertRaises(ValueError):
            Emitter(io.StringIO()).emit({"type": "metrics", "train_loss": float("nan")})


class MetricsBridgeTest(unittest.TestCase):
    def test_a_training_log_becomes_a_metrics_event(self):
        bridge = MetricsBridge()
        event = bridge.convert(
            {"loss": 1.23456789, "grad_norm": 0.5, "learning_rate": 2e-4, "epoch": 0.25, "mean_token_accuracy": 0.75, "train_tokens_per_second": 1234.56, "num_tokens": 9},
            step=10, total_steps=40,
        )
        self.assertEqual(event, {
            "type": "metrics", "step": 10, "total_steps": 40, "epoch": 0.25, "train_loss": 1.234568, "learning_rate": 2e-4,
            "train_mean_token_accuracy": 0.75, "tokens_per_second": 1234.6,
        })
        assert_events_valid(self, [json.dumps(event)])

    def test_an_eval_log_adds_valid_loss_to_the_last_training_values(self):
        bridge = MetricsBridge()
        self.assertIsNone(bridge.convert({"eval_loss": 0.9}, 5, 10))  # nothing to attach it to yet
        bridge.convert({"loss": 1.0, "learning_rate": 1e-4, "epoch": 0.5}, 5, 10)
        event = bridge.convert({"eval_loss": 0.9, "eval_mean_token_accuracy": 0.8, "eval_runtime": 3.2}, 6, 10)
        self.assertEqual(event["valid_loss"], 0.9)
        self.assertEqual(event["valid_mean_token_accuracy"], 0.8)
        self.assertEqual((event["step"], event["train_loss"]), (6, 1.0))
        assert_events_valid(self, [json.dumps(event)])

    def test_summaries_and_non_finite_values_give_nothing_or_are_dropped(self):
        bridge = MetricsBridge()
        self.assertIsNone(bridge.convert({"train_runtime": 12.0, "train_loss": 0.5, "total_flos": 1e12}, 10, 10))
        self.assertIsNone(bridge.convert({"loss": float("nan"), "learning_rate": 1e-4}, 3, 10))
        event = bridge.convert({"loss": 0.5, "learning_rate": -1.0, "mean_token_accuracy": 1.2, "train_tokens_per_second": float("inf")}, 0, 0)
        self.assertEqual(event["learning_rate"], 0.0)
        self.assertEqual(event["train_mean_token_accuracy"], 1.0)
        self.assertEqual(event["total_steps"], 1)
        self.assertNotIn("tokens_per_second", event)
        assert_events_valid(self, [json.dumps(event)])


if __name__ == "__main__":
    unittest.main()

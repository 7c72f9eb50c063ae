import json
import unittest

from loraplane_trainer import schema_check
from loraplane_trainer.contract import TrainerError, load_schema, parse_spec

from .helpers import valid_spec


class ParseSpecTest(unittest.TestCase):
    def assertInvalid(self, spec, *fragments):
        text = spec if isinstance(spec, str) else json.dumps(spec)
        with self.assertRaises(TrainerError) as ctx:
            parse_spec(text)
        self.assertEqual(ctx.exception.code, "invalid_spec")
        for fragment in fragments:
            self.assertIn(fragment, ctx.exception.message)
        return ctx.exception.message

    def test_a_valid_spec_passes_unchanged(self):
        spec = valid_spec()
        self.assertEqual(parse_spec(json.dumps(spec)), spec)

    def test_the_optional_v1_fields_are_accepted_and_unknown_fields_ignored(self):
        spec = valid_spec(
            checkpoint_every_steps=50, stop_grace_seconds=30, future_field={"x": 1},
            resume_from={"step": 50, "files": [{"name": "trainer_state.json", "url": "http://h/x", "sha256": "b" * 64, "bytes": 3}]},
        )
        self.assertEqual(parse_spec(json.dumps(spec))["checkpoint_every_steps"], 50)
        self.assertIsNone(parse_spec(json.dumps(valid_spec(resume_from=None))).get("resume_from"))

    def test_missing_or_not_json(self):
        self.assertInvalid("", "LORAPLANE_JOB_SPEC is not set")
        with self.assertRaises(TrainerError):
            parse_spec(None)
        self.assertInvalid("{nope", "not JSON")

    def test_another_contract_version(self):
        self.assertInvalid(valid_spec(contract_version=2), "contract_version: this trainer speaks version 1, got 2")

    def test_schema_problems_name_every_field(self):
        spec = valid_spec()
        spec["hyperparameters"]["n_epochs"] = 0
        spec["data"]["training_file"]["sha256"] = "XYZ"
        del spec["output"]["url"]
        spec["checkpoint_every_steps"] = 0
        message = self.assertInvalid(spec, "hyperparameters.n_epochs: must be >= 1", "data.training_file.sha256: must match", "output.url: required", "checkpoint_every_steps: must be >= 1")
        self.assertNotIn("http://", message)

    def test_types_are_checked(self):
        spec = valid_spec(seed=1.5, attempt="1")
        self.assertInvalid(spec, "seed: expected integer", "attempt: expected integer")
        spec = valid_spec()
        spec["output"]["fields"]["Policy"] = 3
        self.assertInvalid(spec, "output.fields.Policy: expected string")

    def test_what_this_trainer_cannot_do(self):
        self.assertInvalid(valid_spec(method="ppo"), "method")
        spec = valid_spec()
        spec["hyperparameters"]["lora"]["target_modules"] = ["q_proj", "lm_head"]
        self.assertInvalid(spec, "not supported: lm_head")
        spec = valid_spec()
        spec["hyperparameters"]["lora"].update(dropout=0.1, target_modules=["q_proj", "mlp.experts.gate_up_proj"])
        self.assertInvalid(spec, "dropout: must be 0 when expert weights are targeted")
        self.assertInvalid(valid_spec(model={"name": "my-model"}), "model.weights: required for my-model")
        spec = valid_spec(resume_from={"step": 5, "files": [{"name": "adapter_model.safetensors", "url": "http://h/x", "sha256": "b" * 64, "bytes": 3}]})
        self.assertInvalid(spec, "resume_from.files: a transformers checkpoint needs trainer_state.json")

    def test_dpo_is_accepted_with_its_beta(self):
        spec = valid_spec(method="dpo")
        spec["hyperparameters"]["beta"] = 0.5
        self.assertEqual(parse_spec(json.dumps(spec))["hyperparameters"]["beta"], 0.5)
        spec["hyperparameters"]["beta"] = 0
        self.assertInvalid(spec, "beta")

    def test_a_catalog_name_needs_no_weights(self):
        self.assertEqual(parse_spec(json.dumps(valid_spec(model={"name": "gpt-oss-120b"})))["model"]["name"], "gpt-oss-120b")


class SchemaCheckTest(unittest.TestCase):
    def test_refuses_keywords_it_does_not_implement(self):
        with self.assertRaisesRegex(ValueError, r"\$ref"):
            schema_check.errors({"$ref": "#/x"}, 1)

    def test_one_of_reports_the_closest_branch(self):
        schema = load_schema("trainer-event.schema.json")
        problems = schema_check.errors(schema, {"type": "metrics", "step": 1, "total_steps": 2, "epoch": 0, "learning_rate": 0})
        self.assertEqual(problems, ["train_loss: required"])
        self.assertEqual(schema_check.errors(schema, {"type": "status", "status": "completed", "message": "done"}), [])

    def test_booleans_are_not_numbers_and_nan_is_not_finite(self):
        self.assertEqual(schema_check.errors({"type": "number"}, True), ["(root): expected number"])
        self.assertEqual(schema_check.errors({"type": "number"}, float("nan")), ["(root): expected number"])
        self.assertEqual(schema_check.errors({"type": "integer"}, 3.0), [])


if __name__ == "__main__":
    unittest.main()

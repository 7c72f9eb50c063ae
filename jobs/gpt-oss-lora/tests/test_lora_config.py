import unittest

from loraplane_trainer.lora_config import batch_split, lora_kwargs, training_arguments

from .helpers import valid_spec


class LoraKwargsTest(unittest.TestCase):
    def test_attention_only_is_the_serving_safe_default(self):
        kwargs = lora_kwargs({"r": 8, "alpha": 16, "dropout": 0, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]})
        self.assertEqual(kwargs["target_modules"], ["q_proj", "k_proj", "v_proj", "o_proj"])
        self.assertNotIn("target_parameters", kwargs)
        self.assertEqual((kwargs["r"], kwargs["lora_alpha"], kwargs["bias"], kwargs["task_type"]), (8, 16, "none", "CAUSAL_LM"))

    def test_experts_go_to_target_parameters_for_every_layer(self):
        kwargs = lora_kwargs({"r": 16, "alpha": 32, "dropout": 0, "target_modules": ["q_proj", "mlp.experts.gate_up_proj", "mlp.experts.down_proj"]})
        self.assertEqual(kwargs["target_modules"], ["q_proj"])
        # A suffix, not "7.mlp.experts...": PEFT matches it in every layer, the layout vLLM serves.
        self.assertEqual(kwargs["target_parameters"], ["mlp.experts.gate_up_proj", "mlp.experts.down_proj"])

    def test_all_linear_is_passed_through(self):
        self.assertEqual(lora_kwargs({"r": 8, "alpha": 16, "dropout": 0, "target_modules": ["all-linear"]})["target_modules"], "all-linear")


class TrainingArgumentsTest(unittest.TestCase):
    def test_batch_split_keeps_examples_per_step(self):
        for batch in range(1, 65):
            per_device, accumulation = batch_split(batch)
            self.assertEqual(per_device * accumulation, batch)
            self.assertLessEqual(per_device, 4)
        self.assertEqual(batch_split(16), (4, 4))  # the recipe: 4 x 4
        self.assertEqual(batch_split(7), (1, 7))

    def test_recipe_and_spec_values(self):
        spec = valid_spec(checkpoint_every_steps=25)
        spec["hyperparameters"].update(n_epochs=2, batch_size=16, learning_rate=3e-4)
        args = training_arguments(spec, "/scratch/checkpoints", "5.17.0")
        self.assertEqual(
            {k: args[k] for k in ("num_train_epochs", "per_device_train_batch_size", "gradient_accumulation_steps", "learning_rate", "seed", "save_strategy", "save_steps", "lr_scheduler_type", "warmup_steps", "bf16", "gradient_checkpointing")},
            {"num_train_epochs": 2, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 4, "learning_rate": 3e-4, "seed": 42, "save_strategy": "steps", "save_steps": 25, "lr_scheduler_type": "cosine_with_min_lr", "warmup_steps": 0.03, "bf16": True, "gradient_checkpointing": True},
        )
        self.assertEqual(args["lr_scheduler_kwargs"], {"min_lr_rate": 0.1})
        self.assertNotIn("warmup_ratio", args)  # removed in transformers 5.15
        self.assertEqual(args["include_num_input_tokens_seen"], "non_padding")
        self.assertEqual(training_arguments(valid_spec(), "/x", "5.0.0")["save_strategy"], "no")

    def test_transformers_4_gets_the_names_it_knows(self):
        args = training_arguments(valid_spec(), "/x", "4.57.1")
        self.assertEqual(args["warmup_ratio"], 0.03)
        self.assertNotIn("warmup_steps", args)
        self.assertIs(args["include_num_input_tokens_seen"], True)


if __name__ == "__main__":
    unittest.main()

"""The spec's LoRA settings -> peft.LoraConfig keyword arguments and the adapter_config.json fields vLLM reads."""

from .contract import ATTENTION_MODULES, EXPERT_PARAMETERS


def lora_kwargs(lora):
    """Attention projections go to target_modules (or PEFT's "all-linear"); expert weights, which are 3-D
    parameters and not modules, to target_parameters, by the suffix that matches EVERY layer's experts."""
    targets = lora["target_modules"]
    modules = [t for t in targets if t in ATTENTION_MODULES]
    parameters = [t for t in targets if t in EXPERT_PARAMETERS]
    kwargs = {
        "r": lora["r"],
        "lora_alpha": lora["alpha"],
        "lora_dropout": lora["dropout"],
        "target_modules": "all-linear" if "all-linear" in targets else modules,
        "bias": "none",
        "task_type": "CAUSAL_LM",
        "use_rslora": False,
        "use_dora": False,
    }
    if parameters:
        kwargs["target_parameters"] = parameters
    return kwargs


MAX_PER_DEVICE_BATCH = 4  # the recipe's per-device batch; larger batches come from gradient accumulation
MAX_LENGTH = 2048  # tokens per example (the recipe); longer examples are truncated from the left of the prompt


def batch_split(batch_size):
    """Examples per optimizer step -> (per-device batch, gradient accumulation): the largest per-device batch up to
    the recipe's 4 that divides batch_size, so one optimizer step sees exactly batch_size examples."""
    per_device = max(d for d in range(1, MAX_PER_DEVICE_BATCH + 1) if batch_size % d == 0)
    return per_device, batch_size // per_device


def _major(version):
    return int(str(version).split(".")[0])


def training_arguments(spec, output_dir, transformers_version):
    """transformers.TrainingArguments keywords following the recipe (shared/reference/gpt-oss-lora.md), with the
    spec's epochs, batch size, learning rate and seed. The Trainer writes checkpoints (every `checkpoint_every_steps`,
    and on SIGTERM through the callback); the callback uploads them.

    transformers 5 takes the warmup ratio as a float `warmup_steps` (`warmup_ratio` is gone since 5.15) and can count
    tokens without padding; 4.x needs `warmup_ratio` and counts padding too."""
    hp = spec["hyperparameters"]
    v5 = _major(transformers_version) >= 5
    per_device, accumulation = batch_split(hp["batch_size"])
    return {
        "output_dir": output_dir,
        "num_train_epochs": hp["n_epochs"],
        "per_device_train_batch_size": per_device,
        "gradient_accumulation_steps": accumulation,
        "learning_rate": hp["learning_rate"],
        "lr_scheduler_type": "cosine_with_min_lr",
        "lr_scheduler_kwargs": {"min_lr_rate": 0.1},
        ("warmup_steps" if v5 else "warmup_ratio"): 0.03,
        "gradient_checkpointing": True,
        "gradient_checkpointing_kwargs": {"use_reentrant": False},
        "bf16": True,
        "logging_steps": 1,
        "logging_first_step": True,
        "save_strategy": "steps" if spec.get("checkpoint_every_steps") else "no",
        "save_steps": spec.get("checkpoint_every_steps") or 500,
        "save_total_limit": 1,  # scratch is a tmpfs: keep only the newest (it is uploaded before the next one)
        "eval_strategy": "epoch" if spec["data"].get("validation_file") else "no",
        "report_to": [],
        "seed": spec["seed"],
        "data_seed": spec["seed"],
        "disable_tqdm": True,
        "include_num_input_tokens_seen": "non_padding" if v5 else True,
        "remove_unused_columns": False,
        "dataloader_num_workers": 0,
    }

"""The GPU part: transformers + peft on GPT-OSS, following shared/reference/gpt-oss-lora.md. Everything heavy is
imported inside functions, so the pure modules of this package import without torch."""

import os
import sys

from . import dpo, lora_config
from .contract import TrainerError, model_ref


def log(message):
    sys.stderr.write(f"[gpt-oss-lora] {message}\n")
    sys.stderr.flush()


def load_model_and_tokenizer(spec):
    """bf16 weights (MXFP4 checkpoints are dequantized: LoRA needs bf16 base weights to train against), eager
    attention, no KV cache, and device_map="auto", which spreads the layers over every visible GPU: one 80 GB GPU for
    20B, a multi-GPU host for 120B (accelerate's big-model placement, in one process)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    ref = model_ref(spec)
    config = AutoConfig.from_pretrained(ref)
    kwargs = {"attn_implementation": "eager", "dtype": torch.bfloat16, "use_cache": False, "device_map": "auto"}
    quant = getattr(config, "quantization_config", None)
    if quant and (quant.get("quant_method") if isinstance(quant, dict) else getattr(quant, "quant_method", None)) == "mxfp4":
        from transformers import Mxfp4Config

        kwargs["quantization_config"] = Mxfp4Config(dequantize=True)
    model = AutoModelForCausalLM.from_pretrained(ref, **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(ref)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    placement = sorted({str(d) for d in getattr(model, "hf_device_map", {}).values()})
    log(f"loaded {ref} on {', '.join(placement) or 'one device'}")
    return model, tokenizer


def tokenize(examples, tokenizer):
    """(prompt, completion) text -> input ids with labels on the completion only (-100 elsewhere). Harmony's
    special tokens are in the text as rendered by harmony.render; the tokenizer maps them to their ids."""
    rows = []
    tokens = 0
    for ex in examples:
        prompt = tokenizer(ex["prompt"], add_special_tokens=False)["input_ids"]
        completion = tokenizer(ex["completion"], add_special_tokens=False)["input_ids"]
        keep_prompt = max(lora_config.MAX_LENGTH - len(completion), 0)
        prompt = prompt[-keep_prompt:] if keep_prompt else []
        ids = (prompt + completion)[: lora_config.MAX_LENGTH]
        labels = ([-100] * len(prompt) + completion)[: lora_config.MAX_LENGTH]
        rows.append({"input_ids": ids, "labels": labels})
        tokens += len(ids)
    return rows, tokens


def collate(pad_id):
    import torch

    def fn(batch):
        width = max(len(r["input_ids"]) for r in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, r in enumerate(batch):
            n = len(r["input_ids"])
            ids[i, :n] = torch.tensor(r["input_ids"])
            labels[i, :n] = torch.tensor(r["labels"])
            mask[i, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}

    return fn


def make_callback(spec, emitter, bridge, stop, upload_checkpoint):
    """A TrainerCallback that bridges transformers to the contract: on_log -> metrics events, on_step_end -> stop
    after this step when SIGTERM came (with a checkpoint), on_save -> upload the checkpoint and announce it."""
    from transformers import TrainerCallback

    class ContractCallback(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            stop.training = True  # from now on a SIGTERM means: checkpoint this step, then stop

        def on_train_end(self, args, state, control, **kwargs):
            stop.training = False

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs:
                return
            event = bridge.convert(logs, state.global_step, state.max_steps)
            if event is not None:
                emitter.emit(event)

        def on_step_end(self, args, state, control, **kwargs):
            if stop.requested:
                control.should_save = True
                control.should_training_stop = True
            elif spec.get("checkpoint_every_steps") and state.global_step >= state.max_steps:
                control.should_save = False  # the last step's adapter is the artifact, not a checkpoint

        def on_save(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                path = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
                loss = bridge.last_train["train_loss"] if bridge.last_train else None
                upload_checkpoint(state.global_step, path, {"train_loss": loss} if loss is not None else None)

    return ContractCallback()


def train(spec, examples, validation, scratch, emitter, bridge, stop, upload_checkpoint, resume_dir):
    """Train and write the final PEFT adapter to scratch/adapter. Returns (adapter_dir, trained_tokens, stopped)."""
    import torch
    import transformers
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainingArguments, set_seed

    if not torch.cuda.is_available():
        raise TrainerError("internal", "no CUDA device is visible to the trainer (use --dry-run to check a spec without a GPU)")
    set_seed(spec["seed"])
    model, tokenizer = load_model_and_tokenizer(spec)
    model.enable_input_require_grads()  # gradient checkpointing with a frozen embedding needs inputs that require grad
    model = get_peft_model(model, LoraConfig(**lora_config.lora_kwargs(spec["hyperparameters"]["lora"])))
    trainable, total = model.get_nb_trainable_parameters()
    log(f"LoRA: {trainable:,} trainable of {total:,} parameters")

    if spec["method"] == "dpo":
        # Pairs: the loss is DPO's and the reference is this model with the LoRA disabled (dpo.py).
        encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
        train_rows, tokens_per_epoch = dpo.tokenize_pairs(examples, encode)
        eval_rows = dpo.tokenize_pairs(validation, encode)[0] if validation else None
        trainer_class, collator = dpo.make_trainer_class(dpo.beta_of(spec), dpo.rpo_alpha_of(spec)), dpo.collate_pairs(tokenizer.pad_token_id)
    else:
        train_rows, tokens_per_epoch = tokenize(examples, tokenizer)
        eval_rows = tokenize(validation, tokenizer)[0] if validation else None
        trainer_class, collator = Trainer, collate(tokenizer.pad_token_id)
    args = TrainingArguments(**lora_config.training_arguments(spec, os.path.join(scratch, "checkpoints"), transformers.__version__))
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=train_rows,
        eval_dataset=eval_rows,
        data_collator=collator,
        callbacks=[make_callback(spec, emitter, bridge, stop, upload_checkpoint)],
    )
    try:
        trainer.train(resume_from_checkpoint=resume_dir)
    except torch.cuda.OutOfMemoryError as err:
        raise TrainerError("out_of_memory", f"CUDA out of memory: {err}") from err
    if stop.requested:
        return None, 0, True
    adapter_dir = os.path.join(scratch, "adapter")
    model.save_pretrained(adapter_dir)  # adapter_config.json + adapter_model.safetensors (+ README.md)
    trained_tokens = int(getattr(trainer.state, "num_input_tokens_seen", 0) or tokens_per_epoch * spec["hyperparameters"]["n_epochs"])
    return adapter_dir, trained_tokens, False

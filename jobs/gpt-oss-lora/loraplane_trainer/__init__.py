"""loraplane's GPT-OSS LoRA trainer (jobs/CONTRACT.md). Pure modules (contract, schema_check, harmony, events,
transfer, data, lora_config) import with the standard library only; torch/transformers/peft are imported lazily by
train.py, so the pure parts run and are tested on machines without them."""

TRAINER_NAME = "gpt-oss-lora"

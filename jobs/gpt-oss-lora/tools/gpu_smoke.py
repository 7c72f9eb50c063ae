"""End-to-end run of the GPT-OSS trainer on a GPU machine without internet access or weights
(shared/reference/gpt-oss-lora.md, last section): a tiny RANDOMLY initialised GptOss model (2 layers, 4 experts,
hidden size 64) and a tokenizer trained on the spot, then the real trainer process against a local stand-in for
S3's presigned GET/POST:
  1. a full run with checkpoints every 2 steps: events, uploads, adapter files;
  2. a run stopped by SIGTERM after its first checkpoint, then resumed from it.
Prints one JSON summary (steps, losses, adapter files and tensor names) and exits non-zero on any contract breach.
Needs torch, transformers (with GptOss) and peft; run from jobs/gpt-oss-lora:  python3 tools/gpu_smoke.py

The model is noise: the loss falling says the training path works, not that anything useful was learned.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loraplane_trainer import harmony, schema_check  # noqa: E402
from tests.helpers import FakeS3, event_schema  # noqa: E402

TEAMS = ["billing", "shipping", "technical", "account"]
PHRASES = {"billing": "charged twice", "shipping": "parcel never came", "technical": "app crashes", "account": "cannot log in"}


def dataset(n):
    rows = []
    for i in range(n):
        team = TEAMS[i % 4]
        rows.append({"messages": [
            {"role": "system", "content": "Route the ticket to one team."},
            {"role": "user", "content": f"Ticket {i}: my {PHRASES[team]}."},
            {"role": "assistant", "content": team, "thinking": f"The ticket is about {team}."},
        ]})
    return ("\n".join(json.dumps(r) for r in rows) + "\n").encode()


def make_tiny_gpt_oss(directory, texts):
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import GptOssConfig, GptOssForCausalLM, PreTrainedTokenizerFast

    specials = ["<|endoftext|>", *harmony.SPECIAL_TOKENS]
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=512, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    from tokenizers import decoders

    tok.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|return|>", pad_token="<|endoftext|>")
    tokenizer.save_pretrained(directory)
    config = GptOssConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, num_local_experts=4, num_experts_per_tok=2, max_position_embeddings=4096,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    GptOssForCausalLM(config).to(torch.bfloat16).save_pretrained(directory)


def uploaded(s3):
    """Object key -> bytes of everything POSTed so far."""
    out = {}
    for post in s3.posts:
        form = {name: value for name, _filename, value in post}
        out[form["key"].decode()] = form["file"]
    return out


def run_trainer(spec, scratch, stop_after_checkpoint=False):
    env = dict(os.environ, LORAPLANE_JOB_SPEC=json.dumps(spec), LORAPLANE_SCRATCH_DIR=scratch)
    proc = subprocess.Popen([sys.executable, "-m", "loraplane_trainer"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    events, schema = [], event_schema()
    for line in proc.stdout:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(event, dict) or "type" not in event:
            continue
        problems = schema_check.errors(schema, event)
        if problems:
            raise SystemExit(f"contract violation: {problems}: {line}")
        events.append(event)
        if stop_after_checkpoint and event["type"] == "checkpoint":
            proc.send_signal(signal.SIGTERM)
            stop_after_checkpoint = False
    return proc.wait(timeout=600), events


def main():
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this smoke test is for a GPU machine")
    started = time.time()
    data = dataset(64)
    with tempfile.TemporaryDirectory() as work, FakeS3() as s3:
        weights = os.path.join(work, "tiny-gpt-oss")
        texts = ["".join(harmony.render(harmony.to_harmony_messages(json.loads(line)))) for line in data.decode().splitlines()]
        make_tiny_gpt_oss(weights, texts)
        lora = {"r": 8, "alpha": 16, "dropout": 0, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "mlp.experts.gate_up_proj", "mlp.experts.down_proj"]}
        base = {
            "contract_version": 1, "job_id": "ftjob-gpu-smoke", "attempt": 1, "model": {"name": "gpt-oss-20b", "weights": weights},
            "method": "supervised", "seed": 7, "checkpoint_every_steps": 2, "stop_grace_seconds": 60,
            "hyperparameters": {"n_epochs": 2, "batch_size": 8, "learning_rate": 2e-3, "lora": lora},
            "data": {"training_file": s3.put("train.jsonl", data), "validation_file": None},
        }
        summary = {}
        code, events = run_trainer({**base, "output": s3.output("smoke/attempt-1/")}, os.path.join(work, "s1"))
        metrics = [e for e in events if e["type"] == "metrics"]
        artifact = next((e for e in events if e["type"] == "artifact"), None)
        summary["full_run"] = {
            "exit": code, "steps": metrics[-1]["total_steps"] if metrics else None,
            "loss_first_last": [metrics[0]["train_loss"], metrics[-1]["train_loss"]] if metrics else None,
            "checkpoints": [e["step"] for e in events if e["type"] == "checkpoint"],
            "adapter_files": artifact and artifact["files"],
        }
        posted = uploaded(s3)
        adapter = posted.get("smoke/attempt-1/adapter_model.safetensors")
        if adapter:
            n = int.from_bytes(adapter[:8], "little")
            header = json.loads(adapter[8:8 + n])
            summary["full_run"]["tensors"] = sorted(k for k in header if k != "__metadata__")[:12]
            summary["full_run"]["adapter_config"] = json.loads(posted["smoke/attempt-1/adapter_config.json"])

        code, events = run_trainer({**base, "output": s3.output("smoke/attempt-2/"), "hyperparameters": {**base["hyperparameters"], "n_epochs": 20}},
                                   os.path.join(work, "s2"), stop_after_checkpoint=True)
        checkpoints = [e for e in events if e["type"] == "checkpoint"]
        summary["sigterm"] = {"exit": code, "last_event": events[-1] if events else None, "checkpoints": [c["step"] for c in checkpoints]}
        if code == 143 and checkpoints:
            ck = checkpoints[-1]
            # Serve the checkpoint's uploaded files back as presigned GETs, as the control plane would.
            files, posted = [], uploaded(s3)
            for f in ck["files"]:
                name = "ck-" + f["name"].replace("/", "_")
                s3.objects[name] = posted[ck["key_prefix"] + f["name"]]
                files.append({**f, "url": f"{s3.url}/files/{name}"})
            resume = {**base, "attempt": 3, "output": s3.output("smoke/attempt-3/"), "hyperparameters": {**base["hyperparameters"], "n_epochs": 20},
                      "resume_from": {"step": ck["step"], "files": files}}
            code, events = run_trainer(resume, os.path.join(work, "s3"))
            metrics = [e for e in events if e["type"] == "metrics"]
            summary["resumed"] = {"exit": code, "first_step": metrics[0]["step"] if metrics else None, "last_step": metrics[-1]["step"] if metrics else None,
                                  "artifact": any(e["type"] == "artifact" for e in events)}
        summary["seconds"] = round(time.time() - started, 1)
        summary["device"] = torch.cuda.get_device_name(0)
    print(json.dumps(summary, indent=2))
    ok = summary["full_run"]["exit"] == 0 and summary["sigterm"]["exit"] == 143 and summary.get("resumed", {}).get("exit") == 0
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

"""Entry point: `python -m loraplane_trainer` (the image's command) or `--dry-run` to check a spec and its data
without a GPU. Exit codes and events follow jobs/CONTRACT.md."""

import argparse
import json
import os
import sys
import traceback

from . import TRAINER_NAME, data, dpo, lora_config, transfer
from .contract import CONTRACT_VERSION, EXIT, TrainerError, model_ref, parse_spec
from .events import Emitter, MetricsBridge
from .stopping import StopSignal


def log(message):
    sys.stderr.write(f"[{TRAINER_NAME}] {message}\n")
    sys.stderr.flush()


def load_data(spec, scratch, emitter, local_training_file=None):
    emitter.status("loading_data", "downloading and checking the dataset")
    data_dir = os.path.join(scratch, "data")
    os.makedirs(data_dir, exist_ok=True)
    train_path = local_training_file or os.path.join(data_dir, "train.jsonl")
    if not local_training_file:
        transfer.download_verified(spec["data"]["training_file"], train_path, "training file", log)
    examples = data.read_examples(train_path, "training file", spec["method"])
    validation = []
    if spec["data"].get("validation_file") and not local_training_file:
        valid_path = os.path.join(data_dir, "validation.jsonl")
        transfer.download_verified(spec["data"]["validation_file"], valid_path, "validation file", log)
        validation = data.read_examples(valid_path, "validation file", spec["method"])
    return examples, validation


def download_checkpoint(resume, scratch):
    """resume_from's files -> scratch/resume/checkpoint-<step>/, each checked like a data file."""
    target = os.path.join(scratch, "resume", f"checkpoint-{resume['step']}")
    for f in resume["files"]:
        dest = os.path.normpath(os.path.join(target, f["name"]))
        if not dest.startswith(target + os.sep):
            raise TrainerError("invalid_spec", f"resume_from.files: {f['name']!r} points outside the checkpoint")
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        transfer.download_verified(f, dest, f"checkpoint file {f['name']}", log)
    return target


def installed_transformers_version():
    """The installed transformers' version without importing it (importing pulls in torch); 5 when absent."""
    from importlib import metadata

    try:
        return metadata.version("transformers")
    except metadata.PackageNotFoundError:
        return "5"


def dry_run_summary(spec, examples, validation):
    """What a real run would do, computed without a GPU or a tokenizer (tokens estimated at 4 characters each)."""
    hp = spec["hyperparameters"]
    steps_per_epoch = -(-len(examples) // hp["batch_size"])
    # DPO examples run the prompt twice: once with each answer.
    chars = sum(len(e["prompt"]) + len(e["completion"]) if "completion" in e else 2 * len(e["prompt"]) + len(e["chosen"]) + len(e["rejected"]) for e in examples)
    return {
        "dry_run": "ok",
        "contract_version": CONTRACT_VERSION,
        "model": model_ref(spec),
        "method": spec["method"],
        **({"beta": dpo.beta_of(spec), "rpo_alpha": dpo.rpo_alpha_of(spec)} if spec["method"] == "dpo" else {}),
        "examples": len(examples),
        "validation_examples": len(validation),
        "total_steps": steps_per_epoch * hp["n_epochs"],
        "estimated_tokens_per_epoch": chars // 4,
        "lora": lora_config.lora_kwargs(hp["lora"]),
        "training_arguments": lora_config.training_arguments(spec, "/scratch/checkpoints", installed_transformers_version()),
    }


def run_job(spec, scratch, emitter, stop):
    from . import train  # the torch part, imported only for a real run

    hp = spec["hyperparameters"]
    emitter.status("starting", f"{TRAINER_NAME} trainer, job {spec['job_id']} attempt {spec['attempt']}, base {model_ref(spec)}")
    resume_dir = download_checkpoint(spec["resume_from"], scratch) if spec.get("resume_from") else None
    examples, validation = load_data(spec, scratch, emitter)
    what = f"DPO (beta {dpo.beta_of(spec)}, rpo_alpha {dpo.rpo_alpha_of(spec)}, reference: the adapter disabled) on {len(examples)} pairs" if spec["method"] == "dpo" else f"{len(examples)} examples"
    emitter.status("training", f"{what}, {hp['n_epochs']} epoch(s), r={hp['lora']['r']}")
    output = spec["output"]

    def upload_checkpoint(step, path, metrics):
        prefix = f"checkpoint-{step}/"
        files = transfer.upload_dir(output, path, prefix, log)
        # Names in the event are relative to the checkpoint's own prefix (CONTRACT.md section 5).
        emitter.checkpoint(step, output["key_prefix"] + prefix, [{**f, "name": f["name"][len(prefix):]} for f in files], metrics)

    adapter_dir, trained_tokens, stopped = train.train(
        spec, examples, validation, scratch, emitter, MetricsBridge(), stop, upload_checkpoint, resume_dir
    )
    if stopped:
        raise TrainerError("cancelled", f"received {stop.signal_name}; stopped after a checkpoint")
    emitter.status("uploading", f"uploading the adapter to {output['key_prefix']}")
    files = transfer.upload_dir(output, adapter_dir, "", log)
    emitter.artifact(output["key_prefix"], files, trained_tokens)
    emitter.status("completed", "adapter uploaded")


def main(argv=None, env=None, emitter=None):
    """The whole trainer as a function: returns the exit code."""
    env = os.environ if env is None else env
    emitter = emitter or Emitter()
    parser = argparse.ArgumentParser(prog="python -m loraplane_trainer", description=__doc__)
    parser.add_argument("--dry-run", action="store_true", help="validate the spec and the data, then exit; needs no GPU")
    parser.add_argument("--training-file", help="with --dry-run: check this local JSONL instead of downloading the spec's")
    args = parser.parse_args(argv)
    try:
        spec = parse_spec(env.get("LORAPLANE_JOB_SPEC"))
        scratch = env.get("LORAPLANE_SCRATCH_DIR") or "/scratch"
        if args.dry_run:
            examples, validation = load_data(spec, scratch, emitter, args.training_file)
            # Not an event (no "type"): a log line for the person or CI job that asked for the dry run.
            print(json.dumps(dry_run_summary(spec, examples, validation)), flush=True)
            return EXIT["ok"]
        stop = StopSignal(spec.get("stop_grace_seconds") or 30, lambda message: emitter.error("cancelled", message))
        stop.install()
        run_job(spec, scratch, emitter, stop)
        return EXIT["ok"]
    except TrainerError as err:
        emitter.error(err.code, err.message, err.line)
        return EXIT.get(err.code, EXIT["internal"])
    except Exception as err:  # a bug: the contract's `internal`, with the stack on stderr
        traceback.print_exc(file=sys.stderr)
        emitter.error("internal", f"{type(err).__name__}: {err}")
        return EXIT["internal"]


if __name__ == "__main__":
    sys.exit(main())

"""The trainer side of jobs/CONTRACT.md: exit codes, the error type, and the job spec, validated against the JSON
Schema file generated from the control plane's zod schema (jobs/schema/job-spec.schema.json) plus what this trainer
can do."""

import json
import os
from pathlib import Path

from . import schema_check

CONTRACT_VERSION = 1

# Mirrors TRAINER_EXIT in src/training/contract/job-contract.ts.
EXIT = {
    "ok": 0,
    "internal": 1,
    "invalid_spec": 2,
    "invalid_data": 3,
    "data_unreachable": 4,
    "upload_failed": 5,
    "out_of_memory": 1,
    "cancelled": 143,
}

# PEFT names this trainer can target on GPT-OSS. Attention projections are modules (target_modules); the MoE expert
# weights are 3-D parameters, so PEFT targets them with target_parameters. The suffix form matches EVERY layer's
# experts, the layout vLLM serves (partial-layer expert targets are not shown to serve correctly).
ATTENTION_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")
EXPERT_PARAMETERS = ("mlp.experts.gate_up_proj", "mlp.experts.down_proj")
ACCEPTED_TARGETS = set(ATTENTION_MODULES) | set(EXPERT_PARAMETERS) | {"all-linear"}

# Catalog names -> Hugging Face hub ids, for specs whose model.weights is absent.
HUB_IDS = {"gpt-oss-20b": "openai/gpt-oss-20b", "gpt-oss-120b": "openai/gpt-oss-120b"}


class TrainerError(Exception):
    """A failure the contract has a code for; anything else is reported as `internal`."""

    def __init__(self, code, message, line=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.line = line


def schema_dir():
    """jobs/schema in the repository; /app/schema in the image (the same path relative to this package)."""
    override = os.environ.get("LORAPLANE_CONTRACT_SCHEMA_DIR")
    return Path(override) if override else Path(__file__).resolve().parent.parent.parent / "schema"


def load_schema(name):
    with open(schema_dir() / name, encoding="utf-8") as f:
        return json.load(f)


def check_trainer_limits(spec):
    """What the schema allows but this trainer cannot do: problems as strings."""
    problems = []
    name = spec["model"]["name"]
    if "weights" not in spec["model"] and name not in HUB_IDS:
        problems.append(f"model.weights: required for {name} (known without it: {', '.join(sorted(HUB_IDS))})")
    lora = spec["hyperparameters"]["lora"]
    unknown = [t for t in lora["target_modules"] if t not in ACCEPTED_TARGETS]
    if unknown:
        problems.append(
            f"hyperparameters.lora.target_modules: not supported: {', '.join(unknown)}; supported: {', '.join(sorted(ACCEPTED_TARGETS))}"
        )
    if lora["dropout"] > 0 and any(t in EXPERT_PARAMETERS for t in lora["target_modules"]):
        problems.append("hyperparameters.lora.dropout: must be 0 when expert weights are targeted (PEFT target_parameters)")
    resume = spec.get("resume_from")
    if resume is not None and not any(f["name"] == "trainer_state.json" for f in resume["files"]):
        problems.append("resume_from.files: a transformers checkpoint needs trainer_state.json")
    return problems


def parse_spec(text):
    """LORAPLANE_JOB_SPEC text -> the spec dict, or TrainerError('invalid_spec') naming every problem."""
    if text is None or not text.strip():
        raise TrainerError("invalid_spec", "LORAPLANE_JOB_SPEC is not set")
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as err:
        raise TrainerError("invalid_spec", f"LORAPLANE_JOB_SPEC is not JSON: {err}") from err
    if isinstance(spec, dict) and "contract_version" in spec and spec["contract_version"] != CONTRACT_VERSION:
        raise TrainerError(
            "invalid_spec", f"contract_version: this trainer speaks version {CONTRACT_VERSION}, got {spec['contract_version']!r}"
        )
    problems = schema_check.errors(load_schema("job-spec.schema.json"), spec)
    if not problems:
        problems = check_trainer_limits(spec)
    if problems:
        raise TrainerError("invalid_spec", "invalid job spec: " + "; ".join(problems))
    return spec


def model_ref(spec):
    """Where the base weights come from: the spec's weights (a local path or hub id), else the catalog's hub id."""
    return spec["model"].get("weights") or HUB_IDS[spec["model"]["name"]]

"""Chat JSONL -> harmony (prompt, completion) pairs, or DPO JSONL -> (prompt, chosen, rejected), line by line, every
failure tied to its 1-based line."""

import json

from . import harmony
from .contract import TrainerError


def parse_line(text, line_no, label, method="supervised"):
    try:
        row = json.loads(text)
    except json.JSONDecodeError as err:
        raise TrainerError("invalid_data", f"{label} line {line_no}: not valid JSON ({err.msg})", line=line_no) from err
    try:
        if method == "dpo":
            chosen, rejected = harmony.to_harmony_preference(row)
            prompt, chosen_text = harmony.render(chosen)
            _, rejected_text = harmony.render(rejected)
            return {"line": line_no, "prompt": prompt, "chosen": chosen_text, "rejected": rejected_text}
        messages = harmony.to_harmony_messages(row)
    except harmony.RowError as err:
        raise TrainerError("invalid_data", f"{label} line {line_no}: {err}", line=line_no) from err
    prompt, completion = harmony.render(messages)
    return {"line": line_no, "prompt": prompt, "completion": completion}


def read_examples(path, label, method="supervised"):
    """Every non-blank line of a JSONL file as an example; TrainerError('invalid_data') on the first bad line."""
    examples = []
    with open(path, encoding="utf-8") as f:
        for line_no, text in enumerate(f, start=1):
            if text.strip():
                examples.append(parse_line(text, line_no, label, method))
    if not examples:
        raise TrainerError("invalid_data", f"{label} holds no examples")
    return examples

"""Chat-format training rows -> the harmony format GPT-OSS is trained and served with
(shared/reference/gpt-oss-lora.md):
- the dataset's `system` message becomes the harmony developer message (`# Instructions`); the harmony system
  message carries the model identity, reasoning effort and valid channels, as the model's chat template writes it;
- an assistant's `thinking` becomes the analysis channel and its `content` the final channel;
- the training target (the last assistant turn) ends with <|return|>; earlier turns, being history, end with <|end|>
  and drop their analysis (the template does the same: chain of thought is not kept across turns);
- text may not contain harmony's special tokens.
"""

SPECIAL_TOKENS = ("<|start|>", "<|end|>", "<|message|>", "<|channel|>", "<|constrain|>", "<|return|>", "<|call|>")
ROLES = ("system", "developer", "user", "assistant", "tool")
DEFAULT_SYSTEM = (
    "You are ChatGPT, a large language model trained by OpenAI.\n"
    "Knowledge cutoff: 2024-06\n\n"
    "Reasoning: {effort}\n\n"
    "# Valid channels: analysis, commentary, final. Channel must be included for every message."
)


class RowError(ValueError):
    """A row the trainer cannot use; `field` names the place (e.g. messages[2].content)."""

    def __init__(self, field, problem):
        super().__init__(f"{field}: {problem}")
        self.field = field


def content_text(content, field):
    """A message's text: a string, or OpenAI content parts of type text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise RowError(f"{field}[{i}]", "only text content parts can be trained on")
            texts.append(part["text"])
        return "".join(texts)
    if content is None:
        return ""
    raise RowError(field, "expected a string or a list of text parts")


def _clean(text, field):
    for token in SPECIAL_TOKENS:
        if token in text:
            raise RowError(field, f"contains the harmony special token {token}, which may not appear in training text")
    return text


def to_harmony_messages(row):
    """A chat row -> [{role, content, thinking?}] in harmony roles (system -> developer). Raises RowError."""
    if not isinstance(row, dict) or not isinstance(row.get("messages"), list):
        raise RowError("messages", 'expected an object with a "messages" array')
    out = []
    for i, m in enumerate(row["messages"]):
        field = f"messages[{i}]"
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise RowError(f"{field}.role", f"expected one of {', '.join(ROLES)}")
        role = m["role"]
        if role == "tool":
            raise RowError(f"{field}.role", "tool messages are not supported by gpt-oss-lora yet")
        if role == "assistant" and m.get("tool_calls"):
            raise RowError(f"{field}.tool_calls", "tool calls are not supported by gpt-oss-lora yet")
        msg = {"role": "developer" if role == "system" else role, "content": _clean(content_text(m.get("content"), f"{field}.content"), f"{field}.content")}
        if role == "assistant" and m.get("thinking") is not None:
            if not isinstance(m["thinking"], str):
                raise RowError(f"{field}.thinking", "expected a string")
            msg["thinking"] = _clean(m["thinking"], f"{field}.thinking")
        out.append(msg)
    if not out or out[-1]["role"] != "assistant":
        raise RowError("messages", "the last message must be the assistant answer to learn")
    if not any(m["role"] == "user" for m in out):
        raise RowError("messages", "no user message")
    if not out[-1]["content"].strip():
        raise RowError(f"messages[{len(out) - 1}].content", "the assistant answer is empty")
    return out


def _developer_block(messages):
    instructions = "\n\n".join(m["content"] for m in messages if m["role"] == "developer")
    return f"<|start|>developer<|message|># Instructions\n\n{instructions}<|end|>" if instructions else ""


def render(messages, reasoning_effort="medium"):
    """Harmony messages -> (prompt, completion) text. The prompt ends with `<|start|>assistant`, where generation
    starts; the completion is what the loss is computed on: analysis (when there is thinking) and final channels,
    ending with <|return|>."""
    parts = [f"<|start|>system<|message|>{DEFAULT_SYSTEM.format(effort=reasoning_effort)}<|end|>", _developer_block(messages)]
    *history, target = messages
    for m in history:
        if m["role"] == "user":
            parts.append(f"<|start|>user<|message|>{m['content']}<|end|>")
        elif m["role"] == "assistant":
            parts.append(f"<|start|>assistant<|channel|>final<|message|>{m['content']}<|end|>")
    prompt = "".join(parts) + "<|start|>assistant"
    completion = ""
    if target.get("thinking"):
        completion += f"<|channel|>analysis<|message|>{target['thinking']}<|end|><|start|>assistant"
    completion += f"<|channel|>final<|message|>{target['content']}<|return|>"
    return prompt, completion

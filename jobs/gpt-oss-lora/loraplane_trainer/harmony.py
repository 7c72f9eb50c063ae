"""Chat-format training rows -> the harmony format GPT-OSS is trained and served with
(shared/reference/gpt-oss-lora.md), rendered exactly as the model's own chat template (chat_template.jinja of
openai/gpt-oss-20b and -120b) renders a text-only chat for training (add_generation_prompt false):
- a harmony system message with the model identity, knowledge cutoff, current date, reasoning effort and channels;
- the dataset's first message, when it is `system` (or `developer`), becomes the developer message
  (`# Instructions`); the template renders no other system/developer message, so one elsewhere is refused here
  rather than silently dropped;
- the last assistant turn is the training target: its `thinking` becomes the analysis channel and its `content` the
  final channel, ending with <|return|>; earlier assistant turns are history: final channel only (their chain of
  thought is dropped, as the template does), ending with <|end|>;
- text may not contain harmony's special tokens.
The split into prompt and completion is where generation starts (`<|start|>assistant`), so the loss covers exactly
what the model is asked to produce.
"""

import datetime

SPECIAL_TOKENS = ("<|start|>", "<|end|>", "<|message|>", "<|channel|>", "<|constrain|>", "<|return|>", "<|call|>")
ROLES = ("system", "developer", "user", "assistant", "tool")
SYSTEM_TEMPLATE = (
    "You are ChatGPT, a large language model trained by OpenAI.\n"
    "Knowledge cutoff: 2024-06\n"
    "Current date: {date}\n\n"
    "Reasoning: {effort}\n\n"
    "# Valid channels: analysis, commentary, final. Channel must be included for every message."
)


class RowError(ValueError):
    """A row the trainer cannot use; `field` names the place (e.g. messages[2].content)."""

    def __init__(self, field, problem):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


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
        if role in ("system", "developer") and i > 0:
            raise RowError(f"{field}.role", f"only the first message may be {role} (the chat template renders no other)")
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


def render(messages, reasoning_effort="medium", current_date=None):
    """Harmony messages -> (prompt, completion) text. The prompt ends with `<|start|>assistant`, where generation
    starts; the completion is what the loss is computed on: analysis (when the target has thinking) and final
    channels, ending with <|return|>. current_date defaults to today (UTC), as the template's strftime_now."""
    date = current_date or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    parts = [f"<|start|>system<|message|>{SYSTEM_TEMPLATE.format(date=date, effort=reasoning_effort)}<|end|>"]
    if messages[0]["role"] == "developer":
        if messages[0]["content"]:
            parts.append(f"<|start|>developer<|message|># Instructions\n\n{messages[0]['content']}<|end|>")
        messages = messages[1:]
    *history, target = messages
    for m in history:
        if m["role"] == "user":
            parts.append(f"<|start|>user<|message|>{m['content']}<|end|>")
        elif m["role"] == "assistant":
            parts.append(f"<|start|>assistant<|channel|>final<|message|>{m['content']}<|end|>")
    prompt = "".join(parts) + "<|start|>assistant"
    completion = ""
    if "thinking" in target:
        completion += f"<|channel|>analysis<|message|>{target['thinking']}<|end|><|start|>assistant"
    completion += f"<|channel|>final<|message|>{target['content']}<|return|>"
    return prompt, completion


def to_harmony_preference(row):
    """A DPO row (OpenAI's shape: input.messages, preferred_output, non_preferred_output, each output one assistant
    message) -> (chosen chat, rejected chat) in harmony roles, sharing the input. Raises RowError."""
    if not isinstance(row, dict) or not isinstance(row.get("input"), dict) or not isinstance(row["input"].get("messages"), list):
        raise RowError("input.messages", 'expected "input" with a "messages" array (a DPO example)')
    chats = []
    for key in ("preferred_output", "non_preferred_output"):
        out = row.get(key)
        if not isinstance(out, list) or len(out) != 1 or not isinstance(out[0], dict) or out[0].get("role") != "assistant":
            raise RowError(key, "expected a list of exactly one assistant message")
        try:
            chats.append(to_harmony_messages({"messages": row["input"]["messages"] + out}))
        except RowError as err:
            # Fields are of the joined chat: messages[i] is input.messages[i], one past the input is the output.
            n = len(row["input"]["messages"])
            field = f"{key}[0]{err.field[len(f'messages[{n}]'):]}" if err.field.startswith(f"messages[{n}]") else f"input.{err.field}"
            raise RowError(field, err.problem) from err
    answer = lambda m: (m["content"].strip(), m.get("thinking"))  # noqa: E731
    if answer(chats[0][-1]) == answer(chats[1][-1]):
        raise RowError("non_preferred_output", "preferred_output and non_preferred_output are the same answer: there is nothing to prefer")
    return chats


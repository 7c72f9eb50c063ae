"""Contract events on stdout (one JSON object per line) and the bridge from transformers' log dicts to them."""

import json
import math
import sys


class Emitter:
    """Writes events to a stream (stdout), one line each, flushed at once so the control plane sees progress live."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout

    def emit(self, event):
        self.stream.write(json.dumps(event, separators=(",", ":"), allow_nan=False) + "\n")
        self.stream.flush()

    def status(self, status, message):
        self.emit({"type": "status", "status": status, "message": message})

    def error(self, code, message, line=None):
        event = {"type": "error", "code": code, "message": message}
        if line is not None:
            event["line"] = line
        self.emit(event)

    def checkpoint(self, step, key_prefix, files, metrics=None):
        event = {"type": "checkpoint", "step": step, "key_prefix": key_prefix, "files": files}
        if metrics:
            event["metrics"] = metrics
        self.emit(event)

    def artifact(self, key_prefix, files, trained_tokens=None):
        event = {"type": "artifact", "kind": "adapter", "key_prefix": key_prefix, "files": files}
        if trained_tokens is not None:
            event["trained_tokens"] = int(trained_tokens)
        self.emit(event)


def _finite(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class MetricsBridge:
    """transformers' `on_log` dicts -> contract `metrics` events.

    A training log ({loss, grad_norm, learning_rate, epoch, [mean_token_accuracy], [train_tokens_per_second]}) gives
    one event; an evaluation log ({eval_loss, ...}) gives one with valid_* added to the last training values, because
    a metrics event always carries train_loss. The end-of-training summary (train_runtime, train_loss) and logs
    without a finite loss give nothing.
    """

    def __init__(self):
        self.last_train = None

    def convert(self, logs, step, total_steps):
        total = max(int(total_steps), 1)
        base = {"type": "metrics", "step": int(step), "total_steps": total}
        if "loss" in logs and _finite(logs["loss"]):
            event = dict(base)
            event["epoch"] = round(max(float(logs.get("epoch", 0.0)), 0.0), 4)
            event["train_loss"] = round(float(logs["loss"]), 6)
            event["learning_rate"] = max(float(logs.get("learning_rate", 0.0)), 0.0) if _finite(logs.get("learning_rate", 0.0)) else 0.0
            acc = logs.get("mean_token_accuracy")
            if _finite(acc):
                event["train_mean_token_accuracy"] = round(min(max(float(acc), 0.0), 1.0), 6)
            tps = logs.get("train_tokens_per_second")
            if _finite(tps) and tps >= 0:
                event["tokens_per_second"] = round(float(tps), 1)
            self.last_train = event
            return event
        if "eval_loss" in logs and _finite(logs["eval_loss"]) and self.last_train is not None:
            event = dict(self.last_train)
            event.update(base)
            event["valid_loss"] = round(float(logs["eval_loss"]), 6)
            acc = logs.get("eval_mean_token_accuracy")
            if _finite(acc):
                event["valid_mean_token_accuracy"] = round(min(max(float(acc), 0.0), 1.0), 6)
            return event
        return None

"""DPO (method "dpo", OpenAI's line shape) for GPT-OSS: the same loss as the tiny-lora trainer,
-log sigmoid(beta * ((log pi(yw) - log ref(yw)) - (log pi(yl) - log ref(yl)))), with the reference being the model
with the LoRA disabled (PEFT's disable_adapter), so no second copy of the weights is loaded; plus
rpo_alpha * NLL(yw) / |yw| (the preferred output's mean token NLL, TRL's rpo_alpha) when the job sets it.

The pure parts (the loss on numbers, pairing prompt and answers into token rows) need only the standard library and
are tested with python3; the torch parts are imported inside functions."""

import math

from . import lora_config

DEFAULT_BETA = 0.1


def beta_of(spec):
    """The job's beta (the control plane resolves "auto" to 0.1); a spec without it gets OpenAI's default."""
    return spec["hyperparameters"].get("beta", DEFAULT_BETA)


def rpo_alpha_of(spec):
    """The weight of the preferred output's NLL; absent = 0, the pure DPO loss (GPT-OSS's default)."""
    return spec["hyperparameters"].get("rpo_alpha", 0.0)


def softplus(x):
    return x + math.log1p(math.exp(-x)) if x > 0 else math.log1p(math.exp(x))


def dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta, rpo_alpha=0.0, chosen_tokens=1):
    """The DPO loss of one pair from summed answer log-probabilities (plus the anchor on the chosen answer's mean
    token NLL), and whether the pair is ranked right."""
    margin = beta * ((policy_chosen - ref_chosen) - (policy_rejected - ref_rejected))
    return softplus(-margin) - rpo_alpha * policy_chosen / chosen_tokens, margin > 0


def _answer_row(prompt_ids, answer_ids):
    """Prompt + answer ids with labels on the answer only, cut to MAX_LENGTH from the prompt's left."""
    keep_prompt = max(lora_config.MAX_LENGTH - len(answer_ids), 0)
    prompt_ids = prompt_ids[-keep_prompt:] if keep_prompt else []
    ids = (prompt_ids + answer_ids)[: lora_config.MAX_LENGTH]
    labels = ([-100] * len(prompt_ids) + answer_ids)[: lora_config.MAX_LENGTH]
    return ids, labels


def tokenize_pairs(examples, encode):
    """DPO examples ({prompt, chosen, rejected} text) -> rows of chosen and rejected ids/labels; `encode` maps text
    to token ids (the tokenizer without special tokens added). Returns (rows, tokens per epoch)."""
    rows = []
    tokens = 0
    for ex in examples:
        prompt = encode(ex["prompt"])
        chosen_ids, chosen_labels = _answer_row(prompt, encode(ex["chosen"]))
        rejected_ids, rejected_labels = _answer_row(prompt, encode(ex["rejected"]))
        rows.append({"chosen_ids": chosen_ids, "chosen_labels": chosen_labels, "rejected_ids": rejected_ids, "rejected_labels": rejected_labels})
        tokens += len(chosen_ids) + len(rejected_ids)
    return rows, tokens


def collate_pairs(pad_id):
    """A batch of pairs -> one padded batch of 2B sequences: the chosen answers first, then the rejected ones."""
    import torch

    def fn(batch):
        seqs = [(r["chosen_ids"], r["chosen_labels"]) for r in batch] + [(r["rejected_ids"], r["rejected_labels"]) for r in batch]
        width = max(len(ids) for ids, _ in seqs)
        ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
        labels = torch.full((len(seqs), width), -100, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, (s_ids, s_labels) in enumerate(seqs):
            ids[i, : len(s_ids)] = torch.tensor(s_ids)
            labels[i, : len(s_labels)] = torch.tensor(s_labels)
            mask[i, : len(s_ids)] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}

    return fn


def sequence_logps(logits, labels):
    """Summed log-probabilities of the labelled tokens of each sequence (labels shifted: token t predicts t+1)."""
    import torch

    logits = logits[:, :-1, :].float()
    labels = labels[:, 1:]
    mask = labels != -100
    picked = torch.gather(torch.log_softmax(logits, dim=-1), 2, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * mask).sum(dim=-1)


def make_trainer_class(beta, rpo_alpha=0.0):
    """A transformers Trainer whose loss is DPO's (with the anchor when rpo_alpha > 0), the reference being the same
    model with the adapter disabled."""
    import torch
    import torch.nn.functional as F
    from transformers import Trainer

    class DpoTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs["labels"]
            half = labels.shape[0] // 2
            policy = sequence_logps(model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits, labels)
            with torch.no_grad(), model.disable_adapter():
                reference = sequence_logps(model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits, labels)
            margin = beta * ((policy[:half] - reference[:half]) - (policy[half:] - reference[half:]))
            loss = -F.logsigmoid(margin).mean()
            if rpo_alpha:
                chosen_tokens = (labels[:half, 1:] != -100).sum(dim=-1).clamp(min=1)
                loss = loss + rpo_alpha * (-policy[:half] / chosen_tokens).mean()
            return (loss, {"margin": margin}) if return_outputs else loss

    return DpoTrainer

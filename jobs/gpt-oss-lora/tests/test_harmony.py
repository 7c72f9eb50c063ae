import unittest

from loraplane_trainer import harmony
from loraplane_trainer.harmony import RowError, render, to_harmony_messages

DATE = "2026-11-25"
# What openai/gpt-oss-20b's chat_template.jinja renders as its system message (reasoning_effort medium).
SYSTEM = (
    "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
    "Knowledge cutoff: 2024-06\nCurrent date: 2026-11-25\n\nReasoning: medium\n\n"
    "# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>"
)


class HarmonyTest(unittest.TestCase):
    def test_system_becomes_developer_and_thinking_becomes_analysis(self):
        row = {"messages": [
            {"role": "system", "content": "Route the ticket."},
            {"role": "user", "content": "My parcel never came"},
            {"role": "assistant", "content": "shipping", "thinking": "Parcel -> shipping team."},
        ]}
        messages = to_harmony_messages(row)
        self.assertEqual([m["role"] for m in messages], ["developer", "user", "assistant"])
        prompt, completion = render(messages, current_date=DATE)
        self.assertEqual(
            prompt,
            SYSTEM
            + "<|start|>developer<|message|># Instructions\n\nRoute the ticket.<|end|>"
            + "<|start|>user<|message|>My parcel never came<|end|>"
            + "<|start|>assistant",
        )
        self.assertEqual(
            completion,
            "<|channel|>analysis<|message|>Parcel -> shipping team.<|end|>"
            "<|start|>assistant<|channel|>final<|message|>shipping<|return|>",
        )

    def test_without_thinking_the_target_is_the_final_channel_only_and_ends_with_return(self):
        prompt, completion = render(to_harmony_messages({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}), current_date=DATE)
        self.assertEqual(prompt, SYSTEM + "<|start|>user<|message|>hi<|end|><|start|>assistant")
        self.assertEqual(completion, "<|channel|>final<|message|>hello<|return|>")

    def test_history_turns_end_with_end_and_drop_their_analysis(self):
        row = {"messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b", "thinking": "old reasoning"},
            {"role": "user", "content": "c"},
            {"role": "assistant", "content": "d"},
        ]}
        prompt, _ = render(to_harmony_messages(row), current_date=DATE)
        self.assertIn("<|start|>assistant<|channel|>final<|message|>b<|end|><|start|>user<|message|>c<|end|>", prompt)
        self.assertNotIn("old reasoning", prompt)

    def test_a_leading_developer_message_is_the_instructions_and_content_parts_are_joined(self):
        row = {"messages": [
            {"role": "developer", "content": "one"},
            {"role": "user", "content": [{"type": "text", "text": "x"}, {"type": "text", "text": "y"}]}, {"role": "assistant", "content": "z"},
        ]}
        prompt, _ = render(to_harmony_messages(row), reasoning_effort="high", current_date=DATE)
        self.assertIn("Reasoning: high", prompt)
        self.assertTrue(prompt.endswith("<|end|><|start|>developer<|message|># Instructions\n\none<|end|><|start|>user<|message|>xy<|end|><|start|>assistant"))

    def test_empty_thinking_still_opens_the_analysis_channel_as_the_template_does(self):
        _, completion = render(to_harmony_messages({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "thinking": ""}]}), current_date=DATE)
        self.assertEqual(completion, "<|channel|>analysis<|message|><|end|><|start|>assistant<|channel|>final<|message|>b<|return|>")

    def test_the_date_defaults_to_today_utc(self):
        import datetime

        prompt, _ = render(to_harmony_messages({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}))
        self.assertIn(f"Current date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d}\n", prompt)

    def test_special_tokens_in_text_are_refused_with_the_field(self):
        for token in harmony.SPECIAL_TOKENS:
            with self.assertRaises(RowError) as ctx:
                to_harmony_messages({"messages": [{"role": "user", "content": f"x {token} y"}, {"role": "assistant", "content": "ok"}]})
            self.assertEqual(ctx.exception.field, "messages[0].content")
        with self.assertRaises(RowError) as ctx:
            to_harmony_messages({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "ok", "thinking": "<|call|>"}]})
        self.assertEqual(ctx.exception.field, "messages[1].thinking")

    def test_rows_that_cannot_be_trained(self):
        cases = [
            ({"nope": 1}, "messages"),
            ({"messages": [{"role": "bot", "content": "x"}]}, "messages[0].role"),
            ({"messages": [{"role": "user", "content": "x"}]}, "messages"),
            ({"messages": [{"role": "system", "content": "x"}, {"role": "assistant", "content": "y"}]}, "messages"),
            ({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "  "}]}, "messages[1].content"),
            ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}, {"role": "assistant", "content": "y"}]}, "messages[0].content[0]"),
            ({"messages": [{"role": "user", "content": "x"}, {"role": "tool", "content": "y"}, {"role": "assistant", "content": "z"}]}, "messages[1].role"),
            ({"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": "y"}]}, "messages[0].content"),
            ({"messages": [{"role": "user", "content": "x"}, {"role": "system", "content": "late"}, {"role": "assistant", "content": "y"}]}, "messages[1].role"),
        ]
        for row, field in cases:
            with self.subTest(row=row), self.assertRaises(RowError) as ctx:
                to_harmony_messages(row)
            self.assertEqual(ctx.exception.field, field)


if __name__ == "__main__":
    unittest.main()

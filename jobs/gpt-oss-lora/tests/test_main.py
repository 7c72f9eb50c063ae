"""The entry point as a process: dry-run against a local stand-in for S3, exit codes and events, imports without
torch, and the SIGTERM watchdog."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

from .helpers import FakeS3, assert_events_valid, valid_spec

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
ROW = {"messages": [{"role": "system", "content": "Route it."}, {"role": "user", "content": "parcel late"}, {"role": "assistant", "content": "shipping", "thinking": "late parcel"}]}


def run_trainer(spec, *args):
    with tempfile.TemporaryDirectory() as scratch:
        env = dict(os.environ, LORAPLANE_JOB_SPEC=spec if isinstance(spec, str) else json.dumps(spec), LORAPLANE_SCRATCH_DIR=scratch)
        proc = subprocess.run([sys.executable, "-m", "loraplane_trainer", *args], cwd=PACKAGE_ROOT, env=env, capture_output=True, text=True, timeout=60)
    return proc


class DryRunTest(unittest.TestCase):
    def events(self, proc):
        return assert_events_valid(self, [line for line in proc.stdout.splitlines() if json.loads(line).get("type")])

    def test_a_valid_spec_and_data_pass_without_a_gpu(self):
        with FakeS3() as s3:
            spec = valid_spec(checkpoint_every_steps=2)
            spec["data"]["training_file"] = s3.put("train.jsonl", ("\n".join(json.dumps(ROW) for _ in range(20)) + "\n").encode())
            spec["hyperparameters"]["lora"]["target_modules"] = ["q_proj", "o_proj", "mlp.experts.gate_up_proj", "mlp.experts.down_proj"]
            proc = run_trainer(spec, "--dry-run")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        lines = proc.stdout.splitlines()
        self.assertEqual(self.events(proc), [{"type": "status", "status": "loading_data", "message": "downloading and checking the dataset"}])
        summary = json.loads(lines[-1])
        self.assertEqual((summary["dry_run"], summary["examples"], summary["total_steps"]), ("ok", 20, 3))
        self.assertEqual(summary["lora"]["target_parameters"], ["mlp.experts.gate_up_proj", "mlp.experts.down_proj"])
        self.assertNotIn("torch", proc.stderr)

    def test_an_invalid_row_exits_3_naming_the_line_and_field(self):
        bad = {"messages": [{"role": "user", "content": "x <|end|> y"}, {"role": "assistant", "content": "ok"}]}
        with FakeS3() as s3:
            spec = valid_spec()
            spec["data"]["training_file"] = s3.put("train.jsonl", f"{json.dumps(ROW)}\n\n{json.dumps(bad)}\n".encode())
            proc = run_trainer(spec, "--dry-run")
        self.assertEqual(proc.returncode, 3)
        self.assertEqual(self.events(proc)[-1], {
            "type": "error", "code": "invalid_data", "line": 3,
            "message": "training file line 3: messages[0].content: contains the harmony special token <|end|>, which may not appear in training text",
        })

    def test_unreachable_data_exits_4_without_printing_the_presigned_url(self):
        with FakeS3() as s3:
            spec = valid_spec()
            spec["data"]["training_file"] = dict(s3.put("train.jsonl", b"x"), url=f"{s3.url}/files/gone?X-Amz-Signature=secret")
            proc = run_trainer(spec, "--dry-run")
        self.assertEqual(proc.returncode, 4)
        self.assertEqual(self.events(proc)[-1]["code"], "data_unreachable")
        self.assertNotIn("secret", proc.stdout + proc.stderr)

    def test_a_bad_spec_exits_2_before_any_download(self):
        proc = run_trainer("not json", "--dry-run")
        self.assertEqual(proc.returncode, 2)
        [event] = self.events(proc)
        self.assertEqual(event["code"], "invalid_spec")
        self.assertTrue(event["message"].startswith("LORAPLANE_JOB_SPEC is not JSON"), event["message"])

    def test_a_local_training_file_can_be_checked(self):
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            f.write(json.dumps(ROW) + "\n")
        self.addCleanup(os.unlink, f.name)
        proc = run_trainer(valid_spec(), "--dry-run", "--training-file", f.name)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(json.loads(proc.stdout.splitlines()[-1])["examples"], 1)


class ImportsTest(unittest.TestCase):
    def test_the_pure_modules_and_the_entry_point_import_without_torch_or_transformers(self):
        code = (
            "import sys\n"
            "import loraplane_trainer.__main__, loraplane_trainer.contract, loraplane_trainer.harmony, loraplane_trainer.events\n"
            "import loraplane_trainer.transfer, loraplane_trainer.data, loraplane_trainer.lora_config, loraplane_trainer.train\n"
            "print(sorted(m for m in ('torch', 'transformers', 'peft', 'numpy') if m in sys.modules))\n"
        )
        proc = subprocess.run([sys.executable, "-c", code], cwd=PACKAGE_ROOT, capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout.strip(), "[]")


class StopSignalTest(unittest.TestCase):
    def test_sigterm_sets_the_flag_and_the_watchdog_exits_143_inside_the_grace_period(self):
        code = (
            "import sys, time\n"
            "from loraplane_trainer.events import Emitter\n"
            "from loraplane_trainer.stopping import StopSignal\n"
            "e = Emitter()\n"
            "stop = StopSignal(4, lambda m: e.error('cancelled', m))\n"
            "stop.install()\n"
            "stop.training = True\n"
            "print('ready', flush=True)\n"
            "while not stop.requested: time.sleep(0.01)\n"
            "print('flag set', flush=True)\n"
            "time.sleep(30)  # a checkpoint that does not fit: the watchdog must end it\n"
        )
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=PACKAGE_ROOT, stdout=subprocess.PIPE, text=True)
        self.assertEqual(proc.stdout.readline().strip(), "ready")
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out = proc.stdout.read()
        proc.wait(timeout=10)
        elapsed = time.monotonic() - sent
        proc.stdout.close()
        self.assertEqual(proc.returncode, 143)
        lines = out.splitlines()
        self.assertEqual(lines[0], "flag set")
        event = assert_events_valid(self, lines[1:])[0]
        self.assertEqual(event["code"], "cancelled")
        self.assertIn("did not fit in the 4 s grace period", event["message"])
        self.assertLess(elapsed, 4)  # grace 4 s minus the 3 s safety margin: about 1 s

    def test_before_training_sigterm_exits_143_at_once(self):
        code = (
            "import time\n"
            "from loraplane_trainer.events import Emitter\n"
            "from loraplane_trainer.stopping import StopSignal\n"
            "e = Emitter()\n"
            "StopSignal(30, lambda m: e.error('cancelled', m)).install()\n"
            "print('ready', flush=True)\n"
            "time.sleep(30)  # e.g. loading the model\n"
        )
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=PACKAGE_ROOT, stdout=subprocess.PIPE, text=True)
        self.assertEqual(proc.stdout.readline().strip(), "ready")
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out = proc.stdout.read()
        proc.wait(timeout=10)
        proc.stdout.close()
        self.assertEqual(proc.returncode, 143)
        self.assertLess(time.monotonic() - sent, 2)
        [event] = assert_events_valid(self, out.splitlines())
        self.assertEqual(event, {"type": "error", "code": "cancelled", "message": "received SIGTERM before training; stopped"})


if __name__ == "__main__":
    unittest.main()


class GpuSmokeToolTest(unittest.TestCase):
    """tools/gpu_smoke.py runs only on a GPU machine; its data and upload bookkeeping are checked here."""

    def load(self):
        import importlib.util

        spec = importlib.util.spec_from_file_location("gpu_smoke", PACKAGE_ROOT / "tools" / "gpu_smoke.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # imports torch only inside its functions
        return module

    def test_its_dataset_is_valid_training_data_and_uploads_are_read_back_by_key(self):
        from loraplane_trainer import data

        tool = self.load()
        lines = tool.dataset(8).decode().splitlines()
        self.assertEqual(len(lines), 8)
        for i, line in enumerate(lines, start=1):
            example = data.parse_line(line, i, "training file")
            self.assertTrue(example["completion"].startswith("<|channel|>analysis<|message|>"))
        with FakeS3() as s3, tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "a.bin")
            with open(path, "wb") as f:
                f.write(b"abc")
            from loraplane_trainer import transfer

            transfer.upload_file(s3.output("x/"), "ck/a.bin", path, lambda m: None)
            self.assertEqual(tool.uploaded(s3), {"x/ck/a.bin": b"abc"})

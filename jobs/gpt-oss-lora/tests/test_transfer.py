import os
import tempfile
import unittest
from unittest import mock

from loraplane_trainer import transfer
from loraplane_trainer.contract import TrainerError

from .helpers import FakeS3, parse_form, sha256


def quiet(_message):
    pass


class PostFormTest(unittest.TestCase):
    def test_policy_fields_then_key_then_the_file_last(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "adapter_model.safetensors")
            data = bytes(range(256)) * 3
            with open(path, "wb") as f:
                f.write(data)
            form = transfer.PostForm({"bucket": "b", "key": "ignored", "Policy": "cG9s", "X-Amz-Signature": "s"}, "p/adapter_model.safetensors", path)
            body = form.body()
            self.assertEqual(len(body), form.length)
            parts = parse_form(form.content_type, body)
        self.assertEqual([p[0] for p in parts], ["bucket", "Policy", "X-Amz-Signature", "key", "file"])
        self.assertEqual(parts[3][2], b"p/adapter_model.safetensors")
        self.assertEqual(parts[4][1], "adapter_model.safetensors")
        self.assertEqual(parts[4][2], data)


class UploadTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        os.makedirs(os.path.join(self.tmp.name, "sub"))
        for name, data in [("adapter_config.json", b'{"r": 8}'), ("sub/optimizer.pt", b"\x00" * 100)]:
            with open(os.path.join(self.tmp.name, name), "wb") as f:
                f.write(data)

    def test_uploads_a_directory_under_the_prefix_and_reports_sizes_and_sha256(self):
        with FakeS3() as s3:
            s3.fail = [500]  # one transient failure is retried
            files = transfer.upload_dir(s3.output(), self.tmp.name, "checkpoint-5/", quiet)
            self.assertEqual(files, [
                {"name": "checkpoint-5/adapter_config.json", "bytes": 8, "sha256": sha256(b'{"r": 8}')},
                {"name": "checkpoint-5/sub/optimizer.pt", "bytes": 100, "sha256": sha256(b"\x00" * 100)},
            ])
            keys = [dict((p[0], p[2]) for p in post)["key"] for post in s3.posts]
        self.assertEqual(keys, [b"jobs/j1/attempt-1/checkpoint-5/adapter_config.json", b"jobs/j1/attempt-1/checkpoint-5/sub/optimizer.pt"])

    def test_a_refusal_is_upload_failed_with_the_s3_code_and_is_not_retried(self):
        with FakeS3() as s3:
            s3.fail = [403, 403, 403]
            with self.assertRaises(TrainerError) as ctx:
                transfer.upload_file(s3.output(), "adapter_config.json", os.path.join(self.tmp.name, "adapter_config.json"), quiet)
            self.assertEqual(s3.fail, [403, 403])  # asked once
        self.assertEqual(ctx.exception.code, "upload_failed")
        self.assertEqual(ctx.exception.message, "upload of adapter_config.json failed: HTTP 403: AccessDenied: Invalid according to Policy")

    def test_a_file_over_max_bytes_is_not_sent(self):
        with FakeS3() as s3:
            with self.assertRaises(TrainerError) as ctx:
                transfer.upload_file(s3.output(max_bytes=10), "optimizer.pt", os.path.join(self.tmp.name, "sub/optimizer.pt"), quiet)
            self.assertEqual(s3.posts, [])
        self.assertIn("over output.max_bytes 10", ctx.exception.message)


class DownloadTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.dest = os.path.join(self.tmp.name, "train.jsonl")

    def test_downloads_and_checks_size_and_sha256(self):
        with FakeS3() as s3:
            ref = s3.put("train.jsonl", b"line\n" * 1000)
            s3.fail = [503]
            transfer.download_verified(ref, self.dest, "training file", quiet)
        with open(self.dest, "rb") as f:
            self.assertEqual(f.read(), b"line\n" * 1000)

    def test_a_mismatch_refusal_or_dead_host_is_data_unreachable_without_the_url(self):
        with FakeS3() as s3:
            ref = s3.put("train.jsonl", b"abc")
            bad = dict(ref, sha256="0" * 64)
            cases = [
                (bad, "expected 3 bytes with sha256 " + "0" * 64),
                (dict(ref, url=f"{s3.url}/files/missing?X-Amz-Signature=secret"), "could not download: HTTP 404"),
            ]
            for case, fragment in cases:
                with self.subTest(fragment=fragment), self.assertRaises(TrainerError) as ctx:
                    transfer.download_verified(case, self.dest, "training file", quiet)
                self.assertEqual(ctx.exception.code, "data_unreachable")
                self.assertIn(fragment, ctx.exception.message)
                self.assertNotIn("secret", ctx.exception.message)
            dead = dict(ref, url=f"{s3.url}/files/train.jsonl")
        # The server is gone: every attempt fails to connect (no waiting between them in a test).
        with mock.patch.object(transfer, "_sleep"), self.assertRaises(TrainerError) as ctx:
            transfer.download_verified(dead, self.dest, "training file", quiet)
        self.assertEqual(ctx.exception.code, "data_unreachable")


if __name__ == "__main__":
    unittest.main()

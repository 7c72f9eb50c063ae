"""Shared test helpers: a valid spec, the contract's event schema, and a local HTTP server standing in for S3's
presigned GET and POST endpoints (the integration suite runs the real s3rver; these tests need only the standard
library)."""

import copy
import email.parser
import email.policy
import hashlib
import http.server
import json
import threading
from pathlib import Path

from loraplane_trainer import schema_check

SCHEMA_DIR = Path(__file__).resolve().parent.parent.parent / "schema"


def event_schema():
    return json.loads((SCHEMA_DIR / "trainer-event.schema.json").read_text())


def assert_events_valid(testcase, lines):
    schema = event_schema()
    events = []
    for line in lines:
        event = json.loads(line)
        testcase.assertEqual(schema_check.errors(schema, event), [], line)
        events.append(event)
    return events


def valid_spec(**overrides):
    spec = {
        "contract_version": 1,
        "job_id": "ftjob-test",
        "attempt": 1,
        "model": {"name": "gpt-oss-20b", "weights": "openai/gpt-oss-20b"},
        "method": "supervised",
        "seed": 42,
        "hyperparameters": {
            "n_epochs": 1, "batch_size": 8, "learning_rate": 2e-4,
            "lora": {"r": 8, "alpha": 16, "dropout": 0, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]},
        },
        "data": {"training_file": {"url": "http://127.0.0.1:9/train.jsonl", "sha256": "a" * 64, "bytes": 10}, "validation_file": None},
        "output": {"url": "http://127.0.0.1:9/bucket", "fields": {"Policy": "x"}, "key_prefix": "p/", "max_bytes": 1 << 20, "expires_at": 1900000000},
    }
    spec = copy.deepcopy(spec)
    spec.update(overrides)
    return spec


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class FakeS3:
    """Serves GET /files/<name> from `objects`, and records POST /bucket forms (parsed) in `posts`. `fail` holds
    status codes to answer the next requests with, in order (e.g. [500] = one transient failure)."""

    def __init__(self):
        self.objects = {}
        self.posts = []
        self.fail = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _failing(self):
                if outer.fail:
                    code = outer.fail.pop(0)
                    body = b"<Error><Code>AccessDenied</Code><Message>Invalid according to Policy</Message></Error>"
                    self.send_response(code)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return True
                return False

            def do_GET(self):
                length = 0
                if self._failing():
                    return
                name = self.path.split("?")[0].split("/")[-1]
                if name not in outer.objects:
                    self.send_response(404)
                    self.send_header("Content-Length", str(length))
                    self.end_headers()
                    return
                data = outer.objects[name]
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self._failing():
                    return
                outer.posts.append(parse_form(self.headers["Content-Type"], body))
                self.send_response(204)
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def put(self, name, data):
        self.objects[name] = data
        return {"url": f"{self.url}/files/{name}?X-Amz-Signature=secret", "sha256": sha256(data), "bytes": len(data)}

    def output(self, prefix="jobs/j1/attempt-1/", max_bytes=1 << 20):
        return {"url": f"{self.url}/bucket", "fields": {"Policy": "cG9saWN5", "X-Amz-Signature": "sig"}, "key_prefix": prefix, "max_bytes": max_bytes, "expires_at": 1900000000}


def parse_form(content_type, body):
    """multipart/form-data -> [(name, filename, bytes)] in wire order, parsed by the standard library's MIME parser."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    parts = []
    for part in message.iter_parts():
        parts.append((part.get_param("name", header="content-disposition"), part.get_filename(), part.get_payload(decode=True)))
    return parts

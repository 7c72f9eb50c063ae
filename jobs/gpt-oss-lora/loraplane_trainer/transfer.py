"""Data in through presigned GET (sha256-checked), files out through the presigned POST policy (jobs/CONTRACT.md
sections 3 and 4). Standard library only. The POST body is streamed from disk: a 120B adapter with expert weights is
gigabytes, and the container's memory is for the model."""

import hashlib
import os
import re
import time
import urllib.error
import urllib.request
import uuid

from .contract import TrainerError

ATTEMPTS = 3
TIMEOUT_S = 600
CHUNK = 1 << 20


def _retryable(status):
    return status == 429 or status >= 500


def _sleep(attempt):
    time.sleep(0.25 * attempt)


def download_verified(ref, dest, label, log):
    """GET ref["url"] into dest; the body must have ref["bytes"] bytes and ref["sha256"]. Retries network errors and
    5xx; anything else is TrainerError('data_unreachable'). The URL (a secret) is never put in a message."""
    problem = ""
    for attempt in range(1, ATTEMPTS + 1):
        if attempt > 1:
            _sleep(attempt - 1)
        digest = hashlib.sha256()
        size = 0
        try:
            with urllib.request.urlopen(ref["url"], timeout=TIMEOUT_S) as res, open(dest, "wb") as out:
                while True:
                    chunk = res.read(CHUNK)
                    if not chunk:
                        break
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
        except urllib.error.HTTPError as err:
            problem = f"HTTP {err.code}"
            if not _retryable(err.code):
                break  # 403 = expired or wrong signature: retrying will not help
            continue
        except (urllib.error.URLError, OSError) as err:
            problem = str(getattr(err, "reason", err))
            log(f"{label}: download attempt {attempt} failed: {problem}")
            continue
        sha = digest.hexdigest()
        if size != ref["bytes"] or sha != ref["sha256"]:
            raise TrainerError(
                "data_unreachable",
                f"{label}: downloaded {size} bytes with sha256 {sha}, expected {ref['bytes']} bytes with sha256 {ref['sha256']}",
            )
        return
    raise TrainerError("data_unreachable", f"{label}: could not download: {problem}")


class PostForm:
    """multipart/form-data for one presigned POST: every policy field as given (a `key` left there is dropped: the
    trainer sets it), then `key`, then the file LAST (S3 ignores fields after the file). Iterable, with a known
    length, so urllib streams it."""

    def __init__(self, fields, key, path, filename=None, boundary=None):
        self.boundary = boundary or f"loraplane-{uuid.uuid4().hex}"
        self.path = path
        head = b""
        for name, value in fields.items():
            if name.lower() == "key":
                continue
            head += self._part_header(name) + value.encode("utf-8") + b"\r\n"
        head += self._part_header("key") + key.encode("utf-8") + b"\r\n"
        filename = filename or os.path.basename(path)
        head += self._part_header("file", filename, "application/octet-stream")
        self.head = head
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.length = len(self.head) + os.path.getsize(path) + len(self.tail)

    def _part_header(self, name, filename=None, content_type=None):
        lines = [f"--{self.boundary}", f'Content-Disposition: form-data; name="{_quote(name)}"']
        if filename is not None:
            lines[1] += f'; filename="{_quote(filename)}"'
        if content_type is not None:
            lines.append(f"Content-Type: {content_type}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    @property
    def content_type(self):
        return f"multipart/form-data; boundary={self.boundary}"

    def __iter__(self):
        yield self.head
        with open(self.path, "rb") as f:
            while True:
                chunk = f.read(CHUNK)
                if not chunk:
                    break
                yield chunk
        yield self.tail

    def body(self):
        return b"".join(self)


def _quote(text):
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", " ").replace("\n", " ")


def _s3_error_summary(body):
    """': Code: Message' from an S3 XML error body; the raw body is never echoed into events."""
    text = body.decode("utf-8", "replace")
    code = re.search(r"<Code>([^<]{0,200})</Code>", text)
    message = re.search(r"<Message>([^<]{0,200})</Message>", text)
    if not code:
        return ""
    return f": {code.group(1)}" + (f": {message.group(1)}" if message else "")


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def upload_file(output, relative_name, path, log):
    """POST one file under output["key_prefix"] + relative_name. Returns {name, bytes, sha256} for the events."""
    size = os.path.getsize(path)
    if size > output["max_bytes"]:
        raise TrainerError("upload_failed", f"{relative_name} is {size} bytes, over output.max_bytes {output['max_bytes']}")
    problem = ""
    for attempt in range(1, ATTEMPTS + 1):
        form = PostForm(output["fields"], output["key_prefix"] + relative_name, path, os.path.basename(relative_name))
        req = urllib.request.Request(
            output["url"], data=iter(form), method="POST",
            headers={"Content-Type": form.content_type, "Content-Length": str(form.length)},
        )
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_S) as res:
                res.read()
            return {"name": relative_name, "bytes": size, "sha256": sha256_file(path)}
        except urllib.error.HTTPError as err:
            problem = f"HTTP {err.code}{_s3_error_summary(err.read())}"
            if not _retryable(err.code):
                break
        except (urllib.error.URLError, OSError) as err:
            problem = str(getattr(err, "reason", err))
        log(f"upload of {relative_name} attempt {attempt} failed: {problem}")
        if attempt < ATTEMPTS:
            _sleep(attempt)
    raise TrainerError("upload_failed", f"upload of {relative_name} failed: {problem}")


def upload_dir(output, local_dir, sub_prefix, log):
    """Upload every file under local_dir (sorted, so events list them in a stable order) as sub_prefix + relative path."""
    files = []
    for root, _dirs, names in os.walk(local_dir):
        for name in names:
            full = os.path.join(root, name)
            files.append((os.path.relpath(full, local_dir).replace(os.sep, "/"), full))
    return [upload_file(output, sub_prefix + rel, full, log) for rel, full in sorted(files)]

"""A real S3 API server on loopback for the tests: moto in server mode, run as a child process.

moto keeps its buckets in memory and accepts any credentials; the stores under test reach it over HTTP
through boto3 exactly as they would reach AWS or MinIO. Each test makes a bucket of its own. The server
listens on ``127.0.0.1`` and is addressed as ``localhost``, so that a virtual-hosted request
(``bucket.localhost``) is still recognised by moto as naming a bucket in its host.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from convoscope.store.s3blobs import AddressingStyle, S3BlobStore

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

ACCESS_KEY = "convoscope-test"
SECRET_KEY = "convoscope-test-secret"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": ACCESS_KEY,
    "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    "AWS_DEFAULT_REGION": "us-east-1",
    # Nothing from the machine's own AWS set-up, and no instance-metadata lookups.
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
"""The standard AWS variables the stores' credential chain reads; the fixtures set them for a session."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class S3Server:
    """One moto server; ``bucket()`` creates an empty bucket and returns its name."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._names = itertools.count()
        self._process: subprocess.Popen[bytes] | None = None
        self.start()
        self._admin: S3Client = boto3.session.Session(
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name="us-east-1"
        ).client("s3", endpoint_url=self.url)

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    @property
    def address(self) -> str:
        """Where the server listens, for a client that cannot resolve ``bucket.localhost`` itself."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        # The log goes to a file: a pipe nobody reads would fill with request lines and stall the server.
        self._log = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._log.seek(0)
                output = self._log.read().decode(errors="replace")
                self._log.close()
                self._process = None
                raise RuntimeError(f"moto server exited: {output[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server did not listen on port {self.port} within 60 s")

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None
        self._log.close()

    def close(self) -> None:
        self._admin.close()
        self.stop()

    def bucket(self) -> str:
        name = f"cvs-{next(self._names)}-{uuid.uuid4().hex[:12]}"
        self._admin.create_bucket(Bucket=name)
        return name

    def store(
        self,
        spool_dir: Path,
        *,
        bucket: str | None = None,
        prefix: str = "recordings",
        addressing_style: AddressingStyle = "path",
        **options: Any,
    ) -> S3BlobStore:
        """A store over a new bucket (or ``bucket``) of this server, spooling under ``spool_dir``."""
        return S3BlobStore(
            bucket or self.bucket(),
            prefix,
            endpoint_url=self.url,
            addressing_style=addressing_style,
            spool_dir=spool_dir,
            **options,
        )

    def keys(self, bucket: str) -> list[str]:
        """Every object key in ``bucket``, to see what a store left there."""
        listed = self._admin.list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def object(self, bucket: str, key: str) -> bytes:
        body = self._admin.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            return body.read()
        finally:
            body.close()

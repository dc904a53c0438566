"""The one-plan fast paths of ingest agree with simple references (hypothesis-generated input):
Tardis book blocks against a per-line Python parse, the Writer's one-plan validation against
its step-by-step path, and the fast gzip library against the standard one on damaged files."""
from __future__ import annotations

import gzip
import random
import re
import zlib

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forensics.ingest import source, tardis
from forensics.ingest.normalise import EXACT_INPUT, LINE_SHIFT, ReadOptions, Writer, _checks, _validate_fast
from forensics.ingest.source import Source, _GunzipStream
from forensics.store import Store
from forensics.timeutil import to_ns

HEADER = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount"
INT = re.compile(r"^[+-]?[0-9]+$")

# ---- Tardis book: block parse + conversion vs a per-line reference ----------------------------

ts_text = st.one_of(st.integers(1_500_000_000_000_000, 1_800_000_000_000_000).map(str),
                    st.sampled_from(["", "12x", " 1760130000000000", "+1760130000000001", "1e15", "-5"]))
snap_text = st.sampled_from(["true", "false", "true", "false", "TRUE", "False", "maybe", ""])
side_text = st.sampled_from(["bid", "ask", "bid", "ask", "BID", "Ask", "buy", ""])
num_text = st.one_of(st.decimals(0, 10**6, places=3, allow_nan=False).map(str),
                     st.sampled_from(["0", "1e-05", "-1", "", "abc", "1.5000"]))
exch_text = st.sampled_from(["binance-futures", "binance", "OKEX-SWAP", "deribit"])
line_st = st.one_of(
    st.tuples(exch_text, st.sampled_from(["BTCUSDT", "ETHUSDT", ""]), ts_text, ts_text, snap_text, side_text,
              num_text, num_text).map(",".join),
    st.sampled_from(["", "a,b,c", "x,y,1,2,true,bid,1,2,extra", 'binance,"BTC,USDT",1,2,true,bid,1,2']))


def reference_book(lines: list[str], opts: ReadOptions):
    """Per line: field count, integer timestamps, true/false, the Tardis name map."""
    rows, rejects, prev_snap, prev_ts = [], [], True, None
    for i, text in enumerate(lines):
        line = i + 2  # after the header
        if not text.strip():
            continue
        f = text.split(",")
        if len(f) != 8 or '"' in text:
            rejects.append((line, "expected 8 comma-separated fields"))
            continue
        ex, sy, t, lt, snap, side, price, amount = f
        bad = False
        for v, what in ((t, "timestamp"), (lt, "local_timestamp")):
            if v.strip() and not (INT.match(v.strip()) and -2**63 <= int(v.strip()) < 2**63):
                rejects.append((line, f"non-integer {what} {v!r}"))
                bad = True
                break
        if bad:
            continue
        if snap.lower() not in ("true", "false"):
            rejects.append((line, f"is_snapshot must be true/false, got {snap or None!r}"))
            continue
        tv = int(t) if t.strip() else None
        ltv = int(lt) if lt.strip() else None
        is_snap = snap.lower() == "true"
        ts = to_ns(tv) if tv is not None else None
        rows.append({"exchange": opts.exchange or tardis.EXCHANGE_NAMES.get(ex.lower(), ex.lower()),
                     "symbol": opts.symbol or (sy or None), "timestamp": tv, "local_timestamp": ltv,
                     "is_snapshot": is_snap, "side": side.lower() or None, "price": price or None,
                     "amount": amount or None, "line": line, "ts": ts,
                     "local_ts": to_ns(ltv) if ltv is not None else None, "arrival": line << LINE_SHIFT,
                     "size": amount or None, "resync": is_snap and not prev_snap, "prev_ts": prev_ts})
        prev_snap, prev_ts = is_snap, ts
    return rows, rejects


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(line_st, min_size=1, max_size=25), block_bytes=st.sampled_from([64, 300, 1 << 20]),
       override=st.booleans(), crlf=st.booleans())
def test_tardis_book_blocks_match_reference(tmp_path, lines, block_bytes, override, crlf):
    p = tmp_path / "book.csv"
    nl = "\r\n" if crlf else "\n"
    p.write_text(HEADER + nl + nl.join(lines) + nl)
    opts = ReadOptions("venue-x", "SYM") if override else ReadOptions()
    src = Source(p)
    rows, rejects, gaps = [], [], []
    orig = Source.blocks
    try:
        Source.blocks = lambda self, block_bytes_=None, read_ahead=2: orig(self, block_bytes, read_ahead)
        for chunk in tardis.read_book(src, opts):
            rejects += [(r.line, r.reason) for r in chunk.rejects]
            gaps += [(g["arrival_from"], g["ts_from"], g["ts_to"]) for g in chunk.gaps]
            if "book_updates" in chunk.tables:
                rows += chunk.tables["book_updates"].select(pl.exclude("^__.*$")).to_dicts()  # (parsed exact columns)
    finally:
        Source.blocks = orig
    # --exchange/--symbol are the Writer's (forensics.ingest.contract): the reader's rows are the
    # file's names whatever the options, and carry only the columns of the reader contract
    exp_rows, exp_rejects = reference_book(lines, ReadOptions())
    exp_rows = [{**{k: r[k] for k in tardis.BOOK_OUT}, "resync": r["resync"], "prev_ts": r["prev_ts"]} for r in exp_rows]
    if crlf:  # the CSV reader drops the \r of the last field; a blank "\r" line is a bad line
        exp_rejects = None
    got = [{k: v for k, v in r.items()} for r in rows]
    want = [{k: v for k, v in r.items() if k not in ("resync", "prev_ts")} for r in exp_rows]
    assert got == want
    assert gaps == [(r["arrival"], r["prev_ts"], r["ts"]) for r in exp_rows if r["resync"]]
    if exp_rejects is not None:
        assert sorted(rejects) == sorted(exp_rejects)


# ---- Writer: one-plan validation == step-by-step validation -----------------------------------

exact_text = st.one_of(
    st.decimals(0, 10**7, places=4, allow_nan=False).map(str),
    st.integers(0, 10**19).map(str),
    st.sampled_from(["0", "0.0", "1.", ".5", "1e-05", "2E+3", "-1", "+1", " 1.5", "1.5 ", "", "nan", "1.2.3",
                     "0.0000000000001", "123456789012345678", "00012.500", None]))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prices=st.lists(exact_text, min_size=1, max_size=30), data=st.data())
def test_writer_fast_validation_equals_checked(tmp_path, prices, data):
    n = len(prices)
    sizes = data.draw(st.lists(exact_text, min_size=n, max_size=n))
    sides = data.draw(st.lists(st.sampled_from(["bid", "ask", "bid", "nope", None]), min_size=n, max_size=n))
    ts = data.draw(st.lists(st.one_of(st.none(), st.integers(0, 2**62)), min_size=n, max_size=n))
    df = pl.DataFrame({"exchange": ["x"] * n, "symbol": ["Y"] * n, "ts": ts, "side": sides,
                       "price": prices, "size": sizes, "line": list(range(1, n + 1))},
                      schema_overrides={"ts": pl.Int64, "price": pl.Utf8, "size": pl.Utf8, "side": pl.Utf8})
    w = Writer(Store(tmp_path / "s"), tmp_path / "f.csv", "c" * 64, "t")
    checked = w._validate_checked("book_updates", df)
    fast = _validate_fast("book_updates", df, _checks("book_updates", df))
    if fast is None:
        assert w.rejects, "the fast path refused a frame the checked path accepts whole"
    else:
        assert not w.rejects
        assert fast.equals(checked) and fast.schema == checked.schema
    assert set(EXACT_INPUT["book_updates"]) <= set(df.columns)


# ---- gzip: the fast library keeps exactly what the standard library keeps ---------------------

def _gunzip(path, fast: bool):
    s = _GunzipStream(open(path, "rb"), path if fast else None)
    out, err = [], None
    try:
        while True:
            b = s.read(1 << 15)
            if not b:
                break
            out.append(b)
    except (EOFError, zlib.error, source._ZLIB.error) as exc:
        err = (type(exc).__name__, str(exc))
    return b"".join(out), err


@pytest.mark.skipif(source.GZIP_BACKEND == "zlib", reason="no fast gzip library installed")
def test_fast_gzip_damage_same_as_standard(tmp_path):
    rnd = random.Random(11)
    data = b"".join(b"%d,%d,line\n" % (i, rnd.randrange(10**9)) for i in range(40_000))
    comp = gzip.compress(data) + gzip.compress(data[:3000])  # two members
    p = tmp_path / "x.gz"
    p.write_bytes(comp)
    assert _gunzip(p, True) == (data + data[:3000], None)
    for k in range(24):
        blob = bytearray(comp)
        if k % 2:
            blob = blob[: rnd.randrange(1, len(blob))]
        else:
            for _ in range(2):
                blob[rnd.randrange(10, len(blob))] ^= 0x5A
        p.write_bytes(bytes(blob))
        assert _gunzip(p, True) == _gunzip(p, False)


def test_blocks_read_ahead_same_as_inline_and_stop_early(tmp_path):
    p = tmp_path / "x.csv.gz"
    p.write_bytes(gzip.compress(b"".join(b"row %d\n" % i for i in range(50_000))))
    a = list(Source(p).blocks(4096, read_ahead=0))
    s = Source(p)
    assert list(s.blocks(4096)) == a and s.content_sha256 is not None
    it = Source(p).blocks(4096)  # a consumer that stops early stops the reader thread
    next(it)
    it.close()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=60),
       last_newline=st.booleans(), block=st.integers(1, 200), gz=st.booleans())
def test_blocks_cut_whole_lines_as_a_plain_split(tmp_path, lines, last_newline, block, gz):
    """Source.blocks against a reference split: the blocks joined are the content (a missing
    last newline added), each block is whole lines, line numbers count the lines before it,
    and invalid UTF-8 lines are blanked and reported exactly where a per-line decode finds them."""
    content = b"\n".join(lines) + (b"\n" if last_newline and lines else b"")
    if not gz and content:
        content = b"L" + content  # (a plain file must not start with a gzip/zip/zstd magic)
    p = tmp_path / ("x.csv.gz" if gz else "x.csv")
    p.write_bytes(gzip.compress(content) if gz else content)
    src = Source(p)
    got = list(src.blocks(block, read_ahead=0))
    want_lines = content.split(b"\n")
    if want_lines and want_lines[-1] == b"":
        want_lines.pop()
    if content.startswith(source.BOM):
        want_lines[0] = want_lines[0][len(source.BOM):]
    def ok(ln):
        try:
            ln.decode("utf-8")
            return True
        except UnicodeDecodeError:
            return False
    assert b"".join(b for _, b in got) == b"".join((ln if ok(ln) else b"") + b"\n" for ln in want_lines)
    n = 1
    for first, b in got:
        assert first == n and b.endswith(b"\n")
        n += b.count(b"\n")
    assert sorted(line for line, _ in src.errors) == [i + 1 for i, ln in enumerate(want_lines) if not ok(ln)]
    assert source.count_lines(content) == content.count(b"\n")


# ---- the compiled decimal parser == the Polars expressions it replaces ------------------------

@settings(max_examples=120, deadline=None)
@given(st.lists(st.one_of(exact_text, st.text("0123456789.-+e ", max_size=22)), min_size=1, max_size=40),
       st.integers(0, 3))
def test_decimal_scanner_matches_polars_expressions(values, cut):
    from forensics import exact
    from forensics.ingest.decscan import parse_plain

    s = pl.Series("s", values, dtype=pl.Utf8)[cut:]  # a slice: Arrow offset and validity handled
    digits, raw, sig, plain = parse_plain(s)
    e = pl.col("s")
    dot = e.str.find(".", literal=True).cast(pl.Int64)
    ref = s.to_frame().select(
        e.str.replace(".", "", literal=True, n=1).cast(pl.Int64, strict=False).alias("d"),
        pl.when(dot.is_null()).then(0).otherwise(e.str.len_bytes().cast(pl.Int64) - dot - 1).alias("r"),
        pl.when(dot.is_null()).then(0).otherwise(e.str.strip_chars_end("0").str.len_bytes().cast(pl.Int64) - dot - 1).alias("g"),
        (e.str.starts_with("-") | e.str.starts_with("+")).fill_null(True).alias("sign"))
    for i, row in enumerate(ref.iter_rows(named=True)):
        if plain[i]:  # a plain row: exactly the values of the expressions
            assert (row["d"], row["r"], row["g"], row["sign"]) == (digits[i], raw[i], sig[i], False), s[i]
        else:  # not plain: the expressions fail it too (null digits or a sign), or it is a
            # non-canonical string the checked path decides (never a silently different value)
            v = s[i]
            assert row["d"] is None or row["sign"] or not all(ch.isdigit() or ch == "." for ch in v) \
                or v.count(".") > 1, v
    assert exact.MAX_DIGITS == 18


# ---- the compiled Tardis block scanner == the Polars CSV path ---------------------------------

def _book_chunks(path, opts, fast, block_bytes):
    old, orig = tardis.FAST_SCAN, Source.blocks
    tardis.FAST_SCAN = fast
    try:
        Source.blocks = lambda self, block_bytes_=None, read_ahead=2: orig(self, block_bytes, read_ahead)
        return list(tardis.read_book(Source(path), opts))
    finally:
        tardis.FAST_SCAN, Source.blocks = old, orig


canon_line = st.tuples(st.sampled_from(["binance-futures", "binance-futures", "binance-futures", "okex-swap",
                                        "binance-future", "binance-futuress"]),  # (prefixes: the name compare)
                       st.sampled_from(["BTCUSDT", "BTCUSDT", "BTCUSDT", "BTCUSDT", "ETHUSDT", "BTCUSD", "BTCUSDTT"]),
                       st.integers(1_500_000_000_000_000, 1_800_000_000_000_000).map(str),
                       st.one_of(st.integers(0, 10**18 - 1).map(str), st.sampled_from(["01760130000000000"])),
                       st.sampled_from(["true", "false", "false"]), st.sampled_from(["bid", "ask"]),
                       st.one_of(st.decimals(0, 10**7, places=4, allow_nan=False).map(str),
                                 st.sampled_from(["0", "1.", ".5", "9223372036854775807", "9223372036854775808",
                                                  "123456789012345678.9", "0.0000000000001"])),
                       st.decimals(0, 10**4, places=3, allow_nan=False).map(str)).map(",".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(canon_line, canon_line, canon_line, line_st), min_size=1, max_size=30),
       block_bytes=st.sampled_from([64, 300, 1 << 20]), override=st.booleans())
def test_tardis_scanner_matches_polars_path(tmp_path_factory, lines, block_bytes, override):
    p = tmp_path_factory.mktemp("scan") / "book.csv"
    p.write_text(HEADER + "\n" + "\n".join(lines) + "\n")
    opts = ReadOptions("venue-x", "SYM") if override else ReadOptions()
    a, b = _book_chunks(p, opts, True, block_bytes), _book_chunks(p, opts, False, block_bytes)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert (x.gaps, [(r.line, r.reason, r.text) for r in x.rejects], x.lines) == \
               (y.gaps, [(r.line, r.reason, r.text) for r in y.rejects], y.lines)
        assert set(x.tables) == set(y.tables)
        if "book_updates" in x.tables:
            fx, fy = x.tables["book_updates"], y.tables["book_updates"]
            assert fx.select(fy.columns).equals(fy)
            if "__digits_price" in fx.columns:  # the parsed columns == what the Writer would parse
                w = Writer(Store(tmp_path_factory.mktemp("s")), p, "c" * 64, "t")
                got = _validate_fast("book_updates", fx, _checks("book_updates", fx))
                ref = _validate_fast("book_updates", fy, _checks("book_updates", fy))
                assert (got is None) == (ref is None)
                if ref is not None:
                    assert got.select(ref.columns).equals(ref)
                assert w is not None


def test_tardis_scanner_reads_canonical_blocks(tmp_path):
    p = tmp_path / "book.csv"
    p.write_text(HEADER + "\n" + "binance-futures,BTCUSDT,1760130000000000,1760130000000100,true,bid,120000.1,1.5\n"
                 "binance-futures,BTCUSDT,1760130000000001,1760130000000101,false,ask,120000.2,0\n")
    (chunk,) = _book_chunks(p, ReadOptions(), True, 1 << 20)
    df = chunk.tables["book_updates"]
    assert "__digits_price" in df.columns  # read by the scanner
    assert df["__digits_price"].to_list() == [1200001, 1200002] and df["__sig_size"].to_list() == [1, 0]


# ---- the part writer thread: errors reach the ingest, nothing half-written is visible ----------

def _book_file(path, n_rows: int):
    rows = [f"binance-futures,BTCUSDT,{1760130000000000 + i},{1760130000000100 + i},false,"
            f"{'bid' if i % 2 else 'ask'},{120000 + i % 50}.{i % 10},{i % 7}.5" for i in range(n_rows)]
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    return path


def test_part_writer_error_fails_the_file_and_leaves_nothing(tmp_path, monkeypatch):
    import errno

    from forensics.ingest import IngestError, ingest, normalise

    p = _book_file(tmp_path / "binance-futures_incremental_book_L2_2025-10-10_BTCUSDT.csv", 3000)
    monkeypatch.setattr(source, "BLOCK_BYTES", 16 << 10)  # several blocks, several parts
    real, calls = normalise.write_part, []

    def full(df, path):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(df, path)
    monkeypatch.setattr(normalise, "write_part", full)
    store = Store(tmp_path / "s")
    with pytest.raises(IngestError) as info:
        ingest([p], store)
    assert "no space left on device" in str(info.value) and p.name in str(info.value)
    assert store.content_index() == {} and not list((tmp_path / "s").rglob("*.parquet"))
    assert not [t for t in __import__("threading").enumerate() if t.name == "forensics-part-writer"]
    assert len(calls) == 3  # after the error no further part is written
    monkeypatch.setattr(normalise, "write_part", real)
    (res,) = ingest([p], store)  # the same file again, the disk fine: everything lands once
    assert res.rows["book_updates"] == 3000


def test_part_writer_writes_what_the_writer_staged(tmp_path, monkeypatch):
    from forensics.ingest import ingest

    p = _book_file(tmp_path / "binance-futures_incremental_book_L2_2025-10-10_BTCUSDT.csv", 5000)
    monkeypatch.setattr(source, "BLOCK_BYTES", 32 << 10)
    (res,) = ingest([p], Store(tmp_path / "s"))
    got = pl.read_parquet(tmp_path / "s" / "book_updates" / "**" / "*.parquet").sort("seq")
    assert got.height == res.rows["book_updates"] == 5000
    assert got["seq"].to_list() == [(i + 2) << LINE_SHIFT for i in range(5000)]  # line i + 2 (after the header)
    assert got["price"].to_list()[:3] == [1200000, 1200011, 1200022]

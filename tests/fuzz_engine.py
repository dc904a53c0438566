"""A seeded mutator for every reader's input (used by tests/test_fuzz_ingest.py, bounded to a
few seconds, and by benchmarks/fuzz_ingest.py for longer runs).

Each case takes one fixture (a small valid file of one format), mutates some of its data
lines (or, for compressed containers, its bytes) and runs ``forensics ingest`` on it through
the CLI. What must hold, whatever the mutation:

* no traceback, exit code 0 or 1 only;
* every untouched line kept: for the formats where a line is one row (``strict``), the file's
  stored rows are at least the number of untouched data lines left in it (unless the mutation
  is one that may legitimately make other rows unrepresentable, ``keeps_others=False``: a
  huge value that takes the instrument's int64 room);
* the store stays readable: every SQL view can be counted, and the same file again is
  skipped (idempotent).
"""
from __future__ import annotations

import gzip
import io
import random
import time
import traceback
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import orjson

T0_MS = 1_760_130_000_000  # 2025-10-10 21:00:00 UTC


def _tardis_book(n: int) -> list[str]:
    out = ["exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount"]
    t = T0_MS * 1000
    out += [f"binance-futures,BTCUSDT,{t},{t + 5},true,bid,120000.{i},1.{i}" for i in range(5)]
    out += [f"binance-futures,BTCUSDT,{t},{t + 5},true,ask,120001.{i},2.{i}" for i in range(5)]
    out += [f"binance-futures,BTCUSDT,{t + i * 1000},{t + i * 1000 + 5},false,{'bid' if i % 2 else 'ask'},"
            f"{120000 + (i % 7) * (1 if i % 2 else -1) + (0 if i % 2 else 2)}.{i % 10},{i % 4}.5" for i in range(1, n)]
    return out


def _tardis_trades(n: int) -> list[str]:
    out = ["exchange,symbol,timestamp,local_timestamp,id,side,price,amount"]
    t = T0_MS * 1000
    out += [f"binance-futures,BTCUSDT,{t + i * 1000},{t + i * 1000 + 9},{1000 + i},{'buy' if i % 3 else 'sell'},"
            f"120000.{i % 10},0.{i % 9 + 1}" for i in range(n)]
    return out


def _agg_trades(n: int) -> list[str]:
    out = ["agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker"]
    out += [f"{i},120000.{i % 10},0.{i % 9 + 1},{i * 2},{i * 2 + 1},{T0_MS + i},{'true' if i % 2 else 'false'}"
            for i in range(1, n + 1)]
    return out


def _trades(n: int) -> list[str]:
    out = ["id,price,qty,quote_qty,time,is_buyer_maker"]
    out += [f"{i},120000.{i % 10},0.{i % 9 + 1},{12000 * (i % 9 + 1)}.0{i % 10},{T0_MS + i},"
            f"{'true' if i % 2 else 'false'}" for i in range(1, n + 1)]
    return out


def _book_depth(n: int) -> list[str]:
    out = ["timestamp,percentage,depth,notional"]
    for k in range(n // 10 + 1):
        ts = f"2025-10-10 21:{k // 60:02d}:{k % 60:02d}"
        for pct in (-5, -4, -3, -2, -1, 1, 2, 3, 4, 5):
            out.append(f"{ts},{pct},{abs(pct) * 100 + k}.5,{abs(pct) * 1200000 + k}.25")
    return out[: n + 1]


def _hist_depth(n: int) -> list[str]:
    out = ["symbol,timestamp,first_update_id,last_update_id,side,update_type,price,qty,pu"]
    for i in range(n):
        out.append(f"BTCUSDT,{T0_MS + i * 100},{1000 + i * 10},{1000 + i * 10 + 9},{'b' if i % 2 else 'a'},set,"
                   f"{120000 + (i % 5) * (-1 if i % 2 else 1) + (0 if i % 2 else 1)}.{i % 10},{i % 3}.00{i % 7},"
                   f"{1000 + i * 10 - 1}")
    return out


def _capture_trades(n: int) -> list[str]:
    out = []
    for i in range(1, n + 1):
        if True:  # aggTrade only: with a trade stream too, the reader keeps one of the two
            ev = {"e": "aggTrade", "E": T0_MS + i + 1, "T": T0_MS + i, "s": "BTCUSDT", "a": i,
                  "p": f"120000.{i % 10}", "q": f"0.{i % 9 + 1}", "f": i, "l": i, "m": bool(i % 2)}
            stream = "btcusdt@aggTrade"
        else:
            ev = {"e": "trade", "E": T0_MS + i + 1, "T": T0_MS + i, "s": "BTCUSDT", "t": 10_000 + i,
                  "p": f"120000.{i % 10}", "q": f"0.{i % 9 + 1}", "m": bool(i % 2)}
            stream = "btcusdt@trade"
        body = orjson.dumps({"stream": stream, "data": ev}).decode()
        out.append(f"{(T0_MS + i + 5) * 1_000_000 + 123} {body}")
    return out


def _capture_depth(n: int) -> list[str]:
    out = [orjson.dumps({"lastUpdateId": 100, "E": T0_MS - 9, "T": T0_MS - 10,
                         "bids": [["120000.1", "1.5"], ["119999.9", "2"]],
                         "asks": [["120000.2", "3"]]}).decode()]
    for i in range(1, n):
        U = 100 + (i - 1) * 5 + 1
        ev = {"e": "depthUpdate", "E": T0_MS + i * 100 + 1, "T": T0_MS + i * 100, "s": "BTCUSDT",
              "U": U, "u": U + 4, "pu": U - 1,
              "b": [[f"120000.{i % 2}", f"{i % 4}.5"]], "a": [[f"120000.{2 + i % 3}", f"{i % 3}"]]}
        out.append(orjson.dumps(ev).decode())
    return out


@dataclass(frozen=True)
class Fixture:
    name: str          # file name (the venue's standard name: name-based inference is part of it)
    build: object      # n -> lines (first line is the header, if the format has one)
    header: bool
    strict: bool       # one row per data line, no sync rules: untouched lines must all be kept


FIXTURES = [
    Fixture("binance-futures_incremental_book_L2_2025-10-10_BTCUSDT.csv", _tardis_book, True, True),
    Fixture("binance-futures_trades_2025-10-10_BTCUSDT.csv", _tardis_trades, True, True),
    Fixture("BTCUSDT-aggTrades-2025-10-10.csv", _agg_trades, True, True),
    Fixture("BTCUSDT-trades-2025-10-10.csv", _trades, True, True),
    Fixture("BTCUSDT-bookDepth-2025-10-10.csv", _book_depth, True, True),
    Fixture("BTCUSDT_T_DEPTH_2025-10-10_depth_update.csv", _hist_depth, True, False),
    Fixture("btcusdt_20251010_trades.jsonl", _capture_trades, False, True),
    Fixture("btcusdt_20251010.jsonl", _capture_depth, False, False),
]

#: replacement field values; the second list may take an instrument's int64 room (a valid
#: row elsewhere in the file can then legitimately be rejected)
FIELD_VALUES = ["", " ", "abc", "-1", "0", "-0", "1e5", "NaN", "inf", "0x10", "1,5", "\x00", "١٢٣",
                "../../evil", "A/B", "XBT*", "x" * 300, "\ufeff1", "1.2.3", "--", "true", "null",
                "0.000000000001", "1.0000000000001", "-120000.1", '"', "'", "\\", "é", "🙂"]
HUGE_VALUES = ["9" * 19, "9" * 40, "1" + "0" * 17, "0." + "1" * 30, "99999999999999999.9", "-" + "9" * 25]
BYTES = [b"\xff", b"\xfe\xff", b"\x00", b"\xc3", b"\xed\xa0\x80", b"\r", b"\x1b[31m", b"\"", b"\t"]


@dataclass
class Case:
    fixture: str
    seed: int
    mutations: list[str]
    exit_code: int = 0
    rows: int = 0
    expect_at_least: int = 0
    problems: list[str] = field(default_factory=list)


def mutate_lines(lines: list[bytes], header: bool, rng: random.Random) -> tuple[list[bytes], list[str], set[int], bool]:
    """Mutate a few data lines. Returns (lines, descriptions, indexes of untouched original
    data lines still present, keeps_others)."""
    start = 1 if header else 0
    idx = list(range(len(lines)))
    touched: set[int] = set()
    notes, keeps = [], True
    out = list(lines)
    origin = list(idx)  # origin[i] = index of the original line at position i (-1 = inserted)
    for _ in range(rng.randint(1, 6)):
        if len(out) <= start:
            break
        i = rng.randrange(start, len(out))
        kind = rng.choice(["field", "field", "huge", "bytes", "truncate", "dup", "delete", "blank",
                           "garbage", "swap", "extra_field", "join"])
        if kind == "huge":
            keeps = False
        if origin[i] >= 0:
            touched.add(origin[i])
        line = out[i]
        sep = b"," if b"," in line else b" "
        parts = line.split(sep)
        if kind in ("field", "huge"):
            j = rng.randrange(len(parts))
            val = rng.choice(FIELD_VALUES if kind == "field" else HUGE_VALUES).encode("utf-8", "surrogatepass")
            if line.lstrip()[:1] in (b"{", b"1") and b"{" in line:  # JSON: replace a value inside
                keyvals = line.split(b'":')
                if len(keyvals) > 1:
                    k = rng.randrange(1, len(keyvals))
                    keyvals[k] = orjson.dumps(val.decode("utf-8", "replace")) + keyvals[k][keyvals[k].find(b",") if b"," in keyvals[k] else len(keyvals[k]):]
                    out[i] = b'":'.join(keyvals)
                    notes.append(f"{kind}@{i}")
                    continue
            parts[j] = val
            out[i] = sep.join(parts)
        elif kind == "bytes":
            pos = rng.randrange(len(line) + 1)
            out[i] = line[:pos] + rng.choice(BYTES) + line[pos:]
        elif kind == "truncate":
            out[i] = line[: rng.randrange(len(line))]
        elif kind == "dup":
            out.insert(i, line)
            origin.insert(i, -1)
        elif kind == "delete":
            del out[i]
            del origin[i]
        elif kind == "blank":
            out.insert(i, rng.choice([b"", b" ", b"\r"]))
            origin.insert(i, -1)
        elif kind == "garbage":
            out.insert(i, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 80))).replace(b"\n", b""))
            origin.insert(i, -1)
        elif kind == "swap" and len(parts) > 1:
            a, b = rng.sample(range(len(parts)), 2)
            parts[a], parts[b] = parts[b], parts[a]
            out[i] = sep.join(parts)
        elif kind == "extra_field":
            out[i] = line + sep + b"extra"
        elif kind == "join" and i + 1 < len(out):
            if origin[i + 1] >= 0:
                touched.add(origin[i + 1])
            out[i] = line + out[i + 1]
            del out[i + 1]
            del origin[i + 1]
        notes.append(f"{kind}@{i}")
    untouched = {o for o in origin if o >= start and o not in touched}
    return out, notes, untouched, keeps


def pack(data: bytes, name: str, rng: random.Random) -> tuple[bytes, str, str, bool]:
    """Maybe compress (gz, multi-member gz, zip, zip with a README first) and maybe damage the
    container. Returns (bytes, file name, description, container damaged)."""
    how = rng.choice(["plain", "plain", "gz", "gz2", "zip", "zipreadme"])
    damaged = False
    if how == "gz":
        out, name = gzip.compress(data), name + ".gz"
    elif how == "gz2":
        cut = len(data) // 2
        cut = data.find(b"\n", cut) + 1 or len(data)
        out, name = gzip.compress(data[:cut]) + gzip.compress(data[cut:]), name + ".gz"
    elif how in ("zip", "zipreadme"):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            if how == "zipreadme":
                zf.writestr("README.txt", "what this archive holds\n")
            zf.writestr(name, data)
        out, name = buf.getvalue(), name.rsplit(".", 1)[0] + ".zip"
    else:
        out = data
    if how != "plain" and rng.random() < 0.3:
        b = bytearray(out)
        dmg = rng.choice(["flip", "truncate", "trailer"])
        if dmg == "flip":
            b[rng.randrange(10, len(b))] ^= 1 << rng.randrange(8)
        elif dmg == "truncate":
            b = b[: rng.randrange(10, len(b))]
        elif how.startswith("gz"):
            b[-8] ^= 0xFF
        out, damaged = bytes(b), True
        how += f"+{dmg}"
    return out, name, how, damaged


def run_case(fx: Fixture, seed: int, workdir: Path, n_lines: int = 60) -> Case:
    from click.testing import CliRunner

    from forensics import sql as fsql
    from forensics.cli import cli
    from forensics.store import Store

    rng = random.Random(seed)
    lines = [ln.encode() for ln in fx.build(n_lines)]
    mutated, notes, untouched, keeps = mutate_lines(lines, fx.header, rng)
    data = b"\n".join(mutated) + b"\n"
    blob, name, how, damaged = pack(data, fx.name, rng)
    case = Case(fx.name, seed, notes + [how])
    d = workdir / f"{seed}"
    d.mkdir(parents=True, exist_ok=True)
    path = d / name
    path.write_bytes(blob)
    store = d / "store"
    runner = CliRunner()
    r = runner.invoke(cli, ["ingest", str(path), "--store", str(store), "-q"])
    case.exit_code = r.exit_code
    out = r.output + (r.stderr if hasattr(r, "stderr_bytes") and r.stderr_bytes else "")
    if r.exit_code not in (0, 1):
        case.problems.append(f"exit code {r.exit_code}")
    if "Traceback" in out or (r.exception is not None and not isinstance(r.exception, SystemExit)):
        tb = "".join(traceback.format_exception(r.exception)) if r.exception is not None else out
        case.problems.append(f"traceback: {tb[-600:]}")
    try:
        with fsql.Session(store) as s:
            for view in s.views():
                s.df(f'select count(*) from "{view}"')
            rows = s.df("select coalesce(sum(rows), 0)::bigint n from manifest")["n"][0] if store.exists() else 0
        case.rows = int(rows or 0)
    except Exception as exc:  # noqa: BLE001 - the finding
        if store.exists():
            case.problems.append(f"store unreadable after ingest: {type(exc).__name__}: {exc}")
    if fx.strict and keeps and not damaged:
        case.expect_at_least = len(untouched)
        if case.rows < case.expect_at_least:
            case.problems.append(f"lost valid lines: {case.rows} rows stored, {case.expect_at_least} untouched lines")
    if case.exit_code == 0 and Store(store).manifest().height:
        again = runner.invoke(cli, ["ingest", str(path), "--store", str(store), "-q"])
        if again.exit_code != 0 or "already ingested" not in again.output:
            case.problems.append(f"not idempotent: {again.output[-200:]}")
    return case


def fuzz(seconds: float, seed: int, workdir: Path, min_cases_per_fixture: int = 1,
         max_cases: int | None = None) -> list[Case]:
    """Round-robin over the fixtures until ``seconds`` passed (at least ``min_cases_per_fixture``
    each)."""
    cases: list[Case] = []
    t_end = time.monotonic() + seconds
    k = 0
    while True:
        fx = FIXTURES[k % len(FIXTURES)]
        done_round = k >= min_cases_per_fixture * len(FIXTURES)
        if done_round and (time.monotonic() > t_end or (max_cases is not None and k >= max_cases)):
            break
        cases.append(run_case(fx, seed * 1_000_003 + k, workdir))
        k += 1
    return cases

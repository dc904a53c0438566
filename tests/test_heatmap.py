"""forensics.heatmap: exact matrix (vs the reference replay), PNG, Axes API, CLI, band-only data."""
import struct

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from forensics.book import HeatSpec, reference_replay
from forensics.cli import cli
from forensics.errors import ForensicsError
from forensics.heatmap import compute_heatmap, draw_heatmap, nice_bucket, save_heatmap
from forensics.ingest import ingest
from forensics.schema import conform
from forensics.store import Store

US = 1_000_000  # Tardis timestamps are microseconds
T0_US = 1760130000 * US


def tardis(rows):
    head = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n"
    return head + "".join(f"binance-futures,BTCUSDT,{t},{t + 50},{'true' if s else 'false'},{side},{p},{q}\n"
                          for t, s, side, p, q in rows)


def book_rows(n=400, seed=5):
    rng = np.random.default_rng(seed)
    rows = [(T0_US, True, "bid", f"{1000 - k}.0", "1.0") for k in range(1, 21)]
    rows += [(T0_US, True, "ask", f"{1000 + k}.0", "2.0") for k in range(0, 20)]
    t = T0_US
    for i in range(n):
        t += int(rng.integers(1, 300_000))
        mid = 1000 + int(8 * np.sin(i / 40))
        side = "bid" if rng.random() < 0.5 else "ask"
        p = mid - int(rng.integers(1, 15)) if side == "bid" else mid + int(rng.integers(0, 15))
        rows.append((t, False, side, f"{p}.0", f"{rng.integers(0, 5) * 0.5:.1f}"))
    return rows


TRADES = ("exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
          + "".join(f"binance-futures,BTCUSDT,{T0_US + k * 1_000_000 + 7},{T0_US + k * 1_000_000 + 9},{k},"
                    f"{'buy' if k % 2 else 'sell'},{1000 + (k % 5)}.0,{0.5 + k % 3}\n" for k in range(60)))


@pytest.fixture
def heat_store(write, store_dir):
    ingest([write("book.csv", tardis(book_rows())), write("trades.csv", TRADES)], store=store_dir)
    return store_dir


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_matrix_equals_reference(heat_store):
    data = compute_heatmap(heat_store, every_ns=1_000_000_000, price_bucket="2", price_range=("980", "1020"))
    assert data.price_decimals == 0  # "1000.0" -> integer prices
    assert data.n_buckets == 20 and data.bucket == 2 and data.price_edges[0] == 980.0
    store = Store(heat_store)
    rows = store.scan("book_updates", "binance-futures", "BTCUSDT").collect()
    ups = list(rows.select("ts", "seq", "side", "price", "size", "is_snapshot").iter_rows())
    ref = reference_replay(ups, [], g0=int(data.times[0]), every_ns=1_000_000_000, m=len(data.times), bands=("1",),
                           heat=HeatSpec(data.price_lo, data.bucket, data.n_buckets))
    lot = 10.0 ** data.size_decimals
    assert np.array_equal(data.bid, ref.heat[:, 0, :] / lot) and np.array_equal(data.ask, ref.heat[:, 1, :] / lot)
    assert data.valid.all() and np.isfinite(data.mid).all()
    assert data.trades.height == 60 and set(data.trades["aggressor"]) == {"buy", "sell"}
    times, edges, total = data.matrix()
    assert total.shape == (len(times), len(edges) - 1)


def test_auto_range_and_png(heat_store, tmp_path):
    data = compute_heatmap(heat_store)
    # ~50 price rows: the auto bucket cannot be finer than the price unit (1 here)
    assert data.bucket == 1 and 30 <= data.n_buckets <= 400 and 300 <= len(data.times) <= 1000
    lo, hi = data.price_edges[0], data.price_edges[-1]
    assert lo < 990 and hi > 1010 and hi - lo < 100
    out = save_heatmap(data, tmp_path / "h.png", tz="Asia/Shanghai", width=1200, height=700)
    assert png_size(out) == (1200, 700) and out.stat().st_size > 20_000
    import matplotlib.image as mpimg
    img = mpimg.imread(out)
    assert img[..., :3].std() > 0.05  # not a blank picture


def test_draw_on_given_axes(heat_store):
    from matplotlib.figure import Figure
    data = compute_heatmap(heat_store, every_ns=2_000_000_000)
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot(2, 1, 1)
    mesh = draw_heatmap(ax, data, tz="+08:00", colorbar=False, title="x")
    assert mesh.get_array().shape[0] > 0 and ax.get_title() == "x" and "+08:00" in ax.get_xlabel()


def test_cli_heatmap(heat_store, tmp_path):
    out = tmp_path / "cli.png"
    r = CliRunner().invoke(cli, ["heatmap", "--store", str(heat_store), "--out", str(out), "--size", "800x500",
                                 "--every", "500ms", "--tz", "Asia/Shanghai", "--from", "2025-10-11 05:00:10",
                                 "--to", "2025-10-11 05:00:50"])
    assert r.exit_code == 0, r.output
    assert png_size(out) == (800, 500) and "wrote" in r.output
    for args, msg in ((["--price-bucket", "0.01"], "finer than"), (["--price-range", "5"], "LO:HI"),
                      (["--size", "big"], "WxH"), (["--every", "0"], "positive")):
        r = CliRunner().invoke(cli, ["heatmap", "--store", str(heat_store), "--out", str(out), *args])
        assert r.exit_code == 1 and msg in r.output and len(r.output.strip().splitlines()) == 1, r.output


def test_band_only_data_says_heatmap_unavailable(store_dir, tmp_path):
    store = Store(store_dir)
    df = pl.DataFrame({"ts": [T0_US * 1000] * 2, "seq": [0, 1], "side": ["bid", "ask"], "band_pct": [1.0, 1.0],
                       "qty": [1.0, 2.0], "notional": [100.0, 200.0]})
    store.write_partitioned("depth_bands", conform("depth_bands", df), "binance-futures", "BTCUSDT", "bd")
    with pytest.raises(ForensicsError, match="heatmap unavailable.*pre-aggregated"):
        compute_heatmap(store)
    r = CliRunner().invoke(cli, ["heatmap", "--store", str(store_dir), "--out", str(tmp_path / "x.png")])
    assert r.exit_code == 1 and "unavailable" in r.output and not (tmp_path / "x.png").exists()


def test_nice_bucket():
    assert nice_bucket(4000, 200) == 20 and nice_bucket(3000, 200) == 20 and nice_bucket(10, 200) == 1
    assert nice_bucket(90_000, 200) == 500


def far_snapshot_rows(seed=3):
    """A book near 1000 whose REST snapshot also lists levels far from the touch (100..1900), as a
    1000-level Binance snapshot does; the action (updates, trades) stays within ~1% of the mid."""
    rows = [(T0_US, True, "bid", f"{1000 - k}.0", "1.0") for k in range(1, 21)]
    rows += [(T0_US, True, "ask", f"{1000 + k}.0", "2.0") for k in range(0, 20)]
    rows += [(T0_US, True, "bid", f"{p}.0", "5.0") for p in range(100, 980, 40)]
    rows += [(T0_US, True, "ask", f"{p}.0", "5.0") for p in range(1020, 1900, 40)]
    return rows + book_rows(seed=seed)[40:]


def test_default_window_is_around_the_mid_not_the_snapshot(write, store_dir):
    """Defect 6: only --from/--to: the price axis is mid +- a few tenths of a percent, widened to
    the prints and changed levels, in cells of a few ticks; far snapshot levels do not stretch it."""
    ingest([write("book.csv", tardis(far_snapshot_rows())), write("trades.csv", TRADES)], store=store_dir)
    data = compute_heatmap(store_dir, rows=400)
    lo, hi = data.price_edges[0], data.price_edges[-1]
    mid = np.nanmedian(data.mid)
    assert 960 <= lo < np.nanmin(data.mid) and np.nanmax(data.mid) < hi <= 1040, (lo, hi)
    assert lo <= 1000 <= hi and hi >= 1004                          # the prints (1000..1004) are covered
    bucket = data.bucket / 10 ** data.price_decimals
    assert bucket <= 1.0 and (hi - lo) / bucket >= 20, bucket        # cells of a few ticks
    assert abs(mid - 1000) < 15
    # --price-range still wins
    wide = compute_heatmap(store_dir, price_range=("100", "1900"), rows=100)
    assert wide.price_edges[0] <= 100 and wide.price_edges[-1] >= 1899


def test_cli_heatmap_default_window(write, store_dir, tmp_path):
    ingest([write("book.csv", tardis(far_snapshot_rows())), write("trades.csv", TRADES)], store=store_dir)
    out = tmp_path / "h.png"
    r = CliRunner().invoke(cli, ["heatmap", "--store", str(store_dir), "--out", str(out)])
    assert r.exit_code == 0, r.output
    rows = int(r.output.split(" x ")[1].split()[0])
    assert rows >= 30                                               # rows of a few ticks, not 500-unit stripes

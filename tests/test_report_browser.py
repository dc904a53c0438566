"""report.html in a real browser: headless Chromium (the Debian ``chromium`` package, driven by
Playwright's Python API; never ``playwright install``). The charts render, an event marker sits
at the event's time, zooming changes the axis range, hovering shows a value, and no request
leaves ``file:``/``data:`` (every request is routed; anything else fails the test). A
screenshot is kept under ``reports/browser-artifacts/`` (ignored by git) for the CI artefacts.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("FORENSICS_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-quic", "--no-first-run", "--disable-sync", "--disable-dev-shm-usage"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "reports" / "browser-artifacts"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason=f"headless Chromium not found at {CHROMIUM} (apt-get install -y chromium)")


@pytest.fixture(scope="module")
def report(sample_report):
    """The bundled sample reported around 05:13 UTC+8 (the session fixture in conftest.py)."""
    return sample_report[1]


def _local_ms(ns: int, tz: str) -> str:
    from forensics.report.context import local_dt
    t = local_dt(ns, tz)
    return t.strftime("%Y-%m-%d %H:%M:%S") + f".{(ns // 1_000_000) % 1000:03d}"


@pytest.fixture(scope="module")
def page_of(tmp_path_factory):
    sync_api = pytest.importorskip("playwright.sync_api")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(profile), executable_path=str(CHROMIUM), headless=True,
                                                   args=ARGS, viewport={"width": 1400, "height": 1000})
        leaks: list[str] = []

        def guard(route):
            url = route.request.url
            if url.startswith(("file:", "data:", "blob:")):
                route.continue_()
            else:
                leaks.append(url)
                route.abort()
        ctx.route("**/*", guard)

        def open_page(path: Path):
            page = ctx.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(path.resolve().as_uri(), wait_until="load")
            page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg').length > 0",
                                   timeout=60_000)
            return page, errors
        yield open_page, leaks
        ctx.close()


def test_report_renders_and_is_explorable(report, page_of):
    open_page, leaks = page_of
    html = report.paths["html"]
    page, errors = open_page(html)
    try:
        # charts rendered: plotly graph divs with non-empty SVG and heatmap images
        info = page.evaluate("""() => {
            const gd = document.getElementById('ix-main');
            const svg = gd.querySelector('.main-svg');
            const r = svg.getBoundingClientRect();
            return {n: document.querySelectorAll('.js-plotly-plot').length, w: r.width, h: r.height,
                    traces: gd.data.length, heat: gd.data.filter(t => t.type === 'heatmap').length,
                    images: gd.querySelectorAll('image, canvas').length,
                    paths: gd.querySelectorAll('path').length};
        }""")
        assert info["n"] >= 2 and info["w"] > 600 and info["h"] > 400, info
        assert info["heat"] == 2 and info["images"] >= 2 and info["paths"] > 20, info

        # the event marker is at the withdrawal's start, in the report's timezone (UTC+8)
        j = report.json
        prim = next(e for e in j["events"] if e["event_id"] == j["primary_event_id"])
        want = _local_ms(prim["start_ts_ns"], "Asia/Shanghai")
        assert want.startswith("2025-10-11 05:13:0")
        marks = page.evaluate("""() => document.getElementById('ix-main').data
                                   .filter(t => t.name === 'detected events').map(t => Array.from(t.x))""")
        assert marks and want in marks[0], (want, marks)
        shapes = page.evaluate("() => document.getElementById('ix-main').layout.shapes.map(s => s.x0)")
        assert want in shapes
        # drawn where it belongs: inside the plot, at the pixel the time axis gives that instant
        px = page.evaluate("""(want) => { const xa = document.getElementById('ix-main')._fullLayout.xaxis;
                                          return [xa.d2p(want), xa._length]; }""", want)
        assert 0 < px[0] < px[1], px

        # zoom: drag a box on the heatmap; both linked axes change
        before = page.evaluate("() => document.getElementById('ix-main')._fullLayout.xaxis.range.slice()")
        box = page.locator("#ix-main .nsewdrag").first.bounding_box()
        y = box["y"] + box["height"] * 0.5
        page.mouse.move(box["x"] + box["width"] * 0.40, y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.50, y + 5, steps=8)
        page.mouse.move(box["x"] + box["width"] * 0.60, y + 10, steps=8)
        page.mouse.up()
        page.wait_for_timeout(500)
        after = page.evaluate("""() => { const l = document.getElementById('ix-main')._fullLayout;
                                          return [l.xaxis.range.slice(), l.xaxis2.range.slice()]; }""")
        assert after[0] != before, (before, after)
        assert after[0] == after[1]                                  # linked time axes

        # hover shows exact values
        page.evaluate("() => Plotly.relayout('ix-main', {'xaxis.autorange': true, 'yaxis.autorange': true})")
        page.wait_for_timeout(300)
        text = ""
        drags = page.locator("#ix-main .nsewdrag")
        for k in range(drags.count()):          # the heatmap panel, then the depth panel
            box = drags.nth(k).bounding_box()
            for fx, fy in ((0.3, 0.5), (0.5, 0.3), (0.7, 0.7), (0.2, 0.25), (0.6, 0.8)):
                page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
                page.wait_for_timeout(250)
                text = page.evaluate("() => Array.from(document.querySelectorAll('#ix-main .hoverlayer text'))"
                                     ".map(t => t.textContent).join(' | ')")
                if "BTC" in text:
                    break
            if "BTC" in text:
                break
        assert "BTC" in text and "05:" in text and any(ch.isdigit() for ch in text), text   # size + local time

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "report-interactive.png"
        page.locator("#fig-ix-main").screenshot(path=str(shot))
        assert shot.stat().st_size > 20_000
        assert not errors, errors
    finally:
        page.close()
    assert not leaks, f"requests left file:/data: {leaks[:5]}"


def test_band_only_report_in_browser(tmp_path, page_of):
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from forensics.report import build_report
    from test_report import make_store
    store = make_store(tmp_path / "store", "bands", minutes=40, trades=False)
    res = build_report(store, at="2025-10-11 05:13", tz="Asia/Shanghai", out_dir=tmp_path / "out")
    open_page, leaks = page_of
    page, errors = open_page(res.paths["html"])
    try:
        kinds = page.evaluate("() => document.getElementById('ix-main').data.map(t => t.type || 'scatter')")
        assert "heatmap" not in kinds and len(kinds) >= 8          # depth per band and side, price line
        assert not errors, errors
    finally:
        page.close()
    assert not leaks, leaks[:5]

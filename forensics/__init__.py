"""forensics: when depth vanished from an order book, was it eaten by trades or pulled by makers?

Data flow (one module per step):
    ingest/<venue>  ->  store (Parquet)  ->  book (replay on a grid: depth, book_top, heatmap)
    ->  attribution (level_changes)  ->  detect (cliffs, classifier)  ->  report

Everything the CLI does is importable from here or from the step's module.
"""
from forensics.errors import ForensicsError

__version__ = "0.1.0"
__all__ = ["ForensicsError", "Store", "connect", "__version__"]


def __getattr__(name: str):
    # Store and connect import polars/duckdb/pyarrow: loaded on first use, so the CLI starts fast
    if name in ("Store", "connect"):
        from forensics import store
        return getattr(store, name)
    raise AttributeError(f"module 'forensics' has no attribute {name!r}")

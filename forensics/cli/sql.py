"""``forensics sql``: SQL over the store (minimal; the query library extends it)."""
from __future__ import annotations

import click

from forensics.cli import cli, store_option
from forensics.store import Store


@cli.command("sql")
@click.argument("query")
@store_option
def sql_cmd(query, store):
    """Run SQL against the store's views (book_updates, trades, depth_bands, manifest, ...).

    \b
    Example:
      forensics sql "select exchange, symbol, count(*) from book_updates group by all"
    """
    con = Store(store).connect()
    con.sql(query).show(max_rows=50)

"""``forensics params`` and the parameter options every analysing command shares.

Option help that names a default reads it (and its reason) from the parameters' one home
(:mod:`forensics.params`) when the help is shown, so nothing here retypes a value and
``forensics --help`` still loads no heavy module. ``--params FILE.toml`` / ``--set
SECTION.KEY=VALUE`` / ``--show-params`` layer over the defaults: defaults < file < --set <
the command's own options.
"""
from __future__ import annotations

import importlib

import click

from forensics.cli import cli, store_option
from forensics.errors import ForensicsError


class LazyHelpOption(click.Option):
    """An option whose help is made when first shown: ``help_fn()`` (e.g. a default read from
    the module that owns it) instead of text typed here."""

    def __init__(self, *args, help_fn=None, **kwargs):
        self._help_fn = help_fn
        super().__init__(*args, **kwargs)

    def get_help_record(self, ctx):
        if self._help_fn is not None:      # every time: the value shown is the one in force now
            self.help = self._help_fn()
        return super().get_help_record(ctx)


def field_option(*decls, field: str, what: str, **kwargs):
    """``click.option`` for an option that sets parameter ``field`` ("section.name"): the help is
    ``what`` plus the field's default and reason from its dataclass."""
    def help_fn():
        from forensics.params import option_help
        section, name = field.split(".", 1)
        return option_help(section, name, what)
    return click.option(*decls, cls=LazyHelpOption, help_fn=help_fn, **kwargs)


def constant_option(*decls, ref: str, what: str, show=None, **kwargs):
    """``click.option`` whose help names a default kept as a module constant ``ref``
    ("module:NAME"), read when the help is shown (``show`` formats it)."""
    def help_fn():
        mod, name = ref.split(":")
        value = getattr(importlib.import_module(mod), name)
        from forensics.params import default_text
        return f"{what} [default {show(value) if show else default_text(value)}: {mod}.{name}]"
    return click.option(*decls, cls=LazyHelpOption, help_fn=help_fn, **kwargs)


def params_options(command: str):
    """``--params FILE.toml``, ``--set SECTION.KEY=VALUE`` (repeatable) and ``--show-params``
    for ``command`` (its sections: :data:`forensics.params.COMMAND_SECTIONS`)."""
    def deco(f):
        def sections_help():
            from forensics.params import COMMAND_SECTIONS
            return ", ".join(f"[{s}]" for s in COMMAND_SECTIONS[command])
        f = click.option("--show-params", is_flag=True,
                         help="Print the effective parameters as TOML (a --params file to start from) and exit.")(f)
        f = click.option("--set", "param_sets", multiple=True, metavar="SECTION.KEY=VALUE",
                         help="Set one parameter, e.g. detect.drop_frac=0.4 (repeatable; over --params).")(f)
        f = click.option("--params", "params_file", type=click.Path(dir_okay=False), default=None,
                         metavar="FILE.toml", cls=LazyHelpOption,
                         help_fn=lambda: "Parameters file (TOML; sections " + sections_help()
                         + "; `forensics params` prints one). The command's own options override it.")(f)
        return f
    return deco


def effective_sections(command: str, params_file: str | None, param_sets: tuple[str, ...],
                       options: dict[str, dict] | None = None) -> dict[str, dict]:
    """Every parameter of ``command``'s sections: defaults < ``params_file`` < ``--set`` <
    ``options`` (the command's own options, already in field units)."""
    from forensics import params as P
    allowed = P.COMMAND_SECTIONS[command]
    layers = [P.defaults(allowed)]
    if params_file:
        layers.append(P.load_file(params_file, allowed))
    sets: dict[str, dict] = {}
    for item in param_sets:
        section, key, value = P.parse_assignment(item, allowed)
        sets.setdefault(section, {})[key] = value
    layers += [sets, options or {}]
    merged = P.merge(*layers)
    for section, values in (options or {}).items():   # the options' values, checked like a file's
        P.check_section(section, values, "command-line options")
    return merged


def explicit_keys(command: str, params_file: str | None, param_sets: tuple[str, ...],
                  options: dict | None = None) -> set[tuple[str, str]]:
    """The ``(section, key)`` pairs set by ``params_file``, ``--set`` or the command's own
    ``options`` (of its first section), not left at their defaults."""
    from forensics import params as P
    allowed = P.COMMAND_SECTIONS[command]
    out = {(allowed[0], k) for k in (options or {})}
    if params_file:
        out |= {(s, k) for s, kv in P.load_file(params_file, allowed).items() for k in kv}
    for item in param_sets:
        section, key, _ = P.parse_assignment(item, allowed)
        out.add((section, key))
    return out


def show_params(sections: dict[str, dict], header: str) -> None:
    from forensics.params import to_toml
    click.echo(to_toml(sections, header), nl=False)


@cli.command("params")
@click.option("--command", "command", type=click.Choice(["detect", "report", "depth"]), default="detect",
              show_default=True,
              help="Whose sections to print: detect ([detect], [classify]), report (adds [report]) or depth ([depth]).")
@click.option("--params", "params_file", type=click.Path(dir_okay=False), default=None, metavar="FILE.toml",
              help="Check this file and print the parameters it gives (defaults for what it omits).")
@click.option("--run", "run_id", default=None, metavar="RUN_ID",
              help="The parameters a stored run used (table runs), with the command that reproduces it.")
@store_option
def params_cmd(command, params_file, run_id, store):
    """Print every parameter as TOML, each with its reason and default: a --params file to
    start from.

    \b
    Examples:
      forensics params > params.toml            # edit, then:
      forensics detect --params params.toml
      forensics params --params params.toml     # check a file (unknown keys, types)
      forensics params --run 20261201T153412.123Z-1a2b3c > run.toml
    """
    if run_id:
        _print_run(store, run_id)
        return
    sections = effective_sections(command, params_file, ())
    show_params(sections, f"forensics {command} parameters" + (f" from {params_file}" if params_file else
                                                               " (defaults)")
                + "\nunknown keys and wrong types are errors; command-line options override this file")


def _print_run(store: str, run_id: str) -> None:
    import json

    from forensics.runs import get_run
    from forensics.store import Store
    from forensics.timeutil import iso_utc
    st = Store(store)
    if not st.exists():
        raise ForensicsError(f"store {st.root} does not exist")
    row = get_run(st, run_id)
    parts = json.loads(row["partitions"] or "[]")
    # the window as epoch ns (exact; parse_time reads 19 digits as ns), ISO in the header
    window = " ".join(f"{flag} {v}" for flag, v in (("--from", row["ts_from"]), ("--to", row["ts_to"]))
                      if v is not None)
    span = " .. ".join(iso_utc(v) or "*" for v in (row["ts_from"], row["ts_to"]))
    inst = f" --exchange {parts[0].split('/')[0]} --symbol {parts[0].split('/')[1]}" if len(parts) == 1 else ""
    header = (f"run {row['run_id']} ({row['command']}): forensics {' '.join(json.loads(row['argv'] or '[]'))}\n"
              f"started {iso_utc(row['started_at'])}, forensics {row['version']}, {row['events']} event(s), "
              f"instruments: {', '.join(parts) or '-'}; window {span}\n"
              f"reproduce: forensics detect --params THIS_FILE{inst} {window}".rstrip())
    from forensics import params as P
    stored = P.from_json(row["params"])
    keep = {s: v for s, v in stored.items() if s in P.COMMAND_SECTIONS["detect"]}
    if len(keep) < len(stored):
        header += "\n(the run's other sections, e.g. [report], are in runs.params)"
    click.echo(P.to_toml(keep, header), nl=False)

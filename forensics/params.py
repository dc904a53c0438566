"""Every tunable parameter, read from its one home, as TOML sections.

The parameters themselves live next to the code that uses them, one dataclass per step, each
field with a one-line reason (a ``# comment`` after the field, or ``metadata={"help": ...}``):

============  =====================================  ===============================================
section       dataclass                              what
============  =====================================  ===============================================
``detect``    :class:`forensics.detect.DetectParams`   cliffs, flow, flicker, matching (level/band data)
``classify``  :class:`forensics.classify.Thresholds`   the classifier's rules and confidences
``report``    :class:`forensics.report.params.ReportParams`  report windows and wording thresholds
``depth``     :class:`forensics.depth_params.DepthParams`  the depth grid: step, bands, data source
============  =====================================  ===============================================

This module reads them generically (``dataclasses.fields`` and the source comments), so a
field added to one of them appears in ``forensics params``, in ``--params FILE.toml`` and in
the runs table with no change here. A parameters file has one table per section::

    [detect]
    drop_frac = 0.4
    bands = ["0.1", "0.5", "1"]

    [classify]
    trade_min = 0.65

Unknown sections or keys and wrong types are errors naming the file, the key and what was
expected. ``None`` is written ``"none"`` (TOML has no null). Importing this module loads only
the standard library; a section's dataclass is imported when first needed.
"""
from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
import io
import json
import tokenize
import types
import typing
from functools import lru_cache
from pathlib import Path

from forensics.errors import ForensicsError

#: section -> (module, class): the one home of each step's parameters
SECTIONS: dict[str, tuple[str, str]] = {
    "detect": ("forensics.detect", "DetectParams"),
    "classify": ("forensics.classify", "Thresholds"),
    "report": ("forensics.report.params", "ReportParams"),
    "depth": ("forensics.depth_params", "DepthParams"),
}

#: the sections each command reads (``--params`` of that command accepts only these)
COMMAND_SECTIONS: dict[str, tuple[str, ...]] = {
    "detect": ("detect", "classify"),
    "report": ("report", "detect", "classify"),
    "depth": ("depth",),
}

NONE_TEXT = "none"


class ParamsError(ForensicsError):
    """A parameters file or override that does not fit the dataclasses."""


def section_class(section: str) -> type:
    if section not in SECTIONS:
        raise ParamsError(f"unknown parameter section [{section}]; sections: {', '.join(SECTIONS)}")
    mod, name = SECTIONS[section]
    return getattr(importlib.import_module(mod), name)


# ---- reading the dataclasses -------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class FieldInfo:
    name: str
    hint: object           # the resolved annotation
    default: object
    reason: str
    nested: bool           # a dataclass-valued field (its own section)


@lru_cache(maxsize=None)
def source_comments(cls: type) -> dict[str, str]:
    """``field -> the # comment on its line`` in the class body (the reason written there)."""
    try:
        src = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    out: dict[str, str] = {}
    names = {f.name for f in dataclasses.fields(cls)}
    line_name: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.NAME and tok.string in names and tok.start[1] == 4 and tok.start[0] not in line_name:
            line_name[tok.start[0]] = tok.string
        elif tok.type == tokenize.COMMENT and tok.start[0] in line_name:
            out.setdefault(line_name[tok.start[0]], tok.string.lstrip("#").strip())
    return out


@lru_cache(maxsize=None)
def field_infos(cls: type) -> tuple[FieldInfo, ...]:
    """The fields of a params dataclass with their types, defaults and reasons."""
    hints = typing.get_type_hints(cls)
    comments = source_comments(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        reason = f.metadata.get("help") or comments.get(f.name, "")
        out.append(FieldInfo(f.name, hints[f.name], default, reason, dataclasses.is_dataclass(hints[f.name])))
    return tuple(out)


def field_info(section: str, name: str) -> FieldInfo:
    for fi in field_infos(section_class(section)):
        if fi.name == name:
            return fi
    raise KeyError(f"{section}.{name}")


def default_text(value) -> str:
    """A default as a person writes it on the command line: 0.5, 5.0, 0.1,0.5,1,2,5, auto."""
    if value is None:
        return NONE_TEXT
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    return str(value)


def option_help(section: str, name: str, what: str) -> str:
    """CLI help for an option that sets ``section.name``: what it sets, then the default and the
    reason from the dataclass (never retyped in the CLI)."""
    fi = field_info(section, name)
    return f"{what} [{section}.{name} = {default_text(fi.default)}: {fi.reason}]"


# ---- checking values -----------------------------------------------------------------------------

def _type_text(hint) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        parts = [_type_text(a) for a in typing.get_args(hint) if a is not type(None)]
        if type(None) in typing.get_args(hint):
            parts.append(f'"{NONE_TEXT}"')
        return " or ".join(parts)
    if origin is tuple:
        return f"a list of {_type_text(typing.get_args(hint)[0])}"
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))


class _Mismatch(Exception):
    pass


def _coerce(hint, value):
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if type(None) in args and (value is None or (isinstance(value, str) and value.lower() == NONE_TEXT)):
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(a, value)
            except _Mismatch:
                continue
        raise _Mismatch
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        return tuple(_coerce(typing.get_args(hint)[0], v) for v in value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _Mismatch
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _Mismatch
    if hint is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):   # bands = [0.1, 0.5]
            return format(value, "g") if isinstance(value, float) else str(value)
        raise _Mismatch
    raise _Mismatch


def check_section(section: str, values: dict, where: str) -> dict:
    """``values`` of one section, typed as its dataclass wants; unknown keys and wrong types are
    a :class:`ParamsError` naming ``where`` (the file), the key and what was expected."""
    cls = section_class(section)
    infos = {fi.name: fi for fi in field_infos(cls) if not fi.nested}
    out = {}
    for key, value in values.items():
        if key not in infos:
            near = difflib.get_close_matches(key, list(infos), n=1)
            raise ParamsError(f"{where}: [{section}] unknown key {key!r}"
                              + (f" (did you mean {near[0]!r}?)" if near else "")
                              + f"; keys: {', '.join(infos)}")
        try:
            out[key] = _coerce(infos[key].hint, value)
        except _Mismatch:
            raise ParamsError(f"{where}: [{section}] {key} = {value!r}: expected "
                              f"{_type_text(infos[key].hint)}") from None
    return out


def check_sections(data: dict, where: str, allowed: tuple[str, ...] | None = None) -> dict[str, dict]:
    """Every section of a parsed file (``{section: {key: value}}``), checked."""
    allowed = allowed or tuple(SECTIONS)
    out = {}
    for section, values in data.items():
        if section not in allowed:
            raise ParamsError(f"{where}: unknown section [{section}]; this command reads "
                              + ", ".join(f"[{s}]" for s in allowed))
        if not isinstance(values, dict):
            raise ParamsError(f"{where}: {section} must be a table ([{section}] followed by key = value lines)")
        out[section] = check_section(section, values, where)
    return out


def load_file(path: str | Path, allowed: tuple[str, ...] | None = None) -> dict[str, dict]:
    """A ``--params`` TOML file as checked ``{section: {key: value}}``."""
    import tomllib
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ParamsError(f"cannot read parameters file {p}: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ParamsError(f"{p}: not valid TOML: {exc}") from None
    return check_sections(data, str(p), allowed)


def parse_assignment(item: str, allowed: tuple[str, ...]) -> tuple[str, str, object]:
    """``section.key=value`` (``--set``; the value in TOML syntax, bare words as strings) ->
    (section, key, checked value)."""
    import tomllib
    if "=" not in item or "." not in item.split("=", 1)[0]:
        raise ParamsError(f"--set {item!r}: use SECTION.KEY=VALUE, e.g. detect.drop_frac=0.4")
    lhs, text = item.split("=", 1)
    section, key = (s.strip() for s in lhs.split(".", 1))
    try:
        value = tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = text.strip()          # a bare word: auto, none, ...
    where = f"--set {item}"
    checked = check_sections({section: {key: value}}, where, allowed)
    return section, key, checked[section][key]


# ---- building the dataclasses ------------------------------------------------------------------

def build(sections: dict[str, dict], root: str) -> object:
    """The ``root`` section's dataclass with ``sections`` applied; a dataclass-valued field is
    built from the section of its own class (DetectParams.thresholds <- [classify])."""
    cls = section_class(root)
    kw = dict(sections.get(root, {}))
    for fi in field_infos(cls):
        if fi.nested:
            sub = next((s for s in SECTIONS if section_class(s) is fi.hint), None)
            if sub is not None and sub in sections:
                kw[fi.name] = dataclasses.replace(fi.default, **sections[sub])
    try:
        return cls(**kw)
    except (TypeError, ValueError) as exc:
        raise ParamsError(f"[{root}]: {exc}") from None


def merge(*layers: dict[str, dict]) -> dict[str, dict]:
    """Later layers override earlier ones, key by key (defaults < file < --set < options)."""
    out: dict[str, dict] = {}
    for layer in layers:
        for s, kv in layer.items():
            out.setdefault(s, {}).update(kv)
    return out


def flatten(obj, root: str) -> dict[str, dict]:
    """``{section: {key: value}}`` of a built dataclass (its nested ones as their own sections)."""
    out: dict[str, dict] = {root: {}}
    for fi in field_infos(type(obj)):
        v = getattr(obj, fi.name)
        if fi.nested:
            sub = next((s for s in SECTIONS if section_class(s) is fi.hint), fi.name)
            out.update(flatten(v, sub))
        else:
            out[root][fi.name] = v
    return out


def to_json(sections: dict[str, dict]) -> str:
    """Canonical JSON text (sorted keys, tuples as lists, None as null): the runs table's
    ``params`` column."""
    return json.dumps(sections, sort_keys=True, separators=(",", ":"))


def from_json(text: str) -> dict[str, dict]:
    """The sections stored by :func:`to_json`, typed again (lists back to tuples)."""
    return check_sections(json.loads(text), "stored run parameters")


# ---- writing TOML ------------------------------------------------------------------------------

def _toml_value(v) -> str:
    if v is None:
        return f'"{NONE_TEXT}"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"no TOML form for {v!r}")


def to_toml(sections: dict[str, dict], header: str = "") -> str:
    """TOML text of ``{section: {key: value}}`` with each key's reason as a comment above it,
    and the default where the value differs from it (loads back with :func:`load_file`)."""
    lines = [f"# {ln}" if ln else "#" for ln in header.splitlines()]
    for section in sorted(sections, key=list(SECTIONS).index):     # sections and keys in their homes' order
        values = sections[section]
        mod, name = SECTIONS[section]
        if lines:
            lines.append("")
        lines += [f"[{section}]", f"# {mod}.{name}"]
        for fi in field_infos(section_class(section)):
            if fi.name not in values:
                continue
            key, v = fi.name, values[fi.name]
            note = "" if v == fi.default else f"  (default {_toml_value(fi.default)})"
            if fi.reason or note:
                lines.append(f"# {fi.reason}{note}")
            lines.append(f"{key} = {_toml_value(v)}")
    return "\n".join(lines) + "\n"


def defaults(sections: tuple[str, ...] = tuple(SECTIONS)) -> dict[str, dict]:
    """Every section's default values."""
    return {s: {fi.name: fi.default for fi in field_infos(section_class(s)) if not fi.nested} for s in sections}

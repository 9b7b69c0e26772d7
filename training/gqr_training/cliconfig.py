"""Command lines from config dataclasses, the way TRL's ``HfArgumentParser`` builds them: every
field of a command's config is one flag (``--field-name``), its help is ``metadata["help"]``,
and a field without a default is a required flag. One rule per field checks the value twice:
while parsing, so the error quotes the text given, and in the config's ``__post_init__``
(:func:`validate`), so a config built in code is checked too. Both errors name the flag, the
value and what is accepted.

Metadata keys besides ``help``: ``rule`` (a :class:`Rule`), ``choices`` (or a ``Literal``
type), ``parse`` (text -> value where the value is not a plain int, float, str or Path; it
raises ``ValueError`` on bad text), ``flag`` and ``aliases`` (other option strings),
``negatable`` (a bool flag with a ``--no-`` form).

    cfg = ConfigParser(CTRTrainConfig, prog="ctr-train").parse_config(argv)
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

C = TypeVar("C")

PLAIN = {int: "an integer", float: "a number", str: "a text", Path: "a path"}


@dataclasses.dataclass(frozen=True)
class Rule:
    """What a field accepts: ``ok(value)`` is true; ``accepted`` says it in an error."""

    ok: Callable[[Any], bool]
    accepted: str


def at_least(lo: float, what: str = "a number") -> Rule:
    return Rule(lambda v: v >= lo, f"expected {what} >= {lo}")


def positive(what: str = "a number") -> Rule:
    return Rule(lambda v: v > 0, f"expected {what} > 0")


def within(lo: float, hi: float, what: str = "a number") -> Rule:
    return Rule(lambda v: lo <= v <= hi, f"expected {what} in [{lo}, {hi}]")


def form(accepted: str) -> Rule:
    """Any value its ``parse`` makes is fine; ``accepted`` says what text it takes."""
    return Rule(lambda _: True, accepted)


def like(config: type[Any], name: str, **metadata: Any) -> Any:
    """Field ``name`` of another command's ``config``: its default, help and rule (``metadata``
    overrides some), for a flag of the same meaning, e.g. a table's copy of ``ctr-train``'s
    ``--epochs`` or the demo's ``--dpo-lr``."""
    f = next(f for f in dataclasses.fields(config) if f.name == name)
    return dataclasses.field(
        default=f.default,
        default_factory=f.default_factory,
        metadata={**f.metadata, **metadata},
    )


def flag(f: dataclasses.Field[Any]) -> str:
    return str(f.metadata.get("flag") or "--" + f.name.replace("_", "-"))


def validate(config: Any) -> None:
    """Every field's rule and choices on its value (None, an automatic default, passes)."""
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        rule: Rule | None = f.metadata.get("rule")
        choices = _choices(f, _base_type(hints[f.name]))
        if value is None:
            continue
        if rule is not None and not rule.ok(value):
            raise ValueError(f"{flag(f)} {value!r}: {rule.accepted}")
        if choices is not None and value not in choices:
            raise ValueError(f"{flag(f)} {value!r}: expected one of {', '.join(choices)}")


def _base_type(hint: Any) -> Any:
    """``int | None`` -> int; other hints as they are."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0] if len(args) == 1 else hint
    return hint


def _choices(f: dataclasses.Field[Any], base: Any) -> tuple[str, ...] | None:
    if typing.get_origin(base) is typing.Literal:
        return typing.get_args(base)
    return f.metadata.get("choices")


def _converter(f: dataclasses.Field[Any], base: Any) -> Callable[[str], Any]:
    """argparse's ``type=``: the field's parse, then its rule; errors quote the text given."""
    if typing.get_origin(base) is typing.Literal:
        base = str
    parse = f.metadata.get("parse") or base
    if parse not in PLAIN and "parse" not in f.metadata:
        raise TypeError(f"{f.name}: give metadata['parse'] for a {base!r} field")
    rule: Rule | None = f.metadata.get("rule")
    accepted = rule.accepted if rule else f"expected {PLAIN.get(base, 'a valid value')}"

    def convert(text: str) -> Any:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag(f)} {text!r}: {accepted}") from None
        if rule is not None and value is not None and not rule.ok(value):
            raise argparse.ArgumentTypeError(f"{flag(f)} {text!r}: {accepted}")
        return value

    return convert


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def add_arguments(parser: argparse.ArgumentParser, config: type[Any]) -> None:
    """One flag per field of ``config``, in field order."""
    hints = typing.get_type_hints(config)
    for f in dataclasses.fields(config):
        if "help" not in f.metadata:
            raise TypeError(f"{config.__name__}.{f.name}: every field needs metadata['help']")
        names = [flag(f), *f.metadata.get("aliases", ())]
        kw: dict[str, Any] = {"dest": f.name, "help": f.metadata["help"].replace("%", "%%")}
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        base = _base_type(hints[f.name])
        if base is bool:
            negatable = f.metadata.get("negatable", False)
            kw["action"] = argparse.BooleanOptionalAction if negatable else "store_true"
        else:
            kw["type"] = _converter(f, base)
            kw["choices"] = _choices(f, base)
        if required:
            kw["required"] = True
        else:
            kw["default"] = _default(f)
        parser.add_argument(*names, **kw)


def from_namespace(config: type[C], ns: argparse.Namespace) -> C:
    """The parsed flags as ``config`` (its ``__post_init__`` checks them)."""
    return config(**{f.name: getattr(ns, f.name) for f in dataclasses.fields(config)})  # type: ignore[arg-type]


def as_flags(config: Any) -> dict[str, Any]:
    """``{field: value}`` in flag order, as a Namespace's ``vars`` had it (paths as text):
    what a run records about the arguments it ran with."""
    return {
        f.name: str(v) if isinstance(v := getattr(config, f.name), Path) else v
        for f in dataclasses.fields(config)
    }


class ConfigParser(argparse.ArgumentParser, Generic[C]):
    """An ``ArgumentParser`` whose flags are ``config``'s fields; :meth:`parse_config` returns
    the config, a cross-field error in its ``__post_init__`` becomes a usage error."""

    def __init__(self, config: type[C], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = config
        add_arguments(self, config)

    def to_config(self, ns: argparse.Namespace) -> C:
        try:
            return from_namespace(self.config, ns)
        except ValueError as exc:
            self.error(str(exc))

    def parse_config(self, argv: Sequence[str] | None = None) -> C:
        return self.to_config(self.parse_args(argv))

"""The YAML tariff format: read, check against the JSON Schema, list and load templates.

A tariff file is a YAML mapping whose fields are those of :class:`~meterstack.tariff.model.
Tariff`; ``tariff.schema.json`` (package data) is its JSON Schema. Templates shipped with the
package live in ``meterstack/tariff/templates/*.yaml`` and are found by name.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from pydantic import ValidationError

from meterstack.tariff.errors import TariffError
from meterstack.tariff.model import Tariff

__all__ = [
    "dump_tariff",
    "list_templates",
    "load_tariff",
    "load_template",
    "parse_tariff",
    "tariff_schema",
]


@lru_cache(maxsize=1)
def tariff_schema() -> dict[str, Any]:
    """The JSON Schema of the YAML format (package data)."""
    text = resources.files("meterstack.tariff").joinpath("tariff.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def parse_tariff(document: object, source: str = "tariff") -> Tariff:
    """Validate a parsed YAML/JSON document and build the tariff.

    Raises
    ------
    TariffError
        Naming the place in the document (e.g. ``energy.periods[1].tiers[0].max``).
    """
    if not isinstance(document, dict):
        raise TariffError(source, type(document).__name__, "a tariff file must be a mapping")
    validator = jsonschema.Draft202012Validator(tariff_schema())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
        raise TariffError(f"{source}:{where.lstrip('.') or '<root>'}", err.instance, err.message)
    try:
        return Tariff.model_validate(document)
    except ValidationError as exc:
        err2 = exc.errors()[0]
        where = ".".join(str(p) for p in err2["loc"]) or "<root>"
        raise TariffError(f"{source}:{where}", err2.get("input"), err2["msg"]) from exc


def load_tariff(path: str | Path) -> Tariff:
    """Read a YAML tariff file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise TariffError(str(p), None, f"cannot read: {exc.strerror}") from exc
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise TariffError(f"{p}{line}", None, f"not valid YAML: {exc}") from exc
    return parse_tariff(document, str(p))


def _templates_dir() -> Any:
    return resources.files("meterstack.tariff").joinpath("templates")


def list_templates() -> list[str]:
    """Names of the shipped templates, sorted."""
    return sorted(
        entry.name[: -len(".yaml")]
        for entry in _templates_dir().iterdir()
        if entry.name.endswith(".yaml")
    )


def load_template(name: str) -> Tariff:
    """Load a shipped template by name."""
    entry = _templates_dir().joinpath(f"{name}.yaml")
    if not entry.is_file():
        raise TariffError("template", name, "no such template (see `meterstack tariff list`)")
    return parse_tariff(yaml.safe_load(entry.read_text("utf-8")), f"template {name}")


def dump_tariff(tariff: Tariff) -> str:
    """The tariff as YAML (defaults left out)."""
    data = tariff.model_dump(mode="json", exclude_defaults=True)
    data.setdefault("name", tariff.name)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)

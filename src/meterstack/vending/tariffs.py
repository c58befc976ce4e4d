"""Finding a tariff by name: one saved in the operational store, else a shipped template."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy.orm import Session

from meterstack.mdm.operational.models import TariffDocument
from meterstack.tariff.errors import TariffError
from meterstack.tariff.model import Tariff
from meterstack.tariff.yaml_format import list_templates, load_template, parse_tariff

__all__ = ["resolve_tariff", "save_tariff"]


def resolve_tariff(session: Session, name: str) -> Tariff:
    """The tariff called ``name``.

    Raises
    ------
    TariffError
        No saved tariff and no template has that name.
    """
    saved = session.get(TariffDocument, name)
    if saved is not None:
        return parse_tariff(saved.document, f"tariff {name}")
    if name in _template_names():
        return _template(name)
    raise TariffError("tariff", name, "no saved tariff or template has this name")


@lru_cache(maxsize=1)
def _template_names() -> frozenset[str]:
    return frozenset(list_templates())


@lru_cache(maxsize=128)
def _template(name: str) -> Tariff:
    """A shipped template, parsed once (templates are package data: they do not change)."""
    return load_template(name)


def save_tariff(session: Session, document: dict[str, Any], actor: str, at: datetime) -> Tariff:
    """Validate ``document`` (the YAML format's fields) and save it under its name."""
    tariff = parse_tariff(document, "tariff")
    if tariff.name in list_templates():
        raise TariffError("name", tariff.name, "a template has this name; choose another")
    row = session.get(TariffDocument, tariff.name)
    body = tariff.model_dump(mode="json", exclude_defaults=True)
    body["name"] = tariff.name
    if row is None:
        session.add(
            TariffDocument(name=tariff.name, document=body, created_at=at, created_by=actor)
        )
    else:
        row.document = body
        row.created_at = at
        row.created_by = actor
    return tariff

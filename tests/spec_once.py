"""Connexion validates the whole OpenAPI document against the OpenAPI schema each time it
builds an app (about a second of CPU, most of a test server's start-up); the suite builds
hundreds of apps from the same two documents. Here each distinct document is validated once
per test process: an invalid one still fails exactly as before, and a changed one (a test's
own settings, e.g. another MAX_MESSAGE_LENGTH) is validated on its own. Servers started
as processes (browser, fleet) validate as in production."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from connexion.spec import Specification

_validate = Specification._validate_spec.__func__  # type: ignore[attr-defined]
_valid: set[tuple[type, str]] = set()


def _validate_once(cls: type[Specification], spec: dict[str, Any]) -> None:
    key = (cls, hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest())
    if key not in _valid:
        _validate(cls, spec)  # raises InvalidSpecification for an invalid document
        _valid.add(key)


def install() -> None:
    Specification._validate_spec = classmethod(_validate_once)  # type: ignore[assignment,method-assign]

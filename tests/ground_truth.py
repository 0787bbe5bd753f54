"""Paths to the suite's ground truth, all under fixtures/, for every test module.

A plain module rather than conftest.py so that tests can import it by name
(``from ground_truth import ...``) without clashing with the interop folder's
own conftest. fixtures/ holds byte-for-byte copies of the project's shared
vectors and data at their shared paths (``fixture_path("vectors", "eip8.json")``);
tools/sync_fixtures.py refreshes them and fixtures/README.md names their sources.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures"

__all__ = ["FIXTURES", "REPO", "fixture_path", "load_fixture_json", "load_fixture_json_at_collection"]


class MissingFixture(FileNotFoundError):
    """Raised when a ground-truth file the suite needs is not in fixtures/."""


def _existing(parts: tuple[str, ...]) -> Path:
    path = FIXTURES.joinpath(*parts)
    if not path.exists():
        raise MissingFixture(
            f"ground-truth file fixtures/{'/'.join(parts)} is missing ({path}); "
            "restore it from git or run tools/sync_fixtures.py"
        )
    return path


def fixture_path(*parts: str) -> Path:
    """A path under fixtures/; fails the test loudly (never skips) when it is missing."""
    try:
        return _existing(parts)
    except MissingFixture as exc:
        pytest.fail(str(exc), pytrace=False)


def load_fixture_json(*parts: str) -> Any:
    return json.loads(fixture_path(*parts).read_text())


def load_fixture_json_at_collection(*parts: str) -> Any:
    """For module-level constants and parametrize lists: a missing file is a collection error naming it."""
    return json.loads(_existing(parts).read_text())

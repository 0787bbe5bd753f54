"""Paths to the shared ground truth (../shared) and fixtures, for every test module.

A plain module rather than conftest.py so that tests can import it by name
(``from ground_truth import ...``) without clashing with the interop folder's
own conftest.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ETHCRAWL_SHARED", REPO.parent / "shared")).resolve()
FIXTURES = REPO / "fixtures"


def shared_path(*parts: str) -> Path:
    """A path under ../shared; fails loudly (never skips) when it is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.fail(
            f"ground-truth file {path} is missing: the suite needs ../shared beside the "
            "checkout (or ETHCRAWL_SHARED pointing at it)",
            pytrace=False,
        )
    return path


def load_shared_json(*parts: str) -> Any:
    return json.loads(shared_path(*parts).read_text())


def load_vector_json_at_collection(*parts: str) -> Any:
    """For parametrize lists built at import time: raises a clear error if absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(
            f"ground-truth file {path} is missing: the suite needs ../shared beside the checkout"
        )
    return json.loads(path.read_text())

"""What a report's header says about a crawl: its stored parameters (the command line's settings, as JSON)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import Crawl

__all__ = ["crawl_parameters"]


def crawl_parameters(session: Session, crawl_id: int) -> dict[str, Any] | None:
    """The parameters crawl ``crawl_id`` was started with (None if there is no such crawl; {} if unreadable)."""
    text = session.scalar(select(Crawl.parameters).where(Crawl.id == crawl_id))
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return {}  # written by store.begin_crawl as JSON; anything else is damage, not a reason to fail a report
    return value if isinstance(value, dict) else {}

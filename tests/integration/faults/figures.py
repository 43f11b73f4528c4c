"""A scenario's figures: the count by Message-ID, written as JSON for
tests/integration/faults/report.py."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from devtools.environment import ROOT
from tests.integration.faults.stack import Stack

OUTPUT_DIR = ROOT / "test-output" / "faults"

# After the outbox is drained, how long to keep listening for a late duplicate (a worker whose
# send outlived its lease would deliver after the row was already `sent`).
SETTLE_SECONDS = 1.0


@dataclass(frozen=True)
class Outcome:
    """Committed emails (outbox rows) against what the SMTP server accepted."""

    sent: int
    delivered: int
    lost: int
    duplicated: int
    strangers: int  # received Message-IDs that no outbox row has
    statuses: dict[str, int]
    max_attempts: int
    duplicate_ids: list[str] = field(default_factory=list)

    def assert_every_email_delivered(self) -> None:
        assert self.lost == 0, f"{self.lost} of {self.sent} committed emails never arrived: {self}"
        assert self.strangers == 0, f"messages arrived that the outbox never held: {self}"
        assert self.statuses == {"sent": self.sent}, f"not every row is sent: {self}"


def count(stack: Stack, settle: float = SETTLE_SECONDS) -> Outcome:
    time.sleep(settle)
    rows = stack.outbox()
    received = stack.received()
    ids = {row.message_id for row in rows}
    duplicates = sorted(mid for mid, times in received.items() if times > 1)
    return Outcome(
        sent=len(rows),
        delivered=sum(1 for mid in ids if received[mid]),
        lost=sum(1 for mid in ids if not received[mid]),
        duplicated=sum(received[mid] - 1 for mid in duplicates),
        strangers=sum(1 for mid in received if mid not in ids),
        statuses=dict(Counter(row.status for row in rows)),
        max_attempts=max((row.attempts for row in rows), default=0),
        duplicate_ids=duplicates,
    )


def record(
    scenario: str,
    title: str,
    outcome: Outcome,
    *,
    drain_seconds: float | None,
    stack: Stack,
    detail: str = "",
    **notes: object,
) -> Path:
    """Write test-output/faults/<scenario>.json.

    `detail` is the table's notes cell (what the fault was, the figure that proves the point);
    `notes` are further scenario-specific figures, kept in the JSON only.
    """
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUTPUT_DIR / f"{scenario}.json"
    figures = {
        "scenario": scenario,
        "title": title,
        "sent": outcome.sent,
        "delivered": outcome.delivered,
        "lost": outcome.lost,
        "duplicated": outcome.duplicated,
        "drain_seconds": None if drain_seconds is None else round(drain_seconds, 1),
        "seconds": round(time.monotonic() - stack.started, 1),
        "max_attempts": outcome.max_attempts,
        "detail": detail,
        "notes": notes,
        "outcome": asdict(outcome),
    }
    path.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    return path

"""The one markdown table writer of the reporting commands."""

from __future__ import annotations

from collections.abc import Sequence


def table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table: ``head`` [columns], ``rows`` [rows][columns] of already formatted cells; ValueError
    on a row of another width (a misaligned table renders, wrongly, without complaint)."""
    bad = [i for i, r in enumerate(rows) if len(r) != len(head)]
    if bad:
        raise ValueError(f"rows {bad} do not have the header's {len(head)} cells")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join([*lines, *("| " + " | ".join(r) + " |" for r in rows)])

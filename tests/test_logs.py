"""The app's console goes through logging, and a DDP job's ranks other than zero stay silent."""

import logging
import re
from pathlib import Path

from pytorch_lightning.utilities.rank_zero import rank_zero_only

from sparse_maml.logs import RankZeroFilter, get_logger


def test_records_pass_on_rank_zero_only(caplog, monkeypatch):
    log = get_logger("sparse_maml.test_logs")
    with caplog.at_level(logging.INFO, logger="sparse_maml.test_logs"):
        monkeypatch.setattr(rank_zero_only, "rank", 0)
        log.info("from rank zero")
        monkeypatch.setattr(rank_zero_only, "rank", 1)
        log.info("from rank one")
    assert [r.getMessage() for r in caplog.records] == ["from rank zero"]


def test_the_filter_is_attached_once():
    assert get_logger("sparse_maml.test_logs_once") is get_logger("sparse_maml.test_logs_once")
    filters = logging.getLogger("sparse_maml.test_logs_once").filters
    assert sum(isinstance(f, RankZeroFilter) for f in filters) == 1


def test_the_package_prints_only_its_final_summary():
    """The app prints its final summary (results.py) and a bad input's message (user_errors.py); the rest speaks
    through logging. The reporting commands print the tables they are run for."""
    package = Path(__file__).resolve().parents[1] / "sparse_maml"
    printing = sorted(
        str(p.relative_to(package))
        for p in package.rglob("*.py")
        if re.search(r"\bprint\(", p.read_text()) and p.parent.name != "reporting"
    )
    assert printing == ["results.py", "user_errors.py"]

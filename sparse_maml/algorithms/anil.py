"""ANIL (Raghu et al., 2020) adapts only the head; BOIL (Oh et al., 2021) only the body. s(m) = 1."""

from .engine.base import InnerLoopLearner


class ANIL(InnerLoopLearner):
    """Only ``head.*`` adapts; the body's features are computed once per task. Second order by default, as in
    the original, which is cheap here since the unrolled graph spans only the head."""

    name = "anil"
    default_first_order = False

    def adapts(self, name: str) -> bool:
        return name.startswith("head.")


class BOIL(InnerLoopLearner):
    """Everything but ``head.*`` adapts; the head stays at theta in the inner loop."""

    name = "boil"
    default_first_order = False

    def adapts(self, name: str) -> bool:
        return not name.startswith("head.")

"""The three arms the plan tests share, and the plan names they give, in order."""

from ltrr.bandit.decision import ArmSpec

ARMS = [ArmSpec("a", 10, 100), ArmSpec("b", 0, 100), ArmSpec("c", 0, 50)]
PLANS = (
    "all",
    "all:half",
    "only:a",
    "only:b",
    "only:c",
    "without:a",
    "without:b",
    "without:c",
)

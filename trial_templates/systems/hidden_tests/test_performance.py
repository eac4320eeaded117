"""A decision costs about the same with 50 000 keys as with 1 000 (a ratio, never an absolute time)."""

from gotest import go_test


def test_a_decision_costs_the_same_with_50000_keys() -> None:
    go_test("TestHiddenDecisionCostDoesNotGrowWithKeys", "hidden_performance_test.go")

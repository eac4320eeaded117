"""The planted defect: concurrent decisions on one key, under the race detector."""

from gotest import go_test


def test_concurrent_decisions_are_exact_and_race_free() -> None:
    go_test("TestHiddenConcurrentDecisionsAreExactAndRaceFree", "hidden_concurrency_test.go", race=True)

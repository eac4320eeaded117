"""What works today keeps working (PASS_TO_PASS)."""

from gotest import go_test

FILES = ("hidden_regression_test.go",)


def test_the_burst_is_admitted_then_refused_and_refills() -> None:
    go_test("TestHiddenBurstThenRefusal", *FILES)


def test_idle_buckets_are_still_dropped() -> None:
    go_test("TestHiddenIdleBucketsAreDropped", *FILES)


def test_single_requests_over_http() -> None:
    go_test("TestHiddenSingleRequestsOverHTTP", *FILES)

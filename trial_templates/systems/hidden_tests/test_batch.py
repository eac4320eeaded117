"""The brief's batch endpoint."""

from gotest import go_test

FILES = ("hidden_batch_test.go",)


def test_a_batch_answers_every_key_in_order() -> None:
    go_test("TestHiddenBatchAnswersEveryKeyInOrder", *FILES)


def test_bad_batches_are_refused() -> None:
    go_test("TestHiddenBadBatchesAreRefused", *FILES)

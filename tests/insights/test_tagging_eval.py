"""The tagger against the labelled messages written for this project (tests/data/tagging)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from insights.config import load_config
from insights.tag_eval import EvalReport, LabelledMessage, evaluate
from insights.tagging import Amount, Tagger, TagResult
from tests.conftest import DATA
from tests.insights.test_tagging import sample_accounts

TAGGING = DATA / "tagging"


def load_labelled(name: str) -> list[LabelledMessage]:
    path = TAGGING / name
    return [
        LabelledMessage.from_json(json.loads(line)) for line in path.read_text("utf-8").splitlines() if line
    ]


@pytest.fixture(scope="module")
def tagger(example_config_path: Path) -> Tagger:
    return Tagger(sample_accounts(), load_config(example_config_path).taxonomy)


@pytest.fixture(scope="module")
def report(tagger: Tagger) -> EvalReport:
    return evaluate(tagger.tag, load_labelled("labelled.jsonl"))


def test_the_labelled_set_is_large_and_varied() -> None:
    labelled = load_labelled("labelled.jsonl")
    assert len(labelled) >= 300
    kinds = {m.kind for m in labelled}
    assert kinds == {None, "win", "loss", "renewal_loss", "implementation_failure", "customer_win"}


def test_kind_accuracy_is_at_least_95_percent(report: EvalReport) -> None:
    assert report.kind_accuracy >= 0.95, report.misses


def test_account_accuracy_on_outcomes_is_at_least_97_percent(report: EvalReport) -> None:
    assert report.account_accuracy >= 0.97, report.misses


def test_competitor_accuracy_is_at_least_97_percent(report: EvalReport) -> None:
    assert report.competitor_accuracy >= 0.97, report.misses


def test_reasons_recall_85_and_precision_80(report: EvalReport) -> None:
    assert report.reason_recall >= 0.85
    assert report.reason_precision >= 0.80


def test_at_most_2_percent_of_chatter_is_captured(report: EvalReport) -> None:
    assert report.chatter_false_capture <= 0.02


def test_amounts_are_read_right(report: EvalReport) -> None:
    assert report.amount_accuracy >= 0.95


def _fixed(
    kind: str | None, account: str | None = None, reasons: tuple[str, ...] = (), amount: Amount | None = None
) -> TagResult:
    return TagResult("", kind, account, None, None, reasons, amount, 0.9)


def test_evaluate_computes_each_figure_as_defined() -> None:
    labelled = [
        LabelledMessage(
            "a", "win", "Acme Corp", None, ("price",), {"value": 85000, "currency": "USD", "unit": "ACV"}
        ),
        LabelledMessage("b", "loss", "Contoso Ltd", "Gong", ("price", "timing"), {}),
        LabelledMessage("c", None, None, None, ()),
        LabelledMessage("d", None, None, None, ()),
    ]
    answers = {
        "a": _fixed("win", "acme corp", ("price", "budget"), Amount(85_200, "USD", "ACV")),  # within 1%
        "b": _fixed("loss", "Fabrikam", ("timing",), Amount(10, "USD", None)),  # labelled: no amount
        "c": _fixed("win"),
        "d": _fixed(None),
    }
    report = evaluate(lambda text: answers[text], labelled)
    assert (report.messages, report.outcomes, report.chatter) == (4, 2, 2)
    assert report.kind_accuracy == 0.75
    assert report.account_accuracy == 0.5
    assert report.competitor_accuracy == 0.5  # b expected Gong, got none
    assert report.reason_precision == 2 / 3 and report.reason_recall == 2 / 3
    assert report.chatter_false_capture == 0.5
    assert report.amount_accuracy == 0.5
    assert report.per_kind["win"] == {"precision": 0.5, "recall": 1.0, "support": 1.0}
    assert report.misses[0].text == "b"  # the worst miss first


def test_bad_labelled_lines_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="'kind' must be one of"):
        LabelledMessage.from_json({"text": "x", "kind": "won"})
    with pytest.raises(ValueError, match="'text' string"):
        LabelledMessage.from_json({"kind": None})

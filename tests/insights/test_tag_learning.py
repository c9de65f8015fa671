"""Learning from corrections: a team's own words, taught by its corrections, lift the tagger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from insights.config import Taxonomy, load_config
from insights.service import build_tagger, import_accounts, record_corrections
from insights.tag_eval import LabelledMessage, evaluate
from insights.tag_learning import Correction, describe, learn
from insights.tagging import Tagger
from tests.conftest import ROOT
from tests.insights.test_tagging import sample_accounts
from tests.insights.test_tagging_eval import TAGGING, load_labelled


def corrections(name: str) -> list[Correction]:
    lines = (TAGGING / name).read_text("utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line]
    return [
        Correction(r["text"], r["kind"], r["account"], r["competitor"], tuple(r["reasons"])) for r in rows
    ]


@pytest.fixture(scope="module")
def taxonomy(example_config_path: Path) -> Taxonomy:
    return load_config(example_config_path).taxonomy


def test_corrections_lift_the_scores_on_held_apart_messages_of_the_same_team(taxonomy: Taxonomy) -> None:
    base = Tagger(sample_accounts(), taxonomy)
    test_set: list[LabelledMessage] = load_labelled("dialect_test.jsonl")
    before = evaluate(base.tag, test_set)
    taught = Tagger(sample_accounts(), taxonomy)
    taught.learn(learn(corrections("dialect_corrections.jsonl"), base))
    after = evaluate(taught.tag, test_set)
    # The two files share no message: what lifts the test set is the team's vocabulary.
    assert {m.text for m in test_set}.isdisjoint(c.text for c in corrections("dialect_corrections.jsonl"))
    assert before.kind_accuracy < 0.5 and after.kind_accuracy >= 0.9
    assert after.account_accuracy - before.account_accuracy >= 0.5
    assert after.competitor_accuracy > before.competitor_accuracy
    assert after.reason_recall - before.reason_recall >= 0.4
    # ... and it does not cost the general labelled set anything that matters.
    general = evaluate(taught.tag, load_labelled("labelled.jsonl"))
    assert general.kind_accuracy >= 0.95 and general.chatter_false_capture <= 0.02


def test_what_is_learned_is_the_teams_words_and_nothing_generic(taxonomy: Taxonomy) -> None:
    base = Tagger(sample_accounts(), taxonomy)
    vocabulary = learn(corrections("dialect_corrections.jsonl"), base)
    lines = describe(vocabulary, base)
    assert "'bagged' means win" in lines
    assert "'walked' means renewal_loss" in lines
    assert "'wgcu' is Woodgrove Credit Union" in lines
    assert "'gongsters' is the competitor Gong" in lines
    generic = {"team", "deal", "customer", "contract", "the", "and", "arr"}
    assert not generic & {
        *vocabulary.kind_phrases,
        *vocabulary.account_aliases,
        *vocabulary.competitor_aliases,
    }


def test_a_single_correction_teaches_only_an_unmistakable_name(taxonomy: Taxonomy) -> None:
    base = Tagger(sample_accounts(), taxonomy)
    one = [Correction("NWT bailed on us, went with Clari", "loss", "Northwind Traders", "Clari")]
    vocabulary = learn(one, base)
    assert vocabulary.account_aliases == {
        "nwt": next(i for i, a in base.accounts.items() if a.name == "Northwind Traders")
    }
    assert vocabulary.kind_phrases == {}  # one sighting of a phrase is not yet a pattern


def test_corrections_are_kept_per_workspace_and_teach_only_it(
    session_factory: sessionmaker[Session], taxonomy: Taxonomy
) -> None:
    sample = ROOT / "bot" / "resources" / "sample_accounts.csv"
    for team in ("T1", "T2"):
        import_accounts(session_factory, team, sample.read_bytes(), sample.name)
    summary = record_corrections(session_factory, "T1", corrections("dialect_corrections.jsonl"), taxonomy)
    assert (summary.added, summary.total_examples) == (40, 40)
    assert "'binned' means loss" in summary.learned
    message = "WGCU walked, sticker shock"
    taught = build_tagger(session_factory, "T1", taxonomy).tag(message)
    assert (taught.kind, taught.account, taught.reasons) == (
        "renewal_loss",
        "Woodgrove Credit Union",
        ("price",),
    )
    assert build_tagger(session_factory, "T2", taxonomy).tag(message).kind is None

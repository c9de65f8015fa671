"""The learned second opinion on an outcome's kind (insights/kind_model.py)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from insights.config import Taxonomy, load_config
from insights.kind_model import (
    MODEL_PATH,
    NONE,
    TRAINING_FILES,
    Example,
    KindModel,
    Linear,
    Policy,
    TrainingOptions,
    bundled_model,
    train_linear,
    train_model,
)
from insights.tagging import KINDS, Tagger
from tests.conftest import ROOT
from tests.insights.test_tagging import sample_accounts
from tests.insights.test_tagging_eval import TAGGING

CLASSES = (NONE, *KINDS)


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return load_config(ROOT / "bot" / "resources" / "icp.example.yml").taxonomy


@pytest.fixture(scope="module")
def tagger(taxonomy: Taxonomy) -> Tagger:
    return Tagger(sample_accounts(), taxonomy)


@pytest.fixture(scope="module")
def rules(taxonomy: Taxonomy) -> Tagger:
    return Tagger(sample_accounts(), taxonomy, kind_model=False)


def test_the_shipped_model_loads_and_was_trained_on_the_tuning_files_only() -> None:
    model = bundled_model()
    assert model is not None
    assert model.classes == CLASSES
    assert set(model.trained_on) == set(TRAINING_FILES)
    assert not {"holdout2", "holdout3", "dialect_test", "dialect_corrections"} & set(model.trained_on)
    assert model.stack is not None and len(model.text.weights) > 1000
    # The model overrules the rules only when it is sure.
    assert 0.5 <= model.policy.add <= 2 and 0.5 <= model.policy.drop <= 2 and 0.5 <= model.policy.switch <= 2
    assert KindModel.from_json(MODEL_PATH.read_text("utf-8")).to_json() == MODEL_PATH.read_text("utf-8")


def test_a_tagger_uses_the_shipped_model_unless_told_not_to(tagger: Tagger, rules: Tagger) -> None:
    assert tagger.kind_model is bundled_model()
    assert rules.kind_model is None
    assert Tagger(kind_model=None).kind_model is None


@pytest.mark.parametrize(
    "text",
    [
        "lunch at noon?",
        "anyone know the wifi password?",
        "We lost the pub quiz again 😂",
        "Can someone send me the Q3 board deck?",
        "Fabrikam dinner went well, lovely people",
        "If Contoso churns we miss the quarter",
        "We didn't lose Acme Corp, they renewed flat",
    ],
)
def test_obvious_chatter_stays_untagged(tagger: Tagger, text: str) -> None:
    assert tagger.tag(text).kind is None


def test_the_model_catches_an_outcome_the_rules_have_no_phrase_for(tagger: Tagger, rules: Tagger) -> None:
    text = "Northwind Traders: pen hit paper, 3 year deal, $90k ACV 🎉"
    assert rules.tag(text).kind is None
    result = tagger.tag(text)
    assert (result.kind, result.account) == ("win", "Northwind Traders")
    evidence = [e.words for e in result.evidence if e.field == "kind"]
    assert evidence and evidence[-1].startswith("model: ")  # a person can see why
    assert "ACCOUNT" not in evidence[-1] and 0.5 < result.confidence < 1


def test_a_hashtag_or_crm_template_is_never_overruled(taxonomy: Taxonomy) -> None:
    # A model that always says "no outcome" with certainty: only the marked kind survives it.
    never = KindModel(Linear(CLASSES, (50.0, 0, 0, 0, 0, 0), {}), None, Policy(0.5, 0.5, 0.5))
    tagger = Tagger(sample_accounts(), taxonomy, kind_model=never)
    assert tagger.tag("#win Contoso, 40k ARR").kind == "win"
    assert tagger.tag("Stage: Closed Lost\nAccount: Contoso").kind == "loss"
    assert tagger.tag("We signed Contoso today, $40k ARR").kind is None  # a plain cue can be dropped


def test_the_policy_adds_drops_and_switches_only_above_its_thresholds() -> None:
    model = KindModel(Linear(CLASSES, (0.0,) * 6, {}), None, Policy(add=0.7, drop=0.8, switch=0.9))
    win = [0.1, 0.75, 0.05, 0.05, 0.025, 0.025]
    assert model.apply(win, None).kind == "win"
    assert model.apply(win, None).overruled
    assert replace(model, policy=Policy(add=0.8)).apply(win, None).kind is None
    unsure_none = [0.7, 0.1, 0.1, 0.05, 0.025, 0.025]
    assert model.apply(unsure_none, "loss").kind == "loss"  # 0.7 < drop 0.8: the rules stand
    assert model.apply([0.85, 0.05, 0.05, 0.05, 0, 0], "loss").kind is None
    renewal_loss = [0.02, 0.02, 0.02, 0.92, 0.01, 0.01]
    assert model.apply(renewal_loss, "loss").kind == "renewal_loss"
    assert model.apply([0.1, 0.0, 0.05, 0.85, 0.0, 0.0], "loss").kind == "loss"


def test_the_model_reads_words_with_names_and_figures_masked(rules: Tagger) -> None:
    kind, words, features = rules.kind_features("We signed Contoso Ltd, $40k ARR. ok? 🎉")
    assert kind == "win"
    assert {"w:sign", "n:signed", "b:we sign", "b:sign ACCOUNT", "b:ACCOUNT NUM", "w:arr"} <= set(words)
    assert {"b:<s> ok", "w:?", "e:🎉", "e:any"} <= set(words)  # "." ends a bigram run
    assert not any("contoso" in w.lower() for w in words) and "b:arr ok" not in words
    assert len(words) == len(set(words))
    assert {"r:kind:win", "r:cue:win", "r:strong:win", "r:account", "r:amount"} <= set(features)
    _, _, negated = rules.kind_features("We didn't lose Contoso Ltd")
    assert {"r:kind:none", "r:blocked:loss"} <= set(negated)


def test_linear_training_learns_a_separable_toy_problem() -> None:
    rows = [(["w:yay"], {}), (["w:boo"], {}), (["w:meh"], {})] * 5
    labels = ["win", "loss", None] * 5
    model = train_linear(rows, labels, CLASSES, TrainingOptions(l2=0.1, min_count=1))
    for word, label in (("w:yay", "win"), ("w:boo", "loss"), ("w:meh", NONE)):
        probs = model.probabilities([word])
        assert CLASSES[probs.index(max(probs))] == label


def _small_groups(rules: Tagger) -> dict[str, list[Example]]:
    groups: dict[str, list[Example]] = {}
    for name in ("labelled", "holdout", "training3"):
        lines = (TAGGING / f"{name}.jsonl").read_text("utf-8").splitlines()[:50]
        for line in lines:
            row = json.loads(line)
            kind, words, features = rules.kind_features(row["text"])
            groups.setdefault(name, []).append(Example(tuple(words), tuple(features), kind, row["kind"]))
    return groups


def test_retraining_is_deterministic(rules: Tagger) -> None:
    groups = _small_groups(rules)
    options = TrainingOptions(iterations=60)
    first = train_model(groups, CLASSES, options, replace(options, min_count=1)).to_json()
    second = train_model(groups, CLASSES, options, replace(options, min_count=1)).to_json()
    assert first == second
    assert KindModel.from_json(first).to_json() == first


def test_a_model_file_of_another_format_is_refused() -> None:
    data = json.loads(MODEL_PATH.read_text("utf-8"))
    data["format"] = 99
    with pytest.raises(ValueError, match="format"):
        KindModel.from_json(json.dumps(data))
    data["format"] = 1
    data["text"]["bias"] = [0.0]
    with pytest.raises(ValueError, match="do not match"):
        KindModel.from_json(json.dumps(data))

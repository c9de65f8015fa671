"""The tagger's fast paths give what the plain ways they replace give."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from insights.kind_model import Linear
from insights.tagging import (
    _TOKEN,
    Lexicon,
    Tagger,
    _Memo,
    _Reading,
    _split_tokens,
    tokenize,
)
from tests.insights.test_tagging import TAXONOMY, sample_accounts

WORDS = st.sampled_from(["won", "lost", "the", "deal", "closed", "not", "ab", "a b", "", "x"])


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab _'’&?!.;:\n\tΩé1#-ͺ"), max_size=60))
def test_tokens_split_are_the_tokens_found(text: str) -> None:
    matches = list(_TOKEN.finditer(text))
    assert _split_tokens(text) == (
        [m.group() for m in matches],
        [m.start() for m in matches],
        [m.end() for m in matches],
    )
    assert [t.text for t in tokenize(text)] == [m.group() for m in matches]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(WORDS, min_size=1, max_size=3), max_size=12), st.lists(WORDS, max_size=20))
def test_the_tree_finds_what_joining_the_words_finds(phrases: list[list[str]], norms: list[str]) -> None:
    plain, tree = Lexicon(), Lexicon(trie=True)
    for i, words in enumerate(phrases):
        for lexicon in (plain, tree):
            lexicon.add(" ".join(words), i)
    if any(" " in w for w in norms):  # the tree is only used on words without spaces
        assert tree.scan(norms) == plain.scan(norms)
    else:
        assert tree.scan(norms, spaceless=True) == plain.scan(norms)
    assert plain.starts_any(norms) == (not plain.sizes.keys().isdisjoint(norms))
    plain.add("zz top", 99)  # what it remembers is forgotten when a phrase is added
    assert plain.starts_any([*norms, "zz"])


def test_a_memo_is_bounded_and_answers_as_its_function() -> None:
    memo = _Memo(str.upper, size=3)
    assert [memo[w] for w in "abcdab"] == list("ABCDAB")
    assert len(memo) <= 3


def test_a_reading_finds_the_clauses_a_cue_needs() -> None:
    reading = _Reading.of("If we win Contoso. Has Fabrikam signed? they signed")
    first, second, third = reading.clause(0), reading.clause(5), reading.clause(9)
    assert (first.start, first.end, first.first_if) == (0, 4, 0)
    assert (second.start, second.opens_question, second.ends_question) == (4, True, True)
    assert third.start == 8 and not third.opens_question
    assert reading.spaceless and _Reading.of("aͺb").spaceless is False


def test_linear_scores_add_valued_features_in_turn() -> None:
    model = Linear(("a", "b"), (0.1, 0.2), {"x": (0.3, 0.4), "v": (0.5, 0.7), "u": (1.1, 1.3)})
    totals = model.scores(["x", "nope"], {"v": 2.0, "w": 9.0, "u": 3.0})
    assert totals == [0.1 + 0.3 + 0.5 * 2.0 + 1.1 * 3.0, 0.2 + 0.4 + 0.7 * 2.0 + 1.3 * 3.0]


def test_names_as_written_skip_rivals_and_keep_runs() -> None:
    tagger = Tagger(sample_accounts(), TAXONOMY)
    result = tagger.tag("We lost Zyntrax Labs to Gong, Voss Group next")
    assert result.account == "Zyntrax Labs" and result.competitor == "Gong"
    assert re.fullmatch(r"[\w ]+", result.account or "")

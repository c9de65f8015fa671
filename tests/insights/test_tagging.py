"""The tagger on literal messages: kinds, accounts, competitors, reasons, amounts, bad input."""

from __future__ import annotations

import csv

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from insights.config import Competitor, Taxonomy
from insights.matching import AccountRef
from insights.tagging import Amount, Tagger, Token, _find, _word_features, slack_to_plain, tokenize
from tests.conftest import ROOT

TAXONOMY = Taxonomy(
    competitors=[
        "Gong", "Clari", Competitor(name="Gainsight", aliases=["GS"]),
        Competitor(name="Salesloft", aliases=["SL"]), "Outreach",
        "Totango", "ChurnZero", "People.ai",
    ],
    reasons={"onboarding_speed": ["time to first value"]},
)  # fmt: skip


def sample_accounts() -> list[AccountRef]:
    with (ROOT / "bot" / "resources" / "sample_accounts.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [
        AccountRef(i, r["name"], r["domain"] or None, r["country"] or None) for i, r in enumerate(rows, 1)
    ]


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return Tagger(sample_accounts(), TAXONOMY)


OUTCOMES = [
    # (message, (kind, account, competitor, reasons))
    ("CW Fabrikam 85k ACV, beat a competitor on ease of use", ("win", "Fabrikam Systems", None, ())),
    ("#churn Tailspin gave notice, champion left",
     ("renewal_loss", "Tailspin Toys", None, ("champion_loss",))),
    ("we lost contoso. too small for us honestly", ("loss", "Contoso Ltd", None, ("poor_fit",))),
    # The rollout is what failed, not the reason it failed: no "implementation" reason.
    ("Woodgrove CU rollout failed the security sign-off",
     ("implementation_failure", "Woodgrove Credit Union", None, ("security_compliance",))),
    ("Lost Contoso to Gong; Fabrikam still in play", ("loss", "Contoso Ltd", "Gong", ())),
    ("Deal: Proseware | Outcome: Lost | Reason: Price", ("loss", "Proseware Inc", None, ("price",))),
    ("Initech went with Clari over us, pricing", ("loss", "Initech", "Clari", ("price",))),
    ("Acme Corp renewed early and added 200 seats", ("customer_win", "Acme Corp", None, ())),
    ("Litware decided not to renew, lost to GS",
     ("renewal_loss", "Litware & Sons Publishing", "Gainsight", ())),
    ("lost Relecloud, their time to first value was too slow",
     ("loss", "Relecloud", None, ("onboarding_speed",))),
    ("Tailspin Toys won't be renewing, $96k ARR", ("renewal_loss", "Tailspin Toys", None, ())),
    ("Gong took Northwind. Their CRO knew the founders", ("loss", "Northwind Traders", "Gong", ())),
    ("Opportunity: Bellows College expansion Stage: Closed Won Type: Existing Business",
     ("customer_win", "Bellows College", None, ())),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), OUTCOMES)
def test_outcomes_from_how_people_write(
    tagger: Tagger, text: str, expected: tuple[str, str, str | None, tuple[str, ...]]
) -> None:
    result = tagger.tag(text)
    assert (result.kind, result.account, result.competitor, result.reasons) == expected
    assert 0 < result.confidence <= 1
    assert any(e.field == "kind" for e in result.evidence)


@pytest.mark.parametrize(
    "text",
    [
        "meeting Northwind next Tuesday",
        "what's our win rate against Gong?",
        "lunch anyone?",
        "didn't lose Fabrikam, it just slipped",
        "if we lose Contoso we miss the quarter",
        "who owns Contoso?",
        "should we win more deals like Fabrikam?",
        "Tailspin might churn next quarter",
        "I won the office fantasy league",
        "Opportunity: Orbisdale Telecom Stage: Closed Won Type: Renewal Amount: $310,000",
        "reminder: use #win / #loss / #churn in <#C05WL|win-loss> so the bot picks it up",
        "Proposal out to Fabrikam for an upsell of 50 seats, $14k ACV",
        "Hartwell wants references before they sign. Who can we ask?",
        "lost my laptop charger somewhere in the office",
        "",
        ":tada: :tada: :rocket:",
    ],
)
def test_chatter_questions_plans_and_negations_are_not_outcomes(tagger: Tagger, text: str) -> None:
    result = tagger.tag(text)
    assert result.kind is None
    assert (result.account, result.competitor, result.reasons, result.amount) == (None, None, (), None)


def test_slack_markup_is_read_as_text(tagger: Tagger) -> None:
    assert slack_to_plain(
        "<https://fabrikam.com|Fabrikam> &amp; <@U024BE7LH> in <#C01|deals> <!channel>"
    ) == ("Fabrikam &  in  ")  # channel references are not content
    result = tagger.tag("<!here> <https://fabrikam.com|Fabrikam> closed won &amp; live :tada:")
    assert (result.kind, result.account) == ("win", "Fabrikam Systems")
    by_domain = tagger.tag("signed https://www.cohowinery.com today")
    assert (by_domain.kind, by_domain.account) == ("win", "Coho Winery")


def test_typos_short_forms_and_case(tagger: Tagger) -> None:
    assert tagger.tag(":tada: Contsoo signed!").account == "Contoso Ltd"
    assert tagger.tag("LOST NORTHWIND TO CLARI").account == "Northwind Traders"
    assert tagger.tag("litware churned").account == "Litware & Sons Publishing"
    # An ordinary word that starts a company name never names the company on its own.
    assert tagger.tag("signed the fourth deal this month").account != "Fourth Coffee"


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("CW Fabrikam 85k ACV", Amount(85_000, "USD", "ACV")),
        ("Signed Contoso €1.2M TCV", Amount(1_200_000, "EUR", "TCV")),
        ("Lost Relecloud, £40k ARR", Amount(40_000, "GBP", "ARR")),
        ("Won Acme Corp for $120,000", Amount(120_000, "USD", None)),
        ("Won Acme Corp with 500 seats", None),
        # Dots grouping thousands, as much of Europe writes them (this used to raise ValueError).
        ("Renewal lost at Contoso, €1.234.567 ARR", Amount(1_234_567, "EUR", "ARR")),
        ("Won Fabrikam, EUR 1.234 ARR", Amount(1_234, "EUR", "ARR")),
        ("Lost Relecloud, €1.234.567.89 ARR", None),  # no figure anyone writes: no amount, no error
    ],
)
def test_amounts(tagger: Tagger, text: str, amount: Amount | None) -> None:
    assert tagger.tag(text).amount == amount


def test_the_account_is_the_one_the_outcome_is_about(tagger: Tagger) -> None:
    result = tagger.tag("Fabrikam demo went well. Separately: we lost Contoso to Gong on price")
    assert (result.kind, result.account, result.competitor, result.reasons) == (
        "loss",
        "Contoso Ltd",
        "Gong",
        ("price",),
    )


def test_a_competitor_is_never_taken_for_an_account() -> None:
    tagger = Tagger([AccountRef(1, "Gong Industries Ltd", "gongindustries.com")], TAXONOMY)
    result = tagger.tag("lost Northbridge to Gong")
    assert result.competitor == "Gong" and result.account == "Northbridge"


ADVERSARIAL = [
    "a" * 40_000,
    "a." * 20_000,
    "<a" * 20_000,
    "&amp;" * 8_000,
    "won lost " * 5_000,
    "win rate " * 5_000,
    ":tada:" * 7_000,
    "\x00\xff\ufffd" * 10_000,
    " ".join(f"Company{i} Corp" for i in range(50)) + " signed",
]


@pytest.mark.parametrize("text", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_pathological_messages_get_an_answer(tagger: Tagger, text: str) -> None:
    result = tagger.tag(text)
    assert result.kind is None or result.kind in ("win", "loss")


def test_a_message_naming_fifty_companies_picks_one(tagger: Tagger) -> None:
    names = [a.name for a in sample_accounts()[:50]]
    result = tagger.tag("We signed " + ", ".join(names))
    assert result.kind == "win" and result.account in names


@settings(max_examples=300, deadline=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from("aA .,?!#:<>|&;@$€£0123456789kKmM\n_-'wonlstigcu"), max_size=3000))
def test_any_text_is_tagged_quickly_and_consistently(text: str) -> None:
    result = TAGGER.tag(text)
    assert result.kind in (None, "win", "loss", "renewal_loss", "implementation_failure", "customer_win")
    assert 0 <= result.confidence <= 1
    if result.kind is None:
        assert result.account is None and result.reasons == ()


@settings(max_examples=200, deadline=500)
@given(st.text(max_size=2000))
def test_arbitrary_unicode_never_raises(text: str) -> None:
    TAGGER.tag(text)


TAGGER = Tagger(sample_accounts(), TAXONOMY)


def test_business_abbreviations_are_never_taken_for_an_unknown_account(tagger: Tagger) -> None:
    result = tagger.tag("closed won hotels cassiope, €88k ARR, 3 yrs")
    assert result.kind == "win" and result.account != "ARR"
    assert result.amount == Amount(88_000, "EUR", "ARR")
    assert tagger.tag("Lost Zyntrax Labs, their CFO killed it").account == "Zyntrax Labs"


def test_tokens_are_tokens_with_their_folded_form() -> None:
    tokens = tokenize("Zürich's CFO & we’ll?")
    assert all(type(t) is Token for t in tokens)
    assert tokens[0] == Token("Zürich's", "zurich", 0, 8)
    assert [t.norm for t in tokens] == ["zurich", "cfo", "and", "well", "?"]


def test_what_a_word_gives_the_kind_model_depends_on_the_word_alone() -> None:
    assert _word_features("signed").unigrams == ("w:sign", "n:signed")
    assert _word_features("signed").prefix == "b:sign "
    assert _word_features("Zyntrax").mask == "NAME" and _word_features("85k").mask == "NUM"
    assert _word_features("CW").mask is None  # a word, not a name
    assert _word_features("?") == ("", ("w:?",), "", "b:<s> ") and _word_features(".").unigrams == ()


def test_a_pattern_is_not_run_on_a_text_without_its_needles() -> None:
    import re

    pattern = re.compile(r"#(\w+)")
    assert [m.group(1) for m in _find(pattern, "a #win and #loss", "#")] == ["win", "loss"]
    assert list(_find(pattern, "no hashtag here", "#")) == []


def test_a_typo_lookup_is_remembered(tagger: Tagger) -> None:
    assert tagger._typo_form("contsoo") == "contoso"
    assert tagger._typo_forms["contsoo"] == "contoso"
    assert tagger._typo_form("contsoo") == "contoso" and tagger._typo_form("zzzzzz") is None

"""Block Kit builders: pure functions, tested with literal data."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.blocks import (
    SECTION_LIMIT,
    confirmation_message,
    correction_modal,
    fit_message,
    not_found_message,
    parse_correction,
    split_paragraphs,
)
from bot.render import money
from insights.capture import NoteView
from insights.errors import AccountNotFoundError
from insights.matching import Suggestion
from insights.scoring import FitScore, RuleResult
from insights.service import FitAnswer, RecentOutcome


def _note(**changes: Any) -> NoteView:
    values: dict[str, Any] = {
        "id": 7, "channel": "C0DEALS", "ts": "1761900000.000100", "thread_ts": None, "user": "U0MAYA",
        "permalink": None, "text": "Lost Contoso on price", "kind": "loss", "account": "Contoso Ltd",
        "account_id": 1, "tier": "B", "competitor": "Gong", "reasons": ("price",), "amount": None,
        "confidence": 0.9, "status": "active", "retracted_reason": None, "source": "message",
        "corrected_by": None, "confirmation_ts": None, "posted_at": datetime(2026, 10, 26, tzinfo=UTC),
        "created_at": datetime(2026, 10, 26, tzinfo=UTC),
    }  # fmt: skip
    values.update(changes)
    return NoteView(**values)


def _all_text(blocks: list[dict[str, Any]]) -> str:
    out: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    out.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(blocks)
    return "\n".join(out)


def test_split_paragraphs_keeps_paragraphs_and_respects_the_section_limit() -> None:
    assert split_paragraphs("a\n\n\n\nb\nc") == ["a", "b\nc"]
    long_paragraph = "\n".join(f"line {i} " + "x" * 80 for i in range(200))
    chunks = split_paragraphs(long_paragraph)
    assert all(len(c) <= SECTION_LIMIT for c in chunks)
    assert "\n".join(chunks) == long_paragraph  # cut on line ends: nothing lost
    assert all(len(c) <= 100 for c in split_paragraphs("y" * 1000, limit=100))


def test_the_confirmation_reads_like_the_issue_and_escapes_what_users_wrote() -> None:
    message = confirmation_message(_note(amount={"value": 48000, "currency": "USD", "unit": "arr"}))
    assert message.text == "Logged: *Loss · Contoso Ltd · Tier B · price · lost to Gong · $48k ARR*\n"
    assert [e["action_id"] for e in message.blocks[-1]["elements"]] == ["note_change", "note_not_outcome"]
    evil = confirmation_message(_note(account="<!channel> Corp & <@U123>", competitor="<!here>", kind="win"))
    text = _all_text(evil.blocks) + evil.text
    assert "<!channel>" not in text and "<!here>" not in text and "<@U123>" not in text
    assert "&lt;!channel&gt; Corp &amp; &lt;@U123&gt;" in evil.text and "beat &lt;!here&gt;" in evil.text


def test_corrected_and_retracted_confirmations() -> None:
    corrected = confirmation_message(_note(corrected_by="U0LEAD", kind="renewal_loss"))
    assert (
        corrected.text.startswith("Logged: *Renewal loss · Contoso Ltd")
        and "corrected by <@U0LEAD>" in corrected.text
    )
    retracted = confirmation_message(_note(status="retracted", corrected_by="U0LEAD"))
    assert retracted.text.startswith("~Logged: Loss") and "removed by <@U0LEAD>" in retracted.text
    assert all(b["type"] != "actions" for b in retracted.blocks)


def test_money_formats_amounts_people_read() -> None:
    assert money({"value": 1_200_000, "currency": "EUR", "unit": "tcv"}) == "€1.2M TCV"
    assert money({"value": 85000, "currency": "USD", "unit": None}) == "$85k"
    assert money({"value": 950, "currency": "SEK", "unit": None}) == "950 SEK"
    assert money(None) == ""


def _answer(criteria: int = 4) -> FitAnswer:
    rules = tuple(
        RuleResult(f"Criterion {i} <!channel>", f"field{i}", i % 2 == 0, 10, f"detail {i} & <b>")
        for i in range(criteria)
    )
    fit = FitScore(score=70, tier="B", criteria=rules, disqualifiers=(), max_score=90, uncapped_tier="B")
    recent = (
        RecentOutcome(
            "loss",
            datetime(2026, 10, 26, tzinfo=UTC),
            "https://x.slack.com/archives/C1/p1",
            "Lost *them* <!here>",
            ("price",),
            None,
        ),
    )
    return FitAnswer("contoso", "Contoso Ltd", 1, "name", "2026-Q4", fit, {}, {"loss": 1}, ("A", "B"), recent)


def test_fit_message_stays_within_slack_limits_and_never_pings() -> None:
    for criteria in (4, 400):
        message = fit_message(_answer(criteria))
        assert len(message.blocks) <= 50 and len(message.text) <= 40_000
        for block in message.blocks:
            if block["type"] == "section":
                assert len(block["text"]["text"]) <= SECTION_LIMIT
        text = _all_text(message.blocks)
        assert "<!channel>" not in text and "<!here>" not in text
    message = fit_message(_answer())
    assert "<https://x.slack.com/archives/C1/p1|Loss · Oct 26, 2026> — “Lost *them*" in message.text
    assert message.blocks[-1]["elements"][0]["action_id"] == "fit_share"
    shared = fit_message(_answer(), shareable=False, shared_by="U0MAYA")
    assert all(b["type"] != "actions" for b in shared.blocks) and "shared by <@U0MAYA>" in _all_text(
        shared.blocks
    )


def test_suggestions_become_buttons_with_account_ids() -> None:
    suggestions = [
        Suggestion(3, "Contoso Global", 88.0, "contoso.com"),
        Suggestion(4, "Contoso Pharma", 80.0),
    ]
    message = not_found_message(AccountNotFoundError("contso", suggestions))
    buttons = message.blocks[-1]["elements"]
    assert [b["action_id"] for b in buttons] == ["fit_pick_0", "fit_pick_1"]
    assert [b["value"] for b in buttons] == ['{"id": 3}', '{"id": 4}']
    assert buttons[0]["text"]["text"] == "Contoso Global (contoso.com)"


def test_the_correction_modal_is_prefilled_and_its_submission_parses_back() -> None:
    view = correction_modal(
        _note(), ["onboarding_speed"], ["Gong", "Clari"], {"channel": "C0DEALS", "ts": "1.2"}
    ).to_dict()
    blocks = {b.get("block_id"): b for b in view["blocks"]}
    assert blocks["kind"]["element"]["initial_option"]["value"] == "loss"
    assert blocks["account"]["element"]["initial_value"] == "Contoso Ltd"
    assert [o["value"] for o in blocks["reasons"]["element"]["initial_options"]] == ["price"]
    assert "onboarding_speed" in [o["value"] for o in blocks["reasons"]["element"]["options"]]
    assert blocks["competitor"]["element"]["initial_value"] == "Gong"
    state = {
        "kind": {"kind": {"selected_option": {"value": "win"}}},
        "account": {"account": {"value": "Fabrikam"}},
        "reasons": {"reasons": {"selected_options": [{"value": "price"}, {"value": "timing"}]}},
        "competitor": {"competitor": {"value": None}},
    }
    correction = parse_correction(state)
    assert (correction.kind, correction.account, correction.reasons, correction.competitor) == (
        "win",
        "Fabrikam",
        ("price", "timing"),
        None,
    )
    assert parse_correction({}).kind == ""


@pytest.mark.parametrize(
    "state",
    [
        None, [], "values", {"kind": []}, {"kind": {"kind": "win"}},
        {"kind": {"kind": {"selected_option": []}}}, {"kind": {"kind": {"selected_option": {"value": 5}}}},
        {"reasons": {"reasons": {"selected_options": "x"}}},
        {"reasons": {"reasons": {"selected_options": [None, 3, {"value": []}, {"value": "price"}]}}},
        {"account": {"account": {"value": ["Contoso"]}}}, {"competitor": {"competitor": []}},
    ],
)  # fmt: skip
def test_submitted_values_of_another_shape_read_as_empty(state: Any) -> None:
    """A forged view submission never raises: what is not the shape Slack sends reads as empty."""
    correction = parse_correction(state)
    assert (correction.kind, correction.account, correction.competitor) == ("", None, None)
    assert correction.reasons == (("price",) if "'price'" in repr(state) else ())

"""Block Kit builders: pure functions from use-case results to Slack messages and views.

Wording comes from templates (bot.render); structure is built here with slack_sdk's block models,
which check Slack's limits locally. Every message carries a plain-text fallback.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticMultiSelectElement,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot import surface
from bot.render import KIND_LABELS, escape_mrkdwn, render
from insights.capture import NoteCorrection, NoteView
from insights.errors import AccountNotFoundError
from insights.service import FitAnswer
from insights.tagging import slack_to_plain

SECTION_LIMIT = 3000  # characters of mrkdwn in one section block
MESSAGE_BLOCKS = 50
TEXT_LIMIT = 39_000  # Slack cuts `text` at 40,000
DEFAULT_REASONS = (
    "price", "budget", "product_gap", "integration", "security_compliance", "timing", "no_decision",
    "champion_loss", "poor_fit", "adoption", "support", "implementation", "acquisition",
    "sales_execution", "relationship",
)  # fmt: skip


@dataclass(frozen=True)
class SlackMessage:
    text: str  # the plain fallback: notifications, screen readers, old clients
    blocks: list[dict[str, Any]]

    def as_kwargs(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}


def split_paragraphs(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """Cut mrkdwn into chunks of at most `limit` characters, on blank lines where possible,
    then on line ends, and only as a last resort inside a line."""
    chunks: list[str] = []
    for paragraph in (p.strip("\n") for p in text.split("\n\n")):
        rest = paragraph
        if not rest.strip():
            continue
        while len(rest) > limit:
            cut = rest.rfind("\n", 0, limit)
            cut = cut if cut > 0 else limit
            chunks.append(rest[:cut])
            rest = rest[cut:].lstrip("\n")
        chunks.append(rest)
    return chunks


def sections(text: str, room: int = MESSAGE_BLOCKS) -> list[Block]:
    chunks = split_paragraphs(text)
    if len(chunks) > room:  # too many paragraphs: the rest go into the last block
        chunks = [*chunks[: room - 1], "\n\n".join(chunks[room - 1 :])[:SECTION_LIMIT]]
    return [SectionBlock(text=MarkdownTextObject(text=chunk)) for chunk in chunks]


def _message(text: str, extra: Sequence[Block] = ()) -> SlackMessage:
    blocks = [*sections(text, MESSAGE_BLOCKS - len(extra)), *extra]
    fallback = text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"
    return SlackMessage(fallback, [b.to_dict() for b in blocks])


# ---------------------------------------------------------------------------------------------
# /icp-fit


def fit_text(answer: FitAnswer) -> str:
    return render("fit.mrkdwn.j2", a=answer, fit=answer.fit)


def fit_message(answer: FitAnswer, *, shareable: bool = True, shared_by: str | None = None) -> SlackMessage:
    """The answer to /icp-fit: ephemeral with a Share button, or shared in the channel."""
    text = fit_text(answer)
    context = f"ICP {escape_mrkdwn(answer.icp_version)}"
    if shared_by:
        context += f" · shared by <@{shared_by}>"
    extra: list[Block] = [ContextBlock(elements=[MarkdownTextObject(text=context)])]
    if shareable:
        value = json.dumps(
            {"id": answer.account_id, "q": answer.query if answer.account_id is None else None}
        )
        extra.append(
            ActionsBlock(
                block_id="fit_actions",
                elements=[ButtonElement(text="Share in channel", action_id=surface.FIT_SHARE, value=value)],
            )
        )
    return _message(text, extra)


def not_found_message(error: AccountNotFoundError) -> SlackMessage:
    text = render("not_found.mrkdwn.j2", e=error)
    buttons = [
        ButtonElement(
            text=_button_label(s.name, s.domain),
            action_id=f"{surface.FIT_PICK}_{i}",
            value=json.dumps({"id": s.id}),
        )
        for i, s in enumerate(error.suggestions[:5])
    ]
    return _message(text, [ActionsBlock(block_id="fit_pick", elements=buttons)] if buttons else [])


def _button_label(name: str, domain: str | None) -> str:
    label = f"{name} ({domain})" if domain else name
    return label if len(label) <= 75 else label[:74] + "…"  # button text: 75 characters at most


def usage_message() -> SlackMessage:
    return _message(render("usage.mrkdwn.j2"))


def notice_message(text: str) -> SlackMessage:
    """A one-paragraph answer (an error, a hint). `text` must already be mrkdwn-escaped."""
    return _message(text)


# ---------------------------------------------------------------------------------------------
# Capture confirmations and corrections


def confirmation_text(note: NoteView) -> str:
    return render("confirm.mrkdwn.j2", n=note)


def confirmation_message(note: NoteView) -> SlackMessage:
    """ "Logged: Loss · Contoso Ltd · Tier B · price · lost to Gong" with Change / Not an outcome."""
    text = confirmation_text(note)
    extra: list[Block] = []
    if note.status == "active":
        extra.append(
            ActionsBlock(
                block_id="note_actions",
                elements=[
                    ButtonElement(text="Change", action_id=surface.NOTE_CHANGE, value=str(note.id)),
                    ButtonElement(
                        text="Not an outcome", action_id=surface.NOTE_NOT_OUTCOME, value=str(note.id)
                    ),
                ],
            )
        )
    return _message(text, extra)


def _option(value: str, label: str) -> Option:
    return Option(value=value, text=PlainTextObject(text=label[:75]))


def correction_modal(
    note: NoteView, reasons: Sequence[str], competitors: Sequence[str], where: dict[str, str]
) -> View:
    """The Change modal, pre-filled with the note's labels. `where` says which message to update."""
    kinds = [_option(k, label) for k, label in KIND_LABELS.items()]
    reason_codes = list(dict.fromkeys([*DEFAULT_REASONS, *reasons, *note.reasons]))[:100]
    reason_options = [_option(r, r.replace("_", " ")) for r in reason_codes]
    chosen_reasons = [o for o in reason_options if o.value in note.reasons]
    kind_select = StaticSelectElement(
        action_id="kind",
        options=kinds,
        initial_option=next((o for o in kinds if o.value == note.kind), None),
    )
    reason_select = StaticMultiSelectElement(
        action_id="reasons",
        options=reason_options,
        initial_options=chosen_reasons or None,
        placeholder="Why?",
    )
    hint = ", ".join(competitors[:8])
    blocks: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text=f"> {escape_mrkdwn(_quote(slack_to_plain(note.text)))}")),
        InputBlock(block_id="kind", label="Outcome", element=kind_select),
        InputBlock(
            block_id="account",
            label="Account",
            optional=True,
            element=PlainTextInputElement(
                action_id="account", initial_value=note.account or None, max_length=300
            ),
            hint="A name, nickname or domain from the CRM.",
        ),
        InputBlock(block_id="reasons", label="Reasons", optional=True, element=reason_select),
        InputBlock(
            block_id="competitor",
            label="Competitor",
            optional=True,
            element=PlainTextInputElement(
                action_id="competitor", initial_value=note.competitor or None, max_length=200
            ),
            hint=f"Known: {hint}" if hint else None,
        ),
    ]
    return View(
        type="modal",
        callback_id=surface.NOTE_CORRECT,
        title="Correct this outcome",
        submit="Save",
        close="Cancel",
        private_metadata=json.dumps({"note": note.id, **where}),
        blocks=blocks,
    )


def _quote(text: str, limit: int = 600) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def parse_correction(state: Any) -> NoteCorrection:
    """The Change modal's submitted values (view.state.values) as a correction; a value of
    another shape than Slack sends reads as empty (and is refused as such), never as an error."""
    values = _object(state)

    def value(block: str) -> dict[str, Any]:
        return _object(_object(values.get(block)).get(block))

    kind = _string(_object(value("kind").get("selected_option")).get("value")) or ""
    options = value("reasons").get("selected_options")
    reasons = tuple(
        text
        for o in (options if isinstance(options, list) else [])
        if (text := _string(_object(o).get("value")))
    )
    return NoteCorrection(
        kind=kind,
        account=_string(value("account").get("value")),
        competitor=_string(value("competitor").get("value")),
        reasons=reasons,
    )

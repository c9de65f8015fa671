"""Learn a workspace's own words from the corrections its people make.

When someone corrects a captured note, the message and the right labels become an example. From
the examples the tagger got wrong, `learn` finds the words that stand for the corrected label:
a phrase that comes with the same label in at least two corrections and never with another one
("bagged" -> win, "WGCU" -> Woodgrove Credit Union, "the gongsters" -> Gong). Single, rare
words (an acronym, a word no dictionary lists) are accepted from one correction. What is learned
is plain vocabulary, shown as evidence like every other cue, so a person can see why a message
was tagged the way it was.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from insights.normalize import fold
from insights.tag_eval import LabelledMessage
from insights.tagging import (
    KIND_WORDS,
    LearnedVocabulary,
    Tagger,
    common_words,
    normalise_phrase,
    slack_to_plain,
    stem_phrase,
    tokenize,
)

# Words that never carry a label on their own.
_STOP = frozenset(
    "a an the and or but of to in on at for with from by is are was were be been it its this that "
    "we our us they their them he she his her i my you your just so as up out about after before "
    "today yesterday week month quarter year k m arr acv tcv mrr usd eur gbp".split()
)
# Business words too generic to stand for one label.
_GENERIC = frozenset(
    "team teams work deal deals customer customers contract account project update call meeting "
    "people thing things good great new time day sales product data they're it's that's".split()
)
MAX_TERMS_PER_LABEL = 3


# A correction is a labelled message: the message and the labels a person gave it.
Correction = LabelledMessage


@dataclass(frozen=True)
class _Phrase:
    norm: str  # as written, normalised (for names)
    stem: str  # stemmed (for cues)
    capitalised: bool


def _phrases(text: str) -> list[_Phrase]:
    """Every run of one to three words, with and without a leading "the"."""
    tokens = [t for t in tokenize(slack_to_plain(text)) if t.norm.isalnum() or t.norm == "and"]
    out: list[_Phrase] = []
    for i in range(len(tokens)):
        for size in (1, 2, 3):
            run = tokens[i : i + size]
            if len(run) < size:
                break
            words = [t.norm for t in run]
            generic = size == 1 and (words[0] in _GENERIC or stem_phrase(words[0]) in _GENERIC)
            if words[-1] in _STOP or any(w.isdigit() for w in words) or generic:
                continue
            if words[0] in _STOP and not (words[0] == "the" and size > 1):
                continue
            norm = " ".join(words)
            capitalised = size == 1 and run[0].text.isupper() and len(run[0].text) >= 2
            out.append(_Phrase(norm, stem_phrase(norm), capitalised))
    return out


def _rare(phrase: str) -> bool:
    common = common_words()
    return all(w not in common for w in phrase.split() if w not in _STOP)


def _best(
    counts: Counter[str], elsewhere: dict[str, int], taken: set[str], capitalised: set[str], limit: int
) -> list[str]:
    """The phrases that stand for one label: at least two corrections (or one rare acronym such as
    "WGCU") and no occurrence with another label; more corrections first, then acronyms, then longer."""
    eligible = [
        p
        for p, n in counts.items()
        if not elsewhere.get(p) and p not in taken and (n >= 2 or (p in capitalised and _rare(p)))
    ]
    eligible.sort(key=lambda p: (-counts[p], p not in capitalised, -len(p.split()), p))
    chosen: list[str] = []
    for phrase in eligible:
        if any(phrase in c or c in phrase for c in chosen):
            continue  # "crashed on landing" already covers "crashed"
        chosen.append(phrase)
        if len(chosen) == limit:
            break
    return chosen


def learn(corrections: Iterable[Correction], tagger: Tagger) -> LearnedVocabulary:
    """What the corrections teach that `tagger` does not know yet."""
    examples = list(corrections)
    names = {fold(a.name): account_id for account_id, a in tagger.accounts.items()}
    known = {normalise_phrase(a.name) for a in tagger.accounts.values()} | set(KIND_WORDS)

    # For each label, how often each phrase comes with it, and with anything else.
    with_label: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    phrases_of: list[set[str]] = []
    stems_of: list[set[str]] = []
    capitalised: set[str] = set()
    surface: dict[str, Counter[str]] = defaultdict(Counter)  # stem -> how people wrote it
    results = [tagger.tag(c.text) for c in examples]
    for correction, result in zip(examples, results, strict=True):
        phrases = _phrases(correction.text)
        norms = {p.norm for p in phrases}
        stems = {p.stem for p in phrases}
        for p in phrases:
            surface[p.stem][p.norm] += 1
        phrases_of.append(norms)
        stems_of.append(stems)
        capitalised |= {p.norm for p in phrases if p.capitalised}
        if correction.kind and result.kind != correction.kind:
            with_label[("kind", correction.kind)].update(stems)
        named_accounts, named_rivals = tagger.names_in(correction.text)
        account_id = names.get(fold(correction.account or ""))
        if account_id is not None and account_id not in named_accounts:
            with_label[("account", correction.account or "")].update(norms - known)
        if correction.competitor and correction.competitor not in named_rivals:
            with_label[("competitor", correction.competitor)].update(norms - known)
        for code in set(correction.reasons) - set(result.reasons):
            with_label[("reason", code)].update(stems)

    def label_of(i: int, field: str) -> set[str]:
        c = examples[i]
        if field == "kind":
            # A slang word in a hypothetical ("if WGCU walks") is blocked by the tagger anyway:
            # only another outcome kind argues against a phrase.
            return {c.kind} if c.kind else {"*"}
        if field == "reason":
            return set(c.reasons) if c.kind else {"*"}
        value = c.account if field == "account" else c.competitor
        return {value} if value else {"*"}  # an unlabelled name argues for nothing

    learned: dict[str, dict[str, str]] = {"kind": {}, "account": {}, "competitor": {}, "reason": {}}
    for (field, label), counts in sorted(with_label.items()):
        pool = stems_of if field in ("kind", "reason") else phrases_of
        elsewhere = {
            p: sum(1 for i, ps in enumerate(pool) if p in ps and not label_of(i, field) & {label, "*"})
            for p in counts
        }
        taken = set(learned[field])
        is_name = field in ("account", "competitor")  # one nickname per name; a few phrases per label
        caps = capitalised if is_name else set()
        for phrase in _best(counts, elsewhere, taken, caps, limit=1 if is_name else MAX_TERMS_PER_LABEL):
            written = surface[phrase].most_common(1)[0][0] if not is_name and surface.get(phrase) else phrase
            learned[field][written] = label
    return LearnedVocabulary(
        account_aliases={p: names[fold(a)] for p, a in learned["account"].items()},
        competitor_aliases=dict(learned["competitor"]),
        kind_phrases=dict(learned["kind"]),
        reason_phrases=dict(learned["reason"]),
    )


def describe(vocabulary: LearnedVocabulary, tagger: Tagger) -> list[str]:
    """Human lines: what was learned ("'bagged' means win")."""
    lines = [f"'{p}' means {k}" for p, k in sorted(vocabulary.kind_phrases.items())]
    lines += [f"'{p}' is {tagger.accounts[i].name}" for p, i in sorted(vocabulary.account_aliases.items())]
    lines += [f"'{p}' is the competitor {c}" for p, c in sorted(vocabulary.competitor_aliases.items())]
    lines += [f"'{p}' is the reason {r}" for p, r in sorted(vocabulary.reason_phrases.items())]
    return lines

"""Tag one Slack message: outcome kind, account, competitor, reasons, amount, with evidence.

Pure and fast. A `Tagger` is built once from the workspace's accounts and taxonomy (and what its
people's corrections taught) and kept warm; `tag(text)` then costs a scan of the message's words
against a few phrase tables, so thousands of messages a second fit on one core.

How a kind is decided: cue phrases ("closed won", "gave notice", "rollout failed"), hashtags
(#win, #churn), CW/CL, CRM templates ("Outcome: Lost") and emoji add weight to a kind; a cue is
discarded when its clause is a question, a hypothetical, a plan or negated ("didn't lose",
"if we lose", "meeting X next week", "who owns X?"). Context turns a lost renewal into
`renewal_loss` and an expansion of an existing customer into `customer_win`. Then a learned
model (`insights.kind_model`, trained from the labelled files) gives a second opinion from the
message's words and what the rules found; it overrules them only when it is sure, and never
overrules a hashtag or a CRM template.
"""

from __future__ import annotations

import html
import re
import sys
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import accumulate, repeat
from typing import Any, NamedTuple, TypeVar

from rapidfuzz import fuzz, process

from insights.config import Taxonomy
from insights.kind_model import Decision, KindModel, bundled_model, rule_features
from insights.matching import AccountRef
from insights.normalize import domain_stem, fold, name_key, normalize_domain
from insights.tagging_vocab import (
    COMMON_ACRONYMS,
    EXPANSION_OBJECTS,
    EXPANSION_VERBS,
    FUTURE_MARKERS,
    HASHTAGS,
    HYPOTHETICALS,
    KIND_CUES,
    NEGATIONS,
    NEGATIVE_EMOJI,
    NEUTRAL_TERMS,
    NOT_NAMES,
    NOT_OUTCOME_PHRASES,
    PENDING_PHRASES,
    PLAN_NOUNS,
    POSITIVE_EMOJI,
    QUESTION_STARTS,
    REASON_PHRASES,
    RENEWAL_CONTEXT,
)

KINDS = ("win", "loss", "renewal_loss", "implementation_failure", "customer_win")
MAX_TEXT = 8000  # longer messages are tagged on their first 8,000 characters
_SHORT_FORM_MIN = 4
_TYPO_MEMORY = 65_536  # words whose typo lookup a tagger remembers


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Amount:
    value: float
    currency: str
    unit: str | None


@dataclass(frozen=True)
class Evidence:
    """The words that decided one field."""

    field: str
    value: str
    words: str


@dataclass(frozen=True)
class TagResult:
    text: str
    kind: str | None
    account: str | None
    account_id: int | None
    competitor: str | None
    reasons: tuple[str, ...]
    amount: Amount | None
    confidence: float
    evidence: tuple[Evidence, ...] = ()


# ---------------------------------------------------------------------------------------------
# Text


_LINK = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")
_EMOJI = re.compile(r":([a-z0-9_+'-]+):")
_HASHTAG = re.compile(r"(?<![\w&])#([A-Za-z][\w-]{1,40})")
_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)?|&|[?!.;:\n]")
_CLAUSE_BREAK = frozenset({"?", "!", ".", ";", ":", "\n"})
_CLAUSE_WORDS = frozenset({"but", "however", "although", "though", "while", "whereas"})
_CLAUSE_STARTS = _CLAUSE_BREAK | _CLAUSE_WORDS
_TEMPLATE = re.compile(
    r"\b(?:outcome|stage|stagename|status|result|deal stage|opportunity stage)\s*[:=]\s*"
    r"(?:[\w ]{0,30}?\s*(?:→|->)\s*)?"
    r"(closed[\s_-]*won|closed[\s_-]*lost|won|lost|booked|churned|cancelled|canceled|(?:closed\s*-\s*)?failed)\b",
    re.IGNORECASE,
)
_DEAL_TYPE = re.compile(
    r"\b(?:deal |opportunity )?type\s*[:=]\s*(renewal|existing business|upsell|expansion|new business|new)\b",
    re.IGNORECASE,
)
# One search of the lower-cased text for any of these (the same answer as `any(p in lowered ...)`).
_NOT_A_RECORD = re.compile(
    "|".join(map(re.escape, ("test record", "ignore", "duplicate", "data hygiene", "sandbox")))
)
_PAST_YEAR = re.compile(
    r"\b(?:in|back in|since|during|from|of)\s+(?:19|20)\d{2}\b|\b(?:19|20)\d{2} was\b", re.I
)
# Emoji and symbols written as characters ("🎉", "✅", "→"), which `tokenize` skips.
_SYMBOL = re.compile("[\u2190-\u21ff\u2300-\u23ff\u2600-\u27bf\u2b00-\u2bff\U0001f000-\U0001faff]")
_DIGIT = re.compile(r"\d")
_CW_CL = re.compile(r"(?<![\w#])(CW|CL|C/W|C/L)(?![\w/])")
# Starts only where a word starts, so a long run of letters is scanned once, not from every offset.
_DOMAIN = re.compile(r"(?<![\w.-])(?:https?://)?[a-z0-9][a-z0-9.-]{0,252}\.[a-z]{2,24}\b", re.IGNORECASE)
_DOMAIN_END = re.compile(r"\.[a-z]{2}", re.IGNORECASE)  # in every domain; quick to look for
_AMOUNT = re.compile(
    r"(?P<cur>[$€£]|\b(?:usd|eur|gbp)\s?)?"
    r"(?P<num>\d{1,3}(?:[,.]\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"\s?(?P<mult>k|mm|m|bn|b|million|thousand|mil)?\b"
    r"(?:\s?(?P<cur2>usd|eur|gbp|dollars|euros|pounds)\b)?"
    r"(?:\s?(?:/\s?(?:yr|year)\s?)?"
    r"(?P<unit>arr|acv|tcv|mrr|total contract value|total contract|contract value))?",
    re.IGNORECASE,
)


def slack_to_plain(text: str) -> str:
    """Slack markup to plain text: links become their labels (or the URL), mentions vanish,
    `&amp;` `&lt;` `&gt;` are unescaped. Emoji codes (`:tada:`) are kept for the cue reader."""

    def link(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if target.startswith(("@", "!")):
            return label or ""
        if target.startswith("#"):
            return ""  # a channel reference (<#C01|wins>) is not content, and never a hashtag
        return label or target.removeprefix("mailto:")

    return html.unescape(_LINK.sub(link, text[:MAX_TEXT]))


class Token(NamedTuple):
    """One word or clause mark (a NamedTuple: messages have hundreds, made thousands of times a second)."""

    text: str  # as written
    norm: str  # folded
    start: int
    end: int


def tokenize(text: str) -> list[Token]:
    texts, starts, ends = _split_tokens(text)
    # `tuple.__new__` builds each Token as `Token(text, norm, start, end)` would, without a
    # Python-level call.
    fields = zip(texts, map(_NORMS.__getitem__, texts), starts, ends, strict=True)
    return list(map(tuple.__new__, repeat(Token), fields))


# `_TOKEN` as one group: `split` then gives [gap, token, gap, token, ..., gap] as strings.
_TOKEN_SPLIT = re.compile(f"({_TOKEN.pattern})")


def _split_tokens(text: str) -> tuple[list[str], list[int], list[int]]:
    """The tokens of `text` as written, with their start and end offsets: the matches of
    `_TOKEN.finditer`, found by `split`, which makes no Match objects (half the time). `split`
    finds the same successive matches as `finditer` (`_TOKEN` never matches an empty string),
    and the running lengths of the parts are the offsets where each gap and token ends."""
    parts = _TOKEN_SPLIT.split(text)
    offsets = list(accumulate(map(len, parts)))
    return parts[1::2], offsets[0:-1:2], offsets[1::2]


_V = TypeVar("_V")


class _Memo(dict[str, _V]):
    """A bounded memo of a pure function of one string, read with `memo[key]` (in `map`: one
    C-level dict look-up per word, where an `lru_cache` call costs twice that). Cleared when
    full; the function is pure, so what it returns never depends on what the memo holds."""

    def __init__(self, function: Callable[[str], _V], size: int = 65_536) -> None:
        super().__init__()
        self.function = function
        self.size = size

    def __missing__(self, key: str) -> _V:
        if len(self) >= self.size:
            self.clear()
        value = self[key] = self.function(key)
        return value


def _norm(raw: str) -> str:
    """A token as written -> as the tagger compares it (`Token.norm`)."""
    if raw.isascii():
        norm = raw.lower() if "'" not in raw else _drop_possessive(raw.lower())
        if raw == "&":
            norm = "and"
    else:
        norm = _drop_possessive(fold(raw).replace("’", "'"))
    return norm


_NORMS = _Memo(_norm)  # `_norm`, memoised once: read in `map` for every word and by the word memos


# ---------------------------------------------------------------------------------------------
# Phrase tables


@dataclass
class Lexicon:
    """Phrases of whole words -> values; a scan finds every phrase in a token list.

    With `trie`, the phrases are also kept as a tree of words (word -> [values or None, the
    next words' tree]), walked once from each word instead of joining the words that follow it
    for every phrase length: worth it for the cue table (few phrases, scanned in every message),
    not for the accounts' (hundreds of thousands of phrases, rarely scanned past a first word)."""

    phrases: dict[str, list[object]] = field(default_factory=lambda: defaultdict(list))
    # first word -> the phrase lengths (in words) that start with it, longest first
    sizes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    trie: bool = False
    _tree: dict[str, list[Any]] = field(default_factory=dict)
    # word -> whether a phrase starts with it, remembered for the words messages use: `sizes` may
    # hold hundreds of thousands of words, and a look-up in a table that large misses the CPU's
    # caches. Forgotten whenever a phrase is added.
    _starts: _Memo[bool] = field(init=False)

    def __post_init__(self) -> None:
        self._starts = _Memo(self.sizes.__contains__)

    def add(self, phrase: str, value: object) -> None:
        words = phrase.split()
        if not words:
            return
        self._starts.clear()
        key = " ".join(words)
        if value not in self.phrases[key]:
            self.phrases[key].append(value)
        known = self.sizes.get(words[0], ())
        if len(words) not in known:
            self.sizes[words[0]] = tuple(sorted((*known, len(words)), reverse=True))
        if self.trie:
            tree = self._tree
            for word in words[:-1]:
                tree = tree.setdefault(word, [None, {}])[1]
            tree.setdefault(words[-1], [None, {}])[0] = self.phrases[key]  # the same list

    def starts_any(self, norms: Sequence[str]) -> bool:
        """Does a phrase start with any of these words (`not sizes.keys().isdisjoint(norms)`)?"""
        return any(map(self._starts.__getitem__, norms))

    def scan(self, norms: Sequence[str], *, spaceless: bool = False) -> list[tuple[int, int, list[object]]]:
        """Every (start, end, values) whose words form a known phrase, longest first per start.

        `spaceless`: the caller knows no word in `norms` holds a space. A phrase is found where
        the words joined by spaces spell it, and without spaces in the words that is where they
        are its words one by one: the tree finds the same phrases."""
        if self.trie and spaceless:
            return self._walk(norms)
        found = []
        n = len(norms)
        phrases = self.phrases
        for i, lengths in enumerate(map(self.sizes.get, norms)):
            if lengths is None:
                continue
            for size in lengths:
                if i + size > n:
                    continue
                values = phrases.get(norms[i] if size == 1 else " ".join(norms[i : i + size]))
                if values:
                    found.append((i, i + size, values))
        return found

    def _walk(self, norms: Sequence[str]) -> list[tuple[int, int, list[object]]]:
        found: list[tuple[int, int, list[object]]] = []
        n = len(norms)
        for i, node in enumerate(map(self._tree.get, norms)):
            if node is None:
                continue
            values, tree = node
            if not tree:  # a one-word phrase and no longer one (most cue words)
                found.append((i, i + 1, values))
                continue
            hits = [(i, i + 1, values)] if values else []
            j = i + 1
            while tree and j < n:
                deeper = tree.get(norms[j])
                if deeper is None:
                    break
                j += 1
                values, tree = deeper
                if values:
                    hits.append((i, j, values))
            found += reversed(hits)  # longest first
        return found


@lru_cache(maxsize=65_536)
def stem(word: str) -> str:
    """A light stem so inflections meet: renewing/renewed -> renew, signing -> sign,
    cancelled/canceled -> cancel, losses -> loss. Cue phrases and messages get the same stems."""
    if len(word) <= 4 or not word.isalpha():
        return word
    for suffix in ("ing", "ed", "ies", "es", "s"):
        if not word.endswith(suffix):
            continue
        base = word[: -len(suffix)]
        if suffix == "ies":
            base += "y"
        elif suffix == "es" and not base.endswith(("ss", "x", "z", "ch", "sh")):
            base = word[:-1]
        elif suffix == "s" and word.endswith("ss"):
            return word
        if len(base) < 3:
            return word
        if suffix in ("ing", "ed") and len(base) >= 5 and base[-1] == base[-2] and base[-1] not in "sz":
            base = base[:-1]  # cancelled -> cancel, stopped -> stop; roll stays roll
        return base
    return word


_STEMS = _Memo(stem)  # `stem`, read in `map` for every word


def stem_phrase(phrase: str) -> str:
    return " ".join(stem(w) for w in phrase.split())


_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?|&")


def normalise_phrase(text: str) -> str:
    """A phrase as the tagger compares it: the same words `tokenize` gives, joined by spaces."""
    words = _WORD.findall(fold(text))
    return " ".join("and" if w == "&" else _drop_possessive(w.replace("’", "'")) for w in words)


def _drop_possessive(word: str) -> str:
    """ "datum's" -> "datum", "margie's" -> "margie"; other apostrophes go: "won't" -> "wont"."""
    if word.endswith("'s"):
        word = word[:-2]
    return word.replace("'", "")


@lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """Frequent English words, which never name an account on their own ("Fourth", "Best")."""
    try:
        from wordfreq import top_n_list
    except ImportError:  # pragma: no cover - wordfreq is a dependency; keep tagging usable without it
        return frozenset(NOT_NAMES)
    return frozenset(top_n_list("en", 25_000)) | NOT_NAMES


# ---------------------------------------------------------------------------------------------
# Vocabulary learned from a workspace's corrections


@dataclass(frozen=True)
class LearnedVocabulary:
    """What corrections taught: phrase -> account id, competitor, kind or reason code."""

    account_aliases: Mapping[str, int] = field(default_factory=dict)
    competitor_aliases: Mapping[str, str] = field(default_factory=dict)
    kind_phrases: Mapping[str, str] = field(default_factory=dict)
    reason_phrases: Mapping[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# The tagger


@dataclass(frozen=True)
class _AccountForm:
    account_id: int
    strength: int  # 4 full name, 3 alias or domain, 2 distinctive short form, 1 acronym
    acronym: bool = False


@dataclass
class _Found:
    start: int
    end: int
    ids: tuple[int, ...]
    strength: int
    words: str


class Tagger:
    """Tags messages for one workspace. Build once (seconds for 100,000 accounts), reuse."""

    def __init__(
        self,
        accounts: Iterable[AccountRef] = (),
        taxonomy: Taxonomy | None = None,
        learned: LearnedVocabulary | None = None,
        kind_model: KindModel | bool | None = True,
    ) -> None:
        """`kind_model`: True for the bundled model (`insights/kind_model.json`), False or None
        for the rules alone, or a model of one's own."""
        self.kind_model: KindModel | None = None
        if isinstance(kind_model, KindModel):
            self.kind_model = kind_model
        elif kind_model is True:
            self.kind_model = bundled_model()
        self.accounts: dict[int, AccountRef] = {}
        self._account_forms = Lexicon()
        self._domains: dict[str, list[int]] = defaultdict(list)
        self._short_forms: dict[str, list[int]] = defaultdict(list)  # for typo matching
        self._cues = Lexicon(trie=True)
        self._short_competitor_aliases: dict[str, str] = {}
        self.reason_codes: list[str] = list(REASON_PHRASES)
        taxonomy = taxonomy or Taxonomy()
        common = common_words()

        competitor_keys: set[str] = set()
        for competitor in taxonomy.competitor_list:
            for alias in (competitor.name, *competitor.aliases):
                key = normalise_phrase(alias)
                if not key:
                    continue
                if len(key) <= 3 and " " not in key:
                    # "GS", "SL": only when written in capitals, or they eat ordinary words.
                    self._short_competitor_aliases[alias.strip().upper()] = competitor.name
                else:
                    self._cues.add(stem_phrase(key), ("competitor", competitor.name))
                competitor_keys.add(key)

        for account in accounts:
            self._add_account(account, common, competitor_keys)
        # Deletion index (as in SymSpell): a form and each form missing one letter, so a word
        # one edit away (or with two letters swapped) shares a key with it.
        self._typo_index: dict[str, list[str]] = defaultdict(list)
        self._typo_forms: dict[str, str | None] = {}  # word -> `_typo_form(word)`
        for form, ids in self._short_forms.items():
            if len(ids) == 1 and len(form) >= 5:
                for key in {form, *_deletions(form)}:
                    self._typo_index[key].append(form)

        for phrase, (kind, weight) in KIND_CUES.items():
            self._cues.add(stem_phrase(normalise_phrase(phrase)), ("kind", kind, weight))
        for phrase in NOT_OUTCOME_PHRASES:
            self._cues.add(stem_phrase(normalise_phrase(phrase)), ("not_outcome",))
        for phrase in PENDING_PHRASES:
            self._cues.add(stem_phrase(normalise_phrase(phrase)), ("pending",))
        for phrase in NEUTRAL_TERMS:
            self._cues.add(stem_phrase(normalise_phrase(phrase)), ("neutral",))
        reasons = {code: list(phrases) for code, phrases in REASON_PHRASES.items()}
        for code, phrases in taxonomy.reasons.items():
            reasons.setdefault(code, []).extend(phrases)
        self.reason_codes = list(reasons)
        for code, phrases in reasons.items():
            for phrase in phrases:
                self._cues.add(stem_phrase(normalise_phrase(phrase)), ("reason", code))

        self.learned = LearnedVocabulary()
        if learned is not None:
            self.learn(learned)

    def learn(self, learned: LearnedVocabulary) -> None:
        """Add what a workspace's corrections taught to this (warm) tagger."""
        for phrase, name in learned.competitor_aliases.items():
            self._cues.add(stem_phrase(normalise_phrase(phrase)), ("competitor", name))
        for phrase, account_id in learned.account_aliases.items():
            if account_id in self.accounts:
                self._account_forms.add(normalise_phrase(phrase), _AccountForm(account_id, 3))
        for phrase, kind in learned.kind_phrases.items():
            self._cues.add(stem_phrase(normalise_phrase(phrase)), ("kind", kind, 3.0))
        for phrase, code in learned.reason_phrases.items():
            self._cues.add(stem_phrase(normalise_phrase(phrase)), ("reason", code))
            if code not in self.reason_codes:
                self.reason_codes.append(code)
        self.learned = LearnedVocabulary(
            {**self.learned.account_aliases, **learned.account_aliases},
            {**self.learned.competitor_aliases, **learned.competitor_aliases},
            {**self.learned.kind_phrases, **learned.kind_phrases},
            {**self.learned.reason_phrases, **learned.reason_phrases},
        )

    # -- accounts ------------------------------------------------------------------------------

    def _add_account(self, account: AccountRef, common: frozenset[str], competitor_keys: set[str]) -> None:
        self.accounts[account.id] = account
        key = name_key(account.name)
        if not key:
            return
        words = key.split()
        full = normalise_phrase(account.name)
        forms: dict[str, _AccountForm] = {}

        def offer(phrase: str, strength: int, *, acronym: bool = False) -> None:
            if phrase and phrase not in competitor_keys and phrase not in forms:
                forms[phrase] = _AccountForm(account.id, strength, acronym)

        offer(full, 4)
        offer(key, 4 if len(words) > 1 or key not in common else 2)
        if len(words) >= 2:
            head = words[0]
            if len(head) >= _SHORT_FORM_MIN and head not in common and head not in NOT_NAMES:
                offer(head, 2)
                self._short_forms[head].append(account.id)
            if len(words) >= 3 and words[1] not in ("and", "of", "the", "for", "de"):
                offer(" ".join(words[:2]), 3)
            # "Woodgrove CU" for Woodgrove Credit Union: the first word and the others' initials.
            rest = [w for w in words[1:] if w not in ("and", "of", "the", "for")]
            if len(rest) >= 2:
                offer(f"{words[0]} {''.join(w[0] for w in rest)}", 3)
            initials = "".join(w[0] for w in words if w not in ("and", "of", "the", "for"))
            if len(initials) >= 3 and initials not in COMMON_ACRONYMS:
                offer(initials, 1, acronym=True)
        elif len(key) >= _SHORT_FORM_MIN:
            self._short_forms[key].append(account.id)
        if account.domain:
            self._domains[account.domain].append(account.id)
            stem = domain_stem(account.domain)
            if len(stem) >= _SHORT_FORM_MIN and stem not in common:
                offer(stem, 2)
        for alias in account.aliases:
            offer(normalise_phrase(alias), 3)
        for phrase, form in forms.items():
            self._account_forms.add(phrase, form)

    def _find_accounts(self, reading: _Reading, taken: set[int]) -> list[_Found]:
        text, texts, norms, starts = reading.plain, reading.texts, reading.norms, reading.starts
        found: list[_Found] = []
        # Every phrase the scan can find starts with a word of `sizes`: most messages hold none.
        if self._account_forms.starts_any(norms):
            # Names are read across abbreviation dots ("St. Aldric Health", "A. Datum"): scan the
            # words only, then map positions back to tokens.
            positions = [i for i, norm in enumerate(norms) if norm not in _CLAUSE_BREAK]
            words = [norms[i] for i in positions]
            matches = [
                (positions[a], positions[b - 1] + 1, values)
                for a, b, values in self._account_forms.scan(words)
            ]
            covered: set[int] = set(taken)
            for start, end, values in sorted(matches, key=lambda m: (m[0] - m[1], m[0])):
                if covered.intersection(range(start, end)):
                    continue
                forms = [v for v in values if isinstance(v, _AccountForm)]
                if any(f.acronym for f in forms) and not texts[start].isupper():
                    forms = [f for f in forms if not f.acronym]
                if not forms:
                    continue
                strength = max(f.strength for f in forms)
                ids = tuple(dict.fromkeys(f.account_id for f in forms if f.strength == strength))
                written = text[starts[start] : reading.ends[end - 1]]
                found.append(_Found(start, end, ids, strength, written))
                covered.update(range(start, end))
        if _DOMAIN_END.search(text):  # (a quick test first: most messages name no domain)
            for m in _DOMAIN.finditer(text):
                domain = normalize_domain(m.group(0))
                if domain and domain in self._domains:
                    index = reading.token_at(m.start())
                    found.append(_Found(index, index + 1, tuple(self._domains[domain]), 5, m.group(0)))
        return found

    def _typo_account(self, reading: _Reading, skip: set[int], near: Sequence[int]) -> _Found | None:
        """A name written with a typo ("Contsoo"): close to exactly one distinctive short form.

        Only words within five words of an outcome cue are tried (the company sits next to what
        happened to it). Forms are bucketed by first letter and length (a typo rarely changes the
        first letter and changes the length by one at most), so a lookup compares few forms.
        """
        common = common_words()
        norms = reading.norms
        for i in sorted({j for p in near for j in range(max(0, p - 5), min(len(norms), p + 6))}):
            word = norms[i]
            if i in skip or len(word) < 5 or word in common or not word[0].isalpha():
                continue
            form = self._typo_form(word)
            if form is not None:
                return _Found(i, i + 1, tuple(self._short_forms[form]), 1, reading.texts[i])
        return None

    def _typo_form(self, word: str) -> str | None:
        """The distinctive short form `word` is a typo of, if any (remembered: words recur)."""
        if word in self._typo_forms:
            return self._typo_forms[word]
        candidates = {form for key in (word, *_deletions(word)) for form in self._typo_index.get(key, ())}
        hit = (
            process.extractOne(word, sorted(candidates), scorer=fuzz.ratio, score_cutoff=80)
            if candidates
            else None
        )
        if len(self._typo_forms) >= _TYPO_MEMORY:
            self._typo_forms.clear()
        form = self._typo_forms[word] = hit[0] if hit is not None else None
        return form

    def names_in(self, text: str) -> tuple[set[int], set[str]]:
        """The accounts (ids) and competitors a message names, whatever it reports."""
        reading = self._read(text)
        found = self._scan_accounts(reading)
        return {i for f in found if len(f.ids) == 1 for i in f.ids}, {
            name for _, name, _ in reading.competitors
        }

    def _read(self, text: str) -> _Reading:
        """A message with its cues, reasons and competitors found."""
        reading = _Reading.of(text)
        reading.read_cues(self._cues.scan(reading.stems, spaceless=reading.spaceless))
        short = self._short_competitor_aliases  # competitors written as short capitals: "GS"
        if not short.keys().isdisjoint(reading.texts):
            for i, written in enumerate(reading.texts):
                name = short.get(written)
                if name:
                    reading.competitors.append((i, name, written))
        return reading

    def _scan_accounts(self, reading: _Reading) -> list[_Found]:
        """The accounts the message names; scanned once, when first needed."""
        if not reading.accounts_scanned:
            reading.found = self._find_accounts(reading, reading.competitor_tokens())
            reading.accounts_scanned = True
        return reading.found

    # -- the message ---------------------------------------------------------------------------

    def _rule_kind(self, reading: _Reading) -> tuple[str | None, bool]:
        """The rules' kind, and whether a kind was found but dropped for want of a deal object."""
        if reading.competitors:  # the rival patterns need to know which of our accounts are named
            self._scan_accounts(reading)
        reading.read_patterns()
        reading.read_marks()
        reading.read_implementation_failures()
        reading.read_expansions()
        reading.read_notice()
        reading.read_emoji()
        kind = _decide_kind(reading.scores, reading.marked)
        if kind is None:
            return None, False
        self._scan_accounts(reading)
        reading.settle_reasons()
        # An outcome is about a deal: an account, a rival or a name next to the words that
        # report it, or an amount. "We lost the pub quiz" and "my houseplants churned" are not.
        if kind in reading.marked or _supported(reading, kind):
            return _apply_context(kind, reading), False
        return None, True

    def kind_features(self, text: str) -> tuple[str | None, list[str], list[str]]:
        """The rules' kind and what the kind model reads: text features and rule features."""
        reading = self._read(text)
        kind, unsupported = self._rule_kind(reading)
        return kind, *self._model_features(reading, kind, unsupported)

    def _model_features(
        self, reading: _Reading, kind: str | None, unsupported: bool
    ) -> tuple[list[str], list[str]]:
        """Words (accounts, rivals, names and figures masked) and what the rules found."""
        found = self._scan_accounts(reading)
        # What each token gives (`_word_features`, remembered: it does not depend on the
        # message), then the masks over accounts and rivals; a mask may reach past the last token.
        words = list(map(_WORD_FEATURES.__getitem__, reading.texts))
        n = len(words)
        for f in found:
            for j in range(f.start, min(f.end, n)):
                words[j] = _ACCOUNT_MASK
        for start, _, written in reading.competitors:
            for j in range(start, min(start + max(1, len(written.split())), n)):
                words[j] = _RIVAL_MASK
        # Unigrams and bigrams of the words, stemmed ("w:") and as written when that differs
        # ("n:", which keeps the tense: "signed" is not "signing"); a run of one mask counts once,
        # clause marks end a bigram run, and "?" is a feature of its own. Only masks and bigrams
        # depend on the message.
        out: list[str] = []
        add = out.append
        previous = _RUN_START  # "b:" and the previous word or mask: the first half of a bigram
        for mask, unigrams, stemmed, prefix in words:
            if mask == "":  # a clause mark
                out += unigrams
                previous = _RUN_START
            elif mask is None or previous != prefix:
                out += unigrams
                add(previous + stemmed)
                previous = prefix
        rules = rule_features(
            kind,
            reading.scores,
            reading.blocked,
            unsupported=unsupported,
            marked=bool(reading.marked),
            amount=reading.amount is not None,
            account=any(len(f.ids) == 1 for f in found),
            rival=bool(reading.competitors),
        )
        plain = reading.plain
        # (Every symbol `_SYMBOL` finds is outside ASCII; every emoji code holds a ":".)
        symbols = [] if plain.isascii() else _SYMBOL.findall(plain)
        out += ["e:" + symbol for symbol in symbols]
        if symbols or (":" in plain and _EMOJI.search(plain)):
            add("e:any")
        return list(dict.fromkeys(out)), rules

    def tag(self, text: str) -> TagResult:
        """Tag one message (Slack markup allowed)."""
        reading = self._read(text)
        kind, unsupported = self._rule_kind(reading)
        decision: Decision | None = None
        if self.kind_model is not None and kind not in reading.marked:  # a #hashtag or template is final
            decision = self.kind_model.decide(*self._model_features(reading, kind, unsupported), kind)
            if decision.overruled:
                if kind is None:
                    reading.settle_reasons()  # the account scan ran for the features
                kind = decision.kind
        if kind is None:
            return TagResult(text, None, None, None, None, (), None, _confidence(None, reading.scores, False))
        if decision is not None and decision.overruled:
            reading.evidence.append(Evidence("kind", kind, "model: " + ", ".join(decision.words)))
        _drop_reasons_that_restate_the_kind(kind, reading.reasons)
        evidence = reading.evidence
        account_name, account_id = self._account_of(reading)
        competitor = _choose_competitor(reading.competitors, reading.norms, reading.cue_positions)
        if competitor:
            evidence.append(Evidence("competitor", competitor[0], competitor[1]))
        reasons = tuple(sorted(reading.reasons, key=self.reason_codes.index))
        evidence += [Evidence("reason", code, reading.reasons[code]) for code in reasons]
        return TagResult(
            text=text,
            kind=kind,
            account=account_name,
            account_id=account_id,
            competitor=competitor[0] if competitor else None,
            reasons=reasons,
            amount=reading.amount,
            confidence=(
                round(min(0.99, decision.probability), 2)
                if decision is not None and decision.overruled
                else _confidence(kind, reading.scores, account_id is not None)
            ),
            evidence=tuple(evidence),
        )

    def _account_of(self, reading: _Reading) -> tuple[str | None, int | None]:
        """The account the outcome is about: a known one, else the name as written."""
        skip = reading.competitor_tokens()
        chosen = _choose_account(reading.found, reading.cue_positions)
        if chosen is None:
            chosen = self._typo_account(reading, skip, [p for p, _ in reading.cue_positions])
        if chosen is not None and len(chosen.ids) == 1:
            name = self.accounts[chosen.ids[0]].name
            reading.evidence.append(Evidence("account", name, chosen.words))
            return name, chosen.ids[0]
        written = _name_as_written(reading, reading.cue_positions, skip)
        if written:
            reading.evidence.append(Evidence("account", written, written))
        return written, None


class _Reading:
    """One message as the tagger reads it, and what it has found so far.

    A plain class with slots (made for every message): its tokens are kept as parallel lists
    (`texts`, `norms`, `stems`, `starts`, `ends`) rather than `Token`s."""

    __slots__ = (
        "_amount",
        "_clauses",
        "accounts_scanned",
        "blocked",
        "clause_of",
        "competitors",
        "cue_positions",
        "ends",
        "evidence",
        "found",
        "kind_cues",
        "marked",
        "norms",
        "plain",
        "reason_spans",
        "reasons",
        "scores",
        "spaceless",
        "starts",
        "stems",
        "texts",
    )  # fmt: skip

    def __init__(
        self,
        plain: str,
        texts: list[str],  # each token as written
        norms: list[str],
        stems: list[str],
        *,
        starts: list[int],  # each token's offsets in `plain`
        ends: list[int],
        clause_of: list[int],
    ) -> None:
        self.plain = plain
        self.texts = texts
        self.norms = norms
        self.stems = stems
        self.starts = starts
        self.ends = ends
        self.clause_of = clause_of
        self.scores: dict[str, float] = defaultdict(float)
        self.cue_positions: list[tuple[int, str]] = []
        self.evidence: list[Evidence] = []
        self.reasons: dict[str, str] = {}
        self.competitors: list[tuple[int, str, str]] = []
        self.found: list[_Found] = []  # accounts named in the message
        self.accounts_scanned = False
        self.marked: set[str] = set()  # kinds stated by a hashtag or a CRM template
        self.kind_cues: list[tuple[int, str, float]] = []
        self.blocked: list[str] = []  # kinds of cues discarded (negated, hypothetical ...)
        self.reason_spans: list[tuple[int, int, str]] = []
        # No word holds a space: an ASCII word never does; `fold` may make one of a rare letter.
        self.spaceless = plain.isascii() or " " not in "".join(norms)
        self._clauses: dict[int, _Clause] = {}  # clause number -> its facts, as they are needed
        self._amount: Amount | bool | None = False  # False: not looked for yet

    def settle_reasons(self) -> None:
        """Reasons found outside account names ("Continental Trust" is no relationship)."""
        names = {j for f in self.found for j in range(f.start, f.end)}
        for start, end, code in self.reason_spans:
            if not names.intersection(range(start, end)):
                self.reasons.setdefault(code, self.words(start, end))

    @classmethod
    def of(cls, text: str) -> _Reading:
        plain = slack_to_plain(text)
        texts, starts, ends = _split_tokens(plain)
        norms = list(map(_NORMS.__getitem__, texts))
        stems = list(map(_STEMS.__getitem__, norms))
        return cls(plain, texts, norms, stems, starts=starts, ends=ends, clause_of=_clauses(norms))

    def clause(self, i: int) -> _Clause:
        """The clause of token `i` (worked out when a cue needs it, once per clause: chatter often
        has none, and most clauses of a message hold no cue)."""
        number = self.clause_of[i]
        facts = self._clauses.get(number)
        if facts is None:
            facts = self._clauses[number] = _clause_facts(self.norms, self.clause_of, self.texts, number)
        return facts

    @property
    def amount(self) -> Amount | None:
        if self._amount is False:
            self._amount = _amount(self.plain)
        return self._amount  # type: ignore[return-value]

    def token_at(self, offset: int) -> int:
        """The first token that starts at or after `offset` (`starts` is increasing)."""
        return bisect_left(self.starts, offset)

    def words(self, start: int, end: int) -> str:
        return self.plain[self.starts[start] : self.ends[end - 1]]

    def blocked_at(self, start: int, *, negation: bool = True) -> bool:
        return _blocked(self.norms, self.clause(start), self.clause_of, start, negation=negation)

    def add_kind(self, kind: str, weight: float, position: int, words: str) -> None:
        self.scores[kind] += weight
        self.cue_positions.append((position, kind))
        self.evidence.append(Evidence("kind", kind, words))
        self.kind_cues.append((position, kind, weight))

    def retract_clause(self, clause: int) -> None:
        """Take back the cues of one clause (it turned out to be about someone else's deal)."""
        for position, kind, weight in self.kind_cues:
            if self.clause_of[position] == clause:
                self.scores[kind] -= weight
        self.kind_cues = [c for c in self.kind_cues if self.clause_of[c[0]] != clause]
        self.cue_positions = [c for c in self.cue_positions if self.clause_of[c[0]] != clause]
        self.scores = defaultdict(float, {k: v for k, v in self.scores.items() if v > 0})

    def competitor_tokens(self) -> set[int]:
        return {i for s, _, w in self.competitors for i in range(s, s + max(1, len(w.split())))}

    def read_cues(self, matches: list[tuple[int, int, list[object]]]) -> None:
        """Kind cues, reasons and competitors found by the phrase table."""
        # Cues inside neutral terms, inside or up to four words before a "not an outcome"
        # phrase, and hashtags (read as marks) do not count as words.
        norms = self.norms
        in_not_outcome = [False] * len(norms)
        for s, e, values in matches:
            if ("neutral",) in values:
                in_not_outcome[s:e] = [True] * (e - s)
            if ("not_outcome",) in values:
                clause_start = self.clause(s).start
                lo = max(s - 4, clause_start)
                if clause_start and norms[clause_start - 1] in ("but", "however"):
                    lo = self.clause(clause_start - 1).start  # "ghosted us but replied, back on track"
                in_not_outcome[lo:e] = [True] * (e - lo)
            if ("pending",) in values:
                clause = self.clause(s)
                lo, hi = clause.start, clause.end
                in_not_outcome[lo:hi] = [True] * (hi - lo)
        for m in _find(_PAST_YEAR, self.plain, "19", "20"):  # "in 2020 we won ...": history, not news
            clause = self.clause(min(self.token_at(m.start()), len(norms) - 1))
            in_not_outcome[clause.start : clause.end] = [True] * (clause.end - clause.start)
        if "#" in self.plain:
            plain = self.plain
            for i, start in enumerate(self.starts):
                if start and plain[start - 1] == "#":
                    in_not_outcome[i] = True
        # Matches come ordered by start, longest first: a cue ending before the furthest end of
        # a counted cue lies inside it ("won" in "closed won") and does not count twice.
        counted_end = -1
        counted: set[tuple[int, int]] = set()
        for start, end, values in matches:
            for value in values:
                if not isinstance(value, tuple):
                    continue
                if value[0] == "competitor":
                    self.competitors.append((start, str(value[1]), self.words(start, end)))
                elif value[0] == "reason":
                    if not _negated(norms, self.clause_of, start, 1):
                        self.reason_spans.append((start, end, str(value[1])))
                elif value[0] == "kind":
                    inside = end <= counted_end and (start, end) not in counted
                    if inside:
                        continue
                    if True in in_not_outcome[start:end] or self.blocked_at(start):
                        self.blocked.append(str(value[1]))
                        continue
                    counted.add((start, end))
                    counted_end = max(counted_end, end)
                    self.add_kind(str(value[1]), float(value[2]), start, self.words(start, end))

    def read_marks(self) -> None:
        """Hashtags, CRM templates and CW/CL: explicit marks, never blocked by phrasing, but
        ignored in test records, duplicates and data clean-up notes."""
        if _NOT_A_RECORD.search(self.plain.lower()):
            return
        if "#" in self.plain:  # (every hashtag holds one)
            tags = [
                (m, HASHTAGS.get(m.group(1).lower().replace("-", "").replace("_", "")))
                for m in _HASHTAG.finditer(self.plain)
            ]
            tagged = [(m, kind) for m, kind in tags if kind]
            if len({kind for _, kind in tagged}) < 3:  # "use #win / #loss / #churn" explains, not reports
                for m, kind in tagged:
                    self.add_kind(kind, 4, self.token_at(m.start()), m.group(0))
                    self.marked.add(kind)
        for m in _find(_TEMPLATE, self.plain, ":", "="):
            value = m.group(1).lower().replace("-", " ").replace("_", " ")
            churned = value in ("churned", "cancelled", "canceled")
            kind = "win" if "won" in value or value == "booked" else "renewal_loss" if churned else "loss"
            if value.endswith("failed"):
                if not set(self.norms) & _IMPL_SUBJECT:
                    continue
                kind = "implementation_failure"
            deal_type = _DEAL_TYPE.search(self.plain)
            if deal_type:  # the contract's rule: the deal type decides the kind
                existing = (
                    deal_type.group(1).lower() != "new business" and deal_type.group(1).lower() != "new"
                )
                renewal = deal_type.group(1).lower() == "renewal"
                if kind == "win" and renewal:
                    continue  # a renewal kept counts toward retention, in no win rate
                if existing:
                    kind = "customer_win" if kind == "win" else "renewal_loss"
            self.add_kind(kind, 5, self.token_at(m.start()), m.group(0))
            self.marked.add(kind)
        for m in _find(_CW_CL, self.plain, "CW", "CL", "C/"):
            kind = "win" if "W" in m.group(1) else "loss"
            self.add_kind(kind, 4, self.token_at(m.start()), m.group(0))

    def read_implementation_failures(self) -> None:
        """ "The rollout at X failed", "implementation ... abandoned": a subject near a failure word."""
        norms, clause_of = self.norms, self.clause_of
        if _IMPL_SUBJECT.isdisjoint(norms):
            return
        for i, word in enumerate(norms):
            if word not in _IMPL_SUBJECT or (word == "go" and norms[i + 1 : i + 2] != ["live"]):
                continue
            for j in range(max(0, i - 4), min(len(norms), i + 6)):
                failed = norms[j] in _IMPL_FAILED or (
                    norms[j] in ("write", "written") and norms[j + 1 : j + 2] == ["off"]
                )
                between = norms[min(i, j) + 1 : max(i, j)]
                same = clause_of[j] == clause_of[i] or all(
                    w == ":" or w not in _CLAUSE_BREAK for w in between
                )
                if failed and same:
                    a, b = sorted((i, j))
                    if self.blocked_at(a) or self.blocked_at(j):
                        continue
                    self.add_kind("implementation_failure", 3, a, self.words(a, b + 1))
                    return

    def read_patterns(self) -> None:
        """General patterns no phrase list covers.

        - a negated renewal: "won't be renewing", "decided against renewing", "isn't renewing";
        - a rival as the subject of a win: "Gong took Harrowgate", "Clari beat us at X".
        """
        norms, stems = self.norms, self.stems
        # (The loop finds nothing in a message without a renewing word: most have none.)
        if not _RENEWING.isdisjoint(stems) or ("up" in stems and "re" in norms):
            for i, word in enumerate(stems):
                renewing = word in _RENEWING or (word == "up" and i and norms[i - 1] == "re")
                negated = renewing and _negated(norms, self.clause_of, i, 4)
                if negated and not self.blocked_at(i, negation=False):
                    self.add_kind("renewal_loss", 3, i, self.words(max(0, i - 3), i + 1))
                    break
        if not self.competitors:
            return
        rival_positions = {position for position, _, _ in self.competitors}
        ours = {f.start for f in self.found if len(f.ids) == 1}
        for position in rival_positions:
            following = [w for w in norms[position + 1 : position + 4] if w not in _ADVERBS][:1]
            rival_acts = bool(following) and (
                following[0] in _RIVAL_WIN_VERBS or following[0] in _RIVAL_DEAL_VERBS
            )
            after = norms[position + 1 : position + 8]
            if rival_acts and following[0] == "lost" and "us" in after:
                self.add_kind("win", 3, position, self.words(position, position + 2))  # "Gong lost X to us"
                continue
            our_deal = bool(set(after[1:3]) & {"it", "this", "that", "them"})  # "Clari got it"
            if rival_acts and not our_deal and not ours & set(range(position + 1, position + 6)):
                self.retract_clause(self.clause_of[position])  # "Gong just won a fintech logo"
                continue
            before = norms[max(0, position - 5) : position]
            if any(w in _TRANSFER_VERBS for w in before) and "us" not in before[-2:]:
                # "went to Outreach", "handed the contract to Gong", "awarded the RFP to ChurnZero"
                if not self.blocked_at(position):
                    self.add_kind("loss", 3, position, self.words(max(0, position - 3), position + 1))
                continue
            following = stems[position + 1 : position + 3]
            chose_rival = position > 0 and norms[position - 1] in _CHOSE
            rival_won = bool(following) and following[0] in _RIVAL_WIN_VERBS
            if (chose_rival or rival_won) and not self.blocked_at(position):
                start = position - 1 if chose_rival else position
                self.add_kind("loss", 3, start, self.words(start, position + (1 if chose_rival else 2)))

    def read_notice(self) -> None:
        """ "Gave 90-day notice", "served notice": a customer leaving."""
        if "notice" not in self.norms:
            return
        for i, word in enumerate(self.norms):
            if word == "notice" and set(self.norms[max(0, i - 4) : i]) & {
                "gave",
                "given",
                "giving",
                "served",
                "handed",
            }:
                if not self.blocked_at(i):
                    self.add_kind("renewal_loss", 3, i, self.words(max(0, i - 3), i + 1))
                return

    def read_expansions(self) -> None:
        """ "Adding their Lyon and Milan sites", "rolled out to two more teams": a customer win."""
        norms, clause_of = self.norms, self.clause_of
        if EXPANSION_VERBS.isdisjoint(norms):
            return
        for i, word in enumerate(norms):
            if word not in EXPANSION_VERBS:
                continue
            for j in range(i + 1, min(len(norms), i + 6)):
                if norms[j] in EXPANSION_OBJECTS and clause_of[j] == clause_of[i]:
                    if not self.blocked_at(i):
                        self.add_kind("customer_win", 3, i, self.words(i, j + 1))
                    return

    def read_emoji(self) -> None:
        """Emoji never decide, but they back a kind that a cue found."""
        if not self.scores:
            return
        emoji = {m.group(1) for m in _EMOJI.finditer(self.plain)}
        kinds = []
        if emoji & POSITIVE_EMOJI:
            kinds += ["win", "customer_win"]
        if emoji & NEGATIVE_EMOJI:
            kinds += ["loss", "renewal_loss", "implementation_failure"]
        for kind in kinds:
            if self.scores.get(kind):
                self.scores[kind] += 1


# ---------------------------------------------------------------------------------------------
# Helpers of `tag`


def _find(pattern: re.Pattern[str], text: str, *needles: str) -> Iterator[re.Match[str]]:
    """`pattern.finditer(text)`, not run on a text that holds none of the `needles` (strings that
    every match of `pattern` contains): most messages have no hashtag, template or year."""
    for needle in needles:
        if needle in text:
            return pattern.finditer(text)
    return iter(())


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def _clauses(norms: Sequence[str]) -> list[int]:
    """Each token's clause number: a clause mark or "but", "however" ... starts the next clause."""
    return list(accumulate(map(_CLAUSE_STARTS.__contains__, norms), initial=0))[1:]


def _negated(norms: Sequence[str], clause_of: Sequence[int], start: int, window: int) -> bool:
    lo = max(0, start - window)
    if NEGATIONS.isdisjoint(norms[lo:start]):  # (most cues have no negation before them)
        return False
    clause = clause_of[start] if start < len(clause_of) else -1
    return any(clause_of[j] == clause and norms[j] in NEGATIONS for j in range(lo, start))


class _Clause(NamedTuple):
    start: int  # first word
    end: int  # one past the last word
    first_if: int  # index of the first "if", or end
    opens_question: bool
    ends_question: bool
    planned: bool  # mentions a meeting, a call, "next week" ... and reports nothing


def _clause_facts(norms: Sequence[str], clause_of: list[int], texts: Sequence[str], number: int) -> _Clause:
    """What `_blocked` needs to know about clause `number` (`clause_of`: each token's clause)."""
    n = len(norms)
    # A clause runs from its first token to the next clause's: clause numbers never go down.
    i, j = bisect_left(clause_of, number), bisect_right(clause_of, number)
    clause = norms[i:j]  # (the word lists below hold no clause marks)
    opening: list[int] = []  # the first two words that are not fillers
    for k in range(i, j):
        if norms[k] not in _NOT_OPENING:
            opening.append(k)
            if len(opening) == 2:
                break
    first = norms[opening[0]] if opening else ""
    if first in ("has", "have") and len(opening) > 1:
        nxt = opening[1]
        # "Has Contoso agreed ...?" asks; "has signed" reports.
        first = "is" if texts[nxt][:1].isupper() or norms[nxt] in ("they", "we", "you") else ""
    return _Clause(
        start=i,
        end=j,
        first_if=i + clause.index("if") if "if" in clause else j,
        opens_question=first in QUESTION_STARTS and first not in ("will", "have", "has"),
        ends_question=(j < n and norms[j] == "?") or norms[j - 1] == "?",
        planned=not PLAN_NOUNS.isdisjoint(clause)
        and not FUTURE_MARKERS.isdisjoint(clause)
        and _REPORTED.isdisjoint(clause),
    )


def _blocked(
    norms: Sequence[str],
    clause: _Clause,
    clause_of: Sequence[int],
    start: int,
    *,
    negation: bool = True,
) -> bool:
    """Is the cue starting at `start` (in `clause`) in a question, hypothetical, plan or (when
    asked) negation?"""
    if negation and _negated(norms, clause_of, start, 3):
        return True
    if clause.first_if < clause.end:  # a conditional anywhere in the clause: "we'd win X if ..."
        return True
    # (`isdisjoint` on the words before the cue: "any of them is a hypothetical", in C.)
    if not HYPOTHETICALS.isdisjoint(norms[max(clause.start, start - 5) : start]):
        return True
    return clause.opens_question or clause.ends_question or clause.planned


_RIVAL_WIN_VERBS = frozenset(
    "took take won win got beat stole grabbed snag snagged landed closed swept edged".split()
)
_TRANSFER_VERBS = frozenset(
    "went gone going moved moving switched switching migrated migrating handed awarded gave given "
    "mandated defected chose picked selected opted consolidating consolidated decide decided".split()
)
_RIVAL_DEAL_VERBS = frozenset("signed signs churned lost closed beat".split())
_ADVERBS = frozenset("just apparently also reportedly recently finally".split())
_CHOSE = frozenset({"picked", "chose", "selected", "preferred", "favoured", "favored", "opted"})
_FILLERS = frozenset({"so", "and", "ok", "okay", "hey", "um", "also", "btw", "quick", "q", "question"})
_REPORTED = frozenset({"signed", "won", "lost", "churned", "cancelled", "canceled"})
_NOT_OPENING = _CLAUSE_BREAK | _FILLERS  # what a clause's first word can't be


_IMPL_SUBJECT = frozenset(
    "rollout roll implementation onboarding deployment golive go launch pilot migration cutover "
    "integration".split()
)
_IMPL_FAILED = frozenset(
    "unwound unwinding pulled terminated aborted torpedoed reverted failed fail failing fails "
    "collapsed abandoned "
    "scrapped cancelled canceled dead died "
    "stalled halted derailed blew crashed tanked shelved frozen stopped killed writeoff".split()
)
_RENEWING = frozenset({"renew", "extend", "continu", "reup"})  # stems


def _decide_kind(scores: Mapping[str, float], marked: set[str]) -> str | None:
    if len(marked) == 1:  # the writer said it: #loss, "Outcome: Lost"
        return next(iter(marked))
    if not scores:
        return None
    ranked = sorted(((s, k) for k, s in scores.items() if k in KINDS), reverse=True)
    if not ranked:
        return None
    best_score, best = ranked[0]
    # The specific kinds win over the generic ones they overlap with.
    if scores.get("implementation_failure", 0) >= max(3, best_score):
        best, best_score = "implementation_failure", scores["implementation_failure"]
    elif best in ("loss", "win") and scores.get("renewal_loss", 0) >= 3 and best == "loss":
        best = "renewal_loss"
    elif best == "win" and scores.get("customer_win", 0) >= 3:
        best = "customer_win"
    if best_score < 2:
        return None
    return best


_SUBJECT_WORDS = frozenset(
    {
        "implementation",
        "onboarding",
        "on boarding",
        "rollout",
        "roll out",
        "deployment",
        "go live",
        "migration",
    }
)


def _apply_context(kind: str | None, reading: _Reading) -> str | None:
    """What the rest of the message says about the kind: renewals, win-backs."""
    words = set(reading.norms)
    text = " ".join(reading.norms)
    win_back = "win back" in text or "winback" in words
    renewal = bool(words & {"renewal", "renewed", "renew", "renewals"})
    if kind == "renewal_loss" and win_back and reading.scores.get("renewal_loss", 0) < 3:
        return "loss"  # a former customer we tried to win back is new business
    if kind == "loss" and renewal and not win_back and words & RENEWAL_CONTEXT:
        return "renewal_loss"
    if kind == "win" and renewal and not win_back and not reading.scores.get("customer_win"):
        return None  # a renewal kept: it counts toward retention, in no win rate
    return kind


def _drop_reasons_that_restate_the_kind(kind: str, reasons: dict[str, str]) -> None:
    """ "Rollout" in a failed rollout is the subject, not its reason; "went dark" decides only losses."""
    if (
        kind == "implementation_failure"
        and normalise_phrase(reasons.get("implementation", "")) in _SUBJECT_WORDS
    ):
        reasons.pop("implementation")
    if kind != "loss":
        reasons.pop("no_decision", None)


def _supported(reading: _Reading, kind: str) -> bool:
    """Is there a deal object near the cues of `kind`: a known account within twelve words (or
    opening the message), a rival within six, a name within three, or an amount anywhere?"""
    positions = [p for p, k in reading.cue_positions if k == kind]
    if reading.amount is not None:
        return True
    if any(
        len(f.ids) == 1 and (any(abs(f.start - p) <= 12 for p in positions) or f.start <= 1)
        for f in reading.found
    ):
        return True
    if any(abs(position - p) <= 6 for position, _, _ in reading.competitors for p in positions):
        return True
    common = common_words()
    texts, norms = reading.texts, reading.norms
    close = {j for p in positions for j in range(max(0, p - 3), min(len(norms), p + 4))}
    capitalised = [
        j
        for j in close
        if texts[j][:1].isupper()
        and norms[j] not in KIND_WORDS
        and norms[j] not in NOT_NAMES
        and len(norms[j]) > 1
    ]
    # A rare word ("Voss"), or two capitalised words together ("Sterling Cooper").
    return any(norms[j] not in common for j in capitalised) or len(capitalised) >= 2


def _choose_account(found: Sequence[_Found], cues: Sequence[tuple[int, str]]) -> _Found | None:
    if not found:
        return None
    anchor = min((p for p, _ in cues), default=0)

    def rank(f: _Found) -> tuple[int, int, int]:
        return (-f.strength, abs(f.start - anchor), f.start)

    unique = [f for f in found if len(f.ids) == 1]
    return min(unique or found, key=rank)


_RELATION = frozenset(
    "to with over against vs versus for from by beat chose picked displaced replaced".split()
)


def _choose_competitor(
    competitors: Sequence[tuple[int, str, str]], norms: Sequence[str], cues: Sequence[tuple[int, str]]
) -> tuple[str, str] | None:
    """The rival the outcome is about: named with a relation word ("lost to Gong", "beat Clari"),
    else the one nearest an outcome cue."""

    def score(position: int) -> float:
        related = 2.0 if {norms[j] for j in range(max(0, position - 3), position)} & _RELATION else 0.0
        distance = min((abs(position - p) for p, _ in cues), default=0)
        return related - distance / 100

    if not competitors:
        return None
    _, name, words = max(competitors, key=lambda c: score(c[0]))
    return name, words


def _name_as_written(reading: _Reading, cues: Sequence[tuple[int, str]], skip: set[int]) -> str | None:
    """The company an outcome is about when it is not a known account: capitalised words near the cue."""
    anchor = min((p for p, _ in cues), default=0)
    texts = reading.texts
    n = len(texts)
    capital = list(map(_MAY_NAME.__getitem__, texts))
    for i in skip:
        if i < n:
            capital[i] = False
    # The runs of words that may name a company, found with `index` (in C) rather than a loop.
    runs: list[tuple[int, int]] = []
    i = 0
    while True in capital[i:]:
        i = capital.index(True, i)
        j = capital.index(False, i) if False in capital[i:] else n
        runs.append((i, j))
        i = j
    if not runs:
        return None
    start, end = min(runs, key=lambda r: (abs(r[0] - anchor), r[0]))
    return " ".join(texts[start:end])[:200]


def _may_name(word: str) -> bool:
    """May this token (as written) be part of a company's name (`_name_as_written`)?"""
    norm = _NORMS[word]
    return (
        word[:1].isupper()
        and norm not in NOT_NAMES
        and norm not in KIND_WORDS
        and norm not in COMMON_ACRONYMS  # "€88k ARR", "the CFO": never a company
        and len(word) > 1
    )


_MAY_NAME = _Memo(_may_name)


KIND_WORDS = frozenset(w for phrase in KIND_CUES for w in phrase.split()) | frozenset(HASHTAGS)
_PLAIN_CAPITALS = KIND_WORDS | COMMON_ACRONYMS  # "CW", "ARR": words, not names, to the kind model


class _WordFeatures(NamedTuple):
    """What one token gives the kind model, wherever it stands (see `Tagger._model_features`)."""

    mask: str | None  # None: a word; "": a clause mark; else the mask ("NUM", "ACCOUNT" ...)
    unigrams: tuple[str, ...]  # "w:" (and "n:") features, "w:" + the mask, or "w:?"
    stem: str  # the word's stem (or the mask): the second half of a bigram that ends here
    prefix: str  # "b:" + stem + " ": the first half of a bigram that starts here


def _mask(name: str) -> _WordFeatures:
    return _WordFeatures(name, (sys.intern("w:" + name),), name, "b:" + name + " ")


_ACCOUNT_MASK, _RIVAL_MASK, _NAME_MASK, _NUM_MASK = map(_mask, ("ACCOUNT", "RIVAL", "NAME", "NUM"))
_RUN_START = "b:<s> "


def _word_features(text: str) -> _WordFeatures:
    """The kind model's reading of one token as written (`Token.text`) when it is not masked
    as an account or a rival."""
    norm = _NORMS[text]
    if norm in _CLAUSE_BREAK:
        return _WordFeatures("", ("w:?",) if norm == "?" else (), "", _RUN_START)
    if not norm.isalpha() and _DIGIT.search(norm):
        return _NUM_MASK
    if text[0].isupper() and norm not in common_words() and norm not in _PLAIN_CAPITALS:
        return _NAME_MASK
    stemmed = stem(norm)
    # Interned, as the kind model's feature names are: a look-up then matches by identity.
    written = sys.intern("w:" + stemmed)
    unigrams = (written, sys.intern("n:" + norm)) if norm != stemmed else (written,)
    return _WordFeatures(None, unigrams, stemmed, "b:" + stemmed + " ")


_WORD_FEATURES = _Memo(_word_features)  # `_word_features`, read in `map` for every word


_MULT = {"k": 1e3, "thousand": 1e3, "m": 1e6, "mm": 1e6, "mil": 1e6, "million": 1e6, "b": 1e9, "bn": 1e9}
_CURRENCY = {"$": "USD", "€": "EUR", "£": "GBP", "usd": "USD", "eur": "EUR", "gbp": "GBP",
             "dollars": "USD", "euros": "EUR", "pounds": "GBP"}  # fmt: skip
_UNIT = {"arr": "ARR", "acv": "ACV", "tcv": "TCV", "total contract value": "TCV",
         "total contract": "TCV", "contract value": "TCV"}  # fmt: skip


def _amount(text: str) -> Amount | None:
    digit = _DIGIT.search(text)
    if digit is None:
        return None
    # A figure starts at most four characters before its first digit ("usd 5"): the scan starts
    # there (lookbehinds and \b still see the text before it), which finds the same matches.
    for m in _AMOUNT.finditer(text, max(0, digit.start() - 4)):
        cur_, cur2_, mult_, unit_ = m.group("cur", "cur2", "mult", "unit")
        if cur_ is None and cur2_ is None and unit_ is None:
            continue  # a bare figure ("3 years"), which the test below skips too
        cur = (cur_ or cur2_ or "").strip().lower()
        mult = (mult_ or "").lower()
        unit = (unit_ or "").lower()
        if not cur and not (unit and unit != "mrr") and not (mult and unit):
            continue
        number = _figure(m.group("num"))
        if number is None:
            continue
        return Amount(number * _MULT.get(mult, 1), _CURRENCY.get(cur, "USD"), _UNIT.get(unit))
    return None


_DOT_THOUSANDS = re.compile(r"\d{1,3}(?:\.\d{3})+")


def _figure(num: str) -> float | None:
    """The value of a written figure: "1,200,000", "1.234.567" (dots grouping thousands, as in
    much of Europe), "12.5"; None for what no one writes as one number ("1.234.567.89")."""
    if "." in num and _DOT_THOUSANDS.fullmatch(num):
        return float(num.replace(".", ""))
    try:
        return float(num.replace(",", ""))
    except ValueError:
        return None


def _confidence(kind: str | None, scores: Mapping[str, float], has_account: bool) -> float:
    """0-1: how sure the tagger is of the kind (or that there is none), helped by a known account."""
    ranked = sorted((s for k, s in scores.items() if k in KINDS), reverse=True)
    best = ranked[0] if ranked else 0.0
    if kind is None:
        return round(max(0.5, 1 - best / 6), 2)
    margin = best - (ranked[1] if len(ranked) > 1 else 0.0)
    value = 0.45 + 0.08 * min(best, 5) + (0.1 if has_account else 0) + (0.05 if margin >= 2 else 0)
    return round(min(0.99, value), 2)

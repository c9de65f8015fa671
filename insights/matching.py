"""Resolve the name a person types to one account, or say honestly that it cannot.

Order: exact name after normalisation (case, punctuation, legal suffixes), then domain, then
aliases, then a unique whole-word prefix ("Woodgrove" for Woodgrove Credit Union), then fuzzy
matching. Fuzzy matching answers only when one candidate is clearly right; otherwise it returns
ranked suggestions, so the product never silently answers for the wrong company.

`AccountIndex` holds any set of accounts: the whole workspace (a warm index in the bot) or just
the candidates a database lookup found (the CLI).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from rapidfuzz import fuzz, process

from insights.normalize import (
    compact_key,
    domain_stem,
    fold,
    looks_like_domain,
    name_key,
    normalize_domain,
)

MatchedFrom = Literal["name", "domain", "alias", "prefix", "fuzzy"]

# A fuzzy candidate answers on its own only above this similarity (0-100, rapidfuzz ratio of the
# normalised names) and this far ahead of the runner-up; below, the person picks from suggestions.
FUZZY_ACCEPT = 90.0
FUZZY_MARGIN = 6.0
FUZZY_SUGGEST = 72.0
# Suggestions this far behind the best one are noise, not alternatives.
SUGGEST_SPREAD = 20.0
MAX_SUGGESTIONS = 5


@dataclass(frozen=True)
class AccountRef:
    """What name resolution needs to know about an account."""

    id: int
    name: str
    domain: str | None = None
    country: str | None = None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Suggestion:
    id: int
    name: str
    score: float
    domain: str | None = None
    country: str | None = None


@dataclass(frozen=True)
class Resolution:
    """The outcome of resolving a query.

    status: "matched" (account is set), "ambiguous" (several accounts fit equally well) or
    "unknown" (nothing fits well enough); suggestions are ranked best first.
    """

    query: str
    status: Literal["matched", "ambiguous", "unknown"]
    account: AccountRef | None = None
    matched_from: MatchedFrom | None = None
    suggestions: tuple[Suggestion, ...] = ()


@dataclass(frozen=True)
class QueryKeys:
    """The lookup keys of one query, also used by the database to find candidates."""

    text: str
    name_key: str
    compact_key: str
    domain: str | None
    first_word: str

    @classmethod
    def of(cls, query: str) -> QueryKeys:
        text = " ".join(query.split())
        key = name_key(text)
        domain = normalize_domain(text) if looks_like_domain(text) else None
        return cls(
            text=text,
            name_key=key,
            compact_key=compact_key(text),
            domain=domain,
            first_word=key.split(" ", 1)[0] if key else "",
        )


def account_keys(name: str, domain: str | None) -> dict[str, str | None]:
    """The stored lookup keys of an account (the columns the database indexes)."""
    key = name_key(name)
    return {
        "name_key": key,
        "compact_key": compact_key(name),
        "first_word": key.split(" ", 1)[0] if key else "",
        "domain_stem": domain_stem(domain) if domain else None,
    }


@dataclass
class AccountIndex:
    """In-memory lookup tables over a set of accounts."""

    accounts: dict[int, AccountRef] = field(default_factory=dict)
    _by_key: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    _by_compact: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    _by_domain: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    _by_stem: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    _by_alias: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    _by_first: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    _keys: dict[int, str] = field(default_factory=dict)

    @classmethod
    def build(cls, accounts: Iterable[AccountRef]) -> AccountIndex:
        index = cls()
        for account in accounts:
            index.add(account)
        return index

    def __len__(self) -> int:
        return len(self.accounts)

    def add(self, account: AccountRef) -> None:
        self.accounts[account.id] = account
        keys = account_keys(account.name, account.domain)
        key = keys["name_key"] or ""
        self._keys[account.id] = key
        self._by_key[key].append(account.id)
        self._by_compact[keys["compact_key"] or ""].append(account.id)
        self._by_compact[key.replace(" ", "")].append(account.id)
        self._by_first[keys["first_word"] or ""].append(account.id)
        if account.domain:
            self._by_domain[account.domain].append(account.id)
            self._by_stem[keys["domain_stem"] or ""].append(account.id)
        for alias in account.aliases:
            self._by_alias[name_key(alias)].append(account.id)

    def _refs(self, ids: Iterable[int], within: Collection[int] | None = None) -> list[AccountRef]:
        return [self.accounts[i] for i in dict.fromkeys(ids) if within is None or i in within]

    def _settle(
        self, query: QueryKeys, ids: list[int], how: MatchedFrom, within: Collection[int] | None = None
    ) -> Resolution | None:
        refs = self._refs(ids, within)
        if not refs:
            return None
        if len(refs) > 1:
            # Several accounts share the key ("Acme Inc" and "Acme Ltd"): the one written exactly
            # as typed wins; otherwise the person chooses.
            exact = [r for r in refs if fold(r.name) == fold(query.text)]
            if len(exact) != 1:
                return Resolution(
                    query=query.text,
                    status="ambiguous",
                    matched_from=how,
                    suggestions=tuple(_suggest(r, 100.0) for r in refs[: MAX_SUGGESTIONS * 2]),
                )
            refs = exact
        return Resolution(query=query.text, status="matched", account=refs[0], matched_from=how)

    def resolve(self, query: str, *, fuzzy: bool = True, within: Collection[int] | None = None) -> Resolution:
        """Resolve a query against this index; `fuzzy=False` stops after the exact steps.

        `within` limits the answer to those account ids: the same as resolving against an index
        built from just them (a workspace-wide index standing in for many candidate lookups).
        """
        keys = QueryKeys.of(query)
        steps: list[tuple[list[int], MatchedFrom]] = []
        if keys.domain:
            steps.append((self._by_domain.get(keys.domain, []), "domain"))
        steps += [
            (self._by_key.get(keys.name_key, []) if keys.name_key else [], "name"),
            (self._by_compact.get(keys.compact_key, []) if keys.compact_key else [], "name"),
            (self._by_alias.get(keys.name_key, []) if keys.name_key else [], "alias"),
        ]
        if not keys.domain and " " not in keys.name_key and keys.compact_key:
            # "acmecorp" names the account whose site is acmecorp.com.
            steps.append((self._by_stem.get(keys.compact_key, []), "domain"))
        if keys.first_word and len(keys.name_key) >= 3:
            prefix = keys.name_key + " "
            ids = [i for i in self._by_first.get(keys.first_word, []) if self._keys[i].startswith(prefix)]
            steps.append((ids, "prefix"))
        for ids, how in steps:
            settled = self._settle(keys, ids, how, within)
            if settled is not None:
                return settled
        names = self._keys if within is None else {i: k for i, k in self._keys.items() if i in within}
        if not fuzzy or not keys.name_key or not names:
            return Resolution(query=keys.text, status="unknown")
        ranked = rank_fuzzy(keys.name_key, names)
        suggestions = tuple(_suggest(self.accounts[i], score) for i, score in ranked)
        best = accept_fuzzy(keys.name_key, ranked, names)
        if best is not None:
            return Resolution(
                query=keys.text,
                status="matched",
                account=self.accounts[best],
                matched_from="fuzzy",
                suggestions=suggestions,
            )
        return Resolution(query=keys.text, status="unknown", suggestions=suggestions)


def accept_fuzzy(query_key: str, ranked: Sequence[tuple[int, float]], keys: Mapping[int, str]) -> int | None:
    """The id of the fuzzy candidate that is clearly right, or None when a person must choose.

    Clearly right: a long enough query, a near-identical name (typos, not partial names) and a
    clear lead over the runner-up.
    """
    if not ranked or len(query_key) < 5:
        return None
    best_id, best = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
    if fuzz.ratio(query_key, keys[best_id]) >= FUZZY_ACCEPT and best - runner_up >= FUZZY_MARGIN:
        return best_id
    return None


def rank_fuzzy(
    query_key: str, keys: Mapping[int, str], limit: int = MAX_SUGGESTIONS
) -> list[tuple[int, float]]:
    """Rank account ids by similarity of their name key to the query key, best first.

    WRatio tolerates typos, word order and partial names; the cut-off keeps noise out.
    """
    results = process.extract(
        query_key,
        keys,
        scorer=fuzz.WRatio,
        processor=None,  # keys and query are name_key()s already: folded, punctuation-free
        limit=limit,
        score_cutoff=FUZZY_SUGGEST,
    )
    ranked = [(int(account_id), float(score)) for _key, score, account_id in results]
    ranked.sort(key=lambda item: (-item[1], keys[item[0]]))
    return [item for item in ranked if item[1] >= ranked[0][1] - SUGGEST_SPREAD]


def _suggest(ref: AccountRef, score: float) -> Suggestion:
    return Suggestion(id=ref.id, name=ref.name, score=round(score, 1), domain=ref.domain, country=ref.country)

"""Resolve the name a person types to one account, or say honestly that it cannot.

Order: exact name after normalisation (case, punctuation, legal suffixes), then domain, then
aliases, then a unique whole-word prefix ("Woodgrove" for Woodgrove Credit Union), then fuzzy
matching. Fuzzy matching answers only when one candidate is clearly right; otherwise it returns
ranked suggestions, so the product never silently answers for the wrong company.

`AccountIndex` holds any set of accounts: the whole workspace (a warm index in the bot) or just
the candidates a database lookup found (the CLI). `NameKeys` holds a workspace's name keys for
long-lived fuzzy matching: it ranks only the keys that can reach FUZZY_SUGGEST, with the same
answers as scoring every key.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

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
# NameKeys scans key sets smaller than this whole (a full scan of 2,000 keys takes about 1-2 ms).
FUZZY_INDEX_MIN_KEYS = 2_000

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


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

    WRatio tolerates typos, word order and partial names; the cut-off keeps noise out. A
    `NameKeys` scores only the keys that can reach the cut-off, with the same result.
    """
    choices = keys.candidates(query_key) if isinstance(keys, NameKeys) else keys
    results = process.extract(
        query_key,
        choices,
        scorer=fuzz.WRatio,
        processor=None,  # keys and query are name_key()s already: folded, punctuation-free
        limit=limit,
        score_cutoff=FUZZY_SUGGEST,
    )
    ranked = [(int(account_id), float(score)) for _key, score, account_id in results]
    ranked.sort(key=lambda item: (-item[1], keys[item[0]]))
    return [item for item in ranked if item[1] >= ranked[0][1] - SUGGEST_SPREAD]


class NameKeys(Mapping[int, str]):
    """Name keys by account id (read-only), indexed once so that fuzzy ranking over a large,
    long-lived set (the bot's whole workspace) scores a shortlist instead of every key.

    `rank_fuzzy` gives exactly the answer of a full scan: the shortlist holds every key whose
    WRatio with the query can reach FUZZY_SUGGEST (see `_FuzzyIndex`), in the mapping's order, so
    even ties among equal scores fall as they would. Sets under FUZZY_INDEX_MIN_KEYS are not
    indexed (scanning them is as quick).
    """

    __slots__ = ("_index", "_keys")

    def __init__(self, keys: Mapping[int, str] | Iterable[tuple[int, str]] = ()) -> None:
        self._keys: dict[int, str] = dict(keys)
        self._index = _FuzzyIndex(self._keys) if len(self._keys) >= FUZZY_INDEX_MIN_KEYS else None

    def __getitem__(self, account_id: int) -> str:
        return self._keys[account_id]

    def __iter__(self) -> Iterator[int]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, account_id: object) -> bool:
        return account_id in self._keys

    def __repr__(self) -> str:
        return f"NameKeys({len(self._keys)} keys, indexed={self._index is not None})"

    def candidates(self, query_key: str) -> Mapping[int, str]:
        """The keys that can score FUZZY_SUGGEST or more against the query, in this mapping's
        order: a shortlist, or every key when no index is kept or the shortlist would be long."""
        if self._index is None:
            return self._keys
        positions = self._index.shortlist(query_key)
        if positions is None:
            return self._keys
        ids, texts = self._index.ids, self._index.texts
        return {ids[p]: texts[p] for p in positions}


class _FuzzyIndex:
    """Which keys can reach FUZZY_SUGGEST under rapidfuzz's WRatio, found without scoring them.

    Every score WRatio combines is the Indel ratio 2*LCS/(len(a)+len(b)) of the two names or of
    strings made from their words (sorted, de-duplicated, set differences), scaled by 0.95, 0.9
    or less; partial ratios compare the shorter with windows of the longer no longer than it.
    With both names single-spaced and free of repeated words, and no word in common, every such
    string holds the same characters as the name it comes from, and the longest common
    subsequence of two strings is at most the overlap m of their character counts. Hence

        WRatio <= 200 m / (len(q) + len(k))                       when the lengths differ < 1.5x
        WRatio <= max(200 m / (len(q) + len(k)), 180 m / (min(len) + m))    otherwise

    (a window of length w scores at most 2 min(w, m) / (min(len) + w)). So the shortlist is:
    keys whose bound reaches the cut-off, keys sharing a whole word with the query (the token
    scores can reach 100 for those), and keys the bound does not cover (repeated words, odd
    spacing, over 255 characters), which are always scored. A query the bound does not cover,
    or whose shortlist is long, is scored against every key.

    Character counts live in one uint8 row per character (the 63 commonest characters of the
    keys; the rest share a 64th row, which over-counts the overlap and so stays a bound).
    """

    MAX_SHARE = 0.25  # a longer shortlist than this share of the keys: scan them all
    MAX_CHARS = 63
    CUTOFF = FUZZY_SUGGEST - 1e-3  # rapidfuzz's float rounding must not drop a borderline key

    def __init__(self, keys: Mapping[int, str]) -> None:
        import numpy as np

        self.ids: list[int] = list(keys)
        self.texts: list[str] = list(keys.values())
        n = len(self.texts)
        self.lengths = np.fromiter(map(len, self.texts), dtype=np.int32, count=n)

        commonest = [ch for ch, _ in Counter("".join(self.texts)).most_common()]
        self.row_of: dict[str, int] = {ch: min(i, self.MAX_CHARS) for i, ch in enumerate(commonest)}
        rows = min(len(commonest), self.MAX_CHARS + 1)
        self.counts = np.zeros((rows, n), dtype=np.uint8)
        irregular: list[int] = []
        token_hashes: list[int] = []
        token_owners: list[int] = []
        for position, text in enumerate(self.texts):
            words = text.split()
            if len(text) > 255 or " ".join(words) != text or len(set(words)) != len(words):
                irregular.append(position)
                continue
            for word in words:
                token_hashes.append(hash(word))
                token_owners.append(position)
        for row, count in self._char_rows("".join(self.texts), n):
            self.counts[row] = np.minimum(count, 255)
        self.irregular = np.array(irregular, dtype=np.int32)
        hashes = np.array(token_hashes, dtype=np.int64)
        order = np.argsort(hashes, kind="stable")
        self.token_hashes = hashes[order]
        self.token_owners = np.array(token_owners, dtype=np.int32)[order]

    def _char_rows(self, joined: str, n: int) -> Iterator[tuple[int, npt.NDArray[np.int64]]]:
        """(row, count of that row's characters in each key) for every character row."""
        import numpy as np

        codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
        lookup = np.zeros(int(codes.max(initial=0)) + 1, dtype=np.int16)
        for ch, row in self.row_of.items():
            lookup[ord(ch)] = row
        char_rows = lookup[codes]
        owners = np.repeat(np.arange(n, dtype=np.int32), self.lengths)
        order = np.argsort(char_rows, kind="stable")
        bounds = np.searchsorted(char_rows[order], np.arange(self.counts.shape[0] + 1))
        for row in range(self.counts.shape[0]):
            yield row, np.bincount(owners[order[bounds[row] : bounds[row + 1]]], minlength=n)

    def shortlist(self, query: str) -> list[int] | None:
        """Positions (ascending) of the keys that can reach the cut-off; None: scan every key."""
        import numpy as np

        words = query.split()
        if not query or len(query) > 255 or " ".join(words) != query or len(set(words)) != len(words):
            return None
        wanted: Counter[int] = Counter()
        for ch, count in Counter(query).items():
            row = self.row_of.get(ch)
            if row is not None:  # a character no key holds adds nothing to any overlap
                wanted[row] += count
        overlap = np.zeros(len(self.texts), dtype=np.int16)
        for row, count in wanted.items():
            overlap += np.minimum(self.counts[row], min(count, 255))
        length = len(query)
        shortest = np.minimum(self.lengths, length)
        longest = np.maximum(self.lengths, length)
        reach = 200.0 * overlap >= self.CUTOFF * (self.lengths + length)
        reach |= (2 * longest >= 3 * shortest) & (180.0 * overlap >= self.CUTOFF * (shortest + overlap))
        parts: list[Any] = [np.flatnonzero(reach), self.irregular]
        for word in words:
            h = hash(word)  # a colliding hash only adds keys to score
            lo = np.searchsorted(self.token_hashes, h, side="left")
            hi = np.searchsorted(self.token_hashes, h, side="right")
            parts.append(self.token_owners[lo:hi])
        positions = np.unique(np.concatenate(parts))
        if len(positions) > self.MAX_SHARE * len(self.texts):
            return None
        return [int(p) for p in positions.tolist()]


def _suggest(ref: AccountRef, score: float) -> Suggestion:
    return Suggestion(id=ref.id, name=ref.name, score=round(score, 1), domain=ref.domain, country=ref.country)

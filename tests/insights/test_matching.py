"""Unit tests for insights.matching: resolving what a person types to one account, or not."""

from __future__ import annotations

import random
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz import fuzz, process

from insights.matching import (
    FUZZY_INDEX_MIN_KEYS,
    FUZZY_SUGGEST,
    AccountIndex,
    AccountRef,
    NameKeys,
    QueryKeys,
    Resolution,
    accept_fuzzy,
    account_keys,
    rank_fuzzy,
)
from insights.normalize import fold, name_key

ACME = AccountRef(1, "Acme Corp", "acmecorp.com", "United States")
CONTOSO = AccountRef(2, "Contoso Ltd", "contoso.com", "United Kingdom")
CONTOSO_PHARMA = AccountRef(3, "Contoso Pharmaceuticals", "contosopharma.com", "United States")
WOODGROVE = AccountRef(4, "Woodgrove Credit Union", "woodgrovecu.org", "United States")
NORTHWIND = AccountRef(5, "Northwind Traders", "northwindtraders.com", "United States")
FABRIKAM = AccountRef(6, "Fabrikam Systems", "fabrikam.com", "United States", aliases=("FBK",))
LITWARE = AccountRef(7, "Litware & Sons Publishing", "litware.co.uk", "United Kingdom")
ACCOUNTS = [ACME, CONTOSO, CONTOSO_PHARMA, WOODGROVE, NORTHWIND, FABRIKAM, LITWARE]

ACME_INC = AccountRef(11, "Acme Inc", "acme.com", "United States")
ACME_LTD = AccountRef(12, "Acme Ltd", "acme.co.uk", "United Kingdom")


@pytest.fixture(scope="module")
def index() -> AccountIndex:
    return AccountIndex.build(ACCOUNTS)


@pytest.fixture(scope="module")
def acme_twins() -> AccountIndex:
    return AccountIndex.build([ACME_INC, ACME_LTD])


def assert_matched(resolution: Resolution, account: AccountRef, how: str) -> None:
    assert resolution.status == "matched", resolution
    assert resolution.account == account
    assert resolution.matched_from == how


# --- exact steps -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "how"),
    [
        ("Acme Corp", "name"),
        ("acme corp", "name"),
        ("ACME", "name"),
        ("Acme", "name"),
        ("ACME Corp.", "name"),
        ("Acme Corporation", "name"),
        ("  acme   corp  ", "name"),
        ("The Acme Corp", "name"),
        ("AcmeCorp", "name"),
        ("acmecorp", "name"),
        ("acmecorp.com", "domain"),
        ("ACMECORP.COM", "domain"),
        ("www.acmecorp.com", "domain"),
        ("https://www.acmecorp.com/about", "domain"),
    ],
)
def test_spellings_of_acme_resolve_to_acme(index: AccountIndex, query: str, how: str) -> None:
    assert_matched(index.resolve(query), ACME, how)


@pytest.mark.parametrize("account", ACCOUNTS, ids=lambda a: a.name)
def test_every_account_resolves_by_its_own_name_and_domain(index: AccountIndex, account: AccountRef) -> None:
    assert_matched(index.resolve(account.name), account, "name")
    assert account.domain is not None
    assert_matched(index.resolve(account.domain), account, "domain")
    assert_matched(index.resolve(f"https://www.{account.domain}/contact"), account, "domain")


def test_name_resolution_reports_the_query_with_spaces_collapsed(index: AccountIndex) -> None:
    resolution = index.resolve("  Acme \t  Corp ")
    assert resolution.query == "Acme Corp"
    assert resolution.suggestions == ()


def test_domain_stem_names_the_account(index: AccountIndex) -> None:
    # "litware" is neither a name key nor a prefix of one, but it is the stem of litware.co.uk.
    assert_matched(index.resolve("litware"), LITWARE, "domain")


def test_ampersand_and_and_are_the_same(index: AccountIndex) -> None:
    assert_matched(index.resolve("Litware and Sons Publishing, Inc."), LITWARE, "name")


@pytest.mark.parametrize("query", ["FBK", "fbk", "Fbk."])
def test_alias(index: AccountIndex, query: str) -> None:
    assert_matched(index.resolve(query), FABRIKAM, "alias")


@pytest.mark.parametrize(
    ("query", "account"),
    [
        ("Woodgrove", WOODGROVE),
        ("woodgrove credit", WOODGROVE),
        ("Northwind", NORTHWIND),
        ("Litware & Sons", LITWARE),
    ],
)
def test_unique_whole_word_prefix(index: AccountIndex, query: str, account: AccountRef) -> None:
    assert_matched(index.resolve(query), account, "prefix")


def test_prefix_must_end_on_a_word_boundary(index: AccountIndex) -> None:
    # "Woodgr" is not a whole word of "Woodgrove Credit Union".
    assert index.resolve("Woodgr", fuzzy=False).status == "unknown"


def test_exact_name_wins_over_a_longer_name_sharing_its_first_word(index: AccountIndex) -> None:
    # "Contoso" is Contoso Ltd's name key; Contoso Pharmaceuticals only shares the first word.
    assert_matched(index.resolve("Contoso"), CONTOSO, "name")
    assert_matched(index.resolve("Contoso Pharmaceuticals Inc"), CONTOSO_PHARMA, "name")


def test_ambiguous_prefix() -> None:
    traders = AccountRef(21, "Northwind Traders", "northwindtraders.com")
    health = AccountRef(22, "Northwind Health", "northwindhealth.com")
    resolution = AccountIndex.build([traders, health]).resolve("Northwind")
    assert resolution.status == "ambiguous"
    assert resolution.matched_from == "prefix"
    assert resolution.account is None
    assert {s.id for s in resolution.suggestions} == {21, 22}


# --- ambiguity ---------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["Acme", "ACME", "acme", "Acme Corp", "Acme Group"])
def test_shared_name_key_is_ambiguous_with_suggestions(acme_twins: AccountIndex, query: str) -> None:
    resolution = acme_twins.resolve(query)
    assert resolution.status == "ambiguous"
    assert resolution.account is None
    assert [s.name for s in resolution.suggestions] == ["Acme Inc", "Acme Ltd"]
    assert [(s.domain, s.country) for s in resolution.suggestions] == [
        ("acme.com", "United States"),
        ("acme.co.uk", "United Kingdom"),
    ]
    assert all(s.score == 100.0 for s in resolution.suggestions)


@pytest.mark.parametrize(
    ("query", "account", "how"),
    [
        ("Acme Inc", ACME_INC, "name"),
        ("acme inc", ACME_INC, "name"),
        ("ACME LTD", ACME_LTD, "name"),
        ("acme.com", ACME_INC, "domain"),
        ("https://acme.co.uk/", ACME_LTD, "domain"),
    ],
)
def test_full_name_or_domain_settles_the_ambiguity(
    acme_twins: AccountIndex, query: str, account: AccountRef, how: str
) -> None:
    assert_matched(acme_twins.resolve(query), account, how)


# --- fuzzy -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "account"),
    [
        ("Northwnd Traders", NORTHWIND),
        ("Nortwind Traders", NORTHWIND),
        ("Fabrikm Systems", FABRIKAM),
        ("Contso Ltd", CONTOSO),
        ("Contoso Pharmaceutical", CONTOSO_PHARMA),
    ],
)
def test_typo_near_one_name_resolves_by_fuzzy(index: AccountIndex, query: str, account: AccountRef) -> None:
    resolution = index.resolve(query)
    assert_matched(resolution, account, "fuzzy")
    assert resolution.suggestions[0].id == account.id


def test_fuzzy_false_stops_before_fuzzy(index: AccountIndex) -> None:
    resolution = index.resolve("Northwnd Traders", fuzzy=False)
    assert resolution.status == "unknown"
    assert resolution.account is None
    assert resolution.matched_from is None
    assert resolution.suggestions == ()


def test_fuzzy_false_still_runs_the_exact_steps(index: AccountIndex) -> None:
    assert_matched(index.resolve("acmecorp.com", fuzzy=False), ACME, "domain")
    assert_matched(index.resolve("Woodgrove", fuzzy=False), WOODGROVE, "prefix")


@pytest.mark.parametrize(
    ("query", "suggested"),
    [
        ("Acme Crop", ["Acme Corp"]),  # close, but not close enough to answer alone
        ("Credit Union", ["Woodgrove Credit Union"]),  # a partial name is suggested, not matched
        ("Contoso Pharma", ["Contoso Ltd", "Contoso Pharmaceuticals"]),  # two equally good
    ],
)
def test_unclear_fuzzy_candidates_are_suggestions_only(
    index: AccountIndex, query: str, suggested: list[str]
) -> None:
    resolution = index.resolve(query)
    assert resolution.status == "unknown"
    assert resolution.account is None
    assert sorted(s.name for s in resolution.suggestions) == suggested


def test_suggestions_are_ranked_best_first(index: AccountIndex) -> None:
    scores = [s.score for s in index.resolve("Contso Ltd").suggestions]
    assert scores == sorted(scores, reverse=True)
    assert len(scores) >= 2


@pytest.mark.parametrize("query", ["Tailspin Toys", "Globex", "xyz.com", "Zava Pharmacy"])
def test_unrelated_name_is_unknown(index: AccountIndex, query: str) -> None:
    resolution = index.resolve(query)
    assert resolution.status == "unknown"
    assert resolution.account is None
    assert resolution.suggestions == ()


def test_another_sites_url_is_never_matched(index: AccountIndex) -> None:
    # The path mentions acme, and Acme may be suggested, but the site is not Acme's.
    resolution = index.resolve("https://example.org/acme")
    assert resolution.status == "unknown"
    assert resolution.account is None


@pytest.mark.parametrize("query", ["", "   ", "\x00", "\t\n", "!!!", "Inc", "The"])
def test_empty_or_meaningless_query_is_unknown(index: AccountIndex, query: str) -> None:
    resolution = index.resolve(query)
    assert resolution.status == "unknown"
    assert resolution.account is None


def test_empty_index_knows_nothing() -> None:
    empty = AccountIndex.build([])
    assert len(empty) == 0
    assert empty.resolve("Acme Corp").status == "unknown"


def test_index_length_and_keys() -> None:
    assert len(AccountIndex.build(ACCOUNTS)) == len(ACCOUNTS)
    assert account_keys("Acme Corp", "acmecorp.com") == {
        "name_key": "acme",
        "compact_key": "acmecorp",
        "first_word": "acme",
        "domain_stem": "acmecorp",
    }
    assert account_keys("Woodgrove Credit Union", None)["domain_stem"] is None


def test_query_keys() -> None:
    keys = QueryKeys.of("  https://www.AcmeCorp.com/about ")
    assert keys.domain == "acmecorp.com"
    by_name = QueryKeys.of("Woodgrove  Credit Union Ltd")
    assert (by_name.text, by_name.name_key, by_name.first_word, by_name.domain) == (
        "Woodgrove Credit Union Ltd",
        "woodgrove credit union",
        "woodgrove",
        None,
    )


# --- properties --------------------------------------------------------------------------------


def check_consistent(index: AccountIndex, resolution: Resolution) -> None:
    assert resolution.status in ("matched", "ambiguous", "unknown")
    if resolution.status == "matched":
        assert resolution.account is not None
        assert index.accounts[resolution.account.id] == resolution.account
        assert resolution.matched_from is not None
    else:
        assert resolution.account is None
    if resolution.status == "ambiguous":
        assert len(resolution.suggestions) >= 2
    assert all(s.id in index.accounts for s in resolution.suggestions)


long_texts = st.builds(lambda chunk: (chunk * 10_000)[:10_000], st.text(min_size=1, max_size=12))
control_heavy = st.text(
    alphabet=st.one_of(st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Zp"]), st.characters()),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(query=st.one_of(st.text(max_size=200), control_heavy, long_texts), fuzzy=st.booleans())
def test_resolve_never_raises_and_answers_consistently(index: AccountIndex, query: str, fuzzy: bool) -> None:
    check_consistent(index, index.resolve(query, fuzzy=fuzzy))


@pytest.mark.parametrize(
    "query",
    [
        "x" * 10_000,
        "Acme Corp " * 1_000,
        "\x00\x01\x1f" * 3_334,
        "https://" + "a" * 9_990 + ".com",
        "é" * 10_000,
        "\u200b" * 10_000,
    ],
)
def test_resolve_copes_with_10000_character_queries(index: AccountIndex, query: str) -> None:
    check_consistent(index, index.resolve(query))


# Characters that occur in no account's name, domain or alias (separators aside): a query made
# only of these shares no name key, compact key, domain, stem, alias or prefix with any account,
# so no exact step can match it or call it ambiguous; and with at most the spaces in common, its
# fuzz.ratio to every name is far below FUZZY_ACCEPT, so fuzzy matching cannot answer either.
# ASCII only, so folding (NFKD, case-folding) cannot turn a character into one an account uses;
# '&' and '_' are left out because normalisation rewrites them ("and", a space).
_USED = {
    ch
    for account in ACCOUNTS
    for text in (account.name, account.domain or "", *account.aliases)
    for ch in fold(text)
}
DISJOINT = "".join(
    ch
    for ch in string.ascii_letters + string.digits + " .,;:!?/-()'\"#@%+=*\t"
    if fold(ch) not in _USED or not fold(ch).strip(" .-")
)


def test_disjoint_alphabet_is_big_enough_to_mean_something() -> None:
    assert set(string.digits) <= set(DISJOINT)
    assert sum(ch.isalpha() for ch in DISJOINT) >= 4  # some letters too, in both cases


@settings(max_examples=200, deadline=None)
@given(query=st.text(alphabet=DISJOINT, max_size=80))
def test_query_sharing_no_key_with_any_account_is_never_matched(index: AccountIndex, query: str) -> None:
    resolution = index.resolve(query)
    assert resolution.status == "unknown"
    assert resolution.account is None


# --- indexed fuzzy ranking (NameKeys) ----------------------------------------------------------

_SYLLABLES = (
    "ac bel cor dan el fen gar hol is jun kel lor mar nor ol par quin ros sol tor ul val wes xen".split()
)
_WORDS = "systems labs health capital foods energy works cloud bank retail".split()


def _generated_names(rng: random.Random, count: int) -> list[str]:
    names: list[str] = []
    while len(names) < count:
        stem = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))
        roll = rng.random()
        if roll < 0.6:
            name = f"{stem} {rng.choice(_WORDS)}"
        elif roll < 0.9:
            name = stem
        elif roll < 0.95:
            name = f"{stem} {stem} {rng.choice(_WORDS)}"  # a repeated word: always scored
        else:
            name = f"{stem} {rng.choice(_WORDS)} müller {rng.randint(1, 99)}"
        names.append(name)
    return names


def _typo(rng: random.Random, text: str) -> str:
    chars = list(text)
    j = rng.randrange(len(chars))
    op = rng.randrange(4)
    if op == 0:
        chars[j] = rng.choice(string.ascii_lowercase)
    elif op == 1 and len(chars) > 1:
        del chars[j]
    elif op == 2:
        chars.insert(j, rng.choice(string.ascii_lowercase))
    elif j < len(chars) - 1:
        chars[j], chars[j + 1] = chars[j + 1], chars[j]
    return "".join(chars)


def _generated_queries(rng: random.Random, names: list[str], count: int) -> list[str]:
    queries: list[str] = []
    while len(queries) < count:
        name = rng.choice(names)
        words = name.split()
        kind = rng.randrange(8)
        if kind == 0:
            query = name
        elif kind == 1:
            query = _typo(rng, name)
        elif kind == 2:
            query = _typo(rng, _typo(rng, name))
        elif kind == 3:
            query = " ".join(reversed(words))
        elif kind == 4:
            query = name[: rng.randint(2, len(name))]
        elif kind == 5:
            query = rng.choice(words)[rng.randint(0, 2) :]
        elif kind == 6:
            query = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 12)))
        else:
            query = f"{name} {rng.choice(_WORDS)} {rng.choice(_WORDS)}"
        if name_key(query):
            queries.append(name_key(query))
    return queries


def test_indexed_fuzzy_ranking_equals_the_full_scan() -> None:
    """NameKeys scores a shortlist; its ranking and accepted match equal scoring every key,
    and the shortlist holds every key that reaches FUZZY_SUGGEST."""
    rng = random.Random(20240611)
    names = _generated_names(rng, 2_500)
    ids = rng.sample(range(1, 1_000_000), len(names))  # any ids, in no particular order
    plain = {i: name_key(n) for i, n in zip(ids, names, strict=True)}
    indexed = NameKeys(plain)
    assert len(indexed) == len(plain) >= FUZZY_INDEX_MIN_KEYS
    assert list(indexed.items()) == list(plain.items())

    shortlisted = 0
    for query in _generated_queries(rng, names, 400):
        full = rank_fuzzy(query, plain)
        assert rank_fuzzy(query, indexed) == full, query
        assert accept_fuzzy(query, full, indexed) == accept_fuzzy(query, full, plain)
        candidates = indexed.candidates(query)
        if len(candidates) < len(plain):
            shortlisted += 1
            reaching = process.extract(
                query, plain, scorer=fuzz.WRatio, processor=None, limit=None, score_cutoff=FUZZY_SUGGEST
            )
            assert {i for _key, _score, i in reaching} <= set(candidates), query
            assert list(candidates) == [i for i in plain if i in candidates]  # the mapping's order
    assert shortlisted > 100  # the index was used, not just the full-scan fallback


def test_small_name_key_sets_are_scanned_whole() -> None:
    keys = NameKeys({1: "acme", 2: "contoso", 3: "contoso pharmaceuticals"})
    assert keys.candidates("contso") == {1: "acme", 2: "contoso", 3: "contoso pharmaceuticals"}
    assert rank_fuzzy("contso", keys) == rank_fuzzy("contso", dict(keys))
    assert 2 in keys and 4 not in keys and keys[3] == "contoso pharmaceuticals"
    assert not NameKeys()

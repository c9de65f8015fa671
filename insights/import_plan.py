"""Plan an account import: which file rows create accounts, which update them, which change nothing.

Pure: the accounts already stored (as dicts) and the parsed file in, an `ImportPlan` out. A row
describes an existing account when it shares its CRM id (Salesforce, HubSpot or canonical id),
else its domain, else its normalised name. Several rows for one account in a file merge, the
later row winning.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from insights.accounts_csv import CANONICAL_FIELDS, AccountRecord, ParsedAccounts
from insights.matching import account_keys
from insights.normalize import name_key

_IDS = ("salesforce_id", "hubspot_id", "external_id")
# The stored columns a file can set, compared to decide whether a row changes anything.
COMPARED = (*CANONICAL_FIELDS, *_IDS)


@dataclass(frozen=True)
class ImportPlan:
    inserts: list[dict[str, Any]]  # new account rows, with lookup keys and extras
    insert_aliases: list[list[str]]  # aliases of each insert, same order
    updates: list[dict[str, Any]]  # {"id": ..., changed columns}
    alias_pairs: list[tuple[int, str, str]]  # (existing account id, alias, alias key)
    unchanged: int
    merged_in_file: int
    extra_fields: list[str]


@dataclass
class _Slot:
    """One account the import touches: an existing one (existing_id set) or a new one."""

    existing_id: int | None
    values: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)


class _Matcher:
    """Finds the slot a record describes: by CRM id, else domain, else normalised name."""

    def __init__(self) -> None:
        self.by: dict[str, dict[str, int]] = {k: {} for k in (*_IDS, "domain", "name_key")}

    def add(self, slot: int, values: Mapping[str, Any], key: str) -> None:
        for f in (*_IDS, "domain"):
            if values.get(f):
                self.by[f].setdefault(str(values[f]), slot)
        if key:
            self.by["name_key"].setdefault(key, slot)

    def find(self, record: AccountRecord, key: str) -> int | None:
        for f in _IDS:
            value = getattr(record, f)
            if value and value in self.by[f]:
                return self.by[f][value]
        if record.domain and record.domain in self.by["domain"]:
            return self.by["domain"][record.domain]
        return self.by["name_key"].get(key) if key else None


def plan_account_import(existing: Iterable[Mapping[str, Any]], parsed: ParsedAccounts) -> ImportPlan:
    """Decide what importing `parsed` does to the `existing` accounts.

    `existing` rows hold `id`, `name_key`, `extra` and the COMPARED columns. Only the columns
    the file has are set: a file without an ARR column leaves ARR as it was, while an empty cell
    in an ARR column clears it. Extra columns merge into the stored extras the same way.
    """
    present = {t for t in parsed.columns.values() if not t.startswith("extra:")}
    extra_fields = sorted({t[6:] for t in parsed.columns.values() if t.startswith("extra:")})
    stored = {int(row["id"]): row for row in existing}

    matcher = _Matcher()
    slots: list[_Slot] = []
    # Existing accounts take the first slots, so file rows find them before each other.
    for account_id, row in stored.items():
        matcher.add(len(slots), row, row["name_key"])
        slots.append(_Slot(existing_id=account_id))
    touched: dict[int, None] = {}  # insertion-ordered set
    merged = 0
    for record in parsed.records:
        key = name_key(record.name)
        values = {f: getattr(record, f) for f in COMPARED if f in present}
        slot = matcher.find(record, key)
        if slot is None:
            slot = len(slots)
            slots.append(_Slot(existing_id=None))
        elif slot in touched:
            merged += 1
        target = slots[slot]
        target.values.update(values)
        target.extra.update({f: record.extra.get(f) for f in extra_fields})
        target.aliases.extend(record.aliases)
        matcher.add(slot, values, key)
        touched[slot] = None

    inserts: list[dict[str, Any]] = []
    insert_aliases: list[list[str]] = []
    updates: list[dict[str, Any]] = []
    alias_pairs: list[tuple[int, str, str]] = []
    unchanged = 0
    for slot in touched:
        target = slots[slot]
        if target.existing_id is None:
            row = {f: target.values.get(f) for f in COMPARED}
            row["extra"] = {k: v for k, v in target.extra.items() if v is not None}
            row["source"] = parsed.layout
            row.update(account_keys(row["name"], row["domain"]))
            inserts.append(row)
            insert_aliases.append(target.aliases)
            continue
        changes = _changes(stored[target.existing_id], target)
        if changes:
            updates.append({"id": target.existing_id, **changes})
        else:
            unchanged += 1
        alias_pairs += [(target.existing_id, a, name_key(a)) for a in target.aliases]
    return ImportPlan(inserts, insert_aliases, updates, alias_pairs, unchanged, merged, extra_fields)


def _changes(old: Mapping[str, Any], target: _Slot) -> dict[str, Any]:
    """The columns of a stored account that the file changes (with new lookup keys on renames)."""
    changes = {f: v for f, v in target.values.items() if old.get(f) != v}
    old_extra = dict(old.get("extra") or {})
    new_extra = dict(old_extra)
    for k, v in target.extra.items():
        if v is None:
            new_extra.pop(k, None)
        else:
            new_extra[k] = v
    if new_extra != old_extra:
        changes["extra"] = new_extra
    if "name" in changes or "domain" in changes:
        name = changes.get("name", old["name"])
        domain = changes.get("domain", old["domain"])
        changes.update(account_keys(name, domain))
    return changes

"""The `icp.yml` file: the ICP definition and the bot's settings, validated with line numbers.

`parse_config(text, source)` is pure; `load_config(path)` reads the file. A file that is not
valid raises `ConfigError`, whose message names the file, the line and the key at fault, so
nothing ever starts half-configured.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

Scalar = str | int | float | bool
OPERATORS: tuple[str, ...] = (
    "any_of",
    "none_of",
    "equals",
    "between",
    "at_least",
    "at_most",
    "below",
    "above",
    "contains",
)
NUMERIC_OPERATORS = frozenset({"between", "at_least", "at_most", "below", "above"})
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
OUTCOME_KINDS = ("win", "loss", "renewal_loss", "implementation_failure", "customer_win")
DEFAULT_REASON_CODES = (
    "price",
    "budget",
    "product_gap",
    "integration",
    "security_compliance",
    "timing",
    "no_decision",
    "champion_loss",
    "poor_fit",
    "adoption",
    "support",
    "implementation",
    "acquisition",
    "sales_execution",
    "relationship",
)


class _Strict(BaseModel):
    # NaN or infinite bounds would make every comparison false and every detail unprintable.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _invalid_at(title: str, loc: tuple[int | str, ...], message: str, value: Any) -> ValidationError:
    """A validation error located at a nested key, so the config error names its exact line."""
    error = PydanticCustomError("config", message)
    return ValidationError.from_exception_data(title, [InitErrorDetails(type=error, loc=loc, input=value)])


class Rule(_Strict):
    """One test on one account field: the shared shape of criteria and disqualifiers."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    field: Annotated[str, Field(min_length=1, max_length=200)]
    any_of: list[Scalar] | None = None
    none_of: list[Scalar] | None = None
    equals: Scalar | None = None
    between: tuple[float, float] | None = None
    at_least: float | None = None
    at_most: float | None = None
    below: float | None = None
    above: float | None = None
    contains: str | list[str] | None = None

    @field_validator("field")
    @classmethod
    def _field_name(cls, value: str) -> str:
        return value.strip()

    @field_validator("any_of", "none_of")
    @classmethod
    def _non_empty_list(cls, value: list[Scalar] | None) -> list[Scalar] | None:
        if value is not None and not value:
            raise ValueError("needs at least one value")
        return value

    @field_validator("between")
    @classmethod
    def _ordered(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and value[0] > value[1]:
            raise ValueError(f"the lower bound {value[0]:g} is above the upper bound {value[1]:g}")
        return value

    @model_validator(mode="after")
    def _one_operator(self) -> Rule:
        used = [op for op in OPERATORS if getattr(self, op) is not None]
        if len(used) != 1:
            found = ", ".join(used) if used else "none"
            raise ValueError(
                f"rule '{self.name}' needs exactly one operator of {', '.join(OPERATORS)} (found: {found})"
            )
        return self

    @property
    def operator(self) -> str:
        return next(op for op in OPERATORS if getattr(self, op) is not None)

    @property
    def operand(self) -> Any:
        return getattr(self, self.operator)


class Criterion(Rule):
    weight: Annotated[float, Field(gt=0, le=1000)] = 1.0


class Disqualifier(Rule):
    # The tier a match caps the account at; the lowest tier when not given.
    cap: str | None = None


class ICPDefinition(_Strict):
    version: Annotated[str, Field(min_length=1, max_length=100)]
    criteria: Annotated[list[Criterion], Field(min_length=1)]
    disqualifiers: list[Disqualifier] = []
    tiers: dict[str, Annotated[int, Field(ge=0, le=100)]] = {"A": 80, "B": 60, "C": 40, "D": 0}

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        # `version: 2026.4` is a float in YAML; a label is what is meant.
        return str(value) if isinstance(value, int | float) else value

    @field_validator("tiers")
    @classmethod
    def _tiers_descend(cls, tiers: dict[str, int]) -> dict[str, int]:
        if len(tiers) < 2:
            raise ValueError("needs at least two tiers, best first (for example A: 80 ... D: 0)")
        minimums = list(tiers.values())
        if any(a <= b for a, b in itertools.pairwise(minimums)):
            raise ValueError("tier minimums must fall from the best tier to the worst")
        if minimums[-1] != 0:
            last = list(tiers)[-1]
            raise ValueError(f"the lowest tier ({last}) must start at 0 so every account gets a tier")
        return tiers

    @model_validator(mode="after")
    def _caps_are_tiers(self) -> ICPDefinition:
        seen: set[str] = set()
        for i, criterion in enumerate(self.criteria):
            if criterion.name in seen:
                message = f"criterion names must be unique: '{criterion.name}' is used twice"
                raise _invalid_at("ICPDefinition", ("criteria", i, "name"), message, criterion.name)
            seen.add(criterion.name)
        for i, rule in enumerate(self.disqualifiers):
            if rule.cap is not None and rule.cap not in self.tiers:
                message = (
                    f"disqualifier '{rule.name}' caps at tier '{rule.cap}', which is not one of "
                    f"{', '.join(self.tiers)}"
                )
                raise _invalid_at("ICPDefinition", ("disqualifiers", i, "cap"), message, rule.cap)
        return self

    @property
    def tier_names(self) -> list[str]:
        return list(self.tiers)

    @property
    def icp_tiers(self) -> list[str]:
        """The tiers that count as "inside the ICP": the top two."""
        return self.tier_names[:2]


class CaptureSettings(_Strict):
    channels: list[str] = []
    confirm: Literal["thread", "reaction", "ephemeral"] = "thread"
    bots: list[str] = []

    @field_validator("channels")
    @classmethod
    def _channel_refs(cls, channels: list[str]) -> list[str]:
        for ref in channels:
            if not re.fullmatch(r"[CGD][A-Z0-9]{2,}|#[a-z0-9][a-z0-9_-]{0,79}", ref):
                raise ValueError(
                    f"'{ref}' is neither a channel ID (like C0123ABCD) nor a name with '#' "
                    f"(like '#deals'; quote it in YAML)"
                )
        return channels


class DigestSettings(_Strict):
    channel: str | None = None
    day: str = "monday"
    time: str = "09:00"
    timezone: str = "UTC"
    # A Slack user ID told by DM when a digest could not be posted.
    admin: str | None = None
    # A week without outcomes: "post" one line saying so, or "skip" posting.
    quiet_week: Literal["post", "skip"] = "post"
    # A run missed while the bot was down is posted when it comes back within this many hours.
    grace_hours: Annotated[float, Field(ge=0, le=72)] = 6

    @field_validator("channel")
    @classmethod
    def _channel_id(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[CGD][A-Z0-9]{2,}", value):
            raise ValueError(
                f"'{value}' is not a channel ID (like C0123ABCD): the digest needs the ID, shown "
                "in Slack under the channel's name > About"
            )
        return value

    @field_validator("admin")
    @classmethod
    def _user_id(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[UW][A-Z0-9]{2,}", value):
            raise ValueError(f"'{value}' is not a Slack user ID (like U0123ABCD)")
        return value

    @property
    def hour(self) -> int:
        return int(self.time.split(":")[0])

    @property
    def minute(self) -> int:
        return int(self.time.split(":")[1])

    @field_validator("day")
    @classmethod
    def _weekday(cls, value: str) -> str:
        day = value.strip().lower()
        if day not in WEEKDAYS:
            raise ValueError(f"'{value}' is not a weekday (monday ... sunday)")
        return day

    @field_validator("time", mode="before")
    @classmethod
    def _clock(cls, value: Any) -> str:
        # YAML 1.1 reads an unquoted 09:00 as the sexagesimal number 540: turn it back into what
        # was written, so 24:00 is refused as "24:00", not as "1440".
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            value = f"{value // 60:02d}:{value % 60:02d}"
        text = str(value).strip()
        match = re.fullmatch(r"(\d{1,2}):(\d{2})", text)
        if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
            raise ValueError(f"'{text}' is not a time of day; use 24-hour HH:MM such as \"09:00\"")
        return f"{int(match.group(1)):02d}:{match.group(2)}"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"'{value}' is not an IANA timezone name (such as America/New_York or Europe/Helsinki)"
            ) from None
        return value


class Competitor(_Strict):
    name: Annotated[str, Field(min_length=1)]
    aliases: list[str] = []


class Taxonomy(_Strict):
    competitors: list[str | Competitor] = []
    # Extra phrases per reason code; a new code may be added here too.
    reasons: dict[str, list[str]] = {}

    @field_validator("reasons")
    @classmethod
    def _codes(cls, reasons: dict[str, list[str]]) -> dict[str, list[str]]:
        for code in reasons:
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,49}", code):
                raise ValueError(f"reason code '{code}' must be lower_snake_case")
        return reasons

    @property
    def competitor_list(self) -> list[Competitor]:
        return [Competitor(name=c) if isinstance(c, str) else c for c in self.competitors]


def _admin_ref(value: str) -> str:
    if not re.fullmatch(r"[UWS][A-Z0-9]{2,}", value):
        raise ValueError(
            f"'{value}' is neither a Slack user ID (like U0123ABCD) nor a user group ID (like S0123ABCD)"
        )
    return value


# A Slack user (U…, W… on Enterprise Grid) or user group (S…) ID.
AdminRef = Annotated[str, AfterValidator(_admin_ref)]


class RetentionSettings(_Strict):
    # Captured notes (and the text of corrections) older than this are deleted; None keeps them.
    notes_months: Annotated[int, Field(ge=1, le=1200, strict=True)] | None = None
    # What uninstalling the app from the workspace does to its data.
    on_uninstall: Literal["keep", "delete"] = "keep"


class Config(_Strict):
    icp: ICPDefinition
    capture: CaptureSettings = CaptureSettings()
    digest: DigestSettings = DigestSettings()
    taxonomy: Taxonomy = Taxonomy()
    # Who may correct anyone's note, post the digest by hand or change settings from Slack.
    admins: list[AdminRef] = []
    retention: RetentionSettings = RetentionSettings()

    @property
    def admin_users(self) -> frozenset[str]:
        return frozenset(a for a in self.admins if not a.startswith("S"))

    @property
    def admin_groups(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a for a in self.admins if a.startswith("S")))


@dataclass(frozen=True)
class ConfigProblem:
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        key = f"{self.path}: " if self.path else ""
        return f"{where}{key}{self.message}"


class ConfigError(ValueError):
    """The config file cannot be used. `str()` is the one-line message for the user."""

    def __init__(self, source: str, problems: Sequence[ConfigProblem]) -> None:
        self.source = source
        self.problems = list(problems)
        first = " ".join(str(self.problems[0]).split())  # one line, whatever the values hold
        more = len(self.problems) - 1
        tail = (
            f" (and {more} more problem{'s' if more > 1 else ''}: run 'icp-bot config check')" if more else ""
        )
        super().__init__(f"{source} {first}{tail}")


def _node_at(root: yaml.Node | None, loc: Sequence[int | str]) -> tuple[yaml.Node | None, bool]:
    """Find the YAML node for a pydantic error location; True when the last key itself is absent."""
    node = root
    for i, part in enumerate(loc):
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == part:
                    # For the last part, point at the key (an unknown key's own line).
                    node = key_node if i == len(loc) - 1 else value_node
                    break
            else:
                return node, True
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return node, True
            node = node.value[part]
        else:
            return node, False
    return node, False


def _path_text(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _clean_loc(loc: Sequence[int | str]) -> list[int | str]:
    # Union members and tagged variants add their type names to the location: drop them.
    skip = {
        "str",
        "int",
        "float",
        "bool",
        "list[str]",
        "Competitor",
        "function-after[_one_operator(), Rule]",
    }
    return [p for p in loc if not (isinstance(p, str) and (p in skip or p.startswith("function-")))]


def _known_keys(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = (
            current.model_fields.get(part)
            if isinstance(current, type) and issubclass(current, BaseModel)
            else None
        )
        if field is None:
            return []
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        candidates = [annotation, *args]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        for arg in args:
            nested += [
                a for a in getattr(arg, "__args__", ()) if isinstance(a, type) and issubclass(a, BaseModel)
            ]
        if not nested:
            return []
        current = nested[0]
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _problem_from_error(root: yaml.Node | None, error: dict[str, Any]) -> ConfigProblem:
    loc = _clean_loc(error["loc"])
    node, missing = _node_at(root, loc)
    line = node.start_mark.line + 1 if node is not None else None
    kind = error["type"]
    message = str(error["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        known = _known_keys(Config, loc[:-1])
        close = difflib.get_close_matches(key, known, n=1)
        hint = (
            f" (did you mean '{close[0]}'?)" if close else (f"; allowed: {', '.join(known)}" if known else "")
        )
        return ConfigProblem(line, _path_text(loc), f"unknown key '{key}'{hint}")
    if kind == "missing" or missing:
        return ConfigProblem(line, _path_text(loc), "is required but missing")
    if kind.endswith("_type") or kind.endswith("_parsing"):
        given = error.get("input")
        shown = repr(given) if not isinstance(given, dict | list) else type(given).__name__
        message = f"{message.lower()} (got {shown})"
    return ConfigProblem(line, _path_text(loc), message)


def parse_config(text: str, source: str = "icp.yml") -> Config:
    """Parse and validate config text; raise ConfigError naming the line and key at fault."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        reason = exc.problem or exc.context or "cannot be read as YAML"
        raise ConfigError(source, [ConfigProblem(line, "", f"is not valid YAML: {reason}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(source, [ConfigProblem(None, "", f"is not valid YAML: {exc}")]) from None
    if data is None:
        raise ConfigError(source, [ConfigProblem(None, "", "is empty: it needs at least an 'icp' section")])
    if not isinstance(data, dict):
        raise ConfigError(
            source, [ConfigProblem(1, "", "must be a mapping with an 'icp' section at the top")]
        )
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        found = [_problem_from_error(root, dict(err)) for err in exc.errors()]
        # A value of the wrong type fails every member of a union: report each place once.
        problems = list({(p.line, p.path): p for p in reversed(found)}.values())[::-1]
        problems.sort(key=lambda p: (p.line is None, p.line or 0))
        raise ConfigError(source, problems) from None


def load_config(path: Path) -> Config:
    """Read and validate a config file; ConfigError for a missing, unreadable or invalid file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            str(path),
            [ConfigProblem(None, "", "does not exist (set ICP_BOT_CONFIG or run 'icp-bot init')")],
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [ConfigProblem(None, "", f"cannot be read: {exc}")]) from None
    return parse_config(text, str(path))

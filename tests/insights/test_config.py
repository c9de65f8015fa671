"""Unit tests for insights.config: parsing icp.yml and errors that name the line and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from insights.config import (
    OPERATORS,
    Competitor,
    Config,
    ConfigError,
    ConfigProblem,
    load_config,
    parse_config,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "bot" / "resources" / "icp.example.yml"

# Line numbers are part of what is tested: keep this text's layout in mind when editing it.
BASE = """\
icp:
  version: "2026-Q4"
  criteria:
    - name: Industry
      field: industry
      any_of: [Software, Financial Services, Healthcare]
      weight: 30
    - name: Company size
      field: employees
      between: [200, 5000]
      weight: 30
  disqualifiers:
    - name: Too small
      field: employees
      below: 50
    - name: Public sector
      field: industry
      any_of: [Government]
      cap: C
  tiers:
    A: 80
    B: 60
    C: 40
    D: 0
capture:
  channels: [C0DEALS, "#churn"]
  confirm: thread
digest:
  channel: C0DIGEST
  day: monday
  time: "09:00"
  timezone: America/New_York
taxonomy:
  competitors: [Gong, Clari]
"""


def edit(text: str, old: str, new: str) -> str:
    """Replace one exact, unique fragment of the config text."""
    assert text.count(old) == 1, f"fragment {old!r} must occur exactly once"
    return text.replace(old, new)


def line_of(text: str, fragment: str) -> int:
    """1-based line number of the one line containing `fragment`."""
    hits = [i for i, line in enumerate(text.splitlines(), start=1) if fragment in line]
    assert len(hits) == 1, f"fragment {fragment!r} must be on exactly one line, found {hits}"
    return hits[0]


def config_error(text: str, source: str = "icp.yml") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source)
    error = info.value
    assert error.problems, "a ConfigError always carries at least one problem"
    assert "\n" not in str(error), "the user-facing message is one line"
    assert str(error).startswith(source + " ")
    return error


def only_problem(text: str) -> ConfigProblem:
    error = config_error(text)
    assert len(error.problems) == 1, error.problems
    return error.problems[0]


# --- valid files -------------------------------------------------------------------------------


def test_bundled_example_parses() -> None:
    config = parse_config(EXAMPLE.read_text(encoding="utf-8"), str(EXAMPLE))
    icp = config.icp
    assert icp.version == "2026-Q4"
    assert [c.name for c in icp.criteria] == ["Industry", "Company size", "Region", "Revenue"]
    assert [c.operator for c in icp.criteria] == ["any_of", "between", "any_of", "at_least"]
    assert sum(c.weight for c in icp.criteria) == 100
    assert icp.criteria[1].operand == (200, 5000)
    assert [(d.name, d.cap) for d in icp.disqualifiers] == [("Too small", None), ("Public sector", "C")]
    assert icp.tiers == {"A": 80, "B": 60, "C": 40, "D": 0}
    assert icp.tier_names == ["A", "B", "C", "D"]
    assert icp.icp_tiers == ["A", "B"]
    assert config.capture.channels == ["C0DEALS", "#churn"]
    assert config.capture.confirm == "thread"
    assert (config.digest.channel, config.digest.day, config.digest.time, config.digest.timezone) == (
        "C0DIGEST",
        "monday",
        "09:00",
        "America/New_York",
    )
    assert config.taxonomy.competitor_list == [
        Competitor(name="Gong"),
        Competitor(name="Clari"),
        Competitor(name="Gainsight", aliases=["GS"]),
        Competitor(name="Salesloft", aliases=["SL"]),
        Competitor(name="Outreach"),
        Competitor(name="Totango"),
        Competitor(name="ChurnZero"),
        Competitor(name="People.ai"),
    ]


def test_load_config_reads_the_example_file() -> None:
    assert load_config(EXAMPLE).icp.version == "2026-Q4"


def test_load_config_of_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yml"
    with pytest.raises(ConfigError) as info:
        load_config(missing)
    assert str(info.value).startswith(str(missing))
    assert "does not exist" in str(info.value)


def test_minimal_config_gets_defaults() -> None:
    config = parse_config("icp:\n  version: v1\n  criteria:\n    - {name: A, field: a, equals: x}\n")
    assert config.icp.tiers == {"A": 80, "B": 60, "C": 40, "D": 0}
    assert config.icp.disqualifiers == []
    assert config.icp.criteria[0].weight == 1.0
    assert config.capture.confirm == "thread"
    assert config.digest.time == "09:00"
    assert config.digest.timezone == "UTC"
    assert config.digest.day == "monday"


@pytest.mark.parametrize(
    ("snippet", "operator", "operand"),
    [
        ("any_of: [Software, 3, 2.5, true]", "any_of", ["Software", 3, 2.5, True]),
        ("none_of: [Government]", "none_of", ["Government"]),
        ("equals: Customer", "equals", "Customer"),
        ("equals: 42", "equals", 42),
        ("between: [200, 5000]", "between", (200.0, 5000.0)),
        ("between: [5, 5]", "between", (5.0, 5.0)),
        ("at_least: 20000000", "at_least", 20_000_000.0),
        ("at_most: 1.5", "at_most", 1.5),
        ("below: 50", "below", 50.0),
        ("above: -1", "above", -1.0),
        ("contains: Salesforce", "contains", "Salesforce"),
        ("contains: [Salesforce, Slack]", "contains", ["Salesforce", "Slack"]),
    ],
)
def test_every_operator_is_accepted(snippet: str, operator: str, operand: object) -> None:
    text = edit(BASE, "any_of: [Software, Financial Services, Healthcare]", snippet)
    criterion = parse_config(text).icp.criteria[0]
    assert criterion.operator == operator
    assert criterion.operand == operand


def test_operators_constant_lists_the_contract_operators() -> None:
    assert set(OPERATORS) == {
        "any_of",
        "none_of",
        "equals",
        "between",
        "at_least",
        "at_most",
        "below",
        "above",
        "contains",
    }


def test_numeric_version_becomes_a_label() -> None:
    assert parse_config(edit(BASE, 'version: "2026-Q4"', "version: 2026.4")).icp.version == "2026.4"


def test_field_name_is_trimmed() -> None:
    text = edit(
        BASE, "field: industry\n      any_of: [Software", 'field: " industry "\n      any_of: [Software'
    )
    assert parse_config(text).icp.criteria[0].field == "industry"


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("09:00", "09:00"),  # unquoted: YAML reads it as text
        ("9:30", "09:30"),  # unquoted: YAML 1.1 reads it as the sexagesimal number 570
        ("12:30", "12:30"),  # unquoted: the number 750
        ("23:59", "23:59"),
        ("0:00", "00:00"),
        ('"7:05"', "07:05"),
        ('"09:00"', "09:00"),
    ],
)
def test_digest_time_is_normalised_to_hh_mm(written: str, expected: str) -> None:
    assert parse_config(edit(BASE, 'time: "09:00"', f"time: {written}")).digest.time == expected


def test_digest_day_is_case_insensitive() -> None:
    assert parse_config(edit(BASE, "day: monday", "day: Friday")).digest.day == "friday"


@pytest.mark.parametrize("channels", ["[C0DEALS]", "[G0PRIVATE1]", '["#deals", "#deal-desk_2"]', "[]"])
def test_valid_channel_refs_are_accepted(channels: str) -> None:
    parse_config(edit(BASE, '[C0DEALS, "#churn"]', channels))


def test_competitor_with_aliases_and_reason_codes() -> None:
    text = edit(
        BASE,
        "competitors: [Gong, Clari]",
        "competitors:\n    - Gong\n    - {name: Gainsight, aliases: [GS]}\n"
        "  reasons:\n    price: [too pricey]",
    )
    taxonomy = parse_config(text).taxonomy
    assert [c.name for c in taxonomy.competitor_list] == ["Gong", "Gainsight"]
    assert taxonomy.competitor_list[1].aliases == ["GS"]
    assert taxonomy.reasons == {"price": ["too pricey"]}


def test_parsed_config_is_frozen() -> None:
    config = parse_config(BASE)
    assert isinstance(config, Config)
    with pytest.raises(ValueError, match="frozen"):
        config.icp.version = "other"  # type: ignore[misc]


# --- errors: line and key ----------------------------------------------------------------------


def test_operator_typo_names_line_key_and_suggests_the_operator() -> None:
    text = edit(BASE, "between: [200, 5000]", "betwen: [200, 5000]")
    error = config_error(text)
    problem = error.problems[0]
    assert problem.line == line_of(text, "betwen:") == 10
    assert problem.path == "icp.criteria[1].betwen"
    assert "unknown key 'betwen'" in problem.message
    assert "did you mean 'between'?" in problem.message
    assert str(error).startswith("icp.yml line 10: icp.criteria[1].betwen: unknown key 'betwen'")


def test_two_operators_in_one_criterion() -> None:
    text = edit(BASE, "between: [200, 5000]", "between: [200, 5000]\n      at_least: 3")
    problem = only_problem(text)
    assert problem.line == line_of(text, "- name: Company size")
    assert problem.path == "icp.criteria[1]"
    assert "Company size" in problem.message
    assert "exactly one operator" in problem.message
    assert "found: between, at_least" in problem.message


def test_criterion_without_operator() -> None:
    text = edit(BASE, "      between: [200, 5000]\n", "")
    problem = only_problem(text)
    assert problem.line == line_of(text, "- name: Company size")
    assert problem.path == "icp.criteria[1]"
    assert "found: none" in problem.message


def test_between_with_bounds_reversed() -> None:
    text = edit(BASE, "between: [200, 5000]", "between: [5000, 200]")
    problem = only_problem(text)
    assert problem.line == line_of(text, "between:")
    assert problem.path == "icp.criteria[1].between"
    assert problem.message == "the lower bound 5000 is above the upper bound 200"


def test_between_with_one_bound() -> None:
    text = edit(BASE, "between: [200, 5000]", "between: [200]")
    problem = only_problem(text)
    assert problem.line == line_of(text, "between:")
    assert problem.path.startswith("icp.criteria[1].between")


def test_empty_any_of_is_refused() -> None:
    text = edit(BASE, "any_of: [Government]", "any_of: []")
    problem = only_problem(text)
    assert problem.line == line_of(text, "any_of: []")
    assert problem.path == "icp.disqualifiers[1].any_of"
    assert problem.message == "needs at least one value"


def test_empty_criteria_list_is_refused() -> None:
    problem = only_problem("icp:\n  version: v1\n  criteria: []\n")
    assert (problem.line, problem.path) == (3, "icp.criteria")


@pytest.mark.parametrize(
    ("tiers", "message"),
    [
        ("A: 80\n    B: 90\n    C: 40\n    D: 0", "tier minimums must fall from the best tier to the worst"),
        ("A: 80\n    B: 80\n    C: 40\n    D: 0", "tier minimums must fall from the best tier to the worst"),
        ("A: 80\n    B: 60\n    C: 40\n    D: 10", "the lowest tier (D) must start at 0"),
        ("A: 0", "needs at least two tiers"),
    ],
)
def test_bad_tiers_name_the_tiers_key(tiers: str, message: str) -> None:
    text = edit(BASE, "A: 80\n    B: 60\n    C: 40\n    D: 0", tiers)
    problem = only_problem(text)
    assert problem.line == line_of(text, "tiers:") == 20
    assert problem.path == "icp.tiers"
    assert message in problem.message


def test_tier_minimum_above_100_is_refused() -> None:
    text = edit(BASE, "A: 80", "A: 120")
    problem = only_problem(text)
    assert problem.line == line_of(text, "A: 120")
    assert problem.path == "icp.tiers.A"


def test_unknown_top_level_key_lists_the_allowed_keys() -> None:
    text = BASE + "frobnicate: 1\n"
    problem = only_problem(text)
    assert problem.line == line_of(text, "frobnicate") == 35
    assert problem.path == "frobnicate"
    assert problem.message == (
        "unknown key 'frobnicate'; allowed: icp, capture, digest, taxonomy, admins, retention"
    )


def test_misspelt_top_level_key_suggests_the_right_one() -> None:
    text = edit(BASE, "digest:\n", "digets:\n")
    error = config_error(text)
    problem = error.problems[0]
    assert problem.line == line_of(text, "digets:")
    assert problem.message == "unknown key 'digets' (did you mean 'digest'?)"


def test_misspelt_nested_key_suggests_the_right_one() -> None:
    text = edit(BASE, "timezone: America/New_York", "timezon: America/New_York")
    problem = only_problem(text)
    assert problem.line == line_of(text, "timezon:")
    assert problem.path == "digest.timezon"
    assert "did you mean 'timezone'?" in problem.message


def test_disqualifier_has_no_weight() -> None:
    text = edit(BASE, "below: 50", "below: 50\n      weight: 7")
    problem = only_problem(text)
    assert problem.line == line_of(text, "weight: 7")
    assert problem.path == "icp.disqualifiers[0].weight"
    assert "unknown key 'weight'" in problem.message
    assert "cap" in problem.message  # the allowed keys are listed


def test_wrong_type_names_line_key_and_the_value_given() -> None:
    text = edit(BASE, "weight: 30\n    - name: Company size", 'weight: "heavy"\n    - name: Company size')
    problem = only_problem(text)
    assert problem.line == line_of(text, '"heavy"') == 7
    assert problem.path == "icp.criteria[0].weight"
    assert "valid number" in problem.message
    assert "'heavy'" in problem.message


@pytest.mark.parametrize("weight", ["0", "-5", "1001"])
def test_weight_out_of_range(weight: str) -> None:
    text = edit(BASE, "weight: 30\n    - name: Company size", f"weight: {weight}\n    - name: Company size")
    problem = only_problem(text)
    assert problem.line == 7
    assert problem.path == "icp.criteria[0].weight"


def test_missing_required_key_is_reported() -> None:
    text = edit(BASE, "      field: employees\n      between", "      between")
    problem = only_problem(text)
    assert problem.path == "icp.criteria[1].field"
    assert problem.message == "is required but missing"
    assert problem.line == line_of(text, "- name: Company size")


@pytest.mark.parametrize("written", ['"25:00"', '"12:60"', '"noon"', '"9"', "24:00"])
def test_digest_time_out_of_range(written: str) -> None:
    text = edit(BASE, 'time: "09:00"', f"time: {written}")
    problem = only_problem(text)
    assert problem.line == line_of(text, "time:") == 31
    assert problem.path == "digest.time"
    assert "is not a time of day" in problem.message


def test_digest_time_25_00_quotes_the_value() -> None:
    problem = only_problem(edit(BASE, 'time: "09:00"', 'time: "25:00"'))
    assert problem.message.startswith("'25:00' is not a time of day")


def test_unquoted_24_00_is_reported_as_written() -> None:
    problem = only_problem(edit(BASE, 'time: "09:00"', "time: 24:00"))
    assert "24:00" in problem.message


def test_unknown_timezone() -> None:
    text = edit(BASE, "America/New_York", "Mars/Olympus")
    problem = only_problem(text)
    assert problem.line == line_of(text, "Mars/Olympus") == 32
    assert problem.path == "digest.timezone"
    assert problem.message.startswith("'Mars/Olympus' is not an IANA timezone name")


def test_bad_weekday() -> None:
    text = edit(BASE, "day: monday", "day: Funday")
    problem = only_problem(text)
    assert (problem.line, problem.path) == (line_of(text, "Funday"), "digest.day")
    assert "'Funday' is not a weekday" in problem.message


def test_bad_confirm_mode() -> None:
    text = edit(BASE, "confirm: thread", "confirm: dm")
    problem = only_problem(text)
    assert (problem.line, problem.path) == (line_of(text, "confirm: dm"), "capture.confirm")


@pytest.mark.parametrize("channels", ["[C0DEALS, churn]", "[c0deals]", '["#Deals"]', '["# deals"]', "[X123]"])
def test_bad_channel_refs(channels: str) -> None:
    text = edit(BASE, '[C0DEALS, "#churn"]', channels)
    problem = only_problem(text)
    assert problem.line == line_of(text, "channels:") == 26
    assert problem.path == "capture.channels"
    assert "is neither a channel ID" in problem.message


def test_reason_code_must_be_snake_case() -> None:
    text = edit(BASE, "competitors: [Gong, Clari]", "competitors: [Gong]\n  reasons:\n    Price: [pricey]")
    problem = only_problem(text)
    assert problem.path == "taxonomy.reasons"
    assert "'Price' must be lower_snake_case" in problem.message


def test_cap_that_is_not_a_tier_is_refused_with_its_name() -> None:
    error = config_error(edit(BASE, "cap: C", "cap: Z"))
    assert len(error.problems) == 1
    message = error.problems[0].message
    assert "Public sector" in message
    assert "'Z'" in message
    assert "A, B, C, D" in message


def test_cap_that_is_not_a_tier_names_the_cap_line_and_key() -> None:
    text = edit(BASE, "cap: C", "cap: Z")
    problem = only_problem(text)
    assert problem.line == line_of(text, "cap: Z") == 19
    assert problem.path == "icp.disqualifiers[1].cap"


def test_duplicate_criterion_names_are_refused() -> None:
    text = edit(BASE, "- name: Company size", "- name: Industry")
    problem = only_problem(text)
    assert "criterion names must be unique: 'Industry' is used twice" in problem.message


def test_duplicate_criterion_name_names_its_line() -> None:
    text = edit(BASE, "- name: Company size", "- name: Industry")
    problem = only_problem(text)
    assert problem.line == 8


@pytest.mark.parametrize(
    ("old", "new"),
    [("between: [200, 5000]", "between: [.nan, 5000]"), ("below: 50", "below: .nan")],
)
def test_nan_bounds_are_refused(old: str, new: str) -> None:
    config_error(edit(BASE, old, new))


# --- several problems, YAML and file-level errors ----------------------------------------------


def test_several_problems_are_sorted_by_line_and_counted_in_one_line() -> None:
    text = edit(
        edit(edit(BASE, "America/New_York", "Mars/Olympus"), 'time: "09:00"', 'time: "25:00"'),
        "day: monday",
        "day: someday",
    )
    error = config_error(text)
    assert [(p.line, p.path) for p in error.problems] == [
        (30, "digest.day"),
        (31, "digest.time"),
        (32, "digest.timezone"),
    ]
    assert str(error).startswith("icp.yml line 30: digest.day: 'someday' is not a weekday")
    assert str(error).endswith("(and 2 more problems: run 'icp-bot config check')")


def test_two_problems_say_one_more_problem() -> None:
    text = edit(edit(BASE, "America/New_York", "Mars/Olympus"), 'time: "09:00"', 'time: "25:00"')
    assert str(config_error(text)).endswith("(and 1 more problem: run 'icp-bot config check')")


def test_source_name_leads_the_message() -> None:
    error = config_error(edit(BASE, "day: monday", "day: x"), source="conf/icp.yml")
    assert str(error).startswith("conf/icp.yml line 30: digest.day:")
    assert error.source == "conf/icp.yml"


def test_invalid_yaml_reports_the_line() -> None:
    text = "icp:\n  version: v1\n  criteria: [1,\n    2\nfoo: : :\n"
    error = config_error(text)
    problem = error.problems[0]
    assert problem.line == 5
    assert problem.path == ""
    assert problem.message.startswith("is not valid YAML")
    assert str(error).startswith("icp.yml line 5: is not valid YAML")


def test_bad_indentation_reports_the_line() -> None:
    text = "icp:\n  version: v1\n  criteria:\n   - name: a\n     field: b\n    equals: c\n"
    problem = config_error(text).problems[0]
    assert problem.line == 6
    assert "is not valid YAML" in problem.message


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_empty_file(text: str) -> None:
    error = config_error(text)
    assert error.problems[0].line is None
    assert "is empty" in str(error)
    assert str(error) == "icp.yml is empty: it needs at least an 'icp' section"


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", "42\n"])
def test_top_level_must_be_a_mapping(text: str) -> None:
    problem = only_problem(text)
    assert problem.line == 1
    assert "must be a mapping" in problem.message


def test_missing_icp_section() -> None:
    problem = only_problem("capture:\n  channels: []\n")
    assert problem.path == "icp"
    assert problem.message == "is required but missing"


def test_wrong_type_for_a_section() -> None:
    text = edit(
        BASE,
        'digest:\n  channel: C0DIGEST\n  day: monday\n  time: "09:00"\n  timezone: America/New_York\n',
        "digest: weekly\n",
    )
    problem = only_problem(text)
    assert problem.path == "digest"
    assert problem.line == line_of(text, "digest: weekly")


def test_message_stays_on_one_line_with_a_newline_in_a_value() -> None:
    config_error(edit(BASE, "America/New_York", '"Mars\\nOlympus"'))


def test_problem_str_joins_line_path_and_message() -> None:
    assert str(ConfigProblem(7, "icp.criteria[0].weight", "bad")) == "line 7: icp.criteria[0].weight: bad"
    assert str(ConfigProblem(None, "", "is empty")) == "is empty"


# --- admins and retention ------------------------------------------------------------------------


def test_admins_and_retention_default_to_nobody_and_keep_forever() -> None:
    config = parse_config(BASE)
    assert config.admins == [] and config.admin_users == frozenset() and config.admin_groups == ()
    assert (config.retention.notes_months, config.retention.on_uninstall) == (None, "keep")


def test_admins_take_user_and_user_group_ids() -> None:
    text = BASE + "admins: [U0LEAD, W0GRID, S0ICPADMINS, U0LEAD]\nretention:\n  notes_months: 24\n"
    config = parse_config(text)
    assert config.admin_users == frozenset({"U0LEAD", "W0GRID"})
    assert config.admin_groups == ("S0ICPADMINS",)
    assert config.retention.notes_months == 24


def test_the_example_documents_admins_and_retention_in_comments() -> None:
    example = EXAMPLE.read_text(encoding="utf-8")
    assert "# admins: [U0123ABCD, S0123ABCD]" in example and "#   notes_months: 24" in example
    uncommented = example.replace("# admins:", "admins:").replace("# retention:", "retention:")
    uncommented = uncommented.replace("#   notes_months", "  notes_months").replace(
        "#   on_uninstall", "  on_uninstall"
    )
    config = parse_config(uncommented)
    assert config.admins == ["U0123ABCD", "S0123ABCD"]
    assert (config.retention.notes_months, config.retention.on_uninstall) == (24, "keep")


def test_an_admin_that_is_not_an_id_names_its_line() -> None:
    text = BASE + "admins:\n  - U0LEAD\n  - dana@example.com\n"
    problem = only_problem(text)
    assert problem.line == line_of(text, "dana@example.com")
    assert problem.path == "admins[1]"
    assert "'dana@example.com' is neither a Slack user ID" in problem.message


def test_admins_must_be_a_list() -> None:
    text = BASE + "admins: U0LEAD\n"
    problem = only_problem(text)
    assert (problem.line, problem.path) == (line_of(text, "admins:"), "admins")
    assert "valid list" in problem.message


@pytest.mark.parametrize(
    ("written", "needle"),
    [
        ("0", "greater than or equal to 1"),
        ("-3", "greater than or equal to 1"),
        ("1.5", "valid integer"),
        ("true", "valid integer"),
        ('"12"', "valid integer"),
    ],
)
def test_retention_months_must_be_a_whole_number_of_at_least_one(written: str, needle: str) -> None:
    text = BASE + f"retention:\n  notes_months: {written}\n"
    problem = only_problem(text)
    assert (problem.line, problem.path) == (line_of(text, "notes_months"), "retention.notes_months")
    assert needle in problem.message


def test_retention_null_keeps_notes_forever() -> None:
    config = parse_config(BASE + "retention:\n  notes_months: null\n  on_uninstall: delete\n")
    assert (config.retention.notes_months, config.retention.on_uninstall) == (None, "delete")


def test_on_uninstall_is_keep_or_delete() -> None:
    text = BASE + "retention:\n  on_uninstall: purge\n"
    problem = only_problem(text)
    assert (problem.line, problem.path) == (line_of(text, "on_uninstall"), "retention.on_uninstall")
    assert "'keep' or 'delete'" in problem.message


def test_unknown_retention_key_is_refused_with_the_allowed_keys() -> None:
    text = BASE + "retention:\n  notes_month: 12\n"
    problem = only_problem(text)
    assert problem.line == line_of(text, "notes_month:")
    assert problem.message == "unknown key 'notes_month' (did you mean 'notes_months'?)"

"""The `icp-bot` command. Exit status: 0 success, 1 user error (one line on stderr), 2 usage."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from sqlalchemy.exc import DBAPIError

from bot.context import AppContext, build_context, database_error
from bot.render import eval_text, fit_json, fit_text, not_found_json, overview_text, tag_json, tag_text
from bot.settings import DEFAULT_CONFIG_NAME, Settings, bundled_resource
from insights.accounts_csv import AccountsFileError
from insights.config import ConfigError, load_config
from insights.errors import AccountNotFoundError, UserError
from insights.service import (
    ImportSummary,
    build_tagger,
    fit_for,
    import_accounts,
    record_corrections,
    score_all,
)
from insights.tag_eval import LabelledMessage, evaluate
from insights.tagging import Tagger
from storage.engine import DatabaseURLError, redacted
from storage.schema import SchemaOutOfDateError, upgrade

EXIT_OK, EXIT_USER, EXIT_USAGE = 0, 1, 2
MAX_IMPORT_BYTES = 2 * 1024**3

log = logging.getLogger("icp_bot")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse prints usage and exits 2 on usage errors
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"icp-bot: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="icp-bot",
        description="Ideal Customer Profile insight for Slack: fit checks, outcome capture, digests.",
    )
    parser.add_argument(
        "--config",
        help="path of icp.yml (default: $ICP_BOT_CONFIG, ./icp.yml, the bundled example)",
    )
    parser.add_argument(
        "--team",
        help="Slack workspace (team ID) to work on (default: $ICP_BOT_TEAM_ID or the only one)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    demo = sub.add_parser("demo", help="the whole product on this machine with bundled sample data")
    demo.add_argument("--dir", help="keep the demo's files in this folder (default: a new temporary folder)")

    init = sub.add_parser("init", help=f"write a commented {DEFAULT_CONFIG_NAME} to start from")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")

    config = sub.add_parser("config", help="inspect the configuration")
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION", parser_class=_Parser)
    check = config_sub.add_parser("check", help="validate icp.yml and list every problem")
    check.add_argument("file", nargs="?", help="file to check (default: the active config)")

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", parser_class=_Parser)
    db_sub.add_parser("upgrade", help="create or migrate the schema")

    accounts = sub.add_parser("accounts", help="CRM accounts")
    accounts_sub = accounts.add_subparsers(dest="accounts_command", metavar="ACTION", parser_class=_Parser)
    imp = accounts_sub.add_parser("import", help="import a Salesforce, HubSpot or canonical CSV export")
    imp.add_argument("file", help="CSV file ('-' for standard input)")
    imp.add_argument("--encoding", help="text encoding of the file (default UTF-8), e.g. cp1252")
    lst = accounts_sub.add_parser("list", help="every account scored: tier distribution and best fits")
    lst.add_argument("--tier", help="only accounts in this tier")
    lst.add_argument(
        "--limit", type=int, default=20, help="how many accounts to list (0 for all; default 20)"
    )
    lst.add_argument("--json", action="store_true", help="one JSON object per account")

    outcomes = sub.add_parser("outcomes", help="CRM outcomes: closed deals")
    outcomes_sub = outcomes.add_subparsers(dest="outcomes_command", metavar="ACTION", parser_class=_Parser)
    oimp = outcomes_sub.add_parser("import", help="import a Salesforce Opportunity or HubSpot deals export")
    oimp.add_argument("file", help="CSV file ('-' for standard input)")
    oimp.add_argument("--encoding", help="text encoding of the file (default UTF-8), e.g. cp1252")

    tag = sub.add_parser("tag", help="tag messages: outcome kind, account, competitor, reasons")
    tag.add_argument(
        "file", nargs="?", help="messages, one per line or JSON lines with 'text' (default: stdin)"
    )
    tag.add_argument(
        "--json", action="store_true", help="one JSON object per message (the default when piped)"
    )
    tag.add_argument("--eval", metavar="FILE", help="score the tagger against labelled JSON lines")
    tag.add_argument(
        "--stats",
        action="store_true",
        help="say on standard error how long loading the accounts and tagging took",
    )
    tag.add_argument(
        "--learn",
        metavar="FILE",
        help="teach the workspace's tagger from labelled JSON lines (kept as examples)",
    )

    fit = sub.add_parser("fit", help="how well an account fits the ICP (the /icp-fit answer)")
    fit.add_argument(
        "name", nargs="+", help='account name, domain, or "Newco industry=Software employees=300"'
    )
    fit.add_argument("--json", action="store_true", help="print the contract's JSON")

    _add_slack_commands(sub)
    _add_backfill_command(sub)
    return parser


def _add_slack_commands(sub: Any) -> None:
    """The commands of the Slack side: the digest, its schedule, the bot, captured notes."""
    digest = sub.add_parser("digest", help="the weekly ICP digest: preview, post once, JSON, HTML, chart")
    show = digest.add_mutually_exclusive_group()
    show.add_argument("--preview", action="store_true", help="print it in the terminal (the default)")
    show.add_argument("--post", action="store_true", help="post it to digest.channel (once per period)")
    digest.add_argument("--as-of", metavar="DATE", help="as if run on DATE (YYYY-MM-DD) at the digest time")
    digest.add_argument("--json", action="store_true", help="print the contract's JSON")
    digest.add_argument("--html", metavar="FILE", help="also write an HTML rendering (for email) to FILE")
    digest.add_argument("--chart", metavar="FILE", help="also write the chart PNG to FILE")
    sub.add_parser("schedule", help="the next five digest times, in the configured timezone and UTC")

    run = sub.add_parser(
        "run", help="the Slack bot: Socket Mode when SLACK_APP_TOKEN is set, else HTTP on /slack/events"
    )
    how = run.add_mutually_exclusive_group()
    how.add_argument("--socket", action="store_true", help="Socket Mode (needs SLACK_APP_TOKEN)")
    how.add_argument("--http", action="store_true", help="HTTP: POST /slack/events, GET /healthz")
    run.add_argument("--port", type=int, default=None, help="HTTP port (default: $PORT, else 3000)")
    run.add_argument("--host", default="0.0.0.0", help="HTTP address to listen on (default: 0.0.0.0)")

    notes = sub.add_parser("notes", help="captured outcomes")
    notes_sub = notes.add_subparsers(dest="notes_command", metavar="ACTION")
    export = notes_sub.add_parser("export", help="every captured outcome, one JSON object per line")
    export.add_argument("--json", action="store_true", help="JSON lines (the default and only format)")
    export.add_argument("--user", metavar="USER_ID", help="only the notes of this person's messages (U…)")
    delete = notes_sub.add_parser(
        "delete", help="delete everything stored about one person (a privacy request), in one go"
    )
    delete.add_argument("--user", metavar="USER_ID", required=True, help="the person's Slack user ID (U…)")
    delete.add_argument("--yes", action="store_true", help="delete; without it, only say what would go")
    purge = notes_sub.add_parser("purge", help="delete notes older than retention.notes_months (icp.yml)")
    purge.add_argument("--dry-run", action="store_true", help="only count what would be deleted")
    purge.add_argument("--months", type=int, help="this many months instead of retention.notes_months")


def _add_backfill_command(sub: Any) -> None:
    backfill = sub.add_parser("backfill", help="capture a capture channel's older history, idempotently")
    backfill.add_argument("--channel", required=True, metavar="ID", help="the channel's ID (C…)")
    backfill.add_argument(
        "--since", required=True, metavar="DATE", help="from this day on (YYYY-MM-DD, in digest.timezone)"
    )
    backfill.add_argument("--until", metavar="DATE", help="up to and including this day (default: now)")
    backfill.add_argument(
        "--confirm", action="store_true", help="post confirmations as live capture does (default: silent)"
    )


# ---------------------------------------------------------------------------------------------


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(config=args.config, team=args.team)


def _context(args: argparse.Namespace) -> AppContext:
    return build_context(_settings(args))


def _progress_printer(stream: TextIO, label: str, unit: str = "accounts") -> Callable[[str, int, int], None]:
    """Progress on large files: a line every few seconds on stderr (rewritten in place on a TTY)."""
    state = {"last": 0.0, "shown": False}
    started = time.monotonic()

    def report(phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        final = done >= total
        if now - started < 1.0 or (now - state["last"] < 2.0 and not final):
            return
        state["last"] = now
        state["shown"] = True
        verb = "read" if phase == "read" else "saved"
        shown = "lines" if phase == "read" else unit
        pct = 100 * done / total if total else 100
        end = "\r" if stream.isatty() and not final else "\n"
        stream.write(f"{label}: {verb} {done:,} of {total:,} {shown} ({pct:.0f}%){end}")
        stream.flush()

    return report


def _read_import_file(source: str) -> tuple[bytes, str]:
    """The bytes of an export to import (FILE, or - for standard input) and the name to report."""
    if source == "-":
        return sys.stdin.buffer.read(), "<stdin>"
    path = Path(source)
    if not path.is_file():
        raise UserError(f"{source}: no such file")
    if path.stat().st_size > MAX_IMPORT_BYTES:
        raise UserError(f"{source}: larger than 2 GB; split the export into smaller files")
    return path.read_bytes(), source


def cmd_accounts_import(args: argparse.Namespace) -> int:
    ctx = _context(args)
    data, source = _read_import_file(args.file)
    started = time.perf_counter()
    summary = import_accounts(
        ctx.session_factory,
        ctx.team_id,
        data,
        source,
        encoding=args.encoding,
        progress=_progress_printer(sys.stderr, Path(source).name),
    )
    elapsed = time.perf_counter() - started
    _print_import_summary(summary, elapsed)
    return EXIT_OK


def _print_import_summary(summary: ImportSummary, elapsed: float) -> None:
    layouts = {
        "salesforce": "Salesforce Account export",
        "hubspot": "HubSpot companies export",
        "canonical": "canonical columns",
    }
    print(
        f"Imported {summary.rows:,} rows from {summary.source} ({layouts[summary.layout]}) "
        f"in {elapsed:.1f} s: "
        f"{summary.created:,} new, {summary.updated:,} updated, {summary.unchanged:,} unchanged. "
        f"{summary.total_accounts:,} accounts in total."
    )
    if summary.merged_in_file:
        print(
            f"  {summary.merged_in_file:,} rows repeated an account already in the file; "
            "the later row was kept."
        )
    if summary.extra_fields:
        shown = ", ".join(summary.extra_fields[:15]) + (" ..." if len(summary.extra_fields) > 15 else "")
        print(f"  Extra fields criteria can use: {shown}")
    for warning in summary.warnings[:5]:
        print(f"  warning: {warning}", file=sys.stderr)
    if len(summary.warnings) > 5:
        print(f"  ... and {len(summary.warnings) - 5:,} more warnings", file=sys.stderr)


def cmd_outcomes_import(args: argparse.Namespace) -> int:
    from bot.render import outcomes_import_text
    from insights.outcomes_service import import_outcomes

    ctx = _context(args)
    data, source = _read_import_file(args.file)
    started = time.perf_counter()
    summary = import_outcomes(
        ctx.session_factory,
        ctx.team_id,
        data,
        source,
        icp=ctx.config.icp,
        taxonomy=ctx.config.taxonomy,
        encoding=args.encoding,
        progress=_progress_printer(sys.stderr, Path(source).name, unit="deals"),
    )
    sys.stdout.write(outcomes_import_text(summary, time.perf_counter() - started))
    for warning in summary.warnings[:5]:
        print(f"  warning: {warning}", file=sys.stderr)
    if len(summary.warnings) > 5:
        print(f"  ... and {len(summary.warnings) - 5:,} more warnings", file=sys.stderr)
    return EXIT_OK


def cmd_fit(args: argparse.Namespace) -> int:
    ctx = _context(args)
    query = " ".join(args.name)
    try:
        answer = fit_for(ctx.session_factory, ctx.team_id, query, ctx.config.icp)
    except AccountNotFoundError as exc:
        if args.json:
            print(json.dumps(not_found_json(exc), ensure_ascii=False))
        raise
    if args.json:
        print(json.dumps(fit_json(answer), ensure_ascii=False, default=str))
    else:
        sys.stdout.write(fit_text(answer))
    return EXIT_OK


def _read_lines(source: str | None) -> list[tuple[int, str]]:
    if source is None or source == "-":
        text = sys.stdin.read()
    else:
        path = Path(source)
        if not path.is_file():
            raise UserError(f"{source}: no such file")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            raise UserError(f"{source}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    return [(i, line) for i, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _message_text(line_no: int, line: str, source: str) -> str:
    stripped = line.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise UserError(f"{source} line {line_no}: not valid JSON ({exc.msg})") from None
        text = data.get("text") if isinstance(data, dict) else None
        if not isinstance(text, str):
            raise UserError(f"{source} line {line_no}: a JSON line needs a 'text' string")
        return text
    return line


def _read_labelled(source: str) -> list[LabelledMessage]:
    labelled = []
    for line_no, line in _read_lines(source):
        try:
            labelled.append(LabelledMessage.from_json(json.loads(line)))
        except (json.JSONDecodeError, ValueError, AttributeError) as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise UserError(f"{source} line {line_no}: {reason}") from None
    if not labelled:
        raise UserError(
            f"{source}: no labelled messages (JSON lines with text, kind, account, competitor, reasons)"
        )
    return labelled


def cmd_tag(args: argparse.Namespace) -> int:
    ctx = _context(args)
    if args.learn:
        examples = _read_labelled(args.learn)
        summary = record_corrections(
            ctx.session_factory, ctx.team_id, examples, ctx.config.taxonomy, source="import"
        )
        print(f"Kept {summary.added} labelled messages ({summary.total_examples} in this workspace).")
        print(
            "The tagger now knows:"
            if summary.learned
            else "Nothing new to learn yet: corrections teach a phrase once it recurs."
        )
        for line in summary.learned:
            print(f"  {line}")
        return EXIT_OK
    started = time.perf_counter()
    tagger = build_tagger(ctx.session_factory, ctx.team_id, ctx.config.taxonomy)
    built = time.perf_counter()
    with _long_lived_frozen():
        if args.eval:
            return _tag_eval(tagger, args.eval, as_json=args.json)
        source = args.file or "<stdin>"
        as_json = args.json or not sys.stdout.isatty()
        lines = _read_lines(args.file)
        read = time.perf_counter()
        for line_no, line in lines:
            result = tagger.tag(_message_text(line_no, line, source))
            if as_json:
                print(json.dumps(tag_json(result), ensure_ascii=False))
            else:
                sys.stdout.write(tag_text(result))
        sys.stdout.flush()
    if args.stats:
        seconds = time.perf_counter() - read
        print(
            f"Tagged {len(lines):,} messages in {seconds:.2f} s ({len(lines) / max(seconds, 1e-9):,.0f} a "
            f"second, one core), after {built - started:.2f} s loading {len(tagger.accounts):,} accounts.",
            file=sys.stderr,
        )
    return EXIT_OK


@contextmanager
def _long_lived_frozen() -> Iterator[None]:
    """Keep the garbage collector off what exists now (the tagger's index: a few hundred thousand
    objects for 100,000 accounts) while a batch is tagged, instead of walking it again and again;
    it costs `icp-bot tag` a tenth of its time otherwise. Undone after, for in-process callers."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _tag_eval(tagger: Tagger, source: str, *, as_json: bool) -> int:
    report = evaluate(tagger.tag, _read_labelled(source))
    if as_json:
        print(json.dumps(asdict(report), ensure_ascii=False))
    else:
        sys.stdout.write(eval_text(report, source))
    return EXIT_OK


def cmd_accounts_list(args: argparse.Namespace) -> int:
    ctx = _context(args)
    tiers = list(ctx.config.icp.tiers)
    if args.tier is not None and args.tier not in tiers:
        raise UserError(f"there is no tier '{args.tier}'; the tiers are {', '.join(tiers)}")
    if args.limit < 0:
        raise UserError("--limit must be 0 (all) or more")
    overview = score_all(
        ctx.session_factory, ctx.team_id, ctx.config.icp, tier=args.tier, limit=args.limit or None
    )
    if args.json:
        for s in overview.accounts:
            print(
                json.dumps(
                    {
                        "account": s.name,
                        "account_id": s.account_id,
                        "domain": s.domain,
                        "score": s.fit.score,
                        "tier": s.fit.tier,
                        "disqualified_by": s.fit.disqualified_by,
                        "unknown": s.fit.unknown,
                    },
                    ensure_ascii=False,
                )
            )
    else:
        sys.stdout.write(overview_text(overview, args.tier))
    return EXIT_OK


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from storage.engine import make_engine

    settings = _settings(args)
    engine = make_engine(settings.database_url)
    try:
        before, after = upgrade(engine)
    except DBAPIError as exc:
        raise database_error(settings.database_url, exc) from None
    finally:
        engine.dispose()
    where = redacted(settings.database_url)
    if before == after:
        print(f"{where} is up to date (revision {after}).")
    else:
        print(f"{where} upgraded from {before or 'empty'} to revision {after}.")
    return EXIT_OK


def cmd_init(args: argparse.Namespace) -> int:
    target = Path.cwd() / DEFAULT_CONFIG_NAME
    if target.exists() and not args.force:
        raise UserError(f"{target} exists already; edit it, or pass --force to replace it")
    shutil.copyfile(bundled_resource("icp.example.yml"), target)
    print(f"Wrote {target}. Edit the criteria, then run 'icp-bot config check'.")
    return EXIT_OK


def cmd_config_check(args: argparse.Namespace) -> int:
    path = Path(args.file) if args.file else _settings(args).config_path
    try:
        config = load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{exc.source} {problem}", file=sys.stderr)
        return EXIT_USER
    icp = config.icp
    print(
        f"{path}: OK — ICP {icp.version}, {len(icp.criteria)} criteria (total weight "
        f"{sum(c.weight for c in icp.criteria):g}), {len(icp.disqualifiers)} disqualifiers, "
        f"tiers {', '.join(f'{k}≥{v}' for k, v in icp.tiers.items())}"
    )
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.demo import run_demo

    return run_demo(Path(args.dir) if args.dir else None)


def cmd_run(args: argparse.Namespace) -> int:
    from bot.app import build_bot, choose_mode, run_socket_mode
    from bot.server import serve_http

    settings = _settings(args)
    mode = choose_mode(settings, "socket" if args.socket else "http" if args.http else None)
    port = args.port if args.port is not None else _port_from_env()
    if not 0 < port < 65536:
        raise UserError(f"--port must be between 1 and 65535, not {port}")
    logging.getLogger().setLevel(
        settings.log_level if settings.log_level in logging.getLevelNamesMapping() else "INFO"
    )
    bot = build_bot(settings, mode=mode)
    if mode == "socket":
        run_socket_mode(bot, settings.slack_app_token or "")
    else:
        serve_http(bot, host=args.host, port=port)
    return EXIT_OK


def _port_from_env() -> int:
    raw = os.environ.get("PORT") or "3000"
    if not raw.isdigit():
        raise UserError(f"PORT must be a number, not '{raw}'")
    return int(raw)


def cmd_notes_export(args: argparse.Namespace) -> int:
    from bot.render import note_json
    from insights.capture import iter_notes
    from insights.privacy import check_user_id, iter_person_notes

    user = check_user_id(args.user) if args.user else None  # a typo is told before the database opens
    ctx = _context(args)
    out = sys.stdout
    notes = (
        iter_person_notes(ctx.session_factory, ctx.team_id, user)
        if user
        else iter_notes(ctx.session_factory, ctx.team_id)
    )
    for note in notes:
        out.write(json.dumps(note_json(note), ensure_ascii=False) + "\n")
    out.flush()
    return EXIT_OK


def _counted(count: int, noun: str) -> str:
    """ "1 note", "2 notes", "1,200 notes" (nouns here take an -s)."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def cmd_notes_delete(args: argparse.Namespace) -> int:
    from insights.privacy import ERASED_USER, check_user_id, count_person_data, delete_person_data

    user = check_user_id(args.user)
    ctx = _context(args)
    if not args.yes:
        found = count_person_data(ctx.session_factory, ctx.team_id, user)
        if found.empty:
            print(f"Nothing is stored about {user} in workspace {ctx.team_id}.")
            return EXIT_OK
        print(
            f"{user}: {_counted(found.notes, 'note')}, {_counted(found.examples, 'tagging example')} and "
            f"{_counted(found.inbox_events, 'inbox event')} would be deleted, and "
            f"{_counted(found.corrected_notes, 'note')} they corrected would name '{ERASED_USER}' instead. "
            "Nothing was deleted: run again with --yes to delete."
        )
        return EXIT_OK
    done = delete_person_data(ctx.session_factory, ctx.team_id, user)
    log.info("deleted the data of %s in %s: %s", user, ctx.team_id, done)
    print(
        f"Deleted {_counted(done.notes, 'note')}, {_counted(done.examples, 'tagging example')} and "
        f"{_counted(done.inbox_events, 'inbox event')} of {user}; "
        f"{_counted(done.corrected_notes, 'note')} they corrected now name '{ERASED_USER}' instead."
    )
    return EXIT_OK


def cmd_notes_purge(args: argparse.Namespace) -> int:
    from insights.privacy import apply_retention

    ctx = _context(args)
    months = args.months if args.months is not None else ctx.config.retention.notes_months
    if months is None:
        raise UserError(
            "retention.notes_months is not set in icp.yml, so notes are kept for good; "
            "set it, or pass --months N"
        )
    if months < 1:
        raise UserError(f"--months must be 1 or more, not {months}")
    result = apply_retention(
        ctx.session_factory, ctx.team_id, datetime.now(UTC), months, dry_run=args.dry_run
    )
    verb = "would be deleted" if args.dry_run else "deleted"
    print(
        f"Posted before {result.cutoff:%Y-%m-%d %H:%M} UTC ({_counted(months, 'month')} ago): "
        f"{_counted(result.notes, 'note')} and {_counted(result.examples, 'correction')} {verb}."
    )
    return EXIT_OK


def _as_of(text: str | None, settings: Any) -> datetime:
    """--as-of DATE: that day at the digest time, in the digest timezone; default now."""
    zone = ZoneInfo(settings.timezone)
    if not text:
        return datetime.now(UTC)
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise UserError(f"--as-of must be a date like 2026-11-23, not '{text}'") from None
    return datetime(day.year, day.month, day.day, settings.hour, settings.minute, tzinfo=zone)


def cmd_digest(args: argparse.Namespace) -> int:
    from bot.chart import digest_chart_png
    from bot.digest_view import digest_html, digest_json, digest_text
    from insights.digest_service import build_digest

    ctx = _context(args)
    as_of = _as_of(args.as_of, ctx.config.digest)
    if args.post:
        return _post_digest(ctx, as_of)
    digest = build_digest(ctx.session_factory, ctx.team_id, ctx.config, as_of)
    chart = digest_chart_png(digest) if (args.chart or args.html) else None
    if args.chart and chart is not None:
        Path(args.chart).write_bytes(chart)
    if args.html:
        Path(args.html).write_text(digest_html(digest, chart), encoding="utf-8")
    if args.json:
        print(json.dumps(digest_json(digest), ensure_ascii=False, indent=2))
    else:
        sys.stdout.write(digest_text(digest))
    for label, path in (("chart", args.chart), ("HTML", args.html)):
        if path:
            print(f"Wrote the {label} to {Path(path).resolve()}", file=sys.stderr)
    return EXIT_OK


def _post_digest(ctx: AppContext, as_of: datetime) -> int:
    from bot.app import check_slack_settings, make_web_client
    from bot.digest_jobs import DigestPoster

    check_slack_settings(ctx.settings, "post")
    result = DigestPoster(ctx, make_web_client(ctx.settings), trigger="cli").post(as_of=as_of)
    week = f"the week of {result.period.start.isoformat()}" if result.period else "this week"
    messages = {
        "posted": f"Posted the digest for {week} to {result.channel} (ts {result.message_ts}).",
        "recovered": f"The digest for {week} was already in {result.channel}; recorded it as posted.",
        "already_posted": f"The digest for {week} was already posted to {result.channel}; nothing sent.",
        "in_progress": f"The digest for {week} is being posted right now by another process; nothing sent.",
        "quiet": f"Nothing happened in {week} and digest.quiet_week is 'skip'; nothing sent.",
    }
    if result.state in messages:
        print(messages[result.state])
        return EXIT_OK
    raise UserError(f"could not post the digest for {week}: {result.error}")


def cmd_schedule(args: argparse.Namespace) -> int:
    from bot.digest_jobs import next_runs

    config = load_config(_settings(args).config_path)
    settings = config.digest
    if not settings.channel:
        print("digest.channel is not set in icp.yml: no digest is scheduled.")
        return EXIT_OK
    print(f"The digest posts to {settings.channel} every {settings.day.capitalize()} at {settings.time} "
          f"{settings.timezone}. Next five:")  # fmt: skip
    for run in next_runs(settings, datetime.now(UTC)):
        utc = run.astimezone(UTC)
        print(f"  {run:%a %Y-%m-%d %H:%M %Z}  =  {utc:%a %Y-%m-%d %H:%M} UTC")
    return EXIT_OK


def _backfill_day(text: str, option: str, zone: ZoneInfo) -> datetime:
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise UserError(f"{option} must be a date like 2026-11-01, not '{text}'") from None
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def cmd_backfill(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from bot.app import check_slack_settings, make_web_client
    from bot.history import HistorySummary, backfill, cli_services

    channel = args.channel.strip()
    if not re.fullmatch(r"[CG][A-Z0-9]{2,30}", channel):
        raise UserError(
            f"--channel must be a channel ID like C0123ABCDE (channel details, About, at the bottom), "
            f"not '{args.channel}'"
        )
    ctx = _context(args)
    zone = ZoneInfo(ctx.config.digest.timezone)
    since = _backfill_day(args.since, "--since", zone)
    until = _backfill_day(args.until, "--until", zone) + timedelta(days=1) if args.until else None
    if since > datetime.now(UTC):
        raise UserError(f"--since {args.since} is in the future")
    if until is not None and until <= since:
        raise UserError(f"--until {args.until} is before --since {args.since}")
    check_slack_settings(ctx.settings, "post")
    services = cli_services(ctx, make_web_client(ctx.settings))

    def progress(phase: str, summary: HistorySummary) -> None:
        if phase == "read":
            pages = f"{summary.pages} page{'s' * (summary.pages != 1)}"
            line = f"{channel}: read {pages}, {summary.messages:,} messages"
        else:
            line = (f"{channel}: processed {summary.processed:,} of {summary.to_process:,} messages, "
                    f"{summary.captured:,} outcomes captured, {summary.known:,} already known")  # fmt: skip
        print(line, file=sys.stderr, flush=True)

    summary = backfill(services, channel, since=since, until=until, confirm=args.confirm, progress=progress)
    if summary.stopped and not summary.messages:
        raise UserError(f"cannot read the history of {summary.stopped[0]}")
    print(f"Backfilled {channel} from {since.date().isoformat()}: {summary.line()}.")
    if summary.stopped:
        raise UserError("stopped before the end; run the same command again to continue (it is idempotent)")
    return EXIT_OK


COMMANDS: dict[tuple[str, str | None], Callable[[argparse.Namespace], int]] = {
    ("digest", None): cmd_digest,
    ("schedule", None): cmd_schedule,
    ("backfill", None): cmd_backfill,
    ("run", None): cmd_run,
    ("notes", "export"): cmd_notes_export,
    ("notes", "delete"): cmd_notes_delete,
    ("notes", "purge"): cmd_notes_purge,
    ("demo", None): cmd_demo,
    ("init", None): cmd_init,
    ("config", "check"): cmd_config_check,
    ("db", "upgrade"): cmd_db_upgrade,
    ("accounts", "import"): cmd_accounts_import,
    ("accounts", "list"): cmd_accounts_list,
    ("outcomes", "import"): cmd_outcomes_import,
    ("fit", None): cmd_fit,
    ("tag", None): cmd_tag,
}


def _configure_logging() -> None:
    level = os.environ.get("ICP_BOT_LOG_LEVEL", "WARNING").upper()
    logging.basicConfig(
        level=level if level in logging.getLevelNamesMapping() else "WARNING",
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    action = getattr(args, f"{args.command}_command", None) if args.command else None
    handler = COMMANDS.get((args.command, action))
    if handler is None:
        # A group without its action ("icp-bot accounts"): show that group's help.
        parser.parse_args([*([args.command] if args.command else []), "--help"])
        return EXIT_USAGE
    _configure_logging()
    try:
        return handler(args)
    except (
        UserError,
        ConfigError,
        AccountsFileError,
        DatabaseURLError,
        SchemaOutOfDateError,
    ) as exc:
        print(f"icp-bot: {exc}", file=sys.stderr)
        return EXIT_USER
    except DBAPIError as exc:
        print(f"icp-bot: {database_error(_settings(args).database_url, exc)}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        print(
            "icp-bot: interrupted; nothing was half-written (imports run in one transaction)",
            file=sys.stderr,
        )
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # a bug, not bad input: say so briefly, log the traceback at DEBUG
        log.debug("unexpected error", exc_info=True)
        print(
            f"icp-bot: internal error ({type(exc).__name__}: {exc}); rerun with ICP_BOT_LOG_LEVEL=DEBUG "
            "for details and report it",
            file=sys.stderr,
        )
        return EXIT_USER

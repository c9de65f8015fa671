"""`icp-bot demo`: the product end to end on this machine, with nothing configured.

A throwaway SQLite file, the bundled example ICP and sample accounts; then the checks a RevOps
person would run first. Later issues add the Slack stand-in, captured outcomes and the digest.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from bot.context import LOCAL_TEAM
from bot.render import fit_text, overview_text, tag_text
from bot.settings import bundled_resource
from insights.config import load_config
from insights.errors import AccountNotFoundError
from insights.service import build_tagger, fit_for, import_accounts, score_all
from storage.engine import make_engine, make_session_factory
from storage.schema import upgrade

DEMO_QUERIES = (
    ("An exact name, typed loosely", "AcmeCorp"),
    ("A domain", "fabrikam.com"),
    ("A short form", "Woodgrove"),
    ("A typo", "Contsoo"),
    ("A name that is not in the CRM", "Initech"),
    (
        "A prospect checked ad hoc",
        "Newco industry=Software employees=300 country=Finland annual_revenue=45M",
    ),
)


DEMO_MESSAGES = (
    "CW Fabrikam 85k ACV, beat Gong on ease of use :tada:",
    "#churn Tailspin gave notice, champion left",
    "we lost contoso. too small for us honestly",
    "Woodgrove CU rollout failed the security sign-off",
    "Acme Corp renewed early and added 200 seats",
    "meeting Northwind next Tuesday, who's joining?",
    "what's our win rate against Clari this quarter?",
)


def _rule(title: str) -> None:
    print(f"\n── {title} " + "─" * max(0, 72 - len(title)))


def run_demo(folder: Path | None = None) -> int:
    workdir = folder or Path(tempfile.mkdtemp(prefix="icp-bot-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    db_path = workdir / "demo.db"
    for stale in (db_path, db_path.with_name("demo.db-wal"), db_path.with_name("demo.db-shm")):
        stale.unlink(missing_ok=True)
    config_path = bundled_resource("icp.example.yml")
    accounts_path = bundled_resource("sample_accounts.csv")

    config = load_config(config_path)
    engine = make_engine(f"sqlite:///{db_path}")
    upgrade(engine)
    session_factory = make_session_factory(engine)

    print("icp-bot demo — no Slack account needed. Everything below ran on this machine.")
    _rule("1. Import CRM accounts")
    started = time.perf_counter()
    summary = import_accounts(session_factory, LOCAL_TEAM, accounts_path.read_bytes(), accounts_path.name)
    print(
        f"$ icp-bot accounts import {accounts_path.name}\n"
        f"Imported {summary.rows} accounts ({summary.layout} columns) "
        f"in {time.perf_counter() - started:.2f} s; "
        f"extra fields kept for criteria: {', '.join(summary.extra_fields)}."
    )
    again = import_accounts(session_factory, LOCAL_TEAM, accounts_path.read_bytes(), accounts_path.name)
    print(
        f"Importing the same file again: {again.created} new, {again.updated} updated, "
        f"{again.unchanged} unchanged."
    )

    _rule(f"2. The ICP ({config.icp.version}) across all accounts")
    print("$ icp-bot accounts list --limit 8")
    overview = score_all(session_factory, LOCAL_TEAM, config.icp, limit=8)
    sys.stdout.write(overview_text(overview, None))

    _rule("3. Fit checks — what /icp-fit answers in Slack")
    for title, query in DEMO_QUERIES:
        print(f"\n# {title}\n$ icp-bot fit {query if ' ' not in query else repr(query)}")
        try:
            sys.stdout.write(fit_text(fit_for(session_factory, LOCAL_TEAM, query, config.icp)))
        except AccountNotFoundError as exc:
            print(f"icp-bot: {exc}")

    _rule("4. Reading the deals channel — what capture will tag")
    tagger = build_tagger(session_factory, LOCAL_TEAM, config.taxonomy)
    print("$ icp-bot tag messages.txt")
    for message in DEMO_MESSAGES:
        sys.stdout.write(tag_text(tagger.tag(message)))

    engine.dispose()
    _rule("Where things are")
    print(f"Demo database: {db_path}")
    print(f"ICP used:      {config_path}  (copy it with 'icp-bot init' and edit)")
    print(f"Sample CRM:    {accounts_path}")
    print("Next: import your own export with 'icp-bot accounts import FILE.csv', then 'icp-bot fit NAME'.")
    return 0

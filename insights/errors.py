"""Errors a user can fix. Their `str()` is the one-line message the CLI and the bot show."""

from __future__ import annotations

from collections.abc import Sequence

from insights.matching import Suggestion


class UserError(Exception):
    """Bad input or setup that the person can correct; never shown with a traceback."""


class RetryLater(Exception):
    """The work cannot be finished yet (another handler holds a claim); try the event again later."""


class QueryError(UserError):
    """The text given to the fit check cannot be used (empty, too long, only control characters)."""


class NoAccountsError(UserError):
    def __init__(self) -> None:
        super().__init__(
            "no accounts imported yet: run 'icp-bot accounts import FILE.csv' "
            "(or 'icp-bot demo' to try the bundled sample)"
        )


class AccountNotFoundError(UserError):
    """No account, or several equally good ones, fit the query; suggestions say what might."""

    def __init__(self, query: str, suggestions: Sequence[Suggestion], *, ambiguous: bool = False) -> None:
        self.query = query
        self.suggestions = list(suggestions)
        self.ambiguous = ambiguous
        shown = query if len(query) <= 60 else query[:57] + "..."
        if ambiguous:
            names = "; ".join(_describe(s) for s in self.suggestions)
            message = f"'{shown}' matches several accounts: {names}. Use the full name or the domain"
        elif self.suggestions:
            names = ", ".join(s.name for s in self.suggestions)
            message = f"no account matches '{shown}'. Did you mean: {names}?"
        else:
            message = (
                f"no account matches '{shown}'. Check the spelling, try the domain, or check a "
                'prospect ad hoc: "Newco industry=Software employees=300 country=Finland"'
            )
        super().__init__(message)

    @property
    def code(self) -> str:
        return "ambiguous_account" if self.ambiguous else "unknown_account"


def _describe(s: Suggestion) -> str:
    detail = ", ".join(x for x in (s.domain, s.country) if x)
    return f"{s.name} ({detail})" if detail else s.name

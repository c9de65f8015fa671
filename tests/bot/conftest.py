"""Black-box fixtures: one running bot per mode per test module (starting one takes about a second)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.bot.blackbox import RunningBot


@pytest.fixture(scope="module", params=["http", "socket"])
def running_bot(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningBot]:
    mode = request.param
    with RunningBot.start(tmp_path_factory.mktemp(f"bot-{mode}"), mode=mode) as bot:
        yield bot

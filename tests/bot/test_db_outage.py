"""The database goes away for a minute: the bot keeps acknowledging Slack, holds what arrives,
and captures all of it once the database is back.

PostgreSQL is reached through a TCP proxy the test controls, so the outage is real for the bot
(refused connections, pooled connections cut) without stopping the shared server.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from storage.engine import normalize_database_url
from tests.bot.blackbox import RunningBot, db_upgrade
from tests.conftest import PostgresSchema

pytestmark = pytest.mark.postgres
OUTAGE_SECONDS = 60.0
DEALS = "C0DEALS"


class TcpProxy:
    """Forwards 127.0.0.1:<port> to the database; `down()` refuses and cuts every connection."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = int(probe.getsockname()[1])
        probe.close()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):  # wakes the thread blocked in accept()
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                connection.close()
            self._connections.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def proxied_bot(tmp_path: Path) -> Iterator[tuple[RunningBot, TcpProxy]]:
    schema = PostgresSchema()
    try:
        db_upgrade(schema.schema_url)
        real = normalize_database_url(schema.schema_url)
        proxy = TcpProxy((real.host or "127.0.0.1", real.port or 5432))
        proxy.up()
        via_proxy = make_url(real).set(port=proxy.port).render_as_string(hide_password=False)
        with RunningBot.start(tmp_path, mode="http", database_url=via_proxy) as bot:
            yield bot, proxy
        proxy.down()
    finally:
        schema.drop()


def _health(bot: RunningBot) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{bot.port}/healthz", timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_a_minute_without_the_database_loses_nothing(proxied_bot: tuple[RunningBot, TcpProxy]) -> None:
    bot, proxy = proxied_bot
    w = bot.workspace
    before = bot.next_ts()
    assert (
        bot.sender.event(w.event_callback(w.message(DEALS, "Lost Contoso to Gong on price", before))).status
        == 200
    )
    bot.wait_for(lambda: bot.note_for(before), what="the note before the outage")

    proxy.down()
    started = time.monotonic()
    during: list[str] = []
    statuses: list[int] = []
    while time.monotonic() - started < OUTAGE_SECONDS:
        ts = bot.next_ts()
        text = f"Closed won Fabrikam, beat Clari on ease of use (deal {len(during) + 1})"
        statuses.append(bot.sender.event(w.event_callback(w.message(DEALS, text, ts))).status)
        during.append(ts)
        time.sleep(OUTAGE_SECONDS / 12)
    health_during = _health(bot)
    assert "the database is unavailable" in bot.log()
    proxy.up()

    assert statuses == [200] * len(during)  # Slack saw every event acknowledged
    assert health_during == 503
    bot.wait_for(lambda: _health(bot) == 200, what="the health check after the outage")

    def captured() -> list[str] | None:
        stamps = {n["ts"] for n in bot.notes() if n["channel"] == DEALS}
        found = [ts for ts in during if ts in stamps]
        return found if len(found) == len(during) else None

    bot.wait_for(captured, timeout=60, what="every outcome posted during the outage")
    notes = [n for n in bot.notes() if n["ts"] in set(during)]
    assert len(notes) == len(during)  # each once

    def confirmed() -> bool:
        return set(during) <= {m.get("thread_ts") for m in bot.slack.messages_in(DEALS)}

    bot.wait_for(confirmed, what="a confirmation for each")
    assert bot.process.poll() is None

"""The webhook delivery worker: turn new session events into deliveries and send them."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connection

from sessions_app.services import webhooks
from sessions_project.commands import positive_int

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Deliver session events to the registered webhook endpoints: read the event log, create a "
        "delivery per wanted event and endpoint, POST the due ones signed, retry failures with backoff. "
        "Runs until SIGTERM or SIGINT (finishing the request in flight), or one pass with --once. Several "
        "may run at once, on one host or several: each delivery is created once and sent by one worker."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--interval",
            type=positive_int,
            default=2,
            help="Seconds to wait after a pass that found nothing to do (default 2).",
        )
        parser.add_argument("--once", action="store_true", help="One pass (scan, send what is due), then exit.")

    def handle(self, *args: Any, interval: int, once: bool, verbosity: int, **options: Any) -> None:
        stop = threading.Event()

        def request_stop(signum: int, frame: FrameType | None) -> None:
            stop.set()

        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            while not stop.is_set():
                try:
                    done = webhooks.worker_pass(should_stop=stop.is_set)
                except DatabaseError as exc:
                    if once:
                        raise CommandError(f"Could not deliver webhooks: {exc}") from exc
                    # The database went away: drop the connection, wait, try again.
                    self.stderr.write(f"database error, retrying in {interval}s: {exc}")
                    connection.close()
                    stop.wait(interval)
                    continue
                except Exception:
                    if once:
                        raise
                    # A bug must not stop every delivery: the delivery it was on is leased, so
                    # it comes back after its lease rather than in a tight loop.
                    logger.exception("webhook worker pass failed; retrying in %ss", interval)
                    stop.wait(interval)
                    continue
                if verbosity >= 1 and (done.created or done.sent or once):
                    self.stdout.write(
                        f"{done.created} delivery(ies) created, {done.sent} sent, {done.succeeded} succeeded"
                    )
                if once:
                    break
                if not done.sent:
                    stop.wait(interval)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if verbosity >= 1 and not once:
            self.stdout.write(self.style.SUCCESS("Stopped."))

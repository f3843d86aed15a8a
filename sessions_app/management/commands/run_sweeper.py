"""The sweeper as a long-running process: `close_due_sessions` (and the expiries) every few
seconds until SIGTERM or SIGINT."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError, close_old_connections

from sessions_app.services import lifecycle
from sessions_project import metrics
from sessions_project.commands import positive_int
from sessions_project.logs import get_logger


class Command(BaseCommand):
    help = (
        "Run the sweeper in a loop: every --interval seconds, close every session past its "
        "closesAt or idle deadline and apply the expiries of invites and reservations, as "
        "close_due_sessions does (the same service function). SIGTERM or SIGINT stops it once "
        "the current pass is finished (exit status 0). Safe to run on several hosts at once: a "
        "due session is closed by exactly one of them. A pass that fails (database unavailable) "
        "is logged and tried again at the next interval. Logs one line per pass that closed something."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--interval", type=positive_int, default=5, help="Seconds between the start of two passes (default 5)."
        )
        parser.add_argument(
            "--batch-size", type=positive_int, default=500, help="Sessions closed per transaction (default 500)."
        )
        parser.add_argument(
            "--metrics-port",
            type=positive_int,
            default=None,
            help="Serve this process's Prometheus metrics (sweeper runs, what they closed) on this port, "
            "for a sweeper on a host of its own. Off by default.",
        )
        parser.add_argument(
            "--metrics-address", default="127.0.0.1", help="Address for --metrics-port (default 127.0.0.1)."
        )

    def handle(
        self,
        *args: Any,
        interval: int,
        batch_size: int,
        metrics_port: int | None,
        metrics_address: str,
        **options: Any,
    ) -> None:
        logger = self.logger = get_logger("sessions.sweeper")
        if metrics_port is not None:
            metrics.serve_metrics(metrics_port, metrics_address)
        stop = threading.Event()

        def request_stop(signum: int, frame: FrameType | None) -> None:
            # Only a flag: the pass under way runs to its end (each batch is one transaction
            # anyway), and the wait between passes ends at once.
            logger.info("sweeper stopping", signal=signal.Signals(signum).name)
            stop.set()

        previous = {number: signal.signal(number, request_stop) for number in (signal.SIGTERM, signal.SIGINT)}
        logger.info("sweeper started", interval=interval, batch_size=batch_size)
        try:
            while not stop.is_set():
                self.sweep(batch_size)
                stop.wait(interval)
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
        logger.info("sweeper stopped")

    def sweep(self, batch_size: int) -> None:
        # A connection the database dropped, or older than CONN_MAX_AGE, is replaced, as a
        # request's would be.
        close_old_connections()
        try:
            closed = lifecycle.close_due_sessions(batch_size=batch_size)
        except DatabaseError:
            self.logger.warning("sweeper pass failed", exc_info=True)
            return
        if closed:
            self.logger.info(
                "sweeper pass", closed=len(closed), sessions=[str(session.uid) for session in closed[:100]]
            )
        else:
            self.logger.debug("sweeper pass", closed=0)

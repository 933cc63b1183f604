"""`/metrics` in the Prometheus text format (prometheus_client), read from the store at each scrape.

Everything comes from what the store keeps (calls, traces, actions, the outbox), so the figures
survive restarts and the web reads the store only. Labels are bounded sets of code words: an
outcome, a stage, a transfer result, a route, a state; never a number, a name or a text.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry

from agent.store import reports, rows
from agent.store.db import Store, connect

ANSWER_BUCKETS_S: Final = (0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0)
TURN_BUCKETS_S: Final = (0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.5, 2.0, 3.0, 5.0)
STAGE_BUDGETS_MS: Final = {"asr_final": 300.0, "policy_done": 200.0, "reply_first_frame": 800.0}
"""A turn's stage (ms after the end of the utterance) over this is a budget overrun."""


class StoreCollector(Collector):
    def __init__(self, store_path: Path) -> None:
        self.store_path = store_path

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        if not self.store_path.exists():
            return
        conn = connect(self.store_path, readonly=True)
        try:
            yield from _families(conn)
        finally:
            conn.close()


def _families(conn: sqlite3.Connection) -> Iterator[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
    calls = CounterMetricFamily("standardiste_calls", "Calls answered, by how they ended", labels=["outcome"])
    for outcome, n in reports.outcomes(conn):
        calls.add_metric([outcome], n)
    yield calls

    answers: list[float] = []
    turns: list[float] = []
    overruns: Counter[str] = Counter()
    for _call, marks in rows.traces(conn):
        at = {m["event"]: m["ms"] for m in marks if "event" in m}
        if "answered" in at:
            answers.append(at["answered"] / 1000)
        end = None
        for m in marks:
            if m.get("event") == "end_of_utterance":
                end = m["ms"]
            elif end is not None and m.get("event") in STAGE_BUDGETS_MS:
                if m["ms"] - end > STAGE_BUDGETS_MS[m["event"]]:
                    overruns[m["event"]] += 1
                if m["event"] == "reply_first_frame":
                    turns.append((m["ms"] - end) / 1000)
                    end = None
    yield _histogram("standardiste_answer_seconds", "From the call's arrival to its answer", answers,
                     ANSWER_BUCKETS_S)
    yield _histogram("standardiste_turn_seconds", "From the end of the caller's utterance to the first reply frame",
                     turns, TURN_BUCKETS_S)
    over = CounterMetricFamily("standardiste_stage_budget_overruns", "Turn stages over their budget",
                               labels=["stage"])
    for stage in STAGE_BUDGETS_MS:
        over.add_metric([stage], overruns[stage])
    yield over

    errors = CounterMetricFamily("standardiste_engine_errors", "Engine failures during calls", labels=["stage"])
    for stage, n in reports.engine_failures(conn):
        errors.add_metric([stage], n)
    yield errors

    transfers = CounterMetricFamily("standardiste_transfers", "Transfers by their last step's result",
                                    labels=["result"])
    for result, n in reports.transfer_results(conn):
        transfers.add_metric([result], n)
    yield transfers

    sms = GaugeMetricFamily("standardiste_outbox_messages", "Outbox messages (SMS and calendar writes) by route "
                            "and state", labels=["route", "state"])
    depth = 0
    for route, state, n in reports.outbox_states(conn):
        sms.add_metric([route, state], n)
        depth += n if state in ("pending", "sending") else 0
    yield sms
    yield GaugeMetricFamily("standardiste_outbox_depth", "Messages not yet sent nor given up", value=depth)


def _histogram(name: str, doc: str, values: list[float], buckets: tuple[float, ...]) -> HistogramMetricFamily:
    counts = [sum(1 for v in values if v <= b) for b in buckets]
    return HistogramMetricFamily(name, doc, buckets=[*zip((str(b) for b in buckets), counts, strict=True),
                                                     ("+Inf", len(values))], sum_value=sum(values))


class RuntimeCollector(Collector):
    """What only the running service knows: its asyncio tasks and threads (a leak shows as a climb,
    `make soak`), and whether its store can be written. The process's fds and memory come from
    prometheus_client's process collector (`process_*`)."""

    def __init__(self, writer: Store | None, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.writer = writer
        self.loop = loop
        """The calls' event loop (the dashboard runs on a loop of its own, in its own thread)."""

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        try:
            tasks = len(asyncio.all_tasks(self.loop or asyncio.get_running_loop()))
        except RuntimeError:  # scraped outside any event loop: no tasks to count
            tasks = 0
        yield GaugeMetricFamily("standardiste_asyncio_tasks", "asyncio tasks alive in the service", value=tasks)
        yield GaugeMetricFamily("standardiste_threads", "Threads alive in the service", value=threading.active_count())
        if self.writer is not None:
            yield GaugeMetricFamily("standardiste_store_writable", "1 while the store takes writes; 0 while the "
                                    "disk refuses them (full, read-only): calls are voice messages",
                                    value=0 if self.writer.failing else 1)
            yield CounterMetricFamily("standardiste_store_write_errors", "Store writes that failed",
                                      value=self.writer.write_errors)


def registry(store_path: Path, writer: Store | None = None,
             loop: asyncio.AbstractEventLoop | None = None) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(StoreCollector(store_path))
    reg.register(RuntimeCollector(writer, loop))
    ProcessCollector(registry=reg)
    return reg

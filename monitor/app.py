"""Wiring: builds every part from the config and runs them in one TaskGroup.

Shutdown order (DESIGN decision 5): stop scheduling; let probe runs in flight finish
(bounded by their timeouts); drain the queue and flush to the store; close the probes'
clients, the server and the store. Nothing measured is lost.

~700 lines: the one place every part meets (construction, start, the side loops and
shutdown); each part's own work lives in its module.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from monitor.alerting.dispatcher import Dispatcher
from monitor.alerting.engine import Alerter
from monitor.alerting.notifiers import build_notifiers
from monitor.alerting.outbox import NoticeOutbox
from monitor.clock import Clock, SystemClock
from monitor.clockwatch import ClockWatch
from monitor.cluster import Cluster
from monitor.collector import Collector
from monitor.config import Config
from monitor.config_paths import store_identity
from monitor.errors import ConfigError, StoreError
from monitor.evidence.service import DigestService
from monitor.incidents import IncidentBook, IncidentDetector, StatusEvent, UserNotices
from monitor.ingest.canary import canary_runners
from monitor.ingest.intake import Intake
from monitor.ingest.mqtt import MqttEventSubscriber
from monitor.leader import Leadership
from monitor.ledger.compaction import compact_days, recompact_days
from monitor.ledger.locations import locations_view
from monitor.ledger.windows import Ledger
from monitor.maintenance import MaintenanceService
from monitor.metrics import Metrics, SlaCollector
from monitor.report.model import ReportError
from monitor.report.service import ReportsService
from monitor.results import QueueItem
from monitor.scheduler import Job, Scheduler
from monitor.sla.batch import BatchBook
from monitor.sla.eligibility import Eligibility
from monitor.sla.figures import ObjectiveFigures, all_figures, batch_figures
from monitor.sla.objectives import grace_minutes, location_series, probe_thresholds
from monitor.store import SharedMinutes, Store, store_at
from monitor.store.records import Alert, ConfigUse, RunMark, RunMarks
from monitor.store.spool import Spool, replay
from monitor.timeparse import iso_utc
from monitor.web.ingest import IngestApi
from monitor.web.server import Health, Server
from monitor.web.status import StatusSite
from probes.registry import ProbeResources, build_probe

log = logging.getLogger(__name__)

#: Minute rollups are kept this long (13 months of monthly reports, with margin).
ROLLUP_RETENTION_DAYS = 400
#: How often the archive is read for new report corrections (``report correct``).
_CORRECTIONS_EVERY_S = 60.0
_PRUNE_EVERY_S = 3600.0
#: How often the housekeeping loop records that the daemon is alive.
HEARTBEAT_S = 1.0
#: How far back days are compacted: what a restart reads (30 days, two calendar months).
_COMPACT_DAYS_BACK = 64


class Daemon:
    """One sla-monitor daemon.

    Args:
        config: the validated config.
        clock: time source (a fake one in tests).
        store: the store; by default a SqliteStore at ``config.storage.path``.
        base_dir: folder relative store paths are resolved against (default: the cwd).
    """

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock | None = None,
        store: Store | None = None,
        base_dir: Path | None = None,
        allow_degraded_start: bool = False,
        config_file: Path | None = None,
    ) -> None:
        self.config = config
        #: The file the config was read from: recorded in the store at start (its text
        #: once per SHA-256), so an evidence pack shows the month's config changes.
        self.config_file = config_file
        #: Start even when the store takes no write (results wait in memory and the spool).
        self.allow_degraded_start = allow_degraded_start
        self._marks_failing: set[RunMark] = set()  # run marks whose write failed (said once)
        self.clock = clock or SystemClock()
        # Several daemons on one database keep their run marks apart, and each counts
        # only its own location's results when it finds it was killed.
        shared = config.storage.url is not None
        self._run_key = config.instance.name if shared else ""
        self._own_location = config.instance.location if shared else ""
        path = Path(config.storage.path)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        #: Where the store is, for the children that open it too (None: given in memory).
        location = None
        if store is None:
            location = config.storage.url or str(
                path if config.storage.path == ":memory:" else path.resolve()
            )
        self.store: Store = store if store is not None else store_at(location or "")
        # The monthly report, computed in a child process that opens the same store.
        # Pruning and archiving trust the wall clock only while it keeps pace.
        self.clock_watch = ClockWatch(self.clock)
        self.reports = ReportsService(
            config,
            location,
            self.clock,
            base_dir=base_dir,
            steady=self._may_archive,
        )
        # Each settled day's raw results digested into a hash chain, by a child process.
        self.digests = DigestService(
            config, location, self.clock.now, self._may_archive, self.store.digests
        )
        self.metrics = Metrics(config)
        self.metrics.leader.set(0 if shared else 1)  # alone on its store, it leads
        # A minute is sealed once every result that started in it has surely arrived.
        grace = grace_minutes(config)
        self.eligibility = Eligibility(config)
        self.ledger = Ledger(config, self.eligibility, grace_minutes=grace, listener=self.metrics)
        self.queue: asyncio.Queue[QueueItem] = asyncio.Queue(config.scheduler.queue_size)
        # Beside the store file; with a database, in the file's folder.
        default_spool = (
            f"{path}.spool" if config.storage.url is None else path.parent / "sla-monitor.spool"
        )
        spool_path = Path(config.storage.spool_path or default_spool)
        if not spool_path.is_absolute() and base_dir is not None:
            spool_path = base_dir / spool_path
        in_memory = config.storage.path == ":memory:"
        self.spool = None if in_memory else Spool(spool_path, config.storage.spool_max_bytes)
        self.collector = Collector(
            self.queue,
            self.ledger,
            self.store,
            self.metrics,
            self.clock,
            batch_size=config.storage.batch_size,
            flush_interval_s=config.storage.flush_interval,
            spool=self.spool,
            max_staged=config.storage.max_staged,
        )
        if config.shared_minutes:
            # Several locations: each minute decided once, by their quorum, in the store.
            if not isinstance(self.store, SharedMinutes):
                raise ConfigError(
                    "locations.names: several locations decide minutes through a PostgreSQL"
                    " store (storage.url)"
                )
            self.store.share_minutes()
            self.ledger.share(self.store, self.collector.written_through)
            self.collector.take_late = self.store.take_late
        self.metrics.registry.register(SlaCollector(self.figures, self.maintenance_active))
        self.dispatcher = Dispatcher(
            build_notifiers(config.alerting.notifiers), self.metrics.registry
        )
        # Notices are stored before they are sent (monitor.alerting.outbox); one flush at
        # a time, so an alert's notice is never handed over before its state is saved.
        self.outbox = NoticeOutbox(self.store, self.dispatcher, self.clock)
        self._outbox_lock = asyncio.Lock()
        self.alerter = Alerter(
            config,
            self.ledger,
            self.store,
            notify=self.outbox.notify,
            in_maintenance=lambda service, ts: (
                self.eligibility.maintenance_at(service, ts) is not None
            ),
        )
        # The status page: incidents for users, and who among them is told of what.
        # The users' notices (maintenance announced, incidents) go through the outbox too:
        # stored, then sent, marked; the evidence pack shows them as published.
        self.notices = UserNotices(config, self.outbox.notify)
        self.incidents = IncidentBook(self.store, self.clock, publish=self.notices.publish)
        self.incident_detector = IncidentDetector(config, self.ledger, self.incidents)
        # One path for maintenance from the API and the CLI: stored, reloaded, announced.
        self.maintenance = MaintenanceService(
            config,
            self.store,
            self.clock,
            eligibility=self.eligibility,
            publish=self.publish,
            on_change=self.apply_exclusions,
        )
        #: The batches handed in and processed (events of kind batch), for the batch
        #: objectives; fed by the collector as their events are stored.
        self.batches = BatchBook()
        self.collector.on_batch_events = self.batches.add
        #: Events of real traffic and batches come in here, from the API and from MQTT.
        self.intake = Intake(
            config, self.clock, self.collector.ingest, self.metrics, self.batches.known
        )
        self.canaries = canary_runners(config, self.clock, self.collector.ingest, self.metrics)
        self.events_subscriber = (
            MqttEventSubscriber(config, self.intake) if config.ingest.mqtt is not None else None
        )
        self.status_site = StatusSite(self)
        # One daemon on a shared database does the singleton duties (monitor.leader).
        self.leadership = Leadership(
            config.instance.name,
            self.store if shared else None,
            config.instance.leader_timeout,
            on_change=self._leadership_changed,
        )
        # This daemon's row among the daemons sharing the store, and GET /api/cluster.
        self.cluster = Cluster(
            config,
            self.store,
            self.clock,
            lambda: self.collector.last_written_at,
            leases=self.store if shared else None,
        )
        self.server = Server(
            config,
            self.metrics.registry,
            self.figures,
            self.health,
            alerts=self,
            routes=self.status_site,
            reports=self.reports,
            clock=self.clock,
            ingest=IngestApi(self.intake, config.ingest.max_body_bytes),
            evidence=self.digests,
            cluster=self.cluster,
            locations=lambda: locations_view(config, self.ledger),
        )
        self.resources = ProbeResources(config.brokers)
        self.scheduler: Scheduler | None = None
        self._started_at = time.monotonic()
        self.ready = asyncio.Event()
        self._loaded = False  # set once the ledger is loaded: re-deciding needs it

    def _may_archive(self) -> bool:
        """Reports and digests are archived by the leader, on a clock that keeps pace."""
        return self.clock_watch.steady() and self.leadership.leading()

    async def _leadership_changed(self, leading: bool) -> None:
        """Taking over: the alerts and incidents the last leader stored are the truth."""
        self.metrics.leader.set(1 if leading else 0)
        if leading:
            try:
                await self.alerter.reload()
                await self.incident_detector.reload()
                await self.outbox.resume()
            except StoreError as exc:
                log.error("the new leader could not read the alerts and incidents: %s", exc)

    def figures(self) -> list[ObjectiveFigures]:
        """The current SLA figures of every objective."""
        return self.figures_at(self.clock.now())

    def figures_at(self, now: float) -> list[ObjectiveFigures]:
        """The SLA figures of every objective as of ``now``."""
        return all_figures(self.config, self.ledger, now) + batch_figures(
            self.config, self.batches, now
        )

    def maintenance_active(self, service: str) -> bool:
        """True while announced maintenance of ``service`` is under way."""
        return self.eligibility.maintenance_at(service, self.clock.now()) is not None

    async def reload_maintenance(self) -> bool:
        """Take stored maintenance windows into account (added or removed at run time by
        ``sla-monitor maintenance``); returns True when they changed."""
        return await self.maintenance.reload()

    async def load_history(self) -> None:
        """Rebuild the windows from the open store as they stand now: stored maintenance,
        archived corrections, then the ledger (with what changed while the daemon was
        down re-decided)."""
        await self.reload_maintenance()
        await self.reload_corrections()
        await self.ledger.load(self.store, self.clock.now())
        await self.apply_exclusions(self._exclusion_spans())
        # Batches of the two months shown and those still pending before them.
        horizon = max(
            (o.deadline for s in self.config.services for o in s.batch_objectives), default=0.0
        )
        self.batches.add(await self.store.batch_events(self.clock.now() - 62 * 86400 - horizon))

    async def reload_corrections(self) -> bool:
        """Take the report corrections archived since the last call into account (the
        periods they declare unmonitored); True when they changed."""
        try:
            spans = await self.reports.corrections(self.clock.now())
        except ReportError as exc:
            log.error("could not read report corrections (will retry): %s", exc)
            return False
        before = self.eligibility.corrected_spans()
        self.eligibility.replace_corrections(spans)
        after = self.eligibility.corrected_spans()
        if before == after:
            return False
        if self._loaded:
            changed = [_minutes(start, end) for _, start, end in {*before, *after}]
            await self.apply_exclusions(changed)
        return True

    def _exclusion_spans(self) -> list[tuple[int, int]]:
        """Epoch-minute spans of every maintenance window and corrected period."""
        spans = [_minutes(w.start, w.end) for w in self.eligibility.windows()]
        spans += [_minutes(start, end) for _, start, end in self.eligibility.corrected_spans()]
        return spans

    async def apply_exclusions(self, spans: list[tuple[int, int]]) -> None:
        """Re-decide the sealed minutes of ``spans`` whose exclusion changed, and store the
        new decisions, hours and days at once (a restart must read them)."""
        self._loaded = True
        days = await self.ledger.reclassify(spans, self.store)
        if days:
            await self.collector.write_decisions()
            await recompact_days(self.store, days)
            self.status_site.history_changed()
            log.info("re-decided sealed minutes of %d day(s) after an exclusion changed", len(days))

    async def list_alerts(self, status: str, limit: int) -> list[Alert]:
        """Active alerts, or the history (newest first) with those still active."""
        active = self.alerter.active()
        if status == "active":
            return active[:limit]
        known = {a.alert_id for a in active}
        stored = [a for a in await self.store.load_alerts(limit=limit) if a.alert_id not in known]
        merged = sorted([*active, *stored], key=lambda a: -a.pending_since)
        return merged[:limit]

    async def acknowledge(self, alert_id: str, by: str) -> Alert:
        """Acknowledge a firing alert (KeyError when there is none with this id)."""
        alert = self.alerter.acknowledge(alert_id, by, self.clock.now())
        await self._save_alerts()
        return alert

    async def _save_alerts(self) -> None:
        """The new notices, then the alerts' state, then the notices on their way."""
        async with self._outbox_lock:
            await self.outbox.store()
            try:
                await self.alerter.save()
            finally:
                self.outbox.send()

    async def _send_notices(self) -> None:
        """The users' notices (and any other held), stored then sent, every second."""
        async with self._outbox_lock:
            await self.outbox.store()
            self.outbox.send()

    def health(self) -> Health:
        """Healthy while the store takes writes."""
        brokers = {name: c.connected for name, c in self.resources.connections.items()}
        failing = self.collector.store_failing
        return Health(
            healthy=not failing,
            details={
                "uptime_s": round(time.monotonic() - self._started_at, 1),
                "results_accepted": self.collector.accepted,
                "results_written": self.collector.written,
                "results_staged": self.collector.staged,
                "queue_depth": self.queue.qsize(),
                "probes_in_flight": self.scheduler.in_flight if self.scheduler else 0,
                "store": "failing" if failing else "ok",
                "brokers_connected": brokers,
                "report_pdf": self.reports.pdf_problem or "ok",
                # Which store it writes: the CLI goes through this daemon only if it is
                # the one whose store its config names.
                "store_id": store_identity(self.config.storage.location),
                **self._events_health(),
            },
        )

    def _events_health(self) -> dict[str, object]:
        """The MQTT event subscription, when there is one."""
        subscriber = self.events_subscriber
        if subscriber is None:
            return {}
        return {
            "events_mqtt": "subscribed" if subscriber.connected.is_set() else "disconnected",
            "events_mqtt_messages": subscriber.messages,
        }

    async def _build_jobs(self) -> list[Job]:
        jobs = []
        for service in self.config.services:
            for settings in service.active_probes:
                probe = await build_probe(settings, self.resources)
                jobs.append(
                    Job(
                        service.name,
                        settings.name,
                        settings.kind,
                        settings.interval,
                        settings.timeout,
                        probe,
                    )
                )
        return jobs

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then shut down in order; returns when all is flushed."""
        await self.store.open()
        try:
            previous = await self.store.run_marks(self._run_key)
            await self._check_writable()
            await self._mark("started")
            await self._record_config()
            await self._replay_spool()
            if previous.killed:
                await self._count_killed_run(previous)
            await self.load_history()
            await self.alerter.load()
            await self.incident_detector.load()
            await self.dispatcher.start()
            if not self.leadership.shared:  # a shared store's leader resumes on taking over
                await self.outbox.resume()
            await self.server.start()
            try:
                await self.intake.pool.start()
                jobs = await self._build_jobs()
                self.scheduler = Scheduler(
                    jobs,
                    self.queue,
                    self.clock,
                    self.config.scheduler.max_concurrency,
                    self.metrics,
                    location=self.config.instance.location,
                )
                log.info("sla-monitor: %d probes, serving %s", len(jobs), self.server.url)
                # What start-up built (config, history, probes) lives as long as the daemon:
                # out of the collector's sight, so full collections scan only what changes.
                gc.collect()
                gc.freeze()
                self.ready.set()
                await self._supervise(stop, self.scheduler)
            finally:
                for job in self.scheduler.jobs if self.scheduler else []:
                    await job.probe.aclose()
                await self.resources.aclose()
                await self.server.stop()
                await self.intake.pool.aclose()
                await self.dispatcher.aclose()
                await self.outbox.store()  # marks what the last deliveries sent
            if not self.collector.staged:  # all written or spooled: a clean stop
                await self._mark("stopped")
        finally:
            await self.store.aclose()
        log.info(
            "sla-monitor stopped: %d results accepted, %d written",
            self.collector.accepted,
            self.collector.written,
        )

    async def _check_writable(self) -> None:
        """A store that takes no write (read-only, full disk) stops the start, unless the
        operator chose to measure into the spool until it recovers."""
        try:
            await self.store.check_writable()
        except StoreError as exc:
            if not self.allow_degraded_start:
                raise StoreError(
                    f"{exc}\nmake the store writable (free space, permissions, mount), or"
                    " start with --allow-degraded-start to measure while results wait in"
                    " memory and the spool until it takes writes"
                ) from exc
            log.error(
                "%s: starting degraded (--allow-degraded-start); results wait in memory and"
                " the spool until the store takes writes",
                exc,
            )

    async def _record_config(self) -> None:
        """Keep which config this start runs with (not fatal when the store refuses)."""
        if self.config_file is None:
            return
        try:
            body = self.config_file.read_bytes()
            use = ConfigUse(
                self.clock.now(),
                self.config.instance.name,
                str(self.config_file),
                hashlib.sha256(body).hexdigest(),
            )
            await self.store.record_config(use, body.decode("utf-8", errors="replace"))
        except (OSError, StoreError) as exc:
            log.error("the config this run started with is not recorded: %s", exc)

    async def _mark(self, mark: RunMark) -> None:
        try:
            await self.store.mark_run(mark, self.clock.now(), self._run_key)
        except StoreError as exc:
            # Said once per outage: the store's failure is logged and counted elsewhere.
            if mark not in self._marks_failing:
                self._marks_failing.add(mark)
                log.error("could not record the run's %s mark: %s", mark, exc)
        else:
            self._marks_failing.discard(mark)

    async def _count_killed_run(self, previous: RunMarks) -> None:
        """The previous run was killed: what it measured after its last write is lost.
        It died within two heartbeats of its last sign of life (one period plus the
        loop's own work), so per probe at most the runs from its last stored result to
        then are lost; logged and exported once."""
        assert previous.started is not None
        died_by = (previous.alive or previous.started) + 2 * HEARTBEAT_S
        # Its last hour is enough (older results were flushed long before, or spooled and
        # replayed above), and reads a bounded slice of the time index, not its whole run.
        recent = max(previous.started, died_by - 3600.0)
        last = await self.store.last_results(recent, self._own_location or None)
        bound = 0
        for service in self.config.services:
            for probe in service.probes:
                since = last.get((service.name, probe.name), recent)
                bound += math.ceil(max(0.0, died_by - since) / probe.interval)
        self.metrics.previous_run_killed.set(1)
        self.metrics.previous_run_lost_max.set(bound)
        log.warning(
            "the previous run (started %s) ended without a clean stop (killed or crashed)"
            " by %s: at most %d probe runs it measured after its last write are lost"
            " (sla_previous_run_lost_results_max)",
            iso_utc(previous.started),
            iso_utc(died_by),
            bound,
        )

    async def _replay_spool(self) -> None:
        """Results spooled by an earlier run (its store was failing) go into the store
        before the windows are loaded from it, so they count."""
        if self.spool is None or not self.spool.size():
            return
        try:
            await replay(
                self.spool,
                self.store,
                probe_thresholds(self.config),
                self.config.storage.batch_size,
                location_series(self.config),
            )
        except StoreError as exc:  # the collector retries once the store takes writes
            log.error("could not write the spool back before loading (will retry): %s", exc)
        self.metrics.spooled.set(self.spool.pending())

    @property
    def lost_results(self) -> int:
        """Results neither the store nor the spool took (the exit code says so)."""
        return self.collector.lost

    async def _supervise(self, stop: asyncio.Event, scheduler: Scheduler) -> None:
        probes_done = asyncio.Event()

        async def schedule() -> None:
            try:
                await scheduler.run(stop)
            finally:
                probes_done.set()  # only now may the collector drain and stop

        async with asyncio.TaskGroup() as group:
            group.create_task(schedule(), name="scheduler")
            group.create_task(self.collector.run(probes_done), name="collector")
            # A bug in a side task must not take the probes and the collector down with it
            # (the TaskGroup would cancel them, and staged results would be lost).
            side = [
                group.create_task(_keep_running(name, loop), name=name.replace(" ", "-"))
                for name, loop in (
                    ("housekeeping", self._housekeeping),
                    ("alerting", self._evaluate_alerts),
                    ("incidents", self._detect_incidents),
                    ("monthly report", self.reports.run),
                    ("daily digest", self.digests.run),
                    ("heartbeat", self.cluster.run),
                    ("leadership", self.leadership.run),
                )
            ]
            for runner in self.canaries:
                side.append(
                    group.create_task(
                        _keep_running(f"batch canary {runner.service}", runner.run),
                        name=f"canary-{runner.service}-{runner.objective.name}",
                    )
                )
            if self.events_subscriber is not None:
                # Cancelled with the others: a message it had not stored is not
                # acknowledged, and the broker delivers it again at the next start.
                side.append(
                    group.create_task(
                        _keep_running("mqtt events", self.events_subscriber.run),
                        name="mqtt-events",
                    )
                )
            await probes_done.wait()
            for task in side:
                task.cancel()
        with contextlib.suppress(StoreError):
            await self._save_alerts()
        await self.leadership.release()  # another daemon leads at its next try

    async def _evaluate_alerts(self) -> None:
        """Evaluate alert conditions every ``alerting.evaluation_interval``."""
        interval = self.config.alerting.evaluation_interval
        next_at = self.clock.monotonic() + interval
        while self.config.alerting.enabled:
            await self.clock.sleep_until(next_at)
            next_at += interval
            if not self.leadership.leading():
                continue  # the leader alerts; this daemon takes over its stored state
            now = self.clock.now()
            for event in self.alerter.evaluate(self.figures_at(now), now):
                log.info("alert %s %s: %s", event.kind, event.alert_id, event.summary)
            try:
                await self._save_alerts()
            except StoreError as exc:
                log.error("could not store alert state (will retry): %s", exc)

    def publish(self, event: StatusEvent) -> None:
        """Tell the users subscribed to the event's service (``status.subscribers``)."""
        self.notices.publish(event)

    async def _detect_incidents(self) -> None:
        """Open and resolve incidents from the availability minutes, every 10 s."""
        interval = 10.0
        next_at = self.clock.monotonic() + interval
        while True:
            await self.clock.sleep_until(next_at)
            next_at += interval
            if not self.leadership.leading():
                continue
            try:
                await self.incident_detector.evaluate(self.clock.now())
            except StoreError as exc:
                log.error("could not store incidents (will retry): %s", exc)

    async def _housekeeping(self) -> None:
        """Broker-state gauges and stored maintenance every second; pruning and day
        compaction every hour. The cadence is real time, like the collector's flushes:
        it paces I/O, not the measured domain (a test's standing fake clock must not
        stop it); the times it records come from the Clock."""
        next_prune = time.monotonic() + 60.0
        next_corrections = time.monotonic() + _CORRECTIONS_EVERY_S
        while True:
            try:
                if await self.reload_maintenance():
                    log.info("maintenance windows reloaded from the store")
                if time.monotonic() >= next_corrections:
                    next_corrections = time.monotonic() + _CORRECTIONS_EVERY_S
                    if await self.reload_corrections():
                        log.info("report corrections reloaded from the archive")
            except StoreError as exc:
                log.error("could not reload maintenance windows or corrections: %s", exc)
            for name, connection in self.resources.connections.items():
                self.metrics.broker_connected.labels(name).set(1 if connection.connected else 0)
            # Every HEARTBEAT_S: a killed run is known at the next start by its last mark.
            await self._mark("alive")
            await self._send_notices()
            steady = self.clock_watch.steady()
            self.metrics.clock_step.set(self.clock_watch.step_s)
            if time.monotonic() >= next_prune and steady and self.leadership.leading():
                next_prune = time.monotonic() + _PRUNE_EVERY_S
                await self.prune(self.clock.now())
            await asyncio.sleep(HEARTBEAT_S)

    async def prune(self, now: float) -> int:
        """Delete raw results past retention and rollups past theirs, then compact the
        settled days; returns the rows deleted. Destructive: only on a steady clock."""
        if not self.clock_watch.steady():
            return 0
        deleted = 0
        try:
            deleted = await self.store.prune(
                now - self.config.storage.raw_retention_days * 86400,
                int((now - ROLLUP_RETENTION_DAYS * 86400) // 60),
            )
        except StoreError as exc:
            log.error("pruning failed (will retry in an hour): %s", exc)
        else:
            if deleted:
                log.info("pruned %d old rows", deleted)
        await self.compact_settled_days(now)
        return deleted

    async def compact_settled_days(self, now: float) -> None:
        """Join the settled days' hour summaries into day rows (a restart reads fewer)."""
        horizon = int((now - _COMPACT_DAYS_BACK * 86400) // 60)
        try:
            written = await compact_days(self.store, horizon, int(now // 60))
        except StoreError as exc:
            log.error("compacting days failed (will retry in an hour): %s", exc)
        else:
            if written:
                log.info("compacted %d service days", written)


async def _keep_running(name: str, loop: Callable[[], Awaitable[None]]) -> None:
    """Run a side loop; if it fails, log it and start it again after a pause."""
    while True:
        try:
            await loop()
            return
        except Exception:
            log.exception("%s failed; restarting it in 5 s", name)
            await asyncio.sleep(5.0)


def _minutes(start: float, end: float) -> tuple[int, int]:
    """The epoch minutes [first, end) a period in epoch seconds touches."""
    return math.floor(start / 60), math.ceil(end / 60) + 1

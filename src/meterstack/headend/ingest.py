"""Ingest: decrypt what meters send, apply each message once, write batches to MDM.

Ingest workers share one MQTT 5 shared subscription per broker (``$share/<group>/...``), so
N workers, in one process or many, split the stream. Each worker:

1. opens every frame (topic, system title, key generation, GCM tag, signature, schema);
   anything refused goes to the dead-letter table with its reason;
2. in one database transaction per batch: checks the sender's replay window, records the
   message's idempotency key ``(meter, origin, seq)`` (a key already applied is a duplicate:
   it is acknowledged again, not applied again), turns readings into Arrow batches
   (:data:`~meterstack.mdm.ingest.INTERVAL_SCHEMA`, ``REGISTER_SCHEMA``, ``EVENT_SCHEMA``)
   and writes them through the :class:`~meterstack.mdm.ingest.MeterDataSink`, records
   alarms and command responses; if the sink fails the transaction is rolled back and
   nothing is acknowledged, so the meters send again;
3. after the commit, calls the alarm and response handlers and acknowledges each meter's
   messages on the path they came by.

Alarms and command responses arrive on their own subscription and connection and are
processed as soon as they come, never behind a batch of bulk data.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import cbor2
import pyarrow as pa

from meterstack.core.errors import InvalidInputError, MeterstackError
from meterstack.core.time import Clock
from meterstack.headend.downlink import Downlink
from meterstack.headend.store import HeadEndStore, MeterRecord
from meterstack.link import topics
from meterstack.link.counters import ReplayGuard
from meterstack.link.deadletter import DeadLetter
from meterstack.link.envelope import EnvelopeHeader, SessionKeys, open_frame, read_header
from meterstack.link.errors import EnvelopeError, LinkDownError, RejectReason
from meterstack.link.schema import (
    AckBody,
    AlarmBody,
    EventBlock,
    Message,
    MessageKind,
    PowerQualityBlock,
    ProfileBlock,
    RegisterRead,
    ResponseBody,
    ResponseStatus,
    decode,
)
from meterstack.link.shutdown import cancel_all
from meterstack.mdm.ingest import (
    EVENT_SCHEMA,
    INTERVAL_SCHEMA,
    REGISTER_SCHEMA,
    IngestResult,
    MeterDataSink,
)

#: The load-profile channels by OBIS code, in row order (value scale).
PROFILE_CHANNELS = (
    ("1.0.1.8.0.255", "a_plus_wh", 1.0),
    ("1.0.2.8.0.255", "a_minus_wh", 1.0),
    ("1.0.3.8.0.255", "r_plus_varh", 1.0),
    ("1.0.4.8.0.255", "r_minus_varh", 1.0),
    ("1.0.12.27.0.255", "average_voltage_cv", 0.01),
    ("1.0.1.5.0.255", "demand_dw", 0.1),
)
_CHANNEL_CODES = tuple(obis for obis, _, _ in PROFILE_CHANNELS)
URGENT_KINDS = (MessageKind.ALARM, MessageKind.RESPONSE)
BULK_KINDS = (
    MessageKind.REGISTERS,
    MessageKind.EVENTS,
    MessageKind.PROFILE,
    MessageKind.POWER_QUALITY,
)


@dataclass(frozen=True)
class AlarmNotice:
    """An alarm, delivered once to the alarm handler."""

    meter: str
    at_ms: int
    code: int
    detail: str
    created_ms: int  # when the meter's outbox took it
    received: float  # POSIX seconds, when the head-end applied it


@dataclass(frozen=True)
class ResponseNotice:
    meter: str
    command_id: int
    name: str
    status: ResponseStatus
    detail: str
    result: Any


@dataclass
class IngestStats:
    frames: int = 0
    applied: int = 0
    duplicates: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    rows_inserted: int = 0
    rows_duplicate: int = 0
    rows_rejected: int = 0
    acks_sent: int = 0
    ack_failures: int = 0
    failed_batches: int = 0
    handler_errors: int = 0
    last_error: str = ""


@dataclass(frozen=True)
class IngestConfig:
    """Batching of the bulk stream.

    Attributes
    ----------
    max_batch : int
        Frames per transaction at most. [count]
    max_wait_s : float
        How long a partial batch waits for more frames. [s]
    """

    max_batch: int = 256
    max_wait_s: float = 0.01

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise InvalidInputError("max_batch", self.max_batch, "at least 1")
        if self.max_wait_s < 0:
            raise InvalidInputError("max_wait_s", self.max_wait_s, "not negative")


@dataclass
class _Opened:
    topic: str
    path: str
    frame: bytes
    record: MeterRecord
    header: EnvelopeHeader
    keys: SessionKeys
    message: Message


@dataclass
class _Rows:
    intervals: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))
    registers: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))
    events: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))


_KEYS_PER_QUERY = 256
#: How long a bulk batch is opened before the event loop gets a turn (alarms first). [s]
_BULK_SLICE_S = 0.002
#: Idempotency keys in one ACK message at most.
_KEYS_PER_ACK = 1024


def _applied_keys(db: Any, keys: list[tuple[str, int, int]]) -> set[tuple[str, int, int]]:
    """Which of ``keys`` (meter, origin, seq) the ``applied`` table holds already."""
    found: set[tuple[str, int, int]] = set()
    for start in range(0, len(keys), _KEYS_PER_QUERY):
        chunk = keys[start : start + _KEYS_PER_QUERY]
        values = ", ".join(["(?, ?, ?)"] * len(chunk))
        found.update(
            db.execute(
                f"WITH k(meter, origin, seq) AS (VALUES {values}) "  # only placeholders
                "SELECT a.meter, a.origin, a.seq FROM k JOIN applied a "
                "ON a.meter = k.meter AND a.origin = k.origin AND a.seq = k.seq",
                [field for key in chunk for field in key],
            ).fetchall()
        )
    return found


class IngestWorker:
    """One ingest worker.

    Parameters
    ----------
    store : HeadEndStore
        Operational tables (shared with the other workers).
    sink : MeterDataSink
        Where readings and events go (the MDM store).
    downlink : Downlink
        Sends the acknowledgements.
    on_alarm, on_response : callable, optional
        Called once per newly applied alarm / command response, after the commit.
    """

    def __init__(
        self,
        store: HeadEndStore,
        sink: MeterDataSink,
        downlink: Downlink | None,
        *,
        clock: Clock,
        config: IngestConfig | None = None,
        on_alarm: Callable[[AlarmNotice], None] | None = None,
        on_response: Callable[[ResponseNotice], None] | None = None,
    ) -> None:
        self.store = store
        self.sink = sink
        self.downlink = downlink
        self.clock = clock
        self.config = config or IngestConfig()
        self.on_alarm = on_alarm
        self.on_response = on_response
        self.replay = ReplayGuard(store)
        self.stats = IngestStats()
        self._records: dict[str, MeterRecord] = {}
        self._urgent: asyncio.Queue[tuple[str, bytes, str]] = asyncio.Queue()
        self._bulk: asyncio.Queue[tuple[str, bytes, str]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    def forget_meter(self, serial: str) -> None:
        """Drop the cached keys of ``serial`` (they changed: a rotation)."""
        self._records.pop(serial, None)

    # ---------------------------------------------------------------- transport side
    def on_message(self, topic: str, payload: bytes, path: str) -> None:
        """Transport callback: queue the frame (urgent kinds on their own queue)."""
        urgent = topic.endswith(("/up/alarm", "/up/response"))
        (self._urgent if urgent else self._bulk).put_nowait((topic, payload, path))

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._drain(self._urgent, urgent=True), name="ingest-urgent"),
            asyncio.create_task(self._drain(self._bulk, urgent=False), name="ingest-bulk"),
        ]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        await cancel_all(tasks)

    async def _drain(self, queue: asyncio.Queue[tuple[str, bytes, str]], *, urgent: bool) -> None:
        # Acknowledgements go out from their own task (_send_acks), so that the broker's
        # PUBACK round trips do not hold up ingest; the keys of batches committed while
        # one round is in flight are sent together in the next (one ACK per meter and
        # path), never before their batch is committed.
        pending: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
        ready = asyncio.Event()
        sender = asyncio.create_task(self._send_acks(pending, ready), name="ingest-acks")
        try:
            while True:
                acks = await self._next_batch(queue, urgent=urgent)
                if not acks:
                    continue
                for target, keys in acks.items():
                    pending[target].extend(keys)
                ready.set()
        finally:
            await cancel_all([sender])

    async def _send_acks(
        self, pending: dict[tuple[str, str], list[tuple[int, int]]], ready: asyncio.Event
    ) -> None:
        while True:
            await ready.wait()
            ready.clear()
            this_round, other = {}, {}
            for target, keys in pending.items():
                this_round[target], other[target] = keys[:_KEYS_PER_ACK], keys[_KEYS_PER_ACK:]
            pending.clear()
            for target, keys in other.items():
                if keys:
                    pending[target] = keys
                    ready.set()
            try:
                await self.acknowledge(this_round)
            except Exception as exc:  # the meters send again; their duplicates are re-acked
                self.stats.ack_failures += 1
                self.stats.last_error = f"acknowledgement failed: {exc!r}"

    async def _next_batch(
        self, queue: asyncio.Queue[tuple[str, bytes, str]], *, urgent: bool
    ) -> dict[tuple[str, str], list[tuple[int, int]]] | None:
        """Take one batch from ``queue`` and apply it; None when it failed as a whole."""
        limit = self.config.max_batch
        batch = [await queue.get()]
        if not urgent and self.config.max_wait_s > 0 and queue.qsize() < limit:
            await asyncio.sleep(self.config.max_wait_s)
        while len(batch) < limit and not queue.empty():
            batch.append(queue.get_nowait())
        try:
            if urgent:
                return self.process(batch)
            # A bulk batch is opened (GCM, signatures, a meter's keys read on first sight)
            # a slice at a time, handing the event loop back between slices: an alarm that
            # arrives meanwhile is read off its connection and applied by the urgent task
            # before the bulk batch goes on, never behind the whole batch.
            opened: list[_Opened] = []
            slice_start = time.perf_counter()
            for item in batch:
                opened.extend(self._open_all([item]))
                if time.perf_counter() - slice_start > _BULK_SLICE_S:
                    await asyncio.sleep(0)
                    slice_start = time.perf_counter()
            return self._apply_opened(opened)
        except MeterstackError as exc:
            # The store or the sink failed: nothing of the batch was applied or
            # acknowledged, so the meters send it again.
            self.stats.failed_batches += 1
            self.stats.last_error = str(exc)
        except Exception as exc:  # a sink's bug must not stop ingest for good
            self.stats.failed_batches += 1
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
        return None

    # ---------------------------------------------------------------- processing
    def _record(self, serial: str, *, reload: bool = False) -> MeterRecord | None:
        record = None if reload else self._records.get(serial)
        if record is None:
            record = self.store.meter(serial)
            if record is not None:
                self._records[serial] = record
        return record

    def _reject(self, topic: str, frame: bytes, reason: RejectReason, detail: str) -> None:
        self.stats.rejected[reason.value] = self.stats.rejected.get(reason.value, 0) + 1
        self.store.add_dead_letter(
            DeadLetter(self.clock.now().timestamp(), topic, reason, detail, frame)
        )

    def _open(self, topic: str, frame: bytes, path: str) -> _Opened:
        try:
            serial, direction, kind = topics.parse(topic)
        except InvalidInputError as exc:
            raise EnvelopeError(RejectReason.WRONG_METER, str(exc)) from None
        if direction != "up":
            raise EnvelopeError(RejectReason.WRONG_METER, f"{topic} is not an uplink topic")
        record = self._record(serial)
        if record is None:
            raise EnvelopeError(RejectReason.UNKNOWN_SENDER, f"meter {serial} is not registered")
        header = read_header(frame)
        if header.system_title != record.system_title:
            raise EnvelopeError(
                RejectReason.WRONG_METER,
                f"system title {header.system_title.hex()} is not meter {serial}'s",
            )
        keys = record.ring.for_key_id(header.key_id)
        if keys is None:
            # Another process may have rotated the meter's keys: read them again.
            record = self._record(serial, reload=True)
            keys = None if record is None else record.ring.for_key_id(header.key_id)
            if record is None or keys is None:
                raise EnvelopeError(
                    RejectReason.UNKNOWN_KEY, f"key generation {header.key_id} not accepted"
                )
        _, plaintext = open_frame(frame, keys, verify_key=record.verify_key, header=header)
        try:
            message = decode(plaintext)
        except InvalidInputError as exc:
            raise EnvelopeError(RejectReason.BAD_SCHEMA, str(exc)) from None
        if message.meter != serial:
            raise EnvelopeError(RejectReason.WRONG_METER, f"message of {message.meter} on {topic}")
        if message.kind is not kind:
            raise EnvelopeError(RejectReason.BAD_SCHEMA, f"{message.kind.name} on {topic}")
        return _Opened(topic, path, frame, record, header, keys, message)

    def process(
        self, batch: list[tuple[str, bytes, str]]
    ) -> dict[tuple[str, str], list[tuple[int, int]]]:
        """Apply one batch; return the acknowledgements to send, by ``(meter, path)``."""
        return self._apply_opened(self._open_all(batch))

    def _open_all(self, batch: list[tuple[str, bytes, str]]) -> list[_Opened]:
        """Open the frames of ``batch``; refused ones go to the dead letters."""
        self.stats.frames += len(batch)
        opened: list[_Opened] = []
        for topic, frame, path in batch:
            try:
                opened.append(self._open(topic, frame, path))
            except EnvelopeError as exc:
                self._reject(topic, frame, exc.reason, exc.detail)
        return opened

    def _apply_opened(self, opened: list[_Opened]) -> dict[tuple[str, str], list[tuple[int, int]]]:
        """Apply opened frames in one transaction; the acknowledgements to send."""
        acks: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
        if not opened:
            return acks
        now = self.clock.now().timestamp()
        alarms: list[AlarmNotice] = []
        responses: list[ResponseNotice] = []
        rejected: list[tuple[_Opened, RejectReason, str]] = []
        applied = duplicates = 0
        with self.store.transaction() as db:
            self.replay.forget()
            self.replay.load(item.header.system_title for item in opened)
            rows = _Rows()
            touched: dict[bytes, None] = {}
            seen_paths: dict[str, str] = {}
            fresh: list[Message] = []
            for item in opened:
                header, message = item.header, item.message
                if self.replay.seen(header.system_title, header.invocation_counter):
                    rejected.append(
                        (item, RejectReason.REPLAY, f"IC {header.invocation_counter} already seen")
                    )
                    continue
                self.replay.accept(header.system_title, header.invocation_counter, persist=False)
                touched[header.system_title] = None
                record = item.record
                if record.ring.pending is not None and item.keys is record.ring.pending:
                    record.ring.confirm(item.keys.key_id)
                    self.store.save_ring(record.serial, record.ring)
                seen_paths[record.serial] = item.path
                acks[(record.serial, item.path)].append((message.origin, message.seq))
                fresh.append(message)
            # Idempotency: the keys of the batch already applied (by this or another
            # worker), in one query; the new ones are recorded in one statement.
            done = _applied_keys(db, [(m.meter, m.origin, m.seq) for m in fresh])
            new_keys: list[tuple[str, int, int, float]] = []
            for message in fresh:
                key = (message.meter, message.origin, message.seq)
                if key in done:
                    duplicates += 1
                    continue
                done.add(key)
                new_keys.append((*key, now))
                applied += 1
                self._apply(db, message, rows=rows, alarms=alarms, responses=responses, now=now)
            db.executemany("INSERT INTO applied VALUES (?, ?, ?, ?)", new_keys)
            self.replay.persist_all(touched)
            db.executemany(
                "UPDATE meters SET last_path = ?, last_seen = ? WHERE serial = ?",
                [(path, now, serial) for serial, path in seen_paths.items()],
            )
            for serial, path in seen_paths.items():
                cached = self._records.get(serial)
                if cached is not None:
                    cached.last_path = path
            self._write(rows)
        self.stats.applied += applied
        self.stats.duplicates += duplicates
        self.stats.batches += 1
        for item, reason, detail in rejected:
            self._reject(item.topic, item.frame, reason, detail)
        # The batch is committed: every handler call is made, whatever another one does.
        for notice in alarms:
            if self.on_alarm is not None:
                self._call_handler(self.on_alarm, notice)
        for response in responses:
            if self.on_response is not None:
                self._call_handler(self.on_response, response)
        return acks

    def _call_handler(self, handler: Callable[[Any], None], notice: object) -> None:
        try:
            handler(notice)
        except Exception as exc:  # the alarm is stored; a handler's bug is recorded
            self.stats.handler_errors += 1
            self.stats.last_error = f"handler {handler!r} failed: {exc!r}"

    def _apply(
        self,
        db: Any,
        message: Message,
        *,
        rows: _Rows,
        alarms: list[AlarmNotice],
        responses: list[ResponseNotice],
        now: float,
    ) -> None:
        meter, body = message.meter, message.body
        if isinstance(body, ProfileBlock):
            target = rows.intervals
            count = len(body.rows) * len(PROFILE_CHANNELS)
            target["meter"].extend([meter] * count)
            target["channel"].extend(_CHANNEL_CODES * len(body.rows))
            for row in body.rows:
                end, status = row.interval_end_s, row.status
                target["interval_end"].extend((end,) * len(PROFILE_CHANNELS))
                target["value"].extend(  # PROFILE_CHANNELS' order and scales
                    (
                        row.a_plus_wh * 1.0,
                        row.a_minus_wh * 1.0,
                        row.r_plus_varh * 1.0,
                        row.r_minus_varh * 1.0,
                        row.average_voltage_cv * 0.01,
                        row.demand_dw * 0.1,
                    )
                )
                target["status"].extend((status,) * len(PROFILE_CHANNELS))
        elif isinstance(body, RegisterRead):
            for code, value in body.values:
                rows.registers["meter"].append(meter)
                rows.registers["obis"].append(str(code))
                rows.registers["read_at"].append(body.at_ms)
                rows.registers["value"].append(float(value))
        elif isinstance(body, PowerQualityBlock):
            for at_ms, code, value in body.rows:
                rows.registers["meter"].append(meter)
                rows.registers["obis"].append(str(code))
                rows.registers["read_at"].append(at_ms)
                rows.registers["value"].append(float(value))
        elif isinstance(body, EventBlock):
            for event in body.rows:
                rows.events["meter"].append(meter)
                rows.events["log"].append(body.log)
                rows.events["seq"].append(event.seq)
                rows.events["at"].append(event.at_ms)
                rows.events["code"].append(event.code)
                rows.events["detail"].append(event.detail)
        elif isinstance(body, AlarmBody):
            db.execute(
                "INSERT OR IGNORE INTO alarms VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    meter,
                    message.origin,
                    message.seq,
                    body.at_ms,
                    body.code,
                    body.detail,
                    message.created_ms,
                    now,
                ),
            )
            alarms.append(
                AlarmNotice(meter, body.at_ms, body.code, body.detail, message.created_ms, now)
            )
        elif isinstance(body, ResponseBody):
            responses.extend(self._response(db, meter, body, rows, now))

    def _response(
        self, db: Any, meter: str, body: ResponseBody, rows: _Rows, now: float
    ) -> list[ResponseNotice]:
        found = db.execute(
            "SELECT name, state FROM commands WHERE id = ? AND meter = ?",
            (body.command_id, meter),
        ).fetchone()
        if found is None:
            return []
        name, state = found
        if state not in ("queued", "sent"):
            return []  # expired or settled already: the late answer is kept in no state
        new_state = "acknowledged" if body.status is ResponseStatus.OK else "failed"
        db.execute(
            "UPDATE commands SET state = ?, status = ?, detail = ?, result = ?, updated = ? "
            "WHERE id = ?",
            (
                new_state,
                int(body.status),
                body.detail,
                cbor2.dumps(body.result).hex(),
                now,
                body.command_id,
            ),
        )
        if name == "read_registers" and body.status is ResponseStatus.OK:
            result = body.result or {}
            for obis, value in result.get("values", []):
                rows.registers["meter"].append(meter)
                rows.registers["obis"].append(str(obis))
                rows.registers["read_at"].append(int(result["at_ms"]))
                rows.registers["value"].append(float(value))
        return [ResponseNotice(meter, body.command_id, name, body.status, body.detail, body.result)]

    def _write(self, rows: _Rows) -> None:
        results: list[IngestResult] = []
        if rows.intervals:
            results.append(
                self.sink.ingest_intervals(pa.table(dict(rows.intervals), schema=INTERVAL_SCHEMA))
            )
        if rows.registers:
            results.append(
                self.sink.ingest_registers(pa.table(dict(rows.registers), schema=REGISTER_SCHEMA))
            )
        if rows.events:
            results.append(
                self.sink.ingest_events(pa.table(dict(rows.events), schema=EVENT_SCHEMA))
            )
        for result in results:
            self.stats.rows_inserted += result.inserted + result.revisions
            self.stats.rows_duplicate += result.duplicates
            self.stats.rows_rejected += len(result.rejected)

    async def acknowledge(self, acks: Mapping[tuple[str, str], list[tuple[int, int]]]) -> None:
        """Send each meter its acknowledgements on the path its messages came by."""
        sends = []
        for (serial, path), keys in acks.items():
            record = self._records.get(serial)
            if record is not None:
                sends.append(self._ack(record, path, keys))
        if sends:
            await asyncio.gather(*sends)

    async def _ack(self, record: MeterRecord, path: str, keys: list[tuple[int, int]]) -> None:
        if self.downlink is None:
            raise InvalidInputError("downlink", None, "the worker has no downlink to ack with")
        try:
            await self.downlink.send(record, MessageKind.ACK, AckBody(tuple(keys)), path=path)
            self.stats.acks_sent += 1
        except LinkDownError:
            self.stats.ack_failures += 1  # the meter sends again; the retry is a duplicate

"""Non-volatile memory: images round-trip, restored meters carry on exactly, bad images are
refused, and a writer killed at any instant leaves the old image or the new one."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import struct
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from multiprocessing import get_context
from pathlib import Path

import pytest

from meterstack.core import CorruptStateError, StoreError
from meterstack.meter import (
    FileStore,
    LimiterConfig,
    MemoryStore,
    Meter,
    MeterConfig,
    MeterImage,
    NonVolatileDatabase,
    NonVolatileStore,
    SQLiteStore,
)
from meterstack.meter.store import decode_image, encode_image

from .support import START, config, load, prepaid, two_rate_tou

HALF_HOUR = timedelta(minutes=30)


def _rich_config(serial: str = "STORE001") -> MeterConfig:
    return config(
        serial=serial,
        tou=two_rate_tou(),
        prepaid=prepaid(
            price_per_kwh={1: Decimal("0.1"), 2: Decimal("0.3")},
            initial_credit=Decimal("3"),
            emergency_credit=Decimal("2"),
            low_credit_trip=True,
        ),
        limiter=LimiterConfig(threshold_w=4000, min_over_threshold_s=0, backoff_s=3600),
        profile_capacity_days=1,
        event_log_capacity=20,
    )


def _operate(meter: Meter, index: int) -> None:
    """Operation ``index`` of a deterministic sequence that exercises most of the state."""
    at = START + (index + 1) * HALF_HOUR
    watts = [800.0, 2500.0, 0.0, 4500.0, 1200.0, -300.0][index % 6]
    meter.step(
        load(at, watts if meter.relay.output_state else 0.0, terminal_cover_open=index % 11 == 5)
    )
    if index % 7 == 6:
        meter.top_up(Decimal("2.5"), at)


def _normal(image: MeterImage) -> MeterImage:
    """Decode(encode(image)): the form every store hands back, empty logs dropped."""
    decoded = decode_image(encode_image(image), "test")
    decoded.events = {kind: list(rows) for kind, rows in decoded.events.items() if rows}
    return decoded


@pytest.mark.parametrize("make_store", ["memory", "file", "sqlite"])
def test_a_restored_meter_carries_on_exactly(tmp_path: Path, make_store: str) -> None:
    store: NonVolatileStore = {
        "memory": MemoryStore,
        "file": lambda: FileStore(tmp_path / "meter.json"),
        "sqlite": lambda: SQLiteStore(tmp_path / "nv.db", "STORE001"),
    }[make_store]()
    twin = Meter(_rich_config(), commissioned_at=START)
    meter = Meter(_rich_config(), commissioned_at=START, store=store)
    for index in range(120):
        _operate(twin, index)
        _operate(meter, index)
    assert store.load() is not None
    restored = Meter.restore(_rich_config(), store)
    assert restored is not None
    assert _normal(restored.image()) == _normal(twin.image())
    for index in range(120, 200):
        _operate(twin, index)
        _operate(restored, index)
    assert _normal(restored.image()) == _normal(twin.image())
    assert restored.registers.a_plus == twin.registers.a_plus > 0


def test_restore_of_an_empty_store_is_none(tmp_path: Path) -> None:
    assert Meter.restore(_rich_config(), FileStore(tmp_path / "absent.json")) is None
    assert Meter.restore(_rich_config(), SQLiteStore(tmp_path / "nv.db", "X")) is None


def test_a_power_up_after_restart_books_the_outage(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "nv.db", "STORE001")
    meter = Meter(_rich_config(), commissioned_at=START, store=store)
    for index in range(4):
        _operate(meter, index)
    restored = Meter.restore(_rich_config(), store)
    assert restored is not None
    restored.power_up(START + timedelta(hours=5))
    log = restored.event_logs
    codes = [e.name for e in log[next(k for k in log if k.value == "power_failure")]]
    assert codes == ["power_down", "power_up"]
    assert len(restored.load_profile) == 10  # the outage's intervals are there, empty
    assert restored.load_profile.entries()[-1].a_plus_wh == 0


def test_many_meters_share_a_database_and_batch_their_saves(tmp_path: Path) -> None:
    database = NonVolatileDatabase(tmp_path / "fleet.db", synchronous="NORMAL")
    meters = [
        Meter(_rich_config(f"M{k:03d}"), commissioned_at=START, store=database.store(f"M{k:03d}"))
        for k in range(5)
    ]
    for index in range(10):
        with database.batch():
            for meter in meters:
                _operate(meter, index)
    assert database.serials() == [f"M{k:03d}" for k in range(5)]
    for meter in meters:
        restored = Meter.restore(meter.config, database.store(meter.config.serial))
        assert restored is not None
        assert _normal(restored.image()) == _normal(meter.image())
    database.close()


def test_a_rolled_back_batch_loses_nothing_later(tmp_path: Path) -> None:
    database = NonVolatileDatabase(tmp_path / "fleet.db")
    store = database.store("STORE001")
    meter = Meter(_rich_config(), commissioned_at=START, store=store)
    for index in range(5):
        _operate(meter, index)
    before = store.load()

    def failing_batch() -> None:
        with database.batch():
            _operate(meter, 5)  # a capture: saved inside the batch
            raise RuntimeError("the batch fails after the save")

    with pytest.raises(RuntimeError):
        failing_batch()
    assert store.load() == before  # nothing of the failed batch was kept
    for index in range(6, 9):
        _operate(meter, index)
    # The profile rows of the rolled-back save are written again by the next one.
    restored = Meter.restore(_rich_config(), store)
    assert restored is not None
    assert _normal(restored.image()) == _normal(meter.image())


def test_a_corrupt_or_foreign_image_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "meter.json"
    meter = Meter(_rich_config(), commissioned_at=START, store=FileStore(path))
    _operate(meter, 0)
    with pytest.raises(CorruptStateError, match="STORE001, not OTHER"):
        Meter.restore(_rich_config("OTHER"), FileStore(path))
    document = json.loads(path.read_bytes())
    del document["state"]["registers"]
    path.write_text(json.dumps(document))
    with pytest.raises(CorruptStateError, match="incomplete"):
        Meter.restore(_rich_config(), FileStore(path))
    path.write_bytes(b"{not json")
    with pytest.raises(CorruptStateError):
        Meter.restore(_rich_config(), FileStore(path))


def test_an_unwritable_store_raises_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError):
        FileStore(blocker / "meter.json").save(Meter(_rich_config(), commissioned_at=START).image())
    with pytest.raises(StoreError):
        NonVolatileDatabase(tmp_path / "missing" / "nv.db")


# ---------------------------------------------------------------- crash consistency


class _Recording:
    """A store that keeps the normalised image of every save (the reference sequence)."""

    def __init__(self) -> None:
        self.images: list[MeterImage] = []

    def save(self, image: MeterImage) -> None:
        self.images.append(_normal(image))

    def load(self) -> MeterImage | None:
        return self.images[-1] if self.images else None


class _Reference:
    """The images an uninterrupted writer saves, computed as far as needed."""

    def __init__(self) -> None:
        self._recording = _Recording()
        self._meter = Meter(_rich_config(), commissioned_at=START, store=self._recording)
        self._index = 0

    def __getitem__(self, position: int) -> MeterImage:
        while len(self._recording.images) <= position:
            _operate(self._meter, self._index)
            self._index += 1
        return self._recording.images[position]


def _resume(meter: Meter) -> int:
    """The next operation for a restored meter (and finish a half-done one)."""
    index = round((meter.measured_until - START) / HALF_HOUR) - 1
    assert meter.credit is not None
    if index % 7 == 6 and meter.credit.purchase_count < (index + 1) // 7:
        meter.top_up(Decimal("2.5"), START + (index + 1) * HALF_HOUR)
    return index + 1


def _writer(make_store: Callable[[], NonVolatileStore], first_save: int, report: int) -> None:
    class Reporting:
        def __init__(self, inner: NonVolatileStore, count: int) -> None:
            self.inner, self.count = inner, count

        def save(self, image: MeterImage) -> None:
            self.inner.save(image)
            self.count += 1
            os.write(report, struct.pack("<I", self.count))

        def load(self) -> MeterImage | None:
            return self.inner.load()

    store = Reporting(make_store(), first_save)
    meter = Meter.restore(_rich_config(), store)  # type: ignore[arg-type]
    if meter is None:
        meter = Meter(_rich_config(), commissioned_at=START, store=store)  # type: ignore[arg-type]
        index = 0
    else:
        index = _resume(meter)
    while True:
        _operate(meter, index)
        index += 1


def _kill_repeatedly(
    make_store: Callable[[], NonVolatileStore], trials: int, seed: int
) -> tuple[int, int]:
    references = _Reference()
    rng = random.Random(seed)
    context = get_context("fork")
    confirmed = 0  # saves completed and reported before the last kill
    kills = 0
    for _ in range(trials):
        read_end, write_end = os.pipe()
        child = context.Process(target=_writer, args=(make_store, confirmed, write_end))
        child.start()
        os.close(write_end)
        # Wait for the writer's first save (however slow the machine), then kill it at a
        # random instant of the saves that follow.
        first = os.read(read_end, 4)
        time.sleep(rng.uniform(0.0, 0.03))
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
        child.join()
        with os.fdopen(read_end, "rb") as pipe:
            blob = first + pipe.read()
        whole = len(blob) - len(blob) % 4
        reported = struct.unpack("<I", blob[whole - 4 : whole])[0] if whole else confirmed
        image = make_store().load()
        if image is None:
            assert reported == 0
            continue
        recovered = _normal(image)
        # Never a mix: the image is one the writer really saved, the last or the one after.
        position = reported - 1
        candidates = [p for p in (position, position + 1) if p >= 0]
        assert any(recovered == references[p] for p in candidates), (reported, kills)
        confirmed = next(p for p in candidates if recovered == references[p]) + 1
        kills += 1
    return kills, confirmed


@pytest.mark.slow
def test_sqlite_store_survives_kills_at_random_points(tmp_path: Path) -> None:
    path = tmp_path / "nv.db"
    kills, saves = _kill_repeatedly(lambda: SQLiteStore(path, "STORE001"), trials=40, seed=1)
    assert kills == 40
    assert saves >= 40  # every trial completed at least one save before its kill
    # The database itself is intact.
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone() == ("ok",)


@pytest.mark.slow
def test_file_store_survives_kills_at_random_points(tmp_path: Path) -> None:
    path = tmp_path / "meter.json"
    kills, saves = _kill_repeatedly(lambda: FileStore(path), trials=40, seed=2)
    assert kills == 40
    assert saves >= 40
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "meter.json"]
    assert len(leftovers) <= 1  # at most the temporary file of the killed write

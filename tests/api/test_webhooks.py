"""Webhooks to a real local HTTP receiver: signed bodies, retries with backoff, a log."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.hmac import HMAC

from meterstack.api import sign, verify_signature

from .conftest import Api, build_api

SECRET = "a-webhook-secret-of-some-length"


class Receiver:
    """An HTTP server that fails the first ``failures`` posts of each event with 500."""

    def __init__(self, failures: int = 2, always_fail: bool = False) -> None:
        self.received: list[tuple[dict[str, str], bytes, int]] = []
        self.failures = failures
        self.always_fail = always_fail
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                event = json.loads(body)["id"]
                with receiver.lock:
                    tries = sum(1 for _, b, _ in receiver.received if json.loads(b)["id"] == event)
                    status = 500 if receiver.always_fail or tries < receiver.failures else 204
                    receiver.received.append((dict(self.headers), body, status))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def delivered(self) -> list[tuple[dict[str, str], bytes]]:
        with self.lock:
            return [(h, b) for h, b, s in self.received if s < 300]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def wait_for(predicate: Any, timeout: float = 20.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def test_signature_against_an_independent_hmac() -> None:
    body = b'{"id":"1"}'
    mac = HMAC(SECRET.encode(), hashes.SHA256())
    mac.update(b"1700000000." + body)
    assert sign(SECRET, 1700000000, body) == "sha256=" + mac.finalize().hex()
    good = sign(SECRET, 1700000000, body)
    assert verify_signature(SECRET, 1700000000, body, good, now=1700000100)
    assert not verify_signature(SECRET, 1700000000, body + b" ", good, now=1700000100)
    assert not verify_signature("other", 1700000000, body, good, now=1700000100)
    assert not verify_signature(SECRET, 1700000000, body, good, now=1700009999)  # too old


def test_alarms_and_vends_are_delivered_signed_after_retries(
    tmp_path: Path, template: Api, receiver: Receiver
) -> None:
    built = build_api(tmp_path, template, webhook_backoff_s=0.2, webhook_max_attempts=5)
    with built.client as client:
        admin = built.as_("admin")
        hook = client.post(
            "/api/v1/webhooks",
            json={
                "url": receiver.url,
                "events": ["alarm.raised", "vend.completed"],
                "secret": SECRET,
            },
            headers=admin,
        )
        assert hook.status_code == 201
        assert hook.json()["secret"] == SECRET
        listed = client.get("/api/v1/webhooks", headers=admin).json()["items"][0]
        assert "secret" not in listed
        alarm = client.post(
            "/api/v1/alarms",
            json={"meter": "MA1", "code": 40, "detail": "terminal cover removed"},
            headers=admin,
        )
        assert alarm.status_code == 201
        vend = client.post(
            "/api/v1/vends",
            json={"request_id": "hook-1", "meter": "MA1", "amount": "25"},
            headers=built.as_("vendor"),
        )
        assert vend.status_code == 201
        assert wait_for(lambda: len(receiver.delivered()) == 2)
        for headers, body in receiver.delivered():
            timestamp = int(headers["X-Meterstack-Timestamp"])
            assert verify_signature(
                SECRET, timestamp, body, headers["X-Meterstack-Signature"], now=time.time()
            )
            assert headers["X-Meterstack-Event"] == json.loads(body)["type"]
        payloads = {json.loads(b)["type"]: json.loads(b)["data"] for _, b in receiver.delivered()}
        assert payloads["alarm.raised"]["code"] == 40
        assert payloads["vend.completed"]["request_id"] == "hook-1"
        assert "token" not in payloads["vend.completed"]
        log = client.get(f"/api/v1/webhooks/{hook.json()['id']}/deliveries", headers=admin).json()[
            "items"
        ]
        assert [d["status"] for d in log] == ["delivered", "delivered"]
        for delivery in log:
            attempts = delivery["attempts_log"]
            assert [a["status"] for a in attempts] == [500, 500, 204]
            times = [datetime.fromisoformat(a["at"]) for a in attempts]
            gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
            assert gaps[0] >= 0.2 * 0.9
            assert gaps[1] >= 0.4 * 0.9  # backoff doubles
    built.store.close()
    built.engine.dispose()


def test_a_delivery_that_keeps_failing_is_marked_failed(tmp_path: Path, template: Api) -> None:
    failing = Receiver(always_fail=True)
    built = build_api(tmp_path, template, webhook_backoff_s=0.05, webhook_max_attempts=3)
    try:
        with built.client as client:
            admin = built.as_("admin")
            hook = client.post(
                "/api/v1/webhooks", json={"url": failing.url, "events": ["*"]}, headers=admin
            ).json()
            client.post("/api/v1/alarms", json={"meter": "MB1", "code": 42}, headers=admin)
            url = f"/api/v1/webhooks/{hook['id']}/deliveries"

            def failed() -> bool:
                items = client.get(url, headers=admin).json()["items"]
                return bool(items) and items[0]["status"] == "failed"

            assert wait_for(failed)
            (delivery,) = client.get(url, headers=admin).json()["items"]
            assert delivery["attempts"] == 3
            assert delivery["last_status"] == 500
            assert len(failing.received) == 3
    finally:
        failing.close()
        built.store.close()
        built.engine.dispose()

"""Who may do what: every refusal is a 401 or 403 problem document."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from meterstack.api.security import Principal, issue_access_token
from meterstack.mdm.operational import ApiKey, ApiUser

from .conftest import Api

PROBLEM = "application/problem+json"


def assert_problem(response: object, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == PROBLEM  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) >= {"type", "title", "status", "detail", "instance"}
    assert body["status"] == status
    assert body["instance"] == response.request.url.path  # type: ignore[attr-defined]
    assert body["type"].startswith("/problems/")
    return body  # type: ignore[no-any-return]


METER_READS = [
    "/api/v1/meters/{m}",
    "/api/v1/meters/{m}/intervals",
    "/api/v1/meters/{m}/registers",
    "/api/v1/meters/{m}/events",
    "/api/v1/meters/{m}/consumption?resolution=day",
    "/api/v1/meters/{m}/credit",
    "/api/v1/meters/{m}/habits",
    "/api/v1/meters/{m}/power-quality",
]


@pytest.mark.parametrize("path", METER_READS)
def test_a_customer_reads_only_their_own_meters(api: Api, path: str) -> None:
    own = api.client.get(path.format(m="MA1"), headers=api.as_("alice"))
    assert own.status_code == 200, own.text
    other = api.client.get(path.format(m="MB1"), headers=api.as_("alice"))
    assert_problem(other, 403)
    missing = api.client.get(path.format(m="NOPE"), headers=api.as_("alice"))
    assert_problem(missing, 403)  # a customer cannot probe which meters exist
    staff = api.client.get(path.format(m="MB1"), headers=api.as_("operator"))
    assert staff.status_code == 200
    assert_problem(api.client.get(path.format(m="NOPE"), headers=api.as_("admin")), 404)
    assert_problem(api.client.get(path.format(m="MA1"), headers=api.as_("vendor")), 403)
    assert_problem(api.client.get(path.format(m="MA1")), 401)


def test_collections_are_scoped_to_the_customer(api: Api) -> None:
    meters = api.client.get("/api/v1/meters", headers=api.as_("alice")).json()
    assert [m["serial"] for m in meters["items"]] == ["MA1"]
    accounts = api.client.get("/api/v1/accounts", headers=api.as_("bob")).json()
    assert [a["number"] for a in accounts["items"]] == ["ACC-B"]
    assert_problem(
        api.client.get(f"/api/v1/accounts/{api.ids['acc_a']}", headers=api.as_("bob")), 403
    )
    assert_problem(
        api.client.get(f"/api/v1/customers/{api.ids['alice']}", headers=api.as_("bob")), 403
    )
    vend = api.client.post(
        "/api/v1/vends",
        json={"request_id": "a1", "meter": "MA1", "amount": "50"},
        headers=api.as_("vendor"),
    ).json()
    assert (
        api.client.get(f"/api/v1/vends/{vend['id']}", headers=api.as_("alice")).status_code == 200
    )
    assert_problem(api.client.get(f"/api/v1/vends/{vend['id']}", headers=api.as_("bob")), 403)
    bob_vends = api.client.get("/api/v1/vends", headers=api.as_("bob")).json()
    assert bob_vends["total"] == 0


def test_a_vendor_cannot_reverse_and_a_customer_cannot_vend(api: Api) -> None:
    vend = api.client.post(
        "/api/v1/vends",
        json={"request_id": "v1", "meter": "MA1", "amount": "50"},
        headers=api.as_("vendor"),
    )
    assert vend.status_code == 201, vend.text
    vend_id = vend.json()["id"]
    body = assert_problem(
        api.client.post(
            f"/api/v1/vends/{vend_id}/reverse",
            json={"reason": "please"},
            headers=api.as_("vendor"),
        ),
        403,
    )
    assert "supervisor" in str(body["detail"])
    assert_problem(
        api.client.post(
            "/api/v1/vends",
            json={"request_id": "c1", "meter": "MA1", "amount": "50"},
            headers=api.as_("alice"),
        ),
        403,
    )
    assert_problem(
        api.client.post(
            "/api/v1/vends",
            json={
                "request_id": "v2",
                "meter": "MA1",
                "amount": "50",
                "vendor_id": api.ids["other_vendor"],
            },
            headers=api.as_("vendor"),
        ),
        403,
    )
    reversed_ = api.client.post(
        f"/api/v1/vends/{vend_id}/reverse", json={"reason": "typo"}, headers=api.as_("operator")
    )
    assert reversed_.status_code == 200
    assert reversed_.json()["status"] == "reversed"


STAFF_ONLY = [
    ("post", "/api/v1/customers", {"name": "X"}),
    ("post", "/api/v1/vendors", {"name": "X", "currency": "ZAR"}),
    ("post", "/api/v1/meters/MA1/commands", {"name": "remote_disconnect"}),
    ("post", "/api/v1/alarms", {"meter": "MA1", "code": 40}),
    ("post", "/api/v1/prepay/settle", None),
    ("get", "/api/v1/sampling", None),
    ("get", "/api/v1/fleet/overview", None),
    ("post", "/api/v1/reconciliations", {"vendor_id": 1, "day": "2026-01-01"}),
]
ADMIN_ONLY = [
    ("post", "/api/v1/users", {"username": "x", "password": "12345678", "role": "admin"}),
    ("get", "/api/v1/users", None),
    ("post", "/api/v1/api-keys", {"name": "erp", "role": "operator"}),
    ("get", "/api/v1/webhooks", None),
    ("get", "/api/v1/ledger/trial-balance", None),
]


@pytest.mark.parametrize(("method", "path", "body"), STAFF_ONLY + ADMIN_ONLY)
def test_roles_are_refused_with_403(api: Api, method: str, path: str, body: object) -> None:
    refused = ["vendor", "alice"] + (["operator"] if (method, path, body) in ADMIN_ONLY else [])
    for who in refused:
        response = api.client.request(method, path, json=body, headers=api.as_(who))
        assert_problem(response, 403)
    assert_problem(api.client.request(method, path, json=body), 401)


def test_bad_credentials_are_401_problems(api: Api) -> None:
    assert_problem(
        api.client.post("/api/v1/auth/token", data={"username": "admin", "password": "wrong!!"}),
        401,
    )
    assert_problem(
        api.client.post("/api/v1/auth/token", data={"username": "ghost", "password": "wrong!!"}),
        401,
    )
    garbage = api.client.get("/api/v1/auth/me", headers={"Authorization": "Bearer not-a-jwt"})
    assert garbage.headers["www-authenticate"] == "Bearer"
    assert_problem(garbage, 401)
    secret = api.app.state.context.jwt_secret
    principal = Principal("user", 1, "admin", "admin")
    expired = issue_access_token(principal, secret, datetime.now(UTC) - timedelta(hours=3), 60)
    assert_problem(
        api.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {expired}"}), 401
    )
    forged = jwt.encode(
        {"sub": "1", "name": "admin", "role": "admin", "exp": int(time.time()) + 600},
        b"another secret of thirty-two bytes!",
        algorithm="HS256",
    )
    assert_problem(
        api.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {forged}"}), 401
    )
    assert_problem(api.client.get("/api/v1/auth/me", headers={"X-API-Key": "nonsense"}), 401)


def test_api_keys_are_hashed_shown_once_and_revocable(api: Api) -> None:
    created = api.client.post(
        "/api/v1/api-keys",
        json={"name": "erp", "role": "operator"},
        headers=api.as_("admin"),
    )
    assert created.status_code == 201
    key = created.json()["key"]
    with Session(api.engine) as session:
        row = session.scalar(select(ApiKey))
        assert row is not None
        assert key not in (row.key_hash, row.prefix)
        assert len(row.key_hash) == 64
        hashes = session.scalars(select(ApiUser.password_hash)).all()
        assert all(h.startswith("scrypt$") for h in hashes)
    me = api.client.get("/api/v1/auth/me", headers={"X-API-Key": key})
    assert me.json()["role"] == "operator"
    listed = api.client.get("/api/v1/api-keys", headers=api.as_("admin")).json()
    assert "key" not in listed["items"][0]
    assert_problem(api.client.get("/api/v1/auth/me", headers={"X-API-Key": key[:-2] + "xx"}), 401)
    revoked = api.client.delete(
        f"/api/v1/api-keys/{created.json()['id']}", headers=api.as_("admin")
    )
    assert revoked.status_code == 204
    assert_problem(api.client.get("/api/v1/auth/me", headers={"X-API-Key": key}), 401)


def test_a_customer_key_sees_only_its_customer(api: Api) -> None:
    created = api.client.post(
        "/api/v1/api-keys",
        json={"name": "bms", "role": "customer", "customer_id": api.ids["bob"]},
        headers=api.as_("admin"),
    ).json()
    headers = {"X-API-Key": created["key"]}
    assert api.client.get("/api/v1/meters/MB1", headers=headers).status_code == 200
    assert_problem(api.client.get("/api/v1/meters/MA1", headers=headers), 403)
    bad = api.client.post(
        "/api/v1/api-keys", json={"name": "x", "role": "customer"}, headers=api.as_("admin")
    )
    assert_problem(bad, 422)

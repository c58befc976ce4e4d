"""Problem documents for every kind of refusal, pagination and its links, rate limiting,
and the OpenAPI document."""

from __future__ import annotations

from pathlib import Path

from meterstack.api.ratelimit import TokenBucketLimiter

from .conftest import Api, build_api
from .test_authorisation import assert_problem


def test_errors_are_problem_documents(api: Api) -> None:
    admin = api.as_("admin")
    assert_problem(api.client.get("/api/v1/no-such-thing", headers=admin), 404)
    assert_problem(api.client.get("/api/v1/vends/424242", headers=admin), 404)
    invalid = assert_problem(
        api.client.post("/api/v1/vends", json={"meter": "MA1"}, headers=admin), 422
    )
    assert invalid["type"] == "/problems/validation"
    assert {e["field"] for e in invalid["errors"]} >= {"body.request_id"}  # type: ignore[union-attr]
    bad_time = assert_problem(
        api.client.get("/api/v1/meters/MA1/intervals?start=2024-01-02", headers=admin), 422
    )
    assert "offset" in str(bad_time["detail"])
    assert_problem(
        api.client.get("/api/v1/meters/MA1/consumption?resolution=week", headers=admin), 422
    )
    vend = {"request_id": "p1", "meter": "MA1", "amount": "10"}
    assert api.client.post("/api/v1/vends", json=vend, headers=api.as_("vendor")).status_code == 201
    conflict = assert_problem(
        api.client.post("/api/v1/vends", json={**vend, "amount": "11"}, headers=api.as_("vendor")),
        409,
    )
    assert "different vend" in str(conflict["detail"])
    broke = api.client.post(
        "/api/v1/vends",
        json={
            "request_id": "p2",
            "meter": "MA1",
            "amount": "5",
            "vendor_id": api.ids["other_vendor"],
        },
        headers=admin,
    )
    assert "float" in str(assert_problem(broke, 409)["detail"])
    unknown = assert_problem(
        api.client.post(
            "/api/v1/vends",
            json={"request_id": "p3", "meter": "ZZ", "amount": "5"},
            headers=api.as_("vendor"),
        ),
        404,
    )
    assert unknown["field"] == "meter"


def test_pagination_links(api: Api) -> None:
    for index in range(7):
        response = api.client.post(
            "/api/v1/vends",
            json={"request_id": f"page-{index}", "meter": "MA1", "amount": "10"},
            headers=api.as_("vendor"),
        )
        assert response.status_code == 201
    first = api.client.get("/api/v1/vends?page_size=3", headers=api.as_("admin"))
    body = first.json()
    assert (body["total"], body["page"], len(body["items"])) == (7, 1, 3)
    assert body["links"]["prev"] is None
    assert body["links"]["last"].endswith("page=3&page_size=3")
    assert 'rel="next"' in first.headers["link"]
    seen = [v["request_id"] for v in body["items"]]
    page = body
    while page["links"]["next"]:
        page = api.client.get(page["links"]["next"], headers=api.as_("admin")).json()
        seen += [v["request_id"] for v in page["items"]]
    assert sorted(seen) == sorted(f"page-{i}" for i in range(7))
    assert len(page["items"]) == 1
    beyond = api.client.get("/api/v1/vends?page=9&page_size=3", headers=api.as_("admin")).json()
    assert beyond["items"] == []
    assert_problem(api.client.get("/api/v1/vends?page=0", headers=api.as_("admin")), 422)
    assert_problem(api.client.get("/api/v1/vends?page_size=5000", headers=api.as_("admin")), 422)


def test_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    bucket = TokenBucketLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    assert [bucket.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take("a") == 0.5  # empty: a token comes back in 1/2 s
    assert bucket.take("b") == 0.0  # each caller has its own bucket
    now[0] = 0.5
    assert bucket.take("a") == 0.0
    now[0] = 100.0
    assert [bucket.take("a") for _ in range(4)][-1] > 0  # never more than the burst


def test_rate_limit_answers_429_with_retry_after(tmp_path: Path, template: Api) -> None:
    built = build_api(tmp_path, template, rate_limit_per_s=0.5, rate_limit_burst=3)
    with built.client as client:
        statuses = [
            client.get("/api/v1/auth/me", headers=built.as_("alice")).status_code for _ in range(4)
        ]
        assert statuses == [200, 200, 200, 429]
        limited = client.get("/api/v1/auth/me", headers=built.as_("alice"))
        body = assert_problem(limited, 429)
        assert body["type"] == "/problems/rate-limited"
        assert int(limited.headers["retry-after"]) >= 1
        # another caller is not limited by alice's bucket
        assert client.get("/api/v1/auth/me", headers=built.as_("bob")).status_code == 200
        assert client.get("/healthz").status_code == 200
    built.store.close()
    built.engine.dispose()


def test_openapi_document(api: Api) -> None:
    document = api.client.get("/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    assert "Problem" in document["components"]["schemas"]
    schemes = document["components"]["securitySchemes"]
    assert schemes["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"] == "/api/v1/auth/token"
    assert schemes["APIKeyHeader"]["name"] == "X-API-Key"
    paths = document["paths"]
    for needed in (
        "/api/v1/meters",
        "/api/v1/meters/{serial}/intervals",
        "/api/v1/meters/{serial}/registers",
        "/api/v1/meters/{serial}/events",
        "/api/v1/alarms",
        "/api/v1/meters/{serial}/commands",
        "/api/v1/tariffs",
        "/api/v1/bills",
        "/api/v1/vends",
        "/api/v1/tokens/management",
        "/api/v1/accounts",
        "/api/v1/webhooks",
    ):
        assert needed in paths, needed
    refusal = paths["/api/v1/vends"]["post"]["responses"]["403"]
    assert "application/problem+json" in refusal["content"]
    assert api.client.get("/").status_code == 200  # the static dashboard placeholder


def test_api_settings_refuse_unknown_keys_and_hide_secrets(tmp_path: Path) -> None:
    import pytest

    from meterstack.core.config import load_settings
    from meterstack.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"api\.rate_limits"):
        load_settings(api={"rate_limits": 5})
    with pytest.raises(ConfigError, match="rate_limit_per_s"):
        load_settings(api={"rate_limit_per_s": 0})
    config = tmp_path / "meterstack.toml"
    config.write_text(
        '[api]\nport = 8123\njwt_secret = "s3cret-s3cret"\n[vending]\nvend_fee = 1.5\n'
    )
    settings = load_settings(config)
    assert settings.api.port == 8123
    assert str(settings.vending.vend_fee) == "1.5"
    assert "s3cret" not in repr(settings)


def test_the_vending_key_is_never_returned(api: Api) -> None:
    from .conftest import VENDING_KEY

    vend = api.client.post(
        "/api/v1/vends",
        json={"request_id": "k1", "meter": "MA1", "amount": "20"},
        headers=api.as_("vendor"),
    )
    texts = [vend.text, api.client.get("/openapi.json").text]
    for path in ("/api/v1/vends", "/api/v1/meters/MA1/credit", "/api/v1/fleet/overview"):
        texts.append(api.client.get(path, headers=api.as_("admin")).text)
    assert all(VENDING_KEY not in text for text in texts)
    assert VENDING_KEY not in repr(api.app.state.context.vending.issuer)

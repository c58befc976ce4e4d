"""Logging in, users, API keys and webhooks."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from meterstack.api.context import Context, CurrentPrincipal, require_roles
from meterstack.api.pagination import Page, PageParams, page_params, paginate
from meterstack.api.problems import PROBLEM_RESPONSES, ProblemError
from meterstack.api.schemas import (
    ApiKeyCreated,
    ApiKeyIn,
    ApiKeyOut,
    DeliveryOut,
    PrincipalOut,
    TokenOut,
    UserIn,
    UserOut,
    WebhookCreated,
    WebhookIn,
    WebhookOut,
)
from meterstack.api.security import (
    Principal,
    hash_api_key,
    hash_password,
    issue_access_token,
    new_api_key,
    verify_password,
)
from meterstack.mdm.operational.audit import record as audit
from meterstack.mdm.operational.models import (
    ApiKey,
    ApiUser,
    Customer,
    Vendor,
    Webhook,
    WebhookDelivery,
)

router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)
Admin = Annotated[Principal, Depends(require_roles("admin"))]
Pages = Annotated[PageParams, Depends(page_params)]

#: A hash to compare against when the user does not exist, so timing does not tell.
_DUMMY_HASH = hash_password("not-a-real-password")


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@router.post("/auth/token", tags=["auth"], response_model=TokenOut)
def login(
    ctx: Context,
    username: Annotated[str, Form(max_length=128)],
    password: Annotated[str, Form(max_length=200)],
    grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
) -> TokenOut:
    """OAuth2 password flow (RFC 6749 4.3): a signed bearer token for a user."""
    with ctx.session() as session:
        user = session.scalar(select(ApiUser).where(ApiUser.username == username))
        ok = verify_password(password, user.password_hash if user else _DUMMY_HASH)
        if user is None or not ok or not user.active:
            raise ProblemError(
                401, "wrong username or password", headers={"WWW-Authenticate": "Bearer"}
            )
        principal = Principal(
            "user", user.id, user.username, user.role, user.customer_id, user.vendor_id
        )
    ttl = ctx.settings.api.token_ttl_s
    token = issue_access_token(principal, ctx.jwt_secret, datetime.now(UTC), ttl)
    return TokenOut(access_token=token, expires_in=ttl)


@router.get("/auth/me", tags=["auth"], response_model=PrincipalOut)
def me(principal: CurrentPrincipal) -> PrincipalOut:
    return PrincipalOut(
        kind=principal.kind,
        id=principal.id,
        name=principal.name,
        role=principal.role,
        customer_id=principal.customer_id,
        vendor_id=principal.vendor_id,
    )


def _check_links(
    session: object, role: str, customer_id: int | None, vendor_id: int | None
) -> None:

    assert isinstance(session, Session)
    if role == "customer":
        if customer_id is None or session.get(Customer, customer_id) is None:
            raise ProblemError(
                422, "a customer login needs an existing customer_id", field="customer_id"
            )
    elif customer_id is not None:
        raise ProblemError(422, "only a customer login has a customer_id", field="customer_id")
    if role == "vendor":
        if vendor_id is None or session.get(Vendor, vendor_id) is None:
            raise ProblemError(422, "a vendor login needs an existing vendor_id", field="vendor_id")
    elif vendor_id is not None:
        raise ProblemError(422, "only a vendor login has a vendor_id", field="vendor_id")


def _user_out(user: ApiUser) -> UserOut:
    return UserOut(
        id=user.id,
        username=user.username,
        role=user.role,
        customer_id=user.customer_id,
        vendor_id=user.vendor_id,
        active=user.active,
    )


@router.post("/users", tags=["auth"], status_code=201, response_model=UserOut)
def create_user(ctx: Context, body: UserIn, principal: Admin) -> UserOut:
    with ctx.session() as session, session.begin():
        _check_links(session, body.role, body.customer_id, body.vendor_id)
        if session.scalar(select(ApiUser.id).where(ApiUser.username == body.username)):
            raise ProblemError(409, f"user {body.username} exists")
        user = ApiUser(
            username=body.username,
            password_hash=hash_password(body.password),
            role=body.role,
            customer_id=body.customer_id,
            vendor_id=body.vendor_id,
            active=True,
            created_at=datetime.now(UTC),
        )
        session.add(user)
        session.flush()
        audit(
            session,
            at=datetime.now(UTC),
            actor=principal.actor,
            action="create",
            entity="api_user",
            entity_id=str(user.id),
            reason="new login",
            after={"username": body.username, "role": body.role},
        )
        return _user_out(user)


@router.get("/users", tags=["auth"], response_model=Page[UserOut])
def list_users(
    ctx: Context, request: Request, response: Response, params: Pages, _: Admin
) -> Page[UserOut]:
    with ctx.session() as session:
        total = session.scalar(select(func.count(ApiUser.id))) or 0
        rows = session.scalars(
            select(ApiUser).order_by(ApiUser.id).offset(params.offset).limit(params.page_size)
        ).all()
        return paginate(request, response, params, [_user_out(u) for u in rows], total)


def _key_out(row: ApiKey) -> dict[str, object]:
    return {
        "id": row.id,
        "prefix": row.prefix,
        "name": row.name,
        "role": row.role,
        "customer_id": row.customer_id,
        "vendor_id": row.vendor_id,
        "created_at": _aware(row.created_at),
        "revoked_at": None if row.revoked_at is None else _aware(row.revoked_at),
    }


@router.post("/api-keys", tags=["auth"], status_code=201, response_model=ApiKeyCreated)
def create_api_key(ctx: Context, body: ApiKeyIn, principal: Admin) -> ApiKeyCreated:
    """A key for a machine (ERP, BMS). The key is in this answer only; keep it safe."""
    key, prefix = new_api_key()
    with ctx.session() as session, session.begin():
        _check_links(session, body.role, body.customer_id, body.vendor_id)
        row = ApiKey(
            prefix=prefix,
            key_hash=hash_api_key(key),
            name=body.name,
            role=body.role,
            customer_id=body.customer_id,
            vendor_id=body.vendor_id,
            created_at=datetime.now(UTC),
        )
        session.add(row)
        session.flush()
        audit(
            session,
            at=datetime.now(UTC),
            actor=principal.actor,
            action="create",
            entity="api_key",
            entity_id=str(row.id),
            reason=body.name,
            after={"prefix": prefix, "role": body.role},
        )
        return ApiKeyCreated(**_key_out(row), key=key)


@router.get("/api-keys", tags=["auth"], response_model=Page[ApiKeyOut])
def list_api_keys(
    ctx: Context, request: Request, response: Response, params: Pages, _: Admin
) -> Page[ApiKeyOut]:
    with ctx.session() as session:
        total = session.scalar(select(func.count(ApiKey.id))) or 0
        rows = session.scalars(
            select(ApiKey).order_by(ApiKey.id).offset(params.offset).limit(params.page_size)
        ).all()
        items = [ApiKeyOut(**_key_out(r)) for r in rows]
        return paginate(request, response, params, items, total)


@router.delete("/api-keys/{key_id}", tags=["auth"], status_code=204)
def revoke_api_key(ctx: Context, key_id: int, principal: Admin) -> Response:
    with ctx.session() as session, session.begin():
        row = session.get(ApiKey, key_id)
        if row is None:
            raise ProblemError(404, f"no API key {key_id}")
        if row.revoked_at is None:
            row.revoked_at = datetime.now(UTC)
            audit(
                session,
                at=datetime.now(UTC),
                actor=principal.actor,
                action="revoke",
                entity="api_key",
                entity_id=str(key_id),
                reason="revoked",
            )
    return Response(status_code=204)


def _hook_out(row: Webhook) -> dict[str, object]:
    return {
        "id": row.id,
        "url": row.url,
        "events": list(row.events),
        "active": row.active,
        "created_at": _aware(row.created_at),
    }


@router.post("/webhooks", tags=["webhooks"], status_code=201, response_model=WebhookCreated)
def create_webhook(ctx: Context, body: WebhookIn, principal: Admin) -> WebhookCreated:
    """Subscribe a URL to events; deliveries are signed with the returned secret."""
    secret = body.secret or secrets.token_urlsafe(32)
    with ctx.session() as session, session.begin():
        row = Webhook(
            url=body.url,
            secret=secret,
            events=list(body.events),
            active=True,
            created_at=datetime.now(UTC),
            created_by=principal.actor,
        )
        session.add(row)
        session.flush()
        audit(
            session,
            at=datetime.now(UTC),
            actor=principal.actor,
            action="create",
            entity="webhook",
            entity_id=str(row.id),
            reason=body.url,
            after={"events": list(body.events)},
        )
        return WebhookCreated(**_hook_out(row), secret=secret)


@router.get("/webhooks", tags=["webhooks"], response_model=Page[WebhookOut])
def list_webhooks(
    ctx: Context, request: Request, response: Response, params: Pages, _: Admin
) -> Page[WebhookOut]:
    with ctx.session() as session:
        total = session.scalar(select(func.count(Webhook.id))) or 0
        rows = session.scalars(
            select(Webhook).order_by(Webhook.id).offset(params.offset).limit(params.page_size)
        ).all()
        items = [WebhookOut(**_hook_out(r)) for r in rows]
        return paginate(request, response, params, items, total)


@router.delete("/webhooks/{webhook_id}", tags=["webhooks"], status_code=204)
def delete_webhook(ctx: Context, webhook_id: int, principal: Admin) -> Response:
    with ctx.session() as session, session.begin():
        row = session.get(Webhook, webhook_id)
        if row is None:
            raise ProblemError(404, f"no webhook {webhook_id}")
        row.active = False
        audit(
            session,
            at=datetime.now(UTC),
            actor=principal.actor,
            action="deactivate",
            entity="webhook",
            entity_id=str(webhook_id),
            reason="unsubscribed",
        )
    return Response(status_code=204)


@router.get(
    "/webhooks/{webhook_id}/deliveries", tags=["webhooks"], response_model=Page[DeliveryOut]
)
def list_deliveries(
    ctx: Context,
    request: Request,
    response: Response,
    webhook_id: int,
    params: Pages,
    _: Admin,
) -> Page[DeliveryOut]:
    """The delivery log: every event for this webhook and each attempt to deliver it."""
    with ctx.session() as session:
        if session.get(Webhook, webhook_id) is None:
            raise ProblemError(404, f"no webhook {webhook_id}")
        query = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(
            query.order_by(WebhookDelivery.id).offset(params.offset).limit(params.page_size)
        ).all()
        items = [
            DeliveryOut(
                id=r.id,
                webhook_id=r.webhook_id,
                event_id=r.event_id,
                event_type=r.event_type,
                status=r.status,
                attempts=r.attempts,
                next_attempt_at=_aware(r.next_attempt_at),
                delivered_at=None if r.delivered_at is None else _aware(r.delivered_at),
                last_status=r.last_status,
                last_error=r.last_error,
                attempts_log=list(r.attempts_log),
                payload=dict(r.payload),
            )
            for r in rows
        ]
        return paginate(request, response, params, items, total)

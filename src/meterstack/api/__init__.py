"""The REST API (FastAPI, OpenAPI 3.1): meters, readings, events and alarms, commands,
tariffs, bills, vends, tokens, accounts; OAuth2 bearer tokens and API keys; RFC 9457
problem details; pagination; a token-bucket rate limiter; signed webhooks.

A face: it may import every package below it. ``meterstack serve`` runs it with uvicorn.
"""

from meterstack.api.app import STATIC_DIR, create_app, create_user, vending_key_of
from meterstack.api.context import ApiContext
from meterstack.api.problems import PROBLEM_MEDIA_TYPE, Problem, ProblemError
from meterstack.api.ratelimit import TokenBucketLimiter
from meterstack.api.routes.meters import record_alarm
from meterstack.api.security import Principal
from meterstack.api.webhooks import (
    EVENT_TYPES,
    WebhookDispatcher,
    enqueue_event,
    sign,
    verify_signature,
)

__all__ = [
    "EVENT_TYPES",
    "PROBLEM_MEDIA_TYPE",
    "STATIC_DIR",
    "ApiContext",
    "Principal",
    "Problem",
    "ProblemError",
    "TokenBucketLimiter",
    "WebhookDispatcher",
    "create_app",
    "create_user",
    "enqueue_event",
    "record_alarm",
    "sign",
    "vending_key_of",
    "verify_signature",
]

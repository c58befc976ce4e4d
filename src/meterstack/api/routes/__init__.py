"""The API's routers, one module per area."""

from meterstack.api.routes import auth, meters, tariffs, vending

__all__ = ["auth", "meters", "tariffs", "vending"]

"""The ``meterstack`` command.

Each group of commands lives in its own module and registers itself on the one
:data:`~meterstack.cli.app.app`; importing this package imports them all.
"""

from meterstack.cli import analytics, demo, mdm, meter, pq, serve, sts, tariff
from meterstack.cli.app import app, main

__all__ = ["analytics", "app", "demo", "main", "mdm", "meter", "pq", "serve", "sts", "tariff"]

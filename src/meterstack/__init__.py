"""meterstack: smart electricity metering end to end.

The package is layered (see ``docs/architecture.md``): ``core`` at the base; the pure
libraries; the device model ``meter``; the wire; the back office; orchestration (``sim``,
``headend``); and the faces (``cli``, ``api``, ``web``).
"""

__version__ = "0.1.0"

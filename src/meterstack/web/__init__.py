"""The web dashboard: static files under ``static/``, served by the API application at
``/`` (see :func:`meterstack.api.create_app`). The pages are built on the API's JSON
endpoints; this package holds no server code."""

__all__: list[str] = []

"""The dashboard's files as the app serves them (no browser needed): every script and
stylesheet that ``index.html`` names is served, and nothing outside the static folder."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from meterstack.api import create_app
from meterstack.core.config import load_settings
from meterstack.mdm.intervals import DuckDBIntervalStore
from meterstack.mdm.operational import create_operational_engine, migrate


def test_index_and_every_asset_it_names_are_served(tmp_path: Path) -> None:
    settings = load_settings(
        None, data_dir=tmp_path / "data", vending={"vending_key": "abababababababab"}
    )
    engine = create_operational_engine(f"sqlite:///{tmp_path / 'op.db'}")
    migrate(engine)
    store = DuckDBIntervalStore()
    try:
        client = TestClient(create_app(settings, engine=engine, store=store, run_webhooks=False))
        index = client.get("/")
        assert index.status_code == 200
        assert index.headers["content-type"].startswith("text/html")
        assets = re.findall(r'(?:src|href)="(/[^"]+\.(?:js|css))"', index.text)
        assert sorted(assets) == ["/app.js", "/style.css", "/vendor/plotly.min.js"]
        for asset in assets:
            answer = client.get(asset)
            assert answer.status_code == 200, asset
            kind = "javascript" if asset.endswith(".js") else "text/css"
            assert kind in answer.headers["content-type"], asset
        assert "Plotly.newPlot" in client.get("/app.js").text
        assert client.get("/vendor/plotly.min.js").text.startswith("/**")
        for outside in ("/../pyproject.toml", "/%2e%2e/__init__.py", "/nope.html"):
            refused = client.get(outside)
            assert refused.status_code == 404, outside
            assert refused.headers["content-type"] == "application/problem+json"
    finally:
        store.close()
        engine.dispose()

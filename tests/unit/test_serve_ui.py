"""The web canvas's bundle served at /ui by the API app (public), and the hint when it is not built."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from openautoglm.serve import ui
from openautoglm.serve.app import create_app
from openautoglm.serve.settings import ServeSettings


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text('<script src="/ui/assets/index-abc.js"></script>', encoding="utf-8")
    (tmp_path / "assets" / "index-abc.js").write_text("console.log('canvas')", encoding="utf-8")
    return tmp_path


def app_with(folder: Path, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setattr(ui, "UI_DIST", folder)
    return TestClient(create_app(ServeSettings(cache="off")))


def test_the_index_and_its_assets_without_a_token(bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client = app_with(bundle, monkeypatch)
    for path in ("/ui", "/ui/"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert "/ui/assets/index-abc.js" in response.text
    asset = client.get("/ui/assets/index-abc.js")
    assert asset.status_code == 200
    assert asset.text == "console.log('canvas')"
    assert client.get("/ui/assets/nope.js").status_code == 404
    assert client.get("/api/v1/stages").status_code == 401  # the API behind it still wants a token


def test_the_bundle_is_gzipped_and_cached_the_index_is_not(bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (bundle / "assets" / "index-abc.js").write_text("console.log('canvas');\n" * 200, encoding="utf-8")
    client = app_with(bundle, monkeypatch)
    asset = client.get("/ui/assets/index-abc.js", headers={"Accept-Encoding": "gzip"})
    assert asset.status_code == 200 and asset.headers["content-encoding"] == "gzip"
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert asset.text == "console.log('canvas');\n" * 200  # httpx decodes it
    assert int(asset.headers["content-length"]) < 200
    plain = client.get("/ui/assets/index-abc.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    index = client.get("/ui/")
    assert index.headers["cache-control"] == "no-store"
    assert client.get("/healthz").headers["cache-control"] == "no-store"


def test_a_missing_bundle_says_how_to_build_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client = app_with(tmp_path / "ui_dist", monkeypatch)
    response = client.get("/ui")
    assert response.status_code == 404
    assert "make ui" in response.text
    assert client.get("/ui/assets/index-abc.js").status_code == 404

"""API keys, loopback rules, tainted versions and oversized bodies."""

from __future__ import annotations

import httpx
import openai
import pytest

from lethe.errors import ConflictError, InputError
from lethe.serve.api import check_exposure, create_app, is_loopback
from lethe.serve.models import DirectoryVersions, ModelPool
from lethe.serve.server import BackgroundServer
from test_chat_fixtures import nano, nano_dir  # noqa: F401  (fixtures)

USER = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def keyed(nano_dir):  # noqa: F811
    pool = ModelPool(DirectoryVersions({"v1": nano_dir, "v0": nano_dir}, tainted=["v0"]))
    app = create_app(pool, api_key="s3cret", max_body_bytes=64 * 1024)
    with BackgroundServer(app) as server:
        yield server
    pool.close()


def test_loopback_rules():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    with pytest.raises(InputError):
        check_exposure("0.0.0.0", None)
    check_exposure("0.0.0.0", "key")


def test_non_loopback_app_needs_a_key(nano_dir):  # noqa: F811
    with pytest.raises(InputError):
        create_app(ModelPool(DirectoryVersions({"v1": nano_dir})), host="0.0.0.0")


def test_right_key_works_wrong_key_is_401(keyed):
    good = openai.OpenAI(base_url=keyed.base_url, api_key="s3cret", max_retries=0)
    assert good.chat.completions.create(model="v1", messages=USER, max_tokens=2).model == "v1"
    bad = openai.OpenAI(base_url=keyed.base_url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as raised:
        bad.models.list()
    assert raised.value.body["code"] == "invalid_api_key"
    assert httpx.get(f"{keyed.base_url}/models").status_code == 401
    assert httpx.get(f"{keyed.url}/health").json()["status"] == "ok"


def test_tainted_version_is_refused_and_hidden(keyed):
    client = openai.OpenAI(base_url=keyed.base_url, api_key="s3cret", max_retries=0)
    assert [m.id for m in client.models.list().data] == ["v1"]
    with pytest.raises(openai.ConflictError) as raised:
        client.chat.completions.create(model="v0", messages=USER, max_tokens=2)
    assert "tainted" in raised.value.body["message"]


def test_tainted_version_served_with_explicit_override(nano_dir):  # noqa: F811
    versions = DirectoryVersions({"v0": nano_dir}, tainted=["v0"])
    with pytest.raises(ConflictError):
        ModelPool(versions).get("v0")
    pool = ModelPool(versions, allow_tainted=True)
    assert pool.get("v0").tainted
    pool.close()


def test_oversized_body_is_413(keyed):
    response = httpx.post(
        f"{keyed.base_url}/chat/completions",
        headers={"authorization": "Bearer s3cret"},
        json={"model": "v1", "messages": [{"role": "user", "content": "x" * 100_000}]},
    )
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"

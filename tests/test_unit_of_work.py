"""One domain operation, one transaction: ledger calls inside `ledger.transaction()` join it."""

from __future__ import annotations

import threading

import pytest

from lethe.ledger.states import VersionStatus


def _register(ledger, name: str):
    return ledger.register_version(kind="pretrain", path=f"/nowhere/{name}", weights_sha256="0" * 64, name=name)


def test_calls_inside_a_transaction_commit_together_or_not_at_all(ledger):
    with pytest.raises(RuntimeError, match="power cut"), ledger.transaction():
        _register(ledger, "v-a")
        assert ledger.resolve_version("latest").name == "v-a"  # reads see the writes so far
        ledger.record_event("test.inside")
        raise RuntimeError("power cut")
    assert ledger.list_versions() == [] and "latest" not in ledger.aliases()
    assert ledger.events(kind="test.inside") == []

    with ledger.transaction() as tx:
        version = _register(ledger, "v-b")
        ledger.discard_version(
            ledger.register_version(
                kind="pretrain", path="/nowhere/c", weights_sha256="1" * 64, name="v-c", aliases=()
            ).id
        )
        assert ledger.open_transaction() is tx
    assert ledger.open_transaction() is None
    assert ledger.resolve_version("latest").id == version.id
    assert [v.status for v in ledger.list_versions(include_discarded=True)] == [
        VersionStatus.PUBLISHED,
        VersionStatus.DISCARDED,
    ]


def test_another_thread_never_joins_an_open_transaction(ledger):
    seen = []
    with ledger.transaction():
        _register(ledger, "v-a")
        thread = threading.Thread(target=lambda: seen.append(ledger.open_transaction()))
        thread.start()
        thread.join()
    assert seen == [None]

"""/notify duplicate detection (protocol-06 §5.5)."""

from __future__ import annotations

from provider_helpers import FakeClock

from reference_peer.provider.dedup import NotifyDedup
from reference_peer.provider.store import Store


def test_same_hub_same_body_is_a_duplicate_other_hub_or_body_is_not():
    dedup = NotifyDedup(Store.memory(), FakeClock())
    assert dedup.record_if_new("hub.example", b"body")
    assert not dedup.record_if_new("hub.example", b"body")
    assert not dedup.record_if_new("HUB.example", b"body")  # domain names are case-insensitive
    assert dedup.record_if_new("other.example", b"body")
    assert dedup.record_if_new("hub.example", b"body2")
    assert dedup.is_duplicate("hub.example", b"body2")
    assert not dedup.is_duplicate("hub.example", b"body3")


def test_hub_and_body_boundary_cannot_be_shifted():
    dedup = NotifyDedup(Store.memory(), FakeClock())
    assert dedup.record_if_new("a.example", b"b.example")
    assert dedup.record_if_new("a.exampleb", b".example")


def test_window_bounds_rows_and_forgets_the_oldest():
    dedup = NotifyDedup(Store.memory(), FakeClock(), window=3)
    for n in range(10):
        assert dedup.record_if_new("hub.example", b"m%d" % n)
    assert len(dedup) == 3
    assert not dedup.record_if_new("hub.example", b"m9")
    assert dedup.record_if_new("hub.example", b"m0")  # fell out of the window


def test_duplicates_remembered_across_restart(tmp_path):
    store = Store.open(tmp_path / "s.sqlite")
    assert NotifyDedup(store, FakeClock()).record_if_new("hub.example", b"body")
    store.close()
    store = Store.open(tmp_path / "s.sqlite")
    assert not NotifyDedup(store, FakeClock()).record_if_new("hub.example", b"body")
    store.close()


def test_record_rolls_back_with_the_processing_transaction():
    store = Store.memory()
    dedup = NotifyDedup(store, FakeClock())
    try:
        with store.transaction():
            assert dedup.record_if_new("hub.example", b"body")
            raise RuntimeError("processing failed")
    except RuntimeError:
        pass
    # The body was not processed, so a retry of it must be processed, not dropped as a duplicate.
    assert dedup.record_if_new("hub.example", b"body")

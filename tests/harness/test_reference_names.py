"""The suite's reference domains: one pair per xdist worker, all one label under ref.test."""

from __future__ import annotations

import pytest

from conformance.harness import reference_names
from conformance.harness.reference_names import (
    all_reference_domains,
    in_reference_zone,
    reference_domains,
    worker_index,
)


def test_worker_zero_keeps_the_default_names_and_others_get_their_own():
    assert tuple(reference_domains(0)) == ("hub.ref.test", "follower.ref.test")
    assert tuple(reference_domains(3)) == ("hub-3.ref.test", "follower-3.ref.test")
    assert all_reference_domains(2) == ["hub.ref.test", "follower.ref.test", "hub-1.ref.test", "follower-1.ref.test"]
    assert all_reference_domains(0) == all_reference_domains(1)


def test_every_name_is_one_label_under_the_zone():
    for domain in all_reference_domains(12):
        assert in_reference_zone(domain)
        assert domain.count(".") == 2  # covered by a single "*.ref.test" mapping
    assert not in_reference_zone("sut.mimi.test") and not in_reference_zone("ref.test")


def test_worker_ids_parse_and_set_the_process_names(monkeypatch):
    monkeypatch.setattr(reference_names, "_current", reference_names.current())
    assert worker_index(None) == 0 and worker_index("gw7") == 7
    with pytest.raises(ValueError):
        worker_index("master")
    assert reference_names.set_worker("gw2").hub == "hub-2.ref.test"
    assert reference_names.current().follower == "follower-2.ref.test"
    reference_names.set_worker(None)
    assert reference_names.current().hub == "hub.ref.test"

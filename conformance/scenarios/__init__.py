"""Conformance checks, one module per area (``test_<area>.py``); the area names the terminal summary line.

Writing a check::

    @pytest.mark.requirements("PROTO-DIRECTORY-WELL-KNOWN")   # required: the IDs it judges
    @pytest.mark.role("hub")                                    # optional: the SUT role it needs
    @pytest.mark.feature("identifierQuery")                     # optional: SUT features it needs
    def test_something(sut, mimi, recorder, poll_until):
        reply = mimi.get(sut.base_urls[sut.primary_domain] + "/...")   # recorded, bounded in time
        control = sut.require_control()                                # NOT_APPLICABLE without one
        poll_until(lambda: ..., what="Bob's client to receive it")     # a deadline, never a sleep
        assert reply.status == 200, "..."                              # scored by the level

Verdict helpers are in :mod:`conformance.verdicts`: ``fail(msg, requirement=...)``, ``warn``,
``not_applicable``, ``ambiguous(amb_id, msg)``. A check never catches harness exceptions to turn
them into a pass.
"""

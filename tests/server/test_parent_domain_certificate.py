"""A client certificate naming a parent domain does not authenticate a subdomain From (RFC 6125 §6.4.1:
a DNS-ID without a wildcard matches exactly), and the fault from-parent-domain-cert breaks just that."""

from __future__ import annotations

import pytest
from transport_helpers import (
    LOOPBACK,
    http_request,
    provider,
    raw_client_context,
    raw_exchange,
    run,
    status_of,
)

from reference_peer.faults.registry import overrides_for
from reference_peer.overrides import NO_OVERRIDES
from reference_peer.server.names import certificate_authenticates
from reference_peer.server.transport import MimiResponse, MimiServer


def test_rfc6125_matching_takes_no_parent_or_child_domain():
    assert not certificate_authenticates("hub.ref.test", ["ref.test"])
    assert not certificate_authenticates("ref.test", ["hub.ref.test"])
    assert certificate_authenticates("hub.ref.test", ["*.ref.test"])
    assert not certificate_authenticates("a.hub.ref.test", ["*.ref.test"])


@pytest.mark.parametrize(("faults", "from_", "status"), [
    ((), "mimi@sub.b.example", 403),
    (("from-parent-domain-cert",), "mimi@sub.b.example", 200),
    (("from-parent-domain-cert",), "mimi@deep.sub.b.example", 200),
    (("from-parent-domain-cert",), "mimi@c.example", 403),  # the fault takes a suffix match only
    (("from-parent-domain-cert",), "mimi@xb.example", 403),  # a label boundary, not a string suffix
])
def test_a_parent_domain_certificate_and_a_subdomain_from(pki, faults, from_, status):
    async def body():
        a = provider(pki, "a.example")

        async def ok(_request):
            return MimiResponse(b"ok")

        a.register("notify", ok)
        overrides = overrides_for(faults) if faults else NO_OVERRIDES
        server = MimiServer([a], pki.ca_cert, host=LOOPBACK, port=0, overrides=overrides)
        await server.start()
        try:
            ctx = raw_client_context(pki, pki.pair("b.example"))  # names b.example only
            request = http_request("POST", "/v1/notify/room", from_=from_, body=b"x")
            response = await raw_exchange(server.port, request, ctx=ctx)
            assert status_of(response) == status
            if status == 403:
                assert server.refusals[-1].reason == "from-certificate-mismatch"
        finally:
            await server.stop()

    run(body())

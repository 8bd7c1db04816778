"""Helpers for the provider-state tests: a fake clock and KeyPackages from the MLS library.

KeyPackages are real, signed ones (reference_peer.mls.make_key_package); the store does not check
their signatures, so the tests only rely on their structure (lifetime, capabilities, extensions).
"""

from __future__ import annotations

from dataclasses import dataclass

from reference_peer.mls import basic_credential, default_capabilities, make_key_package
from reference_peer.overrides import NO_OVERRIDES, Overrides
from reference_peer.provider import ProviderSettings, ProviderState
from reference_peer.provider.consent import ConsentMode, ConsentSettings
from reference_peer.provider.keymaterial import KeyMaterialQuery, KeyMaterialSettings

T0 = 1_800_000_000  # a fixed "now" (2027-01-15)
DOMAIN = "a.example"
ALICE = "mimi://a.example/u/alice"
BOB = "mimi://b.example/u/bob"  # a remote requester
CATHY = "mimi://c.example/u/cathy"  # another remote requester
ROOM1 = "mimi://b.example/r/room1"
ROOM2 = "mimi://b.example/r/room2"


@dataclass
class FakeClock:
    now: float = float(T0)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)


def key_package(
    *,
    suite: int = 1,
    not_after: int = T0 + 86_400,
    not_before: int = T0 - 3_600,
    last_resort: bool = False,
    extensions: list[int] | None = None,
    proposals: list[int] | None = None,
    identity: bytes = b"alice",
    as_message: bool = False,
) -> bytes:
    caps = default_capabilities([suite], extensions=extensions, proposals=proposals)
    bundle = make_key_package(
        suite,
        basic_credential(identity),
        capabilities=caps,
        not_before=not_before,
        not_after=not_after,
        last_resort=last_resort,
    )
    return bundle.to_message() if as_message else bundle.key_package.encode()


def query(
    requester: str = BOB, target: str = ALICE, room: str | None = ROOM1, suites=(1,), **kwargs
) -> KeyMaterialQuery:
    return KeyMaterialQuery(
        requester=requester, target=target, room=room, acceptable_ciphersuites=tuple(suites), **kwargs
    )


def make_provider(
    clock: FakeClock,
    *,
    mode: ConsentMode = ConsentMode.immediate,
    keymaterial: KeyMaterialSettings | None = None,
    consent: ConsentSettings | None = None,
    domains: tuple[str, ...] = (DOMAIN,),
    overrides: Overrides = NO_OVERRIDES,
    **settings,
) -> ProviderState:
    config = ProviderSettings(
        domains=domains,
        consent=consent or ConsentSettings(default_mode=mode),
        keymaterial=keymaterial or KeyMaterialSettings(),
        **settings,
    )
    return ProviderState.memory(config, clock=clock, overrides=overrides)

"""Provider state for the reference peer: durable storage and the rules of protocol-06 §5.2,
§5.5, §5.7, §5.8 and the consent-modes extension, with no HTTP in it (see README.md)."""

from .consent import (
    ConsentDomainError,
    ConsentMode,
    ConsentScope,
    ConsentSettings,
    ConsentVerdict,
    check_consent_domains,
)
from .dedup import NotifyDedup
from .directory_search import Profile, QueryElement, SearchPolicy, SearchSettings, elements_from_request
from .keymaterial import KeyMaterialQuery, KeyMaterialResult, KeyMaterialSettings, query_from_request
from .outbox import DeliveryResult, Outbox, OutboxItem, OutboxWorker, RetryPolicy
from .provider import ProviderSettings, ProviderState
from .store import Store

__all__ = [
    "ConsentDomainError",
    "ConsentMode",
    "ConsentScope",
    "ConsentSettings",
    "ConsentVerdict",
    "DeliveryResult",
    "KeyMaterialQuery",
    "KeyMaterialResult",
    "KeyMaterialSettings",
    "NotifyDedup",
    "Outbox",
    "OutboxItem",
    "OutboxWorker",
    "Profile",
    "ProviderSettings",
    "ProviderState",
    "QueryElement",
    "RetryPolicy",
    "SearchPolicy",
    "SearchSettings",
    "Store",
    "check_consent_domains",
    "elements_from_request",
    "query_from_request",
]

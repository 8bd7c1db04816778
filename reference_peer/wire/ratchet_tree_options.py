"""draft-mahy-mls-ratchet-tree-options (latest, -04): RatchetTreeOption, PartialGroupInfo, DomainList.

Two places where the draft's own text is inconsistent:

- AMB-RATCHET-TREE-OPTION-CASE: the enum names ``httpsUri(2)`` but the select says
  ``case httpsUrl``; read as the enum value (no byte changes).
- AMB-RATCHET-TREE-NODE-OPTIONAL: ``full`` carries ``Node ratchet_tree<V>`` although the text says
  "the complete ``ratchet_tree`` extension is included", whose content is RFC 9420's
  ``optional<Node> ratchet_tree<V>``. Strict reads the extension's layout (blank leaves are
  representable); tolerant also accepts a vector of bare Nodes.
"""

from __future__ import annotations

from .codec import Enum8, Struct, case, opaque, vector, wire
from .mls import Extension, Node, RatchetTree


class RatchetTreeRepresentation(Enum8):
    """ratchet-tree-options §3 RatchetTreeRepresentation."""

    reserved = 0
    full = 1
    httpsUri = 2
    outOfBand = 3
    distributionService = 4


class RatchetTreeOption(Struct):
    """ratchet-tree-options §3 RatchetTreeOption (``distributionService`` carries nothing)."""

    representation: RatchetTreeRepresentation = wire(RatchetTreeRepresentation)
    ratchet_tree: list = wire(
        RatchetTree,
        when=case("representation", RatchetTreeRepresentation.full),
        alt=(vector(Node), "AMB-RATCHET-TREE-NODE-OPTIONAL", "ratchet_tree as Node<V> without optional<> presence octets"),
    )
    ratchet_tree_url: bytes = wire(opaque, when=case("representation", RatchetTreeRepresentation.httpsUri))
    tree_signature: bytes = wire(
        opaque, when=case("representation", RatchetTreeRepresentation.httpsUri, RatchetTreeRepresentation.outOfBand)
    )


class Domain(Struct):
    """ratchet-tree-options §3.1 Domain."""

    domain: bytes = wire(opaque)


class DomainList(Struct):
    """ratchet-tree-options §3.1 DomainList: the ratchet_tree_source_domains GroupContext extension."""

    domains: list[Domain] = wire(vector(Domain))


class RatchetTreePresence(Enum8):
    """ratchet-tree-options §4 RatchetTreePresence."""

    no_ratchet_tree = 0
    present = 1
    removed = 2
    added = 3


class PartialGroupInfo(Struct):
    """ratchet-tree-options §4 PartialGroupInfo: what the hub cannot rebuild of a GroupInfo."""

    ratchet_tree_presence: RatchetTreePresence = wire(RatchetTreePresence)
    group_info_extensions: list[Extension] = wire(vector(Extension))
    signature: bytes = wire(opaque)

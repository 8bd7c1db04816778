"""The public ratchet tree (RFC 9420 §7): nodes, resolutions, tree hashes, parent hashes and the
tree operations of Add, Update and Remove. Holds no private keys (see treekem.py)."""

from __future__ import annotations

from collections.abc import Iterator

from ..wire.codec import DecodeError, EncodeError, decode_value
from ..wire.mls import LeafNode, LeafNodeSource, Node, NodeType, ParentNode
from ..wire.mls import RatchetTree as RatchetTreeCodec
from . import tree_math as tm
from .crypto import CipherSuite, vl
from .errors import InvalidTree, MalformedMessage

TreeNode = LeafNode | ParentNode | None


class RatchetTree:
    """A ratchet tree of ``n_leaves`` (a power of two) leaves; ``nodes[i]`` is None when blank."""

    def __init__(self, suite: CipherSuite, nodes: list[TreeNode]) -> None:
        self.suite = suite
        self.nodes = nodes
        self.n_leaves = (len(nodes) + 1) // 2
        self._hashes: dict[int, bytes] = {}
        # Encodings of node objects (nodes are replaced, never mutated, so identity is a safe key;
        # the object is kept alongside so its id cannot be reused while cached).
        self._encodings: dict[int, tuple[object, bytes]] = {}

    def _encode_node(self, node: LeafNode | ParentNode) -> bytes:
        entry = self._encodings.get(id(node))
        if entry is None or entry[0] is not node:
            if len(self._encodings) > 4 * len(self.nodes) + 64:
                self._encodings = {}
            entry = (node, node.encode())
            self._encodings[id(node)] = entry
        return entry[1]

    # -- construction and serialization ------------------------------------------------------------

    @classmethod
    def create(cls, suite: CipherSuite, leaf: LeafNode) -> RatchetTree:
        return cls(suite, [leaf])

    @classmethod
    def from_wire(cls, suite: CipherSuite, wire_nodes: list[Node | None]) -> RatchetTree:
        if not wire_nodes:
            raise InvalidTree("empty ratchet tree")
        if wire_nodes[-1] is None:
            raise InvalidTree("ratchet tree ends with a blank node (not truncated)")
        if len(wire_nodes) % 2 == 0:
            raise InvalidTree("ratchet tree has an even number of nodes")
        n_leaves = 1
        while 2 * n_leaves - 1 < len(wire_nodes):
            n_leaves *= 2
        nodes: list[TreeNode] = [None] * (2 * n_leaves - 1)
        for i, node in enumerate(wire_nodes):
            if node is None:
                continue
            if (i % 2 == 0) != (node.node_type == NodeType.leaf):
                raise InvalidTree(f"node {i}: {node.node_type.name} node at a {'leaf' if i % 2 == 0 else 'parent'} position")
            nodes[i] = node.leaf_node if i % 2 == 0 else node.parent_node
        return cls(suite, nodes)

    @classmethod
    def decode(cls, suite: CipherSuite, data: bytes) -> RatchetTree:
        try:
            wire_nodes = decode_value(RatchetTreeCodec, data)
        except DecodeError as exc:
            raise MalformedMessage(f"ratchet tree: {exc}") from None
        return cls.from_wire(suite, wire_nodes)

    def to_wire(self) -> list[Node | None]:
        out: list[Node | None] = []
        for i, node in enumerate(self.nodes):
            if node is None:
                out.append(None)
            elif i % 2 == 0:
                out.append(Node(node_type=NodeType.leaf, leaf_node=node))
            else:
                out.append(Node(node_type=NodeType.parent, parent_node=node))
        while out and out[-1] is None:
            out.pop()
        return out

    def encode(self) -> bytes:
        # Equivalent to encode_value(RatchetTreeCodec, self.to_wire()), reusing node encodings.
        last = max((i for i, node in enumerate(self.nodes) if node is not None), default=-1)
        body = bytearray()
        for i in range(last + 1):
            node = self.nodes[i]
            if node is None:
                body.append(0)
            else:
                body += b"\x01\x01" if i % 2 == 0 else b"\x01\x02"
                body += self._encode_node(node)
        return vl(bytes(body))

    def copy(self) -> RatchetTree:
        clone = RatchetTree(self.suite, list(self.nodes))
        clone._hashes = dict(self._hashes)
        clone._encodings = dict(self._encodings)
        return clone

    # -- access ----------------------------------------------------------------------------------

    def leaf(self, leaf_index: int) -> LeafNode | None:
        if not 0 <= leaf_index < self.n_leaves:
            return None
        return self.nodes[2 * leaf_index]  # type: ignore[return-value]

    def leaves(self) -> Iterator[tuple[int, LeafNode]]:
        """(leaf index, leaf) for every non-blank leaf."""
        for i in range(0, len(self.nodes), 2):
            node = self.nodes[i]
            if node is not None:
                yield i // 2, node  # type: ignore[misc]

    def member_count(self) -> int:
        return sum(1 for _ in self.leaves())

    def set_node(self, index: int, value: TreeNode) -> None:
        self.nodes[index] = value
        self._invalidate(index)

    def _invalidate(self, index: int) -> None:
        hashes = self._hashes
        hashes.pop(index, None)
        n = self.n_leaves
        r = tm.root(n)
        while index != r:
            index = tm.parent(index, n)
            hashes.pop(index, None)

    # -- structure ---------------------------------------------------------------------------------

    def resolution(self, index: int) -> list[int]:
        node = self.nodes[index]
        if node is not None:
            if index % 2 == 1:
                return [index] + [2 * leaf for leaf in node.unmerged_leaves]  # type: ignore[union-attr]
            return [index]
        if index % 2 == 0:
            return []
        return self.resolution(tm.left(index)) + self.resolution(tm.right(index))

    def filtered_direct_path(self, leaf_index: int) -> list[int]:
        """Direct path of the leaf minus nodes whose copath child has an empty resolution (§4.1.2)."""
        n = self.n_leaves
        out = []
        x = 2 * leaf_index
        r = tm.root(n)
        while x != r:
            p = tm.parent(x, n)
            sib = tm.right(p) if x < p else tm.left(p)
            if self.resolution(sib):
                out.append(p)
            x = p
        return out

    # -- hashes ------------------------------------------------------------------------------------

    def tree_hash(self, index: int | None = None) -> bytes:
        if index is None:
            index = tm.root(self.n_leaves)
        cached = self._hashes.get(index)
        if cached is not None:
            return cached
        node = self.nodes[index]
        if index % 2 == 0:
            data = b"\x01" + (index // 2).to_bytes(4, "big")
            data += b"\x00" if node is None else b"\x01" + self._encode_node(node)
        else:
            data = b"\x02" + (b"\x00" if node is None else b"\x01" + self._encode_node(node))
            data += vl(self.tree_hash(tm.left(index))) + vl(self.tree_hash(tm.right(index)))
        value = self.suite.hash(data)
        self._hashes[index] = value
        return value

    def _tree_hash_without(self, index: int, removed_leaves: frozenset[int]) -> bytes:
        """Tree hash of a subtree with some leaves blanked and dropped from unmerged lists (§7.9.2)."""
        if not removed_leaves or not any(leaf in removed_leaves for leaf in tm.subtree_leaves(index)):
            return self.tree_hash(index)
        node = self.nodes[index]
        if index % 2 == 0:
            return self.suite.hash(b"\x01" + (index // 2).to_bytes(4, "big") + b"\x00")
        if node is not None:
            kept = [leaf for leaf in node.unmerged_leaves if leaf not in removed_leaves]  # type: ignore[union-attr]
            node = node.replace(unmerged_leaves=kept)
        data = b"\x02" + (b"\x00" if node is None else b"\x01" + node.encode())
        data += vl(self._tree_hash_without(tm.left(index), removed_leaves))
        data += vl(self._tree_hash_without(tm.right(index), removed_leaves))
        return self.suite.hash(data)

    def parent_hash_of(self, parent_index: int, sibling_index: int) -> bytes:
        """ParentHash(P) as seen from P's child whose sibling is ``sibling_index`` (§7.9)."""
        node = self.nodes[parent_index]
        assert node is not None
        original_sibling = self._tree_hash_without(sibling_index, frozenset(node.unmerged_leaves))
        return self.suite.hash(vl(node.encryption_key) + vl(node.parent_hash) + vl(original_sibling))

    def verify_parent_hashes(self) -> None:
        """Every non-blank parent node must be parent-hash valid (§7.9.2)."""
        n = self.n_leaves
        for p in range(1, len(self.nodes), 2):
            node = self.nodes[p]
            if node is None:
                continue
            unmerged = set(node.unmerged_leaves)
            valid = False
            for child, sib in ((tm.left(p), tm.right(p)), (tm.right(p), tm.left(p))):
                expected = self.parent_hash_of(p, sib)
                resolution = self.resolution(child)
                unmerged_below = {2 * leaf for leaf in unmerged if 2 * leaf in range(child - (1 << tm.level(child)) + 1, child + (1 << tm.level(child)))}
                for d in resolution:
                    dnode = self.nodes[d]
                    d_parent_hash = _node_parent_hash(dnode)
                    if d_parent_hash is not None and d_parent_hash == expected:
                        if set(resolution) - {d} == unmerged_below:
                            valid = True
                            break
                if valid:
                    break
            if not valid:
                raise InvalidTree(f"parent node {p} is not parent-hash valid")
        del n

    def verify_structure(self) -> None:
        """Unmerged-leaf consistency (§7.9.3: leaves listed under a parent are in its subtree and
        also listed in every parent between them and that parent) and distinct keys."""
        for p in range(1, len(self.nodes), 2):
            node = self.nodes[p]
            if node is None:
                continue
            for leaf in node.unmerged_leaves:
                if not 0 <= leaf < self.n_leaves or leaf not in tm.subtree_leaves(p):
                    raise InvalidTree(f"parent {p} lists unmerged leaf {leaf} outside its subtree")
                if self.nodes[2 * leaf] is None:
                    raise InvalidTree(f"parent {p} lists blank leaf {leaf} as unmerged")
                x = 2 * leaf
                while True:
                    x = tm.parent(x, self.n_leaves)
                    if x == p:
                        break
                    between = self.nodes[x]
                    if between is not None and leaf not in between.unmerged_leaves:
                        raise InvalidTree(f"leaf {leaf} is unmerged at {p} but not at {x}")
        seen_encryption: set[bytes] = set()
        seen_signature: set[bytes] = set()
        for i, node in enumerate(self.nodes):
            if node is None:
                continue
            key = bytes(node.encryption_key)
            if key in seen_encryption:
                raise InvalidTree(f"node {i} repeats an encryption key")
            seen_encryption.add(key)
            if i % 2 == 0:
                sig = bytes(node.signature_key)
                if sig in seen_signature:
                    raise InvalidTree(f"leaf {i // 2} repeats a signature key")
                seen_signature.add(sig)

    # -- operations (§7.7, §12.1) --------------------------------------------------------------------

    def _extend(self) -> None:
        self.nodes.extend([None] * (len(self.nodes) + 1))
        self.n_leaves *= 2
        # Every existing node keeps its index and subtree; only the root moved.
        self._hashes.pop(tm.root(self.n_leaves), None)

    def add_leaf(self, leaf: LeafNode) -> int:
        """Put the leaf in the leftmost blank leaf (extending the tree if none), mark it unmerged."""
        index = next((i for i in range(self.n_leaves) if self.nodes[2 * i] is None), None)
        if index is None:
            index = self.n_leaves
            self._extend()
        self.set_node(2 * index, leaf)
        n = self.n_leaves
        for p in tm.direct_path(2 * index, n):
            node = self.nodes[p]
            if node is not None:
                self.set_node(p, node.replace(unmerged_leaves=sorted([*node.unmerged_leaves, index])))
        return index

    def blank_path(self, leaf_index: int) -> None:
        for p in tm.direct_path(2 * leaf_index, self.n_leaves):
            if self.nodes[p] is not None:
                self.set_node(p, None)

    def update_leaf(self, leaf_index: int, leaf: LeafNode) -> None:
        self.set_node(2 * leaf_index, leaf)
        self.blank_path(leaf_index)

    def remove_leaf(self, leaf_index: int) -> None:
        self.set_node(2 * leaf_index, None)
        self.blank_path(leaf_index)

    def truncate(self) -> None:
        """Drop the right half while it holds no member (§7.7)."""
        while self.n_leaves > 1 and all(self.nodes[2 * i] is None for i in range(self.n_leaves // 2, self.n_leaves)):
            half = self.n_leaves // 2
            del self.nodes[2 * half - 1 :]
            self.n_leaves = half
            self._hashes = {k: v for k, v in self._hashes.items() if k < len(self.nodes)}
            self._hashes.pop(tm.root(self.n_leaves), None) if self.n_leaves > 1 else None

    # -- commit path ---------------------------------------------------------------------------------

    def apply_path(self, leaf_index: int, leaf: LeafNode, path_keys: list[bytes]) -> list[int]:
        """Merge an UpdatePath's public part: blank the direct path, set the filtered path's keys,
        then set their parent hashes top-down. Returns the filtered direct path. The leaf's own
        parent_hash is NOT checked here (see expected_leaf_parent_hash)."""
        while leaf_index >= self.n_leaves:
            self._extend()
        filtered = self.filtered_direct_path(leaf_index)
        if len(filtered) != len(path_keys):
            raise InvalidTree(f"UpdatePath has {len(path_keys)} nodes, the filtered direct path {len(filtered)}")
        self.blank_path(leaf_index)
        for p, key in zip(filtered, path_keys, strict=True):
            self.set_node(p, ParentNode(encryption_key=bytes(key), parent_hash=b"", unmerged_leaves=[]))
        self.set_node(2 * leaf_index, leaf)
        self._set_parent_hashes(leaf_index, filtered)
        return filtered

    def _set_parent_hashes(self, leaf_index: int, filtered: list[int]) -> bytes:
        """Set parent_hash on the filtered path nodes top-down; return the leaf's expected value."""
        parent_hash = b""
        for i in range(len(filtered) - 1, -1, -1):
            p = filtered[i]
            node = self.nodes[p]
            if node.parent_hash != parent_hash:  # type: ignore[union-attr]
                self.set_node(p, node.replace(parent_hash=parent_hash))  # type: ignore[union-attr]
            child = filtered[i - 1] if i > 0 else 2 * leaf_index
            # The copath child of p on the way to the leaf.
            sib = tm.right(p) if tm.is_in_subtree(tm.left(p), child) else tm.left(p)
            parent_hash = self.parent_hash_of(p, sib)
        return parent_hash

    def expected_leaf_parent_hash(self, leaf_index: int, filtered: list[int]) -> bytes:
        if not filtered:
            return b""
        p = filtered[0]
        sib = tm.right(p) if tm.is_in_subtree(tm.left(p), 2 * leaf_index) else tm.left(p)
        return self.parent_hash_of(p, sib)


def _node_parent_hash(node: TreeNode) -> bytes | None:
    if node is None:
        return None
    if isinstance(node, ParentNode):
        return bytes(node.parent_hash)
    if node.leaf_node_source == LeafNodeSource.commit:
        return bytes(node.parent_hash)
    return None


__all__ = ["RatchetTree", "TreeNode", "EncodeError"]

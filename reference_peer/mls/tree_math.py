"""Array-based binary tree math (RFC 9420 §4.1, Appendix C). Leaves are at even node indices."""

from __future__ import annotations


def level(x: int) -> int:
    if x & 1 == 0:
        return 0
    k = 0
    while (x >> k) & 1:
        k += 1
    return k


def node_width(n_leaves: int) -> int:
    return 0 if n_leaves == 0 else 2 * (n_leaves - 1) + 1


def root(n_leaves: int) -> int:
    w = node_width(n_leaves)
    return (1 << (w.bit_length() - 1)) - 1


def left(x: int) -> int:
    k = level(x)
    if k == 0:
        raise ValueError("leaf has no children")
    return x ^ (1 << (k - 1))


def right(x: int) -> int:
    k = level(x)
    if k == 0:
        raise ValueError("leaf has no children")
    return x ^ (3 << (k - 1))


def parent(x: int, n_leaves: int) -> int:
    if x == root(n_leaves):
        raise ValueError("root has no parent")
    k = level(x)
    b = (x >> (k + 1)) & 1
    return (x | (1 << k)) ^ (b << (k + 1))


def sibling(x: int, n_leaves: int) -> int:
    p = parent(x, n_leaves)
    return right(p) if x < p else left(p)


def direct_path(x: int, n_leaves: int) -> list[int]:
    r = root(n_leaves)
    path = []
    while x != r:
        x = parent(x, n_leaves)
        path.append(x)
    return path


def copath(x: int, n_leaves: int) -> list[int]:
    r = root(n_leaves)
    out = []
    while x != r:
        out.append(sibling(x, n_leaves))
        x = parent(x, n_leaves)
    return out


def is_in_subtree(ancestor: int, x: int) -> bool:
    """Whether node x is ancestor itself or below it."""
    return abs(x - ancestor) < (1 << level(ancestor))


def subtree_leaves(x: int) -> range:
    """Leaf indices under node x."""
    k = level(x)
    first_node = x - ((1 << k) - 1)
    return range(first_node // 2, first_node // 2 + (1 << k))


def common_ancestor(leaf_a: int, leaf_b: int) -> int:
    """Lowest common ancestor (node index) of two leaf indices."""
    a, b = 2 * leaf_a, 2 * leaf_b
    if a == b:
        return a
    k = 0
    while a != b:
        a >>= 1
        b >>= 1
        k += 1
    return (a << k) + (1 << (k - 1)) - 1

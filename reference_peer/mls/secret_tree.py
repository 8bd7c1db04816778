"""Secret tree and hash ratchets (RFC 9420 §9), with sender-data keys (§6.3.2)."""

from __future__ import annotations

from . import tree_math as tm
from .crypto import CipherSuite
from .errors import SecretReuse

# How far ahead of the newest generation a receiver will ratchet, and how many skipped keys it
# keeps for out-of-order delivery (§9.2 leaves both to the application).
MAX_FORWARD_GENERATIONS = 1024
MAX_RETAINED_KEYS = 256


class HashRatchet:
    """One sender's handshake or application ratchet."""

    __slots__ = ("suite", "secret", "generation", "retained")

    def __init__(self, suite: CipherSuite, secret: bytes) -> None:
        self.suite = suite
        self.secret = secret
        self.generation = 0
        self.retained: dict[int, tuple[bytes, bytes]] = {}

    def _derive(self) -> tuple[bytes, bytes]:
        s = self.suite
        key = s.derive_tree_secret(self.secret, "key", self.generation, s.aead_key_length)
        nonce = s.derive_tree_secret(self.secret, "nonce", self.generation, s.aead_nonce_length)
        return key, nonce

    def _advance(self) -> None:
        self.secret = self.suite.derive_tree_secret(self.secret, "secret", self.generation, self.suite.hash_length)
        self.generation += 1

    def next_key(self) -> tuple[int, bytes, bytes]:
        """For sending: (generation, key, nonce), consuming the generation."""
        generation = self.generation
        key, nonce = self._derive()
        self._advance()
        return generation, key, nonce

    def key_for(self, generation: int) -> tuple[bytes, bytes]:
        """For receiving: the key of a generation, consumed (deleted) once returned."""
        if generation < self.generation:
            entry = self.retained.pop(generation, None)
            if entry is None:
                raise SecretReuse(f"generation {generation} was already used or is too old")
            return entry
        if generation - self.generation > MAX_FORWARD_GENERATIONS:
            raise SecretReuse(f"generation {generation} is too far ahead of {self.generation}")
        while self.generation < generation:
            self.retained[self.generation] = self._derive()
            self._advance()
        while len(self.retained) > MAX_RETAINED_KEYS:
            del self.retained[min(self.retained)]
        key_nonce = self._derive()
        self._advance()
        return key_nonce

    def peek(self, generation: int) -> tuple[bytes, bytes]:
        """The key of a generation without consuming anything (test vectors)."""
        clone = HashRatchet(self.suite, self.secret)
        clone.generation = self.generation
        while clone.generation < generation:
            clone._advance()
        return clone._derive()

    def copy(self) -> HashRatchet:
        clone = HashRatchet(self.suite, self.secret)
        clone.generation = self.generation
        clone.retained = dict(self.retained)
        return clone


class SecretTree:
    def __init__(self, suite: CipherSuite, encryption_secret: bytes, n_leaves: int) -> None:
        self.suite = suite
        self.n_leaves = n_leaves
        self._secrets: dict[int, bytes] = {tm.root(n_leaves): encryption_secret}
        self._ratchets: dict[int, tuple[HashRatchet, HashRatchet]] = {}

    def _leaf_secret(self, leaf_index: int) -> bytes:
        target = 2 * leaf_index
        # Walk down from the lowest stored ancestor, deleting each consumed parent secret (§9).
        path = [target] + tm.direct_path(target, self.n_leaves)
        start = next(i for i, x in enumerate(path) if x in self._secrets)
        for i in range(start, 0, -1):
            node = path[i]
            secret = self._secrets.pop(node)
            s = self.suite
            self._secrets[tm.left(node)] = s.expand_with_label(secret, "tree", b"left", s.hash_length)
            self._secrets[tm.right(node)] = s.expand_with_label(secret, "tree", b"right", s.hash_length)
        return self._secrets.pop(target)

    def ratchets(self, leaf_index: int) -> tuple[HashRatchet, HashRatchet]:
        """(handshake, application) ratchets of a leaf."""
        if not 0 <= leaf_index < self.n_leaves:
            raise SecretReuse(f"leaf {leaf_index} is outside the secret tree")
        pair = self._ratchets.get(leaf_index)
        if pair is None:
            if 2 * leaf_index not in self._secrets and not any(
                x in self._secrets for x in tm.direct_path(2 * leaf_index, self.n_leaves)
            ):
                raise SecretReuse(f"leaf {leaf_index}'s secret was already consumed")
            secret = self._leaf_secret(leaf_index)
            s = self.suite
            pair = (
                HashRatchet(s, s.expand_with_label(secret, "handshake", b"", s.hash_length)),
                HashRatchet(s, s.expand_with_label(secret, "application", b"", s.hash_length)),
            )
            self._ratchets[leaf_index] = pair
        return pair

    def copy(self) -> SecretTree:
        clone = SecretTree.__new__(SecretTree)
        clone.suite = self.suite
        clone.n_leaves = self.n_leaves
        clone._secrets = dict(self._secrets)
        clone._ratchets = {k: (a.copy(), b.copy()) for k, (a, b) in self._ratchets.items()}
        return clone


def sender_data_key_nonce(suite: CipherSuite, sender_data_secret: bytes, ciphertext: bytes) -> tuple[bytes, bytes]:
    sample = bytes(ciphertext[: suite.hash_length])
    return (
        suite.expand_with_label(sender_data_secret, "key", sample, suite.aead_key_length),
        suite.expand_with_label(sender_data_secret, "nonce", sample, suite.aead_nonce_length),
    )

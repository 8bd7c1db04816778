"""Runners for the official RFC 9420 test vectors: one function per file, each checking one case
and raising AssertionError (or an MLSError) when the case fails."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from reference_peer.mls import framing
from reference_peer.mls import key_schedule as ks
from reference_peer.mls import tree_math as tm
from reference_peer.mls.crypto import CipherSuite, cipher_suite
from reference_peer.mls.group import Group, PublicGroup, decode_message, proposal_ref
from reference_peer.mls.leaf import KeyPackageBundle, key_package_ref, validate_leaf_node
from reference_peer.mls.secret_tree import SecretTree, sender_data_key_nonce
from reference_peer.mls.tree import RatchetTree
from reference_peer.wire.codec import PrefixReader, decode_value, encode_value
from reference_peer.wire.mls import (
    Add,
    Commit,
    ExternalInit,
    FramedContent,
    FramedContentAuthData,
    GroupContext,
    GroupContextExtensions,
    GroupInfo,
    GroupSecrets,
    KeyPackage,
    MLSMessage,
    PreSharedKey,
    PreSharedKeyID,
    ProposalType,
    ProtocolVersion,
    PSKType,
    ReInit,
    Remove,
    Sender,
    SenderType,
    Update,
    WireFormat,
)
from reference_peer.wire.mls import (
    RatchetTree as RatchetTreeCodec,
)

# file -> (passed, total for provided suites, skipped: suite not provided); printed by conftest.py.
VECTOR_TALLY: dict[str, tuple[int, int, int]] = {}

VECTOR_DIR = Path(__file__).resolve().parent.parent / "vectors" / "mls"
h = bytes.fromhex


def load(name: str) -> list[dict]:
    with gzip.open(VECTOR_DIR / f"{name}.json.gz", "rt") as fh:
        return json.load(fh)


def context(suite: CipherSuite, group_id: bytes, epoch: int, tree_hash: bytes, cth: bytes) -> bytes:
    return GroupContext(version=ProtocolVersion.mls10, cipher_suite=suite.suite_id, group_id=group_id, epoch=epoch,
                        tree_hash=tree_hash, confirmed_transcript_hash=cth, extensions=[]).encode()


def run_tree_math(t: dict) -> None:
    n = t["n_leaves"]
    assert tm.node_width(n) == t["n_nodes"] and tm.root(n) == t["root"]

    def opt(fn, i, *a):
        try:
            return fn(i, *a)
        except ValueError:
            return None

    for i in range(t["n_nodes"]):
        assert opt(tm.left, i) == t["left"][i] and opt(tm.right, i) == t["right"][i]
        assert opt(tm.parent, i, n) == t["parent"][i] and opt(tm.sibling, i, n) == t["sibling"][i]


def run_crypto_basics(t: dict) -> None:
    cs = cipher_suite(t["cipher_suite"])
    r = t["ref_hash"]
    assert cs.ref_hash(r["label"], h(r["value"])) == h(r["out"])
    e = t["expand_with_label"]
    assert cs.expand_with_label(h(e["secret"]), e["label"], h(e["context"]), e["length"]) == h(e["out"])
    d = t["derive_secret"]
    assert cs.derive_secret(h(d["secret"]), d["label"]) == h(d["out"])
    d = t["derive_tree_secret"]
    assert cs.derive_tree_secret(h(d["secret"]), d["label"], d["generation"], d["length"]) == h(d["out"])
    s = t["sign_with_label"]
    assert cs.verify_with_label(h(s["pub"]), s["label"], h(s["content"]), h(s["signature"]))
    assert cs.verify_with_label(h(s["pub"]), s["label"], h(s["content"]), cs.sign_with_label(h(s["priv"]), s["label"], h(s["content"])))
    e = t["encrypt_with_label"]
    assert cs.decrypt_with_label(h(e["priv"]), e["label"], h(e["context"]), h(e["kem_output"]), h(e["ciphertext"])) == h(e["plaintext"])
    kem, ct = cs.encrypt_with_label(h(e["pub"]), e["label"], h(e["context"]), h(e["plaintext"]))
    assert cs.decrypt_with_label(h(e["priv"]), e["label"], h(e["context"]), kem, ct) == h(e["plaintext"])


def run_deserialization(t: dict) -> None:
    reader = PrefixReader(h(t["vlbytes_header"]))
    assert reader.varint() == t["length"] and reader.remaining == 0


def run_secret_tree(t: dict) -> None:
    cs = cipher_suite(t["cipher_suite"])
    sd = t["sender_data"]
    assert sender_data_key_nonce(cs, h(sd["sender_data_secret"]), h(sd["ciphertext"])) == (h(sd["key"]), h(sd["nonce"]))
    st = SecretTree(cs, h(t["encryption_secret"]), len(t["leaves"]))
    for i, gens in enumerate(t["leaves"]):
        hs, app = st.ratchets(i)
        for g in gens:
            assert hs.peek(g["generation"]) == (h(g["handshake_key"]), h(g["handshake_nonce"]))
            assert app.peek(g["generation"]) == (h(g["application_key"]), h(g["application_nonce"]))


def run_key_schedule(t: dict) -> None:
    cs = cipher_suite(t["cipher_suite"])
    init = h(t["initial_init_secret"])
    for n, e in enumerate(t["epochs"]):
        gc = context(cs, h(t["group_id"]), n, h(e["tree_hash"]), h(e["confirmed_transcript_hash"]))
        assert gc == h(e["group_context"])
        s = ks.next_epoch(cs, init, h(e["commit_secret"]), h(e["psk_secret"]), gc)
        for name in ("joiner_secret", "welcome_secret", "sender_data_secret", "encryption_secret", "exporter_secret",
                     "epoch_authenticator", "external_secret", "confirmation_key", "membership_key", "resumption_psk", "init_secret"):
            assert getattr(s, name) == h(e[name]), name
        assert s.external_key_pair(cs)[1] == h(e["external_pub"])
        x = e["exporter"]
        # The vectors use the label's hex text itself as the exporter label.
        assert ks.mls_exporter(cs, s.exporter_secret, x["label"], h(x["context"]), x["length"]) == h(x["secret"])
        init = s.init_secret


def run_psk_secret(t: dict) -> None:
    cs = cipher_suite(t["cipher_suite"])
    psks = [(PreSharedKeyID(psktype=PSKType.external, psk_id=h(p["psk_id"]), psk_nonce=h(p["psk_nonce"])), h(p["psk"])) for p in t["psks"]]
    assert ks.psk_secret(cs, psks) == h(t["psk_secret"])


def run_message_protection(t: dict) -> None:
    cs = cipher_suite(t["cipher_suite"])
    gid = h(t["group_id"])
    gc = context(cs, gid, t["epoch"], h(t["tree_hash"]), h(t["confirmed_transcript_hash"]))
    pub_key, priv_key = h(t["signature_pub"]), h(t["signature_priv"])

    def body(content: FramedContent, kind: str) -> bytes:
        return {"proposal": lambda: content.proposal.encode(), "commit": lambda: content.commit.encode(),
                "application": lambda: bytes(content.application_data)}[kind]()

    for kind in ("proposal", "commit", "application"):
        if kind != "application":
            m = MLSMessage.decode(h(t[kind + "_pub"])).public_message
            assert framing.verify_content(cs, pub_key, WireFormat.mls_public_message, m.content, gc, m.auth.signature)
            assert framing.membership_tag(cs, h(t["membership_key"]), m.content, m.auth, gc) == m.membership_tag
            assert body(m.content, kind) == h(t[kind])
            # Our own protection of the same content verifies too.
            ours = framing.make_public_message(cs, m.content, priv_key, gc, membership_key=h(t["membership_key"]),
                                               confirmation_tag=m.auth.confirmation_tag)
            assert framing.verify_content(cs, pub_key, WireFormat.mls_public_message, ours.content, gc, ours.auth.signature)
        m = MLSMessage.decode(h(t[kind + "_priv"])).private_message
        content, auth = framing.decrypt_private(cs, SecretTree(cs, h(t["encryption_secret"]), 2), h(t["sender_data_secret"]), m)
        assert framing.verify_content(cs, pub_key, WireFormat.mls_private_message, content, gc, auth.signature)
        assert body(content, kind) == h(t[kind])
        # Round trip through our own PrivateMessage encryption.
        sender_tree = SecretTree(cs, h(t["encryption_secret"]), 2)
        ours = framing.encrypt_private(cs, sender_tree, h(t["sender_data_secret"]), content, priv_key, gc,
                                       confirmation_tag=auth.confirmation_tag, padding=7)
        back, back_auth = framing.decrypt_private(cs, SecretTree(cs, h(t["encryption_secret"]), 2), h(t["sender_data_secret"]), ours)
        assert back == content and framing.verify_content(cs, pub_key, WireFormat.mls_private_message, back, gc, back_auth.signature)


def run_transcript_hashes(t: dict) -> None:
    cs = cipher_suite(t["cipher_suite"])
    data = h(t["authenticated_content"])
    reader = PrefixReader(data)
    wire_format = int.from_bytes(reader.fixed(2), "big")
    content = reader.value(FramedContent)
    sig = reader.opaque()
    tag = reader.opaque()
    assert reader.remaining == 0
    confirmed = ks.confirmed_transcript_hash(cs, h(t["interim_transcript_hash_before"]), framing.confirmed_hash_input(wire_format, content, sig))
    assert confirmed == h(t["confirmed_transcript_hash_after"])
    assert cs.mac(h(t["confirmation_key"]), confirmed) == tag
    assert ks.interim_transcript_hash(cs, confirmed, tag) == h(t["interim_transcript_hash_after"])


def run_welcome(t: dict) -> None:
    cs = cipher_suite(t["cipher_suite"])
    kp = MLSMessage.decode(h(t["key_package"])).key_package
    w = MLSMessage.decode(h(t["welcome"])).welcome
    ref = key_package_ref(cs, kp)
    entry = next(e for e in w.secrets if bytes(e.new_member) == ref)
    gs = GroupSecrets.decode(cs.decrypt_with_label(h(t["init_priv"]), "Welcome", bytes(w.encrypted_group_info),
                                                   entry.encrypted_group_secrets.kem_output, entry.encrypted_group_secrets.ciphertext))
    key, nonce = ks.welcome_key_nonce(cs, ks.welcome_secret(cs, gs.joiner_secret, bytes(cs.hash_length)))
    gi = GroupInfo.decode(cs.aead_decrypt(key, nonce, b"", bytes(w.encrypted_group_info)))
    tbs = gi.encode()[: -len(encode_value(_opaque(), gi.signature))]
    assert cs.verify_with_label(h(t["signer_pub"]), "GroupInfoTBS", tbs, gi.signature)
    secrets = ks.epoch_from_joiner(cs, gs.joiner_secret, None, gi.group_context.encode())
    assert cs.mac(secrets.confirmation_key, bytes(gi.group_context.confirmed_transcript_hash)) == bytes(gi.confirmation_tag)


def _opaque():
    from reference_peer.wire.codec import opaque

    return opaque


def run_tree_validation(t: dict) -> None:
    cs = cipher_suite(t["cipher_suite"])
    tree = RatchetTree.decode(cs, h(t["tree"]))
    for i, value in enumerate(t["tree_hashes"]):
        assert tree.tree_hash(i) == h(value)
    for i, value in enumerate(t["resolutions"]):
        assert tree.resolution(i) == value
    tree.verify_parent_hashes()
    tree.verify_structure()
    for index, leaf in tree.leaves():
        validate_leaf_node(cs, leaf, expected_source=None, group_id=h(t["group_id"]), leaf_index=index, check_lifetime=False)
    assert tree.encode() == h(t["tree"])


def _public_group(cs: CipherSuite, tree: RatchetTree, group_id: bytes = b"", epoch: int = 0) -> PublicGroup:
    g = PublicGroup.__new__(PublicGroup)
    g.suite = cs
    g.tree = tree
    g.context = GroupContext(version=ProtocolVersion.mls10, cipher_suite=cs.suite_id, group_id=group_id, epoch=epoch,
                             tree_hash=tree.tree_hash(), confirmed_transcript_hash=b"", extensions=[])
    g.proposal_cache = {}
    g.check_lifetimes = False
    g.app_data_handlers = {}
    return g


def run_tree_operations(t: dict) -> None:
    from reference_peer.mls.group import AppliedProposal
    from reference_peer.wire.mls import Proposal

    cs = cipher_suite(t["cipher_suite"])
    tree = RatchetTree.decode(cs, h(t["tree_before"]))
    assert tree.tree_hash() == h(t["tree_hash_before"])
    proposal = Proposal.decode(h(t["proposal"]))
    g = _public_group(cs, tree)
    sender = Sender(sender_type=SenderType.member, leaf_index=t["proposal_sender"])
    # Apply the single proposal as a commit by another member would (§12.3), without the
    # list-level checks that need a real committer.
    committer = Sender(sender_type=SenderType.member, leaf_index=0xFFFF)
    prov = g._apply_proposals([AppliedProposal(proposal, sender, b"ref")], committer, validate=False)
    assert prov.tree.encode() == h(t["tree_after"])
    assert prov.tree.tree_hash() == h(t["tree_hash_after"])


def run_treekem(t: dict) -> None:
    from reference_peer.mls.group import _Provisional
    from reference_peer.wire.mls import UpdatePath

    cs = cipher_suite(t["cipher_suite"])
    base = RatchetTree.decode(cs, h(t["ratchet_tree"]))
    base.verify_parent_hashes()
    # Private state of each leaf: its leaf key and path secrets must match the public tree.
    privates: dict[int, dict[int, tuple[bytes, bytes]]] = {}
    for lp in t["leaves_private"]:
        keys = {2 * lp["index"]: (h(lp["encryption_priv"]), cs.hpke_public_key(h(lp["encryption_priv"])))}
        assert keys[2 * lp["index"]][1] == bytes(base.leaf(lp["index"]).encryption_key)
        for ps in lp["path_secrets"]:
            priv, pub = cs.derive_key_pair(cs.derive_secret(h(ps["path_secret"]), "node"))
            assert pub == bytes(base.nodes[ps["node"]].encryption_key)
            keys[ps["node"]] = (priv, pub)
        privates[lp["index"]] = keys
    for up in t["update_paths"]:
        path = UpdatePath.decode(h(up["update_path"]))
        sender = up["sender"]
        for lp in t["leaves_private"]:
            index = lp["index"]
            # The vector's epoch is the provisional (new) one: the member sits one epoch before it.
            g = _treekem_member(cs, t, base, index, privates[index])
            prov = _Provisional(base.copy(), [], [], [], [], None, [], True)
            filtered = g._validate_path_leaf(prov, sender, path)
            assert prov.tree.tree_hash() == h(up["tree_hash_after"])
            prov.tree.verify_parent_hashes()
            if index == sender:
                continue
            commit_secret, _ = g._decrypt_path(prov, sender, filtered, path)
            assert commit_secret == h(up["commit_secret"])
            expected = up["path_secrets"][index]
            if expected is not None:
                ancestor = tm.common_ancestor(index, sender)
                secret = h(expected)
                # The path secret at the common ancestor derives the commit secret up the path.
                for node in filtered[filtered.index(ancestor):]:
                    secret = cs.derive_secret(secret, "path")
                    del node
                assert secret == h(up["commit_secret"])
    # A fresh UpdatePath from every leaf whose private state is given reaches all the others.
    by_index = {lp["index"]: lp for lp in t["leaves_private"]}
    for sender, lp in by_index.items():
        committer = _treekem_member(cs, t, base, sender, privates[sender])
        committer.signature_priv = h(lp["signature_priv"])
        prov = _Provisional(base.copy(), [], [], [], [], None, [], True)
        path, commit_secret, _, _ = committer._create_path(prov, sender)
        for index in by_index:
            if index == sender:
                continue
            receiver = _treekem_member(cs, t, base, index, privates[index])
            received = _Provisional(base.copy(), [], [], [], [], None, [], True)
            filtered = receiver._validate_path_leaf(received, sender, path)
            assert received.tree.tree_hash() == prov.tree.tree_hash()
            assert receiver._decrypt_path(received, sender, filtered, path)[0] == commit_secret


def _treekem_member(cs: CipherSuite, t: dict, tree: RatchetTree, index: int, keys: dict) -> Group:
    g = Group.__new__(Group)
    g.suite = cs
    g.context = GroupContext(version=ProtocolVersion.mls10, cipher_suite=cs.suite_id, group_id=h(t["group_id"]), epoch=t["epoch"] - 1,
                             tree_hash=b"", confirmed_transcript_hash=h(t["confirmed_transcript_hash"]), extensions=[])
    g.tree = tree.copy()
    g.check_lifetimes = False
    g.app_data_handlers = {}
    g.own_leaf = index
    g.private_keys = dict(keys)
    g._template_leaf = None
    return g


def run_messages(t: dict) -> None:
    structs = {
        "mls_welcome": MLSMessage, "mls_group_info": MLSMessage, "mls_key_package": MLSMessage,
        "group_secrets": GroupSecrets, "add_proposal": Add, "update_proposal": Update, "remove_proposal": Remove,
        "pre_shared_key_proposal": PreSharedKey, "re_init_proposal": ReInit, "external_init_proposal": ExternalInit,
        "group_context_extensions_proposal": GroupContextExtensions, "commit": Commit,
        "public_message_application": MLSMessage, "public_message_proposal": MLSMessage, "public_message_commit": MLSMessage,
        "private_message": MLSMessage,
    }
    for name, cls in structs.items():
        data = h(t[name])
        assert cls.decode(data).encode() == data, name
    data = h(t["ratchet_tree"])
    assert encode_value(RatchetTreeCodec, decode_value(RatchetTreeCodec, data)) == data


def run_passive_client(t: dict) -> None:
    cs = cipher_suite(t["cipher_suite"])
    kp = MLSMessage.decode(h(t["key_package"])).key_package
    assert isinstance(kp, KeyPackage)
    assert cs.signature_public_key(h(t["signature_priv"])) == bytes(kp.leaf_node.signature_key)
    assert cs.hpke_public_key(h(t["encryption_priv"])) == bytes(kp.leaf_node.encryption_key)
    assert cs.hpke_public_key(h(t["init_priv"])) == bytes(kp.init_key)
    bundle = KeyPackageBundle(kp, h(t["init_priv"]), h(t["encryption_priv"]), h(t["signature_priv"]))
    psks = {h(p["psk_id"]): h(p["psk"]) for p in t["external_psks"]}
    tree = h(t["ratchet_tree"]) if t["ratchet_tree"] else None
    g = Group.join(h(t["welcome"]), bundle, ratchet_tree=tree, external_psks=psks)
    assert g.epoch_authenticator == h(t["initial_epoch_authenticator"])
    for n, epoch in enumerate(t["epochs"]):
        for p in epoch["proposals"]:
            r = g.process(h(p))
            assert r.kind == "proposal"
        r = g.process(h(epoch["commit"]))
        assert r.kind == "commit"
        assert g.epoch_authenticator == h(epoch["epoch_authenticator"]), f"epoch {n}"


RUNNERS = {
    "tree-math": run_tree_math,
    "crypto-basics": run_crypto_basics,
    "deserialization": run_deserialization,
    "secret-tree": run_secret_tree,
    "key-schedule": run_key_schedule,
    "psk_secret": run_psk_secret,
    "message-protection": run_message_protection,
    "transcript-hashes": run_transcript_hashes,
    "welcome": run_welcome,
    "tree-validation": run_tree_validation,
    "tree-operations": run_tree_operations,
    "treekem": run_treekem,
    "messages": run_messages,
    "passive-client-welcome": run_passive_client,
    "passive-client-handling-commit": run_passive_client,
    "passive-client-random": run_passive_client,
}

_ = (proposal_ref, decode_message, ProposalType, FramedContentAuthData)

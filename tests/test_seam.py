"""The seam between the protocol rules and the deliberate faults / allowed variants (issue 15).

Rule code imports no fault or variant and asks no process-wide set: a peer is built with its own
:class:`~reference_peer.overrides.Overrides`, and the rule code asks them at named steps
(``self.overrides.departs(STEP)``, ``self.overrides.hook(STEP, ...)``). These tests hold that in place:

* no rule module imports ``reference_peer.faults`` or calls ``active``/``activate``/``faults_on``/
  ``active_faults`` (only the entry points ``cli.py`` and ``config.py`` turn configured names into
  overrides or validate them);
* no fault module asks ``active(...)``: a fault is what it names in ``departs=``/``hooks=``;
* every fault and variant departs from at least one declared step, every declared step is departed
  from by some fault or variant (no dead steps), and every step names requirements of the catalogue;
* the :class:`Overrides` mechanics (``during``, hook order, ``NO_OVERRIDES``, pickling).
"""

from __future__ import annotations

import ast
import importlib
import pickle
import pkgutil
from pathlib import Path

import pytest

import reference_peer
from reference_peer import overrides as ov
from reference_peer.overrides import NO_OVERRIDES, BuiltWith, Overrides, Step, UnknownStep

PEER_DIR = Path(reference_peer.__file__).resolve().parent
FAULTS_PACKAGE = "reference_peer.faults"
# The entry points: they turn configured fault and variant names into Overrides (cli.py) or validate
# them (config.py). Every other module of reference_peer outside faults/ is rule code.
ENTRY_POINTS = {"cli.py", "config.py"}
PROCESS_WIDE = {"active", "activate", "faults_on", "active_faults"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PEER_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported_modules(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The absolute names an import statement may bind (``from X import y``: both X and X.y)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        package = module if is_package else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
    else:
        base = node.module or ""
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def _is_faults(name: str) -> bool:
    return name == FAULTS_PACKAGE or name.startswith(FAULTS_PACKAGE + ".")


def _called_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _rule_modules() -> list[Path]:
    faults_dir = PEER_DIR / "faults"
    return sorted(
        path for path in PEER_DIR.rglob("*.py")
        if faults_dir not in path.parents and path.relative_to(PEER_DIR).as_posix() not in ENTRY_POINTS
    )


def test_rule_modules_import_no_fault_and_ask_no_process_wide_set() -> None:
    """(a) Outside reference_peer/faults/ and the entry points, nothing imports reference_peer.faults
    (absolute or relative, at module level or inside a function) or calls active(), activate(),
    faults_on() or active_faults(): a rule asks its own ``self.overrides``."""
    offences = []
    for path in _rule_modules():
        module = _module_name(path)
        where = path.relative_to(PEER_DIR.parent)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = _imported_modules(node, module, path.name == "__init__.py")
                if any(_is_faults(name) for name in names):
                    offences.append(f"{where}:{node.lineno}: imports {FAULTS_PACKAGE}")
            elif isinstance(node, ast.Call) and _called_name(node) in PROCESS_WIDE:
                offences.append(f"{where}:{node.lineno}: calls {_called_name(node)}(...)")
    assert not offences, "rule code reaches the faults (build the peer with overrides instead):\n" + "\n".join(offences)


def test_fault_modules_do_not_ask_active() -> None:
    """(b) A fault or variant is what it names in ``departs=``/``hooks=``; its module asks no active()."""
    offences = []
    for path in sorted((PEER_DIR / "faults").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Call) and _called_name(node) == "active":
                offences.append(f"{path.relative_to(PEER_DIR.parent)}:{node.lineno}")
    assert not offences, "fault modules still ask active(...):\n" + "\n".join(offences)


def _declare_every_step() -> tuple[dict, dict, dict]:
    """Import every module of reference_peer (so every step is declared); the registries afterwards."""
    for info in pkgutil.walk_packages([str(PEER_DIR)], prefix="reference_peer."):
        importlib.import_module(info.name)
    from reference_peer.faults import REGISTRY, VARIANTS

    return dict(ov.STEPS), REGISTRY, VARIANTS


def _named_steps(entry) -> set[str]:
    return set(entry.departs) | set(entry.hooks)


def test_every_fault_and_variant_departs_from_declared_steps() -> None:
    """(c) Every fault and every variant names at least one step (``departs=`` or ``hooks=``), and every
    step it names is declared by the rule code."""
    steps, registry, variants = _declare_every_step()
    empty, undeclared = [], []
    for kind, entries in (("fault", registry), ("variant", variants)):
        for entry in entries.values():
            named = _named_steps(entry)
            if not named:
                empty.append(f"{kind} {entry.name}")
            undeclared += [f"{kind} {entry.name}: {name}" for name in sorted(named - set(steps))]
    assert not undeclared, "steps named but declared nowhere:\n" + "\n".join(undeclared)
    assert not empty, f"{len(empty)} faults/variants depart from no step:\n" + "\n".join(sorted(empty))


def test_every_declared_step_is_departed_from() -> None:
    """(d) No dead steps: each declared step is named by at least one fault or variant."""
    steps, registry, variants = _declare_every_step()
    named = set().union(*(_named_steps(e) for e in (*registry.values(), *variants.values())))
    dead = sorted(set(steps) - named)
    assert not dead, "steps no fault or variant departs from:\n" + "\n".join(dead)


def test_every_step_names_catalogue_requirements() -> None:
    """(e) A step names at least one requirement ID, and every ID it names is in the catalogue."""
    from conformance.catalogue import load_catalogue

    catalogue = load_catalogue()
    steps, _, _ = _declare_every_step()
    untagged = sorted(name for name, s in steps.items() if not s.requirements)
    unknown = [f"{name}: {req}" for name, s in sorted(steps.items()) for req in s.requirements if req not in catalogue]
    assert not unknown, "steps name requirement IDs the catalogue lacks:\n" + "\n".join(unknown)
    assert not untagged, "steps tagged with no requirement:\n" + "\n".join(untagged)


# -- (f) the Overrides mechanics ----------------------------------------------------------------


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch):
    """A private step table, so the unit tests declare steps without touching the peer's."""
    monkeypatch.setattr(ov, "STEPS", {})
    return ov


def test_step_declaration_refuses_bad_names_duplicates_and_missing_summary(steps) -> None:
    declared = ov.step("test.seam.rule", "PROTO-X", summary="a rule")
    assert declared == Step("test.seam.rule", ("PROTO-X",), "a rule") and ov.STEPS["test.seam.rule"] is declared
    with pytest.raises(ValueError, match="twice"):
        ov.step("test.seam.rule", summary="again")
    with pytest.raises(ValueError, match="dotted"):
        ov.step("undotted", summary="bad")
    with pytest.raises(ValueError, match="dotted"):
        ov.step("Test.Seam", summary="bad")
    with pytest.raises(ValueError, match="summary"):
        ov.step("test.seam.other", summary="")


def test_during_adds_departures_for_the_block_only(steps) -> None:
    a = ov.step("test.seam.a", summary="a")
    b = ov.step("test.seam.b", summary="b")
    peer = Overrides({"test.seam.a": ()}, ["base"])
    assert peer.departs(a) and not peer.departs(b)
    extra = Overrides({"test.seam.b": (lambda: "b",)}, ["extra"])
    with peer.during(extra):
        assert peer.departs(a) and peer.departs(b)
        assert peer.hook(b) == "b"
        assert peer.sources == ("base", "extra")
    assert peer.departs(a) and not peer.departs(b) and peer.hook(b) is None
    assert peer.sources == ("base",)
    with pytest.raises(RuntimeError), peer.during(extra):  # removed even when the block raises
        raise RuntimeError
    assert not peer.departs(b)
    other = Overrides()  # the addition is on this peer only
    with peer.during(extra):
        assert not other.departs(b)


def test_no_overrides_refuses_during(steps) -> None:
    a = ov.step("test.seam.a", summary="a")
    with pytest.raises(RuntimeError, match="NO_OVERRIDES"), NO_OVERRIDES.during(Overrides({"test.seam.a": ()})):
        pass
    assert not NO_OVERRIDES.departs(a) and not NO_OVERRIDES


def test_hooks_run_in_order_and_the_first_result_that_is_not_none_wins(steps) -> None:
    a = ov.step("test.seam.a", summary="a")
    calls = []

    def hook(name, result):
        def run(*args, **kwargs):
            calls.append((name, args, kwargs))
            return result
        return run

    peer = Overrides.of([("first", {"test.seam.a": (hook("first", None),)}),
                         ("second", {"test.seam.a": (hook("second", 2),)}),
                         ("third", {"test.seam.a": (hook("third", 3),)})])
    assert peer.hook(a, 1, key="v") == 2
    assert calls == [("first", (1,), {"key": "v"}), ("second", (1,), {"key": "v"})]
    with peer.during(Overrides({"test.seam.a": (hook("layer", 4),)})):  # a block's hooks run after the peer's
        assert peer.hook(a) == 2
    calls.clear()
    only_none = Overrides({"test.seam.a": (hook("none", None),)})
    assert only_none.hook(a) is None and only_none.departs(a)
    assert Overrides({"test.seam.a": ()}).hook(a) is None  # departs without a hook: the caller's default


def test_an_undeclared_step_is_refused(steps) -> None:
    ghost = Step("test.seam.ghost", (), "never declared")
    with pytest.raises(UnknownStep, match="test.seam.ghost"):
        Overrides().departs(ghost)
    with pytest.raises(UnknownStep):
        Overrides().hook(ghost)


class _Kept(BuiltWith):
    def __init__(self) -> None:
        self.value = 7


def _hub_room():
    from reference_peer.mls import basic_credential, cipher_suite
    from reference_peer.room import ROLE_ADMIN, HubIdentity, HubRoom, LocalClients, default_policy, room_extensions
    from reference_peer.wire.mls import ExternalSender

    priv, pub = cipher_suite(1).generate_signature_key_pair()
    identity = HubIdentity("a.example", priv, ExternalSender(signature_key=pub,
                                                             credential=basic_credential(b"mimi://a.example")))
    alice = LocalClients("a.example").add("alice", "phone")
    alice.create_group(room_extensions(identity.external_sender, alice.user_uri.encode(), ROLE_ADMIN, default_policy()))
    return HubRoom.from_group("mimi://a.example/r/seam", identity, alice.group), alice


def test_a_pickled_rule_object_carries_no_overrides() -> None:
    """A stored room or client never carries a fault from the process that wrote it: the holder hands
    its own overrides to what it loads (``built_with``)."""
    faulty = Overrides({"any.step.name": ()}, ["some-fault"])
    room, alice = _hub_room()
    for obj in (_Kept(), room, alice):
        assert obj.built_with(faulty) is obj and obj.overrides is faulty
        loaded = pickle.loads(pickle.dumps(obj))
        assert "overrides" not in vars(loaded), type(obj).__name__
        assert loaded.overrides is NO_OVERRIDES, type(obj).__name__
        assert obj.overrides is faulty  # pickling did not strip the live object
    assert pickle.loads(pickle.dumps(_Kept().built_with(faulty))).value == 7

"""The suite PKI: the CA whose certificates the suite's reference peers present, kept across runs.

A vendor's server has to trust this CA for the reference peers' client certificates. A server
started outside the suite cannot be told about a new CA each run, so the CA lives in a folder of
its own (``mimi-conformance pki init DIR``) and every run reuses it:

* ``DIR/ca.pem``: the CA certificate, the one file a SUT is given;
* ``DIR/ca.key``: its private key (mode 0600), read by the suite only;
* ``DIR/README.txt``: what these files are.

Leaf certificates and trust bundles are written into ``leaf_dir`` (a run's own folder), never into
``DIR``, so a SUT handed a run folder never sees the CA key. A run without a suite PKI of its own
makes one under its output folder (the plugin does that, once per run).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from reference_peer.pki import CertificateAuthority, write_test_pki

CA_CERT = "ca.pem"
CA_KEY = "ca.key"
README = "README.txt"
LEAVES = "leaves"
PUBLISHED_CA = "suite-ca.pem"
# Long enough that a vendor's CI keeps one CA for years; leaves are made per run and live 30 days.
SUITE_CA_DAYS = 5 * 365
SUITE_CA_NAME = "MIMI conformance suite CA"

_README_TEXT = """\
MIMI conformance suite PKI (made by `mimi-conformance pki init`).

ca.pem   the suite's CA certificate. Give your server this file to trust: the suite's reference
         peers (*.ref.test) present client and server certificates issued by this CA.
ca.key   the CA's private key. Keep it private: only the suite reads it, to issue the reference
         peers' certificates for each run. Never give it to the server under test.
leaves/  certificates `pki init` issues for its own use; runs write theirs into their output folder.

Use it in a run with `mimi-conformance run --suite-pki DIR` (or the manifest's suite.pki).
Renew with `mimi-conformance pki init DIR --force`, then give your server the new ca.pem.
"""


class SuitePkiError(ValueError):
    """The suite PKI cannot be used; the message is one sentence naming the fix."""


def _init_hint(directory: Path, *, force: bool = False) -> str:
    return f"run `mimi-conformance pki init {directory}{' --force' if force else ''}`"


def _write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``path`` whole or not at all (a concurrent reader never sees half a key)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(temporary, mode)  # O_CREAT's mode is filtered by the umask
    temporary.replace(path)


@dataclasses.dataclass
class SuitePki:
    """The suite's CA (in ``directory``) and the leaf certificates issued from it (in ``leaf_dir``)."""

    directory: Path
    leaf_dir: Path
    ca: CertificateAuthority
    ca_cert: Path
    certs: dict[str, tuple[Path, Path]] = dataclasses.field(default_factory=dict)  # domain -> (cert, key)
    reused: bool = False  # init() found a complete PKI and kept it

    @classmethod
    def init(cls, directory: str | os.PathLike[str], *, force: bool = False) -> SuitePki:
        """The suite PKI in ``directory``: reused when complete, made when absent, renewed with ``force``."""
        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise SuitePkiError(f"{directory} is a file, not a folder: choose another folder for the suite PKI.")
        cert_path, key_path = directory / CA_CERT, directory / CA_KEY
        if not force:
            if cert_path.exists() and key_path.exists():
                pki = cls.load(directory, directory / LEAVES)
                pki.reused = True
                return pki
            if cert_path.exists() or key_path.exists():
                present, absent = (CA_CERT, CA_KEY) if cert_path.exists() else (CA_KEY, CA_CERT)
                raise SuitePkiError(
                    f"{directory} holds {present} without {absent}: {_init_hint(directory, force=True)} "
                    "to make a new CA (then give your server the new ca.pem)."
                )
        ca = CertificateAuthority.create(SUITE_CA_NAME, days=SUITE_CA_DAYS)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            if force and (directory / LEAVES).is_dir():
                shutil.rmtree(directory / LEAVES)  # issued by the CA being replaced
            # The key first: a complete ca.pem is what tells a reader that the PKI is there.
            _write_atomically(key_path, ca.root.key_pem, 0o600)
            _write_atomically(cert_path, ca.root.cert_pem)
            (directory / README).write_text(_README_TEXT, encoding="utf-8")
        except OSError as exc:
            raise SuitePkiError(
                f"cannot write the suite PKI into {directory} ({exc.strerror or exc}): choose a folder you can write to."
            ) from None
        return cls(directory, directory / LEAVES, ca, cert_path)

    @classmethod
    def load(cls, directory: str | os.PathLike[str], leaf_dir: str | os.PathLike[str]) -> SuitePki:
        """The suite PKI made earlier in ``directory``; leaves will be issued into ``leaf_dir``."""
        directory = Path(directory)
        cert_path, key_path = directory / CA_CERT, directory / CA_KEY
        if not cert_path.is_file() and not key_path.is_file():
            raise SuitePkiError(f"there is no suite PKI in {directory}: {_init_hint(directory)}.")
        renew = f"{_init_hint(directory, force=True)} to make a new CA (then give your server the new ca.pem)"
        if not key_path.is_file():
            raise SuitePkiError(f"{key_path} is missing: {renew}.")
        if not cert_path.is_file():
            raise SuitePkiError(f"{cert_path} is missing: {renew}.")
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        try:
            x509.load_pem_x509_certificate(cert_path.read_bytes())
        except (OSError, ValueError):
            raise SuitePkiError(f"{cert_path} is not a PEM certificate: {renew}.") from None
        try:
            serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError):
            raise SuitePkiError(f"{key_path} is not an unencrypted PEM private key: {renew}.") from None
        try:
            ca = CertificateAuthority.load(cert_path, key_path)
        except (OSError, ValueError) as exc:
            raise SuitePkiError(f"{exc}: {renew}.") from None
        expires = ca.cert.not_valid_after_utc
        if expires <= dt.datetime.now(dt.UTC) + dt.timedelta(days=1):
            raise SuitePkiError(f"{cert_path} expires on {expires:%Y-%m-%d}: {renew}.")
        return cls(directory, Path(leaf_dir), ca, cert_path)

    @classmethod
    def create(cls, directory: str | os.PathLike[str], domains: Sequence[str]) -> SuitePki:
        """A fresh CA in ``directory`` with one certificate per domain, leaves in the same folder (tests)."""
        directory = Path(directory)
        ca, files = write_test_pki(directory, list(domains))
        return cls(directory, directory, ca, files.ca_cert, {d: (p.cert, p.key) for d, p in files.providers.items()})

    def issue(self, domain: str) -> tuple[Path, Path]:
        """``leaf_dir/<domain>.pem`` and ``.key``: a provider certificate for ``domain`` (made once)."""
        if domain not in self.certs:
            self.certs[domain] = self.ca.issue_provider(domain).write(self.leaf_dir, domain)
        return self.certs[domain]

    def trust_bundle(self, name: str, *extra_cas: Path | None) -> Path:
        """``leaf_dir/<name>.pem``: the suite CA and ``extra_cas`` (e.g. the SUT's CA) in one PEM file."""
        parts = [self.ca_cert.read_bytes()] + [Path(p).read_bytes() for p in extra_cas if p is not None]
        self.leaf_dir.mkdir(parents=True, exist_ok=True)
        bundle = self.leaf_dir / f"{name}.pem"
        bundle.write_bytes(b"\n".join(parts))
        return bundle

    def publish_trust(self, directory: str | os.PathLike[str]) -> Path:
        """``directory/suite-ca.pem``: the CA certificate only, what a SUT is given to trust."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        published = directory / PUBLISHED_CA
        _write_atomically(published, self.ca.root.cert_pem)
        return published

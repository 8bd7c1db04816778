"""Issue 4's "done when": a hub (a.example) and two followers (b.example, c.example) as separate
``reference-peer serve`` processes on loopback carry a room through create, add (with Welcome),
messages, remove and self-leave, driven only through the control API over HTTP; and a hub killed
with SIGKILL while its outbox holds undelivered fan-out delivers every accepted message to every
follower exactly once after a restart on the same storage."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import yaml

A, B, C = "a.example", "b.example", "c.example"
ROLE_ADMIN = 3
START_TIMEOUT = 60.0  # a deadline, not a wait: start-up is mostly imports, slow on a loaded 2-core machine
SERVING = re.compile(r"^serving (\S+) at https://\S+:(\d+) ")
CONTROL = re.compile(r"^control (\S+) at (http://\S+)$")


def seg(uri: str) -> str:
    return quote(uri, safe="")


def poll(check, *, timeout: float = 15.0, interval: float = 0.05, what: str = ""):
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}: last value {last!r}")
        time.sleep(interval)


@dataclass
class PeerProcess:
    domain: str
    config: Path
    process: subprocess.Popen | None = None
    mimi_port: int | None = None
    control_url: str | None = None
    lines: list[str] = field(default_factory=list)

    def launch(self) -> None:
        self.mimi_port = self.control_url = None
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reference_peer.cli", "serve", "--config", str(self.config)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
        )
        self._found: queue.Queue[str] = queue.Queue()

        def read(stream=self.process.stdout, found=self._found):
            for line in stream:
                self.lines.append(line.rstrip("\n"))
                found.put(line.rstrip("\n"))

        threading.Thread(target=read, daemon=True).start()

    def wait_ready(self) -> None:
        """Until both the MIMI and the control listener have printed their addresses."""
        deadline = time.monotonic() + START_TIMEOUT
        while self.mimi_port is None or self.control_url is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.process.poll() is not None:
                raise AssertionError(f"{self.domain} did not start:\n" + "\n".join(self.lines[-30:]))
            try:
                line = self._found.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if (m := SERVING.match(line)) and m.group(1) == self.domain:
                self.mimi_port = int(m.group(2))
            if (m := CONTROL.match(line)) and m.group(1) == self.domain:
                self.control_url = m.group(2)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None


class Network:
    """Three peer processes sharing a peers file that maps each domain to its current port."""

    def __init__(self, pki, tmp_path: Path) -> None:
        self.pki = pki
        self.tmp_path = tmp_path
        self.peers_file = tmp_path / "peers.yaml"
        self.peers: dict[str, PeerProcess] = {}
        for domain in (A, B, C):
            files = pki.providers[domain]
            config = tmp_path / f"{domain}.yaml"
            config.write_text(
                yaml.safe_dump(
                    {
                        "listen": {"address": "127.0.0.1", "port": 0},
                        "tls": {"ca": str(pki.ca_cert)},
                        "providers": [{"domain": domain, "cert": str(files.cert), "key": str(files.key)}],
                        "storage": {"path": str(self.state_dir(domain))},
                        "control": {"address": "127.0.0.1", "port": 0},
                        "peers_file": str(self.peers_file),
                        "resolve": {d: "127.0.0.1" for d in (A, B, C)},
                        "outbox": {"base_delay": 0.05, "max_delay": 0.3, "max_attempts": 100_000},
                    }
                )
            )
            self.peers[domain] = PeerProcess(domain, config)
        self.http = httpx.Client(timeout=15.0, trust_env=False)

    def start(self, *domains: str) -> None:
        """Start the processes in parallel (each spends most of its start-up importing), then wait."""
        for domain in domains:
            self.peers[domain].launch()
        for domain in domains:
            self.peers[domain].wait_ready()
        self.write_peers()

    def state_dir(self, domain: str) -> Path:
        return self.tmp_path / f"state-{domain}"

    def write_peers(self) -> None:
        mapping = {d: f"{d}:{p.mimi_port}" for d, p in self.peers.items() if p.mimi_port is not None}
        tmp = self.peers_file.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(mapping))
        os.replace(tmp, self.peers_file)  # readers never see a half-written file

    def close(self) -> None:
        for peer in self.peers.values():
            peer.stop()
        self.http.close()

    def call(self, domain: str, method: str, path: str, *, expect: int = 200, **kwargs) -> dict:
        reply = self.http.request(method, self.peers[domain].control_url + path, **kwargs)
        assert reply.status_code == expect, (domain, method, path, reply.status_code, reply.text)
        return reply.json()

    # control API operations used below

    def create_user(self, domain: str, name: str) -> tuple[str, str]:
        user = self.call(domain, "POST", "/v1/users", json={"user": name, "clients": 1}, expect=201)
        return user["user"], user["clients"][0]

    def add(self, domain: str, room: str, actor: str, user: str, **extra) -> dict:
        result = self.call(domain, "POST", f"/v1/rooms/{seg(room)}/participants", json={"actor": actor, "user": user, **extra})
        assert result["outcome"] == "accepted", result
        return result

    def send(self, domain: str, room: str, client: str, text: str) -> None:
        result = self.call(domain, "POST", f"/v1/rooms/{seg(room)}/messages", json={"from": client, "content": {"text": text}})
        assert result["outcome"] == "accepted", result

    def texts(self, domain: str, client: str) -> list[str]:
        page = self.call(domain, "GET", f"/v1/clients/{seg(client)}/messages")
        return [item["content"]["text"] for item in page["items"]]

    def wait_texts(self, domain: str, client: str, expected: list[str], what: str) -> None:
        poll(lambda: self.texts(domain, client) == expected, what=f"{what}: {expected}")

    def room(self, domain: str, room: str) -> dict | None:
        reply = self.http.get(self.peers[domain].control_url + f"/v1/rooms/{seg(room)}")
        return reply.json() if reply.status_code == 200 else None

    def wait_epoch(self, domain: str, room: str, epoch: int, what: str) -> None:
        poll(lambda: (info := self.room(domain, room)) is not None and info["epoch"] == epoch, what=what)


@pytest.fixture(scope="module")
def network(pki, tmp_path_factory):
    """One set of three processes for this module (each start costs seconds of imports on 2 cores);
    every test uses its own users and room, and leaves all three running."""
    net = Network(pki, tmp_path_factory.mktemp("peers"))
    try:
        net.start(A, B, C)
        yield net
    finally:
        net.close()


def test_three_processes_carry_a_room_through_its_lifecycle(network):
    alice, alice_c = network.create_user(A, "alice")
    bob, bob_c = network.create_user(B, "bob")
    carol, carol_c = network.create_user(C, "carol")
    room = network.call(A, "POST", "/v1/rooms", json={"creator": alice, "room": "lounge"}, expect=201)["room"]

    network.add(A, room, alice, bob, role=ROLE_ADMIN)  # Welcome to b.example
    network.wait_epoch(B, room, 1, "bob joined")
    network.add(B, room, bob_c, carol)  # a follower adds a third provider's user, key material via the hub
    network.wait_epoch(C, room, 2, "carol joined")

    network.send(A, room, alice_c, "hello from a")
    network.send(C, room, carol_c, "hello from c")
    network.wait_texts(B, bob_c, ["hello from a", "hello from c"], "bob reads")
    network.wait_texts(A, alice_c, ["hello from c"], "alice reads")
    network.wait_texts(C, carol_c, ["hello from a"], "carol reads")

    removed = network.call(A, "DELETE", f"/v1/rooms/{seg(room)}/participants/{seg(carol)}", params={"actor": alice})
    assert removed["outcome"] == "accepted", removed
    # Once carol's client has processed the commit removing it, c.example has no member state to show.
    poll(lambda: network.room(C, room)["participants"] == [], what="carol's provider sees her removal")
    network.send(A, room, alice_c, "without carol")
    network.wait_texts(B, bob_c, ["hello from a", "hello from c", "without carol"], "bob reads")
    refused = network.http.post(
        network.peers[C].control_url + f"/v1/rooms/{seg(room)}/messages",
        json={"from": carol_c, "content": {"text": "still here?"}},
    )
    assert refused.status_code == 409 or refused.json().get("outcome") == "rejectedByHub", refused.text

    left = network.call(B, "POST", f"/v1/rooms/{seg(room)}/leave", json={"actor": bob})
    assert left["outcome"] == "accepted", left
    network.add(A, room, alice, carol)  # alice's next commit must carry bob's cached self-leave proposals
    participants = {p["user"] for p in network.room(A, room)["participants"]}
    assert participants == {alice, carol}, participants
    network.wait_epoch(C, room, 4, "carol rejoined")
    network.send(A, room, alice_c, "bob has left")
    network.wait_texts(C, carol_c, ["hello from a", "bob has left"], "carol reads after rejoining")
    assert "bob has left" not in network.texts(B, bob_c)


def pending_notifies(state_dir: Path, destination: str) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{state_dir / (A + '.sqlite')}?mode=ro", uri=True)) as db:
        return db.execute(
            "SELECT COUNT(*) FROM outbox WHERE destination = ? AND endpoint = 'notify' AND state = 'pending'",
            (destination,),
        ).fetchone()[0]


def test_hub_killed_during_fanout_delivers_every_message_exactly_once(network):
    alice, alice_c = network.create_user(A, "alice2")
    bob, bob_c = network.create_user(B, "bob2")
    carol, carol_c = network.create_user(C, "carol2")
    room = network.call(A, "POST", "/v1/rooms", json={"creator": alice, "room": "durable"}, expect=201)["room"]
    network.add(A, room, alice, bob)
    network.add(A, room, alice, carol)
    network.wait_epoch(B, room, 2, "bob at epoch 2")
    network.wait_epoch(C, room, 2, "carol joined")

    # c.example goes away: the hub accepts messages and keeps their fan-out to c in its outbox.
    network.peers[C].stop()
    messages = [f"m{i}" for i in range(1, 4)]
    for text in messages:
        network.send(A, room, alice_c, text)
    network.wait_texts(B, bob_c, messages, "bob reads while c is down")
    assert pending_notifies(network.state_dir(A), C) == len(messages)

    network.peers[A].stop(signal.SIGKILL)  # no chance to flush or finish anything
    network.start(C, A)  # the hub on the same storage, on a new port: its outbox resumes

    network.wait_texts(C, carol_c, messages, "carol gets every accepted message after the hub restarts")
    poll(lambda: pending_notifies(network.state_dir(A), C) == 0, what="hub outbox to c drained")
    network.send(A, room, alice_c, "after restart")
    network.wait_texts(C, carol_c, [*messages, "after restart"], "carol reads exactly once")
    network.wait_texts(B, bob_c, [*messages, "after restart"], "bob reads exactly once")

"""The recorder (bytes and decoded views, written per check) and the control API client
(contract checks, problem documents, NotSupported, bounded time and size)."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time

import pytest
from fake_sut import FakeServer, info_document

from conformance.harness.control import (
    ControlClient,
    ControlExchange,
    ControlProblem,
    ControlRequestInvalid,
    ControlResponseError,
    ControlTimeout,
    ControlUnreachable,
    NotSupported,
)
from conformance.harness.recorder import Recorder
from reference_peer.server.client import Exchange, PeerTimeout
from reference_peer.wire.mimi import UpdateResponseCode, UpdateRoomResponse

PROBLEM = "application/problem+json"


def test_recorder_keeps_bytes_and_decoded_views_and_writes_a_transcript(tmp_path):
    recorder = Recorder("conformance/scenarios/test_x.py::test_y[a/b]", ("PROTO-X",))
    recorder.expect("/v1/update/", response=UpdateRoomResponse)
    good = UpdateRoomResponse(
        responseCode=UpdateResponseCode.wrongEpoch, errorDescription="late", currentEpoch=5
    ).encode()
    recorder.note("sending an update")
    recorder.record_mimi(Exchange("POST", "https://sut.example/v1/update/r", {"From": "mimi@hub.ref.test"}, b"\x01\x02",
                                  200, {"content-type": "application/octet-stream"}, good))
    recorder.record_mimi(Exchange("POST", "https://sut.example/v1/update/r", {}, b"", 200, {}, b"\xff\xff"))
    recorder.record_mimi(Exchange("GET", "https://sut.example/.well-known/mimi-protocol-directory", {}, b"", 200,
                                  {"Content-Type": "application/json"}, b'{"notify": "https://x/{roomId}"}'))
    recorder.record_mimi(Exchange("GET", "https://sut.example/x", {}, b"", error=PeerTimeout("silent")))
    recorder.record_control(ControlExchange("createUser", "POST", "http://127.0.0.1:1/v1/users", b'{"user": "a"}',
                                            201, {"content-type": "application/json"}, b'{"user": "mimi://s/u/a"}'))
    relative = recorder.write(tmp_path)
    assert relative.startswith("transcripts/") and "/" not in relative.removeprefix("transcripts/")
    data = json.loads((tmp_path / relative).read_text())
    assert data["check"] == recorder.check_id and data["requirements"] == ["PROTO-X"]
    note, update, garbage, directory, timeout, control = data["exchanges"]
    assert note["kind"] == "note" and note["text"] == "sending an update"
    assert base64.b64decode(update["request"]["body_base64"]) == b"\x01\x02"
    assert base64.b64decode(update["response"]["body_base64"]) == good
    assert update["response"]["decoded"]["value"] == {"responseCode": "wrongEpoch", "errorDescription": "late",
                                                      "currentEpoch": 5}
    assert update["response"]["decoded"]["leniencies"] == []
    assert garbage["response"]["decoded"]["struct"] == "UpdateRoomResponse"
    assert "error" in garbage["response"]["decoded"]
    assert directory["response"]["decoded"] == {"json": {"notify": "https://x/{roomId}"}}
    assert timeout["response"] is None and "PeerTimeout" in timeout["error"]
    assert control["operation"] == "createUser"
    assert control["request"]["decoded"] == {"json": {"user": "a"}}
    assert [e["seq"] for e in data["exchanges"]] == list(range(6))


@pytest.fixture
def control_server():
    info = info_document(["sut.example"], ["hub"], ["getInfo", "createUser", "getRoom"])
    problem = {"type": "https://mimi-conformance.invalid/problems/already-exists", "title": "exists", "status": 409,
               "detail": "alice exists"}
    routes = {
        "/v1/info": (200, json.dumps(info).encode(), "application/json"),
        "/v1/users": (409, json.dumps(problem).encode(), PROBLEM),
        "/v1/rooms/mimi%3A%2F%2Fsut.example%2Fr%2Fhuge": (200, b'"' + b"x" * 5000 + b'"', "application/json"),
        "/v1/rooms/mimi%3A%2F%2Fsut.example%2Fr%2Fgarbage": (200, b"<html>", "text/html"),
        "/v1/rooms/mimi%3A%2F%2Fsut.example%2Fr%2Funimplemented": (501, b'{"type": "x", "status": 501}', PROBLEM),
    }
    server = FakeServer(routes)
    yield server
    server.stop()


def client_for(server, **options):
    exchanges = []
    client = ControlClient(f"http://127.0.0.1:{server.port}", observer=exchanges.append, **options)
    return client, exchanges


def test_supported_operations_come_from_get_info(control_server):
    client, exchanges = client_for(control_server)
    assert client.supported_operations() == {"getInfo", "createUser", "getRoom"}
    assert exchanges[0].operation == "getInfo" and exchanges[0].status == 200


def test_an_undeclared_operation_is_not_supported_and_nothing_is_sent(control_server):
    client, exchanges = client_for(control_server)
    client.get_info()
    with pytest.raises(NotSupported, match="createRoom"):
        client.create_room(creator="mimi://sut.example/u/alice")
    assert [e.operation for e in exchanges] == ["getInfo"]


def test_problem_documents_become_control_problem(control_server):
    client, exchanges = client_for(control_server)
    with pytest.raises(ControlProblem) as caught:
        client.create_user(user="alice", clients=1)
    assert caught.value.status == 409
    assert caught.value.type.endswith("/already-exists")
    assert "alice exists" in str(caught.value)
    assert exchanges[-1].error is not None


def test_501_is_not_supported(control_server):
    client, _ = client_for(control_server)
    with pytest.raises(NotSupported):
        client.get_room("mimi://sut.example/r/unimplemented")


def test_path_uris_are_encoded_as_one_segment_and_size_is_bounded(control_server):
    client, exchanges = client_for(control_server, max_response_bytes=1000)
    with pytest.raises(ControlResponseError, match="1000-byte cap"):
        client.get_room("mimi://sut.example/r/huge")
    assert exchanges[-1].url.endswith("/v1/rooms/mimi%3A%2F%2Fsut.example%2Fr%2Fhuge")


def test_garbage_answers_are_control_errors(control_server):
    client, _ = client_for(control_server)
    with pytest.raises(ControlResponseError, match="not JSON"):
        client.get_room("mimi://sut.example/r/garbage")


def test_requests_are_checked_against_the_contract(control_server):
    client, exchanges = client_for(control_server)
    with pytest.raises(ControlRequestInvalid, match="no such operation"):
        client.call("launchRockets")
    with pytest.raises(ControlRequestInvalid, match="path parameters"):
        client.call("getRoom", {"user": "x"})
    with pytest.raises(ControlRequestInvalid, match="undeclared query"):
        client.call("getRoom", {"room": "mimi://sut.example/r/a"}, query={"colour": "red"})
    with pytest.raises(ControlRequestInvalid, match="request body"):
        client.call("createUser", body={"user": "alice", "unknownMember": 1})
    assert exchanges == []


def test_a_silent_control_api_times_out_within_the_deadline():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted = []
    stop = threading.Event()

    def accept_and_stay_silent():
        conn, _ = listener.accept()
        accepted.append(conn)
        stop.wait(10)

    thread = threading.Thread(target=accept_and_stay_silent, daemon=True)
    thread.start()
    client = ControlClient(f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=0.5)
    started = time.monotonic()
    try:
        with pytest.raises(ControlTimeout):
            client.get_info()
        assert time.monotonic() - started < 3
    finally:
        stop.set()
        client.close()
        for conn in accepted:
            conn.close()
        listener.close()


def test_an_unreachable_control_api():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ControlUnreachable):
        ControlClient(f"http://127.0.0.1:{port}", timeout=2).get_info()

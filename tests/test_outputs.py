"""Outward streams against real peers: a WebSocket client and an OSC (VMC) receiver on loopback."""

from __future__ import annotations

import json
import threading
import time

import jsonschema
import pytest
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import ThreadingOSCUDPServer
from test_messages import demo_states
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from engine.errors import AvatarcamError
from engine.outputs.messages import MessageFactory, load_schema
from engine.outputs.vmc import VmcSender
from engine.outputs.websocket import WebSocketOutput
from engine.packets import AvatarFrame
from engine.vocabulary.arkit import ARKIT_BLENDSHAPES


def wait_for(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_client_with_token_receives_schema_valid_messages(server):
    validators = {kind: jsonschema.Draft202012Validator(load_schema(kind)) for kind in ("emotion_update", "avatar_frame")}
    with connect(server.url, close_timeout=0.5) as client:
        wait_for(lambda: server.client_count == 1)
        factory = MessageFactory()
        for frame, state in demo_states(1.0):
            server.publish(factory.emotion_update(state, frame))
            server.publish(factory.avatar_frame(frame))
            time.sleep(1 / 60)  # publish at a 60 Hz pace, as the pipeline does at most
        received = []
        while len(received) < 20:
            received.append(json.loads(client.recv(timeout=5)))
    for message in received:
        validators[message["type"]].validate(message)
    assert {m["type"] for m in received} == {"emotion_update", "avatar_frame"}


def test_client_without_or_with_a_wrong_token_is_refused(server):
    for url in (server.url.split("?")[0], server.url.replace(server.token, "guess")):
        with pytest.raises(InvalidStatus) as refused:
            connect(url, open_timeout=5)
        assert refused.value.response.status_code == 401
    assert server.refused == 2
    with connect(server.url.split("?")[0], additional_headers={"Authorization": f"Bearer {server.token}"}, close_timeout=0.5):
        wait_for(lambda: server.client_count == 1)


def test_garbage_from_a_client_and_a_slow_client_never_stall_publishing(server):
    factory = MessageFactory()
    frame = next(demo_states(0.1))[0]
    with connect(server.url, close_timeout=0.5) as slow, connect(server.url, close_timeout=0.5) as noisy:
        wait_for(lambda: server.client_count == 2)
        noisy.send(b"\x00\xff not json")
        noisy.send("{}")
        message = factory.avatar_frame(frame)
        server.min_interval = 0.0  # no rate limit: flood
        start = time.perf_counter()
        for _ in range(10_000):  # ~23 MB: more than loopback socket buffers hold, so queues fill and drop
            server.publish(message)
        assert time.perf_counter() - start < 5.0  # publishing never waited for the clients
        wait_for(lambda: server.dropped > 0)
        assert json.loads(slow.recv(timeout=5))["type"] == "avatar_frame"


def test_port_in_use_is_a_clear_error(server):
    other = WebSocketOutput(port=server.port)
    with pytest.raises(AvatarcamError, match="could not listen"):
        other.start()


def test_vmc_receiver_gets_arkit_blendshapes_and_head_bones():
    received: list[tuple] = []
    lock = threading.Lock()
    dispatcher = Dispatcher()
    def record(address: str, *args) -> None:  # returns nothing: python-osc would send a reply
        with lock:
            received.append((address, args))

    dispatcher.set_default_handler(record)
    receiver = ThreadingOSCUDPServer(("127.0.0.1", 0), dispatcher)
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    sender = VmcSender("127.0.0.1", receiver.server_address[1])
    sender.start()
    try:
        frames = [f for f, _ in demo_states(1.0)]
        for frame in frames:
            sender.send(frame)
        wait_for(lambda: sum(1 for a, _ in list(received) if a == "/VMC/Ext/Blend/Apply") >= len(frames) - 2)
    finally:
        sender.close()
        receiver.shutdown()
    with lock:
        messages = list(received)
    blend = [args for address, args in messages if address == "/VMC/Ext/Blend/Val"]
    assert {name for name, _ in blend} == set(ARKIT_BLENDSHAPES)
    assert all(0.0 <= value <= 1.0 for _, value in blend)
    assert max(value for name, value in blend if name == "jawOpen") > 0.2, "the mouth moves in the demo"
    bones = [args for address, args in messages if address == "/VMC/Ext/Bone/Pos"]
    assert {args[0] for args in bones} == {"Head", "Neck"}
    assert all(abs(sum(v * v for v in args[4:8]) - 1.0) < 1e-3 for args in bones), "unit quaternions"
    assert any(address == "/VMC/Ext/OK" for address, _ in messages) and any(a == "/VMC/Ext/T" for a, _ in messages)


def test_vmc_turn_direction_in_unity_space():
    from engine.outputs.vmc import to_unity
    from engine.rotation import euler_to_quaternion

    # The subject turns to their own left; in Unity (left-handed, +X = avatar's right) that is a
    # negative rotation about +Y.
    x, y, z, w = to_unity(euler_to_quaternion(30.0, 0.0, 0.0))
    assert y < 0 and abs(x) < 1e-9 and abs(z) < 1e-9


def test_vmc_unknown_host_is_a_clear_error():
    with pytest.raises(AvatarcamError, match="cannot be found"):
        VmcSender("no-such-host.invalid", 39539).start()
    # a port nobody listens on is fine: UDP is fire-and-forget
    sender = VmcSender("127.0.0.1", 9)
    sender.start()
    sender.send(AvatarFrame(0.0, 1, {}))
    sender.close()

"""Emotion in the live pipeline: a clip drives the fused emotion, the WebSocket and VMC outputs."""

from __future__ import annotations

import json
import threading
import time

import jsonschema
from conftest import shared_file
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import ThreadingOSCUDPServer
from websockets.sync.client import connect

from engine.capture.demo import DemoSource
from engine.capture.video import VideoFileSource
from engine.outputs.hub import DataOutputs
from engine.outputs.messages import load_schema
from engine.outputs.sinks import NullSink
from engine.outputs.vmc import VmcSender
from engine.outputs.websocket import WebSocketOutput
from engine.runtime.pipeline import Pipeline, PipelineOptions


def test_clip_drives_emotion_websocket_and_vmc(face_model, default_avatar_path):
    vmc_messages: list[tuple] = []
    lock = threading.Lock()

    def record(address: str, *args) -> None:
        with lock:
            vmc_messages.append((address, args))

    dispatcher = Dispatcher()
    dispatcher.set_default_handler(record)
    receiver = ThreadingOSCUDPServer(("127.0.0.1", 0), dispatcher)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    outputs = DataOutputs(WebSocketOutput(port=0), VmcSender("127.0.0.1", receiver.server_address[1]))
    outputs.start()
    received: list[dict] = []
    options = PipelineOptions(size=(320, 180), avatar=default_avatar_path, face_model=face_model, emotion=True)
    source = VideoFileSource(shared_file("media/expressions_d10.mp4"), paced=True)
    pipeline = Pipeline(source, [NullSink()], options, outputs=outputs)
    try:
        with connect(outputs.websocket.url, close_timeout=0.5) as client:
            pipeline.start()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # the first ~4.5 s: rest, then the wide-eyed surprise
                message = json.loads(client.recv(timeout=5))
                received.append(message)
                if message["type"] == "emotion_update" and float(message["payload"]["scores"]["surprised"]) > 0.5 \
                        and len(received) > 100:
                    deadline = min(deadline, time.monotonic() + 0.5)  # long enough for the switch
    finally:
        pipeline.stop()
        receiver.shutdown()
    validators = {kind: jsonschema.Draft202012Validator(load_schema(kind)) for kind in ("emotion_update", "avatar_frame")}
    for message in received:
        validators[message["type"]].validate(message)
    updates = [m["payload"] for m in received if m["type"] == "emotion_update"]
    assert {u["mode"] for u in updates[10:]} == {"video_only"}
    assert "surprised" in {u["emotion"] for u in updates}, "the clip's surprise comes through"
    with lock:
        jaw = [args[1] for address, args in vmc_messages if address == "/VMC/Ext/Blend/Val" and args[0] == "jawOpen"]
        heads = [args for address, args in vmc_messages if address == "/VMC/Ext/Bone/Pos" and args[0] == "Head"]
    assert max(jaw) > 0.5 and min(jaw) < 0.2, "VMC receives the mouth opening"
    assert heads


def test_demo_shows_its_emotions_and_consent_off_stops_analysis(default_avatar_path):
    seen = set()
    pipeline = Pipeline(DemoSource(fps=30.0), [NullSink()], PipelineOptions(size=(320, 180), avatar=default_avatar_path, emotion=True),
                        on_frame=lambda frame: seen.add(pipeline.stats().emotion))
    pipeline.start()
    try:
        deadline = time.monotonic() + 15
        while "happy" not in seen and time.monotonic() < deadline:  # the demo smiles from 1.5 s
            pipeline.wait(0.05)
        assert "happy" in seen
        pipeline.emotion.set_enabled(False)  # consent withdrawn
        pipeline.wait(0.2)
        assert pipeline.stats().emotion is None
    finally:
        pipeline.stop()

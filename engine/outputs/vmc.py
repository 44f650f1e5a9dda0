"""VMC protocol sender (OSC over UDP): drives VSeeFace, Warudo, VNyan... with avatarcam's tracking.

Per animation frame one OSC bundle: ``/VMC/Ext/Blend/Val`` (name, value) for each of the 52 ARKit
blendshapes (perfect-sync names), ``/VMC/Ext/Blend/Apply``, ``/VMC/Ext/Bone/Pos`` for ``Neck`` and
``Head`` (local position and rotation, Unity's left-handed frame), ``/VMC/Ext/OK`` (1: tracking) and
``/VMC/Ext/T`` (seconds since start). UDP is fire-and-forget: a receiver that is not running costs
nothing; a host that cannot be resolved is refused at start with a clear message.
"""

from __future__ import annotations

import logging
import socket
import time

from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder

from engine.errors import AvatarcamError
from engine.packets import AvatarFrame
from engine.rotation import euler_to_quaternion
from engine.vocabulary.arkit import ARKIT_BLENDSHAPES

log = logging.getLogger(__name__)


def _message(address: str, *args) -> object:
    builder = OscMessageBuilder(address=address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build()


def to_unity(q: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """A rotation in avatarcam's right-handed frame (+X = the avatar's left) as Unity's left-handed
    one (+X = the avatar's right): mirroring X negates the quaternion's Y and Z parts."""
    x, y, z, w = q
    return (x, -y, -z, w)


class VmcSender:
    """Sends one bundle per ``send(frame)``. ``close`` is idempotent."""

    def __init__(self, host: str = "127.0.0.1", port: int = 39539) -> None:
        self.host, self.port = host, port
        self.sent = 0
        self.errors = 0
        self._socket: socket.socket | None = None
        self._address: tuple | None = None
        self._start = time.monotonic()

    def start(self) -> None:
        try:
            family, _, _, _, address = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)[0]
        except (socket.gaierror, OSError) as exc:
            raise AvatarcamError(f"The VMC target '{self.host}:{self.port}' cannot be found ({exc}).",
                                 "Check the host name or IP address of the computer running the VMC receiver.") from exc
        self._socket = socket.socket(family, socket.SOCK_DGRAM)
        self._address = address

    def send(self, frame: AvatarFrame, tracking: bool = True) -> None:
        if self._socket is None:
            return
        bundle = OscBundleBuilder(IMMEDIATELY)
        for name in ARKIT_BLENDSHAPES:
            bundle.add_content(_message("/VMC/Ext/Blend/Val", name, float(frame.controls.get(name, 0.0))))
        bundle.add_content(_message("/VMC/Ext/Blend/Apply"))
        for bone, euler in (("Neck", frame.neck), ("Head", frame.head)):
            bundle.add_content(_message("/VMC/Ext/Bone/Pos", bone, 0.0, 0.0, 0.0, *map(float, to_unity(euler_to_quaternion(*euler)))))
        bundle.add_content(_message("/VMC/Ext/OK", 1 if tracking else 0))
        bundle.add_content(_message("/VMC/Ext/T", float(time.monotonic() - self._start)))
        try:
            self._socket.sendto(bundle.build().dgram, self._address)
            self.sent += 1
        except OSError as exc:  # network down, host unreachable: keep going, say it once
            if self.errors == 0:
                log.warning("VMC: cannot send to %s:%s (%s)", self.host, self.port, exc)
            self.errors += 1

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

"""The MQTT v5 properties of a PUBLISH, packed once when they are made.

paho's :class:`~paho.mqtt.properties.Properties` rebuilds its tables of names and types
in every instance, resolves a name by scanning them on every assignment, and scans them
again to pack. That bookkeeping was about a fifth of the hub's CPU for each press of a
Next button (every reply and state it publishes has an expiry, a reply a correlation).
:class:`PublishProperties` is a :class:`Properties` that paho sends as it is: its tables
are shared by all instances, its values are set without the scans, and :meth:`pack`
returns the bytes encoded when it was made, with paho's own encoders.
"""

from __future__ import annotations

from typing import ClassVar

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties, VariableByteIntegers, writeBytes, writeInt32, writeUTF

__all__ = ["PublishProperties"]

_EXPIRY, _RESPONSE_TOPIC, _CORRELATION = 2, 8, 9
"""The property identifiers of MQTT v5 (section 2.2.2.2), in the order paho packs them."""


def _tables() -> dict[str, object]:
    """The tables of names and types of paho's Properties, made once."""
    template = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    return {"types": template.types, "names": template.names, "properties": template.properties}


class PublishProperties(Properties):
    """A PUBLISH's message expiry, response topic and correlation data, packed once.

    It reads like paho's (``str()``, :meth:`json`, the attributes ``MessageExpiryInterval``,
    ``ResponseTopic`` and ``CorrelationData``) and is not to be changed once made.
    """

    _shared: ClassVar[dict[str, object]] = _tables()

    def __init__(
        self,
        *,
        expiry_s: int | None = None,
        response_topic: str | None = None,
        correlation: bytes | None = None,
    ) -> None:
        # Not Properties.__init__: it would rebuild the tables this class shares.
        for name, table in self._shared.items():
            object.__setattr__(self, name, table)
        object.__setattr__(self, "packetType", PacketTypes.PUBLISH)
        packed = b""
        if expiry_s is not None:
            object.__setattr__(self, "MessageExpiryInterval", expiry_s)
            packed += VariableByteIntegers.encode(_EXPIRY) + writeInt32(expiry_s)  # type: ignore[no-untyped-call]
        if response_topic is not None:
            object.__setattr__(self, "ResponseTopic", response_topic)
            packed += VariableByteIntegers.encode(_RESPONSE_TOPIC) + writeUTF(response_topic)  # type: ignore[no-untyped-call]
        if correlation is not None:
            object.__setattr__(self, "CorrelationData", correlation)
            packed += VariableByteIntegers.encode(_CORRELATION) + writeBytes(correlation)  # type: ignore[no-untyped-call]
        length: bytes = VariableByteIntegers.encode(len(packed))  # type: ignore[no-untyped-call]
        self._packed = length + packed

    def __setattr__(self, name: str, value: object) -> None:
        if name == "_packed":
            object.__setattr__(self, name, value)
            return
        raise AttributeError(f"{type(self).__name__} is packed once; make a new one")

    def pack(self) -> bytes:
        """The properties as they go on the wire: their length, then each one."""
        return self._packed

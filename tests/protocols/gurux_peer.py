"""gurux-dlms (GPL) as an independent DLMS client over TCP: used only by the tests."""

from __future__ import annotations

import socket
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from gurux_dlms import GXByteBuffer, GXDLMSClient, GXReplyData
from gurux_dlms.ecdsa import GXPrivateKey, GXPublicKey
from gurux_dlms.enums import Authentication, InterfaceType, Security
from gurux_dlms.objects.enums import SecuritySuite
from gurux_dlms.secure import GXDLMSSecureClient


def gurux_private_key(key: ec.EllipticCurvePrivateKey) -> Any:
    return GXPrivateKey.fromRawBytes(key.private_numbers().private_value.to_bytes(32, "big"))


def gurux_public_key(key: ec.EllipticCurvePublicKey) -> Any:
    numbers = key.public_numbers()
    return GXPublicKey.fromRawBytes(
        b"\x04" + numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")
    )


class GuruxPeer:
    """A gurux client talking to 127.0.0.1:``port`` through the TCP wrapper."""

    def __init__(
        self,
        port: int,
        client_address: int = 16,
        authentication: int = Authentication.NONE,
        password: bytes | None = None,
        *,
        ciphered: bool = False,
        system_title: bytes = b"",
        block_cipher_key: bytes = b"",
        authentication_key: bytes = b"",
        invocation_counter: int = 1,
        max_pdu: int = 0xFFFF,
        security_suite: int = 0,
        client_signing_key: ec.EllipticCurvePrivateKey | None = None,
        server_verify_key: ec.EllipticCurvePublicKey | None = None,
    ) -> None:
        client: Any
        if ciphered:
            client = GXDLMSSecureClient(
                True, client_address, 1, authentication, password, InterfaceType.WRAPPER
            )
            client.ciphering.security = Security.AUTHENTICATION_ENCRYPTION
            client.ciphering.systemTitle = bytearray(system_title)
            client.ciphering.blockCipherKey = bytearray(block_cipher_key)
            client.ciphering.authenticationKey = bytearray(authentication_key)
            client.ciphering.invocationCounter = invocation_counter
            client.ciphering.securitySuite = SecuritySuite(security_suite)
            if client_signing_key is not None and server_verify_key is not None:
                # gurux's pair: (the peer's public key, this side's private key)
                client.ciphering.signingKeyPair = (
                    gurux_public_key(server_verify_key),
                    gurux_private_key(client_signing_key),
                )
        else:
            client = GXDLMSClient(
                True, client_address, 1, authentication, password, InterfaceType.WRAPPER
            )
        client.setMaxReceivePDUSize(max_pdu)
        self.client = client
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)

    def close(self) -> None:
        self.sock.close()

    def _packet(self, data: Any, reply: GXReplyData) -> None:
        if data is not None:
            self.sock.sendall(bytes(data))
        buffer = GXByteBuffer()
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            buffer.set(chunk)
            if self.client.getData(buffer, reply):
                return

    def transact(self, frames: Any) -> GXReplyData:
        """Send a request (a list of frames) and read the whole reply, blocks included."""
        if not isinstance(frames, list):
            frames = [frames]
        reply = GXReplyData()
        for frame in frames:
            reply.clear()
            self._packet(frame, reply)
            while reply.isMoreData():
                self._packet(self.client.receiverReady(reply), reply)
        return reply

    def associate(self) -> None:
        reply = self.transact(self.client.aarqRequest())
        self.client.parseAareResponse(reply.data)
        if self.client.getIsAuthenticationRequired():
            reply = self.transact(self.client.getApplicationAssociationRequest())
            self.client.parseApplicationAssociationResponse(reply.data)

    def read(self, obj: Any, attribute: int) -> Any:
        reply = self.transact(self.client.read(obj, attribute))
        return self.client.updateValue(obj, attribute, reply.value)

    def method(self, obj: Any, index: int, value: Any, data_type: int) -> GXReplyData:
        return self.transact(self.client.method(obj, index, value, data_type))

    def release(self) -> None:
        try:
            self.transact(self.client.releaseRequest())
        finally:
            self.close()

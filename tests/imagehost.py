"""A loopback image host for tests: good images, errors, slow, huge and hostile bodies; TLS."""

from __future__ import annotations

import datetime
import io
import socket
import ssl
import struct
import time
import zlib
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID
from PIL import Image

from tests.servers import LoopbackHTTPServer


def encoded(
    fmt: str, size: tuple[int, int] = (40, 40), color: tuple[int, int, int] = (200, 30, 30)
) -> bytes:
    """A one-colour RGB image of `size` saved in Pillow format `fmt` (PNG, JPEG, TIFF, ...)."""
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, fmt)
    return buf.getvalue()


def png_bytes(color: tuple[int, int, int] = (200, 30, 30), size: int = 40) -> bytes:
    return encoded("PNG", (size, size), color)


def jpeg_bytes(color: tuple[int, int, int] = (20, 40, 220), size: int = 40) -> bytes:
    return encoded("JPEG", (size, size), color)


def bomb_png(width: int = 60_000, height: int = 60_000) -> bytes:
    """A tiny PNG whose header claims width x height pixels (3.6 gigapixels by default)."""
    data = bytearray(png_bytes(size=8))
    ihdr = bytes(data[12:29])  # b"IHDR" + 13 bytes of header fields
    patched = b"IHDR" + struct.pack(">II", width, height) + ihdr[12:]
    data[12:29] = patched
    data[29:33] = struct.pack(">I", zlib.crc32(patched))
    return bytes(data)


class ImageHost(LoopbackHTTPServer):
    """ThreadingHTTPServer on 127.0.0.1; `requests` records every path it was asked for."""

    def __init__(self, big_bytes: int = 300_000, slow_seconds: float = 5.0) -> None:
        self.requests: list[str] = []
        self.routes: dict[str, tuple[int, str, bytes]] = {
            "/red.png": (200, "image/png", png_bytes()),
            "/blue.jpg": (200, "image/jpeg", jpeg_bytes()),
            "/page.html": (200, "text/html; charset=utf-8", b"<html><body>hi</body></html>"),
            "/huge.png": (200, "image/png", png_bytes() + b"\0" * big_bytes),
            "/bomb.png": (200, "image/png", bomb_png()),
            "/bomb-medium.png": (200, "image/png", bomb_png(8000, 8000)),
            "/truncated.png": (200, "image/png", png_bytes()[:60]),
            "/cmyk.jpg": (200, "image/jpeg", self._cmyk()),
            "/narrow.png": (200, "image/png", encoded("PNG", (4, 20_000))),
        }
        self.slow_seconds = slow_seconds
        host = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                host.requests.append(self.path)
                if self.path == "/slow.png":
                    time.sleep(host.slow_seconds)
                if self.path in ("/reset.png", "/hang.png"):
                    return self._partial_body(reset=self.path == "/reset.png")
                if self.path.startswith(("/redirect", "/loop")):
                    default = "/loop" if self.path == "/loop" else "/red.png"
                    target = self.path.partition("to=")[2] or default
                    self.send_response(302)
                    self.send_header("Location", target)
                    self.end_headers()
                    return
                status, ctype, body = host.routes.get(
                    self.path.split("?")[0], (404, "text/plain", b"not found")
                )
                if self.path == "/slow.png":
                    status, ctype, body = 200, "image/png", png_bytes()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                if self.path != "/huge.png":  # stream the huge one without a length
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _partial_body(self, reset: bool) -> None:
                """Promise 100 kB, send 1 kB, then reset the socket or go silent."""
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", "100000")
                self.end_headers()
                self.wfile.write(png_bytes()[:1000])
                self.wfile.flush()
                if reset:
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.connection.close()
                else:
                    time.sleep(host.slow_seconds)

        super().__init__(Handler)

    @staticmethod
    def _cmyk() -> bytes:
        buf = io.BytesIO()
        Image.new("CMYK", (40, 40), (0, 200, 200, 0)).save(buf, "JPEG")
        return buf.getvalue()


class TestCA:
    """A throwaway certificate authority that issues server certificates for host names."""

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
        ca = x509.BasicConstraints(ca=True, path_length=None)
        usage = x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=True,
            crl_sign=True,
            encipher_only=False,
            decipher_only=False,
        )
        self.cert = (
            _builder(self.name, self.key.public_key())
            .add_extension(ca, critical=True)
            .add_extension(usage, critical=True)
            .add_extension(_key_id(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this CA only."""
        return ssl.create_default_context(cadata=self.cert.public_bytes(Encoding.PEM).decode())

    def server_context(self, hostname: str, folder: Path) -> ssl.SSLContext:
        """A server context presenting a certificate for `hostname`, signed by this CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
        cert = (
            _builder(subject, key.public_key(), issuer=self.name)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_id(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        chain = folder / f"{hostname}.pem"
        chain.write_bytes(
            key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
            + cert.public_bytes(Encoding.PEM)
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(chain)
        return context


def _builder(
    subject: x509.Name, public_key: ec.EllipticCurvePublicKey, issuer: x509.Name | None = None
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer or subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


def _key_id(public_key: ec.EllipticCurvePublicKey) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(public_key)


class TLSImageHost(ImageHost):
    """The same image host behind TLS on 127.0.0.1, presenting `context`'s certificate."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__()
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)

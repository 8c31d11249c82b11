"""A loopback image host for tests: good images, errors, slow, huge and hostile bodies."""

from __future__ import annotations

import io
import socket
import struct
import time
import zlib
from http.server import BaseHTTPRequestHandler

from PIL import Image

from tests.servers import LoopbackHTTPServer


def png_bytes(color: tuple[int, int, int] = (200, 30, 30), size: int = 40) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, "PNG")
    return buf.getvalue()


def jpeg_bytes(color: tuple[int, int, int] = (20, 40, 220), size: int = 40) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, "JPEG")
    return buf.getvalue()


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

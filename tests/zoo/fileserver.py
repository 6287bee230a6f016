"""A loopback HTTP file server standing in for download locations (Google Drive, dl.fbaipublicfiles.com).

Serves in-memory files on 127.0.0.1 with ``Range`` support (206 + Content-Range), can cut the next
transfer of a file after some bytes (announcing the whole length, as a dropped connection does),
and records every request with its Range header. Runs in a thread; every wait is bounded.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Served:
    body: bytes
    content_type: str = "application/octet-stream"
    cut_after: list[int] = field(default_factory=list)   # byte counts at which the next transfers stop


class Threaded:
    """A ``ThreadingHTTPServer`` (``self.server``) run by ``self.thread`` for the length of a with block."""

    server: ThreadingHTTPServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


class FileServer(Threaded):
    """``with FileServer() as s: s.files["/x.pkl"] = Served(data); urlopen(s.url + "/x.pkl")``."""

    def __init__(self) -> None:
        self.files: dict[str, Served] = {}
        self.requests: list[tuple[str, str | None]] = []   # (path, Range header)
        srv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # keep test output clean
                pass

            def do_GET(self):
                path = self.path.split("?", 1)[0]
                rng = self.headers.get("Range")
                srv.requests.append((path, rng))
                f = srv.files.get(path)
                if f is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start = 0
                m = re.fullmatch(r"bytes=(\d+)-", rng or "")
                if m:
                    start = int(m.group(1))
                    if start >= len(f.body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(f.body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                body = f.body[start:]
                self.send_response(206 if m else 200)
                self.send_header("Content-Type", f.content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                if m:
                    self.send_header("Content-Range", f"bytes {start}-{len(f.body) - 1}/{len(f.body)}")
                self.end_headers()
                if f.cut_after:
                    # A dropped connection: part of the body, then the socket closes.
                    self.wfile.write(body[: f.cut_after.pop(0)])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

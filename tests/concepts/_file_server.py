"""A local HTTP server standing in for the hosts of the published data files.

The vocabulary and image-mean tests download real files from it, and script how it
misbehaves (corrupt, truncated, trickling or oversized bodies).
"""

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def unreachable_url(prefix):
    """A URL on a port that was free a moment ago: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/{prefix}"


class FileServer:
    """Serves ``files`` (name -> bytes) under ``/<prefix>/`` on localhost; ``mode`` and
    ``barrier`` script its misbehaviour.

    Misbehaving modes: "corrupt", "truncate" and "truncate_no_length" change the body;
    "trickle" sends it one byte every TRICKLE_PAUSE seconds, "trickle_headers" does so
    from the status line on (both give up after TRICKLE_FOR seconds); "oversized" follows
    the file with OVERSIZED bytes of padding, announced or not ("oversized_length").
    `sent` counts the bytes written, and `done` is set when a response ends.
    """

    TRICKLE_PAUSE = 0.25
    TRICKLE_FOR = 8.0
    OVERSIZED = 400 * 2**20

    def __init__(self, files, prefix):
        self.files = dict(files)
        self.prefix = f"/{prefix}/"
        self.mode = "ok"
        self.barrier = None
        self.requests = []
        self.sent = 0
        self.done = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}{self.prefix}"

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                if server.barrier is not None:
                    try:
                        server.barrier.wait()
                    except threading.BrokenBarrierError:
                        pass  # a slow client: serve anyway, the test's count will tell
                body = server.files.get(self.path.rsplit("/", 1)[-1])
                if body is None or not self.path.startswith(server.prefix):
                    self.send_error(404)
                    return
                if server.mode == "corrupt":
                    body = body[:-10] + b"corrupted\n"
                try:
                    if server.mode.startswith(("trickle", "oversized")):
                        self.misbehave(body)
                        return
                finally:
                    server.done.set()
                self.send_response(200)
                if server.mode != "truncate_no_length":
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.mode.startswith("truncate"):
                    # Close the connection halfway through the body.
                    self.wfile.write(body[: len(body) // 2])
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def misbehave(self, body):
                self.close_connection = True
                try:
                    if server.mode.startswith("oversized"):
                        self.oversized(body)
                    else:
                        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n"
                        if server.mode == "trickle":
                            self.wfile.write(head.encode())
                            head = ""
                        self.trickle(head.encode() + body)
                except OSError:
                    pass  # the client hung up: what the test expects

            def trickle(self, data):
                stop = time.monotonic() + server.TRICKLE_FOR
                for i in range(len(data)):
                    if time.monotonic() > stop:
                        return
                    self.wfile.write(data[i : i + 1])
                    server.sent += 1
                    time.sleep(server.TRICKLE_PAUSE)

            def oversized(self, body):
                self.send_response(200)
                if server.mode == "oversized_length":
                    self.send_header("Content-Length", str(len(body) + server.OVERSIZED))
                self.end_headers()
                self.wfile.write(body)
                padding = b"x" * 2**16
                for _ in range(server.OVERSIZED // len(padding)):
                    self.wfile.write(padding)
                    server.sent += len(padding)

            def log_message(self, *args):
                pass

        return Handler

    def __enter__(self):
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

"""A real HTTP server on 127.0.0.1 for the download tests: it serves the real dataset files of the local mirror
under their official URL paths, counts the requests, and can be told to misbehave per path (a status, a
truncated or altered body, a transfer that stalls half-way or trickles) or to refuse HEAD requests. Nothing in
the suite reaches another host."""

from __future__ import annotations

import contextlib
import gzip
import http.server
import shutil
import sys
import threading
import time
from pathlib import Path

# The official URL paths (dcpipe.sources): MNIST's first host keeps its files under /mnist/, Fashion-MNIST's at
# the root, the ESL book's under /ElemStatLearn/datasets/.
PATHS = {"MNIST": "mnist/", "FashionMNIST": "", "USPS": "ElemStatLearn/datasets/"}


def official_tree(root: Path, mirrors) -> Path:
    """`root` laid out like the official hosts, from the mirror's real files: MNIST's idx files gzipped (its
    hosts serve .gz; the bytes differ from the official .gz, the content does not), Fashion-MNIST's .gz as
    Debian ships them, USPS's ESL .gz files as they are."""
    from tests.conftest import require_dataset

    for name, prefix in PATHS.items():
        (root / prefix).mkdir(parents=True, exist_ok=True)
        for rel, src in require_dataset(name, mirrors).items():
            dst = root / prefix / Path(rel).name
            if rel.endswith(".gz") or src.suffix == ".gz":
                shutil.copy(src, dst if dst.suffix == ".gz" else dst.with_name(dst.name + ".gz"))
            else:
                with open(src, "rb") as fin, gzip.GzipFile(dst.with_name(dst.name + ".gz"), "wb", compresslevel=1, mtime=0) as fout:
                    shutil.copyfileobj(fin, fout)
    return root


class Server:
    """serve(root) on 127.0.0.1, a free port. `faults[path] = fn(body) -> (status, body, stall_after[,
    trickle_s])` changes one path's answer: after `stall_after` bytes it stalls, or with `trickle_s` sends the rest
    one byte every `trickle_s` seconds. `head_status`, when set, answers every HEAD request (a server that refuses
    HEAD: 405). `requests` lists every (method, path) served."""

    def __init__(self, root: Path):
        self.root, self.faults, self.requests, self.head_status = root, {}, [], None
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **kw):
                super().__init__(*a, directory=str(root), **kw)

            def log_message(self, *a):  # quiet: the test asserts on `requests`
                pass

            def _fault(self, head: bool) -> bool:
                path = self.path.split("://", 1)[-1].split("/", 1)[-1] if "://" in self.path else self.path.lstrip("/")
                server.requests.append((self.command, path))
                if head and server.head_status:
                    self.send_error(server.head_status)
                    return True
                fault = server.faults.get(path)
                if fault is None:
                    self.path = "/" + path  # a proxied request names the whole URL
                    return False
                file = root / path
                status, body, stall, *trickle = fault(file.read_bytes() if file.is_file() else b"")
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if head:
                    return True
                self.wfile.write(body[:stall] if stall or trickle else body)
                self.wfile.flush()
                if trickle:
                    with contextlib.suppress(ConnectionError):  # until the client hangs up
                        for i in range(stall, len(body)):
                            self.wfile.write(body[i:i + 1])
                            self.wfile.flush()
                            time.sleep(trickle[0])
                elif stall:
                    time.sleep(120)  # the client gives up or is killed meanwhile
                return True

            def do_GET(self):
                if not self._fault(head=False):
                    super().do_GET()

            def do_HEAD(self):
                if not self._fault(head=True):
                    super().do_HEAD()

        class Httpd(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):  # a client that hangs up mid-body is no error here
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        self.httpd = Httpd(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def urls(self, names=PATHS) -> dict[str, list[str]]:
        """params data.urls pointing every dataset of `names` at this server's copy."""
        return {name: [self.url + PATHS[name]] for name in names}

    def gets(self) -> int:
        return sum(1 for method, _ in self.requests if method == "GET")

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def dead_url() -> str:
    """A loopback URL nothing listens on (a port just freed): connection refused."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"

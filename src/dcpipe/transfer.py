"""HTTP for the download: one file's transfer, whether a URL would serve one, and each failure in a few words.

A server that stops sending, or trickles too slowly to ever finish, is given up on within GIVE_UP_S. requests'
read timeout catches silence but not a trickle (every byte restarts it), so the rate is also checked while the
body streams. The body is read with urllib3's read1, which returns whatever has arrived: a read that waits for a
full buffer could hide a trickle for hours."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import requests
import urllib3
from tqdm import tqdm

from .sources import mb

CONNECT_S = 30      # a host that accepts no connection in 30 s is down or drops packets: waiting longer finds nothing
READ_S = 30         # no byte for 30 s is a stall: a working server sends within seconds, from any continent
WINDOW_S = 30       # the rate is measured over windows this long, so that a busy link's pauses average out
MIN_BYTES = 30_000  # fewer bytes in a window (1 kB/s) is a trickle: CIFAR-10's 170 MB would take two days
# The longest a stall or a trickle goes on: a window, then its last read's timeout (60 s, under the 90 s promised).
GIVE_UP_S = WINDOW_S + READ_S
HEAD_REFUSED = (403, 405, 501)  # HEAD not allowed (405, 501), or refused by a URL signed for GET alone (403)
CHUNK = 1 << 20


class Stalled(requests.Timeout):
    """The server stopped sending, or sends too slowly to finish."""


def download(url: str, dest: Path) -> None:
    """GET `url` into `dest`, streamed (a progress bar on a terminal); Stalled on a stall or a trickle."""
    with requests.get(url, stream=True, timeout=(CONNECT_S, READ_S)) as r:
        r.raise_for_status()
        size = int(r.headers.get("Content-Length") or 0) or None
        with open(dest, "wb") as f, tqdm(total=size, unit="B", unit_scale=True, disable=not sys.stderr.isatty()) as bar:
            got, since, at = 0, time.monotonic(), 0  # the window: its start, and the bytes got before it
            while chunk := _read(r, got):
                f.write(chunk)
                bar.update(len(chunk))
                got += len(chunk)
                now = time.monotonic()
                if now - since >= WINDOW_S:
                    if got - at < MIN_BYTES:
                        raise Stalled(f"stalled: under {mb(MIN_BYTES)} in {WINDOW_S:g} s")
                    since, at = now, got


def _read(r: requests.Response, got: int) -> bytes:
    try:
        return r.raw.read1(CHUNK, decode_content=True)
    except urllib3.exceptions.ReadTimeoutError as e:
        raise Stalled(f"stalled: no byte for {READ_S:g} s after {mb(got)}") from e
    except urllib3.exceptions.HTTPError as e:  # a dropped connection, a body shorter than announced
        raise requests.ConnectionError(e) from e


def answers(url: str) -> str | None:
    """None when `url` would serve a download, else why not: a HEAD request, or where the server refuses HEAD, a
    GET of the first byte."""
    try:
        r = requests.head(url, timeout=(CONNECT_S, READ_S), allow_redirects=True)
        if r.status_code in HEAD_REFUSED:
            # closed unread: a server that ignores the Range sends no more than what has already arrived
            with requests.get(url, headers={"Range": "bytes=0-0"}, stream=True, timeout=(CONNECT_S, READ_S)) as r:
                pass
        r.raise_for_status()
    except requests.RequestException as e:
        return describe(e)
    return None


def describe(e: BaseException) -> str:
    """One short reason per failed request: DNS, refused, stalled, HTTP status."""
    text = str(e)
    if isinstance(e, requests.HTTPError) and e.response is not None:
        return f"HTTP {e.response.status_code} {e.response.reason or ''}".rstrip()
    if isinstance(e, Stalled):
        return text
    if isinstance(e, requests.ConnectTimeout):
        return f"no connection in {CONNECT_S:g} s"
    if isinstance(e, requests.Timeout):
        return f"stalled: no answer in {READ_S:g} s"
    if isinstance(e, requests.exceptions.ProxyError):
        return f"proxy error ({text[:160]})"
    if isinstance(e, requests.ConnectionError):
        if "NameResolution" in text or "Name or service not known" in text or "getaddrinfo" in text:
            return "DNS: host not found"
        if "Connection refused" in text:
            return "connection refused"
        return f"connection failed ({text[:160]})"
    return text[:200]

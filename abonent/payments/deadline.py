"""A whole-call deadline for the providers' HTTP calls, and a bound on the answer's size.

``httpx.Timeout`` bounds each step (connect, one read, one write), not the call: an answer that trickles in a few
bytes at a time keeps the caller for as long as the other side keeps sending. ``request`` streams the answer and
gives up when the total time passes ``deadline`` seconds (a per-read timeout still bounds the wait for one chunk,
so the call ends at most one read timeout after the deadline).

The size is bounded twice: ``MAX_BODY`` bytes as sent, and ``MAX_BODY`` bytes once decoded. A gzip answer of a
few kilobytes can inflate to gigabytes (a "gzip bomb", from a hostile or broken endpoint): it is decompressed
here step by step with ``max_length``, never more than the bound in memory, instead of by httpx in one go.
"""

from __future__ import annotations

import time
import zlib

import httpx

MAX_BODY = 1024 * 1024  # no provider answer we read is near this; a longer one is not an answer


class DeadlineExceeded(httpx.TimeoutException):
    """The whole call took longer than its deadline (a subclass of httpx's timeout: callers treat it alike)."""


class _Inflater:
    """Decodes one ``Content-Encoding`` (identity, gzip, deflate: what httpx asks for) without ever producing more
    than ``limit`` bytes in all."""

    def __init__(self, encoding: str, limit: int, request: httpx.Request):
        self.encoding, self.limit, self.request = encoding, limit, request
        self.size = 0
        if encoding in ("", "identity"):
            self.zlib = None
        elif encoding in ("gzip", "x-gzip"):
            self.zlib = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif encoding == "deflate":
            self.zlib = zlib.decompressobj()  # zlib-wrapped, as the RFC says; raw deflate tried below
            self.first = True
        else:
            raise httpx.DecodingError(f"an answer in an encoding we did not ask for: {encoding}", request=request)

    def _count(self, data: bytes) -> bytes:
        self.size += len(data)
        if self.size > self.limit:
            raise httpx.DecodingError("the decoded answer is too long", request=self.request)
        return data

    def feed(self, chunk: bytes) -> bytes:
        if self.zlib is None:
            return self._count(chunk)
        room = self.limit - self.size
        try:
            data = self.zlib.decompress(chunk, room + 1)
        except zlib.error as exc:
            if self.encoding == "deflate" and self.first:  # some servers send raw deflate (httpx does the same)
                self.zlib, self.first = zlib.decompressobj(-zlib.MAX_WBITS), False
                return self.feed(chunk)
            raise httpx.DecodingError(f"the answer cannot be decoded: {exc}", request=self.request) from exc
        self.first = False
        if self.zlib.unconsumed_tail:
            raise httpx.DecodingError("the decoded answer is too long", request=self.request)
        return self._count(data)

    def finish(self) -> bytes:
        if self.zlib is None:
            return b""
        try:
            return self._count(self.zlib.flush())
        except zlib.error as exc:
            raise httpx.DecodingError(f"the answer cannot be decoded: {exc}", request=self.request) from exc


def request(client: httpx.Client, method: str, url: str, *, deadline: float, **kwargs) -> httpx.Response:
    """``client.request`` with a total deadline in seconds; the returned response has its body read and decoded
    per its Content-Encoding (as ``client.request`` would), at most ``MAX_BODY`` bytes as sent and as decoded."""
    ends = time.monotonic() + deadline
    with client.stream(method, url, **kwargs) as response:
        inflater = _Inflater(response.headers.get("content-encoding", "").strip().lower(), MAX_BODY, response.request)
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_raw():  # as sent (maybe gzip): decoded here, under the bound
            size += len(chunk)
            if time.monotonic() > ends:
                raise DeadlineExceeded(f"no whole answer within {deadline:g} s", request=response.request)
            if size > MAX_BODY:
                raise httpx.DecodingError("the answer is too long", request=response.request)
            chunks.append(inflater.feed(chunk))
        chunks.append(inflater.finish())
        if time.monotonic() > ends:
            raise DeadlineExceeded(f"no whole answer within {deadline:g} s", request=response.request)
    # The body is decoded now: the headers must not make httpx decode it again.
    headers = [
        (k, v) for k, v in response.headers.multi_items() if k.lower() not in ("content-encoding", "content-length")
    ]
    return httpx.Response(response.status_code, headers=headers, content=b"".join(chunks), request=response.request)

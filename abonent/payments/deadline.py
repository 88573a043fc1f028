"""A whole-call deadline for the providers' HTTP calls.

``httpx.Timeout`` bounds each step (connect, one read, one write), not the call: an answer that trickles in a few
bytes at a time keeps the caller for as long as the other side keeps sending. ``request`` streams the answer and
gives up when the total time passes ``deadline`` seconds (a per-read timeout still bounds the wait for one chunk,
so the call ends at most one read timeout after the deadline).
"""

from __future__ import annotations

import time

import httpx

MAX_BODY = 1024 * 1024  # no provider answer we read is near this; a longer one is not an answer


class DeadlineExceeded(httpx.TimeoutException):
    """The whole call took longer than its deadline (a subclass of httpx's timeout: callers treat it alike)."""


def request(client: httpx.Client, method: str, url: str, *, deadline: float, **kwargs) -> httpx.Response:
    """``client.request`` with a total deadline in seconds; the returned response has its body read (and
    decoded per its Content-Encoding, as ``client.request`` would)."""
    ends = time.monotonic() + deadline
    with client.stream(method, url, **kwargs) as response:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_raw():  # as sent (maybe gzip): decoded once, by the Response built below
            chunks.append(chunk)
            size += len(chunk)
            if time.monotonic() > ends:
                raise DeadlineExceeded(f"no whole answer within {deadline:g} s", request=response.request)
            if size > MAX_BODY:
                raise httpx.DecodingError("the answer is too long", request=response.request)
        if time.monotonic() > ends:
            raise DeadlineExceeded(f"no whole answer within {deadline:g} s", request=response.request)
    return httpx.Response(
        response.status_code, headers=response.headers, content=b"".join(chunks), request=response.request
    )

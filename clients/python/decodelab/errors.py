"""Typed exceptions for decodelabd error replies.

Every error reply carries a ``code`` (see docs/protocol.md), the request ``field`` at fault
(``""`` when the message as a whole is) and a human-readable ``message``. Each code maps to
its own exception class, so callers can ``except decodelab.Busy`` and retry.
"""

from __future__ import annotations


class DecodelabError(Exception):
    """Base class: an error reply from decodelabd (or a client-side failure)."""

    code = "error"

    def __init__(self, message: str, field: str = "", request_id: int | None = None):
        super().__init__(f"{self.code}{f' ({field})' if field else ''}: {message}")
        self.message = message
        self.field = field
        self.request_id = request_id


class InvalidArgument(DecodelabError):
    """A field is out of range, of the wrong type, missing or unknown."""

    code = "invalid_argument"


class NotFound(DecodelabError):
    """An unknown op, model, decoder, role or token."""

    code = "not_found"


class BadFormat(DecodelabError):
    """The message was not valid msgpack, or a model spec/file did not parse."""

    code = "bad_format"


class Unsupported(DecodelabError):
    code = "unsupported"


class Numeric(DecodelabError):
    code = "numeric"


class Cancelled(DecodelabError):
    """The request was cancelled before it started."""

    code = "cancelled"


class Internal(DecodelabError):
    code = "internal"


class ResourceExhausted(DecodelabError):
    """A model's KV budget cannot hold the request (``kv_budget_mb`` of ``load_model``)."""

    code = "resource_exhausted"


class Busy(DecodelabError):
    """The daemon's queue is full; retry later."""

    code = "busy"


class TooLarge(DecodelabError):
    """The request exceeded the daemon's message size limit."""

    code = "too_large"


class Unauthorized(DecodelabError):
    """Missing or wrong shared secret (pass ``auth=`` to the client)."""

    code = "unauthorized"


class Forbidden(DecodelabError):
    """The op is disabled by the daemon's configuration (e.g. shutdown)."""

    code = "forbidden"


class ShuttingDown(DecodelabError):
    code = "shutting_down"


class DeadlineExceeded(DecodelabError):
    """The request's ``deadline`` passed while it waited in the queue."""

    code = "deadline_exceeded"


class Timeout(DecodelabError):
    """Client side: no message from the daemon within the client's timeout."""

    code = "timeout"


ERRORS = {
    cls.code: cls
    for cls in (InvalidArgument, NotFound, BadFormat, Unsupported, Numeric, Cancelled, Internal,
                ResourceExhausted, Busy, TooLarge, Unauthorized, Forbidden, ShuttingDown, DeadlineExceeded)
}


def error_from_reply(reply: dict) -> DecodelabError:
    """The exception for an error reply map."""
    cls = ERRORS.get(reply.get("code", ""), DecodelabError)
    err = cls(reply.get("message", ""), reply.get("field", ""), reply.get("id"))
    if cls is DecodelabError:
        err.code = reply.get("code", "error")
    return err

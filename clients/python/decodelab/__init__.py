"""Python client for decodelabd, the decodelab decoding-research daemon.

:class:`Client` is synchronous, :class:`AsyncClient` uses asyncio; both speak the msgpack
protocol of docs/protocol.md over ZeroMQ and raise a typed :class:`DecodelabError` subclass
per error code.
"""

from .aio import AsyncClient, AsyncStream
from .client import DEFAULT_ENDPOINT, Client, Stream
from .errors import (ERRORS, BadFormat, Busy, Cancelled, DeadlineExceeded, DecodelabError, Forbidden, Internal,
                     InvalidArgument, NotFound, Numeric, ResourceExhausted, ShuttingDown, Timeout, TooLarge,
                     Unauthorized, Unsupported)
from .types import Chunk, GenerateResult

PROTOCOL_VERSION = 2

__all__ = ["AsyncClient", "AsyncStream", "Client", "Stream", "Chunk", "GenerateResult", "DEFAULT_ENDPOINT",
           "PROTOCOL_VERSION", "ERRORS", "DecodelabError", "BadFormat", "Busy", "Cancelled", "DeadlineExceeded",
           "Forbidden", "Internal", "InvalidArgument", "NotFound", "Numeric", "ResourceExhausted", "ShuttingDown", "Timeout",
           "TooLarge", "Unauthorized", "Unsupported"]

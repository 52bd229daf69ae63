"""asyncio client for decodelabd: the same ops as :class:`decodelab.Client`, awaitable, with
many requests in flight on one connection.

    async with AsyncClient(endpoint) as c:
        results = await asyncio.gather(*(c.generate("a b", model="t", seed=s) for s in range(8)))
        async with c.stream("a b", model="t", max_tokens=64) as s:
            async for chunk in s:
                print(chunk.text, end="")
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import itertools
from typing import AsyncIterator, Dict, List, Optional, Tuple

import msgpack
import zmq
import zmq.asyncio

from .client import DEFAULT_ENDPOINT, enable_curve
from .errors import Timeout, error_from_reply
from .types import (Chunk, GenerateResult, chunk_from_message, generate_fields, many_fields, results_from_reply,
                    reward_scores)


class AsyncClient:
    """One DEALER socket; a reader task routes replies to the request that awaits them."""

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, *, timeout: float = 30.0, auth: Optional[str] = None,
                 curve_server_key: Optional[str] = None, curve_keypair: Optional[Tuple[str, str]] = None):
        self.endpoint = endpoint
        self.timeout = timeout
        self.auth = auth
        self._context = zmq.asyncio.Context.instance()
        self._socket = self._context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.IPV6, 1)  # tcp://[::1]:P as well as IPv4
        if curve_server_key:
            enable_curve(self._socket, curve_server_key, curve_keypair)
        self._socket.connect(endpoint)
        self._ids = itertools.count(1)
        self._queues: Dict[int, asyncio.Queue] = {}
        self._reader: Optional[asyncio.Task] = None
        # Error replies with id 0 belong to no request (see Client.unattributed_errors).
        self.unattributed_errors: collections.deque = collections.deque(maxlen=100)

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        if self._reader:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):
                pass
            self._reader = None
        if not self._socket.closed:
            self._socket.close()

    async def _read_loop(self) -> None:
        while True:
            message = msgpack.unpackb(await self._socket.recv(), raw=False)
            if message.get("type") == "heartbeat":
                continue
            mid = message.get("id")
            if mid == 0 and message.get("type") == "error":
                self.unattributed_errors.append(error_from_reply(message))
                continue
            q = self._queues.get(mid)
            if q is not None:
                q.put_nowait(message)

    async def send(self, op: str, **fields) -> int:
        """Sends a request; returns its id. Its messages are read with :meth:`next_message`."""
        if self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(self._read_loop())
        request_id = next(self._ids)
        self._queues[request_id] = asyncio.Queue()
        message = {"id": request_id, "op": op, **fields}
        if self.auth is not None:
            message["auth"] = self.auth
        await self._socket.send(msgpack.packb(message, use_bin_type=True))
        return request_id

    async def next_message(self, request_id: int) -> dict:
        try:
            return await asyncio.wait_for(self._queues[request_id].get(), self.timeout)
        except asyncio.TimeoutError:
            raise Timeout(f"no reply from {self.endpoint} within {self.timeout} s", request_id=request_id) from None

    async def wait(self, request_id: int, reward=None) -> dict:
        """The final reply to ``request_id`` (chunks are skipped); raises its typed error.
        ``reward`` (a function or coroutine function of the texts) answers reward requests."""
        try:
            while True:
                message = await self.next_message(request_id)
                if message.get("type") == "chunk":
                    continue
                if message.get("type") == "reward_request":
                    await self._answer_reward(request_id, message, reward)
                    continue
                if message.get("type") == "error":
                    raise error_from_reply(message)
                return message
        finally:
            self._queues.pop(request_id, None)

    async def _answer_reward(self, request_id: int, message: dict, reward) -> None:
        try:
            if reward is None:
                raise ValueError(f"request {request_id}: the daemon asks for a reward and none was given")
            if inspect.iscoroutinefunction(reward):
                texts = list(message.get("texts", []))
                values = await reward(texts)
                scores = reward_scores(lambda _: values, message)
            else:
                scores = reward_scores(reward, message)
        except BaseException:
            await self._socket.send(msgpack.packb({"id": next(self._ids), "op": "cancel", "request_id": request_id,
                                                   **({"auth": self.auth} if self.auth is not None else {})}))
            raise
        reply = {"id": request_id, "op": "reward", "call": message["call"], "scores": scores}
        if self.auth is not None:
            reply["auth"] = self.auth
        await self._socket.send(msgpack.packb(reply, use_bin_type=True))

    async def call(self, op: str, **fields) -> dict:
        return await self.wait(await self.send(op, **fields))

    async def hello(self) -> dict:
        return await self.call("hello")

    async def list_decoders(self) -> list:
        return (await self.call("list_decoders"))["decoders"]

    async def list_models(self) -> dict:
        return await self.call("list_models")

    async def load_model(self, name: str, spec: str, target: Optional[str] = None,
                   kv_budget_mb: Optional[float] = None) -> dict:
        fields = {"name": name, "spec": spec}
        if target is not None:
            fields["target"] = target
        if kv_budget_mb is not None:
            fields["kv_budget_mb"] = kv_budget_mb
        return (await self.call("load_model", **fields))["model"]

    async def unload_model(self, name: str) -> None:
        await self.call("unload_model", name=name)

    async def status(self) -> dict:
        return await self.call("status")

    async def metrics(self) -> dict:
        return await self.call("metrics")

    async def cancel(self, request_id: int) -> bool:
        return (await self.call("cancel", request_id=request_id))["found"]

    async def shutdown(self) -> None:
        """Asks the daemon to stop (only when it was started with --allow-shutdown)."""
        await self.call("shutdown")

    async def generate(self, prompt: Optional[str] = None, **options) -> GenerateResult:
        """See :meth:`decodelab.Client.generate` for the options."""
        fields = generate_fields(prompt, **options)
        request_id = await self.send("generate", stream=False, **fields)
        return GenerateResult.from_reply(await self.wait(request_id, reward=options.get("reward")))

    async def generate_many(self, prompt: Optional[str] = None, *, n: Optional[int] = None, seeds=None,
                            seed: int = 0, on_chunk=None, **options) -> List[GenerateResult]:
        """See :meth:`decodelab.Client.generate_many`; ``on_chunk`` may be a function or a
        coroutine function."""
        if options.get("reward") is not None:
            raise TypeError("generate_many does not take a reward: client rewards run one generation per request")
        fields = generate_fields(prompt, **options)
        fields.update(many_fields(n, seeds, seed))
        if "seeds" in fields:
            fields.pop("seed", None)
        request_id = await self.send("generate", stream=on_chunk is not None, **fields)
        try:
            while True:
                message = await self.next_message(request_id)
                kind = message.get("type")
                if kind == "chunk":
                    if on_chunk is not None:
                        got = on_chunk(chunk_from_message(message))
                        if inspect.isawaitable(got):
                            await got
                    continue
                if kind == "error":
                    raise error_from_reply(message)
                return results_from_reply(message)
        finally:
            self._queues.pop(request_id, None)

    def stream(self, prompt: Optional[str] = None, **options) -> "AsyncStream":
        """An async iterator of :class:`Chunk`; ``result`` is set when it ends."""
        if options.get("reward") is not None:
            raise TypeError("AsyncClient.stream does not answer reward requests; use generate(..., reward=...)")
        return AsyncStream(self, generate_fields(prompt, **options))


class AsyncStream:
    def __init__(self, client: AsyncClient, fields: dict):
        self.client = client
        self.fields = fields
        self.id: Optional[int] = None
        self.result: Optional[GenerateResult] = None

    async def start(self) -> int:
        if self.id is None:
            self.id = await self.client.send("generate", stream=True, **self.fields)
        return self.id

    async def __aiter__(self) -> AsyncIterator[Chunk]:
        await self.start()
        try:
            while self.result is None:
                message = await self.client.next_message(self.id)
                kind = message.get("type")
                if kind == "chunk":
                    yield chunk_from_message(message)
                elif kind == "error":
                    raise error_from_reply(message)
                else:
                    self.result = GenerateResult.from_reply(message)
        finally:
            if self.result is not None:
                self.client._queues.pop(self.id, None)

    async def cancel(self) -> GenerateResult:
        """Cancels the generation and returns its (partial) result."""
        await self.start()
        if self.result is None:
            await self.client.call("cancel", request_id=self.id)
            async for _ in self:
                pass
        return self.result

    async def __aenter__(self) -> "AsyncStream":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        if self.result is None:
            await self.cancel()

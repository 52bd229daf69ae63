"""Synchronous client for decodelabd.

    from decodelab import Client

    with Client("ipc:///tmp/decodelabd.sock") as c:
        c.load_model("t", "table(vocab=32)")
        print(c.generate("a b c", model="t", seed=1, max_tokens=16).text)
        with c.stream("a b c", model="t", max_tokens=64) as s:
            for chunk in s:
                print(chunk.text, end="", flush=True)
        print(s.result.stop_reason)

A Client owns one ZeroMQ DEALER socket and is not thread-safe; use one per thread.
"""

from __future__ import annotations

import collections
import itertools
import time
from typing import Dict, Iterator, List, Optional, Tuple

import msgpack
import zmq

from .errors import Timeout, error_from_reply
from .types import (Chunk, GenerateResult, chunk_from_message, generate_fields, many_fields, results_from_reply,
                    reward_scores)

DEFAULT_ENDPOINT = "ipc:///tmp/decodelabd.sock"

# Every op the daemon reports in ``hello()["ops"]`` has a method of the same name on Client and
# AsyncClient, except those named here (op -> the method that sends it). The tests check this.
OP_METHODS = {"reward": "generate"}  # one-way reward replies, sent by generate(..., reward=fn)


def enable_curve(socket, server_key: str, keypair: Optional[Tuple[str, str]] = None) -> None:
    """Makes ``socket`` a CURVE client of the server with public key ``server_key`` (Z85), with the
    client's own ``keypair`` (public, secret; Z85) or a fresh one."""
    public, secret = keypair if keypair else zmq.curve_keypair()
    public = public.encode() if isinstance(public, str) else public
    secret = secret.encode() if isinstance(secret, str) else secret
    socket.curve_serverkey = server_key.encode() if isinstance(server_key, str) else server_key
    socket.curve_publickey = public
    socket.curve_secretkey = secret


class Client:
    """A connection to decodelabd.

    ``timeout`` bounds the wait for any one message (seconds); ``auth`` is the daemon's
    shared secret when it requires one; ``curve_server_key`` (Z85) is the public key of a daemon
    running with CURVE encryption; ``curve_keypair`` (public, secret; Z85) is the client's own,
    for a daemon that admits listed clients only (``--curve-clients``), else a fresh one is made.
    """

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, *, timeout: float = 30.0, auth: Optional[str] = None,
                 curve_server_key: Optional[str] = None, curve_keypair: Optional[Tuple[str, str]] = None,
                 context: Optional[zmq.Context] = None):
        self.endpoint = endpoint
        self.timeout = timeout
        self.auth = auth
        self._context = context or zmq.Context.instance()
        self._socket = self._context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.IPV6, 1)  # tcp://[::1]:P as well as IPv4
        if curve_server_key:
            enable_curve(self._socket, curve_server_key, curve_keypair)
        self._socket.connect(endpoint)
        self._ids = itertools.count(1)
        # Messages that arrived for other requests while waiting for one.
        self._pending: Dict[int, collections.deque] = collections.defaultdict(collections.deque)
        # Error replies with id 0: the daemon could not read a message far enough to find its id,
        # so they belong to no request (the client's own requests always carry one).
        self.unattributed_errors: collections.deque = collections.deque(maxlen=100)

    # -- lifecycle --
    def close(self) -> None:
        """Closes the socket; the daemon cancels work still streaming to it."""
        if not self._socket.closed:
            self._socket.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- low level --
    def send(self, op: str, **fields) -> int:
        """Sends a request and returns its id (replies are read with :meth:`wait`)."""
        request_id = next(self._ids)
        message = {"id": request_id, "op": op, **fields}
        if self.auth is not None:
            message["auth"] = self.auth
        self._socket.send(msgpack.packb(message, use_bin_type=True))
        return request_id

    def _next_message(self, request_id: int) -> dict:
        if self._pending[request_id]:
            return self._pending[request_id].popleft()
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self._socket.poll(int(left * 1000)):
                raise Timeout(f"no reply from {self.endpoint} within {self.timeout} s", request_id=request_id)
            message = msgpack.unpackb(self._socket.recv(), raw=False)
            mid = message.get("id")
            if message.get("type") == "heartbeat":
                continue
            if mid == request_id:
                return message
            if mid == 0 and message.get("type") == "error":
                self.unattributed_errors.append(error_from_reply(message))
                continue
            self._pending[mid].append(message)

    def wait(self, request_id: int, on_chunk=None, reward=None) -> dict:
        """Waits for the final reply to ``request_id``; raises its typed error. ``reward``
        answers the daemon's reward requests of a generation sent with ``client_reward``."""
        while True:
            message = self._next_message(request_id)
            kind = message.get("type")
            if kind == "chunk":
                if on_chunk:
                    on_chunk(message)
                continue
            if kind == "reward_request":
                self._answer_reward(request_id, message, reward)
                continue
            self._pending.pop(request_id, None)
            if kind == "error":
                raise error_from_reply(message)
            return message

    def _answer_reward(self, request_id: int, message: dict, reward) -> None:
        try:
            if reward is None:
                raise ValueError(f"request {request_id}: the daemon asks for a reward and none was given")
            scores = reward_scores(reward, message)
        except BaseException:
            # Do not leave the daemon waiting out its reward timeout.
            self.send("cancel", request_id=request_id)
            self._pending.pop(request_id, None)
            raise
        message = {"id": request_id, "op": "reward", "call": message["call"], "scores": scores}
        if self.auth is not None:
            message["auth"] = self.auth
        self._socket.send(msgpack.packb(message, use_bin_type=True))

    def call(self, op: str, **fields) -> dict:
        """Sends a request and returns its result map."""
        return self.wait(self.send(op, **fields))

    # -- ops --
    def hello(self) -> dict:
        """Protocol version, build info and model backends."""
        return self.call("hello")

    def list_decoders(self) -> list:
        """Decoders with their roles and parameter schemas (name, type, default, min, max, doc, choices)."""
        return self.call("list_decoders")["decoders"]

    def list_models(self) -> dict:
        """``{"models": [...loaded...], "loaders": [...model spec kinds...]}``."""
        return self.call("list_models")

    def load_model(self, name: str, spec: str, target: Optional[str] = None,
                   kv_budget_mb: Optional[float] = None) -> dict:
        """Loads a model from a spec string under ``name``; a draft names its loaded ``target``."""
        fields = {"name": name, "spec": spec}
        if target is not None:
            fields["target"] = target
        if kv_budget_mb is not None:
            fields["kv_budget_mb"] = kv_budget_mb
        return self.call("load_model", **fields)["model"]

    def unload_model(self, name: str) -> None:
        self.call("unload_model", name=name)

    def status(self) -> dict:
        """Queue depth, in-flight requests, loaded models, RSS."""
        return self.call("status")

    def metrics(self) -> dict:
        """Request and error counts, tokens generated, latency percentiles per op."""
        return self.call("metrics")

    def cancel(self, request_id: int) -> bool:
        """Cancels one of this client's requests; returns whether it was still in flight."""
        return self.call("cancel", request_id=request_id)["found"]

    def shutdown(self) -> None:
        """Asks the daemon to stop (only when it was started with --allow-shutdown)."""
        self.call("shutdown")

    def generate(self, prompt: Optional[str] = None, **options) -> GenerateResult:
        """Generates and returns the whole result.

        Options: ``model`` (target name) or ``models`` (role -> name), ``draft``, ``decoder``,
        ``params`` (dict), ``prompt_ids``, ``seed``, ``max_tokens``, ``stop`` (str or list),
        ``stop_token_ids``, ``stop_at_eos``, ``logprobs``, ``deadline`` (seconds), ``reward``
        and ``reward_timeout`` (seconds).

        ``reward``: a function ``texts -> scores`` for decoders that steer by an external reward
        (``smc``). The daemon calls it over the connection at every scoring point with all live
        particles' generated texts; it returns each text's cumulative log-potential (``-inf``
        rules a particle out), e.g. ``[4.0 * unit_test_pass_rate(t) for t in texts]``.
        """
        fields = generate_fields(prompt, **options)
        return GenerateResult.from_reply(self.wait(self.send("generate", stream=False, **fields), reward=options.get("reward")))

    def generate_many(self, prompt: Optional[str] = None, *, n: Optional[int] = None, seeds=None, seed: int = 0,
                      on_chunk=None, **options) -> List[GenerateResult]:
        """Several generations of one prompt, one per seed, run by the daemon side by side (their
        model calls share forward passes): ``n`` seeds ``seed .. seed+n-1``, or an explicit
        ``seeds`` list. Returns one :class:`GenerateResult` per seed, in that order, each with its
        ``seed``; each equals ``generate(..., seed=that seed)``. ``on_chunk(chunk)`` streams the
        tokens as they come, ``chunk.seed`` saying whose. Same options as generate, except
        ``reward``."""
        if options.get("reward") is not None:
            raise TypeError("generate_many does not take a reward: client rewards run one generation per request")
        fields = generate_fields(prompt, **options)
        fields.update(many_fields(n, seeds, seed))
        if "seeds" in fields:
            fields.pop("seed", None)
        callback = (lambda m: on_chunk(chunk_from_message(m))) if on_chunk else None
        reply = self.wait(self.send("generate", stream=on_chunk is not None, **fields), on_chunk=callback)
        return results_from_reply(reply)

    def stream(self, prompt: Optional[str] = None, **options) -> "Stream":
        """Starts a streamed generation: iterate the returned :class:`Stream` for chunks; its
        ``result`` holds the final :class:`GenerateResult` afterwards. Same options as generate."""
        fields = generate_fields(prompt, **options)
        return Stream(self, self.send("generate", stream=True, **fields), reward=options.get("reward"))


class Stream:
    """An in-progress streamed generation: an iterator of :class:`Chunk`.

    Leaving a ``with`` block before the end cancels the generation (and waits for its result).
    """

    def __init__(self, client: Client, request_id: int, reward=None):
        self.client = client
        self.id = request_id
        self.reward = reward
        self.result: Optional[GenerateResult] = None

    def __iter__(self) -> Iterator[Chunk]:
        while self.result is None:
            message = self.client._next_message(self.id)
            kind = message.get("type")
            if kind == "chunk":
                yield chunk_from_message(message)
            elif kind == "reward_request":
                self.client._answer_reward(self.id, message, self.reward)
            elif kind == "error":
                self.client._pending.pop(self.id, None)
                raise error_from_reply(message)
            else:
                self.client._pending.pop(self.id, None)
                self.result = GenerateResult.from_reply(message)

    def cancel(self) -> GenerateResult:
        """Cancels the generation and returns its (partial) result."""
        if self.result is None:
            self.client.send("cancel", request_id=self.id)
            for _ in self:
                pass
        return self.result

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc) -> None:
        if self.result is None and not self.client._socket.closed:
            self.cancel()

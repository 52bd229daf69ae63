"""The Python clients against a real decodelabd."""

import asyncio
import inspect
import json
import os
import subprocess
import time

import msgpack
import pytest

import decodelab
from conftest import DRAFT, TARGET, build_dir, start_daemon, stop_daemon


def test_hello_and_schemas(client):
    hello = client.hello()
    assert hello["protocol"] == decodelab.PROTOCOL_VERSION
    assert "table" in hello["backends"]
    decoders = {d["name"]: d for d in client.list_decoders()}
    assert {"sample", "greedy", "sd"} <= decoders.keys()
    temperature = next(p for p in decoders["sample"]["params"] if p["name"] == "temperature")
    assert temperature["type"] == "real" and temperature["min"] == 0


def test_clients_have_a_method_for_every_op(client):
    ops = client.hello()["ops"]
    assert {"hello", "generate", "cancel", "reward"} <= set(ops)
    assert set(decodelab.client.OP_METHODS) <= set(ops)
    for op in ops:
        name = decodelab.client.OP_METHODS.get(op, op)
        assert callable(getattr(decodelab.Client, name, None)), f"decodelab.Client has no method for op {op!r}"
        method = getattr(decodelab.AsyncClient, name, None)
        assert inspect.iscoroutinefunction(method), f"decodelab.AsyncClient has no coroutine method for op {op!r}"


def test_generate_equals_the_cli(client):
    cli = build_dir() / "bin" / "decodelab"
    out = subprocess.run([str(cli), "generate", "--model", TARGET, "--prompt", "a b c", "--seed", "11",
                          "--max-tokens", "24", "--json"], check=True, capture_output=True, text=True).stdout
    expected = json.loads(out)
    result = client.generate("a b c", model="t", seed=11, max_tokens=24, logprobs=True)
    assert result.tokens == expected["tokens"]
    assert result.text == expected["text"]
    assert result.stop_reason == "max_tokens"
    assert result.logprobs == pytest.approx(expected["logprobs"], abs=1e-4)
    assert result.stats["target_calls"] == expected["target_calls"]


def test_stream_yields_every_token_in_order(client):
    seen = []
    with client.stream("a b c", model="t", seed=4, max_tokens=300, logprobs=True) as s:
        for chunk in s:
            assert chunk.index == len(seen)
            assert len(chunk.logprobs) == len(chunk.tokens)
            seen += chunk.tokens
    assert s.result.tokens == seen
    assert seen == client.generate("a b c", model="t", seed=4, max_tokens=300).tokens


def test_leaving_a_stream_early_cancels_it(client):
    with client.stream("a b", model="t", seed=1, max_tokens=1 << 20) as s:
        first = next(iter(s))
        assert first.tokens
    assert s.result.stop_reason == "cancelled"
    assert len(s.result.tokens) < 1 << 20
    for _ in range(200):  # the worker counts itself idle just after sending the result
        status = client.status()
        if status["in_flight"] == 0 and status["queue_depth"] == 0:
            break
        time.sleep(0.005)
    assert status["in_flight"] == 0 and status["queue_depth"] == 0


def test_errors_are_typed_and_name_the_field(client):
    with pytest.raises(decodelab.NotFound) as e:
        client.generate("a b", model="missing")
    assert e.value.field == "models.target"
    with pytest.raises(decodelab.InvalidArgument) as e:
        client.generate("a b", model="t", params={"top_p": 2.0})
    assert e.value.field == "params" and "top_p" in e.value.message
    with pytest.raises(decodelab.NotFound) as e:
        client.generate("a b", model="t", decoder="nope")
    assert e.value.field == "decoder"
    with pytest.raises(decodelab.InvalidArgument) as e:
        client.call("generate", models={"target": "t"}, prompt="a", max_tokens="x")
    assert e.value.field == "max_tokens"
    with pytest.raises(decodelab.Forbidden):
        client.shutdown()
    assert client.generate("a", model="t", max_tokens=3).tokens  # still serving


def test_errors_echoing_invalid_utf8_decode(client):
    # A request key that is not valid UTF-8 (raw bytes: the client itself only sends valid text).
    raw = msgpack.packb({"id": 900001, "op": "hello", "KEY": 1}, use_bin_type=True).replace(b"KEY", b"\xff\xfeY")
    client._socket.send(raw)
    with pytest.raises(decodelab.InvalidArgument) as e:
        client.wait(900001)
    assert e.value.field == "\ufffd\ufffdY"
    assert client.hello()["protocol"] == decodelab.PROTOCOL_VERSION


def test_too_large_errors_reach_their_own_request(client):
    big = client.send("generate", models={"target": "t"}, prompt="a " * 700_000)  # 1.4 MB: over 1 MiB, under 2
    hello = client.send("hello")
    assert client.wait(hello)["protocol"] == decodelab.PROTOCOL_VERSION  # the too_large error is not handed to this request
    with pytest.raises(decodelab.TooLarge) as e:
        client.wait(big)
    assert e.value.request_id == big


def test_errors_for_unreadable_messages_are_kept_aside(client, daemon):
    client._socket.send(b"\xc1")  # not msgpack: the daemon answers with id 0
    assert client.hello()["protocol"] == decodelab.PROTOCOL_VERSION
    assert [type(e) for e in client.unattributed_errors] == [decodelab.BadFormat]

    async def main():
        async with decodelab.AsyncClient(daemon, timeout=10) as c:
            pending = asyncio.ensure_future(c.generate("a b", model="t", max_tokens=200))
            await asyncio.sleep(0)
            await c._socket.send(b"\xc1")
            assert len((await pending).tokens) == 200  # not failed by the id-0 error
            assert (await c.hello())["protocol"] == decodelab.PROTOCOL_VERSION
            for _ in range(100):
                if c.unattributed_errors:
                    break
                await asyncio.sleep(0.01)
            assert [type(e) for e in c.unattributed_errors] == [decodelab.BadFormat]

    asyncio.run(main())


def test_localhost_and_ipv6_loopback():
    import socket
    import tempfile
    port = 40000 + (os.getpid() * 11 + 3) % 20000
    tmp = tempfile.TemporaryDirectory(prefix="decodelabd-py-")
    proc = subprocess.Popen([str(build_dir() / "bin" / "decodelabd"), "--bind", f"tcp://localhost:{port}",
                             "--load", f"t={TARGET}", "--log-level", "error"])
    try:
        endpoints = [f"tcp://localhost:{port}", f"tcp://127.0.0.1:{port}"]
        if socket.has_ipv6 and any(line.startswith("0" * 31 + "1") for line in open("/proc/net/if_inet6")):
            endpoints.append(f"tcp://[::1]:{port}")
        for endpoint in endpoints:
            with decodelab.Client(endpoint, timeout=10) as c:
                assert c.hello()["protocol"] == decodelab.PROTOCOL_VERSION, endpoint
    finally:
        stop_daemon(proc, tmp)


def test_draft_models_and_speculative_decoding(client):
    client.load_model("py_draft", DRAFT, target="t")
    try:
        names = [m["name"] for m in client.list_models()["models"]]
        assert "py_draft" in names
        spec = client.generate("a b c", model="t", draft="py_draft", decoder="sd", seed=2, max_tokens=40)
        assert spec.stats["tokens_proposed"] > 0
        assert len(spec.tokens) == 40
    finally:
        client.unload_model("py_draft")
    with pytest.raises(decodelab.NotFound):
        client.unload_model("py_draft")


def test_metrics_count_requests_and_errors(client):
    client.generate("a", model="t", max_tokens=2)
    with pytest.raises(decodelab.NotFound):
        client.generate("a", model="none")
    m = client.metrics()
    assert m["requests_by_op"]["generate"] >= 2
    assert m["errors_by_code"]["not_found"] >= 1
    assert m["latency"]["generate"]["p50_s"] > 0


def test_async_client_runs_requests_concurrently(daemon):
    async def main():
        async with decodelab.AsyncClient(daemon, timeout=10) as c:
            assert (await c.hello())["protocol"] == decodelab.PROTOCOL_VERSION
            results = await asyncio.gather(*(c.generate("a b", model="t", seed=s, max_tokens=20) for s in range(6)))
            assert all(len(r.tokens) == 20 for r in results)
            streamed = []
            stream = c.stream("a b", model="t", seed=3, max_tokens=50)
            async for chunk in stream:
                streamed += chunk.tokens
            assert streamed == stream.result.tokens == (await c.generate("a b", model="t", seed=3, max_tokens=50)).tokens
            async with c.stream("a b", model="t", max_tokens=1 << 20) as s:
                async for _ in s:
                    break
            assert s.result.stop_reason == "cancelled"
            with pytest.raises(decodelab.InvalidArgument):
                await c.generate("a b", model="t", max_tokens=-1)

    asyncio.run(main())


def test_secret_and_busy():
    # start_daemon's readiness hello carries no secret, so this daemon is started by hand.
    import tempfile
    tmp = tempfile.TemporaryDirectory(prefix="decodelabd-py-")
    endpoint = f"ipc://{tmp.name}/d.sock"
    proc = subprocess.Popen([str(build_dir() / "bin" / "decodelabd"), "--bind", endpoint, "--load", f"t={TARGET}",
                             "--secret", "pw", "--workers", "1", "--max-queue", "1", "--log-level", "error"])
    try:
        with decodelab.Client(endpoint, timeout=10) as wrong:
            with pytest.raises(decodelab.Unauthorized):
                wrong.hello()
        with decodelab.Client(endpoint, timeout=10, auth="pw") as c:
            running = c.stream("a", model="t", max_tokens=1 << 20)
            next(iter(running))  # the only worker is busy with it now
            queued = c.send("generate", models={"target": "t"}, prompt="a", max_tokens=4)
            rejected = c.send("generate", models={"target": "t"}, prompt="a", max_tokens=4)
            with pytest.raises(decodelab.Busy):
                c.wait(rejected)
            assert running.cancel().stop_reason == "cancelled"
            assert len(c.wait(queued)["tokens"]) == 4
    finally:
        stop_daemon(proc, tmp)


def test_curve_encryption():
    import tempfile
    public, secret = (k.decode() for k in __import__("zmq").curve_keypair())
    tmp = tempfile.TemporaryDirectory(prefix="decodelabd-py-")
    port = 40000 + (os.getpid() * 7) % 20000
    endpoint = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen([str(build_dir() / "bin" / "decodelabd"), "--bind", endpoint, "--load", f"t={TARGET}",
                             "--curve-secret-key", secret, "--log-level", "error"])
    try:
        with decodelab.Client(endpoint, timeout=10, curve_server_key=public) as c:
            assert len(c.generate("a b", model="t", max_tokens=5).tokens) == 5
    finally:
        stop_daemon(proc, tmp)


def test_curve_admits_only_listed_clients(tmp_path):
    zmq = __import__("zmq")
    server_public, server_secret = (k.decode() for k in zmq.curve_keypair())
    allowed = tuple(k.decode() for k in zmq.curve_keypair())
    (tmp_path / "clients").write_text(f"# allowed\n{allowed[0]}\n")
    (tmp_path / "server.key").write_text(server_secret + "\n")
    port = 40000 + (os.getpid() * 13 + 5) % 20000
    endpoint = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen([str(build_dir() / "bin" / "decodelabd"), "--bind", endpoint, "--load", f"t={TARGET}",
                             "--curve-secret-file", str(tmp_path / "server.key"),
                             "--curve-clients", str(tmp_path / "clients"), "--log-level", "error"])
    try:
        with decodelab.Client(endpoint, timeout=10, curve_server_key=server_public, curve_keypair=allowed) as c:
            assert c.hello()["auth_required"] is True
            assert len(c.generate("a b", model="t", max_tokens=3).tokens) == 3
        with decodelab.Client(endpoint, timeout=0.5, curve_server_key=server_public) as stranger:
            with pytest.raises(decodelab.Timeout):
                stranger.hello()
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_client_reward_steers_smc(client, daemon):
    """The daemon asks the client to score SMC particles over the connection (client_reward)."""
    calls = []

    def count_a(texts):
        calls.append(len(texts))
        return [3.0 * t.count("a") for t in texts]

    steered = [client.generate("a b", model="t", decoder="smc", params={"particles": 8, "block": 2}, seed=s,
                               max_tokens=12, reward=count_a) for s in range(8)]
    plain = [client.generate("a b", model="t", decoder="smc", params={"particles": 8, "block": 2}, seed=s,
                             max_tokens=12) for s in range(8)]
    assert calls and all(n <= 8 for n in calls)
    assert sum(r.text.count("a") for r in steered) > sum(r.text.count("a") for r in plain)
    # Same seed and reward, same tokens: the round trip is as reproducible as the library.
    again = client.generate("a b", model="t", decoder="smc", params={"particles": 8, "block": 2}, seed=0,
                            max_tokens=12, reward=count_a)
    assert again.tokens == steered[0].tokens

    # A reward that fails raises here, cancels the generation, and the daemon keeps serving.
    def broken(texts):
        raise RuntimeError("reward model crashed")

    with pytest.raises(RuntimeError, match="reward model crashed"):
        client.generate("a b", model="t", decoder="smc", params={"particles": 4}, max_tokens=8, reward=broken)
    with pytest.raises(ValueError, match="1 scores for 4 texts"):  # checked here before it is sent
        client.generate("a b", model="t", decoder="smc", params={"particles": 4}, max_tokens=8,
                        reward=lambda texts: [0.0])
    with pytest.raises(decodelab.InvalidArgument) as e:
        client.generate("a b", model="t", max_tokens=8, reward=lambda texts: [0.0] * len(texts))
    assert e.value.field == "client_reward"
    assert client.hello()["protocol"] == decodelab.PROTOCOL_VERSION

    async def main():
        async with decodelab.AsyncClient(daemon, timeout=10) as c:
            async def score(texts):
                return count_a(texts)
            r = await c.generate("a b", model="t", decoder="smc", params={"particles": 8, "block": 2}, seed=0,
                                 max_tokens=12, reward=score)
            assert r.tokens == steered[0].tokens

    asyncio.run(main())


def test_generate_many_equals_single_generations(client):
    results = client.generate_many("a b c", model="t", n=4, seed=20, max_tokens=24, logprobs=True)
    assert [r.seed for r in results] == [20, 21, 22, 23]
    for r in results:
        one = client.generate("a b c", model="t", seed=r.seed, max_tokens=24, logprobs=True)
        assert (r.tokens, r.logprobs, r.text, r.stop_reason) == (one.tokens, one.logprobs, one.text, one.stop_reason)
    chunks = []
    listed = client.generate_many("a b c", model="t", seeds=[5, 3], max_tokens=30, on_chunk=chunks.append)
    assert [r.seed for r in listed] == [5, 3]
    for r in listed:
        streamed = [t for c in sorted((c for c in chunks if c.seed == r.seed), key=lambda c: c.index) for t in c.tokens]
        assert streamed == r.tokens == client.generate("a b c", model="t", seed=r.seed, max_tokens=30).tokens
    with pytest.raises(TypeError):
        client.generate_many("a b c", model="t", n=2, seeds=[1, 2])
    with pytest.raises(decodelab.InvalidArgument) as e:
        client.generate_many("a b c", model="t", n=0)
    assert e.value.field == "n"
    # A version-1 request still gets a version-1 reply.
    assert "results" not in client.call("generate", models={"target": "t"}, prompt="a b", max_tokens=3)


def test_async_generate_many(daemon):
    async def main():
        async with decodelab.AsyncClient(daemon, timeout=10) as c:
            seen = []

            async def on_chunk(chunk):
                seen.append(chunk.seed)

            results = await c.generate_many("a b", model="t", n=3, seed=7, max_tokens=16, on_chunk=on_chunk)
            assert [r.seed for r in results] == [7, 8, 9]
            assert set(seen) == {7, 8, 9}
            for r in results:
                assert r.tokens == (await c.generate("a b", model="t", seed=r.seed, max_tokens=16)).tokens

    asyncio.run(main())


def test_metrics_report_batch_sizes(client):
    client.generate_many("a b", model="t", n=3, max_tokens=8)
    batching = client.metrics()["batching"]["t"]
    assert batching["forward_passes"] > 0
    assert sum(int(k) * v for k, v in batching["batch_sizes"].items()) == batching["calls"]
    model = next(m for m in client.status()["models"] if m["name"] == "t")
    assert model["batching"]["forward_passes"] >= batching["forward_passes"]

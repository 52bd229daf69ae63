"""Runs an A/B study's (prompt, seed, arm) generations over several decodelabd instances with Ray.

    from ablab.distributed import run_ab_ray
    result = run_ab_ray({"t": "gguf(path=...)"}, arms, prompts, seeds=[1, 2, 3], daemons=4)

Each daemon belongs to a Ray actor (:class:`DaemonActor`): the actor starts its own decodelabd on
the node Ray placed it on (on an ipc endpoint private to that node) and stops it with SIGTERM when
the actor ends. Ray does the rest: ``ray.util.ActorPool`` hands each generation to an actor with a
free slot, an actor whose process or daemon dies is restarted (``max_restarts``, a fresh daemon)
and its unfinished calls retried (``max_task_retries``), and the results come back to the driver.
Since every random number is keyed by the seed, a generation returns the same tokens on whichever
daemon runs it, so the result equals the single-daemon ``run_ab``'s, rows in the same order.

Ray is optional (``pip install -r scripts/python-requirements-ray.txt``); importing this module
works without it, calling it does not.
"""

from __future__ import annotations

import os
import pathlib
import socket
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ._client import ROOT, decodelab
from .arms import Arm
from .daemon import Daemon, default_binary
from .prompts import Prompt
from .runner import ABResult, ArmRejected, Plan, Run, generation_options, make_run, prepare


def _ray():
    try:
        import ray
    except ImportError:
        raise RuntimeError("Ray is not installed: .venv/bin/pip install -r scripts/python-requirements-ray.txt") from None
    return ray


class DaemonActor:
    """One decodelabd, owned by a Ray actor. ``models`` are started with ``--load``; ``drafts``
    ``(name, spec, target)`` are loaded afterwards (a draft names its loaded target)."""

    def __init__(self, models: Dict[str, str], drafts: Sequence[Tuple[str, str, Optional[str]]] = (), *,
                 binary: Optional[str] = None, workers: int = 1, extra_args: Sequence[str] = (),
                 timeout: float = 600.0):
        self.daemon = Daemon(models, binary=pathlib.Path(binary) if binary else None, workers=workers,
                             extra_args=extra_args)
        self.daemon.start()
        for name, spec, target in drafts:
            self.daemon.load(name, spec, target=target)
        self.timeout = timeout
        self.stopping = False
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        # A daemon that dies takes its actor with it: Ray then restarts the actor (a fresh daemon)
        # and resubmits the generations that were in flight, instead of their clients waiting for
        # a reply that never comes.
        proc = self.daemon.process
        while proc is not None and proc.poll() is None:
            time.sleep(0.2)
        if not self.stopping:
            print(f"ablab: decodelabd exited with status {proc.returncode if proc else None}; ending the actor",
                  file=sys.stderr, flush=True)
            os._exit(1)

    def where(self) -> str:
        """The host and process this daemon runs in (recorded in the study's configuration)."""
        return f"{socket.gethostname()}:{os.getpid()}"

    def prepare(self, arms: Sequence[Arm], prompts: Sequence[Prompt], seeds: Sequence[int], *, roles: Dict[str, str],
                max_tokens: int, template: str, options: Dict[str, Any], probe_tokens: int) -> Plan:
        with self.daemon.client(timeout=self.timeout) as c:
            return prepare(c, arms, prompts, seeds, roles=roles, max_tokens=max_tokens, template=template,
                           options=options, probe_tokens=probe_tokens)

    def generate(self, plan: Plan, prompt: Prompt, arm: Arm, seed: int) -> Tuple[Run, str]:
        # A client per call: the actor runs several calls at once (max_concurrency), and a
        # ZeroMQ socket must not be shared between threads.
        with self.daemon.client(timeout=self.timeout) as c:
            return make_run(prompt, arm, seed, c.generate(**plan.request(prompt, arm, seed))), self.where()

    def stop(self) -> Optional[int]:
        self.stopping = True
        return self.daemon.stop()

    def __del__(self):
        # Ray ends an actor's process without calling stop when the driver goes away; the daemon
        # must not outlive it.
        try:
            self.stopping = True
            self.daemon.stop()
        except Exception:
            pass


def _python_path() -> str:
    # The actors import ablab and the decodelab client from this checkout: on other machines the
    # checkout must sit at the same path (docs/experiments-ray.md).
    paths = [str(ROOT / "experiments"), str(ROOT / "clients" / "python")]
    if os.environ.get("PYTHONPATH"):
        paths.append(os.environ["PYTHONPATH"])
    return os.pathsep.join(paths)


def run_ab_ray(models: Dict[str, str], arms: Sequence[Arm], prompts: Sequence[Prompt], seeds: Sequence[int], *,
               daemons: int = 2, workers: int = 1, drafts: Sequence[Tuple[str, str, Optional[str]]] = (),
               address: Optional[str] = None, cpus_per_daemon: float = 1.0, gpus_per_daemon: float = 0.0,
               binary: Optional[str] = None, extra_args: Sequence[str] = (), max_tokens: int = 32,
               roles: Optional[Dict[str, str]] = None, template: str = "none", stop_at_eos: bool = True,
               stop: Optional[List[str]] = None, probe_tokens: int = 2, timeout: float = 600.0,
               max_restarts: int = 2, progress: Optional[Callable[[int, int, Run], None]] = None,
               score: Optional[Callable[[Prompt, Run], bool]] = None) -> ABResult:
    """``arms`` x ``prompts`` x ``seeds`` spread over ``daemons`` decodelabd instances, each started
    with ``models`` (name -> spec, on every node) and ``workers`` generation slots.

    Ray is started locally unless it is running already or ``address`` names a cluster to join
    (``"auto"``, ``"ray://host:10001"``, ...). Each daemon reserves ``cpus_per_daemon`` CPUs and
    ``gpus_per_daemon`` GPUs, which is how Ray spreads them: one daemon per machine with
    ``cpus_per_daemon`` set to a machine's cores, or one per GPU with ``gpus_per_daemon=1``.
    The rest is as :func:`ablab.run_ab` (``score`` runs on the driver)."""
    if not arms or not prompts or not seeds:
        raise ValueError("run_ab_ray: needs arms, prompts and seeds")
    if daemons < 1 or workers < 1:
        raise ValueError(f"run_ab_ray: daemons and workers must be at least 1, got {daemons} and {workers}")
    ray = _ray()
    from ray.util import ActorPool

    # Absolute, since the actors do not run in the driver's directory.
    binary = str(pathlib.Path(binary).resolve() if binary else default_binary().resolve())

    started_ray = False
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, logging_level="warning", log_to_driver=False)
        started_ray = True
    actor_class = ray.remote(DaemonActor).options(
        num_cpus=cpus_per_daemon, num_gpus=gpus_per_daemon, max_concurrency=workers, max_restarts=max_restarts,
        max_task_retries=max_restarts, runtime_env={"env_vars": {"PYTHONPATH": _python_path()}})
    actors = [actor_class.remote(dict(models), list(drafts), binary=binary, workers=workers, extra_args=list(extra_args),
                                 timeout=timeout) for _ in range(daemons)]
    try:
        roles = dict(roles or {"target": "t"})
        try:
            plan: Plan = ray.get(actors[0].prepare.remote(
                list(arms), list(prompts), list(seeds), roles=roles, max_tokens=max_tokens, template=template,
                options=generation_options(stop_at_eos, stop), probe_tokens=probe_tokens))
        except ray.exceptions.RayTaskError as e:
            # A refused arm or an absent daemon is the caller's error, as with run_ab.
            if isinstance(e.cause, (ArmRejected, RuntimeError)):
                raise e.cause from None
            raise
        # The same order as run_ab: prompt, seed, then every arm.
        jobs = [(prompt, arm, int(seed)) for prompt in prompts for seed in seeds for arm in plan.arms]
        plan_ref = ray.put(plan)
        # An actor appears once per slot, so each daemon has up to ``workers`` generations in flight.
        pool = ActorPool([a for a in actors for _ in range(workers)])
        slots: Dict[Tuple[str, str, int], Run] = {}
        hosts = set()
        for run, where in pool.map_unordered(lambda a, job: a.generate.remote(plan_ref, *job), jobs):
            if score is not None:
                run.passed = bool(score(next(p for p in prompts if p.id == run.prompt_id), run))
            slots[(run.prompt_id, run.arm, run.seed)] = run
            hosts.add(where)
            if progress:
                progress(len(slots), len(jobs), run)
        config = dict(plan.config)
        config.update(endpoint="", batch_seeds=False,
                      ray={"address": address or "local", "daemons": daemons, "workers": workers,
                           "where": sorted(hosts)})
        runs = [slots[(prompt.id, arm.name, seed)] for prompt, arm, seed in jobs]
        return ABResult(arms=plan.arms, runs=runs, skipped=plan.skipped, config=config)
    finally:
        for a in actors:
            try:
                ray.get(a.stop.remote())
            except Exception:  # an actor that never started has no daemon to stop
                pass
            ray.kill(a)
        if started_ray:
            ray.shutdown()

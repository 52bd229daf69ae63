"""Imports the decodelab Python client.

scripts/setup installs the client's dependencies (pyzmq, msgpack) into .venv but not the client
package itself, so when it is not installed (`pip install -e clients/python`) it is taken from
this checkout's clients/python.
"""

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]

try:
    import decodelab  # noqa: F401
except ImportError:
    sys.path.insert(0, str(ROOT / "clients" / "python"))
    import decodelab  # noqa: F401,E402

__all__ = ["ROOT", "decodelab"]

"""A handler written in Python: every chunk comes back as `PY:` + chunk
(the `prefix` setting changes it), and a line `quit` ends the connection
with `bye`.

Built into a component with componentize-py, from the repository's root:

    componentize-py -d wit/handler -w plugin componentize \\
        -p handlers/python echo_handler -o echo_handler_py.wasm

Run it on its own with `echo-host --handler echo_handler_py.wasm`; compose
it with the server only when built with `--stub-wasi` (the composed server
imports no more than the echo server does).
"""

from typing import List, Tuple

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import handler as h

prefix = b"PY:"


class Session(h.Session):
    def data(self, chunk: bytes, now: int) -> h.Verdict:
        if chunk.strip() == b"quit":
            return h.Verdict(b"bye\n", h.Then_Close())
        return h.Verdict(prefix + chunk, h.Then_Read())

    def finished(self, now: int) -> h.Verdict:
        return h.Verdict(b"", h.Then_Close())

    def closed(self, reason: h.CloseReason) -> None:
        pass


class Handler(exports.Handler):
    def configure(self, settings: List[Tuple[str, str]]) -> None:
        global prefix
        for key, value in settings:
            if key != "prefix":
                raise Err(f"unknown setting {key!r} (the Python handler takes: prefix)")
            prefix = value.encode()

    def accept(self, peer: str, now: int) -> Tuple[h.Session, h.Verdict]:
        return (Session(), h.Verdict(b"", h.Then_Read()))

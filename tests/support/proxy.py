"""A TCP proxy on 127.0.0.1 that a test can freeze, as a hung host or a dead network path looks.

``pause()`` stops forwarding in both directions without closing anything: the client's reads
block exactly as they would against a server stopped with SIGSTOP, while the real server (shared
by the whole test run) keeps running. ``cut()`` is a server that went down: every connection is
closed, and new ones are closed as soon as they are accepted. ``resume()`` ends either.
"""

from __future__ import annotations

import selectors
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

_CHUNK = 64 * 1024
_POLL_SECONDS = 0.05


class PausableProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._running = threading.Event()  # set while bytes are forwarded
        self._running.set()
        self._cut = threading.Event()  # set while connections are refused
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name="pausable-proxy", daemon=True)
        self._thread.start()

    def pause(self) -> None:
        """Stop forwarding: every connection through the proxy hangs until ``resume``."""
        self._running.clear()

    def cut(self) -> None:
        """Close every connection through the proxy, and each new one, until ``resume``."""
        self._cut.set()

    def resume(self) -> None:
        self._cut.clear()
        self._running.set()

    def close(self) -> None:
        self._closed.set()
        self._running.set()
        self._thread.join(timeout=5)
        with self._lock:
            for sock in [self._listener, *self._sockets]:
                sock.close()

    def _serve(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._listener, selectors.EVENT_READ, None)
        while not self._closed.is_set():
            if not self._running.is_set():
                # Frozen: neither accept nor forward, exactly like a stopped host.
                self._running.wait(_POLL_SECONDS)
                continue
            if self._cut.is_set():
                self._drop_all(selector)
            for key, _ in selector.select(_POLL_SECONDS):
                if key.data is None:
                    self._accept(selector)
                elif not self._forward(key.fileobj, key.data):  # type: ignore[arg-type]
                    self._drop(selector, key.fileobj, key.data)  # type: ignore[arg-type]
        selector.close()

    def _accept(self, selector: selectors.BaseSelector) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        if self._cut.is_set():
            client.close()
            return
        try:
            upstream = socket.create_connection(self._target, timeout=5)
        except OSError:
            client.close()
            return
        for sock in (client, upstream):
            sock.setblocking(True)
        with self._lock:
            self._sockets += [client, upstream]
        selector.register(client, selectors.EVENT_READ, upstream)
        selector.register(upstream, selectors.EVENT_READ, client)

    def _forward(self, source: socket.socket, sink: socket.socket) -> bool:
        try:
            data = source.recv(_CHUNK)
            if data:
                sink.sendall(data)
                return True
        except OSError:
            pass
        return False

    def _drop_all(self, selector: selectors.BaseSelector) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        self._drop(selector, *sockets)

    def _drop(self, selector: selectors.BaseSelector, *sockets: socket.socket) -> None:
        for sock in sockets:
            with suppress(KeyError, ValueError):
                selector.unregister(sock)
            sock.close()


@contextmanager
def pausable_proxy(host: str, port: int) -> Iterator[PausableProxy]:
    proxy = PausableProxy(host, port)
    try:
        yield proxy
    finally:
        proxy.close()

"""Providers take keys only as keys: over real HTTP, a key is sent in its header, never a body.

A relay on loopback sits between the SDK and the local server and keeps every byte the
client sends, so the tests read the requests as they were on the wire: the key from
the environment in the authentication header, and a key passed as a parameter
(``api_key=``, ``token=``, ``x-api-key``) refused before any request is made.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from ember import models, xcs
from ember.models.providers import AnthropicProvider, OpenAIProvider, RetryPolicy
from ember.models.registry import ModelRegistry
from ember.models.server import LocalLLMServer

KEY = "sk-ant-api03-Hk2Jd8Lq4Wz7Xc1Vb5Nm9Pr3Ts6Yf0Ga"
PROVIDERS = {"openai": OpenAIProvider, "anthropic": AnthropicProvider}


class Relay:
    """A loopback TCP relay in front of a server that keeps every byte clients send."""

    def __init__(self, target: str) -> None:
        host, port = target.removeprefix("http://").split(":")
        self._target = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()
        self._sent = bytearray()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(self._target, timeout=10)
            with self._lock:
                self._sockets += [client, upstream]
            for source, target, keep in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(
                    target=self._pump, args=(source, target, keep), daemon=True
                ).start()

    def _pump(self, source: socket.socket, target: socket.socket, keep: bool) -> None:
        try:
            while data := source.recv(65536):
                if keep:
                    with self._lock:
                        self._sent += data
                target.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                target.shutdown(socket.SHUT_WR)

    def requests(self) -> list[tuple[bytes, bytes]]:
        """Each request the clients sent: its head (request line and headers) and body."""
        with self._lock:
            data = bytes(self._sent)
        found = []
        while data:
            head, _, rest = data.partition(b"\r\n\r\n")
            assert b"chunked" not in head.lower(), "a chunked body: read it some other way"
            length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            size = int(length[1]) if length else 0
            found.append((head, rest[:size]))
            data = rest[size:]
        return found

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            for s in self._sockets:
                s.close()


@pytest.fixture
def keyed_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LocalLLMServer, Relay]]:
    """The local server accepting only ``KEY``, behind a relay; the key in the environment."""
    monkeypatch.setenv("EMBER_TEST_KEY", KEY)
    with LocalLLMServer(api_key=KEY) as server:
        relay = Relay(server.url)
        try:
            yield server, relay
        finally:
            relay.close()


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_a_key_goes_only_in_its_header_and_never_as_a_parameter(
    name: str, keyed_server: tuple[LocalLLMServer, Relay]
) -> None:
    server, relay = keyed_server
    base_url = relay.url + ("/v1" if name == "openai" else "")
    provider = PROVIDERS[name](
        base_url=base_url, api_key_env="EMBER_TEST_KEY", retry=RetryPolicy(attempts=1), timeout=5
    )
    registry = ModelRegistry()
    registry.register_provider(name, provider)
    chat = registry.instance(f"{name}/echo", temperature=0.5)
    assert chat("hi").text == "hi"  # the server takes only KEY: it arrived as the key

    def jitted(question: str) -> Any:
        return chat(question, token=KEY).text

    attempts = {
        "a binding default": lambda: registry.instance(f"{name}/echo", api_key=KEY),
        "a call parameter": lambda: chat("hi", api_key=KEY),
        "a header's name": lambda: chat("hi", **{"x-api-key": KEY}),
        "added defaults": lambda: chat.with_defaults(Authorization=f"Bearer {KEY}"),
        "the provider itself": lambda: provider.invoke(
            f"{name}/echo", "echo", "hi", {"api_key": KEY}
        ),
        "a jitted call": lambda: xcs.jit(jitted)("hi"),
    }
    for how, attempt in attempts.items():
        with pytest.raises(models.SecretParameterError) as info:
            attempt()
        assert KEY not in str(info.value), how
        assert "api_key_env=" in str(info.value), how

    assert len(server.requests) == 1  # the refused ones never left the process
    ((head, body),) = relay.requests()
    assert KEY.encode() in head  # Authorization: Bearer ... (openai), x-api-key: ... (anthropic)
    assert KEY.encode() not in body and b"api_key" not in body
    sent = json.loads(body)
    assert sent["temperature"] == 0.5 and sent["model"] == "echo"

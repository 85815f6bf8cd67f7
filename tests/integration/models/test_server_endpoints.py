"""The local server's other OpenAI endpoints and chat streaming, through the real openai SDK.

Responses, legacy completions, embeddings and streamed chat completions, over real HTTP
on loopback: the SDK parses every answer, answers match what chat answers for the same
prompt, faults and the request log work as they do for chat.
"""

from __future__ import annotations

import base64
import json
import math
import struct
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import openai
import pytest

from ember.models.server import LocalLLMServer

LATENCY = 0.01
QUESTION = "Why is the sky blue?"


@pytest.fixture(scope="module")
def shared_server() -> Iterator[LocalLLMServer]:
    """One server for the module: stopping one takes half a second (its poll interval)."""
    with LocalLLMServer(latency=LATENCY) as running:
        yield running


@pytest.fixture
def server(shared_server) -> LocalLLMServer:
    """The shared server with an empty log and no faults queued."""
    shared_server.reset()
    return shared_server


@pytest.fixture
def client(server) -> Iterator[openai.OpenAI]:
    """The real openai SDK pointed at the server; no retries, so every fault shows."""
    with openai.OpenAI(
        base_url=server.openai_base_url, api_key="k", max_retries=0, timeout=5
    ) as sdk:
        yield sdk


def _chat(client, model, prompt, system=None):
    messages = [{"role": "user", "content": prompt}]
    if system is not None:
        messages.insert(0, {"role": "system", "content": system})
    reply = client.chat.completions.create(model=model, messages=messages)
    return reply.choices[0].message.content


def _raw(server, path, body):
    request = urllib.request.Request(
        server.url + path, data=json.dumps(body).encode(), method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


# --- /v1/responses ---------------------------------------------------------------------


def test_responses_answer_what_chat_answers(client, server):
    response = client.responses.create(model="chat", input=QUESTION)
    assert response.output_text == _chat(client, "chat", QUESTION) != ""
    assert response.object == "response" and response.status == "completed"
    assert response.id.startswith("resp_") and response.created_at > 0
    (message,) = response.output
    assert message.type == "message" and message.role == "assistant"
    assert message.status == "completed" and message.content[0].type == "output_text"
    assert message.content[0].annotations == []
    usage = response.usage
    assert usage.input_tokens == 5 and usage.output_tokens >= 1
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.input_tokens_details.cached_tokens == 0
    assert usage.output_tokens_details.reasoning_tokens == 0
    again = client.responses.create(model="chat", input=QUESTION)
    assert again.output_text == response.output_text and again.id != response.id


def test_responses_take_message_items_and_instructions(client, server):
    items = [
        {"role": "user", "content": [{"type": "input_text", "text": "first"}]},
        {"role": "assistant", "content": "middle"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "last"}]},
    ]
    response = client.responses.create(model="echo", input=items, instructions="Be brief.")
    assert response.output_text == "Be brief.\nfirst\nmiddle\nlast"
    assert response.instructions == "Be brief."
    asked = client.responses.create(model="chat", input=QUESTION, instructions="Be brief.")
    assert asked.output_text == _chat(client, "chat", QUESTION, system="Be brief.")
    assert [r.prompt for r in server.requests if r.path == "/v1/responses"] == [
        "Be brief.\nfirst\nmiddle\nlast",
        f"Be brief.\n{QUESTION}",
    ]


# --- /v1/completions -------------------------------------------------------------------


def test_completions_answer_each_prompt(client, server):
    single = client.completions.create(model="chat", prompt=QUESTION)
    assert single.object == "text_completion" and len(single.choices) == 1
    assert single.choices[0].text == _chat(client, "chat", QUESTION)
    assert single.choices[0].finish_reason == "stop"
    prompts = ["alpha", QUESTION, "gamma"]
    several = client.completions.create(model="chat", prompt=prompts)
    assert [c.index for c in several.choices] == [0, 1, 2]
    assert [c.text for c in several.choices] == [
        client.completions.create(model="chat", prompt=p).choices[0].text for p in prompts
    ]
    assert several.usage.prompt_tokens == 2 + 5 + 2
    echoed = client.completions.create(model="echo", prompt=["a b", "c"])
    assert [c.text for c in echoed.choices] == ["a b", "c"]
    assert server.requests[-1].prompt == "a b\nc"


# --- /v1/embeddings --------------------------------------------------------------------


def test_embeddings_are_deterministic_one_per_input(client, server):
    texts = ["the sky", "the sea", "the sky"]
    reply = client.embeddings.create(model="embed", input=texts)
    assert reply.object == "list" and reply.model == "embed"
    assert [d.index for d in reply.data] == [0, 1, 2]
    vectors = [d.embedding for d in reply.data]
    assert all(len(v) == 8 for v in vectors)
    assert all(math.isclose(math.hypot(*v), 1.0, rel_tol=1e-5) for v in vectors)
    assert vectors[0] == vectors[2] != vectors[1]
    one = client.embeddings.create(model="embed", input="the sky").data
    assert len(one) == 1 and one[0].embedding == vectors[0]
    # The SDK asks for base64 unless told otherwise: both encodings give the same numbers.
    floats = client.embeddings.create(model="embed", input=texts, encoding_format="float")
    assert [d.embedding for d in floats.data] == vectors
    other_model = client.embeddings.create(model="other", input="the sky").data[0].embedding
    assert other_model != vectors[0]
    wide = client.embeddings.create(model="embed", input="the sky", dimensions=40)
    assert len(wide.data[0].embedding) == 40
    assert reply.usage.prompt_tokens == reply.usage.total_tokens == 2 + 2 + 2
    assert server.requests[0].prompt == "the sky\nthe sea\nthe sky"


def test_embeddings_over_plain_http(server):
    status, raw = _raw(server, "/v1/embeddings", {"model": "m", "input": "x"})
    floats = json.loads(raw)["data"][0]["embedding"]
    status64, raw64 = _raw(
        server, "/v1/embeddings", {"model": "m", "input": "x", "encoding_format": "base64"}
    )
    packed = base64.b64decode(json.loads(raw64)["data"][0]["embedding"])
    assert status == status64 == 200
    assert list(struct.unpack("<8f", packed)) == floats


# --- streamed chat completions ---------------------------------------------------------


def test_streamed_chat_joins_to_the_plain_answer(client, server):
    for model, prompt in (("echo", "one two  three\nfour "), ("chat", QUESTION)):
        plain = _chat(client, model, prompt)
        server.reset()
        stream = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": prompt}], stream=True
        )
        chunks = list(stream)
        assert all(c.object == "chat.completion.chunk" for c in chunks)
        assert chunks[0].choices[0].delta.role == "assistant"
        pieces = [c.choices[0].delta.content or "" for c in chunks]
        assert "".join(pieces) == plain
        assert [c.choices[0].finish_reason for c in chunks][-1] == "stop"
        assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
        (record,) = server.requests
        assert record.status == 200 and record.prompt == prompt
    assert len([p for p in pieces if p]) == len(plain.split()) > 1  # "chat": word by word
    echo_pieces = ["one ", "two  ", "three\n", "four "]
    stream = client.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "one two  three\nfour "}], stream=True
    )
    assert [c.choices[0].delta.content for c in stream][1:-1] == echo_pieces


def test_a_streamed_request_is_logged_when_its_stream_ends(client, server):
    prompt = " ".join(f"w{i}" for i in range(10))
    start = time.perf_counter()
    stream = client.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": prompt}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream) == prompt
    done = time.perf_counter()
    (record,) = server.requests  # logged before [DONE]: there once the stream is read
    assert start <= record.start < record.end <= done
    assert record.end - record.start >= LATENCY * 0.99  # the latency, spread over the words
    assert server.peak_concurrency == 1


def test_a_streamed_chat_can_end_with_usage(client, server):
    stream = client.chat.completions.create(
        model="echo",
        messages=[{"role": "user", "content": "abcd efgh"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 3
    assert chunks[-1].usage.total_tokens == 6
    assert "".join(c.choices[0].delta.content or "" for c in chunks[:-1]) == "abcd efgh"


def test_a_client_that_leaves_a_stream_is_logged_as_gone():
    with (
        LocalLLMServer(latency=0.3) as server,
        openai.OpenAI(
            base_url=server.openai_base_url, api_key="k", max_retries=0, timeout=5
        ) as client,
    ):
        prompt = " ".join(f"w{i}" for i in range(30))  # a word every 10 ms
        with client.chat.completions.create(
            model="echo", messages=[{"role": "user", "content": prompt}], stream=True
        ) as stream:
            next(iter(stream))
        deadline = time.monotonic() + 5
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [r.status for r in server.requests] == [499]


def test_only_chat_completions_stream(server):
    bodies = {
        "/v1/responses": {"model": "m", "input": "x", "stream": True},
        "/v1/completions": {"model": "m", "prompt": "x", "stream": True},
        "/v1/messages": {
            "model": "m",
            "max_tokens": 8,
            "messages": [{"role": "user", "content": "x"}],
            "stream": True,
        },
    }
    for path, body in bodies.items():
        status, reply = _raw(server, path, body)
        assert status == 400, path
        error = reply["error"]
        assert "streaming is not supported" in error["message"]
        assert ("type" in reply) == (path == "/v1/messages")  # Anthropic's error shape there


# --- faults, errors and the log --------------------------------------------------------


CALLS = {
    "responses": lambda c, text: c.responses.create(model="chat", input=text),
    "completions": lambda c, text: c.completions.create(model="chat", prompt=text),
    "embeddings": lambda c, text: c.embeddings.create(model="embed", input=text),
    "streamed chat": lambda c, text: list(
        c.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": text}], stream=True
        )
    ),
}
PATHS = {
    "responses": "/v1/responses",
    "completions": "/v1/completions",
    "embeddings": "/v1/embeddings",
    "streamed chat": "/v1/chat/completions",
}


@pytest.mark.parametrize("endpoint", list(CALLS))
def test_an_injected_400_raises_bad_request_error(client, server, endpoint):
    call = CALLS[endpoint]
    server.inject(400, prompt="needle")
    call(client, "hay")  # does not match the fault: answered
    with pytest.raises(openai.BadRequestError) as info:
        call(client, "a needle here")
    assert info.value.status_code == 400 and "injected fault" in info.value.message
    call(client, "a needle here")  # the fault is used up
    records = server.requests
    assert [(r.path, r.prompt, r.status) for r in records] == [
        (PATHS[endpoint], "hay", 200),
        (PATHS[endpoint], "a needle here", 400),
        (PATHS[endpoint], "a needle here", 200),
    ]
    assert all(r.start <= r.end and r.api_key for r in records)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
def test_other_injected_errors_raise_the_sdks_exceptions(client, server, status, error):
    for call in CALLS.values():
        server.inject(status, retry_after=0)
        with pytest.raises(error):
            call(client, "x")
    assert [r.status for r in server.requests] == [status] * len(CALLS)


def test_embedding_faults_match_any_input(client, server):
    server.inject(500, prompt="needle")
    with pytest.raises(openai.InternalServerError):
        client.embeddings.create(model="embed", input=["hay", "needle"])
    assert len(client.embeddings.create(model="embed", input=["hay", "needle"]).data) == 2


def test_stalls_hold_the_new_endpoints_too(client, server):
    stall = 0.4
    server.inject_stall(stall, prompt="slow")
    client.embeddings.create(model="embed", input="warm")  # the first request sets up HTTP
    start = time.perf_counter()
    client.embeddings.create(model="embed", input="fast")
    fast = time.perf_counter() - start
    start = time.perf_counter()
    client.responses.create(model="chat", input="slow")
    slow = time.perf_counter() - start
    assert slow >= stall and fast < stall / 2  # only the matching request stalls


def test_malformed_requests_get_openai_errors(server):
    bad = {
        "/v1/responses": [{"model": "m"}, {"model": "m", "input": 3}, {"model": "m", "input": []}],
        "/v1/completions": [{"prompt": "x"}, {"model": "m", "prompt": [1, 2]}],
        "/v1/embeddings": [
            {"model": "m", "input": []},
            {"model": "m", "input": "x", "encoding_format": "int8"},
            {"model": "m", "input": "x", "dimensions": 0},
        ],
    }
    for path, bodies in bad.items():
        for body in bodies:
            status, reply = _raw(server, path, body)
            assert status == 400, (path, body)
            assert reply["error"]["type"] == "invalid_request_error", (path, body)
    assert [r.status for r in server.requests] == [400] * 8


def test_the_new_endpoints_check_the_api_key():
    with LocalLLMServer(api_key="right") as server:
        for key, outcome in (("wrong", openai.AuthenticationError), ("right", None)):
            with openai.OpenAI(
                base_url=server.openai_base_url, api_key=key, max_retries=0, timeout=5
            ) as client:
                for call in CALLS.values():
                    if outcome is None:
                        call(client, "x")
                    else:
                        with pytest.raises(outcome):
                            call(client, "x")
        assert [r.status for r in server.requests] == [401] * 4 + [200] * 4

"""The Batch API's file formats: request files split by the API's limits, result lines joined by
custom_id in any order, base64 float32 vectors decoded."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from neanelu.search.openai_batch import (
    BatchLimits,
    BatchRequest,
    batch_files,
    read_results,
    request_line,
    share_tokens,
)
from neanelu.search.provider import EmbeddingError

MODEL = "text-embedding-3-small"


def _requests(count: int, inputs: int = 1, size: int = 10) -> list[BatchRequest]:
    return [BatchRequest(f"r{i}", tuple("x" * size for _ in range(inputs))) for i in range(count)]


def test_files_split_at_the_request_input_and_byte_limits() -> None:
    by_requests = list(batch_files(MODEL, _requests(5), BatchLimits(requests=2)))
    assert [f.custom_ids for f in by_requests] == [("r0", "r1"), ("r2", "r3"), ("r4",)]
    by_inputs = list(batch_files(MODEL, _requests(4, inputs=3), BatchLimits(inputs=7)))
    assert [len(f.custom_ids) for f in by_inputs] == [2, 2]
    line = len(request_line(MODEL, _requests(1)[0]))
    by_bytes = list(batch_files(MODEL, _requests(5), BatchLimits(file_bytes=2 * line + 1)))
    assert [len(f.custom_ids) for f in by_bytes] == [2, 2, 1]
    assert all(len(f.content) <= 2 * line + 1 for f in by_bytes)
    for f in by_bytes:
        lines = [json.loads(x) for x in f.content.splitlines()]
        assert [x["custom_id"] for x in lines] == list(f.custom_ids)
    with pytest.raises(ValueError, match="alone exceeds"):
        list(batch_files(MODEL, _requests(1, size=100), BatchLimits(file_bytes=50)))
    with pytest.raises(ValueError, match="2048 inputs"):
        request_line(MODEL, _requests(1, inputs=2049)[0])
    with pytest.raises(ValueError, match="requests per batch"):
        BatchLimits(requests=50_001)


def _ok(custom_id: str, vectors: list[np.ndarray], order: list[int]) -> bytes:
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": base64.b64encode(vectors[i].astype("<f4").tobytes()).decode(),
        }
        for i in order
    ]
    line = {
        "id": "batch_req_1",
        "custom_id": custom_id,
        "response": {
            "status_code": 200,
            "request_id": "req_1",
            "body": {"object": "list", "data": data, "usage": {"total_tokens": 7}},
        },
        "error": None,
    }
    return json.dumps(line).encode()


def test_results_join_by_custom_id_and_index_in_any_order() -> None:
    rng = np.random.default_rng(1)
    a = [rng.standard_normal(4).astype(np.float32) for _ in range(2)]
    b = [rng.standard_normal(4).astype(np.float32)]
    failed = json.dumps(
        {
            "id": "batch_req_3",
            "custom_id": "c",
            "response": {
                "status_code": 400,
                "request_id": "req_3",
                "body": {"error": {"message": "too long", "type": "invalid_request_error"}},
            },
            "error": None,
        }
    ).encode()
    expired = json.dumps(
        {
            "id": "batch_req_4",
            "custom_id": "d",
            "response": None,
            "error": {"code": "batch_expired", "message": "not run"},
        }
    ).encode()
    content = b"\n".join([_ok("b", b, [0]), failed, _ok("a", a, [1, 0]), expired]) + b"\n"
    expected = {"a": 2, "b": 1, "c": 1, "d": 1}
    results = {r.custom_id: r for r in read_results(content.splitlines(), expected, 4)}
    got = results["a"].vectors
    assert got is not None
    for i in range(2):
        assert np.allclose(got[i], a[i] / np.linalg.norm(a[i]), atol=1e-6)
    assert results["a"].tokens == 7
    assert results["c"].error == "HTTP 400: too long"
    assert not results["c"].unfinished
    assert results["d"].unfinished
    # A line of a request no longer waiting on the batch is passed over; one without an id is
    # an error of the file.
    assert list(read_results([_ok("zz", b, [0])], {"a": 2}, 4)) == []
    with pytest.raises(EmbeddingError, match="line 2 has no custom_id"):
        list(read_results([_ok("a", a, [0, 1]), b'{"response": null}'], {"a": 2}, 4))
    wrong_size = list(read_results([_ok("b", b, [0])], {"b": 1}, 8))
    assert wrong_size[0].vectors is None
    assert wrong_size[0].error == "an embedding has 4 dimensions, not 8"


def test_tokens_are_shared_by_length_and_add_up() -> None:
    assert share_tokens(10, ["aaaa", "a"]) == [8, 2]
    assert sum(share_tokens(101, ["a", "bb", "ccc"])) == 101

"""The heavy lane (mt.web.heavy): a translating request with a large body runs on a niced thread
of its own pool and answers exactly as it would on the request thread; small ones stay put."""
from __future__ import annotations

import os

import pytest

from mt.web.app import create_app
from mt.web.heavy import HEAVY_BYTES, lane_thread_ids


def _lane_threads() -> dict[int, int]:
    """native thread id -> nice value of the heavy lane's threads (from /proc)."""
    found = {}
    for tid in lane_thread_ids():
        try:
            fields = open(f"/proc/self/task/{tid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[tid] = int(fields[16])
    return found


@pytest.fixture(scope="module")
def client(tiny_engine):
    return create_app(tiny_engine, None, batching=False).test_client()


def test_a_large_request_runs_niced_and_answers_as_a_small_one(client):
    sentence = "Hôm nay trời nắng đẹp và có gió nhẹ ở thành phố."
    text = " ".join(f"{sentence[:-1]} số {n}." for n in range(HEAVY_BYTES // len(sentence) + 50))
    assert len(text.encode()) > HEAVY_BYTES
    large = client.post("/api/translate", json={"text": text})
    assert large.status_code == 200
    lanes = _lane_threads()
    assert lanes and set(lanes.values()) == {10}, lanes  # the view ran on a niced lane thread
    rows = large.get_json()["sentences"]
    assert len(rows) > 100 and all(row["translation"] for row in rows)
    # the same sentences in small requests, on the request thread: the same rows
    for row in rows[:3] + rows[-2:]:
        small = client.post("/api/translate", json={"text": row["source"]}).get_json()["sentences"][0]
        assert (small["translation"], small["alignment"], small["quality"]) == (
            row["translation"], row["alignment"], row["quality"])


def test_errors_of_a_large_request_keep_their_json_shape(client):
    broken = b'{"text": "' + b"a" * (HEAVY_BYTES + 10) + b'"'  # no closing brace
    answer = client.post("/api/translate", data=broken, content_type="application/json")
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "invalid_json"
    libre = client.post("/translate", json={"q": ["x" * 10] * 4000, "source": "vi"})
    assert libre.status_code in (200, 400) and libre.is_json  # over the batch limit or answered, never a 500

"""Document alignment through its entry points: `mt align` and POST /api/align, on real IWSLT'15 talks."""

import json

import pytest

from testkit.shared_data import iwslt_talks, needs_shared_data
from test_cli import run_mt


@pytest.fixture(scope="module")
def talk():
    """A real talk excerpt with a merged line and a deleted line on the English side."""
    vi = iwslt_talks("tst2012", "vi")[0][:24]
    en = iwslt_talks("tst2012", "en")[0][:24]
    perturbed_en = en[:5] + [en[5] + " " + en[6]] + en[7:15] + en[16:]
    gold = [([i], [i]) for i in range(5)] + [([5, 6], [5])]
    gold += [([i], [i - 1]) for i in range(7, 15)] + [([15], [])]
    gold += [([i], [i - 2]) for i in range(16, 24)]
    return vi, perturbed_en, gold


@needs_shared_data("iwslt15")
def test_cli_lines_jsonl_recovers_merge_and_deletion(talk, tmp_path):
    vi, en, gold = talk
    (tmp_path / "vi.txt").write_text("\n".join(vi) + "\n", encoding="utf-8")
    (tmp_path / "en.txt").write_text("\n".join(en) + "\n", encoding="utf-8")
    result = run_mt("align", tmp_path / "vi.txt", tmp_path / "en.txt", "--lines", "--jsonl")
    assert result.returncode == 0, result.stderr.decode()
    links = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert all(set(link) == {"vi", "en"} for link in links)
    assert sorted(i for link in links for i in link["vi"]) == list(range(len(vi)))
    assert sorted(j for link in links for j in link["en"]) == list(range(len(en)))
    predicted = [(link["vi"], link["en"]) for link in links]
    correct = sum(1 for link in gold if link in predicted)
    assert correct / len(gold) >= 0.9, predicted
    assert ([15], []) in predicted  # the deleted line is reported, not folded into a neighbour


def test_cli_articles_tsv_and_tmx(tmp_path):
    (tmp_path / "vi.txt").write_text("Tôi đi học. Trời mưa to quá! Hôm nay là thứ hai.", encoding="utf-8")
    (tmp_path / "en.txt").write_text("I go to school. It is raining heavily! Today is Monday.", encoding="utf-8")
    tsv = run_mt("align", tmp_path / "vi.txt", tmp_path / "en.txt", "--tsv")
    rows = [line.split("\t") for line in tsv.stdout.decode().splitlines()]
    assert [row[:2] for row in rows] == [
        ["Tôi đi học.", "I go to school."],
        ["Trời mưa to quá!", "It is raining heavily!"],
        ["Hôm nay là thứ hai.", "Today is Monday."],
    ]
    tmx = run_mt("align", tmp_path / "vi.txt", tmp_path / "en.txt", "--tmx").stdout.decode()
    assert tmx.count("<tu>") == 3 and 'xml:lang="vi"' in tmx


def test_cli_align_bad_input(tmp_path):
    (tmp_path / "vi.txt").write_bytes(b"\xff\xfe\x00\x00binary")
    (tmp_path / "en.txt").write_text("Hello.", encoding="utf-8")
    result = run_mt("align", tmp_path / "vi.txt", tmp_path / "en.txt")
    assert result.returncode == 2 and "binary" in result.stderr.decode()


@pytest.fixture(scope="module")
def align_server(serve_module, tmp_path_factory):
    """The aligner needs no translation model: a server whose model is unavailable still aligns."""
    home = tmp_path_factory.mktemp("empty-hf-home")
    return serve_module("--model", "Helsinki-NLP/opus-mt-vi-en", "--no-cache",
                        env={"HF_HOME": str(home), "HF_HUB_CACHE": str(home / "hub"), "HF_HUB_OFFLINE": "1"})


@needs_shared_data("iwslt15")
def test_api_align(align_server, talk):
    vi, en, gold = talk
    reply = align_server.post_json("/api/align", {"vi": "\n".join(vi), "en": "\n".join(en), "lines": True})
    assert reply.status == 200, reply.text
    body = reply.json()
    assert len(body["vi_sentences"]) == len(vi) and len(body["en_sentences"]) == len(en)
    predicted = [(link["vi"], link["en"]) for link in body["links"]]
    assert sum(1 for link in gold if link in predicted) / len(gold) >= 0.9


@pytest.mark.parametrize(
    "payload, status",
    [({"vi": "Xin chào."}, 400), ({"vi": 3, "en": "x"}, 400), ({"vi": "a", "en": "b", "lines": "yes"}, 400)],
)
def test_api_align_validates_fields(align_server, payload, status):
    reply = align_server.post_json("/api/align", payload)
    assert reply.status == status
    assert set(reply.json()["error"]) == {"code", "message"}


# -- bounds: the alignment worker (issue #11) ---------------------------------------------------
ALIGN_BUDGET = 15  # seconds: MT_ALIGN_TIMEOUT of the server below


def maximal_sides(total: int = 100_000) -> tuple[str, str]:
    """Real IWSLT'15 text, half of the size cap on each side (about 450 + 570 sentences)."""
    from testkit.shared_data import iwslt_segments

    vi = " ".join(line for line in iwslt_segments("tst2013", "vi") if line.strip())[: total // 2 - 10]
    en = " ".join(line for line in iwslt_segments("tst2013", "en") if line.strip())[: total // 2 - 10]
    return vi, en


@pytest.fixture(scope="module")
def bounded_server(serve_module):
    return serve_module("--threads", "8", env={"MT_ALIGN_TIMEOUT": str(ALIGN_BUDGET)})


def worker_pids(server) -> list[int]:
    """Pids of the server's alignment worker processes (its spawned children: mt.align.worker)."""
    import subprocess

    parents = [str(server.process.pid)] + subprocess.run(  # the server, or its child when wrapped
        ["pgrep", "-P", str(server.process.pid)], capture_output=True, text=True).stdout.split()
    out = subprocess.run(["pgrep", "-P", ",".join(parents), "-f", "spawn_main"], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split()]


@needs_shared_data("iwslt15")
def test_translation_answers_fast_while_a_maximal_alignment_runs(bounded_server):
    """A maximal /api/align runs in the niced worker, within its time budget (an answer, or 503
    server_busy at the budget); one-sentence translations sent meanwhile are not held up."""
    import threading
    import time

    server = bounded_server
    assert server.post_json("/api/translate", {"text": "Xin chào các bạn."}).status == 200  # warm
    assert server.post_json("/api/align", {"vi": "Tôi đi học.", "en": "I go to school."}).status == 200
    quiet = []
    for k in range(3):
        began = time.perf_counter()
        assert server.post_json("/api/translate", {"text": f"Hôm nay trời đẹp lắm {k}."}).status == 200
        quiet.append(time.perf_counter() - began)
    vi, en = maximal_sides()
    outcome = {}

    def align() -> None:
        began = time.perf_counter()
        outcome["reply"] = server.post_json("/api/align", {"vi": vi, "en": en})
        outcome["seconds"] = time.perf_counter() - began

    thread = threading.Thread(target=align)
    thread.start()
    time.sleep(3.0)  # the worker is embedding by now
    busy = []
    for k in range(5):
        began = time.perf_counter()
        reply = server.post_json("/api/translate", {"text": f"Thành phố có nhiều cây xanh {k}."})
        assert reply.status == 200, reply.body
        busy.append(time.perf_counter() - began)
    assert "reply" not in outcome, "the alignment should still be running"
    thread.join(ALIGN_BUDGET + 60)
    reply = outcome["reply"]
    assert outcome["seconds"] < ALIGN_BUDGET + 30, outcome["seconds"]
    if reply.status == 200:
        assert len(reply.json()["links"]) > 100
    else:
        assert reply.status == 503, reply.body
        error = reply.json()["error"]
        assert error["code"] == "server_busy" and f"{ALIGN_BUDGET} s" in error["message"], error
        assert reply.header("Retry-After")
    # translations kept their pace: each within a few quiet latencies (one model call of slack)
    assert max(busy) < max(3 * max(quiet), 2.0) + 1.0, (quiet, busy)
    # a fresh worker serves the next alignment
    again = server.post_json("/api/align", {"vi": "Tôi đi học. Trời mưa.", "en": "I go to school. It rains."})
    assert again.status == 200 and len(again.json()["links"]) == 2, again.body


def test_a_killed_worker_is_replaced(bounded_server):
    import os
    import signal

    server = bounded_server
    assert server.post_json("/api/align", {"vi": "Tôi đi học.", "en": "I go to school."}).status == 200
    pids = worker_pids(server)
    assert len(pids) == 1, pids
    os.kill(pids[0], signal.SIGKILL)
    reply = server.post_json("/api/align", {"vi": "Trời mưa.", "en": "It rains."})
    assert reply.status == 200, reply.body
    assert worker_pids(server) and worker_pids(server) != pids


def test_too_many_units_are_refused_with_400(bounded_server):
    """Past MAX_MATRIX_CELLS units compared (6001 × 6000 lines) the answer is 400 invalid_input,
    at once (nothing is embedded)."""
    import time

    from mt.align import MAX_MATRIX_CELLS

    assert 6001 * 6000 > MAX_MATRIX_CELLS >= 6000 * 6000
    began = time.perf_counter()
    reply = bounded_server.post_json("/api/align", {"vi": "a\n" * 6001, "en": "b\n" * 6000, "lines": True})
    assert reply.status == 400, reply.body
    error = reply.json()["error"]
    assert error["code"] == "invalid_input" and "too many units" in error["message"]
    assert time.perf_counter() - began < 30

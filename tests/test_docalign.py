"""Document alignment through its entry points: `mt align` and POST /api/align, on real IWSLT'15 talks."""

import json

import pytest

from server_helpers import start_server
from shared_data import iwslt_talks
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
def align_server(tmp_path_factory):
    """The aligner needs no translation model: a server whose model is unavailable still aligns."""
    home = tmp_path_factory.mktemp("empty-hf-home")
    server = start_server(["--model", "Helsinki-NLP/opus-mt-vi-en", "--no-cache"],
                          {"HF_HOME": str(home), "HF_HUB_CACHE": str(home / "hub"), "HF_HUB_OFFLINE": "1"})
    yield server
    server.stop()


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

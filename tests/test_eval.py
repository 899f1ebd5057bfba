"""`mt eval` as users run it: the tiny model on real files, scores checked against sacrebleu itself."""

import json
import os
import re
import subprocess
import sys

import pytest
import sacrebleu

from mt.cli import main
from mt.io.evaluation import fidelity
from mt.io.formats import tmx_header, tmx_unit, TMX_FOOTER
from testkit.shared_data import IWSLT, ROOT, iwslt_documents, needs_shared_data

SOURCES = [
    "Năm 2019 có 1.000,5 người ở Hà Nội.",
    "Xem https://vnexpress.net nhé. Ông Obama gặp Facebook.",  # two sentences: still one line out
    "Xin chào các bạn.",
    "",  # an empty line stays an empty line
    "Trời hôm nay đẹp quá.",
]
REFERENCES = [
    "In 2019 there were 1,000.5 people in Hanoi.",
    "See https://vnexpress.net. Mr Obama met Facebook.",
    "Hello everyone.",
    "",
    "The weather is lovely today.",
]


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def run_mt(*args):
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONIOENCODING="utf-8")
    return subprocess.run([sys.executable, "-m", "mt", *map(str, args)], capture_output=True, cwd=ROOT, env=env,
                          timeout=300)


def table_rows(stdout: str) -> dict[str, list[str]]:
    """The table's rows by label (cells are separated by two spaces or more)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("model "))
    rows = {}
    for line in lines[start + 1 :]:
        if "signature:" in line:
            break
        cells = re.split(r"\s{2,}", line.strip())
        rows[cells[0]] = cells
    return rows


def hypotheses_of(out_dir, entry) -> list[str]:
    text = (out_dir / entry["hypotheses"]).read_text(encoding="utf-8")
    assert text.endswith("\n")
    return text[:-1].split("\n")


def test_eval_scores_are_sacrebleus_on_the_written_hypotheses_and_a_rerun_is_cached(tiny_model_dir, tmp_path):
    src, ref = write_lines(tmp_path / "s.vi", SOURCES), write_lines(tmp_path / "r.en", REFERENCES)
    out, cache = tmp_path / "out", tmp_path / "c.sqlite"
    first = run_mt("eval", "--model", tiny_model_dir, "--engine", "transformers", "--src", src, "--ref", ref,
                   "--out", out, "--cache", cache)
    assert first.returncode == 0, first.stderr.decode()
    stdout = first.stdout.decode()
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["testset"]["lines"] == len(SOURCES)
    (entry,) = report["models"]
    hyps = hypotheses_of(out, entry)
    assert len(hyps) == len(SOURCES) and hyps[3] == "" and all(hyps[i] for i in (0, 1, 2, 4))
    bleu, chrf = sacrebleu.corpus_bleu(hyps, [REFERENCES]), sacrebleu.corpus_chrf(hyps, [REFERENCES])
    ter = sacrebleu.corpus_ter(hyps, [REFERENCES])
    assert entry["metrics"]["BLEU"]["score"] == bleu.score and entry["metrics"]["chrF"]["score"] == chrf.score
    assert entry["metrics"]["TER"]["score"] == ter.score
    row = table_rows(stdout)[entry["label"]]
    assert row[1:4] == [f"{bleu.score:.2f}", f"{chrf.score:.2f}", f"{ter.score:.2f}"]
    assert f"BLEU signature: nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:{sacrebleu.__version__}" in stdout
    assert "chrF signature: nrefs:1|case:mixed|eff:yes|nc:6|nw:0" in stdout and "TER signature:" in stdout
    speed = entry["speed"]
    assert speed["sentences_per_s"] > 0 and speed["target_tokens"] > 0 and "tokenizer" in speed["token_unit"]
    assert entry["cached"] == 0 and row[-1] == "0 of 5" and "cached:" not in stdout
    assert entry["fidelity"]["numbers"]["total"] == 2 and entry["fidelity"]["links"]["total"] == 1

    # again with the same cache: every translated line comes from it, and the run says so
    again = run_mt("eval", "--model", tiny_model_dir, "--engine", "transformers", "--src", src, "--ref",
                   write_lines(tmp_path / "own.en", hyps), "--out", tmp_path / "again", "--cache", cache)
    assert again.returncode == 0, again.stderr.decode()
    repeat = json.loads((tmp_path / "again" / "report.json").read_text(encoding="utf-8"))["models"][0]
    assert repeat["cached"] == 4 and "cached: 4 of 5 lines came from the cache" in again.stdout.decode()
    assert hypotheses_of(tmp_path / "again", repeat) == hyps
    # scored against its own output, the model is perfect: the hypotheses line up with the references
    assert repeat["metrics"]["BLEU"]["score"] == pytest.approx(100) and repeat["metrics"]["chrF"]["score"] == 100

    fresh = run_mt("eval", "--model", tiny_model_dir, "--engine", "transformers", "--src", src, "--ref", ref,
                   "--no-cache")
    assert fresh.returncode == 0 and table_rows(fresh.stdout.decode())[entry["label"]][-1] == "0 of 5"


def test_two_models_give_one_table(tiny_model_dir, tmp_path, capsys):
    src, ref = write_lines(tmp_path / "s.vi", SOURCES), write_lines(tmp_path / "r.en", REFERENCES)
    code = main(["eval", "--model", str(tiny_model_dir), "--model", str(tiny_model_dir), "--engine", "transformers",
                 "--engine", "ctranslate2", "--src", str(src), "--ref", str(ref), "--out", str(tmp_path / "o"),
                 "--no-cache"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads((tmp_path / "o" / "report.json").read_text(encoding="utf-8"))
    labels = [entry["label"] for entry in report["models"]]
    assert labels == [f"{tiny_model_dir.name} (transformers)", f"{tiny_model_dir.name} (ctranslate2)"]
    assert captured.out.count("test set:") == 1 and list(table_rows(captured.out)) == labels
    for entry in report["models"]:
        hyps = hypotheses_of(tmp_path / "o", entry)
        assert len(hyps) == len(SOURCES)
        assert entry["metrics"]["chrF"]["score"] == sacrebleu.corpus_chrf(hyps, [REFERENCES]).score


def test_tmx_test_set(tiny_model_dir, tmp_path, capsys):
    units = [tmx_unit(vi, en) for vi, en in zip(SOURCES, REFERENCES) if vi]
    tmx = tmp_path / "set.tmx"
    tmx.write_text(tmx_header("eval-test") + "".join(units) + TMX_FOOTER, encoding="utf-8")
    code = main(["eval", "--model", str(tiny_model_dir), "--engine", "transformers", "--tmx", str(tmx),
                 "--out", str(tmp_path / "o"), "--no-cache"])
    assert code == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "o" / "report.json").read_text(encoding="utf-8"))
    (entry,) = report["models"]
    hyps = hypotheses_of(tmp_path / "o", entry)
    references = [en for vi, en in zip(SOURCES, REFERENCES) if vi]
    assert report["testset"]["lines"] == len(hyps) == 4
    assert entry["metrics"]["BLEU"]["score"] == sacrebleu.corpus_bleu(hyps, [references]).score


@needs_shared_data("iwslt15")
def test_iwslt_tst2013_pairs_talks_and_segments(tiny_model_dir, tmp_path, capsys):
    code = main(["eval", "--model", str(tiny_model_dir), "--engine", "transformers", "--iwslt", str(IWSLT),
                 "--limit", "12", "--out", str(tmp_path / "o"), "--no-cache"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.startswith("test set: iwslt15-tst2013 (12 lines")
    report = json.loads((tmp_path / "o" / "report.json").read_text(encoding="utf-8"))
    expected = [(vi, en) for vi_talk, en_talk in zip(iwslt_documents("tst2013", "vi"), iwslt_documents("tst2013", "en"))
                for sid, vi in vi_talk.segments.items() if vi and en_talk.segments.get(sid)
                for en in [en_talk.segments[sid]]][:12]
    hyps = hypotheses_of(tmp_path / "o", report["models"][0])
    assert len(hyps) == 12
    bleu = sacrebleu.corpus_bleu(hyps, [[en for _, en in expected]]).score
    assert report["models"][0]["metrics"]["BLEU"]["score"] == bleu


@pytest.mark.parametrize("args, message", [
    (["--src", "{s}", "--ref", "{short}"], "has 5 lines but"),
    (["--testset", "flores200"], "has no test set 'flores200'"),
    (["--src", "{s}"], "give one test set"),
    (["--tmx", "{s}"], "not well-formed XML"),
])
def test_bad_test_sets_are_one_line_exit_2(tiny_model_dir, tmp_path, capsys, args, message):
    paths = {"s": write_lines(tmp_path / "s.vi", SOURCES), "short": write_lines(tmp_path / "r.en", REFERENCES[:3])}
    code = main(["eval", "--model", str(tiny_model_dir), "--no-cache", *[a.format(**paths) for a in args]])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("mt: error:") and err.count("\n") == 1 and message in err, err
    if "short" in args[-1]:
        assert "s.vi has 5 lines but" in err and "r.en has 3" in err


def test_fidelity_counts_numbers_in_either_notation_links_and_foreign_words():
    sources = ["Giá 1.000,5 đồng, năm 2019.", "Xem https://a.vn/x, gặp Obama ở Hà Nội."]
    good = fidelity(sources, ["The price is 1,000.5 dong in 2019.", "See https://a.vn/x and meet obama in Hanoi."])
    assert {k: (v["found"], v["total"]) for k, v in good.items()} == {
        "numbers": (2, 2), "links": (1, 1), "foreign_words": (1, 1)}
    bad = fidelity(sources, ["The price is 1000 dong in 2020.", "See the site and meet him in Hanoi."])
    assert {k: v["found"] for k, v in bad.items()} == {"numbers": 0, "links": 0, "foreign_words": 0}
    assert fidelity(["Xin chào."], ["Hello."])["numbers"]["share"] is None


def test_segment_splits_inside_a_line_but_keeps_one_output_line_per_source_line(tiny_model_dir, tmp_path, capsys):
    src, ref = write_lines(tmp_path / "s.vi", SOURCES), write_lines(tmp_path / "r.en", REFERENCES)
    code = main(["eval", "--model", str(tiny_model_dir), "--engine", "transformers", "--model", str(tiny_model_dir),
                 "--segment", "--src", str(src), "--ref", str(ref), "--out", str(tmp_path / "o"), "--no-cache"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads((tmp_path / "o" / "report.json").read_text(encoding="utf-8"))
    assert report["testset"]["segmented"] and "lines split into sentences" in captured.out
    # the same model and engine twice: two rows, two files
    assert [e["hypotheses"] for e in report["models"]] == ["%s-transformers.hyp.txt" % tiny_model_dir.name,
                                                           "%s-transformers-2.hyp.txt" % tiny_model_dir.name]
    for entry in report["models"]:
        assert len(hypotheses_of(tmp_path / "o", entry)) == len(SOURCES)

"""Tests for mt.text.segment.split_sentences.

Data (read, not copied): ``../shared/data/seed`` (a news article, word-segmented) and
``../shared/data/segmentation/{vtb,tuecl}.jsonl`` (derived from UD Vietnamese-VTB and
UD Vietnamese-TueCL, CC BY-SA 4.0).
"""

from __future__ import annotations

import json
import time

import pytest

from testkit.scoring import balanced, boundary_sets, prf
from testkit.shared_data import SEED, SHARED, needs_shared_data
from mt.text.segment import MAX_SEGMENT_WORDS, Segment, split_sentences

SEG_DATA = SHARED / "segmentation"


# --- helpers -----------------------------------------------------------------------


def texts(text: str) -> list[str]:
    return [s.text for s in split_sentences(text)]


def check_offsets(text: str, segs: list[Segment]) -> None:
    prev_end = 0
    prev_par = 0
    for s in segs:
        assert text[s.start : s.end] == s.text
        assert s.text and s.text == s.text.strip()
        assert s.start >= prev_end, "segments must be ordered and disjoint"
        assert s.kind in ("sentence", "title", "byline")
        assert s.paragraph >= prev_par
        prev_end, prev_par = s.end, s.paragraph


def boundary_prf(docs: list[dict], rendering: str) -> tuple[float, float, float]:
    """Boundary precision/recall/F1, scored exactly as benchmarks/segmentation.py prints them
    (gold boundaries spans[i][0], i >= 1, compared as counts of non-whitespace characters)."""
    tp = fp = fn = 0
    for d in docs:
        r = d[rendering]
        text = r["text"]
        segs = split_sentences(text)
        check_offsets(text, segs)
        gold, pred = boundary_sets(text, r["spans"], [seg.start for seg in segs[1:]])
        tp += len(gold & pred)
        fp += len(pred - gold)
        fn += len(gold - pred)
    return prf(tp, fp, fn)


def _load(name: str) -> list[dict]:
    path = SEG_DATA / name
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="module")
def vtb() -> list[dict]:
    return _load("vtb.jsonl")


@pytest.fixture(scope="module")
def tuecl() -> list[dict]:
    return _load("tuecl.jsonl")


# --- the seed article ----------------------------------------------------------------

SEED_EXPECTED = [
    "Hãng Sputnik nguồn_tin từ Ủy ban Không_gian vũ_trụ của Bộ Quốc_phòng và Công_nghiệp "
    "Hàng_không vũ_trụ Cộng hòa Kazakhstan cho biết , Kazakhstan sẽ tham_gia vào việc "
    "phát_triển tên_lửa siêu nặng Nga , công_việc này sẽ được thực_hiện tại sân_bay vũ_trụ "
    "Baikonur .",
    '" Theo khái_niệm về hợp_tác tiếp_theo tại sân_bay vũ_trụ Baikonur , các hướng chính '
    "của các dự_án không_gian chung của Kazakhstan và Nga được xác_định … . việc tạo ra "
    'phức_hợp tên_lửa không_gian loại siêu nặng " , tuyên_bố của Ủy ban Không gia cho biết .',
    "Kazakhstan sẽ cùng_với Nga phát_triển tên_lửa đẩy hạng_nặng .",
    "Không chỉ có vậy , Kazakhstan còn hợp_tác với Nga về vịêc phát_triển tên_lửa siêu nhẹ "
    "để phóng các vệ_tinh nhỏ , và triển_khai sản_xuất thiết_bị tên_lửa cũng tại Baikonur .",
    "Trong khi đó , Tổng_thống Kazakhstan - Nursultan Nazarbayev cho biết , ông đã đồng_ý "
    "với Tổng_thống Nga Vladimir Putin về việc phát_triển dự_án chung Nga - Kazakhstan tại "
    "sân_bay không_gian Baikonur .",
    "Kazakhstan sẽ thuê Nga làm_cho Kazakhstan trở_thành một quốc_gia không_gian .",
    "Kế_hoạch của việc thực_hiện dự_án dự_kiến vào năm 2022 .",
    'Ông Nazarbayev cho biết : " Chúng_tôi đã đồng_ý thực_hiện một chương_trình tại '
    "Baikonur , chúng_tôi sẽ phát_triển liên_doanh với Nga tại các địa_điểm nhất_định , "
    "trong đó chúng_tôi sẽ xây_dựng một đơn_vị phóng tên_lửa riêng cho tên_lửa với "
    'nhiên_liệu sạch - oxy - hydro " .',
    "Theo vị Tổng_thống Kazakhstan , hiện nước này đã có 4 vệ_tinh viễn_thám , bây_giờ "
    "nước này cũng muốn tham_gia vào lĩnh việc phóng tàu vũ_trụ và huấn_luyện nhân_viên .",
    "Sự phát_triển tên_lửa chung với Nga tại trung_tâm tên_lửa không_gian Baiterek ở "
    "Kazakhstan dự_kiến sẽ bắt_đầu ngay trong năm 2018 .",
    '" Các đối_tác Kazakhstan đã đạt được thỏa_thuận về việc thiết_lập một khu liên_hợp '
    "tại trung_tâm tên_lửa không_gian Baiterek với kế_hoạch phát_triển tên_lửa Sunkar của "
    'Nga trong năm 2018 " , phía Nga thông_báo .',
    "Trước đó , Cục Thiết_kế Tự_động hoá Hóa học , một bộ_phận của Hiệp_hội Sản_xuất và "
    "Nghiên_cứu Energomash của Nga , đã bắt_đầu phát_triển một động_cơ mới cho tên_lửa "
    "Sunkar .",
    "Sunkar là một tên_lửa vận_chuyển hạng trung thế_hệ mới cho trung_tâm tên_lửa "
    "không_gian Baiterek , mà Nga và Kazakhstan đang xây_dựng tại trung_tâm không_gian "
    "Baikonur .",
    "Đan Nguyên",
]


@pytest.fixture(scope="module")
def seed() -> str:
    return SEED.read_text(encoding="utf-8")


@needs_shared_data("seed")
def test_seed_exact(seed):
    segs = split_sentences(seed)
    check_offsets(seed, segs)
    assert [s.text for s in segs] == SEED_EXPECTED
    assert len(segs) == 14
    assert [s.kind for s in segs] == ["sentence"] * 13 + ["byline"]
    assert all(s.paragraph == 0 for s in segs)


@needs_shared_data("seed")
def test_seed_with_line_breaks(seed):
    # the same article with a trailing newline and the byline on its own paragraph
    text = seed.rstrip().replace(" . Đan Nguyên", " .\n\nĐan Nguyên") + "\n"
    segs = split_sentences(text)
    check_offsets(text, segs)
    assert [s.text for s in segs] == SEED_EXPECTED
    assert segs[-1].kind == "byline" and segs[-1].paragraph == 1
    assert all(s.paragraph == 0 for s in segs[:-1])


# --- benchmark thresholds --------------------------------------------------------------


@needs_shared_data("segmentation")
@pytest.mark.parametrize("rendering", ["plain", "wordseg", "spaced"])
def test_vtb_f1(vtb, rendering):
    p, r, f = boundary_prf(vtb, rendering)
    assert f >= 0.985, (rendering, p, r, f)


@needs_shared_data("segmentation")
@pytest.mark.parametrize("rendering", ["plain", "wordseg", "spaced"])
def test_vtb_balanced_quote_f1(vtb, rendering):
    docs = [d for d in vtb if balanced(d)]
    assert len(docs) == 95
    p, r, f = boundary_prf(docs, rendering)
    assert f >= 0.99, (rendering, p, r, f)


@needs_shared_data("segmentation")
@pytest.mark.parametrize("rendering", ["plain", "wordseg", "spaced"])
def test_tuecl_f1(tuecl, rendering):
    p, r, f = boundary_prf(tuecl, rendering)
    assert f >= 0.97, (rendering, p, r, f)


@needs_shared_data("segmentation")
def test_speed(vtb):
    docs = [d["plain"]["text"] for d in vtb] + [d["wordseg"]["text"] for d in vtb]
    n = sum(len(d["plain"]["spans"]) for d in vtb) * 2
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for t in docs:
            split_sentences(t)
        best = min(best, time.perf_counter() - t0)
    assert n / best >= 20_000, f"{n / best:.0f} sentences/s"


# --- abbreviations, numbers, URLs, initials ---------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Ông A ở TP. HCM đã đến. Bà B ở lại.", ["Ông A ở TP. HCM đã đến.", "Bà B ở lại."]),
        ("Ông A ở Tp. Hồ Chí Minh. Bà B ở lại.", ["Ông A ở Tp. Hồ Chí Minh.", "Bà B ở lại."]),
        ("Ông ở TP . HCM . Bà ở Tp.HCM. Xong.", ["Ông ở TP . HCM .", "Bà ở Tp.HCM.", "Xong."]),
        ("Đây là vấn đề của TP. Thân mình chịu khổ.", ["Đây là vấn đề của TP.", "Thân mình chịu khổ."]),
        ("ThS. Lê Văn C và TS. Trần D đến. PGS. Phạm E, GS. Hoàng F, BS. Vũ G dự.",
         ["ThS. Lê Văn C và TS. Trần D đến.", "PGS. Phạm E, GS. Hoàng F, BS. Vũ G dự."]),
        ("Th.S. Nguyễn Văn H phát biểu. Th.S Lê A nghe.",
         ["Th.S. Nguyễn Văn H phát biểu.", "Th.S Lê A nghe."]),
        ("Nhà ở Q. 1, P. Bến Nghé. Xong.", ["Nhà ở Q. 1, P. Bến Nghé.", "Xong."]),
        ("Mr. Smith gặp Dr. Brown ở St. Louis. Họ nói chuyện.",
         ["Mr. Smith gặp Dr. Brown ở St. Louis.", "Họ nói chuyện."]),
        ("Có táo, lê v.v. và nhiều thứ khác. Xong.", ["Có táo, lê v.v. và nhiều thứ khác.", "Xong."]),
        ("Có táo, lê v.v. Chúng tôi mua hết.", ["Có táo, lê v.v.", "Chúng tôi mua hết."]),
    ],
)
def test_abbreviations(text, expected):
    assert texts(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Ông V.H. Nam và N. Anh đến dự. Xong.", ["Ông V.H. Nam và N. Anh đến dự.", "Xong."]),
        ("Ông V. Putin nói. Ông H. cúi xuống.", ["Ông V. Putin nói.", "Ông H. cúi xuống."]),
        ("Ngôi nhà có số Y. Tôi không cần chữa.", ["Ngôi nhà có số Y.", "Tôi không cần chữa."]),
        ("Tôi sẽ đạt điểm F. Ngay bây giờ tôi học.", ["Tôi sẽ đạt điểm F.", "Ngay bây giờ tôi học."]),
        ("Ông là Nguyễn Văn A. Ông làm ở đây.", ["Ông là Nguyễn Văn A.", "Ông làm ở đây."]),
        ("Thợ săn K . ( xã Phù_Long ) đến .", ["Thợ săn K . ( xã Phù_Long ) đến ."]),
    ],
)
def test_initials(text, expected):
    assert texts(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Giá là 1.200 đồng, lãi 6,88%. Xong.", ["Giá là 1.200 đồng, lãi 6,88%.", "Xong."]),
        ("Ngày 12.11.2018 ông đi lúc 8.30 sáng. Xong.", ["Ngày 12.11.2018 ông đi lúc 8.30 sáng.", "Xong."]),
        ("Nhiệt độ 36.5 độ C. Ngày mai mưa.", ["Nhiệt độ 36.5 độ C.", "Ngày mai mưa."]),
        ("Dự kiến vào năm 2022 . 20 người đến .", ["Dự kiến vào năm 2022 .", "20 người đến ."]),
        ("Khoảng 70 . 000 m3 cát . Hết .", ["Khoảng 70 . 000 m3 cát .", "Hết ."]),
        ("Cách đây 10 m. Như vậy là gần.", ["Cách đây 10 m.", "Như vậy là gần."]),
        ("Đào hầm suốt... 15 năm. Nhiều người hy sinh.", ["Đào hầm suốt... 15 năm.", "Nhiều người hy sinh."]),
        ("1. Giới thiệu chung. 2. Nội dung.", ["1. Giới thiệu chung.", "2. Nội dung."]),
        ("Có 3 bước: 1. Chuẩn bị. 2. Làm.", ["Có 3 bước: 1. Chuẩn bị.", "2. Làm."]),
    ],
)
def test_numbers(text, expected):
    assert texts(text) == expected


def test_urls_and_emails():
    text = "Xem tại https://vnexpress.net/a.b.html. Gửi thư về a.b@gmail.com. Vào www.abc.com.vn nhé."
    assert texts(text) == [
        "Xem tại https://vnexpress.net/a.b.html.",
        "Gửi thư về a.b@gmail.com.",
        "Vào www.abc.com.vn nhé.",
    ]


def test_missing_space_after_full_stop():
    assert texts("Mọi việc đã hết.Sau đó ông đi.") == ["Mọi việc đã hết.", "Sau đó ông đi."]
    assert texts("Ông ở Tp.Hồ Chí Minh.") == ["Ông ở Tp.Hồ Chí Minh."]


# --- quotations ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        # closing quote (and the full stop after it) stays with its sentence
        ('Ông nói: "Tôi đi đây!". Rồi ông đi.', ['Ông nói: "Tôi đi đây!".', "Rồi ông đi."]),
        ('Ông nói : " Tôi đi đây ! " . Rồi ông đi .', ['Ông nói : " Tôi đi đây ! " .', "Rồi ông đi ."]),
        ('Nó hỏi: "Anh đi đâu?" Tôi không đáp.', ['Nó hỏi: "Anh đi đâu?"', "Tôi không đáp."]),
        ("Anh nói: “Tốt lắm.” Sau đó anh đi.", ["Anh nói: “Tốt lắm.”", "Sau đó anh đi."]),
        # an opening quote goes to the next sentence
        ('Xong rồi. "Tôi đi đây", ông nói.', ["Xong rồi.", '"Tôi đi đây", ông nói.']),
        ('Xong rồi . " Tôi đi đây " , ông nói .', ["Xong rồi .", '" Tôi đi đây " , ông nói .']),
        # attribution after the closing quote
        ('" Tốt lắm ! " , ông X nói . Sau đó ông về .', ['" Tốt lắm ! " , ông X nói .', "Sau đó ông về ."]),
        ('"Tốt lắm!" - ông X nói. Sau đó ông về.', ['"Tốt lắm!" - ông X nói.', "Sau đó ông về."]),
        # a multi-sentence quotation is split; the attribution stays with its last part
        ('" Câu một . Câu hai " , ông X nói . Hết .', ['" Câu một .', 'Câu hai " , ông X nói .', "Hết ."]),
        # inside an unclosed quotation, still split at '. Capital'
        ('Anh nghĩ: "Du học để mở mang. Người lao động cũng vậy. Sau ba năm',
         ['Anh nghĩ: "Du học để mở mang.', "Người lao động cũng vậy.", "Sau ba năm"]),
        # a quote closed inside a one-sentence quotation followed by a lowercase word
        ('Thu nói : " nhầm số rồi ! " và cúp máy .', ['Thu nói : " nhầm số rồi ! " và cúp máy .']),
        # short exclamations inside one quotation
        ('Anh gọi: "Mẹ! Bố!". Hai cụ khóc.', ['Anh gọi: "Mẹ! Bố!".', "Hai cụ khóc."]),
        # dialogue turns
        ('- " Anh nộp đủ rồi ! " . - " Tháng trước tôi gọi nhiều ? " .',
         ['- " Anh nộp đủ rồi ! " .', '- " Tháng trước tôi gọi nhiều ? " .']),
    ],
)
def test_quotes(text, expected):
    assert texts(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Được xác_định … . việc tạo ra phức_hợp . Xong .", ["Được xác_định … . việc tạo ra phức_hợp .", "Xong ."]),
        ("Được xác định…. việc tạo ra. Xong.", ["Được xác định…. việc tạo ra.", "Xong."]),
        ("Mắt. lạnh tanh như sương. Xong.", ["Mắt. lạnh tanh như sương.", "Xong."]),
        ("Anh gọi một số X ... và một số Y ... Xong .", ["Anh gọi một số X ... và một số Y ...", "Xong ."]),
        ("Trời ơi! Nhà cửa đâu? Không còn gì...", ["Trời ơi!", "Nhà cửa đâu?", "Không còn gì..."]),
    ],
)
def test_terminal_then_case(text, expected):
    assert texts(text) == expected


# --- lines, paragraphs, titles, bylines ------------------------------------------------


def test_titles_lines_paragraphs():
    text = "Tin thế giới\r\nMỹ tăng lãi suất. Nga phản đối.\r\n\r\n\r\nPhần hai.\nCâu cuối\nkhông chấm"
    segs = split_sentences(text)
    check_offsets(text, segs)
    assert [(s.text, s.paragraph, s.kind) for s in segs] == [
        ("Tin thế giới", 0, "title"),
        ("Mỹ tăng lãi suất.", 0, "sentence"),
        ("Nga phản đối.", 0, "sentence"),
        ("Phần hai.", 1, "sentence"),
        ("Câu cuối", 1, "sentence"),  # followed by a lowercase line: not a title
        ("không chấm", 1, "sentence"),
    ]


def test_line_break_ends_segment():
    assert texts("Một câu không dấu\nvà dòng sau") == ["Một câu không dấu", "và dòng sau"]
    assert texts("Dòng một.\u2028Dòng hai.\rDòng ba.") == ["Dòng một.", "Dòng hai.", "Dòng ba."]


@pytest.mark.parametrize(
    "text, byline",
    [
        ("Câu một . Câu hai . Đan Nguyên", "Đan Nguyên"),
        ("Câu một. Câu hai. N. Anh", "N. Anh"),
        ("Câu một. Câu hai.\n\nĐan_Nguyên", "Đan_Nguyên"),
        ("Câu một. Câu hai.\nPV", "PV"),
    ],
)
def test_bylines(text, byline):
    segs = split_sentences(text)
    check_offsets(text, segs)
    assert segs[-1].text == byline and segs[-1].kind == "byline"
    assert [s.kind for s in segs[:-1]] == ["sentence"] * (len(segs) - 1)


@pytest.mark.parametrize(
    "text",
    ["Câu một. Câu hai. Hết rồi nhé", "Câu một. Câu hai", "Xin chào", "Câu một. Câu hai. 2018"],
)
def test_not_bylines(text):
    assert all(s.kind != "byline" for s in split_sentences(text))


def test_headline_and_dateline_on_one_line():
    text = "Người đầu tiên ghép gan ở Việt Nam qua đời (NAM ĐỊNH) Nguyễn Thị Diệp đã ra đi."
    assert texts(text) == ["Người đầu tiên ghép gan ở Việt Nam qua đời", "(NAM ĐỊNH) Nguyễn Thị Diệp đã ra đi."]
    # an acronym in brackets is not a dateline
    text = "Ủy ban nhân dân (UBND) Thành phố họp."
    assert texts(text) == [text]


# --- long segments -----------------------------------------------------------------------


def _nwords(s: str) -> int:
    return sum(any(c.isalnum() for c in t) for t in s.split())


def test_long_segment_split_at_clauses():
    clause = " ".join(["từ"] * 40)
    text = (clause + " ; ") * 3 + (clause + " , ") * 3 + clause + " ."
    segs = split_sentences(text)
    check_offsets(text, segs)
    assert len(segs) > 1
    assert all(_nwords(s.text) <= MAX_SEGMENT_WORDS for s in segs)
    assert segs[0].text.endswith(";")
    assert "".join(s.text for s in segs).replace(" ", "") == text.replace(" ", "")


def test_long_segment_split_hard():
    text = " ".join(f"w{i}" for i in range(1000))
    segs = split_sentences(text)
    check_offsets(text, segs)
    assert [_nwords(s.text) for s in segs] == [MAX_SEGMENT_WORDS] * 6 + [100]


def test_long_segment_split_at_conjunction():
    words = ["chữ"] * 100 + ["và"] + ["chữ"] * 100
    segs = split_sentences(" ".join(words))
    assert len(segs) == 2 and segs[1].text.startswith("và ")


def test_normal_sentences_not_split():
    text = " ".join(["từ"] * MAX_SEGMENT_WORDS) + " ."
    assert texts(text) == [text]


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", " ", "\n\n\t  \r\n", "\x00\x0b\x1b", "\ufeff\u200b"])
def test_empty(text):
    assert split_sentences(text) == []


@pytest.mark.parametrize("bad", [None, b"abc", 12, ["a"]])
def test_type_error(bad):
    with pytest.raises(TypeError):
        split_sentences(bad)


def test_control_characters():
    text = "\x00Câu một.\x0b Câu\x1b hai.\x00 \x1bCâu ba.\x07\n\x0c\nCâu bốn\x00"
    segs = split_sentences(text)
    check_offsets(text, segs)
    assert [s.text for s in segs] == ["Câu một.", "Câu\x1b hai.", "Câu ba.", "Câu bốn"]
    assert [s.paragraph for s in segs] == [0, 0, 0, 1]


@needs_shared_data("seed")
def test_ten_megabytes(seed):
    text = (seed + "\n") * (10_000_000 // (len(seed) + 1))
    t0 = time.perf_counter()
    segs = split_sentences(text)
    dt = time.perf_counter() - t0
    assert len(segs) == 14 * (10_000_000 // (len(seed) + 1))
    assert dt < 20, dt
    for s in segs[:: len(segs) // 50]:
        assert text[s.start : s.end] == s.text


@pytest.mark.parametrize(
    "unit",
    ["." , '"', '." ', ".\".'", "a" * 999 + ".", "x1ab.Cd", "Mẹ ! \" ", "- " * 500, "(AB CD) Ef ", "\x00. A"],
)
def test_pathological_inputs_linear(unit):
    text = unit * (1_000_000 // len(unit))
    t0 = time.perf_counter()
    segs = split_sentences(text)
    assert time.perf_counter() - t0 < 10
    check_offsets(text, segs[:200])

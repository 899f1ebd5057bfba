"""mt.text.normalize on real text: the seed article, the UD Vietnamese-VTB benchmark renderings
(CC BY-SA 4.0, see ../shared/data/segmentation/README.md) and hand-made hard cases."""

import json
import re
import time
import unicodedata

import pytest

from mt.errors import ConfigError
from mt.text.normalize import TONE_STYLES, Normalized, is_word_segmented, normalize, normalize_tones
from testkit.shared_data import SEED, SHARED, needs_shared_data

VTB = SHARED / "segmentation" / "vtb.jsonl"
TUECL = SHARED / "segmentation" / "tuecl.jsonl"


@pytest.fixture(scope="module")
def seed() -> str:
    return SEED.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def vtb() -> list[dict]:
    return [json.loads(line) for line in VTB.read_text(encoding="utf-8").splitlines()]


def skeleton(text: str) -> str:
    """What must survive normalisation: letters and digits, without tones, '_' or spaces."""
    decomposed = unicodedata.normalize("NFD", text)
    toneless = "".join(c for c in decomposed if c not in "\u0300\u0301\u0303\u0309\u0323")
    return re.sub(r"[\s_]", "", unicodedata.normalize("NFC", toneless))


def assert_offsets_map_back(original: str, result: Normalized) -> None:
    """Every word of the normalised text maps to the same word (modulo _/tone/NFC) in the original."""
    assert len(result.offsets) == len(result.text) + 1
    assert result.offsets[-1] == len(original)
    assert list(result.offsets) == sorted(result.offsets)
    for match in re.finditer(r"\S+", result.text):
        start, end = result.original_span(*match.span())
        assert skeleton(original[start:end]) == skeleton(match.group()), (original[start:end], match.group())


# --------------------------------------------------------------------------- tone placement

TONE_TABLE = [  # (input, style "new", style "old")
    ("hoà", "hòa", "hoà"),
    ("hòa", "hòa", "hoà"),
    ("hoá", "hóa", "hoá"),
    ("hoạ", "họa", "hoạ"),
    ("toà", "tòa", "toà"),
    ("thoả", "thỏa", "thoả"),
    ("thuỷ", "thủy", "thuỷ"),
    ("thủy", "thủy", "thuỷ"),
    ("luỹ", "lũy", "luỹ"),
    ("tuỵ", "tụy", "tuỵ"),
    ("uỷ", "ủy", "uỷ"),
    ("ủy", "ủy", "uỷ"),
    ("khoẻ", "khỏe", "khoẻ"),
    ("khỏe", "khỏe", "khoẻ"),
    ("xoè", "xòe", "xoè"),
    ("quý", "quý", "quý"),
    ("qúy", "quý", "quý"),
    ("quà", "quà", "quà"),
    ("qủa", "quả", "quả"),
    ("quyết", "quyết", "quyết"),
    ("quyển", "quyển", "quyển"),
    ("giữ", "giữ", "giữ"),
    ("gĩư", "giữ", "giữ"),
    ("già", "già", "già"),
    ("gìa", "già", "già"),
    ("giữa", "giữa", "giữa"),
    ("gì", "gì", "gì"),
    ("gìn", "gìn", "gìn"),
    ("hoàn", "hoàn", "hoàn"),
    ("hòan", "hoàn", "hoàn"),
    ("toán", "toán", "toán"),
    ("hoạch", "hoạch", "hoạch"),
    ("huỳnh", "huỳnh", "huỳnh"),
    ("khuyến", "khuyến", "khuyến"),
    ("nguyễn", "nguyễn", "nguyễn"),
    ("tiếng", "tiếng", "tiếng"),
    ("tíêng", "tiếng", "tiếng"),
    ("người", "người", "người"),
    ("ngừơi", "người", "người"),
    ("được", "được", "được"),
    ("ngoài", "ngoài", "ngoài"),
    ("ngòai", "ngoài", "ngoài"),
    ("thuở", "thuở", "thuở"),
    ("thủơ", "thuở", "thuở"),
    ("khuya", "khuya", "khuya"),
    ("khuỷu", "khuỷu", "khuỷu"),
    ("khuấy", "khuấy", "khuấy"),
    ("mía", "mía", "mía"),
    ("múa", "múa", "múa"),
    ("núi", "núi", "núi"),
    ("cửa", "cửa", "cửa"),
    ("yêu", "yêu", "yêu"),
    ("yếu", "yếu", "yếu"),
    ("vịêc", "việc", "việc"),
    ("Hoà", "Hòa", "Hoà"),
    ("HOÀ", "HÒA", "HOÀ"),
    ("HÒA", "HÒA", "HOÀ"),
    ("Uỷ", "Ủy", "Uỷ"),
    ("VỊÊC", "VIỆC", "VIỆC"),
]


@pytest.mark.parametrize("word,new,old", TONE_TABLE)
def test_tone_placement_both_styles(word, new, old):
    assert normalize_tones(word, "new") == new
    assert normalize_tones(word, "old") == old
    assert normalize(word, tone="new").text == new
    assert normalize(word, tone="old").text == old


@pytest.mark.parametrize(
    "text",
    ["Nazarbayev", "Baikonur", "café", "élève", "hóa2", "2018", "Energomash", "Kazakhstan", "hóà", "oxy"],
)
def test_non_syllables_untouched(text):
    for style in TONE_STYLES:
        assert normalize_tones(text, style) == text


def test_urls_and_emails_untouched():
    text = "Xem https://vi.example.org/hoà_bình và thư hoà@example.com , hoà bình ."
    assert normalize(text, tone="new").text == "Xem https://vi.example.org/hoà_bình và thư hoà@example.com, hòa bình."


def test_tone_phrases_and_styles_round_trip():
    assert normalize_tones("uỷ ban, sức khoẻ, thuỷ điện, hoà bình", "new") == "ủy ban, sức khỏe, thủy điện, hòa bình"
    assert normalize_tones("ủy ban, sức khỏe, thủy điện, hòa bình", "old") == "uỷ ban, sức khoẻ, thuỷ điện, hoà bình"
    text = "Cộng hòa xã hội chủ nghĩa, Tự động hoá, Hóa học, quý khách, thỏa thuận"
    assert normalize_tones(normalize_tones(text, "old"), "new") == normalize_tones(text, "new")


def test_normalize_tones_applies_nfc():
    decomposed = unicodedata.normalize("NFD", "Thuỷ điện Hoà Bình")
    assert normalize_tones(decomposed, "new") == "Thủy điện Hòa Bình"


def test_unknown_style_is_a_user_error():
    with pytest.raises(ConfigError):
        normalize("hoà", tone="modern")
    with pytest.raises(ConfigError):
        normalize_tones("hoà", "traditional")


# --------------------------------------------------------------------------- the seed article


@needs_shared_data("seed")
def test_seed_is_made_natural(seed):
    text = normalize(seed).text
    assert "_" not in text
    assert " ," not in text and " ." not in text and " :" not in text
    assert '"Theo khái niệm' in text
    assert 'siêu nặng",' in text
    assert 'cho biết: "Chúng tôi' in text
    assert 'oxy - hydro".' in text
    assert "Kazakhstan - Nursultan" in text  # dashes keep their spaces
    assert "xác định…. việc" in text
    assert "vịêc" not in text and "về việc phát triển tên lửa siêu nhẹ" in text
    assert text.startswith("Hãng Sputnik nguồn tin từ Ủy ban Không gian vũ trụ")
    assert text.endswith("trung tâm không gian Baikonur. Đan Nguyên")
    assert "Nazarbayev" in text and "Baikonur" in text


@needs_shared_data("seed")
@pytest.mark.parametrize(
    "style,wanted,unwanted",
    [
        ("new", ["Tự động hóa Hóa học", "Cộng hòa", "thỏa thuận", "Ủy ban"], ["hoá", "Hoá", "hoà", "thoả", "Uỷ"]),
        ("old", ["Tự động hoá Hoá học", "Cộng hoà", "thoả thuận", "Uỷ ban"], ["hóa", "Hóa", "hòa", "thỏa", "Ủy"]),
    ],
)
def test_seed_tone_style_is_consistent(seed, style, wanted, unwanted):
    text = normalize(seed, tone=style).text
    for phrase in wanted:
        assert phrase in text
    for word in unwanted:
        assert word not in text


@needs_shared_data("seed")
@pytest.mark.parametrize("form", ["NFC", "NFD"])
@pytest.mark.parametrize("style", TONE_STYLES)
def test_seed_offsets_map_back(seed, form, style):
    original = unicodedata.normalize(form, seed)
    result = normalize(original, tone=style)
    assert_offsets_map_back(original, result)


@needs_shared_data("seed")
def test_seed_spans_cover_removed_spaces(seed):
    result = normalize(seed)
    start = result.text.index('nặng",')
    a, b = result.original_span(start, start + len('nặng",'))
    assert seed[a:b] == 'nặng " ,'
    start = result.text.index("tên lửa")
    a, b = result.original_span(start, start + len("tên lửa"))
    assert seed[a:b] == "tên_lửa"


@needs_shared_data("seed")
def test_idempotent_on_seed(seed):
    for style in TONE_STYLES:
        once = normalize(seed, tone=style).text
        assert normalize(once, tone=style).text == once
        assert is_word_segmented(once) is False


# --------------------------------------------------------------------------- offsets


def test_plain_text_passes_through_with_identity_offsets():
    text = 'Ông nói: "Tốt lắm!" Rồi đi.\nGiá 1.200 đồng, tăng 6,88%. Xem https://a.vn/x_y.'
    result = normalize(text)
    assert result.text == text
    assert result.offsets == tuple(range(len(text) + 1))


def test_original_span_of_composed_character_covers_its_marks():
    original = unicodedata.normalize("NFD", "Khoẻ không ?")
    result = normalize(original, tone="new")
    assert result.text == "Khỏe không?"
    assert result.original_span(0, 4) == (0, len(unicodedata.normalize("NFD", "Khoẻ")))
    a, b = result.original_span(3, 4)  # this 'e' was 'e' + combining hook (the mark moved to 'o')
    assert original[a:b] == "e\u0309"
    assert original[slice(*result.original_span(2, 3))] == "o"
    assert result.original_span(10, 11) == (len(original) - 1, len(original))  # '?' after a removed space


def test_original_span_edges():
    result = normalize("Hà_Nội , ngày 5 .")
    assert result.text == "Hà Nội, ngày 5."
    assert result.original_span(0, 0) == (0, 0)
    n = len(result.text)
    assert result.original_span(n, n) == (17, 17)
    assert result.original_span(0, n) == (0, 17)
    with pytest.raises(ValueError):
        result.original_span(3, 2)
    with pytest.raises(ValueError):
        result.original_span(0, n + 1)


def test_empty_and_blank_text():
    assert normalize("") == Normalized("", (0,))
    assert normalize("  \n ").text == "  \n "


# --------------------------------------------------------------------------- spacing


@pytest.mark.parametrize(
    "source,expected",
    [
        ("Hà Nội , ngày 5 .", "Hà Nội, ngày 5."),
        ("Hà_Nội , ngày 5 .", "Hà Nội, ngày 5."),
        ("huyện Phước_Sơn ( Quảng_Nam ) đã hiện ra .", "huyện Phước Sơn (Quảng Nam) đã hiện ra."),
        ("tăng 6,88 % , giá 1.200 đồng .", "tăng 6,88%, giá 1.200 đồng."),
        ("chỉ có ... hai hộ nộp phạt .", "chỉ có... hai hộ nộp phạt."),
        ("Nga - Kazakhstan tại Baikonur .", "Nga - Kazakhstan tại Baikonur."),
        ("Ông nói : \" Tốt lắm ! \" Rồi đi .", 'Ông nói: "Tốt lắm!" Rồi đi.'),
        ('lạc vào " thiên_la_địa_võng " của nhũ_đá .', 'lạc vào "thiên la địa võng" của nhũ đá.'),
        ("gọi bà là ' hey ' ( này ) .", "gọi bà là 'hey' (này)."),
        ('bà hỏi , " Bố_mẹ đang khóc à ? "', 'bà hỏi, "Bố mẹ đang khóc à?"'),
        ('anh ta nói " chết " - vừa nói anh vừa cười .', 'anh ta nói "chết" - vừa nói anh vừa cười.'),
    ],
)
def test_spacing_undone(source, expected):
    assert normalize(source, word_segmented=True).text == expected
    assert normalize(source).text == expected  # detected


def test_line_breaks_are_kept_and_reset_quotes():
    source = 'Tiêu_đề\n" Một câu .\n" Hai " , ba .\n\n( mở ) .'
    assert normalize(source, word_segmented=True).text == 'Tiêu đề\n"Một câu.\n"Hai", ba.\n\n(mở).'


def test_stray_quote_does_not_flip_later_pairs():
    source = (
        'Ông kể : " Tôi có ba nhân_viên . Họ chở hàng mỗi ngày . Không ai bị bắt . '
        "Trùm Bình có thâm_niên hơn chục năm nay . Xe được mua năm ngoái . "
        'Bà Hoa cũng trở_thành một " đầu_nậu " khá tên_tuổi .'
    )
    assert 'một "đầu nậu" khá' in normalize(source).text


def test_word_segmented_false_leaves_spacing():
    assert normalize("tên_lửa vịêc , x", word_segmented=False).text == "tên_lửa việc , x"


def test_underscores_in_urls_and_code_survive_in_segmented_text():
    source = "Xem_xét trang https://a.vn/ho_so và __init__ , xong ."
    assert normalize(source).text == "Xem xét trang https://a.vn/ho_so và __init__, xong."


# --------------------------------------------------------------------------- detection


@pytest.mark.parametrize(
    "text",
    [
        "tên_lửa",
        "Kazakhstan sẽ cùng_với Nga phát_triển tên_lửa đẩy hạng_nặng .",
        "Hà Nội , ngày 5 .",
        "Bạn khỏe không ?",
    ],
)
def test_detects_tokenised_renderings(text):
    assert is_word_segmented(text) is True


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Xin chào.",
        "Xem https://vi.wikipedia.org/wiki/Tên_lửa_đẩy để biết thêm.",
        "Biến my_var và user_id được dùng trong hàm get_user_name.",
        "Các cột ho_ten, ngay_sinh, dia_chi phải được điền đầy đủ.",
        "Email: nguyen_van_a@gmail.com, gửi trước thứ Hai.",
        "__init__ và __main__ là hai tên đặc biệt.",
        'Ông nói: "Tốt lắm!" Rồi đi, giá 1.200 đồng.',
    ],
)
def test_plain_text_with_stray_underscores_is_not_segmented(text):
    assert is_word_segmented(text) is False


@needs_shared_data("seed")
@needs_shared_data("segmentation")
def test_detection_on_seed_and_vtb(seed, vtb):
    assert is_word_segmented(seed) is True
    assert len(vtb) == 219
    assert all(is_word_segmented(doc["wordseg"]["text"]) for doc in vtb)
    assert not any(is_word_segmented(doc["plain"]["text"]) for doc in vtb)
    assert all(is_word_segmented(doc["spaced"]["text"]) for doc in vtb)  # punctuation split off


@needs_shared_data("segmentation")
def test_detection_on_tuecl():
    docs = [json.loads(line) for line in TUECL.read_text(encoding="utf-8").splitlines()]
    assert all(is_word_segmented(doc["wordseg"]["text"]) for doc in docs)
    assert not any(is_word_segmented(doc["plain"]["text"]) for doc in docs)


@needs_shared_data("segmentation")
def test_vtb_renderings_normalise_to_plain(vtb):
    """Per gold sentence (how the pipeline calls it) wordseg and spaced give the plain text.

    The plain rendering decides quotes per sentence by its own heuristic, and keeps a
    few token quirks (``70 . 000``), so a handful of sentences differ.
    """
    total = same = 0
    for doc in vtb:
        plain = doc["plain"]
        for rendering in ("wordseg", "spaced"):
            source = doc[rendering]
            for (a, b), (c, d) in zip(source["spans"], plain["spans"]):
                total += 1
                same += normalize(source["text"][a:b], word_segmented=True).text == normalize_tones(plain["text"][c:d])
    assert total == 2 * 3323
    assert same / total > 0.99


@needs_shared_data("segmentation")
def test_vtb_plain_passes_through_and_everything_is_idempotent(vtb):
    for doc in vtb:
        plain = doc["plain"]["text"]
        result = normalize(plain)
        assert result.text == normalize_tones(plain)
        assert result.offsets == tuple(range(len(plain) + 1))
        for rendering in ("wordseg", "spaced"):
            source = doc[rendering]["text"]
            once = normalize(source)
            assert "_" not in once.text or rendering == "spaced"
            assert normalize(once.text).text == once.text
            assert_offsets_map_back(source, once)


# --------------------------------------------------------------------------- speed


@needs_shared_data("seed")
def test_a_megabyte_normalises_quickly(seed):
    """Linear-time sanity check; the bound is generous on purpose (shared CI machines)."""
    text = "\n".join([seed] * 380)  # ~1 MB of UTF-8
    assert len(text.encode("utf-8")) > 1_000_000
    started = time.perf_counter()
    result = normalize(text)
    elapsed = time.perf_counter() - started
    assert result.text.count("Đan Nguyên") == 380
    assert "_" not in result.text
    assert elapsed < 30

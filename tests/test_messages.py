"""numstab.messages: one table per language, every message in both, the tour and its report in Chinese."""

from __future__ import annotations

import string

import pytest

from numstab import lab
from numstab.errors import UnknownNameError
from numstab.lab.comparison import HEADERS
from numstab.messages import LANGUAGES, MESSAGES, PHRASES, check_lang, phrase, tr
from numstab.render import lab as lab_render
from numstab.render.html import HtmlPage


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_message_has_both_languages_with_the_same_fields() -> None:
    assert set(MESSAGES) == set(LANGUAGES) == {"en", "zh"}
    assert set(MESSAGES["en"]) == set(MESSAGES["zh"])
    for key, english in MESSAGES["en"].items():
        chinese = MESSAGES["zh"][key]
        assert english.strip() and chinese.strip(), key
        assert _fields(english) == _fields(chinese), key  # the same numbers reach both sentences
        assert any("\u4e00" <= ch <= "\u9fff" for ch in chinese) or key in {"tour.title"}, key


def test_phrases_are_translated_words_and_english_is_the_id() -> None:
    assert set(PHRASES) <= set(LANGUAGES) and "en" not in PHRASES
    assert phrase("reasonable", "en") == "reasonable" and phrase("reasonable", "zh") == "合理"
    assert phrase(1.5, "zh") == 1.5  # numbers pass through
    with pytest.raises(UnknownNameError, match="en, zh"):
        check_lang("fr")


def test_the_english_headers_are_the_comparison_columns() -> None:
    assert lab_render.headers("en") == list(HEADERS)
    assert tr("col.agrees", "zh") == "与本章一致？"


def test_the_chinese_section_quotes_the_chinese_edition() -> None:
    r = lab.mlp_gradients(["relu"], [0.2], width=100, depth=50, repeats=2, xavier_uniform=False)
    html = lab_render.add_section(HtmlPage("t", lang="zh"), r, lang="zh").render()
    assert "对于0.1，结果为1e-9，对于0.2是合理的" in html  # the lecture transcript, word for word
    assert "课程说“合理”，但 σ_w = 尺度 × √100 = 2" in html  # the disagreement, explained in Chinese
    assert "<th scope=\"col\">与本章一致？</th>" in html and ">否<" in html

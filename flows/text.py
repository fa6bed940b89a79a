"""Localised wording: every user-facing string of a protocol in English and optionally Chinese."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

Lang = Literal["en", "zh"]
LANGUAGES: tuple[Lang, ...] = ("en", "zh")


def as_lang(code: str | None) -> Lang:
    """Map a Telegram-style language code (``zh-hans``, ``en-GB``…) to a supported language.

    Args:
        code: An IETF language tag or ``None``.

    Returns:
        ``"zh"`` for any Chinese tag, otherwise ``"en"``.
    """
    if code and code.lower().startswith("zh"):
        return "zh"
    return "en"


class Text(BaseModel):
    """A piece of wording with an English original and an optional Chinese translation.

    In YAML it is either a plain string (English only) or a mapping ``{en: …, zh: …}``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    en: str
    zh: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_plain_string(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"en": data}
        return data

    def get(self, lang: Lang) -> str:
        """Return the wording in ``lang``, falling back to English when it is not translated."""
        if lang == "zh" and self.zh:
            return self.zh
        return self.en

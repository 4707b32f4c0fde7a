"""The status page's languages: messages (``templates/status/messages.json``), the
language a request asks for, and figures written the way each language writes them."""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web

PACKAGE_DIR = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = PACKAGE_DIR / "templates" / "status"
LANGUAGES = ("en", "fr", "nl")


class Translator:
    """Messages in English, French and Dutch from ``templates/status/messages.json``."""

    def __init__(self, path: Path = TEMPLATES_DIR / "messages.json") -> None:
        self.messages: dict[str, dict[str, str]] = json.loads(path.read_text(encoding="utf-8"))

    def __call__(self, lang: str, key: str, **values: object) -> str:
        """The message ``key`` in ``lang`` (English when missing), formatted."""
        table = self.messages.get(lang, {})
        text = table.get(key) or self.messages["en"].get(key, key)
        return text.format(**values) if values else text


def pick_language(request: web.Request) -> str:
    """``?lang=``, then the ``lang`` cookie, then Accept-Language, then English."""
    asked = request.query.get("lang", "").lower()
    if asked in LANGUAGES:
        return asked
    cookie = request.cookies.get("lang", "")
    if cookie in LANGUAGES:
        return cookie
    choices: list[tuple[float, int, str]] = []
    for index, part in enumerate(request.headers.get("Accept-Language", "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            choices.append((-quality, index, primary))
    return min(choices)[2] if choices else "en"


def format_ratio(value: float | None, lang: str) -> str:
    """A ratio as a percentage with three decimals, in the language's style."""
    if value is None:
        return "\u2013"
    text = f"{value * 100:.3f}"
    if lang == "en":
        return f"{text}%"
    text = text.replace(".", ",")
    return f"{text}\u202f%" if lang == "fr" else f"{text}%"

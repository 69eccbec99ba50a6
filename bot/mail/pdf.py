"""The filled fiche as a PDF (fpdf2), laid out from its form (`bot/mail/fiche.py`)."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from bot.mail import fiche as F
from bot.storage.models import Submission

FONTS_DIR = Path(__file__).resolve().parent / "fonts"
REGULAR = FONTS_DIR / "DejaVuSans.ttf"
BOLD = FONTS_DIR / "DejaVuSans-Bold.ttf"
INVISIBLE = re.compile(
    r"[\u0000-\u0008\u000b-\u001f\u007f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]"
)
CP1252_EXTRA = {
    "’": "'", "‘": "'", "“": '"', "”": '"', "«": '"', "»": '"', "–": "-", "—": "-",
    "…": "...", "œ": "oe", "Œ": "OE", "€": "EUR", "\u202f": " ", "\u00a0": " ", "·": "-",
}  # fmt: skip
NAVY = (0, 51, 102)


@lru_cache(maxsize=1)
def _font_charset() -> frozenset[int]:
    """Code points the vendored font can draw (empty when the font files are missing)."""
    if not (REGULAR.exists() and BOLD.exists()):
        return frozenset()
    try:
        from fontTools.ttLib import TTFont

        with TTFont(str(REGULAR), lazy=True) as font:
            return frozenset(font.getBestCmap())
    except Exception:  # an unreadable font: fall back to the core fonts
        return frozenset()


def _clean(text: str) -> str:
    return INVISIBLE.sub("", unicodedata.normalize("NFC", text)).replace("\t", "    ")


# Emoji the font cannot draw become a readable French word (others: their Unicode name)
EMOJI_WORDS = {
    "🚑": "ambulance", "🏥": "hôpital", "🩺": "stéthoscope", "💊": "médicament",
    "💉": "seringue", "🧑‍⚕️": "soignant", "👩‍⚕️": "soignante", "👨‍⚕️": "soignant",
    "⚕️": "caducée", "⚕": "caducée", "❤️": "cœur", "❤": "cœur", "🫀": "cœur", "🧠": "cerveau",
    "🦷": "dent", "👶": "bébé", "👵": "personne âgée", "👴": "personne âgée", "🏠": "domicile",
    "🏡": "domicile", "🚗": "voiture", "📞": "téléphone", "☎️": "téléphone", "☎": "téléphone",
    "📱": "téléphone", "📧": "e-mail", "✉️": "e-mail", "📅": "calendrier", "📍": "lieu",
    "✅": "oui", "❌": "non", "⚠️": "attention", "⚠": "attention", "👍": "d'accord",
    "🙂": "sourire", "😀": "sourire", "😊": "sourire", "🙏": "merci", "👋": "bonjour",
    "🤝": "partenariat", "💶": "euros", "🧪": "analyse", "🩹": "pansement",
}  # fmt: skip
EMOJI_KEYS = sorted(EMOJI_WORDS, key=len, reverse=True)
JOINERS = re.compile(r"[\ufe0e\ufe0f\u200d\U0001f3fb-\U0001f3ff]")  # variation, ZWJ, skin tones


def _emoji_word(c: str) -> str | None:
    if unicodedata.category(c) != "So" or ord(c) < 0x2100:
        return None
    name = unicodedata.name(c, "")
    return f"[{name.lower()}]" if name else None


def for_unicode_font(text: str, charset: frozenset[int]) -> str:
    """Keep what the font draws; an emoji becomes a readable word ([ambulance]); other
    characters the font lacks (scripts it does not cover) become "?"."""
    text = _clean(text)
    for key in EMOJI_KEYS:
        if key in text:
            text = text.replace(key, f"[{EMOJI_WORDS[key]}]")
    text = JOINERS.sub("", text)
    out = []
    for c in text:
        if ord(c) in charset or c == "\n":
            out.append(c)
        else:
            out.append(_emoji_word(c) or "?")
    return "".join(out)


def unbreakable(text: str) -> str:
    """A phone number kept on one line: its spaces become no-break spaces."""
    return text.replace(" ", "\u00a0")


def for_core_font(text: str) -> str:
    """Transliterate to latin-1 for the PDF core fonts (no font file available)."""
    out = []
    text = _clean(text)
    for key in EMOJI_KEYS:
        if key in text:
            text = text.replace(key, f"[{EMOJI_WORDS[key]}]")
    for c in JOINERS.sub("", text):
        c = CP1252_EXTRA.get(c, c)
        if len(c) == 1 and ord(c) > 255:
            base = unicodedata.normalize("NFKD", c).encode("latin-1", "ignore").decode("latin-1")
            c = "".join(ch for ch in base if not unicodedata.combining(ch)) or "?"
        out.append(c)
    return "".join(out)


class FichePDF(FPDF):
    """An A4 page with the issuer's header and a footer carrying the reference."""

    def __init__(self, fiche: F.Fiche, unicode_font: bool) -> None:
        super().__init__(format="A4")
        self.reference = reference = fiche.reference
        self.not_given = fiche.not_given
        self.charset = _font_charset() if unicode_font else frozenset()
        self.family = "DejaVu" if self.charset else "Helvetica"
        if self.charset:
            self.add_font("DejaVu", "", str(REGULAR))
            self.add_font("DejaVu", "B", str(BOLD))
        self.set_margins(18, 16, 18)
        self.set_auto_page_break(True, margin=18)
        self.set_title(self.t(f"Réponse {reference} — {fiche.form_title}"))
        self.set_subject(self.t(" — ".join(t for t in (fiche.subtitle, fiche.issuer) if t)))
        # the author is whoever answered (the form's `who`), not the issuer, which receives it
        if fiche.who:
            self.set_author(self.t(fiche.who))
        self.set_creation_date(fiche.submitted_at)
        self.set_keywords(self.t(", ".join(t for t in (fiche.issuer, reference) if t)))
        self.set_creator(self.t(f"Bot ESP / CPTS — {fiche.form_title}"))

    def t(self, text: str) -> str:
        return for_unicode_font(text, self.charset) if self.charset else for_core_font(text)

    def font(self, size: float, bold: bool = False) -> None:
        self.set_font(self.family, "B" if bold else "", size)

    def footer(self) -> None:
        self.set_y(-12)
        self.font(8)
        self.set_text_color(90, 90, 90)
        self.cell(
            0, 5, self.t(f"Réponse {self.reference} — page {self.page_no()}/{{nb}}"), align="C"
        )
        self.set_text_color(0, 0, 0)

    def para(self, text: str, size: float = 10, bold: bool = False, h: float = 5) -> None:
        self.font(size, bold)
        self.multi_cell(0, h, self.t(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def section(self, title: str) -> None:
        if self.get_y() > self.h - 45:
            self.add_page()
        self.ln(3)
        self.set_fill_color(*NAVY)
        self.set_text_color(255, 255, 255)
        self.font(11.5, bold=True)
        self.cell(0, 7, self.t(title), fill=True, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(0, 0, 0)
        self.ln(1.5)

    def hint(self, text: str) -> None:
        self.set_text_color(70, 70, 70)
        self.para(text, size=9, h=4.5)
        self.set_text_color(0, 0, 0)

    def checkbox(self, checked: bool, label: str) -> None:
        size, x, y = 4.2, self.l_margin + 2, self.get_y() + 0.9
        self.set_draw_color(0, 0, 0)
        self.set_line_width(0.3)
        self.rect(x, y, size, size)
        if checked:
            self.set_line_width(0.5)
            self.line(x + 0.8, y + 0.8, x + size - 0.8, y + size - 0.8)
            self.line(x + 0.8, y + size - 0.8, x + size - 0.8, y + 0.8)
            self.set_line_width(0.3)
        self.set_x(x + size + 3)
        self.font(10, bold=checked)
        self.multi_cell(0, 6, self.t(label), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def answer(self, text: str) -> None:
        self.para(text or self.not_given, size=10)


def render_fiche_pdf(submission: Submission, *, unicode_font: bool = True) -> bytes:
    """The filled fiche as PDF bytes (also sent in the Telegram chat)."""
    fiche = F.build_fiche(submission)
    pdf = FichePDF(fiche, unicode_font)
    pdf.alias_nb_pages()
    pdf.add_page()

    pdf.font(10, bold=True)
    pdf.set_text_color(*NAVY)
    pdf.cell(90, 6, pdf.t(fiche.issuer))
    pdf.font(9)
    pdf.cell(
        0, 6, pdf.t(f"Réponse {fiche.reference}"), align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT
    )
    pdf.cell(90, 5, pdf.t(fiche.issuer_unit))
    pdf.cell(
        0, 5, pdf.t(f"Reçue le {fiche.submitted}"), align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT
    )
    pdf.ln(5)
    pdf.font(14, bold=True)
    pdf.multi_cell(0, 7, pdf.t(fiche.title), align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if fiche.subtitle:
        pdf.font(12, bold=True)
        pdf.multi_cell(
            0, 6.5, pdf.t(fiche.subtitle), align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
    pdf.set_text_color(0, 0, 0)
    if fiche.recipient:
        pdf.font(9)
        pdf.multi_cell(
            0,
            5,
            pdf.t(f"A retourner à : {fiche.recipient}"),
            align="C",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )

    for part in fiche.parts:
        pdf.section(part.title)
        for i, block in enumerate(part.blocks):
            if block.heading:
                if i:
                    pdf.ln(2)
                pdf.para(f"{block.heading} :", bold=True)
            if block.hint:
                pdf.hint(block.hint)
            if block.kind == "group":
                for n, row in enumerate(block.rows, 1):
                    kept = [unbreakable(v) if c in block.whole else v for c, v in enumerate(row)]
                    pdf.para(f"{n}. {block.row_line(kept)}")
                if not block.rows:
                    pdf.answer("")
            elif block.kind == "choices":
                for checked, label in block.choices:
                    pdf.checkbox(checked, label)
            else:
                pdf.answer(block.text)
                for detail in block.details:
                    pdf.hint(detail)

    if fiche.flags:
        pdf.section("Points à vérifier")
        pdf.hint("Réponses conservées telles que saisies, à vérifier :")
        for flag in fiche.flags:
            pdf.para(f"• {F.flag_line(flag)}")
    return bytes(pdf.output())

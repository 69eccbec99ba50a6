"""French text normalisation shared by the index, the queries and the quote checks."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import snowballstemmer

_STEMMER = snowballstemmer.stemmer("french")

# Function words and question words: removed before matching.
STOP_WORDS: frozenset[str] = frozenset(
    [
        "a",
        "au",
        "aux",
        "avec",
        "ce",
        "ces",
        "cet",
        "cette",
        "c",
        "ca",
        "ci",
        "d",
        "dans",
        "de",
        "des",
        "du",
        "elle",
        "elles",
        "en",
        "et",
        "eux",
        "il",
        "ils",
        "je",
        "j",
        "l",
        "la",
        "le",
        "les",
        "leur",
        "leurs",
        "lui",
        "m",
        "ma",
        "mais",
        "me",
        "meme",
        "mes",
        "moi",
        "mon",
        "n",
        "ne",
        "ni",
        "nos",
        "notre",
        "nous",
        "o",
        "on",
        "ou",
        "par",
        "parce",  # « parce que » (also a commune, Parcé)
        "pas",
        "pour",
        "qu",
        "que",
        "qui",
        "s",
        "sa",
        "se",
        "ses",
        "son",
        "sur",
        "t",
        "ta",
        "te",
        "tes",
        "toi",
        "ton",
        "tu",
        "un",
        "une",
        "vos",
        "votre",
        "vous",
        "y",
        "ete",
        "etre",
        "etes",
        "suis",
        "est",
        "sont",
        "sera",
        "seront",
        "etait",
        "etaient",
        "soit",
        "sont",
        "ai",
        "as",
        "avons",
        "avez",
        "ont",
        "avait",
        "avaient",
        "aura",
        "auront",
        "fait",
        "faire",
        "fais",
        "faut",
        "falloir",
        "doit",
        "doivent",
        "dois",
        "devons",
        "devez",
        "peut",
        "peuvent",
        "peux",
        "pouvons",
        "pouvez",
        "pourra",
        "pourrait",
        "pourraient",
        "puis",
        "quel",
        "quelle",
        "quels",
        "quelles",
        "quoi",
        "comment",
        "pourquoi",
        "quand",
        "combien",
        "ou",
        "lequel",
        "laquelle",
        "lesquels",
        "lesquelles",
        "dont",
        "ceci",
        "cela",
        "celui",
        "celle",
        "ceux",
        "celles",
        "tout",
        "tous",
        "toute",
        "toutes",
        "tres",
        "bien",
        "plus",
        "moins",
        "aussi",
        "alors",
        "donc",
        "ainsi",
        "si",
        "oui",
        "non",
        "svp",
        "stp",
        "merci",
        "bonjour",
        "bonsoir",
        "salut",
        "hello",
        "coucou",
        "mr",
        "mme",
        "madame",
        "monsieur",
        "il",
        "y",
        "a",
        "est-ce",
        "ce-que",
        "qu-est",
        "estce",
        "vs",
        "versus",
        "ok",
        "okay",
        "bon",
        "ben",
        "euh",
        "hein",
        "voila",
        "voici",
        "sais",
        "savoir",
        "dire",
        "dis",
        "dites",
        "expliquer",
        "explique",
        "expliquez",
        "connaitre",
        "aimerais",
        "voudrais",
        "voudrait",
        "souhaite",
        "souhaiterais",
        "veux",
        "veut",
        "vouloir",
        "besoin",
        "question",
        "questions",
        "info",
        "infos",
        "information",
        "informations",
        "renseignement",
        "renseignements",
        "svp",
        "chose",
        "choses",
        "truc",
        "trucs",
        "exactement",
        "concretement",
        "precisement",
        "vraiment",
        "svp",
        "sil",
        "plait",
        "comprendre",
        "compris",
        "cest",
        "quest",
        "encore",
        "contre",
        "comme",
        "selon",
        "sert",
        "servent",
        "servir",
    ]
)

# SMS and chat spellings -> standard words (applied token by token before stop words).
SMS_MAP: dict[str, str] = {
    "koi": "quoi",
    "kwa": "quoi",
    "kel": "quel",
    "kelle": "quelle",
    "kels": "quels",
    "kelles": "quelles",
    "ki": "qui",
    "ke": "que",
    "k": "que",
    "tps": "temps",
    "cb": "combien",
    "cmb": "combien",
    "cmbien": "combien",
    "cbien": "combien",
    "koment": "comment",
    "komment": "comment",
    "cmt": "comment",
    "pkoi": "pourquoi",
    "tjr": "toujours",
    "combien": "combien",
    "pr": "pour",
    "pk": "pourquoi",
    "pq": "pourquoi",
    "qd": "quand",
    "ds": "dans",
    "dc": "donc",
    "tt": "tout",
    "tjs": "toujours",
    "mini": "minimum",
    "maxi": "maximum",
    "bcp": "beaucoup",
    "mtn": "maintenant",
    "slt": "salut",
    "bjr": "bonjour",
    "bsr": "bonsoir",
    "mrc": "merci",
    "mci": "merci",
    "thx": "merci",
    "ya": "y",
    "jsp": "sais",
    "dmd": "demande",
    "rdv": "rendez vous",
    "rdvs": "rendez vous",
    "asso": "association",
    # the field's own abbreviations (« les PS », « l'AM », « la DD », « ARS BZH »)
    "ps": "professionnels de sante",
    "am": "assurance maladie",
    "dd": "delegation departementale",
    "bzh": "bretagne",
    "docteur": "medecin",
    "docteurs": "medecins",
    "pharma": "pharmacien",
    "pharmas": "pharmaciens",
    "podo": "podologue",
    "podos": "podologues",
    "ortho": "orthophoniste",
    "diet": "dieteticien",
    "psy": "psychologue",
    "coordo": "coordinateur",
    "coordos": "coordinateurs",
    "coord": "coordinateur",
    "assoc": "association",
    "tel": "telephone",
    "tél": "telephone",
    "num": "numero",
    "kine": "kinesitherapeute",
    "pro": "professionnel",
    "galere": "difficulte",
    "galerer": "difficulte",
    "galerons": "difficulte",
    "galerent": "difficulte",
    "pros": "professionnels",
    "kines": "kinesitherapeutes",
    "idel": "infirmier",
    "ide": "infirmier",
    "inf": "infirmier",
    "toubib": "medecin",
    "doc": "medecin",
    "generaliste": "generaliste",
    "secu": "assurance maladie",
    "ameli": "assurance maladie",
    "amo": "assurance maladie",
    "h24": "24 h",
    "hr": "h",
    "heures": "h",
    "heure": "h",
    "1er": "premier",
    "1ere": "premiere",
    "2e": "deuxieme",
    "2eme": "deuxieme",
    "2nd": "second",
    "2d": "second",
    "3e": "troisieme",
    "3eme": "troisieme",
    "4e": "quatrieme",
    "4eme": "quatrieme",
    "projets": "projet",
    "dossier": "dossier",
    "msg": "message",
    "mail": "mail",
    "email": "mail",
    "courriel": "mail",
    "mel": "mail",
    "remu": "remuneration",
    "remun": "remuneration",
    "sf": "sage femme",
    "sfs": "sages femmes",
    "st": "saint",
    "ste": "sainte",
    "hosto": "hopital",
    "admin": "administratif",
    "jai": "j ai",
    "jsuis": "je suis",
    "chui": "je suis",
    "cad": "c est a dire",
}

_COMBINING_RE = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_LIGATURES = {"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "ß": "ss"}
_APOSTROPHES = "\u2019\u2018\u02bc\u00b4`\u2032"
_ELISION_RE = re.compile(r"\b(?:l|d|qu|j|n|s|c|m|t|lorsqu|puisqu|quoiqu)'", re.IGNORECASE)
_DIGIT_GROUP_RE = re.compile(r"(?<=\d)[ \u00a0\u202f.](?=\d{3}\b)")
_TOKEN_RE = re.compile(
    r"\d+(?:ere|er|eme|e|nde|nd|d)(?![a-z])|h24|[a-z]+|\d+"
)  # « 2e », « 1er », « h24 »
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\ufeff]")


def strip_accents(text: str) -> str:
    """Lowercase, fold ligatures and remove diacritics."""
    for lig, rep in _LIGATURES.items():
        text = text.replace(lig, rep)
    text = unicodedata.normalize("NFKD", text.lower())
    if text.isascii():
        return text
    return _COMBINING_RE.sub("", text)


def clean_control(text: str) -> str:
    """Remove control and invisible formatting characters (keeps tabs and newlines)."""
    return _CONTROL_RE.sub(" ", text)


def fold(text: str) -> str:
    """Lowercase, accent-free text with unified apostrophes, elisions removed, digits grouped.

    "L’ESP coûte 15 000 €" -> "esp coute 15000 €"
    """
    text = strip_accents(clean_control(text))
    for ch in _APOSTROPHES:
        text = text.replace(ch, "'")
    text = _ELISION_RE.sub(" ", text)
    text = _DIGIT_GROUP_RE.sub("", text)
    # "pluri-professionnel", "pluri professionnel" -> "pluriprofessionnel"
    text = re.sub(r"\bpluri[\s-]+(?=[a-z])", "pluri", text)
    text = re.sub(r"\bmedico[\s-]+(?=[a-z])", "medico", text)
    return text


# acronyms of the texts that a phone's dictation spells out letter by letter (« c p t s »)
SPELLED_ACRONYMS = frozenset(
    ["cpts", "esp", "msp", "pta", "ami", "ars", "aci", "cpam", "urps", "fir", "ght", "snp", "dgos"]
)


def _join_spelled(tokens: list[str]) -> list[str]:
    """« c p t s » -> « cpts »: a run of single letters spelling a known acronym is one word
    (the longest acronym that starts at each letter; other single letters are kept)."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        j = i
        while j < len(tokens) and len(tokens[j]) == 1 and tokens[j].isalpha():
            j += 1
        for end in range(j, i + 1, -1):
            if "".join(tokens[i:end]) in SPELLED_ACRONYMS:
                out.append("".join(tokens[i:end]))
                i = end
                break
        else:
            out.append(tokens[i])
            i += 1
    return out


def raw_tokens(text: str) -> list[str]:
    """Folded word tokens (letters or digits runs), SMS spellings expanded, spelled-out
    acronyms joined."""
    out: list[str] = []
    for tok in _TOKEN_RE.findall(fold(text)):
        mapped = SMS_MAP.get(tok)
        if mapped is None:
            out.append(tok)
        else:
            out.extend(mapped.split())
    return _join_spelled(out)


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Snowball French stem of an accent-free word (numbers are kept as they are)."""
    if word.isdigit() or len(word) <= 3:
        return word
    return _STEMMER.stemWord(word)


# --- the normalisation used by the scorer (shared/eval/score_qa.py) for quotes --------------


def scorer_normalize(text: str) -> str:
    """Exactly the scorer's `normalize`: lowercase, accents stripped, whitespace collapsed."""
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.replace("\u2019", "'").replace("\u00a0", " ").replace("\u202f", " ")
    return re.sub(r"\s+", " ", text)


def scorer_plain(text: str) -> str:
    """Exactly the scorer's `plain`: normalised, Markdown emphasis removed."""
    return re.sub(r"\s+", " ", re.sub(r"[*_#`\\]", "", scorer_normalize(text)))


QUOTE_GAP_RE = re.compile(r"\.\.\.|\u2026|\[\.\.\.\]")


def quote_pieces(quote: str) -> list[str]:
    """The pieces of a quote, split at "…" gaps, as the scorer checks them (>= 12 chars)."""
    pieces = [p.strip(" .;:,") for p in QUOTE_GAP_RE.split(scorer_plain(quote))]
    return [p for p in pieces if len(p) >= 12]


def quote_in(quote: str, plain_text: str) -> bool:
    """True when every piece of `quote` occurs in `plain_text` (already `scorer_plain`-ed)."""
    pieces = quote_pieces(quote)
    return bool(pieces) and all(p in plain_text for p in pieces)

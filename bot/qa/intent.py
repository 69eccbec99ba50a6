"""What a question asks: its objects (ESP, CPTS…), its dimension (funding, steps, who…),
whether it is a follow-up of the previous turn, and whether it is a medical emergency.

Everything here works on folded tokens (lowercase, no accents: `textnorm.raw_tokens`), so it
reads SMS spellings as well as careful sentences. The patterns are about the *shape* of a
question in French, not about the words of any question set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.qa.textnorm import raw_tokens

# --- dimensions: what a question asks about an object -------------------------------------
# A topic's dimensions are read from its label and question variants the same way, so a
# question about funding prefers a funding answer over a creation-steps answer that merely
# mentions money.
DIMENSIONS: dict[str, re.Pattern[str]] = {
    "funding": re.compile(
        r"\b((co)?financ\w*|argent|des sous|fric|subventions?|aides? financieres?|budget|credits?|fir|remuner\w*|"
        r"paye[rz]?|paie|payee?s?|thune|euros?|dotations?|enveloppes?|montants?|couts?|coute|"
        r"rapporte|touche|gratuit\w*|forfaits?|indemni\w*|fonds|verse[rz]?|versements?|"
        r"majorations?|bonus|primes?)\b"
    ),
    "steps": re.compile(
        r"\b(etapes?|demarches?|procedures?|par ou commencer|mode d emploi|comment (creer|monter|"
        r"lancer|constituer|demarrer|on (cree|monte|fait|lance))|commencer|premiere chose)\b"
    ),
    "members": re.compile(
        r"\b(qui peut|qui peuvent|qui (fait|font) partie|membres?|composition|composee?s?|"
        r"acteurs?|rejoindre|adherer|participer|participent|participation|integrer|"
        r"en faire partie|associer|associes?|qui compose)\b"
    ),
    "territory": re.compile(
        r"\b(territoires?|territorial|populations?|habitants?|taille|perimetres?|zones?|"
        r"communes?|secteurs?|bassin|echelle)\b"
    ),
    "delay": re.compile(
        r"\b(delais?|combien de temps|en combien|quand|duree|mois|semaines?|jours?|"
        r"date|calendrier|echeances?|heures?|\d+ ?h)\b"
    ),
    "count": re.compile(
        r"\b(combien de (professionnels|membres|medecins|personnes|pros|cpts|esp|projets|"
        r"acteurs|structures)|nombre|minimum|au moins|combien (faut|il faut))\b"
    ),
    "legal": re.compile(
        r"\b(statuts?|juridiques?|association|1901|sisa|personnalite morale|forme)\b"
    ),
    "validation": re.compile(
        r"\b(valid\w*|approuv\w*|recevables?|tacite\w*|accepte\w*|refuse\w*|agre\w*)\b"
    ),
    "missions": re.compile(r"\b(missions?|socles?|a quoi (sert|servent)|actions?|role)\b"),
    "contact": re.compile(
        r"\b(contacts?|contacter|adresse|mail|courriel|envoyer|renvoyer|transmettre|"
        r"adresser|joindre|telephone|telephoner|interlocuteurs?|qui (appeler|contacter)|"
        r"appeler|appelle|contacte|"
        # « je l'envoie à qui ? », « on le transmet où ? »: where a document goes
        r"(envoie|envoies|envoient|envoyons|renvoie|renvoient|transmets|transmet|transmettons|"
        r"retourne|depose|deposer) (a qui|ou|a quelle adresse))\b"
    ),
    "definition": re.compile(
        r"\b((c )?est quoi|c quoi|c koi|ckoi|est ce (une?|le|la|les|l|des|que (c )?est)|"
        r"definition|definir|veut dire|signifie|kesako|quesaco|en gros|en bref)\b"
    ),
    "difference": re.compile(
        r"\b(differences?|differencier|comparer|comparaison|versus|vs|distinguer|"
        r"ou plutot|plutot|mieux)\b"
    ),
}

# the objects people ask about, by folded word (the analyzer's concept tokens are finer; these
# are the ones a follow-up swaps: « et pour une ESP ? »)
OBJECT_WORDS: dict[str, str] = {
    "esp": "ESP",
    "cpts": "CPTS",
    "msp": "MSP",
    "pta": "PTA",
    "ami": "AMI",
    "aci": "ACI",
    "fir": "FIR",
    "ars": "ARS",
}
_OBJECT_PHRASES: tuple[tuple[str, str], ...] = (
    ("equipe de soins primaires", "ESP"),
    ("equipes de soins primaires", "ESP"),
    ("communaute professionnelle territoriale", "CPTS"),
    ("communautes professionnelles territoriales", "CPTS"),
    ("maison de sante", "MSP"),
    ("maisons de sante", "MSP"),
    ("appel a manifestation", "AMI"),
    ("accord conventionnel interprofessionnel", "ACI"),
    ("plateforme territoriale d appui", "PTA"),
    ("plateformes territoriales d appui", "PTA"),
)

# --- follow-ups ----------------------------------------------------------------------------
_FOLLOW_START = re.compile(
    r"^(et|mais|ok|okay|d accord|donc|alors|puis|aussi|sinon|par contre|du coup|et si|"
    r"et pour|et les|et la|et le|et une|et un|et en|et elle|et il|et ca|et combien|"
    r"et comment|et qui|et quand|et ou)\b"
)
_PRONOUN = re.compile(
    r"\b(ca|cela|ceci|celle|celui|celles|ceux|elle|elles|il|ils|la dedans|y|en|le|la|les|"
    r"leur|cette|ce|ces|cet)\b"
)
_USES_IT = re.compile(
    r"\b(en servir|en sert|en beneficier|en profiter|y recourir|y acceder|y avoir acces|"
    r"la solliciter|les solliciter|la mobiliser|les mobiliser|en saisir|y faire appel|"
    r"leur demander|faire appel a (elle|elles|lui|eux))\b"
)
_CLARIFY = re.compile(
    r"^((c )?est a dire|cad|c a d|ca veut dire quoi|ca veut dire|je (ne )?comprends? pas|"
    r"j ai pas compris|je n ai pas compris|pas compris|plus simplement|en clair|"
    r"tu peux (expliquer|reformuler|preciser)|vous pouvez (expliquer|reformuler|preciser)|"
    r"expliquez|explique|reformule\w*|precise\w*|comment ca|quoi|hein|pardon|"
    r"plus de details?|en detail|developpe\w*|dis m en plus|dites m en plus)\b"
)
_QUESTION_WORDS = frozenset(
    [
        "c",
        "est",
        "quoi",
        "qu",
        "ce",
        "que",
        "comment",
        "quel",
        "quelle",
        "quels",
        "quelles",
        "qui",
        "quand",
        "combien",
        "pourquoi",
        "ou",
        "koi",
        "kel",
        "kelle",
        "definition",
    ]
)
_LONG_FOLLOW = 12  # a follow-up is short: at most this many tokens

# --- safety: a medical emergency is answered with 15 / 112 first --------------------------
_EMERGENCY = re.compile(
    r"\b(avc|infarctus|arret cardiaque|crise cardiaque|douleurs? (thoracique|poitrine|"
    r"dans la poitrine)|mal (a|dans) la poitrine|(ne )?respire (plus|pas|mal)|"
    r"n arrive (plus|pas) a respirer|etouffe\w*|inconscient\w*|perte de connaissance|"
    r"(a )?perdu connaissance|malaise|convulse\w*|convulsions?|hemorragie|saigne beaucoup|"
    r"overdose|intoxication|suicid\w*|veut mourir|en train de mourir|urgence vitale|"
    r"detresse respiratoire|paralys\w*|bouche de travers|choc anaphylactique|"
    r"(il|elle) fait un (avc|malaise|infarctus)|appeler (le )?(15|samu)|samu)\b"
)
# asking for a diagnosis or a treatment: not what the texts are for
_MEDICAL_ADVICE = re.compile(
    r"\b(quel (traitement|medicament|antibiotique)|quelle (posologie|dose)|posologie|"
    r"comment (soigner|guerir)|(j ai|il a|elle a|mon patient a|ma patiente a) "
    r"(mal|de la fievre|une? (douleur|fievre|toux|angine|otite|entorse|eruption))|"
    r"symptomes? de|quel diagnostic pour|ordonnance pour|dois je prendre|"
    r"comment (prevenir|eviter|depister) (le|la|les|l|un|une) (?!(rupture|hospitali|passage))"
    r"\w+ (chez|d un|d une|du|des|de mon|de ma|de mes)|"
    # clinical tools and acts: the texts organise care, they do not describe it
    r"quel(le)? (outil|grille|echelle|score|test|questionnaire) (de )?(depistage|reperage)|"
    r"comment titrer|titration|technique d inhalation|certificat medical|"
    r"quelles precautions pour|prescrire une? (glycemie|bilan|analyse|radio|irm|scanner)|"
    r"conduite a tenir|deprescri\w*|cible d inr|inr cible|frequence de (controle|surveillance)|"
    # a clinical case: a patient with a symptom, what to do with him
    r"(un|une|le|la|mon|ma|ce|cette) (patient|patiente|enfant|bebe|nourrisson) (qui a |a )"
    r"(\d+ |de la |une |un |des )?(de )?(fievre|douleur|toux|angine|otite|vomissements?|diarrhee|"
    r"plaie|brulure|eruption|cephalee)|"
    r"\d+ (de fievre|degres)|fievre depuis|(on|je|vous) l (envoie|envoyer|adresse|adresser) aux urgences)\b"
)


@dataclass(frozen=True)
class QuestionShape:
    """What the words of one question say about it."""

    objects: frozenset[str]
    dimensions: frozenset[str]
    tokens: tuple[str, ...]
    is_clarification: bool = False  # « c'est-à-dire ? », « je ne comprends pas »
    is_elliptic: bool = False  # may be a follow-up: starts with « et … », or names no object
    leans_back: bool = False  # surely a follow-up: « et … », a pronoun or a few words, no object
    # « on peut s'en servir ? », « on peut y recourir ? »: a pronoun standing for the previous
    # turn's object, even when the message names others (« nous en ESP, on peut s'en servir ? »)
    refers_back: bool = False


@dataclass
class QAContext:
    """The question-answering state of one conversation: what the last turns were about."""

    question: str = ""  # the last question as understood (after completion from context)
    objects: list[str] = field(default_factory=list)
    dimensions: list[str] = field(default_factory=list)
    topic: str | None = None  # curated topic of the last answer
    more_key: str | None = None  # passage(s) behind the last answer
    turns: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "question": self.question,
            "objects": list(self.objects),
            "dimensions": list(self.dimensions),
            "topic": self.topic,
            "more_key": self.more_key,
            "turns": self.turns,
        }

    @classmethod
    def from_dict(cls, data: object) -> QAContext:
        """Read a stored context; anything malformed gives an empty one."""
        if not isinstance(data, dict):
            return cls()
        try:
            return cls(
                question=str(data.get("question") or ""),
                objects=[str(x) for x in data.get("objects") or []],
                dimensions=[str(x) for x in data.get("dimensions") or []],
                topic=(str(data["topic"]) if data.get("topic") else None),
                more_key=(str(data["more_key"]) if data.get("more_key") else None),
                turns=int(data.get("turns") or 0),
            )
        except (TypeError, ValueError):
            return cls()

    @property
    def is_empty(self) -> bool:
        return not self.question


def objects_of(tokens: list[str] | tuple[str, ...]) -> frozenset[str]:
    """The objects (ESP, CPTS, MSP, AMI…) a folded token list names."""
    found = {OBJECT_WORDS[t] for t in tokens if t in OBJECT_WORDS}
    joined = " ".join(tokens)
    for phrase, obj in _OBJECT_PHRASES:
        if phrase in joined:
            found.add(obj)
    return frozenset(found)


def dimensions_of(text: str) -> frozenset[str]:
    """The dimensions a text asks about (funding, steps, members…)."""
    joined = " ".join(raw_tokens(text))
    found = {name for name, pat in DIMENSIONS.items() if pat.search(joined)}
    if "€" in text:
        found.add("funding")
    return frozenset(found)


def shape(text: str) -> QuestionShape:
    """Objects, dimensions and follow-up markers of one question."""
    tokens = raw_tokens(text)
    joined = " ".join(tokens)
    objects = objects_of(tokens)
    dims = dimensions_of(text)
    clarify = bool(_CLARIFY.match(joined)) and len(tokens) <= 8 and not objects
    # a follow-up leans on the previous turn: it starts with « et », « mais », « ok »…, or it
    # names no object (ESP, CPTS…) of its own; the caller keeps it alone when it answers alone
    elliptic = (bool(_FOLLOW_START.match(joined)) and len(tokens) <= _LONG_FOLLOW) or (
        not objects and len(tokens) <= _LONG_FOLLOW
    )
    leans_back = bool(_FOLLOW_START.match(joined)) or (
        not objects and (bool(_PRONOUN.search(joined)) or len(tokens) <= 4)
    )
    refers = bool(_USES_IT.search(joined)) and len(tokens) <= _LONG_FOLLOW + 4
    if refers:
        elliptic = leans_back = True
    return QuestionShape(
        objects, dims, tuple(tokens), clarify, elliptic, elliptic and leans_back, refers
    )


# an emergency happening (« fait un AVC », « ne respire plus », « que faire »), as opposed to a
# disease named in an organisation question (« nos patients après un AVC », « les urgences
# vitales, la CPTS les couvre ? »)
_ACUTE = re.compile(
    r"\b(fait|fais|a fait|fait une?|est en train|en train de|ne respire|respire (plus|pas|mal)|"
    r"saigne|perdu connaissance|inconscient\w*|que faire|quoi faire|je fais quoi|on fait quoi|"
    r"mon patient|ma patiente|mon pere|ma mere|mon mari|ma femme|mon fils|ma fille|mon enfant|"
    r"mon bebe|devant moi|en ce moment|maintenant|tout de suite|vite|urgent|aidez|au secours|"
    r"appeler (le )?(15|samu)|samu|veut mourir|douleurs? (thoracique|poitrine|dans la poitrine)|"
    r"mal (a|dans) la poitrine)\b"
)
_ORGANISATION = re.compile(
    r"\b(cpts|esp|msp|pta|ars|aci|projets?|parcours|prises? en charge|prevention|missions?|"
    r"protocoles?|equipes?|coordination|filieres?|soins non programmes|urgences vitales|"
    r"accompagnement|apres un|apres une|suite a)\b"
)


def is_emergency(text: str) -> bool:
    """A medical emergency described or asked about (AVC, malaise, ne respire plus…); a disease
    named in an organisation question without anything happening is not one."""
    joined = " ".join(raw_tokens(text))
    if not _EMERGENCY.search(joined):
        return False
    return bool(_ACUTE.search(joined)) or not _ORGANISATION.search(joined)


def is_medical_advice(text: str) -> bool:
    """A request for a diagnosis, a treatment or a dose."""
    return bool(_MEDICAL_ADVICE.search(" ".join(raw_tokens(text))))


_DETERMINERS = frozenset(
    ["le", "la", "les", "l", "un", "une", "des", "du", "nous", "vous", "moi", "mes", "nos", "vos",
     "ses", "leurs", "notre", "votre", "mon", "ma", "son", "sa", "leur", "autres", "ces"]
)  # fmt: skip


def _swap_beneficiary(previous: list[str], words: list[str]) -> str | None:
    """« les avantages pour les patients ? » then « et pour nous les soignants ? »: the same
    question for someone else, the previous « pour … » replaced by the new one."""
    if len(words) < 2 or words[0] != "pour" or len(words) > 6 or "pour" not in previous:
        return None
    start = previous.index("pour")
    end = start + 1
    while end < len(previous) and previous[end] in _DETERMINERS:
        end += 1
    if end >= len(previous):
        return None
    return " ".join(previous[:start] + words + previous[end + 1 :])


def complete(text: str, now: QuestionShape, ctx: QAContext, force: bool = False) -> str | None:
    """The follow-up completed with what the previous turn was about, or None when the
    question stands on its own (a new subject resets the context).

    - « et pour une ESP ? » after « c'est quoi une CPTS ? » → the previous question with its
      object replaced: « c'est quoi une ESP ? »;
    - « et elles sont financées comment ? » → the new words plus the previous objects;
    - « je l'envoie où ? » → the new words plus the previous question's words.

    `force` completes a message that does not look elliptic (a longer one that nothing answers
    alone: « et ces indicateurs, c'est qui qui les décide ? »).
    """
    if ctx.is_empty or not (now.is_elliptic or force):
        return None
    prev = shape(ctx.question)
    words = [t for t in now.tokens if t not in {"et", "mais", "ok", "okay", "donc", "alors"}]
    content = [t for t in words if not _PRONOUN.fullmatch(t) and len(t) > 2]
    if now.objects and not now.dimensions and len(content) <= 3:
        # the same question about another object: swap the objects in the previous question
        previous = list(prev.tokens)
        swapped: list[str] = []
        placed = False
        for tok in previous:
            if tok in OBJECT_WORDS:
                if not placed:
                    swapped.extend(o.lower() for o in sorted(now.objects))
                    placed = True
                continue
            swapped.append(tok)
        if not placed:
            swapped.extend(o.lower() for o in sorted(now.objects))
        rest = [t for t in words if t not in OBJECT_WORDS and t not in {"pour", "une", "un"}]
        return " ".join(swapped + rest)
    if now.dimensions and now.objects:
        return None  # it names its own object and asks its own thing: a new question
    swapped_for = _swap_beneficiary(list(prev.tokens), words)
    if swapped_for is not None:
        return swapped_for
    # the previous question's subject: its words less those that asked its own dimension
    # (« c'est quoi », « comment créer »), so that the new dimension leads
    subject = [
        t
        for t in prev.tokens
        if not (now.dimensions and any(p.fullmatch(t) for p in DIMENSIONS.values()))
        and t not in _QUESTION_WORDS
    ]
    return f"{' '.join(words)} {' '.join(subject)}".strip()

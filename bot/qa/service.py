"""The question-answering service: the public face of bot.qa."""

from __future__ import annotations

import hashlib
import logging
import math
import os
import pickle
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from bot.qa.intent import (
    QAContext,
    QuestionShape,
    complete,
    is_emergency,
    is_medical_advice,
    shape,
)
from bot.qa.knowledge import (
    DEFAULT_KNOWLEDGE_DIR,
    ComparisonRow,
    CuratedSource,
    KnowledgeBase,
    Topic,
    load_knowledge,
)
from bot.qa.retrieval import Analysis, Hit, Index
from bot.qa.segment import Passage
from bot.qa.textnorm import (
    STOP_WORDS,
    clean_control,
    quote_in,
    raw_tokens,
    scorer_normalize,
    scorer_plain,
    stem,
)
from bot.territory import TerritoryDataError
from bot.territory import load_data as load_territories

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 1000  # longer messages are not questions (pasted documents…)
TELEGRAM_LIMIT = 4096
MORE_LIMIT = 3500  # "En savoir plus": whole sections, bounded (the adapter splits beyond 4096)

# decision thresholds on the raw retrieval scores (see docs/qa.md for how they were set)
TOPIC_THRESHOLD = 0.31  # on the score re-weighted by the classifier (0.36 before it)
PASSAGE_THRESHOLD = 0.72
WANTED_PASSAGE = 0.4  # a passage that has what the question asks for (article, date, link…)
WANTED_ALONE = 0.55  # … and answers on its own when no curated topic fits
DOMAIN_GATE = 0.9  # total domain weight of the question's terms
DOMAIN_ANCHOR = 0.6  # at least one clearly ESP/CPTS term (concept or strong word)
DOMAIN_CORE = 0.8  # a core term (ESP, CPTS, ARS, FIR…) tolerates unknown or generic words
NEAR_VARIANT = 0.85  # gate bypass: almost a variant
# gate bypass: no word foreign to the texts, plenty of their vocabulary (« patients précaires »,
# « cas complexe ») and the search's best topic is also the classifier's (docs/qa.md)
AGREE_MASS = 1.1
AGREE_SCORE = 0.35
AGREE_WITH_FOREIGN = (1.5, 0.6)  # (domain mass, score) when words are foreign to the texts…
AGREE_FOREIGN = 2  # … at most this many (« en réunion le soir », « ce qui me tient à cœur »)
MISSING_SHARE = 0.5  # answer lacks this share of the words
MISSING_GAIN = 0.7  # the sentence has this share of them
MISSING_COVER = 0.7  # and this share of the whole question
MISSING_MASS = 7.0  # … and those missing words weigh this much (one light word is not enough)
SENTENCE_ALONE = 0.75  # no topic: one sentence has it all
APPEND_MISSING = True
_SLOPE = 6.0  # logistic steepness: raw 0.6 -> 0.75, 0.8 -> 0.91, 1.0 -> 0.97 (blind-set accuracy)

ARS_CONTACT = (
    "ARS Bretagne, Direction Adjointe des Soins de Proximité et Formations en Santé : "
    "Ronan Derieux, 02.22.06.73.54, ronan.derieux@ars.sante.fr ; secrétariat : "
    "ars-bretagne-secretariat-daspf@ars.sante.fr."
)
ABSTAIN_TEXT = (
    "Les textes sur lesquels je m'appuie (instruction DGOS du 2 décembre 2016, fiche de "
    "synthèse ESP, page d'une ARS et page Ameli sur les CPTS, AMI CPTS de l'ARS Bretagne) ne "
    "répondent pas à cette question, et je préfère ne rien inventer.\n\n"
    "Je peux vous aider sur les ESP et les CPTS (définition, création, missions, financement, "
    "contrats…), vous orienter (« ESP ou CPTS ? ») et vous guider pour remplir la fiche de "
    "l'AMI CPTS Bretagne.\n\n"
    "Pour toute autre demande : " + ARS_CONTACT
)
GREETING_TEXT = (
    "Bonjour ! Je réponds à vos questions sur les équipes de soins primaires (ESP) et les "
    "communautés professionnelles territoriales de santé (CPTS), à partir des textes officiels, "
    "en citant mes sources. Par exemple : « Quelle différence entre une ESP et une CPTS ? », "
    "« Quelles sont les missions socles d'une CPTS ? », « Comment répondre à l'AMI CPTS "
    "Bretagne ? »."
)
EMERGENCY_TEXT = (
    "🚑 S'il s'agit d'une urgence médicale, appelez tout de suite le 15 (SAMU) ou le 112 "
    "(numéro d'urgence européen) ; pour une personne sourde ou malentendante, le 114 par SMS.\n\n"
    "Je ne suis pas un service médical : je réponds seulement aux questions sur l'organisation "
    "des soins (ESP, CPTS, AMI CPTS Bretagne), à partir des textes officiels."
)
MEDICAL_TEXT = (
    "Je ne peux pas donner d'avis médical (diagnostic, traitement, posologie) : adressez-vous à "
    "un médecin ou à un pharmacien ; en cas d'urgence, appelez le 15 (ou le 112).\n\n"
    + ABSTAIN_TEXT
)
CLARIFY_LEAD = "Voici le passage des textes sur lequel s'appuie ma réponse précédente :\n\n"
COMPARISON_LEAD = "Selon le tableau récapitulatif annexé à l'instruction DGOS du 2 décembre 2016"
THANKS_TEXT = (
    "Avec plaisir ! N'hésitez pas si vous avez une autre question sur les ESP ou les CPTS."
)
EMPTY_TEXT = (
    "Je n'ai pas reçu de question. Écrivez-moi votre question sur les ESP ou les CPTS, par "
    "exemple : « Quelle est la différence entre une ESP et une CPTS ? »."
)
NO_WORDS_TEXT = (
    "Je n'ai pas compris votre message : il ne contient pas de mots. Posez-moi votre question "
    "en quelques mots, par exemple : « Comment créer une CPTS ? »."
)
TOO_LONG_TEXT = (
    "Votre message est trop long pour que j'y trouve une question ({n} caractères). Posez-moi "
    "une question courte (moins de {limit} caractères), par exemple : « Quelles sont les "
    "missions d'une CPTS ? »."
)

# thanks or an acknowledgement opening a message that goes on (« Merci. Et… », « D'accord, … »)
_COURTESY_LEAD = re.compile(
    r"^\s*(?:(?:ok(?:ay)?|d'accord|d’accord|tr[eè]s bien|parfait|super|entendu|compris|"
    r"ah|bon|bien)\s*[,.!]?\s*)*(?:merci(?: beaucoup| bien| infiniment)?|je vous remercie"
    r"(?: (?:de|pour) (?:ces|vos|cette|votre|la|les) \w+)?|ok(?:ay)?|d'accord|d’accord|"
    r"tr[eè]s bien|parfait|entendu|compris|je comprends|je vois)\s*[.!,;:]+\s*",
    re.IGNORECASE,
)
_GREETINGS = {"bonjour", "salut", "hello", "coucou", "bonsoir", "hey", "yo", "hi", "re", "allo"}
_THANKS = {"merci", "thanks", "thank", "super", "parfait", "top", "genial", "cool", "ok"}
_POLITE = {
    "beaucoup", "bien", "tres", "vous", "a", "toi", "madame", "monsieur", "bonne", "journee",
    "soiree", "revoir", "bientot", "encore", "infiniment", "pour", "tout", "la", "le", "reponse",
    "ca", "marche", "d", "accord", "daccord", "aurevoir", "the", "you", "bot", "et", "je",
    "comment", "allez", "vas", "va", "cordialement", "okay", "nickel", "au",
}  # fmt: skip
_HELP = re.compile(
    r"^(aide|help|menu|start|que (sais|peux)[ -]?(tu|vous) faire|"
    r"qu ?est[ -]ce que (tu sais|vous savez|tu peux|vous pouvez) faire|qui es[ -]tu|"
    r"qui etes[ -]vous|tu sers a quoi|a quoi (tu sers|servez[ -]vous))\s*\??$"
)
_MONTHS = "janvier|fevrier|mars|avril|mai|juin|juillet|aout|septembre|octobre|novembre|decembre"
# what a question asks for ("quel article", "quelle adresse"…) and how that looks in a text:
# when the chosen answer lacks it, the sentence of the texts that has it is added, verbatim
_WANTS = (
    (re.compile(r"\barticles?\b"), re.compile(r"\b[ldr]\.? ?\d{4}-\d+")),
    (
        re.compile(r"\b(url|lien|liens|telecharger|ou trouver|site internet)\b"),
        re.compile(r"https?://"),
    ),
    (
        re.compile(r"\b(mail|courriel|e-mail|email|adresse electronique)\b"),
        re.compile(r"[\w.-]+@[\w.-]+"),
    ),
    (
        re.compile(r"\b(quand|date|quel jour|quelle annee|en quelle annee)\b"),
        re.compile(rf"\b(\d{{1,2}}(er)? )?({_MONTHS}) \d{{4}}\b"),
    ),
    (
        re.compile(r"\b(frequence|combien de fois|tous les combien|rythme)\b"),
        re.compile(r"\bfois par\b"),
    ),
    (re.compile(r"\b(telephone|numero)\b"), re.compile(r"\b0\d([ .]?\d\d){4}\b")),
    (
        re.compile(r"\b(pourquoi|dans quel but|a quoi bon)\b"),
        re.compile(r"\b(afin (de|d|que)|pour eviter|parce qu|en effet|du fait)\b"),
    ),
)
# questions the texts cannot answer whatever their words: a named person in a role (the texts
# name only four people), how an outside scheme works (glossary entries only expand
# acronyms), a price or a pay without any amount in the answer, national counts, outside
# services or places, a numbered item the texts do not have ("avenant 9"); the role and money
# nouns and the outside entities are lists of knowledge/curated/lexicon.yaml
_PEOPLE = ("derieux", "fevrier", "armanteras", "ricordeau")
# roles a contact person may hold: a named contact answers « qui est le responsable… »
_CONTACT_ROLES = frozenset({"responsable", "chef", "delegue", "deleguee"})
_ASKS_CONTACT = (
    r"(nom|telephone|numero|tel|mail|email|courriel|contact|coordonnees|joindre|appeler)"
)
_HOW_WORKS_Q = re.compile(r"\b(comment (fonctionne|marche)|fonctionnement)\b")
_PAY_Q = re.compile(
    r"\bcombien\b.*\b(touche|paye|payer|rapporte|remunere|remuneration)\b|"
    r"\b(met|mettent|donne|donnent|verse|versent|accorde|accordent|alloue|allouent) "
    r"combien(?! de (temps|jours|semaines|mois)\b)|"
    r"\bquel(le)? est (le|la) (remuneration|paie|paye)\b"
)
_NUMBERED_Q = re.compile(
    r"\b(avenant|article|art|decret|arrete|circulaire|instruction|pacte)(?: territoire sante)? "
    r"(n )?(\d+)\b"
)
# a text of a year the texts never mention (« la loi de 2019 », « la loi Valletoux de 2023 »)
_DATED_TEXT_Q = re.compile(
    r"\b(?:loi|lois|decret|arrete|ordonnance|instruction|circulaire|avenant|accord|convention|"
    r"reforme)\b(?:\s+\w+){0,3}?\s+(?:de |du |en )?(19[5-9]\d|20[0-4]\d)\b"
)
# a year after the last text (December 2021): what happened since, the texts cannot say
_YEAR = re.compile(r"\b(20[2-4]\d)\b")
# « depuis fin 2021 », « après 2021 »: what happened after the texts
_SINCE_YEAR = re.compile(r"\b(depuis|apres) (la )?(fin )?(20[2-4]\d)\b")
# how other structures did it: the texts give rules and a few examples, not others' experience
_OTHERS_DID_Q = re.compile(
    r"\b(les )?autres (cpts|esp|msp|equipes|communautes|territoires)\b.{0,40}"
    r"\b(ont|a|ont ils|ont elles) (fait|procede|reussi|gere|trouve)\b|"
    r"\bcomment (ont fait|font|s y sont pris) les autres\b"
)
LAST_TEXT_YEAR = 2021
# a code article (« l'article L. 6321-1 »): the texts quote a handful
_CODE_ARTICLE_Q = re.compile(r"\b[lrd] ?(\d{4}) (\d+)(?: (\d+))?\b")
# a contact, an address or a phone number asked for a place or a structure the texts never name
# ("le numéro de la CPTS de Brest", "l'adresse de la MSP de Vannes"): only the AMI contact exists
_CONTACT_Q = re.compile(
    r"\b(nom|noms|telephone|numero|tel|mail|email|courriel|contact|contacter|coordonnees|"
    r"joindre|appeler|adresse|horaires|site)\b"
)
# "quel logiciel", "quelle application": the thing asked for is a word the texts never use
_WHICH_Q = re.compile(r"\b(quel(?:le)?s?|quoi comme|koi comme) (\w+)\b")
# « combien de diététiciens… ? »: what is counted (generic nouns and units aside)
_HOW_MANY_Q = re.compile(r"\bcombien (?:de (\w{4,})|([aeiouyh]\w{3,}))\b")  # « d' » is dropped
_RULE_COUNT_Q = re.compile(r"\b(minimum|mini|au moins|maximum|max|faut il|il faut|faut)\b")
_HOW_MANY_FREE = frozenset(
    ["temps", "fois", "personnes", "gens", "monde", "membres", "acteurs", "argent", "euros", "jours",
     "mois", "semaines", "annees", "heures", "minimum", "maximum"]
)  # fmt: skip
# two questions in one message: split on "?" followed by more text, or on "et" / ", et"
# before a question word
_SPLIT_Q = re.compile(
    r"\?\s*(?=\w)|,?\s+et\s+(?=(?:qui|que|quel|quelle|quels|quelles|comment|combien|quand|ou|"
    r"où|pourquoi|est-ce|c'est|qu'|a qui|à qui|avec qui|par qui|faut-il|peut-on|doit-on)\b)",
    re.IGNORECASE,
)
_INTERROGATIVES = frozenset(
    ["qui", "que", "quoi", "quel", "quelle", "quels", "quelles", "lequel", "laquelle", "lesquels",
     "lesquelles", "comment", "combien", "quand", "pourquoi", "koi", "kel", "kelle"]
)  # fmt: skip
_INVERSION = re.compile(
    r"\w-(t-)?(il|elle|on|ils|elles|vous|je|nous|tu)\b|\best-ce\b", re.IGNORECASE
)


def _is_question(part: str) -> bool:
    """The part of a message asks something: it ends with « ? », has a question word or an
    inverted subject (« peut-on », « faut-il »)."""
    return (
        part.rstrip().endswith("?")
        or bool(_INTERROGATIVES.intersection(raw_tokens(part)))
        or bool(_INVERSION.search(part))
    )


# « autre question, rien à voir : … »: the user says the subject changes
_NEW_SUBJECT_CUE = re.compile(
    r"\b(autre question|autre chose|rien a voir|sans rapport|changement de sujet|"
    r"changeons de sujet|nouvelle question|question differente)\b"
)
_SENTENCES = re.compile(r"(?<!\b[Aa]rt\.)(?<!\bM\.)(?<=[.!?…])\s+")  # « art. 51 », « M. Derieux »


def _questions_only(text: str) -> str:
    """The sentences of a message that ask something, without the remarks around them."""
    return " ".join(x for x in _SENTENCES.split(text.strip()) if _is_question(x))


TWO_PART_LIMIT = 900  # characters of the two answers of a two-question message (source lines apart)
TWO_PART_COVERED = 0.9  # a second half this much covered by the first answer adds no block
TWO_PART_MIN = 0.45  # each half's best topic must score at least this
NEAREST_SHOWN = 0.45  # a detail the texts never give: the answer on its subject is shown above this
NEAREST_LEAD = "Les textes ne donnent pas {what}. Ce qu'ils disent de plus proche :"
OUTSIDE_OVERRIDE = 0.6  # an outside entity is tolerated only above this topic score …
OUTSIDE_COVER = 0.7  # … with a core term and this share of the rest covered by the answer
_TIME_NUMBER = r"(\d+|un|une|deux|trois|quatre|six|douze|quinze|vingt)"
_DAYS_TO_YEARS = rf"{_TIME_NUMBER} (jours?|semaines?|mois|ans|annees?)\b"  # « 2 mois »
_DURATION = rf"({_DAYS_TO_YEARS}|{_TIME_NUMBER} (heures?|h)\b|delai|duree|tacite)"
# details a question may ask for that an answer must then give: (asked, given[, how the reply
# names it when missing: « Les textes ne donnent pas <ce montant>. »])
_ASKED_DETAILS = [
    (
        re.compile(rf"\b(?:{a})\b"),
        re.compile(rf"\b(?:{g})"),
        named[0] if named else "cette précision",
    )
    for a, g, *named in (
        (
            r"(un|le|de|des|les) modeles?|exemple rempli|fiche de poste|trame",
            r"(modele|type|trame)",
            "de modèle",
        ),
        (
            r"combien de pages|nombre de pages",
            r"(\d+|deux|trois|quatre|cinq|dix) pages",
            "ce nombre de pages",
        ),
        (r"quorum", r"quorum", "de quorum"),
        # the texts give no postal address, no link beyond the AMI's, no penalty
        (
            r"adresse postale|adresse (exacte|du siege)",
            r"(\d+ (rue|avenue|boulevard|place)|cs \d+)",
            "cette adresse",
        ),
        (
            r"l url|lien (internet|web|exact|direct|de telechargement|hypertexte)|"
            r"(le|un|quel|du) lien (vers|pour (telecharger|acceder|trouver))|"
            r"lien (ne )?(marche|fonctionne)",
            r"(https?|www)",
            "ce lien",
        ),
        (r"penalites?|sanctions?|sanctionne\w*|rembours\w*", r"(penalit|sanction|rembours)"),
        # whether something costs the user: the answer must say it
        (
            r"payante?s?|gratuite?s?|ca coute|faut il payer|faut payer",
            r"(payant|gratuit|€|euros?\b|cout)",
            "ce coût",
        ),
        # « ça représente combien par an ? »: an amount (or a frequency) a year or a month
        (
            r"combien (par|chaque|l) (an|annee|mois)|par (an|mois) (ca fait )?combien",
            r"(€|euros?\b|fois par)",
            "ce montant",
        ),
        # a meeting by video: the texts never say how the meetings are held
        (r"visio|visioconference|en distanciel|a distance|teams|zoom", r"(visio|distan)"),
        (r"(quel|quelle|kel|kelle) (heure|h)", r"\d ?h\b", "ces horaires"),  # « heure » → « h »
        # a phone number, an e-mail or opening hours asked for: the answer must give one
        (
            r"quel (numero|mail|email|courriel|telephone)|numero de (telephone|tel)|"
            r"adresse (mail|email|electronique|courriel)",
            r"(\d\d[ .]?\d\d[ .]?\d\d|@)",
            "ces coordonnées",
        ),
        (
            r"(horaires?|heures? ouverture)( ouverture)? (du|de|de la|des) "
            r"(secretariat|service|bureau|ars|delegation|cpam|caisse)",
            r"\d ?h\b",
            "ces horaires",
        ),
        (
            r"tous les combien|a quelle frequence|quelle frequence|quelle periodicite|"
            r"combien de fois par an",
            r"(fois par an|frequence|tous les|chaque (annee|mois)|"
            r"annuel|mensuel|trimestr|periodi)",
            "cette fréquence",
        ),
        (
            r"(un|une|de|des|les|le) recours (contre|possible|gracieux|contentieux)|procedure de recours|"
            r"voies? de recours|"
            r"(faire|former|deposer|engager|exercer|intenter) (un )?recours|"
            r"reexamen|faire appel",
            r"(recours (contre|possible|gracieux|contentieux)|reexamen|appel\b)",
        ),
        # a share of something (« quelle part de la population… ? »): the answer must give a percentage
        (
            r"quelle part|quel pourcentage|quel taux|combien de pour cent|en pourcentage",
            r"(%|pour ?cent)",
            "cette proportion",
        ),
        # a budget asked for (« quel budget total… ? »): an amount
        (
            r"quel (est le )?budget|"
            r"(budget|enveloppe) (total|totale|global|globale|annuel|annuelle)",
            r"(€|euros?\b)",
            "ce montant",
        ),
        # a ceiling (« dans quelle limite de plafond ? »): an amount
        (r"plafond|plafonne\w*|plafonnee?s?", r"(€|euros?\b|plafon)", "ce plafond"),
        # a number of days or months asked for: the answer must give one (« un délai
        # raisonnable » is no number)
        (r"combien de (jours|semaines|mois|annees|ans)\b", _DAYS_TO_YEARS, "cette durée"),
        # a duration asked for: the answer must give one (« combien de mois » is checked above,
        # more strictly)
        (
            r"(en |au bout de )?combien de temps|"
            r"(dans|en|sous) quels? delais?|quels? (est|sont) (le|les) delais?|"
            r"quelle (est la )?duree|pour quelle duree|(signe|conclu|valable) pour combien",
            _DURATION,
            "cette durée",
        ),
        # the life of a structure or a contract after its creation, which the texts never
        # describe: merging, leaving, renewal, audit, dissolution, a label, a derogation…
        (r"fusion\w*|fusionn\w*", r"fusion"),
        (
            r"(se )?retir(er|e|ent) de|retrait (d|de|du)|quitter (la|le|l|une|un|notre)|"
            r"sortir (de|du) (la |le |l |notre )?(cpts|esp|territoire|contrat|projet|association)|"
            r"preavis",
            r"(retir|retrait|quitt|sorti|preavis)",
        ),
        (
            r"renouvel\w*|reconduction|reconduit\w*|reconduire|(a|arrive a) (l )?echeance",
            r"(renouvel|reconduc|reconduit|echeance)",
        ),
        (r"audit\w*|controle (de|des) (l utilisation|fonds|comptes)", r"(audit|control)"),
        (r"dissolution|dissoudre|dissout\w*", r"(dissol|dissou)"),
        (r"label\w*|certification|certifiee?s?", r"(label|certif)"),
        (r"derogation\w*|deroger", r"derog"),
        (r"attestation|compte rendu|proces verbal", r"(attestation|compte rendu|proces verbal)"),
        (
            r"en une (seule )?fois|en (plusieurs|deux|\d+) (fois|tranches|versements)|par tranches?|"
            r"modalites de versement|quand (est|sont) (il |elle |ils |elles )?verse\w*",
            r"(tranche|versement|verse)",
        ),
        (r"redeposer|redepot|re deposer", r"(redepo|re depo)"),
        (
            r"(adherer|adherente?|membre) (a|de) (deux|2|plusieurs) cpts|"
            r"(deux|2|plusieurs) cpts (differentes|a la fois|en meme temps)",
            r"(deux|plusieurs) cpts (differentes|a la fois|en meme temps)",
        ),
        # how long the whole thing takes, « de A à Z »: the texts give steps, never a total
        (
            r"combien de (temps|mois|annees|ans).{0,40}(de a a z|au total|en tout|en moyenne)|"
            r"(de a a z|au total|en moyenne).{0,40}combien de (temps|mois|annees|ans)",
            r"(au total|en moyenne|de a a z)",
            "de durée totale",
        ),
        # the phone or address of a body the texts give no contact for
        (
            r"(numero|telephone|tel|mail|email|coordonnees|contact|adresse)( \w+){0,2} "
            r"(de |d |du |l |la |les )?(urps|cpam|caisse primaire|ordre|conseil de l ordre|mairie|"
            r"conseil departemental|conseil regional)|"
            r"(urps|cpam)( \w+){0,5} (je|on) (les|la|le|l) (contacte|joins|joint|appelle)",
            r"(urps|cpam|caisse|ordre|mairie|conseil)[^.]{0,60}(\d\d[ .]?\d\d[ .]?\d\d|@)",
        ),
        # whether a delay stops or starts again: the texts give the delay, nothing more
        (
            r"(delai|compteur|deux mois|2 mois)( \w+){0,4} (repart\w*|(est |sont )?(suspendu|"
            r"interrompu|prolonge|proroge)e?s?)|(suspend|interromp|prolong|proroge)\w* (le|ce) delai",
            r"(repart|suspen|interromp|prorog|prolong)",
        ),
        # the CPTS as an employer of care professionals (the texts fund a coordinator only)
        (
            r"(salarier|salarie|embaucher|recruter) (un|une|des|d) ?(medecins?|generalistes?|"
            r"infirmiers?|infirmieres?|kinesitherapeutes?|pharmaciens?|sages? femmes?|"
            r"professionnels? de sante)",
            r"salari",
        ),
        # whether something pays its way: the texts give no business model
        (
            r"viables?|rentables?|rentabilite|equilibre (financier|budgetaire)|"
            r"l equilibrer|equilibrer (le|son|leur|notre) budget",
            r"(viab|rentab|modele economique|equilibr)",
        ),
        # lending a hospital's or a practice's staff to the CPTS
        (
            r"(mettre|mise|mis|mettions) a (la )?disposition (un|une|d un|d une|des|de|du) "
            r"(agent|salarie|personnel|praticien|medecin|infirmier|infirmiere|secretaire)|"
            r"(agent|salarie|personnel|praticien|medecin|infirmiere?|secretaire)( \w+){0,4} "
            r"(mis|mise|mettre) a (la )?disposition",
            r"mise a disposition (d un|de personnel|d agent)",
        ),
        # personal liability, conflicts of interest, donations: law the texts never touch
        (
            r"responsabilite (personnelle|civile|penale)|engager (ma|sa|leur|notre) responsabilite",
            r"responsabilite (personnelle|civile|penale)",
        ),
        (r"conflits? d interets?", r"conflit"),
        (
            r"dons? (defiscalise|de patients|d entreprises)|defiscalis\w*|mecenat|rescrit",
            r"(don|fiscal)",
        ),
    )
]
# another region than Bretagne: the AMI is Breton, the ARS page's region is not named
_OTHER_REGION_Q = re.compile(
    r"\b(ars|en|dans|pour|a) (de |d |du |la |l )?(occitanie|normandie|auvergne|pays de (la )?loire|"
    r"hauts de france|grand est|ile de france|nouvelle aquitaine|provence|paca|corse|"
    r"centre val de loire|bourgogne|franche comte|rhone alpes|guadeloupe|martinique|guyane|"
    r"mayotte)\b|\b(a|ars de|ile de) la reunion\b"
)
# who holds a role or does something, asked of a named place: the texts name no local actor
_WHO_DOES_Q = re.compile(
    r"\bqui (est|sont|fait|font|organise|organisent|assure|assurent|gere|gerent|s occupe|"
    r"s occupent|coordonne|anime|porte|pilote)\b|\b(c est|ce sont) qui\b"
)
# a task or a personal judgement asked of the bot: it answers from the texts, nothing more
_TASK_Q = re.compile(
    r"\b(pouvez vous|vous pouvez|tu peux|peux tu|pourriez vous|vous pourriez)\b.{0,20}"
    r"\b(relire|ecrire|rediger|corriger|prendre (un |le )?(rendez vous|rdv)|preparer|trouver un nom|"
    r"me trouver|verifier notre|valider notre)\b|"
    r"\b(redige|ecris|corrige|relis) (moi|nous)\b|"
    r"\b(ca vaut le coup pour moi|est ce raisonnable|des chances (d )?etre "
    r"(accepte|retenu|valide|finance)e?s?|vous avez des idees)\b|"
    # a personal opinion or recommendation of the bot's
    r"\b(vous pensez que|tu penses que|pensez vous que|penses tu que|a votre avis|a ton avis|"
    r"(vous|tu) (me|nous) (conseillez|conseilles|recommandez|recommandes)|"
    r"(franchement|honnetement|sincerement)\b.{0,20}\bvaut (le coup|la peine)|"
    r"vaut (vraiment|reellement) (le coup|la peine)|"
    r"(je|on) (choisis|choisit|prends|prend) (laquelle|lequel|quoi)|"
    r"(laquelle|lequel) (je|on) (choisis|choisit|prends|prend)|"
    r"(tu|vous) (le |l |y )?(commencerais|commenceriez|ferais|feriez|choisirais|choisiriez)|"
    r"a (ta|votre) place|(toi|vous) a (ma|notre) place)\b"
)
_AMOUNT = re.compile(r"€|\beuros?\b")
# a deadline or a precise date asked for: only an answer holding a day and month gives it
_DEADLINE_Q = re.compile(
    r"\b(date limite|dates limites|deadline|jusqu a quand|jusqu a quelle date|avant quelle date|"
    r"a quelle date|quelle date|date butoir|cloture|clos)\b"
)
# which body a named place belongs to, or how it is classed: local facts the texts never give
_WHICH_OF_PLACE_Q = re.compile(
    r"\b(depend|dependent|rattache|rattachee|rattaches|rattachees) (de|a|d) "
    r"(quel|quelle|quels|quelles)\b|"
    r"\b(classe|classee|classes|classees|zone|zonee) (en )?(zone|zones|zonage)?\b.{0,20}"
    r"\b(fragile|fragiles|sous dense|sous denses|tension|ou pas|ou non)\b"
)
_UNTIL_WHEN_Q = re.compile(r"\bjusqu a quand\b")
_DAY_DATE = re.compile(rf"\b\d{{1,2}}(er)? ({_MONTHS})\b|\b\d{{1,2}}/\d{{1,2}}(/\d{{2,4}})?\b")
# when something happens somewhere the texts never name (« la prochaine réunion à Brest »)
_WHEN_Q = re.compile(r"\b(quand(?! meme\b)|prochaine?s?)\b")  # « quand même » is no « when »
# « dans notre canton », « à l'Ehpad de notre commune », « ici »: somewhere of the asker's own,
# which the texts cannot know (« notre territoire » is the texts' word for a project's area)
_LOCAL = re.compile(
    r"\b((notre|nos|mon|ma|mes) (canton|commune|ville|village|secteur|departement|quartier|bourg|"
    r"agglo|agglomeration|comcom|intercommunalite|communaute de communes|coin)|chez nous|ici|"
    r"du coin|dans le coin|par chez nous|"
    # a département by its number (« le SAS du 29 »)
    r"(du|dans le|en|le) (22|29|35|56))\b"
)
# the inner bodies of the CPTS's association (bureau, board, colleges, general meeting…): the
# texts require an association loi 1901 for the ACI and never describe its governance
_BODIES_Q = re.compile(
    r"\b(bureau (de|d) (l )?(association|la cpts|une cpts|cpts)|au bureau|du bureau|"
    r"conseil d administration|colleges?|sieger|siegent|tresorier\w*|"
    r"droit de vote|voix deliberative|"
    r"(elue?|devenir) president\w* (de|d) (la|l|une) (cpts|association))\b"
)
# which software or app (the texts speak of a secure messaging or a shared information system,
# never of a product, a compatibility or an app; « faut-il un logiciel ? » asks what they require)
_SOFTWARE_Q = re.compile(
    r"\b((quel|quelle|quels|lequel|laquelle) (\w+ )?(logiciels?|applications?)|"
    r"logiciels? (d )?(officine|metier|de cabinet|de la cpts)|(notre|nos|mon|mes) logiciels?|"
    r"lgo|appli|applis|"
    r"applications? mobiles?|compatibles?|interoperab\w*)\b"
)
# what the schemes have achieved since, or which was first: the texts only set them up
_RESULTS_Q = re.compile(
    r"\b((quels|quel) (en )?(ont ete|etaient|furent) les (resultats|effets)|derniers chiffres|"
    r"il existe des chiffres|(ont|a) (elles |ils |t elle |t il )?(fait|permis de) "
    r"(baisser|diminuer|reduire)|"
    r"(ont|a) (elles |ils |t elle |t il )?(vraiment |reellement |deja )?(reduit|diminue|resolu|"
    r"fait reculer)|"
    # who answered the call, how many answers came: after the texts
    r"(qui|quels?|quelles?|combien)( \w+){0,5} (y )?ont (deja )?(repondu|candidate|postule)|"
    r"reponses (recues|obtenues|reçues)|"
    r"(la|le) (toute )?(premiere?) (cpts|esp|msp) (creee?|de bretagne|en bretagne|bretonne))\b"
)
# what a later plan or call will say
_NEXT_PLAN_Q = re.compile(
    r"\b(prochain|prochaine|futur|future) "
    r"(projet regional|prs|avenant|ami|appel|acte|convention|schema|plan|pacte)\b"
)
# whether something of the texts' time still holds today, for a person or the call
_STILL_Q = re.compile(
    r"\b((toujours|encore) (en poste|a ce poste|ce poste|en fonction)|"
    r"occupe t (il|elle) toujours|"
    # whether the 2021 call is still open: the texts cannot say
    r"(toujours|encore) (ouvert|ouverte|d actualite|valable)|"
    r"(peut|pourrait|peux) (on |je )?(toujours|encore) (repondre|candidater|postuler|deposer)|"
    r"est (fini|termine|clos|close|ferme|fermee)\b.{0,30}\b(toujours|encore)|"
    # whether a text still applies: the texts cannot say what replaced them
    r"abroge\w*|(toujours|encore) en vigueur|texte plus recent|caduque?s?|obsoletes?|"
    r"(loi|instruction|article|decret|texte)s?( \w+){0,4} (ete )?(modifiee?s?|amendee?s?|changee?s?|"
    r"revisee?s?) depuis)\b"
)
# who someone is there, or how many there are (« à qui s'adresser pour monter une CPTS chez
# nous ? » asks the texts' first contact, and is answered)
_LOCAL_ASK = re.compile(
    r"\b(qui (les |l |le |la )?(est|sont|organise|gere|s occupe)|(est|sont) qui|"
    r"combien (sont|y en a|il y en a)|(il|elle|ils|elles) (l )?(a|ont) (fait|ete fait)|"
    r"(a|ont) (ouvert|ferme|demarre|commence) (quand|depuis))\b"
)
# which structure covers a place (« quelle CPTS couvre ma commune ? »)
_WHICH_COVERS_Q = re.compile(
    r"\bquel(le)?s? (cpts|esp|msp)\b.{0,20}\b(couvr\w*|dessert|desservent)\b"
)
# « y a-t-il déjà une CPTS à Pontivy ? », « la CPTS du pays de Vannes existe déjà ? »: whether a
# structure exists in a commune; the texts name no local ESP or CPTS. « Deux CPTS peuvent-elles
# exister sur le même secteur ? » asks the rule, not the fact; « on a déjà une MSP à Rostrenen »
# tells the user's situation
_EXISTS_Q = re.compile(
    r"\b(il y a|y a t il|y a|existe t il|existe)( deja)? (une|un|des) (cpts|esp|msp)\b|"
    r"\b(cpts|esp|msp)\b.{0,40}\b(existe|existent|a deja|ont deja)\b|"
    + _WHICH_COVERS_Q.pattern
    + r"|"
    r"\b(il y en a|y en a t il|y en a) (une|un)( deja)?\b"  # « et sur le Goëlo, il y en a une ? »
)
# taxes and accounting: the texts never deal with them
_TAX_Q = re.compile(
    r"\b(fiscal\w*|impots?|imposable\w*|tva|comptab\w*|urssaf|cotisations? sociales?|bnc|"
    r"frais (pro|professionnels?|reels)|deductible\w*|dedui\w*\b(?! que\b))\b"
)
_ARTICLE_GIVEN = re.compile(r"\barticles? \d+\b")
_LAW_Q = re.compile(r"\b(lmss|loi)\b(?!.*\b(code|csp)\b)")
# « combien de temps » asks a duration, not a count
_COUNT_Q = re.compile(r"\b(combien(?! de (temps|jours|mois|semaines|annees|heures)\b)|nombre)\b")
_NUMBER_WORD = re.compile(
    r"\d[\d  ]*|deux|trois|quatre|cinq|six|sept|huit|neuf|dix|douze|quinze|vingt|cent|mille"
)
# a figure of today asked for: the texts' figures are those of 2021
_CURRENT_Q = re.compile(
    r"\b(aujourd hui|actuellement|a ce jour|a l heure actuelle|en ce moment|actualisee?s?|"
    r"(a jour|plus recents?|derniers?) (chiffres?|nombres?|donnees|statistiques))\b"
)
# « le pays de Quimper » is a local territory, not the country
_NATIONAL_COUNT_Q = re.compile(
    r"\b(combien|nombre)\b.*\b(france|national|nationale|pays(?! d[eu']? ?\w)|europe)\b|"
    # a health statistic of the region: the texts count projects, not patients or doctors
    r"\bcombien de (patients|habitants|personnes|medecins|generalistes|francais|bretons)\b"
    r".*\b(en|de la|dans la|dans le) (bretagne|region|departement)\b|"
    # the names of the projects the AMI only counts
    r"\b(quels sont les|noms? (des|de ces)|liste (des|de ces)) (\d+|dix|cinq) (territoires?|projets?|cpts)\b"
)
_SENTENCE_END = re.compile(r"(?<=[.;!?])\s+(?=[A-ZÀ-Ý«(])")
_FORMAT_REQUEST = re.compile(
    r"\b(en|a|avec) (deux|2|trois|3|quatre|4|quelques|peu de) (lignes?|mots?|phrases?)\b|"
    r"\b(svp|stp|s'il (vous|te) pla[iî]t|vite fait|rapidement|simplement)\b",
    re.IGNORECASE,
)
_HTML_TAG = re.compile(r"<[^>]{0,200}>")
_MD_CHARS = re.compile(r"[*_`#>|~\[\]]+")


@dataclass(frozen=True)
class SourceRef:
    """A cited source: which text, which section, and the verbatim quote."""

    id: str  # one of the five file stems
    title: str
    section: str  # section path
    quote: str  # verbatim from the source text (may use "…" gaps)
    passage_id: str


@dataclass(frozen=True)
class QAAnswer:
    """One reply of the question-answering service."""

    text: str  # the reply as shown to the user (plain text, no HTML)
    sources: list[SourceRef]
    abstained: bool
    score: float  # calibrated confidence 0..1
    kind: str  # "answer", "abstain", "greeting", "thanks", "invalid"
    more_key: str | None = None  # key for the "En savoir plus" button, or None
    related: list[tuple[str, str]] = field(default_factory=list)  # (label, key), up to 3


def _confidence(raw: float, threshold: float) -> float:
    return round(1.0 / (1.0 + math.exp(-_SLOPE * (raw - threshold))), 3)


class QAService:
    """Answers questions from the knowledge base; load once, then call `answer`."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self.index = Index(kb)
        lex = kb.lexicon

        def words(key: str) -> str:
            return "|".join(sorted({re.escape(w) for w in lex.get(key) or []}, key=len))

        role = f"({words('role_nouns')})"
        self._person_q = re.compile(
            rf"\bqui (en )?(est|sont|etait|sera) (le|la|les|l|un|une) (\w+ )?{role}\b|"
            # « c'est qui le président ? » (the elided « c » is dropped)
            rf"\b(est|sont) qui (le|la|les|l|un|une) (\w+ )?{role}\b|"
            rf"\bqui (preside|dirige|presidera)\b|\bquel(le)? est (le|la) {role}\b|"
            rf"\b{_ASKS_CONTACT}\b.*\b{role}s?\b|\b{role}s?\b.*\b{_ASKS_CONTACT}\b"
        )
        self._roles = frozenset(lex.get("role_nouns") or [])
        self._money_q = re.compile(rf"\b({words('money_nouns')})\b")
        outside = sorted(
            {" ".join(raw_tokens(w)) for w in lex.get("outside_entities") or []}, key=len
        )
        self._outside_q = re.compile(r"\b(" + "|".join(re.escape(w) for w in outside) + r")\b")
        self._generic = frozenset(lex.get("generic_terms") or [])
        self._corpus = " ".join(scorer_normalize(d.plain) for d in kb.documents.values())
        self._places = _commune_names(self.index.analyzer.grounded)
        vectors = self.index.vectors
        self._common: frozenset[str] = vectors.common if vectors is not None else frozenset()
        # … nor is a form of a word the texts use (« à valider », the texts say « validé »)
        self._grounded_stems = frozenset(stem(w) for w in self.index.analyzer.grounded)

    @classmethod
    def load(cls, knowledge_dir: Path | None = None, use_cache: bool = True) -> QAService:
        """Load knowledge/ and build the index (cached on disk, keyed by a content hash)."""
        root = Path(knowledge_dir) if knowledge_dir is not None else DEFAULT_KNOWLEDGE_DIR
        if not use_cache:
            return cls(load_knowledge(root))
        key = _fingerprint(root)
        for path in _cache_paths(root, key):
            try:
                with path.open("rb") as fh:
                    service = pickle.load(fh)
                if isinstance(service, cls):
                    return service
            except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
                continue
        service = cls(load_knowledge(root))
        for path in _cache_paths(root, key):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                with tmp.open("wb") as fh:
                    pickle.dump(service, fh, protocol=pickle.HIGHEST_PROTOCOL)
                tmp.replace(path)
                for old in path.parent.glob("qa-index-*.pickle"):
                    if old != path:
                        old.unlink(missing_ok=True)
                break
            except OSError:
                continue
        return service

    # --- public API -------------------------------------------------------------------------

    def answer(self, question: str) -> QAAnswer:
        if not isinstance(question, str):
            question = "" if question is None else str(question)
        text = clean_control(question)
        if not text.strip():
            return QAAnswer(EMPTY_TEXT, [], True, 0.0, "invalid")
        if len(text) > MAX_QUESTION_CHARS:
            msg = TOO_LONG_TEXT.format(
                n=f"{len(text):,}".replace(",", " "), limit=MAX_QUESTION_CHARS
            )
            return QAAnswer(msg, [], True, 0.0, "invalid")
        text = _MD_CHARS.sub(" ", _HTML_TAG.sub(" ", text))
        text = _FORMAT_REQUEST.sub(" ", text)  # « en 2 lignes svp »: how, not what, to answer
        tokens = raw_tokens(text)
        if not tokens:
            return QAAnswer(NO_WORDS_TEXT, [], True, 0.0, "invalid")
        social = self._social(tokens)
        if social is not None:
            return social
        if is_emergency(text):
            return QAAnswer(EMERGENCY_TEXT, [], True, 0.0, "emergency")
        if is_medical_advice(text):
            return QAAnswer(MEDICAL_TEXT, [], True, 0.0, "abstain")
        compared = self._comparison(text)
        if compared is not None:
            return compared
        analysis = self.index.analyze(text)
        reply = self._decide(analysis)
        if reply.abstained and reply.kind == "abstain":
            # « … des tonnes d'indicateurs ?? j'ai déjà assez de paperasse !! »: the remarks
            # around the question dilute it; read the question sentences alone
            asked = _questions_only(text)
            if asked and asked != text:
                retry = self._decide(self.index.analyze(asked))
                # a remark on what came after the texts (« … une proposition de loi en 2023. »)
                later = any(int(y) > LAST_TEXT_YEAR for y in _YEAR.findall(" ".join(tokens)))
                if not retry.abstained and not later:
                    return retry
        if not reply.abstained and _SPLIT_Q.search(text):
            return self._two_part(text) or reply
        return reply

    def reply(self, question: str, context: QAContext | None = None) -> tuple[QAAnswer, QAContext]:
        """Answer a question in a conversation: a follow-up (« et pour une ESP ? »,
        « et combien ? », « c'est-à-dire ? ») is read with the previous turn; returns the
        answer and the conversation's new context (a new subject resets it)."""
        ctx = context or QAContext()
        text = clean_control(question if isinstance(question, str) else str(question or ""))
        if not ctx.is_empty:
            # « Merci. Et ensuite ? », « Je vous remercie de ces précisions. Sont-elles
            # obligatoires ? »: the thanks open the follow-up, they are not part of it
            rest = _COURTESY_LEAD.sub("", text, count=1)
            if rest.strip(" ?!.") and rest != text:
                text = rest
        now = shape(text)
        if now.is_clarification and not ctx.is_empty:
            more = self.more(ctx.more_key) if ctx.more_key else None
            if more is not None:
                return replace(more, text=CLARIFY_LEAD + more.text), ctx
        # the message read once, alone, for every follow-up decision below
        own = self.index.analyze(text) if not ctx.is_empty else None
        new_subject = own is not None and (
            self._is_new_subject(own) or bool(_NEW_SUBJECT_CUE.search(" ".join(own.tokens)))
        )
        completed = complete(text, now, ctx) if not ctx.is_empty else None
        if completed and new_subject:
            completed = None  # « recette du far breton »: not a follow-up of the texts' subject
        used = text
        answer = self.answer(text)
        if completed and self._names_elsewhere(text):
            # « et en Normandie ? », « et avec Doctolib ? »: the follow-up asks about an outside
            # body or region the texts never deal with
            return self._abstain(0.0, TOPIC_THRESHOLD), QAContext(turns=ctx.turns + 1)
        if completed and answer.kind not in {"invalid", "emergency", "greeting", "thanks"}:
            followed = self.answer(completed)
            # « et une ESP ? », « en combien de temps ? »: nothing to stand on alone; a longer
            # follow-up (« et la prévention, on choisit les thèmes ? ») stands alone when it can
            strong = now.leans_back and len(_content_words(now.tokens)) <= FOLLOW_CONTENT
            weak_alone = answer.abstained or answer.score < FOLLOW_KEEP
            if not followed.abstained and (
                strong
                or weak_alone
                or now.refers_back
                or self._is_about_other_objects(answer, now, ctx)
            ):
                answer, used = followed, completed
            elif followed.kind == "abstain" and weak_alone:
                # read with the conversation, it asks what the texts never give (« ok mais ça
                # fait combien par an ? » after the ACI): a weak answer alone would invent
                answer = followed
        elif (
            not ctx.is_empty
            and not new_subject
            and (
                (answer.abstained and answer.kind == "abstain")
                or (not answer.abstained and self._is_about_other_objects(answer, now, ctx))
            )
        ):
            # a longer message that nothing answers alone, in a conversation: read it with the
            # previous question (« et ces indicateurs, c'est qui qui les décide ? »)
            forced = complete(text, now, ctx, force=True)
            if forced:
                followed = self.answer(forced)
                if not followed.abstained:
                    answer, used = followed, forced
        if own is not None and answer.kind in {"answer", "abstain"} and not new_subject:
            # a message that alone matches no answer well (« dans la case calendrier on met
            # quoi ? ») is read after the whole previous question, when that reading matches
            # better
            alone_hits = self.index.search_topics(own, limit=1)
            alone_best = alone_hits[0].score if alone_hits else 0.0
            if alone_best < FOLLOW_WEAK_MATCH:
                joined = f"{ctx.question} {text}"
                joined_hits = self.index.search_topics(self.index.analyze(joined), limit=1)
                if joined_hits and joined_hits[0].score > max(alone_best, FOLLOW_JOINED_MATCH):
                    reread = self.answer(joined)
                    if not reread.abstained:
                        answer, used = reread, joined
        if answer.kind in {"greeting", "thanks", "invalid"}:
            return answer, ctx  # small talk keeps the subject
        if answer.abstained and not answer.sources:
            return answer, QAContext(turns=ctx.turns + 1)
        # an answer, or the nearest answer to a detail the texts never give: the subject holds
        understood = shape(used)
        topic = None
        if answer.more_key and answer.more_key.startswith("more:t:"):
            topic = answer.more_key[len("more:t:") :]
        new = QAContext(
            question=used,
            objects=sorted(understood.objects),
            dimensions=sorted(understood.dimensions),
            topic=topic,
            more_key=answer.more_key,
            turns=ctx.turns + 1,
        )
        return answer, new

    def _is_about_other_objects(self, answer: QAAnswer, now: QuestionShape, ctx: QAContext) -> bool:
        """A follow-up that names no object, answered alone by a topic about other objects
        than the conversation's (an ESP answer while the talk is about a CPTS)."""
        key = (answer.more_key or "").removeprefix("more:t:")
        if now.objects or not ctx.objects or key not in self.index._topic_pos:
            return False
        entities = self.index.topic_entities[self.index._topic_pos[key]]
        talked = {"_" + o.lower() for o in ctx.objects}
        return bool(entities) and not entities & talked

    def _names_elsewhere(self, text: str) -> bool:
        """The message names an outside body the texts never deal with (another region, a
        service outside the ESP / CPTS schemes). A commune is not enough: « et à Quimper ? »
        often still asks what the texts say (measured: 2 follow-ups lost on fresh personas)."""
        return bool(self._outside_q.search(" ".join(raw_tokens(text))))

    def _is_new_subject(self, a: Analysis) -> bool:
        """Words of another field (« recette », « impôts ») or several words the texts never
        use: the message changes the subject, it does not follow up."""
        off = any(t in self.index.analyzer.off_domain for t in a.terms)
        return off or len([w for w in a.unknown if len(w) >= 4]) >= 2

    def _comparison(self, text: str) -> QAAnswer | None:
        """« ESP ou CPTS : quelle différence de territoire ? » — the row of the annex's table
        for the dimension asked, ESP and CPTS side by side, with its source."""
        now = shape(text)
        if "difference" not in now.dimensions or not {"ESP", "CPTS"} <= now.objects:
            return None
        joined = " ".join(now.tokens)
        wanted = [crit for pat, crit in _ROW_WORDS if pat.search(joined)]
        wanted += [_ROW_FOR_DIMENSION[d] for d in sorted(now.dimensions) if d in _ROW_FOR_DIMENSION]
        rows: list[ComparisonRow] = []
        for crit in dict.fromkeys(wanted):
            row = next((r for r in self.kb.comparison if r.criterion == crit), None)
            if row is not None:
                rows.append(row)
        if not rows or len(rows) > 2:
            return None
        lines = [f"{COMPARISON_LEAD} :"]
        refs: list[SourceRef] = []
        for row in rows:
            lines.append(f"• {row.criterion} — ESP : {row.esp}. CPTS : {row.cpts}.")
            refs += [self._ref(src) for src in row.sources if src.passage_id in self.kb.passages]
        body = "\n".join(lines)
        line = self._source_line([(r.id, r.section) for r in refs])
        related = [
            (self.kb.topics[k].label, f"topic:{k}")
            for k in ("esp-cpts-difference",)
            if k in self.kb.topics
        ]
        more = f"more:p:{refs[0].passage_id}" if refs else None
        return QAAnswer(f"{body}\n\n{line}", refs, False, 0.9, "answer", more, related)

    def more(self, key: str) -> QAAnswer | None:
        """The full passage(s) behind an answer ("En savoir plus")."""
        if not key or not key.startswith("more:"):
            return None
        kind, _, ident = key[5:].partition(":")
        if kind == "t":
            topic = self.kb.topics.get(ident)
            if topic is None:
                return None
            pids = list(dict.fromkeys(s.passage_id for s in topic.sources))
        elif kind == "p":
            pids = [ident]
        else:
            return None
        passages = [p for p in (self.kb.passages.get(i) for i in pids) if p is not None]
        if not passages:
            return None
        # the whole section each passage belongs to (lead sentence and its list items),
        # verbatim, in the order of the text; sections already shown are not repeated
        blocks: list[str] = []
        seen: set[str] = set()
        used = 0
        for p in passages:
            section_key = p.id.rsplit(".", 1)[0]
            if section_key in seen:
                continue
            seen.add(section_key)
            members = [
                x
                for x in self.kb.passages.values()
                if x.doc_id == p.doc_id and x.id.rsplit(".", 1)[0] == section_key and not x.hidden
            ] or [p]
            doc = self.kb.documents[p.doc_id]
            head = f"{doc.short_title}" + (f" — {p.section}" if p.section else "")
            lines: list[str] = []
            for x in members:
                nested = x.raw[:1].isspace() and x.raw.lstrip().startswith("-")
                bullet = "   – " if nested and x.context else "• " if x.context else ""
                lines.append(bullet + x.text)
            body = "\n".join(lines)
            room = MORE_LIMIT - used - len(head) - 8
            if room < 200:
                break
            if len(body) > room:
                body = _short_quote(body.replace("\n", " \n "), room).replace(" \n ", "\n")
            block = f"{head} :\n« {body} »"
            blocks.append(block)
            used += len(block) + 2
        sources = [self._ref_for_passage(p) for p in passages]
        return QAAnswer("\n\n".join(blocks), sources, False, 1.0, "answer", None, [])

    def topic(self, key: str) -> QAAnswer | None:
        """The curated answer for a related-topic key ("topic:<id>")."""
        ident = key[6:] if key and key.startswith("topic:") else key
        topic = self.kb.topics.get(ident or "")
        if topic is None:
            return None
        return self._topic_answer(topic, 1.0, [])

    def passage(self, passage_id: str) -> Passage | None:
        return self.kb.passages.get(passage_id)

    def topics(self) -> list[Topic]:
        return list(self.kb.topics.values())

    # --- internals --------------------------------------------------------------------------

    def _social(self, tokens: list[str]) -> QAAnswer | None:
        joined = " ".join(tokens)
        if _HELP.match(joined):
            return QAAnswer(GREETING_TEXT, [], True, 0.0, "greeting")
        words = set(tokens)
        if not words <= (_GREETINGS | _THANKS | _POLITE):
            return None
        if words & _THANKS - {"ok"} or ("au" in words and "revoir" in words) or "aurevoir" in words:
            return QAAnswer(THANKS_TEXT, [], True, 0.0, "thanks")
        if words & _GREETINGS:
            return QAAnswer(GREETING_TEXT, [], True, 0.0, "greeting")
        if "ok" in words:
            return QAAnswer(THANKS_TEXT, [], True, 0.0, "thanks")
        return None

    def _abstain(self, raw: float, threshold: float) -> QAAnswer:
        return QAAnswer(ABSTAIN_TEXT, [], True, min(_confidence(raw, threshold), 0.49), "abstain")

    @staticmethod
    def in_domain(a: Analysis) -> bool:
        """The domain gate: enough ESP/CPTS vocabulary once generic words are set aside."""
        if not a.terms or a.anchor < DOMAIN_ANCHOR:
            return False
        if a.anchor < DOMAIN_CORE and a.foreign:
            return False  # "association sportive", "contrat de travail", "crise d'angoisse"
        return a.domain_mass >= DOMAIN_GATE - 1e-9 or len(a.terms) <= 2

    def _decide(self, a: Analysis) -> QAAnswer:
        if not self.in_domain(a):
            # a question that is almost one of a topic's variants, with no word foreign to
            # the texts, is in the domain even without an ESP/CPTS term ("des libéraux seuls")
            hits = (
                self.index.search_topics(a, limit=1)
                if a.terms and a.foreign <= AGREE_FOREIGN
                else []
            )
            near = bool(hits) and not a.foreign and hits[0].score >= NEAR_VARIANT
            # words foreign to the texts (« le soir », « mon mémoire ») are tolerated with more of
            # their vocabulary and a closer match
            mass, score = (AGREE_MASS, AGREE_SCORE) if not a.foreign else AGREE_WITH_FOREIGN
            agreed = (
                bool(hits)
                and a.domain_mass >= mass
                and hits[0].score >= score
                and self.index.classifier_choice(a) == hits[0].key
            )
            if not (near or agreed):
                return self._abstain(0.0, TOPIC_THRESHOLD)
        hits = self.index.search_topics(a, limit=6)
        if hits and hits[0].score >= TOPIC_THRESHOLD:
            best = hits[0]
            topic = self.kb.topics[best.key]
            others = [h for h in hits[1:] if h.score >= TOPIC_THRESHOLD * 0.8]
            if self._asks_elsewhere(a, topic):
                return self._abstain(best.score, TOPIC_THRESHOLD * 2)
            missing = self._missing_detail(a, topic)
            if missing:
                if best.score < NEAREST_SHOWN:
                    return self._abstain(best.score, TOPIC_THRESHOLD * 2)
                return self._nearest_answer(topic, missing, best.score, others)
            extra = self._wanted_sentence(a, topic) or (
                self._missing_sentence(a, topic) if APPEND_MISSING else None
            )
            return self._topic_answer(
                topic, _confidence(best.score, TOPIC_THRESHOLD), others, extra=extra
            )
        phits = self.index.search_passages(a, limit=3)
        if phits and phits[0].score >= PASSAGE_THRESHOLD:
            return self._passage_answer(phits[0], hits)
        extra = self._wanted_sentence(a, None)
        if extra is not None and extra[2] >= WANTED_ALONE:
            return self._sentence_answer(extra, hits)
        extra = self._missing_sentence(a, None)
        if extra is not None and not self._unanswerable(a, None, extra[1]):
            return self._sentence_answer(extra, hits)
        raw = max(hits[0].score if hits else 0.0, 0.0)
        return self._abstain(raw, TOPIC_THRESHOLD)

    def _two_part(self, text: str) -> QAAnswer | None:
        """Two questions in one message (« ESP ou CPTS, et qui finance ? »): when each half,
        completed with the objects (ESP, CPTS…) named only in the other, has its own curated
        answer, both are given (shortened to fit) with both sources."""
        raw_parts = [x for x in _SPLIT_Q.split(text) if x and x.strip(" ,;?")]
        parts = [x.strip(" ,;?") for x in raw_parts]
        parts = [x for x in parts if len(raw_tokens(x)) >= 1]
        if len(parts) != 2 or parts[0].lower() in _SPLIT_WORDS:
            return None
        if not _is_question(raw_parts[-1]):
            return None  # « …? personne n'est d'accord ici »: a remark, not a second question
        analyses = [self.index.analyze(x) for x in parts]
        objects = [{t for t in a.terms if t in _OBJECTS} for a in analyses]
        for i in (0, 1):
            if not objects[i] and objects[1 - i]:
                extra = " ".join(t.lstrip("_") for t in sorted(objects[1 - i]))
                analyses[i] = self.index.analyze(f"{parts[i]} {extra}")
        picked: list[tuple[Topic, float]] = []
        for a in analyses:
            if not self.in_domain(a):
                return None
            hits = self.index.search_topics(a, limit=3)
            if picked:  # the second half's best topic other than the first half's
                hits = [
                    h for h in hits if h.key != picked[0][0].id and h.score >= 0.9 * hits[0].score
                ]
            if not hits or hits[0].score < TWO_PART_MIN:
                return None
            topic = self.kb.topics[hits[0].key]
            if self._unanswerable(a, topic):
                return None
            picked.append((topic, hits[0].score))
        # « l'outil Rézone est-il accessible, et quelles données y trouve-t-on ? »: the first
        # answer already says what the second half asks; a second block would repeat it (the
        # other way round was measured: the second answer drops the first half's own facts)
        asked = self.index.distinct(analyses[1])
        first, first_score = picked[0]
        if asked and self.index.answer_coverage(analyses[1], first.id, asked) >= TWO_PART_COVERED:
            return self._topic_answer(first, _confidence(first_score, TOPIC_THRESHOLD), [])
        answers = [self._topic_answer(t, _confidence(sc, TOPIC_THRESHOLD), []) for t, sc in picked]
        lines = [r.text.rsplit("\n\n", 1)[1] for r in answers]
        bodies = [t.answer for t, _ in picked]
        room = TWO_PART_LIMIT
        if sum(len(b) for b in bodies) > room:
            share = max(room // 2, 200)
            short = [b for b in bodies if len(b) <= share]
            spare = share * 2 - sum(len(b) for b in short)
            bodies = [b if len(b) <= share or short else _cut_sentence(b, share) for b in bodies]
            if short:
                bodies = [b if len(b) <= share else _cut_sentence(b, spare) for b in bodies]
        text_out = "\n\n".join(f"{b}\n{ln}" for b, ln in zip(bodies, lines, strict=True))
        sources = answers[0].sources + answers[1].sources
        related = [r for r in answers[0].related + answers[1].related][:3]
        return QAAnswer(
            text_out, sources, False, min(answers[0].score, answers[1].score), "answer",
            answers[0].more_key, related,
        )  # fmt: skip

    def _missing_sentence(
        self, a: Analysis, topic: Topic | None
    ) -> tuple[Passage, str, float] | None:
        """When the chosen answer lacks a good part of the question's distinctive words and
        one sentence of the texts has them: that sentence (verbatim), its passage and score."""
        d = self.index.distinct(a)
        total = sum(d.values())
        if not total:
            return None
        if topic is None:  # no curated answer: the sentence must carry the question alone
            missing, miss, need = d, total, SENTENCE_ALONE
        else:
            have = self.index.topic_answer_terms[self.index._topic_pos[topic.id]]
            missing = {t: w for t, w in d.items() if t not in have}
            miss = sum(missing.values())
            need = MISSING_COVER
            if miss < MISSING_SHARE * total or miss < MISSING_MASS:
                return None
        quotes = [scorer_plain(s.quote) for s in topic.sources] if topic is not None else []
        best: tuple[float, Passage, str] | None = None
        for h in self.index.search_passages(a, limit=5):
            p = self.kb.passages[h.key]
            for sent, terms in self.index.passage_sentences.get(p.id, ()):
                if not _is_statement(sent):
                    continue  # a heading, a form label or a fragment says nothing alone
                gain = sum(w for t, w in missing.items() if t in terms) / miss
                cov = sum(w for t, w in d.items() if t in terms) / total
                if gain < MISSING_GAIN or cov < need:
                    continue
                plain = scorer_plain(sent)
                if any(plain in q for q in quotes):
                    continue  # already quoted in full by the answer
                score = 0.5 * cov + 0.5 * gain
                if best is None or score > best[0]:
                    best = (score, p, sent)
        if best is None:
            return None
        score, p, sent = best
        if len(sent) > 420:
            sent = _short_quote(sent, 420)
        if not quote_in(sent, self.kb.documents[p.doc_id].plain):
            return None
        return p, sent, score

    def _unanswerable(self, a: Analysis, topic: Topic | None, text: str = "") -> bool:
        """The question asks for something the texts never give (a person in a role, a price,
        an outside service…), and the chosen answer does not give it either."""
        return self._asks_elsewhere(a, topic, text) or bool(self._missing_detail(a, topic, text))

    def _missing_detail(self, a: Analysis, topic: Topic | None, text: str = "") -> str:
        """What the question asks of the subject and the chosen answer does not give (a
        number, an amount, a duration, a date, a template…), named for the reply; "" when the
        answer gives it."""
        q = " ".join(a.tokens)
        answer = scorer_normalize(topic.answer if topic is not None else text)
        if _CURRENT_Q.search(q) and _COUNT_Q.search(q):
            return "de chiffre à jour (ils datent de 2021)"  # « combien aujourd'hui ? »
        m = _HOW_MANY_Q.search(q)
        counted_word = (m.group(1) or m.group(2)) if m else None
        if (
            counted_word
            and counted_word not in _HOW_MANY_FREE
            and not _RULE_COUNT_Q.search(q)
            and not _gives_number_of(counted_word, answer)
        ):
            return "ce nombre"  # « combien de diététiciens ? »: no number of them given
        money = self._money_q.search(q) or _PAY_Q.search(q)
        if (money or ("funding" in a.dims and _COUNT_Q.search(q))) and not _AMOUNT.search(answer):
            return "ce montant"  # « combien », « quel montant »… and no amount in the answer
        for asked, given, name in _ASKED_DETAILS:
            if asked.search(q) and not given.search(answer):
                return name  # « y a-t-il un modèle ? », « combien de pages ? »: not in the answer
        # « on attend jusqu'à quand ? » is also answered by a duration (« 2 mois »)
        by_duration = _UNTIL_WHEN_Q.search(q) and re.search(rf"\b{_DURATION}", answer)
        if _DEADLINE_Q.search(q) and not _DAY_DATE.search(answer) and not by_duration:
            return "cette date"  # « date limite de l'AMI » : the texts give none
        return ""

    def _asks_elsewhere(self, a: Analysis, topic: Topic | None, text: str = "") -> bool:
        """The question is about something else than the texts' subject: a person in a role, a
        named place or structure, another region, a later text, an outside service, a task
        for the bot…"""
        q = " ".join(a.tokens)
        answer = scorer_normalize(topic.answer if topic is not None else text)
        person = self._person_q.search(q)
        if person and not any(name in answer for name in _PEOPLE):
            return True
        if person:  # the texts name contacts, never a director, a president, a mayor…
            role = next((r for r in person.groups()[::-1] if r and r in self._roles), None)
            if role and role not in _CONTACT_ROLES and not re.search(rf"\b{role}", answer):
                return True
        # a word the texts never use, named after a preposition (« la CPTS de Brest »,
        # « à Quimper », « sur Lorient »): a place or a structure, not an everyday word
        places = (
            self._as_names(a, _named_unknown(a.tokens, a.unknown))
            + self._as_names(a, _named_place(a.tokens, a.ungrounded))
            + _communes_in(a.tokens, self._places)
        )
        if places and _CONTACT_Q.search(q):
            return True  # a place or structure the texts never name, in a contact question
        m = _WHICH_Q.search(q)
        if (
            m
            and m.group(2) in a.unknown
            and len(m.group(2)) >= 5
            and m.group(2) not in self._generic
        ):
            return True  # "quel logiciel": the texts never use the word asked for
        if _HOW_WORKS_Q.search(q) and (topic is None or topic.origin == "glossary.yaml"):
            return True
        # how something works or how many there are, somewhere or for something the texts
        # never name ("dans le Finistère", "en Occitanie"): the texts cannot say
        if places and (
            _HOW_WORKS_Q.search(q) or (_COUNT_Q.search(q) and not _gives_count(q, answer))
        ):
            return True
        if _TASK_Q.search(q):
            return True  # « pouvez-vous relire notre lettre ? », « ça vaut le coup pour moi ? »
        if _TAX_Q.search(q):
            return True
        if places and _WHO_DOES_Q.search(q):
            return True  # « qui est le coordinateur de la CPTS de Quimper », « qui fait les gardes à Lannion »
        if places and _WHICH_OF_PLACE_Q.search(q):
            return (
                True  # « et Redon, on dépend de quel GHT ? », « Paimpol est classé zone fragile ? »
            )
        if places and _WHEN_Q.search(q):
            return True  # « quand est la prochaine réunion à Brest »
        if _SOFTWARE_Q.search(q):
            return True  # « quel LGO est compatible avec la messagerie ? », « y a une appli ? »
        if _BODIES_Q.search(q):
            return True  # « un élu peut-il siéger au bureau de la CPTS ? »
        if _RESULTS_Q.search(q):
            return True  # « les CPTS ont-elles fait baisser les passages aux urgences ? »
        if _NEXT_PLAN_Q.search(q):
            return True  # « le prochain PRS », « le futur avenant »: not in the texts
        if _STILL_Q.search(q):
            return True  # « M. Derieux est-il toujours en poste ? »: the texts date from 2021
        if _LOCAL.search(q) and _LOCAL_ASK.search(q):
            return True  # « combien sont-ils dans notre canton ? », « qui les organise ici ? »
        if self._named_structure(a):
            return True  # « les locaux de la CPTS de Quimperlé »: the texts name no CPTS
        if _WHICH_COVERS_Q.search(q) and _LOCAL.search(q):
            return True  # « quelle CPTS couvre ma commune ? »: the texts name no CPTS
        if _EXISTS_Q.search(q) and places:
            return True  # « il y a déjà une CPTS sur le pays de Fougères ? », « … à Belle-Île ? »
        if _OTHER_REGION_Q.search(q):
            return True  # « l'ARS Pays de la Loire finance combien ? »: the texts are Breton or unnamed
        if _NATIONAL_COUNT_Q.search(q):
            return True
        # a numbered text the texts do not have ("l'avenant 9", "l'article 51")
        for m in _NUMBERED_Q.finditer(q):
            kind = "article" if m.group(1) == "art" else m.group(1)  # « art. 51 »
            if not re.search(rf"\b{kind}s?\b[^.]{{0,40}}\b{m.group(3)}\b", self._corpus):
                return True
        if any(year not in self._corpus for year in _DATED_TEXT_Q.findall(q)):
            return True
        if any(int(m.group(4)) >= LAST_TEXT_YEAR for m in _SINCE_YEAR.finditer(q)):
            return True  # « depuis fin 2021, il y a eu un autre avenant ? »
        if _OTHERS_DID_Q.search(q):
            return True  # « les autres CPTS du coin, elles ont fait comment ? »
        if any(int(y) > LAST_TEXT_YEAR for y in _YEAR.findall(q)):
            return True  # « depuis 2024 », « le PRS 2023-2028 »: the texts end in 2021
        for m in _CODE_ARTICLE_Q.finditer(q):
            number = "-".join(g for g in m.groups() if g)
            if not re.search(rf"\b{number}\b", self._corpus):
                return True  # « l'article L. 6321-1 »: not one the texts quote
        # an outside service or place (Ameli pro, Doctolib, DMP, tiers payant, a département):
        # only when the rest of the question is clearly in the domain and answered
        # an acronym the texts never use (« RPPS », « CPOM », « CSMF ») names a scheme or a body
        # they do not deal with, like an outside service
        if self._outside_q.search(q) or any(w in a.unknown for w in a.acronyms):
            if topic is None or a.anchor < 1.0:
                return True
            best = self.index.search_topics(a, limit=1)
            cover = self.index.answer_coverage(a, topic.id)
            if not best or best[0].score < OUTSIDE_OVERRIDE or cover < OUTSIDE_COVER:
                return True
        return False

    def _as_names(self, a: Analysis, words: list[str]) -> list[str]:
        """Those of the words a question that uses capitals writes with one (« au moment de
        l'AMI » is not a place; « à Quimper » is); in an all-lowercase question, those that are
        neither everyday French words (« du monde », « le soir ») nor forms of a word of the
        texts (« à valider »)."""
        if a.capitalized is None:
            return [
                w for w in words if w not in self._common and stem(w) not in self._grounded_stems
            ]
        return [w for w in words if w in a.capitalized]

    def _named_structure(self, a: Analysis) -> bool:
        """« la CPTS de Vitré », « la CPTS du pays de Redon », « l'ESP de Plouaret »: one given
        structure, which the texts never name."""
        toks = a.tokens
        for i in range(2, len(toks)):
            if toks[i - 2] not in ("cpts", "esp", "msp") or toks[i - 1] not in _OF:
                continue
            if _FOUNDING.intersection(toks[max(0, i - 6) : i - 2]):
                continue  # « nous voulons créer la CPTS de Lamballe »: a project, not a given one
            rest = toks[i:]
            if rest[0] in ("pays", "secteur", "territoire") and len(rest) > 2 and rest[1] in _OF:
                rest = rest[2:]
            head = rest[0]
            if any(" ".join(rest[:n]) in self._places for n in (1, 2, 3)):
                return True
            if head in a.ungrounded and len(head) >= 4 and self._as_names(a, [head]):
                return True
        return False

    def _related(self, topic: Topic, hits: list[Hit]) -> list[tuple[str, str]]:
        keys: list[str] = []
        for r in topic.related:
            if r in self.kb.topics and r != topic.id and r not in keys:
                keys.append(r)
        for h in hits:
            if h.key != topic.id and h.key not in keys:
                keys.append(h.key)
        return [(self.kb.topics[k].label, f"topic:{k}") for k in keys[:3]]

    def _source_line(self, refs: list[tuple[str, str]]) -> str:
        """ "Source : <document>, « <section> »" — sections of one document grouped."""
        by_doc: dict[str, list[str]] = {}
        for doc_id, section in refs:
            last = section.rsplit(" › ", 1)[-1]  # the full path stays in SourceRef.section
            sections = by_doc.setdefault(doc_id, [])
            if last and last not in sections:
                sections.append(last)
        parts = []
        for doc_id, sections in by_doc.items():
            quoted = " et ".join(f"« {x} »" for x in sections)
            parts.append(self.kb.documents[doc_id].short_title + (f", {quoted}" if quoted else ""))
        label = "Source" if len(parts) == 1 else "Sources"
        return f"{label} : " + " ; ".join(parts) + "."

    def _ref(self, src: CuratedSource) -> SourceRef:
        p = self.kb.passages[src.passage_id]
        return SourceRef(p.doc_id, self.kb.documents[p.doc_id].title, p.section, src.quote, p.id)

    def _ref_for_passage(self, p: Passage) -> SourceRef:
        doc = self.kb.documents[p.doc_id]
        quote = _short_quote(p.text)
        if not quote_in(quote, doc.plain):
            quote = _short_quote(scorer_plain(p.raw))
        return SourceRef(p.doc_id, doc.title, p.section, quote, p.id)

    def _wanted_sentence(
        self, a: Analysis, topic: Topic | None
    ) -> tuple[Passage, str, float] | None:
        """When the question asks for an article, a date, a link, an address, a frequency or a
        phone number that the curated answer does not give: the sentence of the texts that
        gives it (best covering the question), with its passage and a score."""
        q = " ".join(a.tokens)
        have = scorer_normalize(topic.answer) if topic is not None else ""
        wants = [pat for ask, pat in _WANTS if ask.search(q)]
        if _ARTICLE_GIVEN.search(have) and _LAW_Q.search(q):  # "article 64" of the law
            wants = [pat for pat in wants if pat is not _WANTS[0][1]]
        if not wants:
            return None
        cands: list[tuple[Passage, float]] = []
        if topic is not None:
            for src in topic.sources:
                p = self.kb.passages.get(src.passage_id)
                if p is not None:
                    cands.append((p, 1.0))
        for h in self.index.search_passages(a, limit=8):
            if h.score >= WANTED_PASSAGE:
                cands.append((self.kb.passages[h.key], h.score))
        q_sq = sum(w * w for w in a.terms.values()) or 1.0
        best: tuple[float, Passage, str] | None = None
        for p, pscore in cands:
            for sent in _SENTENCE_END.split(p.text):
                norm = scorer_normalize(sent)
                found = [m.group(0) for pat in wants for m in pat.finditer(norm)]
                if not found or all(f in have for f in found):
                    continue  # nothing asked for, or the answer already gives it
                terms = set(self.index.analyzer.terms(sent)[0])
                terms |= set(self.index.analyzer.terms(p.section)[0])
                cov = sum(w * w for t, w in a.terms.items() if t in terms) / q_sq
                score = 0.7 * cov + 0.3 * min(pscore, 1.0)
                if best is None or score > best[0]:
                    best = (score, p, sent.strip())
        if best is None or best[0] < WANTED_PASSAGE:
            return None
        score, p, sent = best
        if len(sent) > 420:
            sent = _short_quote(sent, 420)
        if not quote_in(sent, self.kb.documents[p.doc_id].plain):
            return None
        return p, sent, score

    def _sentence_answer(self, extra: tuple[Passage, str, float], hits: list[Hit]) -> QAAnswer:
        p, sent, score = extra
        doc = self.kb.documents[p.doc_id]
        ref = SourceRef(p.doc_id, doc.title, p.section, sent, p.id)
        text = (
            "Je n'ai pas de réponse rédigée pour cette question ; voici la phrase des textes qui "
            f"y répond :\n« {sent} »\n\n{self._source_line([(p.doc_id, p.section)])}"
        )
        related = [(self.kb.topics[h.key].label, f"topic:{h.key}") for h in hits[:3]]
        return QAAnswer(
            text, [ref], False, _confidence(score, WANTED_ALONE) * 0.9, "answer",
            f"more:p:{p.id}", related,
        )  # fmt: skip

    def _topic_answer(
        self,
        topic: Topic,
        score: float,
        hits: list[Hit],
        extra: tuple[Passage, str, float] | None = None,
    ) -> QAAnswer:
        refs = [self._ref(s) for s in topic.sources if s.passage_id in self.kb.passages]
        body = topic.answer
        if extra is not None:
            p, sent, _ = extra
            doc = self.kb.documents[p.doc_id]
            body += f"\n\nLe texte précise ({doc.short_title}) : « {sent} »"
            refs.append(SourceRef(p.doc_id, doc.title, p.section, sent, p.id))
        line = self._source_line([(r.id, r.section) for r in refs])
        text = f"{body}\n\n{line}"
        return QAAnswer(
            text=text[:TELEGRAM_LIMIT],
            sources=refs,
            abstained=False,
            score=score,
            kind="answer",
            more_key=f"more:t:{topic.id}",
            related=self._related(topic, hits),
        )

    def _nearest_answer(self, topic: Topic, missing: str, raw: float, hits: list[Hit]) -> QAAnswer:
        """The texts do not give the detail asked (a number, a duration…), but one of their
        answers is on the very subject: say so first, then give that answer, labelled as the
        nearest; still an abstention for the question asked."""
        found = self._topic_answer(topic, 0.0, hits)
        lead = NEAREST_LEAD.format(what=missing)
        return replace(
            found,
            text=f"{lead}\n\n{found.text}"[:TELEGRAM_LIMIT],
            abstained=True,
            score=min(_confidence(raw, TOPIC_THRESHOLD * 2), 0.49),
            kind="abstain",
        )

    def _passage_answer(self, hit: Hit, topic_hits: list[Hit]) -> QAAnswer:
        p = self.kb.passages[hit.key]
        ref = self._ref_for_passage(p)
        body = p.text if len(p.text) <= 480 else _short_quote(p.text, 480)
        text = (
            "Je n'ai pas de réponse rédigée pour cette question ; voici le passage des textes "
            f"qui s'en rapproche le plus :\n« {body} »\n\n{self._source_line([(p.doc_id, p.section)])}"
        )
        related = [(self.kb.topics[h.key].label, f"topic:{h.key}") for h in topic_hits[:3]]
        return QAAnswer(
            text=text,
            sources=[ref],
            abstained=False,
            score=_confidence(hit.score, PASSAGE_THRESHOLD) * 0.9,
            kind="answer",
            more_key=f"more:p:{p.id}",
            related=related,
        )


def _fingerprint(root: Path) -> str:
    """Hash of everything the index is built from: knowledge files and this package's code."""
    h = hashlib.sha1()
    files = sorted(
        p
        for p in root.rglob("*")
        if p.suffix in {".yaml", ".txt", ".md"} and ".cache" not in p.parts
    )
    files += sorted(Path(__file__).parent.glob("*.py"))
    for p in files:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def _cache_paths(root: Path, key: str) -> list[Path]:
    name = f"qa-index-{key}.pickle"
    return [root / ".cache" / name, Path(tempfile.gettempdir()) / "esp-cpts-bot" / name]


_SPLIT_WORDS = {"et", "ou"}
# which row of the annex's ESP / CPTS table answers a comparison about a dimension
_ROW_FOR_DIMENSION = {
    "members": "Composition",
    "count": "Composition",
    "legal": "Forme juridique",
    "territory": "Territoire",
    "missions": "Objet",
}
_ROW_WORDS = (
    (re.compile(r"\bprojets? de sante\b"), "Projet de santé"),
    (re.compile(r"\b(contrats?|contractualis\w*)\b"), "Contractualisation"),
    (
        re.compile(r"\b(articles?|references?|textes? de loi|base legale)\b"),
        "Références réglementaires",
    ),
)
FOLLOW_KEEP = 0.75  # a follow-up that answers alone with this confidence stands alone…
FOLLOW_WEAK_MATCH = 0.45  # a message whose best topic match is below this (raw score)…
FOLLOW_JOINED_MATCH = 0.4  # … is read after the previous question when that matches above this
FOLLOW_CONTENT = 2  # … unless it has at most this many words of its own (« et une ESP ? »)
_OBJECTS = frozenset({"_esp", "_cpts", "_msp", "_pta", "_ami", "_aci", "_fir", "_ars"})


_COUNTED = re.compile(r"\b(?:combien|nombre) (?:de |d )?(\w{4,})")


def _gives_count(question: str, answer: str) -> bool:
    """The answer gives a number of what the question counts (« un nombre d'habitants de
    référence ? » and « … 20 000 habitants »): a rule of the texts, not a local count."""
    m = _COUNTED.search(question)
    return m is not None and _gives_number_of(m.group(1), answer)


def _gives_number_of(word: str, answer: str) -> bool:
    """A figure stands within three words before `word` (same stem) in the answer (« 20 000
    habitants », « deux professionnels »)."""
    counted = stem(word)
    words = answer.split()
    return any(
        stem(w) == counted and any(_NUMBER_WORD.fullmatch(x) for x in words[max(0, i - 3) : i])
        for i, w in enumerate(words)
    )


def _content_words(tokens: tuple[str, ...]) -> list[str]:
    """The words of a message that carry meaning (not function words, not fillers)."""
    return [t for t in tokens if t not in STOP_WORDS and t not in _FILLERS and len(t) > 1]


_FILLERS = frozenset(
    ["ok", "okay", "alors", "donc", "aussi", "sinon", "coup", "contre", "quoi", "est"]
)
_PLACE_PREPOSITIONS = frozenset(
    [
        "a",
        "au",
        "aux",
        "de",
        "des",
        "du",
        "d",
        "en",
        "sur",
        "vers",
        "pres",
        "la",
        "le",
        "les",
        "chez",
        "cote",
        "secteur",
        "pays",
        "couvre",
        "cpts",
        "esp",
        "msp",
        "pta",
    ]
)


def _named_unknown(tokens: list[str], unknown: list[str]) -> list[str]:
    """The words the texts never use that follow a preposition or an article (« de Brest »,
    « à Quimper », « la CPTS de Lorient »): names of places or structures, not everyday words
    (« environ », « souvent ») nor SMS spellings."""
    return _names_after(tokens, unknown, lambda i: tokens[i - 1] in _PLACE_PREPOSITIONS)


STATEMENT_MIN = 40  # characters of a sentence that can stand as an added fact


def _is_statement(sentence: str) -> bool:
    """A sentence that can stand as an added fact: not a number, a form label
    (« (Case à cocher) ») or a fragment (« (phase de construction, »)."""
    return len(sentence.strip()) >= STATEMENT_MIN


def _commune_names(grounded: set[str]) -> frozenset[str]:
    """The names of Brittany's communes (folded, current and former), less the few that are
    also words of the texts (« Le Cours »): the places a question may name."""
    try:
        data = load_territories()
    except TerritoryDataError:
        log.warning("territory data unavailable: place names are read from unknown words only")
        return frozenset()
    names = {" ".join(raw_tokens(c.name)) for c in data.communes.values()}
    names |= {" ".join(raw_tokens(name)) for name, _ in data.former_names}
    names |= {" ".join(raw_tokens(d.name)) for d in data.departements.values()}
    return frozenset(
        n for n in names if n and n not in STOP_WORDS and not all(t in grounded for t in n.split())
    )  # « parce » (que) is not Parcé


def _communes_in(tokens: list[str], places: frozenset[str]) -> list[str]:
    """The commune names a question holds (« Guingamp », « saint brieuc »)."""
    found: list[str] = []
    for size in (4, 3, 2, 1):
        for i in range(len(tokens) - size + 1):
            phrase = " ".join(tokens[i : i + size])
            if phrase in places and not any(phrase in f for f in found):
                found.append(phrase)
    return found


_AT = frozenset(["a", "sur", "chez", "pres", "couvre"])
# subjects before which « a » is the verb avoir (accents are folded: « ça a », « il a »)
_HAS_SUBJECTS = frozenset(
    ["ca", "cela", "il", "elle", "on", "qui", "y", "tout", "rien", "personne"]
)
_FOUNDING = frozenset(
    [
        "creer",
        "cree",
        "monter",
        "monte",
        "lancer",
        "lance",
        "constituer",
        "fonder",
        "demarrer",
        "former",
        "porter",
        "preparer",
        "projet",
        "future",
        "futur",
        "notre",
        "nous",
    ]
)
_OF = frozenset(["de", "du", "d"])
_STRUCTURES = frozenset(
    [
        "cpts",
        "msp",
        "esp",
        "pta",
        "cpam",
        "ars",
        "ch",
        "hopital",
        "centre",
        "ville",
        "commune",
        "communes",
        "territoire",
        "secteur",
        "pays",
        "region",
        "maison",
        "pole",
    ]
)


def _named_place(tokens: list[str], ungrounded: list[str]) -> list[str]:
    """Words the texts never use (though a question variant may) that name a place or a
    structure, by a stricter mark: « à Quimper », « la CPTS de Quimper », « la CPAM de Vannes »."""

    def marked(i: int) -> bool:
        prev = tokens[i - 1]
        if prev == "a" and i >= 2 and tokens[i - 2] in _HAS_SUBJECTS:
            return False  # « ça a bougé », « on a signé »: the verb avoir, not « à »
        return prev in _AT or (prev in _OF and i >= 2 and tokens[i - 2] in _STRUCTURES)

    return _names_after(tokens, ungrounded, marked)


def _names_after(
    tokens: list[str], words: list[str], is_marked: Callable[[int], bool]
) -> list[str]:
    """The tokens among `words` (4 letters or more, not first) whose position is marked."""
    strange = {w for w in words if len(w) >= 4}
    return [w for i, w in enumerate(tokens) if w in strange and i > 0 and is_marked(i)]


def _cut_sentence(text: str, limit: int) -> str:
    """The first sentences of an answer that fit in `limit` characters ("…" when cut)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    out = ""
    for sent in re.split(r"(?<=[.;!?])\s+", text):
        if len(out) + len(sent) + 1 > limit:
            break
        out = f"{out} {sent}".strip()
    return out + " …" if out else _short_quote(text, limit)


def _short_quote(text: str, limit: int = 300) -> str:
    """The beginning of a passage, cut at a word boundary, with "…" when cut."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:")
    return cut + " …"

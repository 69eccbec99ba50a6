"""Follow-ups read with the conversation, emergencies, medical advice, and no fixed yes/no."""

from __future__ import annotations

import io
import json
import re

import pytest

from bot.qa import QAService, run_ask
from bot.qa.intent import QAContext, complete, dimensions_of, shape
from bot.qa.textnorm import scorer_normalize
from tests.conftest import Chat


def norm(text: str) -> str:
    return scorer_normalize(text)


def thread(service: QAService, *turns: str) -> tuple[str, QAContext]:
    ctx: QAContext | None = None
    text = ""
    for turn in turns:
        answer, ctx = service.reply(turn, ctx)
        text = answer.text
    assert ctx is not None
    return text, ctx


def test_et_une_esp_after_a_cpts_definition_defines_the_esp(service: QAService) -> None:
    text, ctx = thread(service, "c'est quoi une CPTS ?", "et une ESP ?")
    assert "equipe de soins primaires" in norm(text)
    assert ctx.objects == ["ESP"]


def test_funding_follow_up_keeps_the_object_of_the_previous_question(service: QAService) -> None:
    text, _ = thread(service, "c'est quoi une CPTS ?", "et elles sont financées comment ?")
    assert re.search(r"financement|fir|aci", norm(text))


def test_c_est_a_dire_shows_the_passage_behind_the_last_answer(service: QAService) -> None:
    first, ctx = thread(service, "Quelles sont les missions socles des CPTS ?")
    text, after = thread(service, "Quelles sont les missions socles des CPTS ?", "c'est-à-dire ?")
    assert text.startswith("Voici le passage des textes")
    assert text != first and after.question == ctx.question


def test_a_new_subject_with_its_own_object_is_not_read_as_a_follow_up(
    service: QAService,
) -> None:
    text, ctx = thread(service, "c'est quoi une CPTS ?", "Quel est l'article qui définit l'ESP ?")
    assert "1411-11-1" in text
    assert ctx.objects == ["ESP"]


def test_how_long_after_the_creation_steps_gives_the_validation_delay(
    service: QAService,
) -> None:
    text, _ = thread(service, "Comment créer une CPTS ?", "en combien de temps ?")
    assert re.search(r"2 mois|deux mois|15 jours", norm(text))


def test_an_abstention_resets_the_context(service: QAService) -> None:
    _, ctx = thread(service, "c'est quoi une CPTS ?", "recette du far breton")
    assert ctx.is_empty


def test_a_stored_context_that_is_not_a_dict_reads_as_empty() -> None:
    for junk in (None, "x", 3, ["a"], {"turns": "many"}):
        assert QAContext.from_dict(junk).is_empty


def test_ask_json_reads_thread_lines_as_one_conversation_and_keeps_threads_apart() -> None:
    lines = [
        {"q": "c'est quoi une CPTS ?", "thread": "a"},
        {"q": "Qu'est-ce que le FIR ?", "thread": "b"},
        {"q": "et une ESP ?", "thread": "a"},
    ]
    stdin = io.StringIO("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines))
    out = io.StringIO()
    assert run_ask(None, stdin, out) == 0
    replies = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(replies) == 3
    assert "equipe de soins primaires" in norm(replies[2]["answer"])


@pytest.mark.parametrize(
    "line", ['{"q": 3}', "{pas du json", "[1, 2]", '{"thread": "a"}', '{"q": null}', "{}"]
)
def test_a_json_line_that_is_not_a_question_object_is_answered_as_plain_text(line: str) -> None:
    out = io.StringIO()
    assert run_ask(None, io.StringIO(line + "\n"), out) == 0
    reply = json.loads(out.getvalue())
    assert reply["abstained"] is True and reply["answer"]


@pytest.mark.parametrize(
    "message",
    [
        "mon patient fait un AVC",
        "ma patiente ne respire plus",
        "douleur thoracique intense dans la salle d'attente que faire",
        "il a fait un malaise devant la pharmacie",
    ],
)
def test_a_medical_emergency_is_answered_with_15_and_112_never_an_ars_phone(
    service: QAService, message: str
) -> None:
    reply = service.answer(message)
    assert reply.abstained and reply.kind == "emergency"
    assert "15" in reply.text and "112" in reply.text
    assert "02.22" not in reply.text and "Derieux" not in reply.text


def test_a_request_for_medical_advice_abstains_and_points_to_a_doctor(service: QAService) -> None:
    reply = service.answer("quel antibiotique pour une angine ?")
    assert reply.abstained and "avis médical" in reply.text and "15" in reply.text
    # a clinical case (a patient, a symptom, what to do) is medical advice too
    case = service.answer("une patiente a 39 de fièvre depuis 2 jours, je l'envoie aux urgences ?")
    assert case.abstained and "avis médical" in case.text
    # an organisation question naming a symptom is not
    assert not service.answer(
        "un enfant avec une otite le samedi, la CPTS peut le voir ?"
    ).abstained


def test_emergency_words_inside_an_organisation_question_still_get_the_texts(
    service: QAService,
) -> None:
    reply = service.answer("délai des soins non programmés dans une CPTS ?")
    assert not reply.abstained
    # a disease named in an organisation question, nothing happening: the texts, not the 15
    for q in (
        "la CPTS gère les urgences vitales comme un infarctus ?",
        "un parcours pour nos patients après un AVC, ça peut être une mission de la CPTS ?",
    ):
        assert service.answer(q).kind != "emergency", q
    # the same words with something happening stay an emergency
    assert service.answer("mon patient fait un AVC, la CPTS peut aider ?").kind == "emergency"


def test_no_curated_answer_starts_with_a_fixed_yes_or_no(service: QAService) -> None:
    for topic in service.topics():
        assert not re.match(r"(oui|non)\b", norm(topic.answer)), topic.id


@pytest.mark.parametrize(
    "question",
    [
        "Une ESP n'a pas besoin de statut juridique ?",
        "Une ESP a-t-elle besoin d'un statut juridique ?",
        "Deux CPTS peuvent-elles coexister sur un même territoire ?",
        "Deux CPTS ne peuvent pas coexister sur un même territoire ?",
        "La réponse à l'AMI engage-t-elle à créer une CPTS ?",
        "La réponse à l'AMI n'engage à rien ?",
        "L'ARS refuse-t-elle les projets de permanence des soins ?",
        "L'ARS accepte les projets de permanence des soins ?",
        "Une CPTS doit-elle regrouper tous les professionnels du territoire ?",
        "Peut-on créer une ESP sans contrat avec l'ARS ?",
        "Une ESP ne peut pas exister sans contrat avec l'ARS ?",
    ],
)
def test_negated_and_opposite_yes_no_questions_get_no_oui_or_non_contradicting_the_texts(
    service: QAService, question: str
) -> None:
    reply = service.answer(question)
    assert not reply.abstained
    assert not re.match(r"(oui|non)\b", norm(reply.text)), reply.text


def test_a_funding_question_prefers_funding_over_the_creation_steps(service: QAService) -> None:
    for q in ("qui finance les cpts", "comment est financée une CPTS ?", "financement cpts"):
        text = norm(service.answer(q).text)
        assert "financement" in text and "7 etapes" not in text, q


def test_a_comparison_of_territory_is_answered_row_by_row_from_the_annex(
    service: QAService,
) -> None:
    reply = service.answer("quelle différence de territoire entre une ESP et une CPTS ?")
    text = norm(reply.text)
    assert "patientele" in text and "population" in text
    assert {s.id for s in reply.sources} == {"instruction-dgos-2016-392"}


def test_a_funding_comparison_cites_both_the_instruction_and_ameli(service: QAService) -> None:
    reply = service.answer("quelles différences de financement entre ESP et CPTS ?")
    ids = {s.id for s in reply.sources}
    assert {"instruction-dgos-2016-392", "ameli-cpts-mode-emploi"} <= ids
    assert "aci" in norm(reply.text)


def test_dimensions_and_follow_up_shapes_are_read_from_the_words() -> None:
    assert dimensions_of("combien € pour le projet de santé") >= {"funding"}
    assert "delay" in dimensions_of("en combien de temps ?")
    assert shape("et pour une ESP ?").leans_back
    assert not shape("Quelles sont les missions socles d'une CPTS ?").is_elliptic
    assert shape("c'est-à-dire ?").is_clarification


def test_a_follow_up_in_the_chat_is_read_with_the_previous_question(chat: Chat) -> None:
    chat.say("c'est quoi une CPTS ?")
    text = chat.say("et une ESP ?")
    assert "équipe de soins primaires" in text.lower()


def test_a_follow_up_about_another_region_abstains_instead_of_repeating_the_ami(
    service: QAService,
) -> None:
    first, ctx = service.reply("Comment répondre à l'AMI de l'ARS Bretagne ?", None)
    assert not first.abstained
    second, ctx = service.reply("et en Occitanie c'est pareil ?", ctx)
    assert second.abstained
    third, _ = service.reply("et pour une ESP ?", ctx)
    assert "ESP" in third.text or third.abstained  # the context was reset, not the AMI again
    assert "septembre 2021" not in third.text


def test_a_longer_follow_up_nothing_answers_alone_is_read_with_the_previous_question(
    service: QAService,
) -> None:
    alone = service.answer("Bon, et tout ça prend combien de temps ?")
    assert alone.abstained
    _, ctx = service.reply("Quelles sont les étapes pour créer une CPTS ?", None)
    followed, _ = service.reply("Bon, et tout ça prend combien de temps ?", ctx)
    assert not followed.abstained
    assert re.search(r"15 jours|2 mois|deux mois", norm(followed.text))


def test_a_follow_up_asking_an_amount_the_texts_never_give_abstains(service: QAService) -> None:
    """After the ACI, « combien par an » asks the ACI's yearly amount, which no text gives
    (alone, the question abstains as well: an amount a year is asked, none is in any answer).
    The reply says so and shows the ACI's answer as the nearest: the subject holds."""
    question = "ok et ça fait combien par an concrètement pour une cpts ?"
    _, ctx = service.reply("l'ACI donne un financement durable ?", None)
    followed, after = service.reply(question, ctx)
    assert followed.abstained and followed.text.startswith("Les textes ne donnent pas ce montant")
    assert after.topic == ctx.topic
    assert service.answer(question).abstained


def test_a_long_follow_up_that_alone_matches_poorly_is_read_after_the_previous_question(
    service: QAService,
) -> None:
    question = (
        "Et un kiné installé tout seul en campagne, loin de toute maison de santé, il peut aussi ?"
    )
    alone = service.answer(question)
    _, ctx = service.reply("Qui peut adhérer à une CPTS ?", None)
    followed, after = service.reply(question, ctx)
    assert followed.more_key == "more:t:cpts-composition" != alone.more_key
    assert after.question.startswith("Qui peut adhérer à une CPTS ?")


def test_follow_ups_asking_what_the_texts_never_say_abstain_after_an_answered_question(
    service: QAService,
) -> None:
    """A deadline of the AMI, the bot's own choice, what the ARS gives a MSP, whether an offer
    costs, a meeting by video, paying back, an appeal, what came after 2021 or how other CPTS
    did it: the previous answer does not say, so the follow-up abstains."""
    for first, follow_up in (
        ("Comment on répond à l'AMI CPTS de l'ARS Bretagne ?", "C'est jusqu'à quand ?"),
        (
            "On doit lancer toutes les missions socles en même temps ?",
            "toi tu commencerais par laquelle ?",
        ),
        ("Une ESP peut devenir une MSP ?", "et l'ARS met combien pour une MSP ?"),
        ("L'accélérateur de projet de l'Assurance Maladie, c'est quoi ?", "C'est payant ?"),
        ("L'ARS et la CPAM nous reçoivent sous 15 jours ?", "on peut faire ça en visio ?"),
        (
            "Les missions prioritaires sont déployées au bout de 12 mois ?",
            "et sinon on doit rembourser ?",
        ),
        (
            "La validation du projet est tacite au bout de deux mois ?",
            "et s'ils refusent, on peut faire un recours ?",
        ),
        ("Il y a eu combien d'avenants à l'ACI ?", "et depuis fin 2021, il y en a eu un autre ?"),
        (
            "La mission d'accès au médecin traitant, ça marche comment ?",
            "et les autres CPTS, elles ont fait comment ?",
        ),
        (
            "Le territoire d'une CPTS doit rester en dessous du GHT ?",
            "Et Redon, on dépend de quel GHT ?",
        ),
        (
            "Être en ESP, ça compte pour les zones fragiles ?",
            "et Paimpol est classé zone fragile ou pas ?",
        ),
        (
            "Le territoire doit suivre les flux de population ?",
            "nos communes en Loire-Atlantique, on les met dans quel dossier ?",
        ),
        (
            "Une fois l'ACI signé, le financement est pérenne ?",
            "ok et ça représente combien par an ?",
        ),
        (
            "les avantages de la CPTS pour un généraliste ?",
            "franchement toi à ma place tu le ferais ?",
        ),
        ("il y a combien de CPTS en Bretagne ?", "et sur le Goëlo il y en a une déjà ?"),
        ("Les CPTS travaillent avec le SAS ?", "et le SAS du 56 il a ouvert quand ?"),
        (
            "La permanence des soins peut-elle être un projet de CPTS ?",
            "et nos gardes, qui les organise ici ?",
        ),
        (
            "Le GHT doit tenir compte des projets des CPTS ?",
            "et celui de notre secteur, il l'a fait ?",
        ),
        (
            "Une ESP doit avoir une messagerie sécurisée ?",
            "et avec notre logiciel d'officine ça marche ?",
        ),
        ("Dans une ESP faut-il des réunions de concertation ?", "c'est à quel heure d'habitude ?"),
        ("une infirmière peut être dans une ESP ?", "franchement ça vaut le coup pour moi ?"),
        ("Sur quelle loi reposent les ESP ?", "Et cette loi a-t-elle été modifiée depuis ?"),
    ):
        answered, ctx = service.reply(first, None)
        assert not answered.abstained, first
        followed, _ = service.reply(follow_up, ctx)
        assert followed.abstained, (first, follow_up, followed.text[:80])
    _, ctx = service.reply("Le projet de santé est envoyé à l'ARS.", None)
    waiting, _ = service.reply("on attend sa réponse jusqu'à quand ?", ctx)
    assert not waiting.abstained  # a duration answers « jusqu'à quand » (2 months, tacit)
    assert re.search(r"2 mois|deux mois", norm(waiting.text))


def test_the_law_in_a_follow_up_is_not_taken_for_another_field(service: QAService) -> None:
    """« il est devenu quoi avec la loi ? » after a pôle de santé: « loi » is the texts' word
    (the LMSS), not the stem of « loyer », so the follow-up is read with the conversation."""
    _, ctx = service.reply("avant 2016 on avait monté un pôle de santé avec des collègues", None)
    followed, _ = service.reply("il est devenu quoi avec la loi ?", ctx)
    assert not followed.abstained
    assert "automatiquement" in followed.text


def test_a_pronoun_for_the_previous_object_keeps_it_even_when_others_are_named(
    service: QAService,
) -> None:
    """« c'est quoi une PTA ? » then « nous en ESP, on peut s'en servir ou c'est réservé aux
    CPTS ? »: « s'en servir » stands for the PTA, so the answer stays on the PTA rather than on
    ESP and CPTS, the objects the message names."""
    _, ctx = service.reply("c'est quoi une PTA ?", None)
    followed, _ = service.reply(
        "et nous en ESP on peut s'en servir ou c'est réservé aux CPTS ?", ctx
    )
    assert not followed.abstained
    assert "PTA" in followed.text


def test_the_same_question_for_someone_else_swaps_who_it_is_for(service: QAService) -> None:
    """« les avantages d'une CPTS pour les patients ? » then « et pour nous, les médecins ? »:
    the previous « pour … » is replaced, not kept beside the new one."""
    first, ctx = service.reply("Quels sont les avantages d'une CPTS pour les patients ?", None)
    assert first.more_key == "more:t:cpts-avantages-patients"
    assert complete("et pour nous les médecins ?", shape("et pour nous les médecins ?"), ctx) == (
        "quels sont les avantages une cpts pour nous les medecins"
    )
    second, _ = service.reply("et pour nous les médecins ?", ctx)
    assert second.more_key == "more:t:cpts-avantages-pro"


def test_where_to_send_it_after_the_ami_gives_the_ami_address(service: QAService) -> None:
    """« je l'envoie à qui ? » asks where a document goes (the contact dimension), not who is
    behind the AMI."""
    assert "contact" in dimensions_of("je l'envoie à qui ?")
    _, ctx = service.reply("Je veux répondre à l'AMI CPTS.", None)
    sent, _ = service.reply("je l'envoie à qui ?", ctx)
    assert "daspf" in norm(sent.text)


def test_a_follow_up_answered_alone_about_another_structure_is_read_in_the_conversation(
    service: QAService,
) -> None:
    """After a CPTS question, « c'est nous qui choisissons les thèmes ? » alone matches the
    ESP's themes; read with the conversation, it gets the CPTS's. « Autre question, rien à
    voir » announces a new subject, which is read alone."""
    _, ctx = service.reply("La CPTS doit-elle faire de la prévention ?", None)
    themes, _ = service.reply(
        "c'est nous qui choisissons les thèmes ou c'est imposé d'en haut ?", ctx
    )
    assert themes.more_key == "more:t:mission-prevention"
    _, ctx = service.reply("Les CPTS bretonnes font de la prévention ?", None)
    other, _ = service.reply(
        "autre question qui n'a rien à voir : c'est quoi une plateforme territoriale d'appui ?", ctx
    )
    assert other.more_key == "more:t:pta-definition"


def test_thanks_opening_a_follow_up_do_not_hide_it(service: QAService) -> None:
    _, ctx = service.reply("Quelles sont les missions complémentaires des CPTS ?", None)
    plain, _ = service.reply("Elles sont obligatoires ?", ctx)
    polite, _ = service.reply(
        "Je vous remercie pour ces explications. Elles sont obligatoires ?", ctx
    )
    assert not polite.abstained
    assert polite.more_key == plain.more_key
    thanks, after = service.reply("Merci !", ctx)
    assert thanks.kind == "thanks" and after == ctx


def test_night_and_weekend_duty_is_read_as_the_permanence_des_soins(service: QAService) -> None:
    answer = service.answer("Les gardes de nuit peuvent-elles entrer dans le projet d'une CPTS ?")
    assert "permanence des soins" in norm(answer.text)

"""Question answering over the five ESP / CPTS texts (knowledge/).

Stable public API, used by the dialogue engine and by `python -m bot ask --json`:

    service = QAService.load()
    reply = service.answer("Quelle différence entre une ESP et une CPTS ?")
    reply.text, reply.sources, reply.abstained, reply.score, reply.kind, reply.more_key
    service.more(reply.more_key)      # full passages ("En savoir plus")
    service.topic("topic:<id>")       # a related topic's curated answer
    service.passage("<doc>#<section>.<n>")

Importing this package is light (yaml, rapidfuzz, snowballstemmer only).
"""

from bot.qa.cli import ask_json, run_ask
from bot.qa.segment import Passage
from bot.qa.service import QAAnswer, QAService, SourceRef

__all__ = ["Passage", "QAAnswer", "QAService", "SourceRef", "ask_json", "run_ask"]

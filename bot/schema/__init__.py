"""Typed models (pydantic) of every YAML file of `dialogues/` and `knowledge/`.

They are the only readers of those files: the engine's loaders validate through them, the bot
checks every file before it starts, and `python -m bot lint` reports problems in French, naming
the file and the path inside it. `python -m bot lint --write-schemas` exports them as JSON
Schema beside the files (`dialogues/schema/`, `knowledge/schema/`) for editors.
"""

from bot.schema.base import SchemaError

__all__ = ["SchemaError"]

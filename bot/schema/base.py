"""Reading a YAML file through its model, and French messages for everything that can go wrong.

A problem reads `<file> : <path inside it> — <what is wrong> (<what is expected>)`, e.g.
`dialogues/ami_bretagne.yaml : steps[3].max_lenght — clé inconnue ; vouliez-vous dire
« max_length » ? (ligne 98)`. Nothing here imports the engine, the storage or Telegram.
"""

from __future__ import annotations

import difflib
import enum
import string
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, RootModel, ValidationError

try:  # libyaml is much faster when present
    _Base: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Base = yaml.SafeLoader

DUPLICATE = "clé en double"


class _Loader(_Base):  # type: ignore[misc,valid-type]
    """The safe loader, refusing a key written twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                continue
            key = (key_node.tag, key_node.value)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{DUPLICATE} « {key_node.value} »", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


M = TypeVar("M", bound=BaseModel)
MAX_LISTED = 12  # keys or values listed in a message before « … »


class Strict(BaseModel):
    """Base of every model: unknown keys are refused, enumerations give plain strings."""

    model_config = ConfigDict(extra="forbid", use_enum_values=True, frozen=True)


def check_placeholders(text: str, allowed: set[str], key: str) -> str:
    """`text` if its {placeholders} are among `allowed` (what the code fills), else ValueError:
    an unknown one would stop the reply with a KeyError."""
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
    except ValueError:
        raise ValueError(
            f"accolade non fermée dans le texte « {key} » (écrivez {{{{ ou }}}} pour une "
            "accolade seule)"
        ) from None
    unknown = sorted(n for n in names if n.split(".")[0].split("[")[0] not in allowed)
    if unknown:
        possible = ", ".join(f"{{{a}}}" for a in sorted(allowed)) or "aucun"
        raise ValueError(
            f"emplacement inconnu {{{unknown[0]}}} dans le texte « {key} » (possibles : {possible})"
        )
    return text


class SchemaError(ValueError):
    """One or more files do not follow their schema; `problems` are French lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def shown_path(path: Path) -> str:
    """The file as the reader knows it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- YAML
_YAML_PROBLEMS = {
    "mapping values are not allowed here": "« : » inattendu (une valeur contenant « : » "
    "doit être entre guillemets)",
    "could not find expected ':'": "« : » attendu après une clé",
    "found character '\\t' that cannot start any token": "tabulation interdite (indentez "
    "avec des espaces)",
    "did not find expected key": "clé attendue (indentation incohérente ?)",
    "found undefined alias": "ancre YAML (&nom) inconnue",
    "found unexpected end of stream": "fin de fichier inattendue (guillemet non fermé ?)",
    "did not find expected '-' indicator": "élément de liste « - » attendu (indentation "
    "incohérente ?)",
    "expected <block end>, but found '<block mapping start>'": "indentation incohérente",
    "did not find expected ',' or ']'": "« , » ou « ] » attendu (crochet non fermé ?)",
    "did not find expected ',' or '}'": "« , » ou « } » attendu (accolade non fermée ?)",
    "found unexpected ':'": "« : » inattendu (mettez la valeur entre guillemets)",
}


def read_yaml(path: Path) -> Any:
    """The file's data; a syntax error becomes a `SchemaError` naming the file and the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SchemaError([f"{shown_path(path)} : fichier illisible ({exc.strerror})"]) from None
    except UnicodeDecodeError:
        raise SchemaError([f"{shown_path(path)} : le fichier n'est pas en UTF-8"]) from None
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"ligne {mark.line + 1}, colonne {mark.column + 1}" if mark else "?"
        problem = str(exc.problem or exc.context or "").strip()
        french = _YAML_PROBLEMS.get(problem, problem)
        if not problem.startswith(DUPLICATE):
            french = f"YAML illisible : {french}"
        raise SchemaError([f"{shown_path(path)} : {where} — {french}"]) from None
    except yaml.YAMLError as exc:
        raise SchemaError([f"{shown_path(path)} : YAML illisible : {exc}"]) from None


def _line_numbers(path: Path) -> dict[tuple[Any, ...], int]:
    """Path inside the document → line (1-based) where its value starts (or its key)."""
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=_Loader)
    except (OSError, yaml.YAMLError):
        return {}
    lines: dict[tuple[Any, ...], int] = {}

    def walk(node: yaml.Node, where: tuple[Any, ...]) -> None:
        lines.setdefault(where, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                here = (*where, key.value)
                lines[here] = key.start_mark.line + 1
                walk(value, here)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, (*where, index))

    if root is not None:
        walk(root, ())
    return lines


# --------------------------------------------------------------------------- validation
def validate(model: type[M], data: Any, path: Path) -> M:
    """`data` (read from `path`) as `model`, or a `SchemaError` with one line per problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise SchemaError(explain(model, exc, path, data)) from None


def load(model: type[M], path: Path, empty: Any = None) -> M:
    """Read and validate one file (`empty` stands for an empty file, when that is allowed)."""
    data = read_yaml(path)
    if data is None:
        if empty is None:
            raise SchemaError([f"{shown_path(path)} : le fichier est vide"])
        data = empty
    return validate(model, data, path)


def plain(model: BaseModel) -> Any:
    """The validated data as the runtime reads it: dicts and lists, only the keys written."""
    return model.model_dump(mode="python", exclude_unset=True, by_alias=True)


def explain(
    model: type[BaseModel], exc: ValidationError, path: Path, data: Any = None
) -> list[str]:
    lines: dict[tuple[Any, ...], int] | None = None
    seen: set[str] = set()
    problems: list[str] = []
    resolved = [(error, *_resolve(model, tuple(error["loc"]))) for error in exc.errors()]
    deeper = {loc[:cut] for _, loc, _ in resolved for cut in range(len(loc))}
    for error, loc, annotation in resolved:
        if error["type"] in TYPE_NAMES and loc in deeper:
            continue  # a union's other members: the errors inside the mapping say more
        where = _format_loc(loc)
        if where in seen:  # the other members of a union on the same value
            continue
        seen.add(where)
        if lines is None:
            lines = _line_numbers(path)
        line = _line_of(lines, loc)
        message = _message(error, annotation, model, loc)
        named = _named(data, loc)
        suffix = (
            f" ({named}ligne {line})" if line else (f" ({named.rstrip(', ')})" if named else "")
        )
        problems.append(f"{shown_path(path)} : {where or '(racine)'} — {message}{suffix}")
    return problems


def _named(data: Any, loc: tuple[Any, ...]) -> str:
    """« id « actors », » for the deepest item of a list along `loc` that has an id."""
    found = ""
    node = data
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(part, int) and isinstance(node, dict) and isinstance(node.get("id"), str):
            found = f"id « {node['id']} », "
    return found


def _line_of(lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int | None:
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in lines:
            return lines[loc[:cut]]
    return None


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


# --------------------------------------------------------------------------- type walking
def _members(annotation: Any) -> list[Any]:
    """The alternatives of a union (or the annotation itself)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    return [annotation]


def _model_fields(annotation: Any) -> dict[str, Any] | None:
    if isinstance(annotation, type) and issubclass(annotation, RootModel):
        return None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {(f.alias or name): f.annotation for name, f in annotation.model_fields.items()}
    return None


def _step(annotation: Any, part: Any) -> tuple[bool, Any]:
    """(is `part` a real key or index here, the annotation of the value it leads to)."""
    for member in _members(annotation):
        if isinstance(member, type) and issubclass(member, RootModel):
            return _step(member.model_fields["root"].annotation, part)
        fields = _model_fields(member)
        if fields is not None:
            if part in fields:
                return True, fields[part]
            continue
        origin = typing.get_origin(member)
        args = typing.get_args(member)
        if origin in (list, tuple) and isinstance(part, int):
            return True, args[0] if args else Any
        if origin is dict and args:
            return True, args[1]
    return False, annotation


def _resolve(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[tuple[Any, ...], Any]:
    """`loc` without pydantic's union tags, and the annotation of the value it names."""
    annotation: Any = model
    kept: list[Any] = []
    for part in loc:
        real, nxt = _step(annotation, part)
        tagged = _tagged(annotation, part) if not real else None
        if real:
            kept.append(part)
            annotation = nxt
        elif tagged is not None:  # a union tag ("AnswerRef", "str", "list[str]"): its member
            annotation = tagged
        else:
            kept.append(part)  # an unknown key: the error is about it
            annotation = None
    return tuple(kept), annotation


def _tagged(annotation: Any, part: Any) -> Any:
    """The member of a union that pydantic's tag `part` names, else None (a real key)."""
    members = _members(annotation)
    if not isinstance(part, str) or len(members) < 2:
        return None
    for member in members:
        if getattr(member, "__name__", None) == part or str(member) == part:
            return member
    if part in ("str", "int", "float", "bool", "none") or "[" in part:
        return Any
    return None


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    _, parent = _resolve(model, loc[:-1])
    keys: list[str] = []
    for member in _members(parent):
        fields = _model_fields(member)
        if fields:
            keys += [k for k in fields if k not in keys]
    return keys


def _choices(annotation: Any) -> list[str]:
    values: list[str] = []
    for member in _members(annotation):
        if isinstance(member, type) and issubclass(member, enum.Enum):
            values += [str(m.value) for m in member]
        elif typing.get_origin(member) is typing.Literal:
            values += [str(a) for a in typing.get_args(member)]
    return values


def _listing(values: list[str]) -> str:
    shown = values[:MAX_LISTED]
    return ", ".join(shown) + (", …" if len(values) > MAX_LISTED else "")


def _closest(word: str, candidates: list[str]) -> str | None:
    found = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return found[0] if found else None


TYPE_NAMES = {
    "string_type": "un texte",
    "int_type": "un nombre entier",
    "int_parsing": "un nombre entier",
    "int_from_float": "un nombre entier",
    "float_type": "un nombre",
    "float_parsing": "un nombre",
    "bool_type": "true ou false",
    "bool_parsing": "true ou false",
    "list_type": "une liste (éléments « - … »)",
    "dict_type": "un dictionnaire (clé: valeur)",
    "model_type": "un dictionnaire (clé: valeur)",
    "model_attributes_type": "un dictionnaire (clé: valeur)",
}


def _message(error: Any, annotation: Any, model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    kind = error["type"]
    given = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, loc)
        key = str(loc[-1]) if loc else ""
        guess = _closest(key, allowed)
        hint = f" ; vouliez-vous dire « {guess} » ?" if guess else ""
        ordered = ([guess] if guess else []) + [k for k in allowed if k != guess]
        return f"clé inconnue{hint} (attendu : {_listing(ordered)})"
    if kind == "missing":
        return "clé obligatoire manquante"
    if kind in ("enum", "literal_error"):
        choices = _choices(annotation)
        guess = _closest(str(given), choices)
        hint = f" ; vouliez-vous dire « {guess} » ?" if guess else ""
        return f"valeur inconnue « {given} »{hint} (attendu : {_listing(choices)})"
    if kind in TYPE_NAMES:
        return f"{TYPE_NAMES[kind]} est attendu ici (trouvé : {_short(given)})"
    if kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt"))
        sign = "≥" if kind == "greater_than_equal" else ">"
        return f"la valeur doit être {sign} {bound} (trouvé : {_short(given)})"
    if kind in ("less_than_equal", "less_than"):
        bound = ctx.get("le", ctx.get("lt"))
        sign = "≤" if kind == "less_than_equal" else "<"
        return f"la valeur doit être {sign} {bound} (trouvé : {_short(given)})"
    if kind == "too_short":
        return f"au moins {ctx.get('min_length')} élément(s) attendu(s)"
    if kind == "string_too_short":
        return "texte vide : il faut écrire quelque chose"
    if kind == "string_pattern_mismatch":
        return f"forme inattendue « {given} » (attendu : {ctx.get('pattern')})"
    if kind == "value_error":
        return str(ctx.get("error") or error["msg"]).removeprefix("Value error, ")
    return f"valeur invalide ({error['msg']})"


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return "un dictionnaire"
    if isinstance(value, list):
        return "une liste"
    if value is None:
        return "rien"
    text = str(value)
    return f"« {text[:40]}{'…' if len(text) > 40 else ''} »"

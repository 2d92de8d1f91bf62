"""One reader per file format the harness writes, each checked against its JSON Schema.

The schemas ship in the package (harness/schemas/*.schema.json: the contract for other tools that
read these files). Every verb reads its inputs here, so a damaged, truncated, empty, binary,
foreign or wrong-typed file, a directory where a file belongs, an unreadable or a huge file is one
line naming the file and what is wrong (a `FormatError`: exit 2), never a traceback and never a
silent pass. JSON holding NaN or Infinity is refused: a non-finite number cannot pass through
`compare` or `gate` unnoticed.

Each format carries its version in one key (results.json and safety.json: `schema_version`;
calibration files and archive manifests: `version`; the others: `format`). A file without it is
read as version 1; another version is refused naming the version found. With the environment
variable PALIGEMMA_EVAL_CHECK_WRITES=1 (the tests set it) every write is checked against its
schema too, so the harness never writes a file it cannot read back.
"""

from __future__ import annotations

import json
import math
import os
import stat
import tomllib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from paligemma_eval.harness.errors import InputError, UsageError, first_few

SCHEMAS = Path(__file__).parent / "schemas"
MiB = 1 << 20


class FormatError(InputError):
    """A file the harness cannot read back: damaged, foreign, or of a format version it does not
    read. One line naming the file; exit status 2."""


@dataclass(frozen=True)
class Format:
    schema: str                  # harness/schemas/<schema>.schema.json
    title: str                   # what such a file is, in messages
    version_key: str
    versions: tuple[int, ...] = (1,)   # versions read; the last one is written
    max_bytes: int = 256 * MiB   # JSON documents: larger is not one of ours; JSONL: per line
    toml: bool = False

    @property
    def version(self) -> int:
        return self.versions[-1]

    @property
    def lines(self) -> bool:
        """One record per line of a JSONL file."""
        return self.title.endswith(" line")

    @property
    def file_title(self) -> str:
        return f"{self.title.removesuffix(' line')} file" if self.lines else self.title


RESULTS = Format("results", "results file", "schema_version")
UNIT_SCORES = Format("unit-scores", "per-example scores file", "format", max_bytes=2048 * MiB)
PREDICTION = Format("prediction", "prediction line", "format", max_bytes=16 * MiB)
SUBMISSION = Format("submission", "submission file", "format")
SAFETY = Format("safety", "safety audit file", "schema_version")
SAFETY_SCORES = Format("safety-scores", "per-caption score line", "format", max_bytes=16 * MiB)
SCORE_CACHE = Format("score-cache", "score cache line", "format", max_bytes=16 * MiB)
CALIBRATION = Format("calibration", "calibration file", "version", max_bytes=64 * MiB)
MANIFEST = Format("archive-manifest", "score archive manifest", "version", max_bytes=16 * MiB)
POLICY = Format("gate-policy", "gate policy", "format", max_bytes=1 * MiB, toml=True)
BROWSER = Format("browser", "sample browser manifest", "format", max_bytes=16 * MiB)
FORMATS = (RESULTS, UNIT_SCORES, PREDICTION, SUBMISSION, SAFETY, SAFETY_SCORES, SCORE_CACHE,
           CALIBRATION, MANIFEST, POLICY, BROWSER)


def schema(fmt: Format) -> dict[str, Any]:
    return _schemas()[fmt.schema]


@cache
def _schemas() -> dict[str, dict[str, Any]]:
    return {path.name.removesuffix(".schema.json"): json.loads(path.read_text())
            for path in sorted(SCHEMAS.glob("*.schema.json"))}


@cache
def _validator(name: str) -> Any:
    """A Draft 2020-12 validator whose arrays of plain numbers or strings are checked in one pass
    (a scores file holds millions of them; the per-item walk took seconds), with the per-item
    walk kept for the error message when one is wrong."""
    from jsonschema import Draft202012Validator, validators
    from referencing import Registry, Resource

    registry = Registry().with_resources(
        (document["$id"], Resource.from_contents(document)) for document in _schemas().values())
    plain = {"number": lambda v: type(v) in (int, float), "string": lambda v: type(v) is str}
    draft_items = Draft202012Validator.VALIDATORS["items"]

    def items(validator: Any, subschema: Any, instance: Any, parent: dict) -> Iterator[Any]:
        check = plain.get(subschema.get("type")) if isinstance(subschema, dict) and \
            len(subschema) == 1 else None
        if check is not None and isinstance(instance, list) and all(map(check, instance)):
            return
        yield from draft_items(validator, subschema, instance, parent)

    fast = validators.extend(Draft202012Validator, {"items": items})
    return fast(_schemas()[name], registry=registry)


# --- messages -----------------------------------------------------------------------------------

def clipped(text: Any, limit: int = 80) -> str:
    """Untrusted text for a one-line message: control characters escaped, at most `limit`."""
    text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in str(text))
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
             int: "an integer", float: "a number", type(None): "null"}
    kind = names.get(type(value), type(value).__name__)
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return f"{kind} ({clipped(repr(value), 40)})"
    return kind


TYPE_WORDS = {"object": "an object", "array": "a list", "string": "a string", "number": "a number",
              "integer": "an integer", "boolean": "true or false", "null": "null"}


def _where(fmt: Format, path: list[Any]) -> str:
    if fmt.toml:
        *table, key = path if path else [""]
        return f"[{'.'.join(map(str, table))}] {key}" if table else str(key)
    return ".".join(clipped(p, 40) for p in path)


def describe(error: Any, fmt: Format) -> str:
    """A jsonschema error as a short phrase: where in the file, and what is wrong there."""
    path = list(error.absolute_path)
    where = _where(fmt, path)
    at = f"{where} " if where else ""
    kind, value, instance = error.validator, error.validator_value, error.instance
    if kind == "type":
        types = [value] if isinstance(value, str) else value
        if not path and "object" in types:
            return f"not a {fmt.title}: it holds {_kind(instance)}, not an object"
        return f"{at}must be {' or '.join(TYPE_WORDS.get(t, t) for t in types)}, got " \
               f"{_kind(instance)}"
    if kind == "required":
        missing = next((k for k in value if k not in instance), value[0])
        if fmt.lines:
            return f"{at}without \"{missing}\""
        if not path:
            return f"not a {fmt.title}: no \"{missing}\" (a file of another tool or kind?)"
        return f"{where}: no \"{missing}\""
    if kind == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        extra = sorted(k for k in instance if k not in known)
        if fmt.toml and not path:
            return f"unknown table(s) {', '.join(map(clipped, extra))} (known: " \
                   f"{', '.join(k for k in known if k != 'format')})"
        table = f"[{'.'.join(map(str, path))}] " if fmt.toml else at
        return f"{table}unknown key {clipped(extra[0])!r} (known: {', '.join(known)})"
    if kind == "const":
        if path == ["kind"]:     # the key that tells the harness's JSON files apart
            return f"not a {fmt.title}: \"kind\" is {_kind(instance)}, not {value!r}"
        return f"{at}must be {value!r}, got {_kind(instance)}"
    if kind in ("minItems", "maxItems"):
        return f"{at}must hold {value} item(s), holds {len(instance)}"
    if kind in ("minimum", "maximum"):
        return f"{at}must be {'at least' if kind == 'minimum' else 'at most'} {value}, got " \
               f"{_kind(instance)}"
    return f"{at}{clipped(error.message, 120)}".strip()


def _check_version(document: Any, fmt: Format) -> str | None:
    """None when the version is one this harness reads; else why not."""
    if not isinstance(document, dict) or fmt.version_key not in document:
        return None     # no version: version 1, the first (or not an object: the schema says)
    found = document[fmt.version_key]
    if type(found) is not int:
        return f"{fmt.version_key} is {_kind(found)}, not a format version"
    if found in fmt.versions:
        return None
    if found > fmt.version:
        return f"format version {found} (from a newer paligemma-eval; this one reads " \
               f"{_versions(fmt)}): upgrade paligemma-eval to read it"
    return f"format version {found}, which this paligemma-eval no longer reads (it reads " \
           f"{_versions(fmt)}); regenerate the file"


def _versions(fmt: Format) -> str:
    return "version " + ", ".join(map(str, fmt.versions))


# Keywords whose verdict depends only on a value's shape: its keys, the JSON types of its values
# (a float that is integral apart), and whether a string is empty (minLength 1). For a schema
# made of these alone, two values of one shape get one verdict, so a JSONL file's lines
# (thousands, all of a few shapes) are checked by jsonschema once per shape.
SHAPE_KEYWORDS = {"$schema", "$id", "title", "description", "type", "required", "properties",
                  "additionalProperties", "items", "if", "then", "else", "minLength"}


def _shape_only(node: Any) -> bool:
    if isinstance(node, list):
        return all(map(_shape_only, node))
    if not isinstance(node, dict):
        return True
    if not set(node) <= SHAPE_KEYWORDS or node.get("minLength", 1) != 1:
        return False
    subschemas = [*node.get("properties", {}).values(), node.get("additionalProperties"),
                  node.get("items"), node.get("if"), node.get("then"), node.get("else")]
    return all(_shape_only(s) for s in subschemas if isinstance(s, dict))


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple((key, _shape(item)) for key, item in sorted(value.items()))
    if isinstance(value, list):
        return ("list", frozenset(map(_shape, value)))
    if isinstance(value, str):
        return "str" if value else "empty str"
    if isinstance(value, float):    # 1.0 is an integer to JSON Schema, 1.5 is not
        return "integral float" if value.is_integer() else "float"
    return type(value).__name__


@cache
def _shape_verdicts(name: str) -> dict[Any, bool] | None:
    """Verdicts by value shape, for a schema whose verdicts depend on shape alone; else None."""
    return {} if _shape_only(_schemas()[name]) else None


def problem(document: Any, fmt: Format) -> str | None:
    """What is wrong with a parsed document (or line) of this format: None when nothing is."""
    from jsonschema.exceptions import best_match

    wrong_version = _check_version(document, fmt)
    if wrong_version:
        return wrong_version
    validator = _validator(fmt.schema)
    verdicts = _shape_verdicts(fmt.schema) if fmt.lines else None
    if verdicts is not None:
        shape = _shape(document)
        if shape not in verdicts:
            verdicts[shape] = validator.is_valid(document)
        valid = verdicts[shape]
    else:
        valid = validator.is_valid(document)
    return None if valid else describe(best_match(validator.iter_errors(document)), fmt)


def check(document: Any, fmt: Format, name: str) -> Any:
    wrong = problem(document, fmt)
    if wrong:
        raise FormatError(f"{name}: {wrong}")
    return document


def checking_writes() -> bool:
    return os.environ.get("PALIGEMMA_EVAL_CHECK_WRITES") == "1"


def check_write(text: str, fmt: Format, path: Path) -> None:
    """In tests (PALIGEMMA_EVAL_CHECK_WRITES=1): what is about to be written must read back."""
    if not checking_writes():
        return
    try:
        wrong = problem(parse_json(text), fmt)
    except ValueError as error:
        wrong = str(error).replace("{title}", fmt.title)
    if wrong:
        raise AssertionError(f"the harness was about to write a {fmt.title} it cannot read back, "
                             f"{path}: {wrong}")


# --- reading ------------------------------------------------------------------------------------

def _size(n: int) -> str:
    return f"{n / MiB:.1f} MiB" if n >= MiB else f"{n} bytes"


def _open_checked(path: Path, fmt: Format, name: str, whole: bool) -> Any:
    """The file open for reading in binary, after the checks that need no reading."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise FormatError(f"{name}: no such file") from None
    except OSError as error:
        raise FormatError(f"{name}: cannot be read ({error.strerror})") from None
    if stat.S_ISDIR(info.st_mode):
        raise FormatError(f"{name}: a directory, not a {fmt.file_title}")
    if not stat.S_ISREG(info.st_mode):
        raise FormatError(f"{name}: not a regular file")
    if whole and info.st_size > fmt.max_bytes:
        raise FormatError(f"{name}: {_size(info.st_size)}, larger than any {fmt.title} "
                          f"(limit {_size(fmt.max_bytes)}): not a {fmt.title}?")
    try:
        return open(path, "rb")
    except OSError as error:
        raise FormatError(f"{name}: cannot be read ({error.strerror})") from None


def _reject_constant(constant: str) -> None:
    raise ValueError(f"holds {constant}, which a {{title}} never does (a non-finite number)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"holds {text}, which a {{title}} never does (a non-finite number)")
    return value


def parse_json(text: str) -> Any:
    return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)


def _parse_problem(error: Exception, text: str, fmt: Format) -> str:
    if isinstance(error, json.JSONDecodeError):
        if error.pos >= len(text.rstrip()) or error.msg.startswith("Unterminated string"):
            return f"cut short: the JSON ends early at line {text.count(chr(10)) + 1}: " \
                   f"truncated?"
        return f"not JSON: {error}"
    if isinstance(error, tomllib.TOMLDecodeError):
        return f"not TOML: {error}"
    return str(error).replace("{title}", fmt.title)


def read_document(path: Path, fmt: Format, name: str | None = None,
                  check_schema: bool = True) -> Any:
    """A whole JSON (or TOML) file of this format, checked; `name` is how messages name it."""
    name = name or str(path)
    with _open_checked(path, fmt, name, whole=True) as handle:
        try:
            data = handle.read(fmt.max_bytes + 1)
        except OSError as error:
            raise FormatError(f"{name}: cannot be read ({error.strerror})") from None
    if not data.strip():
        raise FormatError(f"{name}: empty file, not a {fmt.title} (cut short by a full disk or "
                          f"a kill?)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise FormatError(f"{name}: not text (byte {error.start} is not UTF-8): not a "
                          f"{fmt.title}") from None
    try:
        document = tomllib.loads(text, parse_float=_finite_float) if fmt.toml else \
            parse_json(text)
    except (ValueError, tomllib.TOMLDecodeError) as error:
        raise FormatError(f"{name}: not a readable {fmt.title} "
                          f"({_parse_problem(error, text, fmt)})") from None
    return check(document, fmt, name) if check_schema else document


LastLine = Literal["ignore", "refuse", "accept"]


def _lines(numbers: list[int]) -> str:
    return f"line{'s' if len(numbers) > 1 else ''} {first_few(list(map(str, numbers)), 10)}"


# What a run directory holds that verbs read back: an output flag must never overwrite one.
RUN_FILES = ("results.json", "safety.json", "safety_scores.jsonl", "score_cache.jsonl")
RUN_FOLDERS = ("predictions", "scores", "browser")


def refuse_overwriting(output: Path, flag: str, inputs: Iterable[Path]) -> None:
    """A UsageError when `output` is one of `inputs` or a file of an input run directory (its
    results.json, predictions, scores, ...): writing it would destroy what was read, exit 0."""
    target = output.resolve()
    for given in inputs:
        source = given.resolve()
        run = source if source.is_dir() else source.parent
        inside = target.parent == run and target.name in RUN_FILES or \
            target.parent.parent == run and target.parent.name in RUN_FOLDERS
        if target == source or inside:
            raise UsageError(f"{flag} {output}: " + (
                "that is an input of this command" if target == source else
                f"that is a file of the run {given}") + "; it would be overwritten: write "
                "elsewhere")


def read_lines(path: Path, fmt: Format, name: str | None = None, last_line: LastLine = "ignore",
               extra_check: Callable[[dict], str | None] | None = None
               ) -> list[tuple[int, dict]]:
    """(line number, record) for every line of a JSONL file of this format, each checked.

    A last line without its newline is a write cut short by a kill: `ignore` it (the file's
    writer cuts it off on its next append), `refuse` it (a file written whole), or `accept` it
    (files made by other tools). Blank lines are skipped. Every bad line is collected, and the
    error names them all (by problem) in one line."""
    name = name or str(path)
    records: list[tuple[int, dict]] = []
    bad: dict[str, list[int]] = {}
    with _open_checked(path, fmt, name, whole=False) as handle:
        number = 0
        while True:
            try:
                raw = handle.readline(fmt.max_bytes + 1)
            except OSError as error:
                raise FormatError(f"{name}: cannot be read ({error.strerror})") from None
            if not raw:
                break
            number += 1
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):   # editors on Windows add one
                raw = raw[3:]
            if len(raw) > fmt.max_bytes:
                raise FormatError(f"{name}: line {number} is longer than {_size(fmt.max_bytes)}: "
                                  f"not a file of {fmt.title}s")
            if not raw.endswith(b"\n"):
                if last_line == "ignore":
                    break
                if last_line == "refuse" and raw.strip():
                    bad.setdefault("cut short (no newline: the file is truncated)", []) \
                        .append(number)
                    break
            if not raw.strip():
                continue
            record, wrong = _parse_line(raw, fmt)
            if wrong is None and extra_check is not None:
                wrong = extra_check(record)
            if wrong is not None:
                bad.setdefault(wrong, []).append(number)
            else:
                records.append((number, record))
    if bad:
        raise FormatError(f"{name}: " + "; ".join(f"{_lines(n)} {p}" for p, n in bad.items()))
    return records


def _parse_line(raw: bytes, fmt: Format) -> tuple[Any, str | None]:
    """A line's record, or what is wrong with it."""
    try:
        record = parse_json(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "not text (not UTF-8)"
    except json.JSONDecodeError:
        return None, "not a JSON object"
    except ValueError as error:
        return None, str(error).replace("{title}", fmt.title)
    if isinstance(record, list):   # json.dump of a list: the whole file on one line
        return None, "not a JSON object but an array (JSON Lines: one object per line)"
    if not isinstance(record, dict):
        return None, "not a JSON object"
    return record, problem(record, fmt)


# --- the formats' own readers -----------------------------------------------------------------

def read_results(path: Path, name: str | None = None) -> dict[str, Any]:
    return read_document(path, RESULTS, name)


def read_safety(path: Path, name: str | None = None) -> dict[str, Any]:
    return read_document(path, SAFETY, name)


def read_run_document(path: Path) -> dict[str, Any]:
    """results.json or safety.json, told apart by the safety audit's `kind`."""
    document = read_document(path, RESULTS, check_schema=False)
    is_safety = isinstance(document, dict) and document.get("kind") == "safety"
    return check(document, SAFETY if is_safety else RESULTS, str(path))


def read_unit_scores(path: Path) -> dict[str, Any]:
    document = read_document(path, UNIT_SCORES)
    units = len(document["units"])
    for metric, ratio in document["ratios"].items():
        for part in ("num", "den"):
            if len(ratio[part]) != units:
                raise FormatError(f"{path}: ratios.{clipped(metric, 40)}.{part} holds "
                                  f"{len(ratio[part])} values for {units} units")
    return document


def read_calibration(path: Path, name: str | None = None) -> dict[str, Any]:
    name = name or str(path)
    document = read_document(path, CALIBRATION, name)
    for attribute, fitted in document["attributes"].items():
        if len(fitted["map"]["x"]) != len(fitted["map"]["y"]):
            raise FormatError(f"{name}: attributes.{clipped(attribute, 40)}.map: x and y "
                              f"differ in length")
    return document


def read_browser(path: Path) -> dict[str, Any]:
    return read_document(path, BROWSER)


def read_policy(path: Path) -> dict[str, Any]:
    return read_document(path, POLICY, f"--policy {path}")


def read_manifest(data: bytes, name: str) -> dict[str, Any]:
    """An archive's manifest.json (its bytes, read from the zip), checked."""
    label = f"{name}: manifest.json"
    try:
        text = data.decode("utf-8")
        document = parse_json(text)
    except UnicodeDecodeError:
        raise FormatError(f"{label}: not text (not UTF-8)") from None
    except ValueError as error:
        raise FormatError(f"{label}: not a readable {MANIFEST.title} "
                          f"({_parse_problem(error, text, MANIFEST)})") from None
    return check(document, MANIFEST, label)


def prediction_ids_unique() -> Callable[[dict], str | None]:
    """A check for `read_lines`: each id once (a file given to `score`)."""
    seen: set[str] = set()

    def unique(record: dict) -> str | None:
        key = str(record["id"])
        if key in seen:
            return "repeat an id given earlier"
        seen.add(key)
        return None
    return unique


# --- writing ------------------------------------------------------------------------------------

def dumps(document: Any, fmt: Format, path: Path, **options: Any) -> str:
    """The JSON text of a document of this format (checked in tests)."""
    text = json.dumps(document, **options)
    check_write(text, fmt, path)
    return text


def dump_line(record: dict, fmt: Format, path: Path) -> str:
    text = json.dumps(record, ensure_ascii=False)
    check_write(text, fmt, path)
    return text + "\n"


# --- every file under a directory ---------------------------------------------------------------

def format_of(path: Path) -> Format | None:
    """The format of a file the harness writes, from where it lies in a run directory."""
    parent, name = path.parent.name, path.name
    if name == "results.json":
        return RESULTS
    if name == "safety.json":
        return SAFETY
    if name == "safety_scores.jsonl":
        return SAFETY_SCORES
    if name == "score_cache.jsonl":
        return SCORE_CACHE
    if parent == "scores" and name.endswith(".json"):
        return UNIT_SCORES
    if parent == "predictions" and name.endswith(".jsonl"):
        return PREDICTION
    if parent == "submissions" and name.endswith(".json"):
        return SUBMISSION
    if name == "browser.json":
        return BROWSER
    return None


def check_tree(root: Path) -> dict[str, int]:
    """Read back every file the harness wrote under `root`, each with its own reader; returns
    how many files of each format were checked. Raises FormatError at the first bad one."""
    counts: dict[str, int] = {}
    for path in sorted(root.rglob("*")):
        fmt = format_of(path)
        if fmt is None or not path.is_file():
            continue
        if fmt in (PREDICTION, SAFETY_SCORES, SCORE_CACHE):
            read_lines(path, fmt, last_line="refuse")
        elif fmt is UNIT_SCORES:
            read_unit_scores(path)
        else:
            read_document(path, fmt)
        counts[fmt.schema] = counts.get(fmt.schema, 0) + 1
    return counts

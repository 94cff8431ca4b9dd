"""What docs/CONTRACT.md promises, read out of its prose: operations, the fields
of what they take and answer, status values and error codes.

The contract is written for people, so this reads only the forms it uses:
``METHOD /path {fields}`` spans, ``→ [status] [Name +] `{fields}``` answers,
``Name: `{fields}``` definitions, `` `field`: ... `{fields}` `` refinements,
"Status values" bullets and the "Errors" bullet. tests/test_contract.py checks
each promise against the OpenAPI document.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

CONTRACT_PATH = Path(__file__).resolve().parents[1] / "docs" / "CONTRACT.md"
API_PREFIX = "/api/v1"
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
SPAN = re.compile(r"`([^`]+)`")
OPERATION = re.compile(rf"^({'|'.join(METHODS)}) (/[^\s{{?]*(?:\{{[^}}]+\}}[^\s{{?]*)*)(\?\S*)?(?: (\{{.*\}}))?$")
IDENT = re.compile(r"^[a-z][a-z0-9_]*$")
STATUS = re.compile(r"\b([2-5]\d\d)\b")


@dataclass
class Field:
    name: str
    optional: bool = False
    fields: dict[str, "Field"] = field(default_factory=dict)  # an object's fields (refs resolved)
    refs: list[str] = field(default_factory=list)  # named shapes it is made of (LotSummary + ...)
    is_map: bool = False  # {kind: template_id}: an object keyed by values


@dataclass
class Operation:
    method: str
    path: str  # as the contract writes it: /lots/{id}
    section: str
    text: str  # the bullet it is promised in
    query: list[str] = field(default_factory=list)
    body: dict[str, Field] = field(default_factory=dict)
    statuses: set[int] = field(default_factory=set)
    answer: Field | None = None  # the success answer's shape
    needs_token: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return self.method, document_path(self.path)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def document_path(path: str) -> str:
    """``/lots/{id}`` → ``/api/v1/lots/{}``: parameter names differ, places must not."""
    return API_PREFIX + re.sub(r"\{[^}]+\}", "{}", path)


# --- the brace notation: {a, b?, c: {d}, e: Name + f, g: [Name], h: {key: value}} ---

TOKEN = re.compile(r'\s*(?:(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<string>"[^"]*")|(?P<punct>[{}\[\],:?+|]))')


def _tokens(text: str) -> list[str]:
    tokens, position = [], 0
    text = text.replace("...", "")
    while position < len(text.rstrip()):
        match = TOKEN.match(text, position)
        if not match:
            raise ValueError(f"cannot read {text!r} at {text[position:]!r}")
        tokens.append(match.group(match.lastgroup))
        position = match.end()
    return tokens


def parse_shape(text: str) -> Field:
    tokens = _tokens(text)
    shape, rest = _shape(tokens, "")
    if rest:
        raise ValueError(f"left over in {text!r}: {rest}")
    return shape


def _shape(tokens: list[str], name: str) -> tuple[Field, list[str]]:
    assert tokens[0] == "{", tokens
    tokens = tokens[1:]
    shape = Field(name)
    valued = []
    while tokens[0] != "}":
        item = Field(tokens[0])
        tokens = tokens[1:]
        if tokens[0] == "?":
            item.optional, tokens = True, tokens[1:]
        if tokens[0] == ":":
            valued.append(item)
            tokens = _value(tokens[1:], item)
        shape.fields[item.name] = item
        if tokens[0] == ",":
            tokens = tokens[1:]
    if len(shape.fields) == 1 and valued and not valued[0].fields and not valued[0].is_map and not any(r[0].isupper() for r in valued[0].refs):
        # {kind: template_id}, {template_id: "accept"|"reject"}: keys stand for values.
        shape = Field(name, is_map=True)
    return shape, tokens[1:]


def _value(tokens: list[str], item: Field) -> list[str]:
    while True:
        token = tokens[0]
        if token == "{":
            nested, tokens = _shape(tokens, item.name)
            item.fields.update(nested.fields)
            item.is_map = nested.is_map
        elif token == "[":
            tokens = _value(tokens[1:], item)
            assert tokens[0] == "]", tokens
            tokens = tokens[1:]
        elif token.startswith('"'):
            tokens = tokens[1:]
        elif token[0].isupper():
            item.refs.append(token)
            tokens = tokens[1:]
        else:
            # ``Name + next_min_bid``: a field added to a named shape; alone, a placeholder.
            item.refs.append(token)
            tokens = tokens[1:]
        if tokens[0] not in ("+", "|"):
            return tokens
        tokens = tokens[1:]


# --- the document's structure ---


@dataclass
class Bullet:
    chapter: str  # the "## " heading
    section: str  # the "### " heading under it, if any
    text: str
    children: list[str] = field(default_factory=list)


def _bullets(markdown: str) -> list[Bullet]:
    bullets: list[Bullet] = []
    chapter = section = ""
    current: Bullet | None = None
    child = False
    for line in markdown.splitlines():
        if line.startswith("## "):
            chapter, section, current = line[3:].strip(), "", None
        elif line.startswith("### "):
            section, current = line[4:].strip(), None
        elif line.startswith("- "):
            current, child = Bullet(chapter, section, line[2:]), False
            bullets.append(current)
        elif line.startswith("  - ") and current is not None:
            current.children.append(line[4:])
            child = True
        elif line.startswith("  ") and current is not None:
            if child:
                current.children[-1] += " " + line.strip()
            else:
                current.text += " " + line.strip()
        else:
            current = None
    return bullets


@dataclass
class Contract:
    operations: list[Operation]
    named: dict[str, Field]  # Special, LotSummary, Deposit, Order, Payment, UserCoupon
    refinements: dict[str, Field]  # `cover`, `my`, `fulfilment`: the fields inside them
    statuses: dict[str, list[str]]  # "Lot status" → values
    error_codes: list[str]
    idempotent: list[str]  # paths whose POST takes Idempotency-Key
    also_has: dict[str, list[str]]  # "Lot also has ..." → fields


def read_contract(path: Path = CONTRACT_PATH) -> Contract:
    markdown = path.read_text(encoding="utf-8")
    bullets = _bullets(markdown)
    named: dict[str, Field] = {}
    for match in re.finditer(r"\b([A-Z][A-Za-z]+):?\s+`(\{[^`]*\})`", markdown):
        named.setdefault(match.group(1), parse_shape(match.group(2)))
    contract = Contract([], named, {}, {}, [], [], {})
    for bullet in bullets:
        if bullet.chapter == "Status values":
            _status_bullet(contract, bullet.text)
        elif bullet.chapter == "Conventions" and bullet.text.startswith("Errors:"):
            _error_codes(contract, " ".join([bullet.text, *bullet.children]))
        elif bullet.chapter == "Conventions" and bullet.text.startswith("Retries:"):
            contract.idempotent = [span.split()[-1] for span in SPAN.findall(bullet.text) if "/" in span]
        elif bullet.chapter == "Endpoints":
            _endpoint_bullet(contract, bullet)
    merged: dict[tuple[str, str], Operation] = {}
    for operation in contract.operations:
        # `GET /lots/{id}` is promised in several bullets: its answer in one, its 304 in another.
        first = merged.setdefault(operation.key, operation)
        if first is not operation:
            first.statuses |= operation.statuses
            first.query += [name for name in operation.query if name not in first.query]
            first.body.update(operation.body)
            first.answer = first.answer or operation.answer
            first.needs_token = first.needs_token or operation.needs_token
    contract.operations = list(merged.values())
    return contract


def _status_bullet(contract: Contract, text: str) -> None:
    match = re.match(r"^([A-Z][\w ]*?) `([\w.]+)`: (.*)$", text)
    if match:
        values = [span for span in SPAN.findall(match.group(3)) if IDENT.match(span)]
        contract.statuses[f"{match.group(1)} {match.group(2)}"] = list(dict.fromkeys(values))


def _error_codes(contract: Contract, text: str) -> None:
    not_codes = {"code", "message", "detail", "next_min_bid", "true", "false", "null"}
    codes = [span for span in SPAN.findall(text) if IDENT.match(span) and span not in not_codes]
    contract.error_codes = list(dict.fromkeys(codes))


def _pieces(text: str) -> list[tuple[str, str]]:
    """The bullet as ("text", ...) and ("span", ...) pieces, in order."""
    pieces, position = [], 0
    for match in SPAN.finditer(text):
        pieces.append(("text", text[position:match.start()]))
        pieces.append(("span", match.group(1)))
        position = match.end()
    pieces.append(("text", text[position:]))
    return pieces


def _endpoint_bullet(contract: Contract, bullet: Bullet) -> None:
    pieces = _pieces(bullet.text)
    _refinements(contract, pieces)
    also = re.match(r"^(\w+) also has ", bullet.text)
    if also:
        contract.also_has[also.group(1)] = [span for kind, span in pieces if kind == "span" and IDENT.match(span)]
    shape = re.match(r"^([A-Z]\w+): `", bullet.text)
    for field_name, *values in re.findall(r"`(\w+)` is `(\w+)` or `(\w+)`", bullet.text) if shape else ():
        contract.statuses[f"{shape.group(1)} {field_name}"] = values  # "`purpose` is `deposit` or `order`"
    answered: list[Operation] = []  # promised before the first →: the answer is theirs
    others: list[Operation] = []
    answer_at = None
    for index, (kind, value) in enumerate(pieces):
        if kind == "text" and "→" in value and answered and answer_at is None:
            answer_at = index
        if kind != "span":
            continue
        operations = answered if answer_at is None else others
        last = (answered + others)[-1] if answered or others else None
        match = OPERATION.match(value)
        if match:
            method, path, query, body = match.groups()
            operation = Operation(method, path, bullet.section, bullet.text)
            operation.query = re.findall(r"(\w+)=", query or "")
            if body:
                operation.body = parse_shape(body).fields
            operations.append(operation)
        elif value in METHODS and last:
            operations.append(Operation(value, last.path, bullet.section, bullet.text))  # `PUT /x` / `DELETE`
        elif value.startswith("{") and last and answer_at is None:
            last.body.update(parse_shape(value).fields)  # `POST /deposits {lot_id}` or `{special_id}`
    if not answered:
        return
    prose = "".join(value for kind, value in pieces if kind == "text")
    statuses = {int(status) for status in STATUS.findall(prose)}
    answer = _answer(contract, pieces[answer_at:]) if answer_at is not None else None
    needs_token = "(token)" in bullet.section or bool(re.search(r"\(token\b", bullet.text))
    for operation in answered:
        operation.statuses = set(statuses)
        operation.answer = answer
    for operation in answered + others:
        operation.needs_token = needs_token and "(public)" not in bullet.text
    contract.operations.extend(answered + others)


def _answer(contract: Contract, pieces: list[tuple[str, str]]) -> Field | None:
    """After ``→``: ``[status] [list of] [Name +] `{fields}```, up to the sentence's end."""
    answer = Field("answer")
    first = True
    for kind, value in pieces:
        if kind == "text":
            text = value.split("→", 1)[1] if first else value
            first = False
            head, *ended = re.split(r"[;.(]", text, maxsplit=1)
            for word in re.findall(r"[A-Za-z_]+", head):
                if word in contract.named:
                    answer.refs.append(word)
                elif word not in ("list", "of"):
                    return _resolved(contract, answer)
            if ended:
                return _resolved(contract, answer)
        elif value.startswith("{"):
            answer.fields.update(parse_shape(value).fields)
        else:
            break
    return _resolved(contract, answer)


def _resolved(contract: Contract, shape: Field) -> Field | None:
    """Named shapes (``LotSummary + next_min_bid``) replaced by their fields, all the way down."""
    for ref in shape.refs:
        if ref in contract.named:
            for name, item in contract.named[ref].fields.items():
                shape.fields.setdefault(name, item)
        elif IDENT.match(ref) and not shape.is_map and (shape.fields or any(r in contract.named for r in shape.refs)):
            shape.fields.setdefault(ref, Field(ref))
    for item in shape.fields.values():
        _resolved(contract, item)
    return shape if shape.fields or shape.is_map else None


def _refinements(contract: Contract, pieces: list[tuple[str, str]]) -> None:
    """`` `cover` and each of `images`: `{url, width, height}` ``: the fields inside those;
    `` `params` is what ... (`timeStamp, nonceStr, ...`) ``: the same, as a list."""
    names: list[str] = []
    between = ""
    last_name = None
    for kind, value in pieces:
        if kind == "text":
            between = value
            if ";" in value:
                last_name = None
            if names and ":" not in value and not re.fullmatch(r"\s*(and( each of)?|,)\s*", value):
                names = []
        elif IDENT.match(value):
            names.append(value)
            last_name = value
        elif value.startswith("{") and names and ":" in between:
            for name in names:
                contract.refinements[name] = parse_shape(value)
            names = []
        elif re.fullmatch(r"[A-Za-z_]\w*(, [A-Za-z_]\w*)+", value) and last_name:
            contract.refinements[last_name] = parse_shape("{" + value + "}")
            names = []
        else:
            names = []

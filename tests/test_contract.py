"""The OpenAPI document keeps every promise of the contract (docs/CONTRACT.md, a
copy of ../shared/CONTRACT.md), and the committed snapshot of the document
(clients/miniprogram/openapi.json, what the typed client is generated from) is
the document the code serves now.

Each test collects every broken promise and names them all in its failure.
"""

from pathlib import Path

import pytest

from api.openapi_document import SNAPSHOT_PATH, openapi_document
from tests.contract_doc import CONTRACT_PATH, Field, Operation, document_path, read_contract

SHARED_CONTRACT = Path(__file__).resolve().parents[2] / "shared" / "CONTRACT.md"
# Promised by the contract, not served yet; each names the issue that brings it.
# Remove an entry when its operation lands (test_known_gaps_are_still_gaps says so).
KNOWN_GAPS: dict[str, str] = {}
MONEY = {
    "price", "start_price", "current_price", "next_min_bid", "increment", "deposit", "amount", "min_amount",
    "premium", "deposit_credit", "coupon_discount", "amount_due", "max_price", "max_total", "committed",
    "buy_now_price", "auto_bid_max", "reserve_price",
}
TIMES = {"pay_deadline", "server_time", "valid_from", "valid_until"}


@pytest.fixture(scope="module")
def document() -> dict:
    return openapi_document()


@pytest.fixture(scope="module")
def contract():
    return read_contract()


def resolve(document: dict, schema: dict) -> dict:
    """Follow ``$ref``; of ``anyOf: [X, null]`` keep X; merge ``allOf``."""
    while True:
        if "$ref" in schema:
            schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        elif "anyOf" in schema or "oneOf" in schema:
            members = [member for member in schema.get("anyOf", schema.get("oneOf")) if member.get("type") != "null"]
            if len(members) != 1:
                return schema
            schema = members[0]
        elif "allOf" in schema:
            merged: dict = {"type": "object", "properties": {}, "required": []}
            for member in schema["allOf"]:
                part = resolve(document, member)
                merged["properties"].update(part.get("properties", {}))
                merged["required"] += part.get("required", [])
            return merged
        else:
            return schema


def operation_of(document: dict, method: str, path: str) -> dict | None:
    for documented, operations in document["paths"].items():
        if document_path(documented.removeprefix("/api/v1")) == path:
            return operations.get(method.lower())
    return None


def scalar_type(document: dict, schema: dict) -> str | None:
    schema = resolve(document, schema)
    return schema.get("type") if "properties" not in schema and "items" not in schema else None


def missing_fields(document: dict, schema: dict, expected: Field, where: str, refinements: dict[str, Field]) -> list[str]:
    schema = resolve(document, schema)
    if schema.get("type") == "array":
        schema = resolve(document, schema["items"])
    properties = schema.get("properties", {})
    if {"items", "count"} <= set(properties) and not {"items", "count"} & set(expected.fields):
        return missing_fields(document, properties["items"], expected, f"{where}.items[]", refinements)
    if expected.is_map:
        return [] if "additionalProperties" in schema else [f"{where}: not an object keyed by values"]
    problems = []
    for name, item in expected.fields.items():
        if name not in properties:
            problems.append(f"{where}: no field `{name}`")
            continue
        if item.optional and name in schema.get("required", ()):
            problems.append(f"{where}: `{name}` is optional in the contract, required in the document")
        nested = item if item.fields or item.is_map else refinements.get(name)
        if nested is not None:
            problems += missing_fields(document, properties[name], nested, f"{where}.{name}", refinements)
    return problems


def success_status(operation: Operation) -> str:
    successes = sorted(status for status in operation.statuses if 200 <= status < 300)
    return str(successes[0]) if successes else "200"


def checked(contract) -> list[Operation]:
    return [operation for operation in contract.operations if str(operation) not in KNOWN_GAPS]


def test_docs_contract_is_the_shared_contract():
    if not SHARED_CONTRACT.exists():
        pytest.skip(f"{SHARED_CONTRACT} is not beside this checkout; docs/CONTRACT.md is checked as committed")
    assert CONTRACT_PATH.read_text(encoding="utf-8") == SHARED_CONTRACT.read_text(encoding="utf-8"), (
        f"docs/CONTRACT.md differs from {SHARED_CONTRACT}: copy the contract over and commit it"
    )


def test_the_committed_snapshot_is_the_document_the_code_serves(document):
    import json

    committed = json.loads(SNAPSHOT_PATH.read_text(encoding="utf-8"))
    if committed == document:
        return
    changes = []
    for part, old, new in (
        ("path", committed.get("paths", {}), document["paths"]),
        ("schema", committed.get("components", {}).get("schemas", {}), document["components"]["schemas"]),
    ):
        changes += [f"{part} {name}: new" for name in new.keys() - old.keys()]
        changes += [f"{part} {name}: gone" for name in old.keys() - new.keys()]
        changes += [f"{part} {name}: changed" for name in old.keys() & new.keys() if old[name] != new[name]]
    rest = {key for key in committed.keys() | document.keys() if committed.get(key) != document.get(key)} - {"paths", "components"}
    changes += [f"{key}: changed" for key in sorted(rest)]
    pytest.fail(
        f"{SNAPSHOT_PATH.name} is not what the API serves now; run `make client` and commit the result:\n  "
        + "\n  ".join(sorted(changes) or ["components changed"])
    )


def test_every_promised_operation_is_served(document, contract):
    missing = [str(operation) for operation in checked(contract) if operation_of(document, *operation.key) is None]
    assert not missing, "promised by the contract, missing from the OpenAPI document:\n  " + "\n  ".join(missing)


def test_known_gaps_are_still_gaps(document, contract):
    promised = {str(operation): operation for operation in contract.operations}
    unknown = [name for name in KNOWN_GAPS if name not in promised]
    landed = [name for name in KNOWN_GAPS if name in promised and operation_of(document, *promised[name].key)]
    assert not unknown, f"KNOWN_GAPS names operations the contract does not promise: {unknown}"
    assert not landed, f"these are served now: remove them from KNOWN_GAPS so they are checked: {landed}"


def test_every_promised_status_code_and_token_is_documented(document, contract):
    problems = []
    for operation in checked(contract):
        documented = operation_of(document, *operation.key)
        if documented is None:
            continue
        for status in sorted(operation.statuses | {int(success_status(operation))} if operation.answer else operation.statuses):
            if str(status) not in documented["responses"]:
                problems.append(f"{operation}: no {status} answer")
        if operation.needs_token and not documented.get("security"):
            problems.append(f"{operation}: takes a token in the contract, no security in the document")
    assert not problems, "\n  ".join(["status codes and tokens the contract promises:", *problems])


def test_every_promised_field_is_there(document, contract):
    problems = []
    lot_extras = Field("Lot", fields={name: Field(name) for name in contract.also_has.get("Lot", [])})
    for operation in checked(contract):
        documented = operation_of(document, *operation.key)
        if documented is None:
            continue
        where = str(operation)
        if operation.body:
            body = documented.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body is None:
                problems.append(f"{where}: takes no JSON body")
            else:
                problems += missing_fields(document, body, Field("body", fields=operation.body), f"{where} body",
                                           contract.refinements)
        names = {parameter["name"] for parameter in documented.get("parameters", []) if parameter["in"] == "query"}
        problems += [f"{where}: no query parameter `{name}`" for name in operation.query if name not in names]
        answer = operation.answer
        if operation.key == ("GET", document_path("/lots/{id}")) and answer:
            answer = Field("answer", fields={**answer.fields, **lot_extras.fields})
        if answer:
            response = documented["responses"].get(success_status(operation), {})
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            if schema is None:
                problems.append(f"{where}: {success_status(operation)} has no JSON body")
            else:
                problems += missing_fields(document, schema, answer, f"{where} →", contract.refinements)
    schemas = document["components"]["schemas"]
    for name, shape in contract.named.items():
        # "Deposit: `{id, scope, ...}`" is DepositOut, wherever an answer holds one.
        if f"{name}Out" not in schemas:
            problems.append(f"{name}: no schema {name}Out")
        else:
            problems += missing_fields(document, schemas[f"{name}Out"], shape, f"{name}Out", contract.refinements)
    assert not problems, "\n  ".join(["fields the contract promises, missing from the document:", *problems])


def test_every_status_value_is_named(document, contract):
    schemas = document["components"]["schemas"]
    problems = []
    for promise, values in contract.statuses.items():
        entity, field_path = promise.rsplit(" ", 1)
        prefix = entity.replace(" ", "").lower()
        *parents, name = field_path.split(".")
        holders = []
        for schema_name, schema in schemas.items():
            if not (schema_name.lower().startswith(prefix) and schema_name.endswith("Out")):
                continue
            for parent in parents:
                schema = resolve(document, schema.get("properties", {}).get(parent, {}))
            if name in schema.get("properties", {}):
                holders.append((schema_name, resolve(document, schema["properties"][name])))
        if not holders:
            problems.append(f"{promise}: no {entity} schema has `{field_path}`")
        for schema_name, schema in holders:
            missing = [value for value in values if value not in schema.get("enum", ())]
            if missing:
                problems.append(f"{promise}: {schema_name}.{field_path} does not name {missing}")
    codes = set(schemas.get("ErrorCode", {}).get("enum", ()))
    problems += [f"error code `{code}`: not in ErrorCode" for code in contract.error_codes if code not in codes]
    assert not problems, "\n  ".join(["status values and error codes the contract names:", *problems])


def test_every_error_answer_has_the_contract_shape(document):
    problems = []
    for path, operations in document["paths"].items():
        if path.startswith("/api/v1/payments/wechat/"):
            continue  # WeChat Pay's notifications answer in WeChat's shape (api/notify.py)
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) < 400:
                    continue
                schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                properties = resolve(document, schema).get("properties", {})
                if not {"code", "message", "detail"} <= set(properties):
                    problems.append(f"{method.upper()} {path} {status}: not {{code, message, detail}}")
    assert not problems, "\n  ".join(["error answers outside the contract's shape:", *problems])


def test_money_is_integers_and_times_are_date_times(document):
    problems = []

    def walk(where: str, schema: dict) -> None:
        for name, prop in schema.get("properties", {}).items():
            kind = scalar_type(document, prop)
            if kind is None:
                continue
            resolved = resolve(document, prop)
            if name in MONEY or name == "buyer_premium_rate":
                if kind != "integer":
                    problems.append(f"{where}.{name}: money in fen must be an integer, is {kind}")
            elif name.endswith("_at") or name in TIMES:
                if (kind, resolved.get("format")) != ("string", "date-time"):
                    problems.append(f"{where}.{name}: a time must be an ISO 8601 date-time, is {kind}")

    for schema_name, schema in document["components"]["schemas"].items():
        walk(schema_name, schema)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            parameters = {p["name"]: p["schema"] for p in operation.get("parameters", [])}
            walk(f"{method.upper()} {path} parameters", {"properties": parameters})
    assert not problems, "\n  ".join(["typed wrong:", *problems])


def test_lists_page_and_keyed_operations_take_an_idempotency_key(document, contract):
    problems = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            schema = operation["responses"].get("200", {}).get("content", {}).get("application/json", {}).get("schema")
            if schema and {"items", "count"} <= set(resolve(document, schema).get("properties", {})):
                names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
                problems += [f"{method.upper()} {path}: a list without ?{name}=" for name in ("limit", "offset")
                             if name not in names]
    for operation in checked(contract):
        if "status" in operation.query:
            documented = operation_of(document, *operation.key) or {"responses": {}}
            schema = documented["responses"].get("200", {}).get("content", {}).get("application/json", {}).get("schema")
            if not schema or not {"items", "count"} <= set(resolve(document, schema).get("properties", {})):
                problems.append(f"{operation}: not a list of {{items, count}}")
    for path in contract.idempotent:
        documented = operation_of(document, "POST", document_path(path))
        headers = {p["name"] for p in (documented or {}).get("parameters", []) if p["in"] == "header"}
        if "Idempotency-Key" not in headers:
            problems.append(f"POST {path}: no Idempotency-Key header")
    assert not problems, "\n  ".join(["lists and retries:", *problems])

"""The schema registry in template.yaml says what the event models say, in JSON Schema Draft 4."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import pytest
from jsonschema import Draft4Validator
from pydantic import BaseModel, Field, create_model

from rollout_monitor.events import OUTBOUND_DETAILS, SOURCE, RolloutLost, RolloutStalled
from rollout_monitor_local.schemas import (
    TEMPLATE,
    EventSchema,
    NoDraft4Form,
    bus_events,
    draft4,
    drift,
    main,
    render,
    rewrite,
)
from rollout_monitor_local.stack import load_sam_template, translate

SAMPLES = Path(__file__).resolve().parents[2] / "events"
SCHEMAS = {event.detail_type: event for event in bus_events()}
SAMPLE_FILES = [
    path
    for path in sorted(SAMPLES.glob("*.json"))
    if json.loads(path.read_text()).get("detail-type") in SCHEMAS
]
STALE = "run `make schemas` to regenerate the schema registry in template.yaml"


@pytest.fixture
def translated(aws: None) -> dict[str, Any]:
    """template.yaml as CloudFormation receives it, after the SAM transform."""
    return translate(load_sam_template(TEMPLATE))


def _sample(path: Path) -> tuple[dict[str, Any], EventSchema]:
    event = json.loads(path.read_text())
    return event, SCHEMAS[event["detail-type"]]


def _with_model(model: type[BaseModel]) -> list[EventSchema]:
    """The bus's events, one of them described by ``model`` instead of its own."""
    return [
        EventSchema(event.detail_type, model) if event.model.__name__ == model.__name__ else event
        for event in bus_events()
    ]


# --- the registry in the template --------------------------------------------------------------


def test_the_template_has_a_registry_named_after_the_stack(translated: dict[str, Any]) -> None:
    resources = translated["Resources"]
    registry = resources["SchemaRegistry"]
    assert registry["Type"] == "AWS::EventSchemas::Registry"
    name = registry["Properties"]["RegistryName"]
    assert name == {"Fn::Sub": "${AWS::StackName}-rollouts"}
    assert translated["Outputs"]["SchemaRegistryName"]["Value"] == name
    schemas = [r for r in resources.values() if r["Type"] == "AWS::EventSchemas::Schema"]
    assert len(schemas) == len(OUTBOUND_DETAILS) + 2  # and the two requests, inbound
    for schema in schemas:
        assert schema["Properties"]["RegistryName"] == {
            "Fn::GetAtt": ["SchemaRegistry", "RegistryName"]
        }
        assert schema["Properties"]["Type"] == "JSONSchemaDraft4"


def test_every_outbound_event_has_one_schema_as_its_model_makes_it(
    translated: dict[str, Any],
) -> None:
    names = {event.name for event in bus_events()}
    assert {f"{SOURCE}@{m.detail_type.value.replace(' ', '')}" for m in OUTBOUND_DETAILS} <= names
    problems = drift(translated, bus_events())
    assert problems == [], f"{STALE}:\n" + "\n".join(problems)


def test_make_schemas_leaves_the_template_as_it_is() -> None:
    text = TEMPLATE.read_text()
    assert rewrite(text, bus_events()) == text, STALE


@pytest.mark.parametrize(
    "changed",
    [
        create_model("RolloutStalled", __base__=RolloutStalled, shard=(int, ...)),
        create_model("RolloutStalled", __base__=RolloutStalled, episode=(str, ...)),
        create_model("RolloutStalled", __base__=RolloutStalled, stall_after_seconds=(float, 0.0)),
    ],
    ids=["field-added", "field-retyped", "field-made-optional"],
)
def test_the_drift_check_reports_a_changed_model(
    translated: dict[str, Any], changed: type[BaseModel]
) -> None:
    assert EventSchema("Rollout Stalled", changed).content() != SCHEMAS["Rollout Stalled"].content()
    assert drift(translated, _with_model(changed)) == [
        f"{SOURCE}@RolloutStalled: Content not as RolloutStalled makes"
    ]


def test_the_drift_check_reports_an_event_added_or_removed(translated: dict[str, Any]) -> None:
    added = [*bus_events(), EventSchema("Rollout Paused", RolloutStalled)]
    assert drift(translated, added) == [f"{SOURCE}@RolloutPaused: 0 schema resources, not one"]
    removed = [event for event in bus_events() if event.model is not RolloutLost]
    assert drift(translated, removed) == [f"{SOURCE}@RolloutLost: a schema for no event on the bus"]


def test_the_command_fails_on_a_stale_template_and_writes_the_block_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    current = TEMPLATE.read_text()
    first_time = tmp_path / "template.yaml"
    first_time.write_text(current.replace(render(bus_events()) + "\n", ""))
    assert main(["--template", str(first_time)]) == 1
    assert "run make schemas" in capsys.readouterr().err
    assert main(["--write", "--template", str(first_time)]) == 0
    assert first_time.read_text() == current  # inserted just before Outputs:
    assert main(["--template", str(first_time)]) == 0


# --- the schemas validate events ----------------------------------------------------------------


def test_every_schema_is_a_draft4_schema_within_the_registrys_limit() -> None:
    for event in bus_events():
        Draft4Validator.check_schema(event.document())
        assert len(event.content()) <= 100_000
        assert len(event.description) <= 256


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda path: path.name)
def test_every_sample_event_validates_against_its_schema(path: Path) -> None:
    # deploy-requested-invalid.json is well formed: its values break rules only the model
    # checks (an endpoint id that is a path, a malformed model name).
    event, schema = _sample(path)
    Draft4Validator(schema.document()).validate(event)


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda path: path.name)
def test_a_detail_missing_a_required_field_is_rejected(path: Path) -> None:
    event, schema = _sample(path)
    document = schema.document()
    validator = Draft4Validator(document)
    required = document["definitions"][schema.model.__name__]["required"]
    assert required
    for field in required:
        broken = event | {"detail": {k: v for k, v in event["detail"].items() if k != field}}
        messages = [error.message for error in validator.iter_errors(broken)]
        assert messages == [f"'{field}' is a required property"], field


def test_an_event_of_another_detail_type_or_schema_version_is_rejected() -> None:
    event, _ = _sample(SAMPLES / "rollout-stalled.json")
    stalled = Draft4Validator(SCHEMAS["Rollout Stalled"].document())
    assert not stalled.is_valid(event | {"detail-type": "Rollout Lost"})
    assert not stalled.is_valid(event | {"source": "someone.else"})
    # pydantic writes the literal as `const`, which Draft 4 validators ignore: it must be an enum
    assert not stalled.is_valid(event | {"detail": event["detail"] | {"schema_version": "2"}})
    assert not Draft4Validator(SCHEMAS["Rollout Lost"].document()).is_valid(event)


# --- Draft 2020-12 to Draft 4 -------------------------------------------------------------------


class Shapes(BaseModel):
    kind: Literal["x"]
    count: int = Field(gt=0, lt=10)
    pair: tuple[int, str]
    note: str = Field(default="", examples=["a note"], deprecated=True)


def _shapes_validator() -> Draft4Validator:
    document = EventSchema("Shapes Seen", Shapes).document()
    Draft4Validator.check_schema(document)
    return Draft4Validator({"$ref": "#/definitions/Shapes", **document})


def test_draft4_keeps_what_pydantic_checks() -> None:
    validator = _shapes_validator()
    assert validator.is_valid({"kind": "x", "count": 9, "pair": [1, "a"]})
    for wrong in (
        {"kind": "y"},
        {"count": 0},  # exclusiveMinimum
        {"count": 10},  # exclusiveMaximum
        {"pair": [1, 2]},  # prefixItems
        {"pair": [1, "a", 3]},
    ):
        assert not validator.is_valid({"kind": "x", "count": 9, "pair": [1, "a"]} | wrong), wrong


def test_draft4_refuses_a_keyword_it_cannot_say() -> None:
    with pytest.raises(NoDraft4Form, match="propertyNames"):
        draft4({"type": "object", "propertyNames": {"pattern": "^a"}})
    assert draft4(False) == {"not": {}}

import pyarrow as pa
import pytest

from schemas import (
    DOCUMENT_SCHEMA,
    LINEAGE_SCHEMA,
    Document,
    LineageRecord,
    SchemaError,
    make_doc_id,
    to_table,
    validate_batch,
)


def _doc(**kw) -> Document:
    base = dict(id="x", text="hello", source="s", domain="web")
    return Document(**{**base, **kw})


def test_document_round_trips_through_arrow():
    doc = _doc(lang="en", lang_score=0.9, url="http://a", metadata={"k": [1, "é"]})
    table = to_table([doc.to_row()], DOCUMENT_SCHEMA)
    back = Document.from_row(table.to_pylist()[0])
    assert back.metadata == {"k": [1, "é"]}
    assert back.text == "hello" and back.lang == "en" and abs(back.lang_score - 0.9) < 1e-6


def test_doc_id_is_stable_and_location_sensitive():
    a = make_doc_id("src", "f.jsonl:1", "same text")
    assert a == make_doc_id("src", "f.jsonl:1", "same text")
    assert a != make_doc_id("src", "f.jsonl:2", "same text")
    assert a != make_doc_id("src", "f.jsonl:1", "other text")
    assert len(a) == 32


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda rows: [{k: v for k, v in r.items() if k != "text"} for r in rows], "text"),
        (lambda rows: [{**r, "domain": "poetry"} for r in rows], "domain"),
        (lambda rows: [{**r, "id": None} for r in rows], "id"),
    ],
)
def test_nonconforming_document_batch_names_the_field(mutate, field):
    rows = mutate([_doc().to_row()])
    schema = (
        DOCUMENT_SCHEMA
        if all("text" in r for r in rows)
        else DOCUMENT_SCHEMA.remove(DOCUMENT_SCHEMA.get_field_index("text"))
    )
    table = pa.Table.from_pylist(rows, schema=schema)
    with pytest.raises(SchemaError, match=f"'{field}'"):
        validate_batch(table, DOCUMENT_SCHEMA)


def test_wrong_type_is_rejected():
    table = pa.table({name: pa.array([1]) if name == "score" else pa.array(["a"]) for name in LINEAGE_SCHEMA.names})
    with pytest.raises(SchemaError, match="'score'"):
        validate_batch(table, LINEAGE_SCHEMA)


def test_lineage_action_must_be_known():
    rows = [LineageRecord("d", "step", "vanished").to_row()]
    with pytest.raises(SchemaError, match="'action'"):
        to_table(rows, LINEAGE_SCHEMA)

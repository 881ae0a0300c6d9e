"""Schema changes are one commit operation each, replayed on the newest manifest by a
rebase: by name for an added column, by field id for a change to an existing one."""

from __future__ import annotations

import uuid

import pytest

import lakefmt
from lakefmt.errors import ColumnExistsError, ColumnNotFoundError
from lakefmt.format import commit as commits
from lakefmt.format.manifest import Manifest
from lakefmt.format.versions import read_head
from lakefmt.storage import Storage, open_storage


@pytest.fixture
def head() -> tuple[Storage, Manifest]:
    url = f"mem://schema-ops-{uuid.uuid4().hex}"
    lakefmt.create(url, schema={"a": "int64", "b": "text"})
    storage = open_storage(url)
    return storage, read_head(storage, "main", None)


def _field_id(manifest: Manifest, name: str) -> int:
    return next(f.id for f in manifest.fields if f.name == name)


def _new_field(name: str) -> dict[str, object]:
    return {"name": name, "type": {"name": "int32"}, "arrow_type": "int32"}


def test_each_schema_change_is_its_own_operation(head: tuple[Storage, Manifest]) -> None:
    storage, manifest = head
    b = _field_id(manifest, "b")
    added = commits.AddColumn(_new_field("c")).apply(storage, manifest)
    assert [f.name for f in added.fields] == ["a", "b", "c"]
    assert added.fields[-1].id == manifest.next_field_id
    assert added.next_field_id == manifest.next_field_id + 1
    renamed = commits.RenameColumn("b", b, "bee").apply(storage, added)
    assert [f.name for f in renamed.fields] == ["a", "bee", "c"]
    tagged = commits.SetColumnMetadata("bee", b, {"unit": "m"}).apply(storage, renamed)
    assert next(f for f in tagged.fields if f.id == b).metadata == {"unit": "m"}
    dropped = commits.DropColumn("bee", b).apply(storage, tagged)
    assert [f.name for f in dropped.fields] == ["a", "c"]
    # the manifest records every schema change under one operation name, as before
    ops = (
        commits.AddColumn(_new_field("d")),
        commits.DropColumn("a", 0),
        commits.RenameColumn("a", 0, "z"),
        commits.SetColumnMetadata("a", 0, {}),
    )
    assert {op.name for op in ops} == {"schema"}


def test_changes_follow_a_concurrent_rename(head: tuple[Storage, Manifest]) -> None:
    storage, manifest = head
    b = _field_id(manifest, "b")
    newest = commits.RenameColumn("b", b, "renamed").apply(storage, manifest)
    replayed = commits.SetColumnMetadata("b", b, {"k": 1}).apply(storage, newest)
    assert next(f for f in replayed.fields if f.id == b).metadata == {"k": 1}
    assert [f.name for f in commits.DropColumn("b", b).apply(storage, newest).fields] == ["a"]


def test_replay_conflicts_name_the_column(head: tuple[Storage, Manifest]) -> None:
    storage, manifest = head
    b = _field_id(manifest, "b")
    without_b = commits.DropColumn("b", b).apply(storage, manifest)
    for op in (
        commits.DropColumn("b", b),
        commits.RenameColumn("b", b, "c"),
        commits.SetColumnMetadata("b", b, {}),
    ):
        with pytest.raises(ColumnNotFoundError, match="'b' no longer exists"):
            op.apply(storage, without_b)
    with_c = commits.AddColumn(_new_field("c")).apply(storage, manifest)
    with pytest.raises(ColumnExistsError, match="'c' already exists"):
        commits.AddColumn(_new_field("c")).apply(storage, with_c)
    with pytest.raises(ColumnExistsError, match="'c' already exists"):
        commits.RenameColumn("b", b, "c").apply(storage, with_c)

"""Two-phase writes against a plain-Python model: workers write infos, drivers commit and
retry them under transaction ids, while other writers append, the schema changes and
cleanup runs with no grace period."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import lakefmt
from lakefmt.errors import InvalidArgumentError
from lakefmt.format.transactions import FragmentInfo


@dataclass
class Written:
    """One worker's write as the model knows it."""

    infos: list[FragmentInfo]
    ids: list[int]
    committed: bool = False
    lost: bool = False
    """A cleanup without grace ran before it was committed: its files are gone."""


class TwoPhaseModel(RuleBasedStateMachine):
    """The dataset's rows must always be what the model says."""

    @initialize()
    def start(self) -> None:
        self.url = f"mem://two-phase-{uuid.uuid4().hex}"
        self.driver = lakefmt.create(self.url, schema={"id": "int64", "text": "text"})
        self.other = lakefmt.open(self.url)
        self.rows: list[int] = []
        self.text_name = "text"
        self.added: dict[str, int] = {}  # column -> default
        self.writes: list[Written] = []
        self.transactions: dict[str, tuple[str, int]] = {}  # id -> (version id, write)
        self.next_id = 0

    def _fresh(self, count: int) -> list[int]:
        ids = list(range(self.next_id, self.next_id + count))
        self.next_id += count
        return ids

    @rule(count=st.integers(1, 5), as_rows=st.booleans())
    def worker_writes(self, count: int, as_rows: bool) -> None:
        ids = self._fresh(count)
        texts = [f"t{i}" for i in ids]
        data = (
            [{"id": i, self.text_name: t} for i, t in zip(ids, texts, strict=True)]
            if as_rows
            else {"id": ids, self.text_name: texts}
        )
        infos = lakefmt.write_fragments(self.url, data)
        self.writes.append(Written(infos, ids))

    @precondition(lambda self: self.writes)
    @rule(data=st.data(), transaction=st.sampled_from([None, "a", "b", "c", "d"]))
    def driver_commits(self, data: st.DataObject, transaction: str | None) -> None:
        fresh = [k for k, w in enumerate(self.writes) if not w.committed]
        if transaction in self.transactions or not fresh:
            return
        k = data.draw(st.sampled_from(fresh))
        write = self.writes[k]
        as_json = data.draw(st.booleans())
        given = [i.to_json() for i in write.infos] if as_json else write.infos
        if write.lost:
            before = lakefmt.open(self.url)._manifest.version
            try:
                self.driver.commit_fragments(given, transaction_id=transaction)
            except InvalidArgumentError as exc:
                assert "does not exist" in str(exc)
            else:
                raise AssertionError("committed fragments whose files cleanup removed")
            assert lakefmt.open(self.url)._manifest.version == before
            return
        version = self.driver.commit_fragments(given, transaction_id=transaction)
        write.committed = True
        self.rows.extend(write.ids)
        if transaction is not None:
            self.transactions[transaction] = (version, k)

    @precondition(lambda self: self.transactions)
    @rule(data=st.data(), rewrite=st.booleans(), fresh_handle=st.booleans())
    def driver_retries(self, data: st.DataObject, rewrite: bool, fresh_handle: bool) -> None:
        """A driver that crashed after committing runs again with the same id: with the
        infos it had, or with the job's rows written again."""
        transaction = data.draw(st.sampled_from(sorted(self.transactions)))
        version, k = self.transactions[transaction]
        write = self.writes[k]
        if rewrite:
            infos = lakefmt.write_fragments(
                self.url, {"id": write.ids, self.text_name: [f"t{i}" for i in write.ids]}
            )
        else:
            infos = write.infos
        handle = lakefmt.open(self.url) if fresh_handle else self.driver
        assert handle.commit_fragments(infos, transaction_id=transaction) == version

    @rule(count=st.integers(1, 3))
    def other_writer_appends(self, count: int) -> None:
        ids = self._fresh(count)
        self.other.refresh()
        self.other.append({"id": ids, self.text_name: [f"t{i}" for i in ids]})
        self.other.commit()
        self.rows.extend(ids)

    @rule()
    def rename_text(self) -> None:
        new = "label" if self.text_name == "text" else "text"
        self.other.refresh()
        self.other.rename_column(self.text_name, new)
        self.other.commit()
        self.text_name = new

    @precondition(lambda self: len(self.added) < 3)
    @rule(default=st.integers(-5, 5))
    def add_column(self, default: int) -> None:
        name = f"c{len(self.added)}"
        self.other.refresh()
        self.other.add_column(name, "int32", default_value=default)
        self.other.commit()
        self.added[name] = default

    @rule()
    def cleanup_without_grace(self) -> None:
        self.driver.cleanup(older_than=0)
        for write in self.writes:
            if not write.committed:
                write.lost = True

    @invariant()
    def rows_are_the_models(self) -> None:
        if not hasattr(self, "url"):
            return
        view = lakefmt.open_read_only(self.url)
        assert view["id"][:].tolist() == self.rows
        assert view[self.text_name][:] == [f"t{i}" for i in self.rows]
        for name, default in self.added.items():
            assert view[name][:].tolist() == [default] * len(self.rows)
        recorded = {r.id for r in view._manifest.transactions}
        assert recorded == set(self.transactions)

    def teardown(self) -> None:
        if hasattr(self, "url"):
            lakefmt.delete(self.url)


TwoPhaseModel.TestCase.settings = settings(stateful_step_count=20)
test_two_phase_model = TwoPhaseModel.TestCase

"""TQL clauses checked against pandas on a dataset with several fragments, deletions, updates,
a renamed column and an added column with a default; also old versions, tags and branches."""

from __future__ import annotations

import collections

import numpy as np
import pandas as pd
import pytest
from qhelpers import CLASSES, Built, build_rich, ids

import lakefmt


def test_where_select_star_matches_pandas(rich: Built) -> None:
    t = rich.truth
    view = rich.ds.query("SELECT * WHERE score > 0.5 AND extra = 5")
    expected = t[(t.score > 0.5) & (t.extra == 5)]
    assert ids(view) == expected.id.tolist()
    assert len(view) == len(expected)
    assert list(view.schema) == ["id", "score", "label", "title", "emb", "tags", "meta", "extra"]
    np.testing.assert_allclose(view["score"][:], expected.score.to_numpy())
    np.testing.assert_allclose(view["emb"][:], np.stack(expected.emb.to_list()))
    assert view["title"][:] == expected.title.tolist()


def test_double_equals_and_not_equals(rich: Built) -> None:
    t = rich.truth
    assert ids(rich.ds.query("SELECT * WHERE extra == 3")) == t[t.extra == 3].id.tolist()
    assert ids(rich.ds.query("SELECT * WHERE extra != 5")) == t[t.extra != 5].id.tolist()


def test_updates_deletions_rename_and_default_are_visible(rich: Built) -> None:
    t = rich.truth
    view = rich.ds.query("SELECT id, score, title WHERE score > 9")
    assert ids(view) == t[t.score > 9].id.tolist() and len(view) == 3
    assert rich.ds.query("SELECT * WHERE title = 'updated cat name'")["id"][:].tolist() == [
        int(t.id[5])
    ]
    deleted = {3, 17, 41, 42, 90}
    assert not deleted & set(ids(rich.ds.query("SELECT * WHERE id >= 0")))
    counts = rich.ds.query("SELECT extra, COUNT(*) AS n GROUP BY extra ORDER BY extra")
    expected = t.groupby("extra").size()
    assert counts["extra"][:].tolist() == expected.index.tolist()
    assert counts["n"][:].tolist() == expected.tolist()


def test_order_by_limit_offset(rich: Built) -> None:
    t = rich.truth
    view = rich.ds.query("SELECT id, score ORDER BY score DESC, id LIMIT 7 OFFSET 3")
    expected = t.sort_values(["score", "id"], ascending=[False, True]).iloc[3:10]
    assert ids(view) == expected.id.tolist()
    # LIMIT without ORDER BY keeps dataset order
    assert (
        ids(rich.ds.query("SELECT * WHERE score < 0.5 LIMIT 5")) == t[t.score < 0.5].id.tolist()[:5]
    )
    assert ids(rich.ds.query("SELECT * LIMIT 4 OFFSET 60")) == t.id.tolist()[60:64]


def test_computed_columns_and_aliases_in_order_by(rich: Built) -> None:
    t = rich.truth
    view = rich.ds.query(
        "SELECT id, score * 2 + extra AS s2 WHERE id % 2 = 0 ORDER BY s2 DESC LIMIT 5"
    )
    e = (
        t[t.id % 2 == 0]
        .assign(s2=lambda d: d.score * 2 + d.extra)
        .sort_values("s2", ascending=False)
    )
    assert ids(view) == e.id.tolist()[:5]
    np.testing.assert_allclose(view["s2"][:], e.s2.to_numpy()[:5])
    assert list(view.schema) == ["id", "s2"]


def test_group_by_having_aggregates(rich: Built) -> None:
    t = rich.truth.assign(lab=rich.truth.label)
    view = rich.ds.query(
        "SELECT label, COUNT(*) AS n, SUM(score) AS s, AVG(score) AS a, "
        "MIN(id) AS lo, MAX(id) AS hi "
        "GROUP BY label HAVING COUNT(*) > 1 ORDER BY label"
    )
    g = t.groupby("lab").agg(
        n=("id", "size"),
        s=("score", "sum"),
        a=("score", "mean"),
        lo=("id", "min"),
        hi=("id", "max"),
    )
    g = g[g.n > 1]
    assert view["label"][:].tolist() == g.index.tolist()
    assert view["n"][:].tolist() == g.n.tolist()
    np.testing.assert_allclose(view["s"][:], g.s.to_numpy())
    np.testing.assert_allclose(view["a"][:], g.a.to_numpy())
    assert view["lo"][:].tolist() == g.lo.tolist() and view["hi"][:].tolist() == g.hi.tolist()
    # the label column keeps its ClassLabel type
    assert isinstance(view.schema["label"], lakefmt.types.ClassLabel)
    total = rich.ds.query("SELECT COUNT(*) AS n")
    assert total["n"][:].tolist() == [len(t)]


def test_distinct(rich: Built) -> None:
    t = rich.truth
    view = rich.ds.query("SELECT DISTINCT extra ORDER BY extra")
    assert view["extra"][:].tolist() == sorted(t.extra.unique().tolist())
    assert len(rich.ds.query("SELECT DISTINCT label, extra")) == len(
        t[["label", "extra"]].drop_duplicates()
    )


def test_like_ilike_with_tql_and_sql_wildcards(rich: Built) -> None:
    t = rich.truth
    for pattern, regex in [
        ("*cat*", ".*cat.*"),
        ("%cat%", ".*cat.*"),
        ("alpha ?eta*", "alpha .eta.*"),
        ("a_pha%", "a.pha.*"),
    ]:
        view = rich.ds.query(f"SELECT * WHERE title LIKE '{pattern}'")
        assert ids(view) == t[t.title.str.fullmatch(regex)].id.tolist(), pattern
    upper = rich.ds.query("SELECT * WHERE title ILIKE '*CAT*'")
    assert ids(upper) == t[t.title.str.contains("cat")].id.tolist()
    assert (
        ids(rich.ds.query("SELECT * WHERE title NOT LIKE '*cat*'"))
        == t[~t.title.str.contains("cat")].id.tolist()
    )


def test_union_intersect_except_keep_row_identity(rich: Built) -> None:
    t = rich.truth
    view = rich.ds.query("(SELECT * WHERE score < 0.2) UNION (SELECT * WHERE extra != 5)")
    expected = t[(t.score < 0.2) | (t.extra != 5)]
    assert ids(view) == expected.id.tolist()
    assert view["emb"][:].shape == (len(expected), 8)  # lazy column read by row reference
    both = rich.ds.query("SELECT * WHERE score < 0.6 INTERSECT SELECT * WHERE score > 0.3")
    assert ids(both) == t[(t.score < 0.6) & (t.score > 0.3)].id.tolist()
    minus = rich.ds.query("SELECT * WHERE score < 0.6 EXCEPT SELECT * WHERE score < 0.3")
    assert ids(minus) == t[(t.score < 0.6) & (t.score >= 0.3)].id.tolist()
    twice = rich.ds.query("(SELECT * WHERE id < 3) UNION ALL (SELECT * WHERE id < 2)")
    assert sorted(ids(twice)) == sorted(t[t.id < 3].id.tolist() + t[t.id < 2].id.tolist())


def test_subqueries_and_ctes(rich: Built) -> None:
    t = rich.truth
    view = rich.ds.query(
        "SELECT * FROM (SELECT *, score * 10 AS s10 WHERE extra = 5) "
        "WHERE s10 > 5 ORDER BY s10 DESC, id"
    )
    e = t[(t.extra == 5) & (t.score * 10 > 5)].sort_values(["score", "id"], ascending=[False, True])
    assert ids(view) == e.id.tolist()
    assert "emb" in view.schema and "s10" in view.schema
    np.testing.assert_allclose(view["emb"][:], np.stack(e.emb.to_list()))
    cte = rich.ds.query(
        "WITH hi AS (SELECT * WHERE score > 0.8) SELECT id, score FROM hi ORDER BY id"
    )
    assert ids(cte) == t[t.score > 0.8].sort_values("id").id.tolist()
    scalar = rich.ds.query("SELECT * WHERE score > (SELECT AVG(score))")
    assert ids(scalar) == t[t.score > t.score.mean()].id.tolist()
    within = rich.ds.query("SELECT * WHERE id IN (SELECT id WHERE extra < 3)")
    assert ids(within) == t[t.extra < 3].id.tolist()
    # LIMIT without ORDER BY in subqueries keeps the first rows in dataset order
    first = rich.ds.query("SELECT * WHERE id IN (SELECT id WHERE score > 0.5 LIMIT 4)")
    assert ids(first) == t[t.score > 0.5].id.tolist()[:4]
    derived = rich.ds.query("SELECT * FROM (SELECT * WHERE score < 0.5 LIMIT 6 OFFSET 2)")
    assert ids(derived) == t[t.score < 0.5].id.tolist()[2:8]


def test_join_across_datasets(rich: Built, make_mem: object) -> None:
    t = rich.truth
    other = lakefmt.create(
        f"{rich.ds.url}-other" if rich.ds.url.startswith("mem://") else rich.ds.url + "-other",
        schema={"id": "int64", "note": "text"},
    )
    other.append({"id": [0, 5, 50, 99, 1000], "note": ["a", "b", "c", "d", "e"]})
    other.flush()
    view = lakefmt.query(
        f'SELECT a.id, a.score, b.note FROM "{rich.ds.url}" AS a JOIN "{other.url}" AS b '
        "ON a.id = b.id ORDER BY a.id"
    )
    e = t[t.id.isin([0, 5, 50, 99, 1000])].sort_values("id")
    assert view["id"][:].tolist() == e.id.tolist()
    assert view["note"][:] == [{0: "a", 5: "b", 50: "c", 99: "d"}[i] for i in e.id]
    np.testing.assert_allclose(view["score"][:], e.score.to_numpy())
    star = lakefmt.query(
        f'SELECT * FROM "{rich.ds.url}" AS a JOIN "{other.url}" AS b ON a.id = b.id'
    )
    assert "id_1" in star.schema and "note" in star.schema and len(star) == len(e)


def test_window_functions_case_cast_and_passthrough(rich: Built) -> None:
    t = rich.truth
    view = rich.ds.query(
        "SELECT id, ROW_NUMBER() OVER (ORDER BY score DESC, id) AS r, upper(title) AS up, "
        "length(title) AS n, CASE WHEN score > 0.5 THEN 'hi' ELSE 'lo' END AS band, "
        "CAST(score * 100 AS INTEGER) AS pct ORDER BY id"
    )
    e = t.sort_values("id")
    rank = e.sort_values(["score", "id"], ascending=[False, True]).id.tolist()
    assert view["r"][:].tolist() == [rank.index(i) + 1 for i in e.id]
    assert view["up"][:] == [s.upper() for s in e.title]
    assert view["n"][:].tolist() == [len(s) for s in e.title]
    assert view["band"][:] == ["hi" if s > 0.5 else "lo" for s in e.score]
    assert view["pct"][:].tolist() == [round(s * 100) for s in e.score]


def test_row_number_is_the_row_index(rich: Built) -> None:
    t = rich.truth
    view = rich.ds.query(
        "SELECT id, ROW_NUMBER() AS i WHERE ROW_NUMBER() >= 40 AND ROW_NUMBER() < 45"
    )
    assert ids(view) == t.id.tolist()[40:45]
    assert view["i"][:].tolist() == list(range(40, 45))


def test_random_and_sample_by(rich_mem: Built) -> None:
    t = rich_mem.truth
    assert len(rich_mem.ds.query("SELECT * WHERE RANDOM() < 2")) == len(t)
    with_replace = rich_mem.ds.query("SELECT * SAMPLE BY score LIMIT 3000")
    assert len(with_replace) == 3000
    counts = collections.Counter(ids(with_replace))
    weights = dict(zip(t.id, t.score, strict=True))
    top = max(weights, key=weights.get)
    low = min((i for i in weights if weights[i] > 0), key=weights.get)
    assert counts[top] > counts.get(low, 0)
    assert set(counts) <= set(t.id)
    no_replace = rich_mem.ds.query("SELECT * WHERE extra = 5 SAMPLE BY 1 REPLACE FALSE LIMIT 30")
    picked = ids(no_replace)
    assert len(picked) == 30 and len(set(picked)) == 30 and set(picked) <= set(t[t.extra == 5].id)
    everything = rich_mem.ds.query("SELECT * WHERE score > 0.5 SAMPLE BY 1 REPLACE FALSE")
    assert sorted(ids(everything)) == sorted(t[t.score > 0.5].id)
    weighted = rich_mem.ds.query(
        "SELECT * SAMPLE BY MAX_WEIGHT(label = 'cat': 0, label = 'dog': 1, label = 'bird': 0) "
        "REPLACE FALSE LIMIT 10"
    )
    assert set(weighted["label"][:].tolist()) == {CLASSES.index("dog")}
    summed = rich_mem.ds.query(
        "SELECT * SAMPLE BY SUM_WEIGHT(score > 2: 1, extra != 5: 1) REPLACE FALSE LIMIT 100"
    )
    assert sorted(ids(summed)) == sorted(t[(t.score > 2) | (t.extra != 5)].id)


def test_old_versions_tags_and_branches(url: str) -> None:
    built = build_rich(url)
    ds = built.ds
    base = built.versions["base"]
    by_tag = lakefmt.query(f'SELECT * FROM "{ds.url}@base" WHERE score > 0.5')
    assert ids(by_tag) == base[base.score > 0.5].id.tolist()
    assert "name" in by_tag.schema and "title" not in by_tag.schema
    (deletes_version,) = [k for k in built.versions if k != "base"]
    mid = built.versions[deletes_version]
    by_id = lakefmt.query(
        f"SELECT id, name FROM \"{ds.url}@{deletes_version}\" WHERE name LIKE '*cat*'"
    )
    assert ids(by_id) == mid[mid.name.str.contains("cat")].id.tolist()
    # a read-only handle at an old version queries that version
    old = lakefmt.open_read_only(ds.url, version="base")
    assert len(old.query("SELECT * WHERE id >= 0")) == len(base)
    # branches
    ds.branch("dev")
    dev = lakefmt.open(ds.url, branch="dev")
    dev.append(
        {
            "id": [5000],
            "score": [0.5],
            "label": ["cat"],
            "title": ["dev row"],
            "emb": [np.zeros(8, np.float32)],
            "tags": [[1]],
            "meta": [{}],
            "extra": [1],
        }
    )
    dev.commit("on dev")
    on_dev = lakefmt.query(f'SELECT id FROM "{ds.url}@dev" WHERE id = 5000')
    assert ids(on_dev) == [5000]
    assert ids(lakefmt.query(f'SELECT id FROM "{ds.url}" WHERE id = 5000')) == []


def test_views_are_pinned_to_the_queried_version(rich_mem: Built) -> None:
    ds = rich_mem.ds
    view = ds.query("SELECT * WHERE extra != 5")
    before = ids(view)
    embs = view["emb"][:]
    ds.delete([0, 1, 2])
    ds.append(
        {
            "id": [7000],
            "score": [0.5],
            "label": ["cat"],
            "title": ["x"],
            "emb": [np.ones(8, np.float32)],
            "tags": [[]],
            "meta": [{}],
            "extra": [0],
        }
    )
    ds.flush()
    assert ids(view) == before
    np.testing.assert_array_equal(view["emb"][:], embs)
    assert 7000 in ids(ds.query("SELECT * WHERE extra != 5"))


def test_query_sees_buffered_rows(make_mem: object) -> None:
    ds = lakefmt.create("mem://query-buffered", schema={"id": "int64"})
    ds.append({"id": [1, 2, 3]})  # not flushed yet
    assert ids(ds.query("SELECT * WHERE id > 1")) == [2, 3]


def test_empty_dataset_and_empty_result(make_mem: object) -> None:
    ds = lakefmt.create("mem://query-empty", schema={"id": "int64", "t": "text"})
    view = ds.query("SELECT * WHERE id > 1")
    assert len(view) == 0
    assert view.to_arrow().num_rows == 0 and view.to_arrow().column_names == ["id", "t"]
    assert ds.query("SELECT COUNT(*) AS n")["n"][:].tolist() == [0]


def test_pandas_frame_roundtrip(rich_mem: Built) -> None:
    t = rich_mem.truth
    frame = rich_mem.ds.query("SELECT id, score, title WHERE score < 0.3").to_pandas()
    expected = t[t.score < 0.3][["id", "score", "title"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(frame, expected, check_dtype=False)


@pytest.mark.parametrize(
    "tql",
    [
        "SELECT * WHERE id > 10 ORDER BY score LIMIT 5",
        "SELECT id, score WHERE title LIKE '*a*'",
    ],
)
def test_explain_shows_sql_and_plan(rich_mem: Built, tql: str) -> None:
    text = rich_mem.ds.explain(tql)
    assert "DuckDB SQL" in text and "DuckDB plan" in text and tql in text
    assert "__lf_frag" in text
    assert "DuckDB SQL" in lakefmt.explain_query(
        tql.replace("SELECT *", f'SELECT * FROM "{rich_mem.ds.url}"').replace(
            "SELECT id, score", f'SELECT id, score FROM "{rich_mem.ds.url}"'
        )
    )

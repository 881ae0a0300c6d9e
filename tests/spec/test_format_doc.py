"""Examples printed in spec/format.md agree with the implementation."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from lakefmt.format import layout
from lakefmt.format.manifest import FORMAT_VERSION, Manifest, dump_manifest, parse_manifest

FORMAT_MD = Path(__file__).resolve().parents[2] / "spec" / "format.md"


def _json_blocks() -> list[str]:
    return re.findall(r"```json\n(.*?)```", FORMAT_MD.read_text(encoding="utf-8"), flags=re.S)


def _checks(raw: bytes) -> bool:
    """The checksum rule exactly as section 6.2.9 states it."""
    key = b',"checksum":"sha256:'
    if len(raw) < 86 or raw[-86:-66] != key or raw[-2:] != b'"}':
        return False
    return hashlib.sha256(raw[:-86]).hexdigest().encode() == raw[-66:-2]


def test_byte_for_byte_manifest_example_verifies() -> None:
    compact = [b for b in _json_blocks() if b.startswith(f'{{"format_version":{FORMAT_VERSION},')]
    assert len(compact) == 1
    raw = compact[0].rstrip("\n").encode()
    assert _checks(raw)
    manifest = parse_manifest(raw, location="spec/format.md")
    assert manifest.version == 0 and manifest.operation == "create"
    assert dump_manifest(manifest) == raw  # the serialization is exactly reproducible


def test_pretty_manifest_example_is_a_valid_manifest() -> None:
    pretty = [
        b for b in _json_blocks() if b.startswith(f'{{\n  "format_version": {FORMAT_VERSION},')
    ]
    assert len(pretty) == 1
    data = json.loads(pretty[0])
    manifest = Manifest.model_validate(data)
    assert [f.name for f in manifest.fields] == ["id", "label", "score", "flag"]
    assert manifest.num_rows == 13
    assert manifest.merges["dev"].fragments == {2: 2}


def test_dump_follows_the_checksum_rule() -> None:
    manifest = Manifest(dataset_id="ab" * 16, branch="main", version=3, timestamp=1, message="é")
    raw = dump_manifest(manifest)
    assert _checks(raw)
    assert "é".encode() in raw  # UTF-8, not \u escapes
    assert b" " not in raw.replace(b"\xc3\xa9", b"")  # compact
    damaged = raw[:10] + b"X" + raw[11:]
    assert not _checks(damaged)


def test_layout_names_match_the_documented_patterns() -> None:
    assert re.fullmatch(r"_versions/\d{20}\.json", layout.manifest_path("main", 7))
    assert layout.manifest_path("dev", 7) == "tree/dev/_versions/00000000000000000007.json"
    assert layout.latest_hint_path("dev") == "tree/dev/_versions/_latest"
    assert re.fullmatch(r"data/[0-9a-f]{32}\.parquet", layout.data_file_path())
    assert re.fullmatch(r"_deletions/12-[0-9a-f]{32}\.parquet", layout.deletion_file_path(12))
    assert re.fullmatch(r"_updates/12-3-[0-9a-f]{32}\.parquet", layout.update_file_path(12, 3))
    assert layout.tag_path("t") == "_refs/tags/t.json"
    assert layout.tag_path("release/2024") == "_refs/tags/release/2024.json"
    assert layout.branch_path("b") == "_refs/branches/b.json"
    assert layout.manifest_path("dev", 7, "0123456789abcdef") == (
        "tree/0123456789abcdef/_versions/00000000000000000007.json"
    )
    text = FORMAT_MD.read_text(encoding="utf-8").replace("`", "")
    for pattern in (layout.REF_COMPONENT_RE, layout.VERSION_ID_RE, layout.BRANCH_ID_RE):
        assert pattern.pattern in text


def _strip_volatile(value: object) -> object:
    """Drop what differs between runs: ids, file names, sizes, timestamps, checksum."""
    volatile = {"dataset_id", "timestamp", "checksum", "path", "size"}
    if isinstance(value, dict):
        return {k: _strip_volatile(v) for k, v in value.items() if k not in volatile}
    if isinstance(value, list):
        return [_strip_volatile(v) for v in value]
    return value


def test_complete_example_is_what_the_code_writes(tmp_path: Path) -> None:
    import lakefmt

    text = FORMAT_MD.read_text(encoding="utf-8")
    section = text[text.index("#### 6.2.10 A complete example") :]
    code = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)  # type: ignore[union-attr]
    path = tmp_path / "example"
    exec(compile(code, "spec/format.md#6.2.10", "exec"), {"lakefmt": lakefmt, "p": str(path)})
    written = json.loads((path / "_versions" / "00000000000000000007.json").read_bytes())
    pretty = json.loads(
        next(
            b for b in _json_blocks() if b.startswith(f'{{\n  "format_version": {FORMAT_VERSION},')
        )
    )
    # the version id is random (section 8.3); it names the manifest's number
    assert (
        layout.parse_version_id(written.pop("id")) == 7 == layout.parse_version_id(pretty.pop("id"))
    )
    # the merge record names dev's (random) branch id
    dev_id = json.loads((path / "_refs" / "branches" / "dev.json").read_bytes())["id"]
    assert written["merges"]["dev"].pop("branch_id") == dev_id
    assert layout.BRANCH_ID_RE.fullmatch(pretty["merges"]["dev"].pop("branch_id"))
    assert _strip_volatile(written) == _strip_volatile(pretty)


def test_spec_readme_states_the_current_format_version() -> None:
    readme = (Path(__file__).resolve().parents[2] / "spec" / "README.md").read_text()
    assert f"**Status: format version {FORMAT_VERSION}**" in readme

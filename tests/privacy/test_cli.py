"""`clickstream identify | erase | export` straight against ClickHouse (no --url), in-process."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from clickstream import cli, identity, warehouse
from tests.privacy.helpers import hit, write


def dsn_of(ch) -> str:  # type: ignore[no-untyped-def]
    return next(dsn for dsn, client in warehouse._CLIENTS.items() if client is ch)


def run(capsys: pytest.CaptureFixture[str], ch, database: str, *args: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    code = cli.main([*args, "--clickhouse", dsn_of(ch), "--database", database])
    out, err = capsys.readouterr()
    return code, out, err


def test_identify_merge_undo_erase_export(capsys, ch, database: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write(
        ch,
        database,
        [
            hit("shop", "phone0001", 0, crm="c1"),
            hit("shop", "laptop001", 5),
            hit("shop", "tab00001", 9, crm="c2"),
        ],
    )
    code, out, _ = run(
        capsys, ch, database, "identify", "--site", "shop", "--visitor", "laptop001", "--crm", "c1"
    )
    assert code == 0 and orjson.loads(out)["action"] == "link"
    code, out, _ = run(
        capsys, ch, database, "identify", "--site", "shop", "--merge", "c2", "--into", "c1"
    )
    merge_id = orjson.loads(out)["change_id"]
    assert identity.visitors_of(ch, database, "shop", "c1") == [
        "laptop001",
        "phone0001",
        "tab00001",
    ]
    code, out, _ = run(capsys, ch, database, "identify", "--site", "shop", "--undo", merge_id)
    assert code == 0 and orjson.loads(out)["after"] == {"merges": [["c2", ""]]}
    assert identity.visitors_of(ch, database, "shop", "c1") == ["laptop001", "phone0001"]
    actors = warehouse.read_query(
        ch, f"SELECT DISTINCT startsWith(actor, 'cli:') FROM {database}.identity_audit"
    ).rows
    assert actors == [[True]]

    out_file = tmp_path / "c1.json"
    code, out, _ = run(
        capsys, ch, database, "export", "--site", "shop", "--crm", "c1", "--out", str(out_file)
    )
    assert code == 0 and out == f"wrote 9 rows of 2 visitor ids to {out_file}\n"
    doc = orjson.loads(out_file.read_bytes())
    assert {t: len(r) for t, r in doc["tables"].items()} == {
        "crm_merges": 0,
        "hits": 2,
        "identities": 2,
        "identity_audit": 3,
        "sessions": 2,
    }

    code, out, _ = run(capsys, ch, database, "erase", "--site", "shop", "--crm", "c1")
    assert code == 0 and orjson.loads(out) == {
        "visitors": 2,
        "crm_ids": 1,
        "deleted": {
            "crm_merges": 0,
            "hits": 2,
            "identities": 2,
            "identity_audit": 3,
            "sessions": 2,
        },
    }
    code, out, _ = run(capsys, ch, database, "export", "--site", "shop", "--visitor", "tab00001")
    assert code == 0 and len(orjson.loads(out)["tables"]["hits"]) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("identify", "--site", "shop"),
            "give --visitor V --crm C, or --merge FROM --into TO, or --undo CHANGE_ID",
        ),
        (
            ("identify", "--site", "shop", "--visitor", "v1234567"),
            "linking needs both --visitor and --crm",
        ),
        (
            ("identify", "--site", "shop", "--merge", "a"),
            "merging needs both --merge FROM and --into TO",
        ),
        (
            ("identify", "--site", "shop", "--visitor", "v", "--crm", "c", "--undo", "x"),
            "give --visitor V --crm C, or",
        ),
        (("identify", "--site", "shop", "--undo", "nothex"), "change_id must be the 32 hex digits"),
        (("erase", "--site", "bad site", "--visitor", "v1234567"), "site must be"),
        (("export", "--site", "shop", "--crm", " padded"), "crm_id must be"),
    ],
)
def test_cli_errors_are_one_line(capsys, ch, database: str, args: tuple, message: str) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run(capsys, ch, database, *args)
    assert code == 2 and out == ""
    assert err.startswith("clickstream: error: ") and message in err and err.count("\n") == 1


def test_erase_needs_exactly_one_person(capsys, ch, database: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as info:
        run(capsys, ch, database, "erase", "--site", "shop", "--visitor", "v1234567", "--crm", "c1")
    assert info.value.code == 2 and "not allowed with argument" in capsys.readouterr().err

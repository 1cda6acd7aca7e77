"""History stays right when old hits are sent again (re-import, spool replay): the
visitor's stored sessions are counted once, and old hits that touch them amend them
instead of counting as new sessions."""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

from clickstream import warehouse
from sessionizer.loop import History
from sessionizer.sessions import Known
from tests.sessionizer.factory import T0
from tests.sessionizer.test_loop_chdb import feed, h, process


def numbers(client: Client, db: str) -> list[list[object]]:
    return warehouse.read_query(
        client,
        f"SELECT session_number, is_returning, hits, paths FROM {db}.sessions FINAL ORDER BY start_ts",
    ).rows


async def test_resent_old_hits_change_nothing(client: Client, db: str) -> None:
    old = [h(0, "/a"), h(60, "/b"), h(7200, "/c"), h(14400, "/d")]
    await feed(process(client, db), *old, close=True)
    before = numbers(client, db)
    assert before == [[1, 0, 2, ["/a", "/b"]], [2, 1, 1, ["/c"]], [3, 1, 1, ["/d"]]]
    again = process(client, db)  # a fresh process gets the old hits again (re-import)
    await feed(again, *old[:3], close=True)
    assert numbers(client, db) == before
    await feed(again, h(30000, "/new"), close=True)  # and a live hit after them
    assert numbers(client, db)[-1] == [4, 1, 1, ["/new"]]


async def test_history_is_one_batched_lookup_of_all_stored_sessions(
    client: Client, db: str
) -> None:
    await feed(process(client, db), h(0, "/a"), h(7200, "/b"), close=True)
    history = History(client, db)
    history.prefetch([h(20000, "/x"), h(20001, "/y", vid="vis00009")])
    assert history.lookups == 1
    assert history("s1", "vis00001") == Known(sessions=2, last_end=T0 + 7200_000)
    assert history("s1", "vis00009") == Known()
    history.prefetch([h(20002, "/z")])  # cached: no second lookup
    assert history.lookups == 1

"""``testbed logs-search``: bad input is refused with the fix; filters become the right query."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from testbed.cli import app
from testbed.logs.search import LogQuery, parse_since, table


@pytest.mark.parametrize(
    ("since", "math"), [("30s", "now-30s"), ("5m", "now-5m"), ("2h", "now-2h"), ("1d", "now-1d")]
)
def test_since_becomes_date_math(since: str, math: str) -> None:
    assert parse_since(since) == math


@pytest.mark.parametrize("since", ["5", "5x", "-5m", "five minutes", ""])
def test_bad_since_is_refused_with_the_fix(since: str) -> None:
    with pytest.raises(ValueError, match="30s, 5m, 2h, 1d"):
        parse_since(since)


def test_cli_refuses_bad_since_in_one_line_and_non_zero_exit() -> None:
    result = CliRunner().invoke(app, ["logs-search", "timeout", "--since", "5x"])
    assert result.exit_code == 2
    assert "use a number and a unit" in result.output


def test_filters_are_exact_terms_on_ecs_fields() -> None:
    query = LogQuery(text="timeout", service="orders", trace_id="abc", since="5m").to_es()["bool"]
    assert {"term": {"service.name": "orders"}} in query["filter"]
    assert {"term": {"trace.id": "abc"}} in query["filter"]
    assert {"range": {"@timestamp": {"gte": "now-5m"}}} in query["filter"]
    assert query["must"][0]["query_string"]["query"] == "timeout"


def test_table_reads_nested_and_dotted_ecs_fields() -> None:
    events = [
        {
            "@timestamp": "2026-01-02T03:04:05.678Z",
            "log": {"level": "error"},
            "service": {"name": "orders"},
            "message": "boom",
            "error": {"type": "ValueError"},
            "trace": {"id": "0123456789abcdef"},
        },
        {
            "@timestamp": "2026-01-02T03:04:06.000Z",
            "log.level": "info",
            "service.name": "rabbitmq",
            "message": "ok",
        },
    ]
    rendered = table(events, "t")
    cells = [list(column.cells) for column in rendered.columns]
    assert cells[0] == ["03:04:05.678", "03:04:06.000"]
    assert cells[1] == ["orders", "rabbitmq"]
    assert str(cells[2][1]) == "info"
    assert cells[4][0] == "01234567"
    assert cells[5][0] == "[ValueError] boom"

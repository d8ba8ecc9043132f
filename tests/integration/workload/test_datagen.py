"""The data generator: deterministic from (size, seed), on-disk size within ±20 % of the target."""

from __future__ import annotations

import re

import pytest

from finchsim.platform.local import LocalPostgres, LocalRedis
from tests.integration.workload.conftest import service_env
from tests.integration.workload.helpers import manage

pytestmark = pytest.mark.integration
CHECKSUM = (
    "SELECT count(*) || ':' || md5(string_agg(t::text, '|' ORDER BY t.id)) FROM finch_transaction t"
)
ON_DISK = (
    "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
    "WHERE c.relname LIKE 'finch\\_%' AND c.relkind = 'r'"
)


def test_same_seed_same_rows_and_size_within_20_percent(
    postgres: LocalPostgres, redis_server: LocalRedis
) -> None:
    postgres.create_database("finch_datagen")
    env = service_env(postgres, redis_server, "finch_datagen")
    assert manage(env, "migrate", "--noinput").returncode == 0

    def generate(size: str, seed: int) -> str:
        done = manage(env, "generate_data", "--size", size, "--seed", str(seed))
        assert done.returncode == 0, done.stderr
        assert re.search(r"generated \d+ transactions, \d+ accounts", done.stdout), done.stdout
        return postgres.psql(CHECKSUM, dbname="finch_datagen")

    first = generate("8MB", 42)
    size = int(postgres.psql(ON_DISK, dbname="finch_datagen"))
    accounts = postgres.psql(
        "SELECT md5(string_agg(a::text, '|' ORDER BY id)) FROM finch_account a",
        dbname="finch_datagen",
    )
    assert generate("8MB", 42) == first  # replaces the rows, ids included
    assert (
        postgres.psql(
            "SELECT md5(string_agg(a::text, '|' ORDER BY id)) FROM finch_account a",
            dbname="finch_datagen",
        )
        == accounts
    )
    assert generate("8MB", 43) != first
    assert abs(size - 8 * 2**20) <= 0.2 * 8 * 2**20, f"{size / 2**20:.1f} MB on disk for 8MB"
    generate("24MB", 42)
    bigger = int(postgres.psql(ON_DISK, dbname="finch_datagen"))
    assert abs(bigger - 24 * 2**20) <= 0.2 * 24 * 2**20, f"{bigger / 2**20:.1f} MB for 24MB"
    # The data is usable by the app: foreign keys and indexes are back after the bulk load.
    indexes = postgres.psql(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'finch_transaction' ORDER BY 1",
        dbname="finch_datagen",
    )
    assert indexes.splitlines() == [
        "finch_transaction_pkey",
        "tx_account_booked",
        "tx_booked",
        "tx_category_booked",
    ]
    fks = postgres.psql(
        "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND "
        "conrelid = 'finch_transaction'::regclass",
        dbname="finch_datagen",
    )
    assert fks == "2"


@pytest.mark.parametrize("size", ["lots", "0MB", "5XB"])
def test_invalid_size_is_one_clear_error(size: str) -> None:
    from tests.integration.workload.helpers import base_env

    done = manage(base_env(), "generate_data", "--size", size)
    assert done.returncode != 0
    assert "--size: expected a size like 50MB or 2GB" in done.stderr
    assert "Traceback" not in done.stderr

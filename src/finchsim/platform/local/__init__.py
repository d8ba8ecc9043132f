"""Local services the local platform and the integration tests start as plain processes."""

from finchsim.platform.local.postgres import LocalPostgres, PostgresParams
from finchsim.platform.local.redis import LocalRedis, RedisParams

__all__ = ["LocalPostgres", "LocalRedis", "PostgresParams", "RedisParams"]

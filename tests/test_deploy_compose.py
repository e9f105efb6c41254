"""deploy/compose.yaml read as the engine reads it: the instances reach PostgreSQL through PgBouncer in
transaction mode, share Redis, trust only the gateway, start in order and stop after their drain
(the same topology, booted and driven: test_topology.py)."""

from __future__ import annotations

import configparser
import re
from typing import Any

import yaml
from gateway import NGINX_CONFIG, config_seconds
from sqlalchemy.engine import make_url

DEPLOY = NGINX_CONFIG.parent.parent


def compose_services() -> dict[str, Any]:
    """deploy/compose.yaml as the engine reads it (with deploy/.env's password substituted)."""
    text = re.sub(r"\$\{POSTGRES_PASSWORD:\?[^}]*\}", "secret", (DEPLOY / "compose.yaml").read_text())
    services: dict[str, Any] = yaml.safe_load(text)["services"]
    assert set(services) == {"postgres", "pgbouncer", "redis", "migrate", "app-1", "app-2", "gateway"}
    return services


def test_compose_instances_use_pgbouncer_redis_and_trust_only_the_gateway() -> None:
    services, nginx = compose_services(), NGINX_CONFIG.read_text()
    pooler = configparser.ConfigParser(interpolation=None)
    pooler.read_string((DEPLOY / "pgbouncer" / "pgbouncer.ini").read_text())
    assert pooler["pgbouncer"]["pool_mode"] == "transaction"
    assert "host=postgres port=5432" in pooler["databases"]["*"]
    upstream = dict(re.findall(r"^\s*server ([\w-]+):(\d+) ", nginx, re.MULTILINE))
    assert upstream == {"app-1": "8000", "app-2": "8000"}  # the image's PORT
    gateway, postgres = services["gateway"], services["postgres"]["environment"]
    listen = re.findall(r"^\s*listen (\d+);", nginx, re.MULTILINE)
    assert listen == [port.split(":")[-1] for port in gateway["ports"]]
    assert "JWT_SECRET_KEY=" in (DEPLOY / ".env.example").read_text().splitlines()
    for name in ("migrate", *upstream):
        app, environment = services[name], services[name]["environment"]
        assert (DEPLOY / app["build"]["context"] / app["build"]["dockerfile"]).is_file()
        assert app["env_file"] in (".env", [".env"])  # JWT_SECRET_KEY
        database = make_url(environment["DATABASE_URL"])
        assert (database.host, str(database.port)) == ("pgbouncer", pooler["pgbouncer"]["listen_port"])
        login = (database.username, database.password, database.database)
        assert login == (postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], postgres["POSTGRES_DB"])
        assert environment["DATABASE_POOLER"] == "transaction"
        assert make_url(environment["REDIS_URL"]).host == "redis"
        assert environment["TRUSTED_PROXIES"] == gateway["networks"]["backend"]["ipv4_address"]
    for service in services.values():
        for volume in service.get("volumes", []):
            assert not volume.startswith("./") or (DEPLOY / volume.split(":")[0]).exists(), volume


def test_compose_starts_in_order_and_stops_after_the_drain() -> None:
    services = compose_services()
    assert services["migrate"]["command"] == ["todo-svc", "db", "upgrade"]
    assert services["migrate"]["depends_on"] == {"pgbouncer": {"condition": "service_healthy"}}
    assert set(services["gateway"]["depends_on"]) == {"app-1", "app-2"}
    for name in ("postgres", "pgbouncer", "redis", "app-1", "app-2"):
        assert services[name]["healthcheck"]["test"], name
    for app in (services["app-1"], services["app-2"]):
        conditions = {service: wanted["condition"] for service, wanted in app["depends_on"].items()}
        healthy = {"pgbouncer": "service_healthy", "redis": "service_healthy"}
        assert conditions == {"migrate": "service_completed_successfully", **healthy}
        drain = float(app["environment"]["SHUTDOWN_DRAIN_SECONDS"])
        assert drain > config_seconds("keepalive_timeout")
        in_flight = float(app["environment"]["SHUTDOWN_TIMEOUT_SECONDS"])
        assert float(app["stop_grace_period"].removesuffix("s")) > drain + in_flight

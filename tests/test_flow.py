"""The full flow a client goes through, on every backend."""

from __future__ import annotations

import pytest
from helpers import assert_error

pytestmark = pytest.mark.backends("postgresql", "sqlite")


async def test_register_create_list_complete_delete(client, register) -> None:
    account = await register("Flow@Example.org")
    assert account.email == "flow@example.org"

    created = await client.post(account.tasks_url, json={"title": "  Buy milk  "}, headers=account.headers)
    assert created.status_code == 201, created.text
    task = created.json()
    assert task["title"] == "Buy milk"
    assert task["completed"] is False
    assert created.headers["location"] == f"{account.tasks_url}/{task['id']}"

    listed = await client.get(account.tasks_url, headers=account.headers)
    assert listed.status_code == 200
    assert listed.json() == {"items": [task], "total": 1, "limit": 50, "offset": 0, "next_cursor": None}

    completed = await client.patch(f"{account.tasks_url}/{task['id']}/complete", headers=account.headers)
    assert completed.status_code == 200, completed.text
    assert completed.json()["completed"] is True
    assert completed.json()["updated_at"] > task["updated_at"]

    deleted = await client.delete(f"{account.tasks_url}/{task['id']}", headers=account.headers)
    assert deleted.status_code == 204
    missing = await client.get(f"{account.tasks_url}/{task['id']}", headers=account.headers)
    assert assert_error(missing, 404)["detail"] == f"Task {task['id']} not found"

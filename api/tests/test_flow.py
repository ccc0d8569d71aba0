"""The seed's flow end to end against the app: login, userinfo, refresh, logout."""

from __future__ import annotations

from tests.conftest import Harness


async def test_login_userinfo_refresh_logout(harness: Harness) -> None:
    user_id = await harness.user(roles=("editor",))
    async with harness.client() as client:
        login = await harness.login(client)
        body = login.json()
        assert body["user"] == {
            "id": user_id,
            "email": "ada@example.com",
            "name": "Ada",
            "roles": ["editor"],
        }
        assert body["access_token_expires_at"].endswith("Z")

        access = client.cookies.get("access_token")
        info = await client.get("/api/userinfo", headers={"Authorization": f"Bearer {access}"})
        assert info.status_code == 200
        assert info.json()["sub"] == user_id
        assert info.json()["session"]["id"] == body["session_id"]

        old_refresh = client.cookies.get("refresh_token")
        refreshed = await client.post("/auth/refresh")
        assert refreshed.status_code == 200, refreshed.text
        assert client.cookies.get("refresh_token") != old_refresh

        out = await client.post("/auth/logout")
        assert out.status_code == 204
        again = await client.get("/api/userinfo", headers={"Authorization": f"Bearer {access}"})
        assert again.status_code == 401
        assert again.json()["code"] == "invalid_token"

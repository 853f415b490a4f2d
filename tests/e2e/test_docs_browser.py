"""/docs and /redoc in a real browser (tier `chromium`): Debian's headless Chromium driven
by Playwright.

Each page loads from a live server with every request that leaves 127.0.0.1 blocked and
recorded; every tag and operation of the spec (and every webhook) must render, no request
may fail or be blocked, and (on /docs) a person's first session must work: Authorize with a
real token, then "Try it out" -> Execute on `listTasks`, which shows a 200 with the user's tasks.
Screenshots go to test-artifacts/ (git-ignored) or $TEST_ARTIFACTS.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from api.openapi import SPEC_FILE
from tests.support.apps import LiveServer
from tests.support.tiers import tier_missing

pytestmark = pytest.mark.contract

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(
    os.environ.get("TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts")
)
# Quiet, offline Chromium: no sandbox (CI runs as root), no GPU, no phoning home.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse battery"
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"

try:
    from playwright.sync_api import BrowserContext, Page, Request, Route, expect, sync_playwright
except ImportError:  # pragma: no cover - playwright is a dev dependency
    sync_playwright = None


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """Headless Chromium with a fresh profile. Never `playwright install`: Debian's build."""
    if sync_playwright is None:
        tier_missing("chromium", "playwright is not installed")
    if not CHROMIUM.exists():
        tier_missing("chromium", f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as playwright:
        try:
            context = playwright.chromium.launch_persistent_context(
                str(tmp_path_factory.mktemp("chromium-profile")),
                executable_path=str(CHROMIUM),
                headless=True,
                args=ARGS,
                viewport={"width": 1280, "height": 2000},
            )
        except Exception as error:  # any launch failure means no browser here
            tier_missing("chromium", f"Chromium did not start: {error}")
        yield context
        context.close()


def spec_operations() -> dict[str, str]:
    """{operationId: tag} from the committed spec."""
    spec = json.loads(SPEC_FILE.read_text())
    return {
        operation["operationId"]: operation["tags"][0]
        for item in spec["paths"].values()
        for operation in item.values()
    }


def spec_webhooks() -> list[str]:
    """The operationIds of the spec's top-level `webhooks` (the event payloads)."""
    spec = json.loads(SPEC_FILE.read_text())
    return [item["post"]["operationId"] for item in spec["webhooks"].values()]


def block_id(tag: str, operation_id: str) -> str:
    """The id Swagger UI gives an operation's block: its deep link, where each whitespace
    character of the tag becomes `_` (`API keys` -> `operations-API_keys-listApiKeys`)."""
    link = re.sub(r"\s", "_", tag.strip())
    return f"operations-{link}-{operation_id}"


def user_with_tasks(server: LiveServer, titles: list[str]) -> str:
    """Register a user, create `titles` as their tasks; return an access token."""
    name = f"docs-{uuid.uuid4().hex[:8]}"
    account = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
    api = f"{server.url}/api/v1"
    requests.post(f"{api}/auth/register", json=account, timeout=10).raise_for_status()
    login = requests.post(
        f"{api}/auth/login", json={"login": name, "password": PASSWORD}, timeout=10
    )
    token: str = login.json()["access_token"]
    for title in titles:
        created = requests.post(
            f"{api}/tasks",
            json={"title": title},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert created.status_code == 201, created.text
    return token


@dataclass
class Traffic:
    """What a page asked for beyond this server (blocked), what the page's own
    Content-Security-Policy kept the browser from asking for (refused: never sent), and
    what went wrong."""

    blocked: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    bad_responses: list[str] = field(default_factory=list)


def offline_page(browser: BrowserContext) -> tuple[Page, Traffic]:
    """A new page whose every request off 127.0.0.1 is blocked and recorded."""
    page: Page = browser.new_page()
    traffic = Traffic()

    def only_loopback(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            traffic.blocked.append(route.request.url)
            route.abort()

    def on_failed(request: Request) -> None:
        if request.failure == "csp":
            traffic.refused.append(request.url)
        else:
            traffic.failed.append(f"{request.method} {request.url}: {request.failure}")

    page.route("**/*", only_loopback)
    page.on("requestfailed", on_failed)
    page.on(
        "response",
        lambda r: traffic.bad_responses.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    return page, traffic


def test_docs_render_and_try_it_out_works_offline(
    browser: BrowserContext, live_server: LiveServer
) -> None:
    token = user_with_tasks(live_server, ["Read the docs", "Try it out"])
    page, traffic = offline_page(browser)

    page.goto(f"{live_server.url}/docs", wait_until="networkidle")

    # every tag, and every operation under its tag, by operationId
    operations = spec_operations()
    for tag in set(operations.values()):
        expect(page.locator(f'.opblock-tag[data-tag="{tag}"]')).to_be_visible()
    for operation_id, tag in operations.items():
        block = page.locator(f"#{block_id(tag, operation_id)}")
        expect(block).to_be_visible()
        expect(block.locator(".opblock-summary-operation-id")).to_have_text(operation_id)
    # and every webhook (an event's payload), in Swagger UI's own Webhooks section
    webhooks = spec_webhooks()
    for operation_id in webhooks:
        expect(page.locator(f"#operations-webhooks-{operation_id}")).to_be_visible()
    assert page.locator(".opblock").count() == len(operations) + len(webhooks)

    # Authorize with a real token (BearerAuth)
    page.locator("button.authorize").first.click()
    bearer = page.locator(".auth-container").filter(has_text="BearerAuth")
    bearer.locator("input").fill(token)
    bearer.locator("button.authorize").click()
    expect(bearer.locator("button", has_text="Logout")).to_be_visible()  # = authorized
    expect(bearer.locator("code", has_text="******")).to_be_visible()
    bearer.locator("button.btn-done").click()

    # Try it out -> Execute on listTasks
    list_tasks = page.locator(f"#{block_id('Tasks', 'listTasks')}")
    list_tasks.locator(".opblock-summary").click()
    list_tasks.locator("button.try-out__btn").click()
    list_tasks.locator("button.execute").click()
    live = list_tasks.locator(".live-responses-table")
    expect(live.locator("tr.response .response-col_status")).to_have_text("200")
    body = live.locator(
        ".response-col_description .microlight, .response-col_description pre"
    ).first
    expect(body).to_contain_text('"title": "Try it out"')
    expect(body).to_contain_text('"title": "Read the docs"')
    expect(body).to_contain_text('"total": 2')

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "docs-full-page.png"), full_page=True)
    list_tasks.screenshot(path=str(ARTIFACTS / "docs-try-it-out-listTasks.png"))
    page.close()

    assert traffic.blocked == [], "the docs page must not leave this server"
    assert traffic.refused == []
    assert traffic.failed == []
    assert traffic.bad_responses == []


def open_redoc(browser: BrowserContext, live_server: LiveServer) -> tuple[Page, Traffic]:
    """/redoc, once Redoc has drawn the spec: it renders the whole document in one go,
    which takes a while on a loaded machine (longer than `expect`'s 5 s default)."""
    page, traffic = offline_page(browser)
    page.goto(f"{live_server.url}/redoc", wait_until="networkidle")
    expect(page.locator('[id^="operation/"]').first).to_be_attached(timeout=60_000)
    return page, traffic


def test_redoc_renders_every_operation_offline(
    browser: BrowserContext, live_server: LiveServer
) -> None:
    page, traffic = open_redoc(browser, live_server)

    # Redoc gives each operation an anchor `operation/<operationId>`
    operations = spec_operations()
    for operation_id in operations:
        expect(page.locator(f'[id="operation/{operation_id}"]')).to_be_attached()
    expect(page.locator("h1").first).to_contain_text("Tasks API")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "redoc.png"))
    page.close()

    assert traffic.blocked == [], "the Redoc page must not leave this server"
    # Redoc's menu always draws its maker's logo from a CDN; the page's CSP (api.openapi)
    # keeps the browser from fetching it. Nothing else may be refused: it would be missing.
    assert set(traffic.refused) <= {REDOC_LOGO}
    assert traffic.failed == []
    assert traffic.bad_responses == []


def test_redoc_shows_every_webhook(browser: BrowserContext, live_server: LiveServer) -> None:
    """Redoc lists each event payload of the spec's `webhooks` with its summary."""
    spec = json.loads(SPEC_FILE.read_text())
    page, _ = open_redoc(browser, live_server)
    for item in spec["webhooks"].values():
        expect(page.get_by_text(item["post"]["summary"]).first).to_be_attached()
    page.close()


def test_try_it_out_uploads_a_file(
    browser: BrowserContext, live_server: LiveServer, tmp_path: Path
) -> None:
    """Swagger UI's file picker on `uploadAttachment` sends a real multipart upload: 201."""
    token = user_with_tasks(live_server, ["With a file"])
    tasks = requests.get(
        f"{live_server.url}/api/v1/tasks",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    task_id = tasks.json()["data"][0]["id"]
    upload = tmp_path / "pixel.png"
    upload.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64))
    page: Page = browser.new_page()
    page.goto(f"{live_server.url}/docs", wait_until="networkidle")
    # persistAuthorization keeps an earlier test's token in this profile: start afresh.
    page.evaluate("localStorage.clear()")
    page.reload(wait_until="networkidle")
    page.locator("button.authorize").first.click()
    bearer = page.locator(".auth-container").filter(has_text="BearerAuth")
    bearer.locator("input").fill(token)
    bearer.locator("button.authorize").click()
    bearer.locator("button.btn-done").click()

    block = page.locator(f"#{block_id('Attachments', 'uploadAttachment')}")
    block.locator(".opblock-summary").click()
    block.locator("button.try-out__btn").click()
    block.locator('tr[data-param-name="task_id"] input').fill(str(task_id))
    block.locator(".opblock-section-request-body select").select_option("multipart/form-data")
    block.locator('input[type="file"]').set_input_files(str(upload))
    block.locator("button.execute").click()
    live = block.locator(".live-responses-table")
    expect(live.locator("tr.response .response-col_status")).to_have_text("201")
    body = live.locator(
        ".response-col_description .microlight, .response-col_description pre"
    ).first
    expect(body).to_contain_text('"filename": "pixel.png"')
    expect(body).to_contain_text('"content_type": "image/png"')
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    block.screenshot(path=str(ARTIFACTS / "docs-try-it-out-uploadAttachment.png"))
    page.close()
    listed = requests.get(
        f"{live_server.url}/api/v1/tasks/{task_id}/attachments",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert [a["filename"] for a in listed.json()["data"]] == ["pixel.png"]

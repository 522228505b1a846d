"""``convoscope demo``: a server with a week of demo calls, real stereo recordings and a working URL."""

from __future__ import annotations

import io
import re

import httpx
import soundfile as sf

from .conftest import ServerProcess


def test_demo_serves_a_week_of_calls_with_recordings(server: ServerProcess, auth: dict[str, str]) -> None:
    server.start(command="demo")
    calls: list[dict[str, object]] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = httpx.get(f"{server.url}/api/v1/calls", params=params, headers=auth, timeout=30).json()
        calls.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(calls) >= 300
    assert len({c["agent_id"] for c in calls}) >= 2 and len({c["source"] for c in calls}) >= 2
    assert any(c["tool_error_count"] for c in calls)
    assert len({c["end_reason"] for c in calls}) >= 4
    with_audio = [c for c in calls if c["has_recording"]]
    assert 3 <= len(with_audio) <= 10
    audio = httpx.get(f"{server.url}/api/v1/calls/{with_audio[0]['id']}/recording", headers=auth, timeout=30)
    assert audio.status_code == 200
    data, rate = sf.read(io.BytesIO(audio.content))
    assert data.ndim == 2 and data.shape[1] == 2 and rate in (8000, 16000)

    log = next(server.data_dir.parent.glob(f"server-{server.port}.log")).read_text()
    url = re.search(r"open (http://\S+/\?key=\S+)", log)
    assert url is not None, log
    with httpx.Client(follow_redirects=True, timeout=30) as browser:
        overview = browser.get(url.group(1))
        assert overview.url.path == "/" and "Overview" in overview.text
        assert "dental-receptionist" in overview.text
        page_html = browser.get(f"{server.url}/calls").text
        assert "dental-receptionist" in page_html and "Calls" in page_html
        call_link = re.search(r'href="(/calls/[0-9a-f-]+)"', page_html)
        assert call_link is not None
        detail = browser.get(f"{server.url}{call_link.group(1)}")
        assert detail.status_code == 200 and "Transcript" in detail.text
    anonymous = httpx.get(f"{server.url}/calls", timeout=10, follow_redirects=True)
    assert anonymous.url.path == "/login" and "Sign in" in anonymous.text
    assert "dental-receptionist" not in anonymous.text

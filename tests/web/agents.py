"""A scripted agent for browser tests: the reference ``AgentClient`` on a loop thread,
recording every message the relay sends it, and sending known screens as raw+zstd tiles.

It proves the browser against the real relay without the real agent: what the page
draws is compared with the pixels sent here, and what the page sends (keys, special keys,
mouse, chat) is read back from this agent's inbox.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import zstandard

from guruconnect.client import AgentClient, Refused
from guruconnect.protocol import (
    ChatMessage,
    Codec,
    CursorPosition,
    Display,
    VideoFrame,
    payload,
)
from guruconnect.protocol import Tile as TileMessage
from tests.web.conftest import LoopThread

TILE = 64


def screen_picture(width: int, height: int) -> np.ndarray:
    """A BGRA picture with a distinct colour per tile and a gradient inside each, so a
    misplaced, mirrored or channel-swapped tile shows."""
    ys, xs = np.mgrid[0:height, 0:width]
    picture = np.zeros((height, width, 4), dtype=np.uint8)
    picture[..., 0] = (xs // TILE) * 70 % 256  # blue: tile column
    picture[..., 1] = (ys // TILE) * 90 % 256  # green: tile row
    picture[..., 2] = (xs % TILE) * 4 + (ys % TILE) // 16  # red: position inside the tile
    picture[..., 3] = 255
    return picture


def frame_of(picture: np.ndarray, *, display_id: int = 1, number: int = 1) -> VideoFrame:
    """A keyframe of ``picture``: every 64x64 tile, zstd-compressed BGRA."""
    height, width = picture.shape[:2]
    compressor = zstandard.ZstdCompressor(level=3)
    tiles = []
    for y in range(0, height, TILE):
        for x in range(0, width, TILE):
            block = np.ascontiguousarray(picture[y : y + TILE, x : x + TILE])
            tiles.append(
                TileMessage(
                    x=x,
                    y=y,
                    width=block.shape[1],
                    height=block.shape[0],
                    data=compressor.compress(block.tobytes()),
                )
            )
    return VideoFrame(
        display_id=display_id,
        codec=Codec.CODEC_RAW_ZSTD,
        keyframe=True,
        width=width,
        height=height,
        tiles=tiles,
        frame_number=number,
        timestamp_us=int(time.monotonic() * 1e6),
    )


class ScriptedAgent:
    def __init__(self, loop: LoopThread, client: AgentClient) -> None:
        self.loop = loop
        self.client = client
        self.inbox: list[tuple[str, Any]] = []
        self.closed: Refused | None = None
        self.key: str | None = None
        self._reader = loop.run(self._start_reader())

    @classmethod
    def connect(
        cls,
        loop: LoopThread,
        url: str,
        *,
        key: str | None = None,
        code: str | None = None,
        hostname: str = "kiosk-01",
        os: str = "Debian GNU/Linux 13",
        width: int = 256,
        height: int = 128,
        screens: int = 1,
        encoders: tuple[int, ...] = (Codec.CODEC_RAW_ZSTD,),
    ) -> ScriptedAgent:
        async def go() -> AgentClient:
            client = await AgentClient.connect(
                url, key=key, code=code, key_in_header=code is None, hostname=hostname, os=os
            )
            await client.send_status(
                encoders=list(encoders),  # type: ignore[arg-type]
                hostname=hostname,
                os=os,
                agent_version="0.1.0",
                displays=[
                    Display(
                        id=n,
                        x=(n - 1) * width,
                        width=width,
                        height=height,
                        primary=n == 1,
                        name="Main" if n == 1 else f"Screen {n}",
                    )
                    for n in range(1, screens + 1)
                ],
            )
            return client

        agent = cls(loop, loop.run(go()))
        agent.key = key
        return agent

    async def _start_reader(self) -> asyncio.Task[None]:
        async def read() -> None:
            try:
                while True:
                    envelope = await self.client.recv()
                    self.inbox.append(payload(envelope))
            except Refused as exc:
                self.closed = exc

        return asyncio.create_task(read())

    @property
    def machine_id(self) -> str:
        return self.client.auth.machine_id

    def received(self, kind: str) -> list[Any]:
        return [message for name, message in list(self.inbox) if name == kind]

    def wait_for(self, kind: str, where: Any = None, timeout: float = 10.0) -> Any:
        """The first received ``kind`` message (matching ``where``), waiting for it."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self.received(kind):
                if where is None or where(message):
                    return message
            if time.monotonic() > deadline:
                seen = [name for name, _ in self.inbox]
                raise AssertionError(f"agent got no matching {kind} within {timeout} s: {seen}")
            time.sleep(0.02)

    def clear(self) -> None:
        self.inbox.clear()

    def send(self, message: Any) -> None:
        self.loop.run(self.client.send(message))

    def grant_consent(self, session_id: str, granted: bool = True) -> None:
        self.wait_for("consent_request", lambda m: m.session_id == session_id)
        self.loop.run(self.client.answer_consent(session_id, granted, "" if granted else "no"))

    def show(self, picture: np.ndarray, session_id: str) -> None:
        frame = frame_of(picture)
        frame.session_id = session_id
        self.send(frame)

    def chat(self, session_id: str, text: str) -> None:
        self.send(ChatMessage(session_id=session_id, sender="customer", text=text))

    def cursor(self, x: int, y: int) -> None:
        self.send(CursorPosition(display_id=1, x=x, y=y, visible=True))

    def close(self) -> None:
        async def go() -> None:
            self._reader.cancel()
            await self.client.close()

        self.loop.run(go())

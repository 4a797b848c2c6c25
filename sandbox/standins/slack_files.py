"""The Slack stand-in's file uploads, as `WebClient.files_upload_v2` (slack_sdk 3.47) drives them.

Three steps, as on Slack today: `files.getUploadURLExternal` (filename, length) answers an upload
URL and a file id; the bytes are POSTed to that URL (Slack answers `OK - <length>`); then
`files.completeUploadExternal` (files = JSON list of {id, title}, channel_id, thread_ts) shares
them. A file id that was never uploaded cannot be completed, and each id completes once.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

Args = dict[str, Any]


@dataclass
class SharedFile:
    id: str
    filename: str
    length: int
    title: str = ""
    data: bytes = b""
    uploaded: bool = False
    channel: str | None = None
    thread_ts: str | None = None
    shares: list[str] = field(default_factory=list)


class FileUploads:
    """Held by SlackStandin; `error` builds its `{"ok": false}` exception, `channel` checks a channel."""

    def __init__(self, base_url: Callable[[], str], error: Callable[[str], Exception],
                 channel: Callable[[Args], str]) -> None:
        self._base_url, self._error, self._channel = base_url, error, channel
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.files: dict[str, SharedFile] = {}

    def shared(self, channel: str) -> list[SharedFile]:
        """Files completed into `channel`, in order."""
        with self._lock:
            return [f for f in self.files.values() if f.channel == channel]

    def get_upload_url(self, args: Args) -> Args:
        filename = str(args.get("filename") or "")
        try:
            length = int(args.get("length") or 0)
        except ValueError:
            length = 0
        if not filename or length <= 0:
            raise self._error("invalid_arguments")
        with self._lock:
            file_id = f"F{next(self._ids):010d}"
            self.files[file_id] = SharedFile(id=file_id, filename=filename, length=length)
        return {"upload_url": f"{self._base_url()}/upload/v1/{file_id}", "file_id": file_id}

    async def upload(self, request: Request) -> Response:
        data = await request.body()
        with self._lock:
            found = self.files.get(request.path_params["file_id"])
            if found is None:
                return PlainTextResponse("invalid_upload_url", status_code=404)
            found.data, found.uploaded = data, True
        return PlainTextResponse(f"OK - {len(data)}")

    def complete(self, args: Args) -> Args:
        try:
            wanted = json.loads(str(args.get("files") or "[]"))
        except ValueError:
            raise self._error("invalid_arguments") from None
        if not isinstance(wanted, list) or not wanted:
            raise self._error("invalid_arguments")
        channel = self._channel({"channel": args["channel_id"]}) if args.get("channel_id") else None
        thread_ts = str(args["thread_ts"]) if args.get("thread_ts") else None
        done = []
        with self._lock:
            for item in wanted:
                found = self.files.get(str(item.get("id"))) if isinstance(item, dict) else None
                if found is None or not found.uploaded or found.channel is not None:
                    raise self._error("file_not_found")
                found.title = str(item.get("title") or found.filename)
                found.channel, found.thread_ts = channel, thread_ts
                if channel:
                    found.shares.append(channel)
                done.append({"id": found.id, "name": found.filename, "title": found.title, "size": len(found.data),
                             "mimetype": "image/png" if found.filename.endswith(".png") else "application/octet-stream"})
        return {"files": done}

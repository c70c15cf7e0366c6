"""A stopping instance tells its sockets to reconnect (elsewhere, through the balancer).

A Socket.IO DISCONNECT packet, or Engine.IO's CLOSE packet, would end the clients for good
(the browser's client reports "io server disconnect" and python-socketio's client stops
too): they reconnect only when the transport drops. So each Engine.IO session is closed
without a CLOSE packet: a long-polling client's pending GET returns empty and its next one
fails ("transport error"), and uvicorn's shutdown closes the WebSockets with 1012 (service
restart), "transport close" to the client. Both clients then reconnect with their usual
back-off and rejoin their session on `connect` (public/js/chat.js, public/agent/agent.js).
"""

from __future__ import annotations

import logging

import socketio

log = logging.getLogger(__name__)


async def drop_transports(sio: socketio.AsyncServer) -> int:
    """End every Engine.IO session of this process so its client reconnects; the count."""
    sockets = list(sio.eio.sockets.values())
    for socket in sockets:
        await socket.close(wait=False, abort=True)
        if not socket.upgraded:  # long-polling: release the pending GET now, not at ping
            socket.queue.put_nowait(None)
    log.info("told %d sockets to reconnect", len(sockets))
    return len(sockets)

"""The WebSocket relay: agents on ``/ws/agent``, viewers on ``/ws/viewer``, one hub between.

Data flows one way per plane: screen from agent to viewers, input from viewers to agent.
Frames are routed by their envelope's payload type (``protocol.peek_type``) and forwarded
as the bytes that arrived; only small control messages are parsed in full.
"""

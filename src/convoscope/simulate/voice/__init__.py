"""Voice simulation: the simulator plays the telephone network to a voice agent.

It connects to the agent's WebSocket in a telephony media-stream protocol (Twilio Media Streams, or a
plain PCM WebSocket), paces 20 ms frames of the caller's speech in real time, plays what the agent sends
back (honouring ``clear`` and echoing ``mark``), records both directions on one clock into a stereo file
(caller left, agent right) and keeps its own ground truth of when the caller spoke and barged in.
"""
